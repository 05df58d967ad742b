//! A run that plans everything — a full run, a dry run, a run that may hold actions, a change
//! run whose changes are not known — reads and plans the directory in keyed pages, so that its
//! memory is a page's and not the directory's (see `docs/sync.md`, "Full runs in pages").
//!
//! The pages: every group (its own attributes: created, renamed, deleted), then every user with
//! each of its memberships, [`PAGE_SIZE`] ids at a time in id order, SCIM resources and
//! recorded principals together. Each page is a scoped read ([`crate::store::ScopedRecord`])
//! planned by the change runs' planner; a page acts only on its own principals, so every
//! principal and every membership is decided in exactly one page.
//!
//! A real run walks the pages twice. The survey plans every page and keeps only what must be
//! judged before anything changes: the deletes and removals (the delete guard, the holds) and
//! what the access plan reads. Then the deletes go first (a name the IdP freed is free for the
//! create that wants it), and each page is planned again and applied; a delete or removal the
//! survey did not see is weighed with the others before it goes. A dry run's survey is its
//! report: its plan is written out page by page.

use super::lane::{PRIORITY_ROWS, prioritise};
use super::options::Progress;
use super::scoped::{read, weigh};
use super::state::Run;
use crate::store::{RecordTotals, Store};
use crate::sync::counts::{self, Counts};
use crate::sync::error::SyncError;
use crate::sync::guard;
use crate::sync::hold;
use crate::sync::plan::{self, Action, Plan, Skipped};
use crate::sync::principals::scope::{ChangeSet, MAX_CHANGED_RESOURCES, Scope};
use scim_schema::schema::ResourceKind;
use std::collections::{BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// Ids per page: a page of users reads them, their memberships and the groups above them.
pub(super) const PAGE_SIZE: u32 = 2_000;

/// One keyed page of the directory.
#[derive(Debug, Clone)]
pub(super) struct Page {
    pub kind: ResourceKind,
    pub ids: Vec<Uuid>,
}

impl Page {
    /// The page as a change set: groups planned for themselves, users with every group that
    /// reaches them.
    fn scope(&self) -> Scope {
        let ids: BTreeSet<Uuid> = self.ids.iter().copied().collect();
        let changes = match self.kind {
            ResourceKind::Group => ChangeSet { touched: ids, ..ChangeSet::default() },
            ResourceKind::User => ChangeSet { users: ids, ..ChangeSet::default() },
        };
        Scope::of(&changes, [])
    }

    /// Whether the action is this page's to take: its own principals' creates, updates and
    /// deletes (a page of users reads the groups above them, which are their own pages'), and
    /// every membership its plan decides.
    fn owns(&self, ids: &HashSet<Uuid>, action: &Action) -> bool {
        match action {
            Action::Create { kind, resource_id, .. }
            | Action::Adopt { kind, resource_id, .. }
            | Action::Update { kind, resource_id, .. }
            | Action::Delete { kind, resource_id, .. } => {
                *kind == self.kind && ids.contains(resource_id)
            }
            Action::AddMember { .. } | Action::RemoveMember { .. } => true,
        }
    }
}

/// Walks the pages: groups, then users.
pub(super) struct Pages {
    kind: Option<ResourceKind>,
    after: Option<Uuid>,
    size: u32,
}

impl Pages {
    pub fn new(size: u32) -> Pages {
        Pages { kind: Some(ResourceKind::Group), after: None, size: size.max(1) }
    }

    pub async fn next(&mut self, store: &dyn Store) -> Result<Option<Page>, SyncError> {
        while let Some(kind) = self.kind {
            let ids = store.page_ids(kind, self.after, self.size).await?;
            if let Some(last) = ids.last() {
                self.after = Some(*last);
                return Ok(Some(Page { kind, ids }));
            }
            self.kind = match kind {
                ResourceKind::Group => Some(ResourceKind::User),
                ResourceKind::User => None,
            };
            self.after = None;
        }
        Ok(None)
    }
}

/// Whether an action takes something away (what the delete guard weighs and holds take).
pub(super) fn takes_away(a: &Action) -> bool {
    matches!(a, Action::Delete { .. } | Action::RemoveMember { .. })
}

/// What the survey of every page found.
#[derive(Debug, Default)]
pub(super) struct Survey {
    /// The deletes and removals of every page, and the creates of the principals the access
    /// plan reads; weighed against the whole record (`managed`, `memberships`, …).
    pub kept: Plan,
    /// Every action planned, by kind.
    pub counts: Counts,
    /// What every page skipped, and the principals `[sync.filter]` failed for (each once: a
    /// page of users reads the groups above them, and skips them again).
    pub skips: Skips,
    /// The keys of every delete and removal planned (held ones too): what the guard weighed.
    weighed: HashSet<Option<String>>,
    pub pages: usize,
}

/// Skips and filter failures, each once.
#[derive(Debug, Default)]
pub(super) struct Skips {
    seen: HashSet<(String, String)>,
    pub skipped: Vec<Skipped>,
    pub filter_failures: Vec<Skipped>,
}

impl Skips {
    pub fn add(&mut self, plan: &mut Plan) {
        for (from, to) in [
            (&mut plan.skipped, &mut self.skipped),
            (&mut plan.filter_failures, &mut self.filter_failures),
        ] {
            for s in from.drain(..) {
                if self.seen.insert((s.principal.clone(), s.message.clone())) {
                    to.push(s);
                }
            }
        }
    }
}

impl Survey {
    /// Puts the skips where a refusal's report shows them (with the plan it refused).
    pub fn show_skips(&mut self) {
        self.kept.skipped = self.skips.skipped.clone();
        self.kept.filter_failures = self.skips.filter_failures.clone();
    }

    /// Takes in a page's plan (its skips are taken out of it).
    fn add(&mut self, plan: &mut Plan, context: &HashSet<Uuid>) {
        self.pages += 1;
        for a in &plan.actions {
            counts::add(&mut self.counts, a.count_key(), 1);
        }
        self.skips.add(plan);
        let keep = |a: &&Action| match a {
            Action::Create { resource_id, .. } | Action::Adopt { resource_id, .. } => {
                context.contains(resource_id)
            }
            other => takes_away(other),
        };
        self.kept.actions.extend(plan.actions.iter().filter(keep).cloned());
        self.weighed.extend(plan.actions.iter().filter(|a| takes_away(a)).map(hold::key));
    }
}

impl Run<'_> {
    /// The plan of one page, over its scoped read: it acts only on the page's own principals.
    /// The read becomes the run's current state (what `apply` records against).
    pub(super) async fn plan_page(&mut self, page: &Page) -> Result<Plan, SyncError> {
        let scope = page.scope();
        let (snapshot, mut state, whole_groups) = read(self.store, &scope).await?;
        // A dry full run's drift repair, which it did not write.
        self.drift.apply_to(&mut state);
        let plan_scope = scope.plan_scope(&whole_groups);
        // Weighed against the whole record by the survey, not page by page.
        let unweighed = RecordTotals::default();
        // What a change run would widen (a group created, a principal deleted) is decided in
        // that principal's own page, and every membership in its user's page.
        let (mut plan, _widen) =
            plan::plan_scoped(&snapshot, &state, &self.policy, &plan_scope, &unweighed);
        let ids: HashSet<Uuid> = page.ids.iter().copied().collect();
        plan.actions.retain(|a| page.owns(&ids, a));
        self.snapshot = snapshot;
        self.state = state;
        self.scope = Some(scope);
        if !self.dry_run {
            self.apply.reset(&self.state);
        }
        Ok(plan)
    }

    /// Reads the principals the access plan reads (`context`), and only those, as the run's
    /// current state: what the access plan is made against.
    pub(super) async fn read_context(&mut self, context: &[Uuid]) -> Result<(), SyncError> {
        let scope = Scope::of(&ChangeSet::default(), context.iter().copied());
        let (snapshot, mut state, _) = read(self.store, &scope).await?;
        self.drift.apply_to(&mut state);
        self.snapshot = snapshot;
        self.state = state;
        self.scope = Some(scope);
        if !self.dry_run {
            self.apply.reset(&self.state);
        }
        Ok(())
    }

    /// Plans every page and keeps what must be judged before anything changes. `each` sees
    /// every page's plan (a dry run's report is made of them).
    pub(super) async fn survey(
        &mut self,
        context: &HashSet<Uuid>,
        mut each: impl AsyncPageSink,
    ) -> Result<Survey, SyncError> {
        let mut survey = Survey::default();
        let mut pages = Pages::new(self.page_size);
        tracing::info!("sync: planning the directory page by page");
        while let Some(page) = pages.next(self.store).await? {
            self.check_stop()?;
            // A real run's survey of 100,000 users takes seconds: what the IdP changes
            // meanwhile goes out between its pages (a dry run's lane is never due).
            self.follow_lane(false).await?;
            let mut plan = self.plan_page(&page).await?;
            each.page(self, &mut plan).await?;
            survey.add(&mut plan, context);
        }
        // Weighed against the whole record, and each group's removals against its members.
        weigh(self.store, &mut survey.kept).await?;
        tracing::info!(
            pages = survey.pages,
            actions = survey.counts.values().sum::<u64>(),
            "sync: planned the directory"
        );
        Ok(survey)
    }

    /// The survey's deletes, planned again over a read of those principals alone (a principal
    /// the IdP brought back since is no longer deleted) and applied before the rest, so that a
    /// name the IdP freed is free when the create that wants it comes.
    pub(super) async fn delete_first(&mut self, survey: &Survey) -> Result<(), SyncError> {
        let (mut users, mut groups) = (BTreeSet::new(), BTreeSet::new());
        let mut surveyed = HashSet::new();
        for a in &survey.kept.actions {
            if let Action::Delete { kind, resource_id, .. } = a {
                surveyed.insert(hold::key(a));
                match kind {
                    ResourceKind::User => users.insert(*resource_id),
                    ResourceKind::Group => groups.insert(*resource_id),
                };
            }
        }
        for (kind, ids) in [(ResourceKind::Group, groups), (ResourceKind::User, users)] {
            let ids: Vec<Uuid> = ids.into_iter().collect();
            for chunk in ids.chunks(self.page_size.max(1) as usize) {
                self.follow_lane(false).await?;
                let page = Page { kind, ids: chunk.to_vec() };
                let mut plan = self.plan_page(&page).await?;
                if self.holding {
                    hold::split(&mut plan, &self.approved);
                }
                for action in plan.actions.iter().filter(|a| surveyed.contains(&hold::key(a))) {
                    self.check_stop()?;
                    self.apply.one(action).await?;
                }
            }
        }
        Ok(())
    }

    /// Plans each page again and applies it (`updates_only`: the closing pass, for what could
    /// only be planned once this run's creates had AWS ids). What the IdP changes meanwhile is
    /// pushed between actions ([`Self::push_pending`]), and the page then planned again. A
    /// delete or removal the survey did not see is weighed with the survey's before it goes:
    /// Some(refusal) when the delete guard refuses them.
    pub(super) async fn apply_pages(
        &mut self,
        survey: &mut Survey,
        skips: &mut Skips,
        updates_only: bool,
        force: bool,
        progress: &dyn Progress,
    ) -> Result<Option<String>, SyncError> {
        let mut pages = Pages::new(self.page_size);
        while let Some(page) = pages.next(self.store).await? {
            // Pages with nothing to do pass quickly, but 50 of them still take seconds.
            if !updates_only {
                self.check_stop()?;
                self.follow_lane(force).await?;
            }
            'page: loop {
                let mut plan = self.plan_page(&page).await?;
                let unseen: Vec<Action> = plan
                    .actions
                    .iter()
                    .filter(|a| takes_away(a) && !survey.weighed.contains(&hold::key(a)))
                    .cloned()
                    .collect();
                if !unseen.is_empty() && !updates_only {
                    survey.weighed.extend(unseen.iter().map(hold::key));
                    survey.kept.actions.extend(unseen);
                    if let Some(refusal) =
                        guard::principals(&survey.kept, &self.window, self.settings, force)
                    {
                        return Ok(Some(refusal));
                    }
                }
                if self.holding {
                    let held = hold::split(&mut plan, &self.approved);
                    let known: HashSet<String> = self.held.iter().map(|h| h.key.clone()).collect();
                    self.held.extend(held.into_iter().filter(|h| !known.contains(&h.key)));
                }
                skips.add(&mut plan);
                for action in &plan.actions {
                    if updates_only && !matches!(action, Action::Update { .. }) {
                        continue;
                    }
                    self.check_stop()?;
                    self.apply.one(action).await?;
                    progress.step();
                    if !updates_only && self.follow_lane(force).await? {
                        // What was pushed may have changed this page too.
                        continue 'page;
                    }
                }
                break;
            }
        }
        Ok(None)
    }

    /// Pushes what the IdP changed since the run began (the journal rows after the lane's
    /// covered head), planned as a change run plans them, between the steps of a long run.
    /// Changes that cannot be planned apart (too many) are left to the pages and the next run;
    /// so is a plan the delete guard would refuse (the next run refuses it). A write PostgreSQL
    /// makes visible late, below the covered head, stays pending for the next run.
    pub(super) async fn push_pending(&mut self, force: bool) -> Result<(), SyncError> {
        let head = self.store.journal_head().await?;
        let rows = self.lane.take_rows(self.store, head).await?;
        if rows.is_empty() || rows.len() as i64 >= PRIORITY_ROWS {
            return Ok(());
        }
        let changed: HashSet<Uuid> =
            rows.iter().filter_map(|r| r.resource_id.parse().ok()).collect();
        let unknown = ChangeSet::unknown_members(&rows);
        let kinds: HashMap<_, _> = self.store.kinds_of(&unknown).await?.into_iter().collect();
        let changes = ChangeSet::from_journal(&rows, &kinds);
        if changes.len() > MAX_CHANGED_RESOURCES {
            return Ok(());
        }
        let Some(scoped) = self.plan_scope_of(&changes).await? else { return Ok(()) };
        let mut plan = scoped.plan;
        self.snapshot = scoped.snapshot;
        self.state = scoped.state;
        self.scope = Some(scoped.scope);
        self.apply.reset(&self.state);
        if guard::principals(&plan, &self.window_now(), self.settings, force).is_some() {
            return Ok(());
        }
        if self.holding {
            // Held against the run's whole set: what this push would take away waits.
            hold::split(&mut plan, &self.approved);
        }
        let (urgent, rest) = prioritise(plan.actions, &changed);
        tracing::info!(
            actions = urgent.len() + rest.len(),
            "sync: pushing changes made during the run"
        );
        for action in urgent.iter().chain(&rest) {
            self.check_stop()?;
            self.apply.one(action).await?;
        }
        Ok(())
    }
}

