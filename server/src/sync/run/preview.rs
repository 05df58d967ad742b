//! A dry run's own steps: its creates are looked up in AWS, so that it shows what the real run
//! would meet (adoptions, refusals to adopt), and its report shows the plan instead of changes.

use super::paged::{AsyncPageSink, Survey};
use super::plan_pages::PlanWriter;
use super::report::RunReport;
use super::state::Run;
use crate::names::fold;
use crate::store::{RunStatus, Store, StoreError};
use crate::sync::access::apply::{self as access_apply, AccessRun};
use crate::sync::access::plan::AccessPlan;
use crate::sync::access::rules::PermissionSetSettings;
use crate::sync::counts;
use crate::sync::error::SyncError;
use crate::sync::plan::{Action, Plan, Skipped};
use crate::sync::target::Directory;
use scim_schema::schema::ResourceKind;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Up to this many creates of a kind, a dry run looks each name up in AWS; beyond, it lists
/// the kind once (a page holds 100).
const LOOKUPS_BEFORE_LISTING: usize = 200;

/// A dry run's survey: each page's creates are looked up in AWS, and its plan written out
/// (inline when small, else page by page: see [`PlanWriter`]).
pub(super) struct DryRun<'a> {
    held: NamesHeld,
    pub pages: PlanWriter<'a>,
}

impl<'a> DryRun<'a> {
    pub fn new(store: &'a dyn Store, run_id: Uuid) -> DryRun<'a> {
        DryRun { held: NamesHeld::default(), pages: PlanWriter::new(store, run_id) }
    }
}

impl AsyncPageSink for &mut DryRun<'_> {
    async fn page(&mut self, run: &mut Run<'_>, plan: &mut Plan) -> Result<(), SyncError> {
        resolve_adoptions(run.directory, run.store, plan, &mut self.held).await?;
        self.pages.push_actions(&plan.actions).await?;
        Ok(())
    }
}

/// Turns a dry run's creates into what the real run would meet: a name held in AWS by a
/// principal the bridge does not manage becomes an `adopt` (the source has `adopt_existing`)
/// or an error, with the memberships it would have had (the principal is left as it is).
async fn resolve_adoptions(
    directory: &dyn Directory,
    store: &dyn Store,
    plan: &mut Plan,
    held: &mut NamesHeld,
) -> Result<(), SyncError> {
    held.look_up(directory, plan).await?;
    let holders: Vec<String> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { kind, name, .. } => held.get(*kind, name).map(str::to_owned),
            _ => None,
        })
        .collect();
    let managed: HashSet<(ResourceKind, String)> = if holders.is_empty() {
        HashSet::new()
    } else {
        store.recorded(&[], &holders).await?.into_iter().map(|p| (p.kind, p.aws_id)).collect()
    };
    let mut refused: HashSet<Uuid> = HashSet::new();
    let mut actions = Vec::with_capacity(plan.actions.len());
    for action in std::mem::take(&mut plan.actions) {
        let Action::Create { kind, name, resource_id, source, may_adopt, attrs } = action else {
            actions.push(action);
            continue;
        };
        // A holder the bridge manages for another resource is not adoptable: the create goes
        // ahead and the run reports that conflict.
        let unmanaged = held
            .get(kind, &name)
            .filter(|aws_id| !managed.contains(&(kind, (*aws_id).to_owned())))
            .map(str::to_owned);
        match unmanaged {
            None => {
                actions.push(Action::Create { kind, name, resource_id, source, may_adopt, attrs })
            }
            Some(aws_id) if may_adopt => {
                actions.push(Action::Adopt { kind, name, resource_id, source, aws_id, attrs })
            }
            Some(aws_id) => {
                refused.insert(resource_id);
                let message = crate::sync::principals::not_adoptable(kind, &name, &aws_id, &source);
                plan.skipped.push(Skipped { principal: name, message });
            }
        }
    }
    actions.retain(|a| match a {
        Action::AddMember { group_id, user_id, .. } => {
            !refused.contains(group_id) && !refused.contains(user_id)
        }
        _ => true,
    });
    plan.actions = actions;
    Ok(())
}

/// The AWS ids holding the names of a dry run's creates, by kind and folded name: looked up one
/// by one, or listed once for the whole run when a page has many.
#[derive(Default)]
struct NamesHeld {
    listed: HashSet<ResourceKind>,
    held: HashMap<(ResourceKind, String), String>,
}

impl NamesHeld {
    fn get(&self, kind: ResourceKind, name: &str) -> Option<&str> {
        self.held.get(&(kind, fold(name))).map(String::as_str)
    }

    async fn look_up(&mut self, directory: &dyn Directory, plan: &Plan) -> Result<(), SyncError> {
        for kind in [ResourceKind::User, ResourceKind::Group] {
            if self.listed.contains(&kind) {
                continue;
            }
            let names: Vec<&str> = plan
                .actions
                .iter()
                .filter_map(|a| match a {
                    Action::Create { kind: k, name, .. } if *k == kind => Some(name.as_str()),
                    _ => None,
                })
                .collect();
            if names.len() > LOOKUPS_BEFORE_LISTING {
                let listed = match kind {
                    ResourceKind::User => directory.list_users().await?,
                    ResourceKind::Group => directory.list_groups().await?,
                };
                self.held.extend(listed.into_iter().map(|l| ((kind, fold(&l.name)), l.id)));
                self.listed.insert(kind);
                continue;
            }
            for name in names {
                let found = match kind {
                    ResourceKind::User => directory.find_user(name).await?,
                    ResourceKind::Group => directory.find_group(name).await?,
                };
                if let Some(id) = found {
                    self.held.insert((kind, fold(name)), id);
                }
            }
        }
        Ok(())
    }
}

/// A dry run's report: what the plan would do (and the drift check found), its skips, and the
/// status the real run would have. The plan is described into `pages`, a page at a time.
pub(super) async fn report(
    report: &mut RunReport,
    survey: Survey,
    mut pages: PlanWriter<'_>,
    (access, access_plan, declared): (
        &AccessRun<'_>,
        Option<&AccessPlan>,
        &[PermissionSetSettings],
    ),
) -> Result<(), StoreError> {
    report.counts.extend(survey.counts);
    let skips = survey.skips;
    report.errors.extend(skips.skipped);
    report.status = RunStatus::Succeeded;
    if !skips.filter_failures.is_empty() {
        // What the real run would say: the filter is wrong for these principals (exit 2).
        report.status = RunStatus::Partial;
        report.configuration_error = true;
    }
    report.errors.extend(skips.filter_failures);
    if let Some(access_plan) = access_plan {
        let sets = access.planned_permission_sets(declared);
        // What the drift check found, and what the plan would do.
        let planned = access_apply::planned_counts(access_plan, &sets);
        counts::add_keyed(&mut report.counts, &access.done);
        counts::add_keyed(&mut report.counts, &planned);
        pages.push(sets).await?;
        pages.push(access_apply::describe(access_plan)).await?;
        report.errors.extend(access_plan.skipped.iter().cloned());
        if !access_plan.deletes_allowed {
            // A rule names a permission set AWS does not have: the real run would exit 2.
            report.status = RunStatus::Partial;
            report.configuration_error = true;
        }
    }
    pages.finish(report).await
}