/// What sees each page's plan in the survey.
pub(super) trait AsyncPageSink {
    async fn page(&mut self, run: &mut Run<'_>, plan: &mut Plan) -> Result<(), SyncError>;
}

/// A real run's survey looks at nothing more.
pub(super) struct NoSink;

impl AsyncPageSink for NoSink {
    async fn page(&mut self, _: &mut Run<'_>, _: &mut Plan) -> Result<(), SyncError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::store::tests::{ctx, stores};
    use crate::store::{IfMatch, Load, NewResource, PatchPlan, Trigger};
    use crate::sync::run::{RunOptions, SyncConfig, run};
    use crate::sync::target::fake::FakeAws;
    use scim_schema::patch::MemberChange;
    use scim_schema::resource::MemberRef;
    use serde_json::json;
    use std::time::Duration;

    /// Adds `user` to `group` at the IdP once the survey has planned its first page.
    struct JoinAfterFirstPage {
        source: i64,
        group: String,
        user: String,
        pages: usize,
    }

    impl AsyncPageSink for JoinAfterFirstPage {
        async fn page(&mut self, run: &mut Run<'_>, _: &mut Plan) -> Result<(), SyncError> {
            self.pages += 1;
            if self.pages == 1 {
                let add = vec![MemberChange::Add(vec![MemberRef {
                    value: self.user.clone(),
                    member_type: None,
                }])];
                let patcher = move |_: &serde_json::Value| {
                    Ok(PatchPlan { doc: None, member_changes: add.clone() })
                };
                run.store
                    .patch(
                        &ctx(self.source),
                        ResourceKind::Group,
                        &self.group,
                        &IfMatch::None,
                        &patcher,
                        Load::default(),
                    )
                    .await
                    .expect("patch the group");
            }
            Ok(())
        }
    }

    /// A real full run's survey plans every page before it applies any (seconds at 100,000
    /// users): a membership the IdP adds meanwhile goes out between its pages.
    #[tokio::test]
    async fn a_real_runs_survey_pushes_what_the_idp_changes_between_its_pages() {
        for t in stores().await {
            let s = &*t.store;
            let name = crate::names::SourceName::parse("okta").unwrap();
            let source = s.upsert_source(&name, None).await.expect("source").id;
            let mut users = Vec::new();
            for n in 0..4 {
                let doc = json!({"userName": format!("u{n}@example.com")});
                let new = NewResource { doc, members: None };
                users.push(s.create(&ctx(source), ResourceKind::User, &new).await.unwrap().id);
            }
            let members = Some(vec![MemberRef { value: users[0].clone(), member_type: None }]);
            let new = NewResource { doc: json!({"displayName": "Team"}), members };
            let group = s.create(&ctx(source), ResourceKind::Group, &new).await.unwrap().id;
            let mut settings = Settings::default();
            settings.sync.debounce_seconds = 0;
            let mut config = SyncConfig::from_settings(&settings).expect("config");
            config.page_size = 1;
            config.timings.look_every = Duration::ZERO;
            let aws = FakeAws::new();
            let first = RunOptions { trigger: Trigger::Change, ..RunOptions::default() };
            run(s, &aws, &config, &first).await.expect("the first run");
            let full = RunOptions { full: true, trigger: Trigger::Admin, ..RunOptions::default() };
            let mut r = Run::start(s, &aws, &config, &full, Uuid::now_v7(), true).await.unwrap();
            let last = users[3].clone();
            let sink = JoinAfterFirstPage { source, group, user: last, pages: 0 };
            r.survey(&HashSet::new(), sink).await.expect("the survey");
            let world = aws.world();
            let members: BTreeSet<&str> = world
                .memberships
                .values()
                .map(|(_, user)| world.users[user].name.as_str())
                .collect();
            assert_eq!(
                members,
                BTreeSet::from(["u0@example.com", "u3@example.com"]),
                "{}: the membership waited for the survey",
                s.backend()
            );
            t.drop_database().await;
        }
    }
}
