//! `scimbridge show user NAME` / `show group NAME`: one resource as an admin asks about it on
//! day two — the SCIM resource, its source, its AWS id and who owns it there, when the bridge
//! last pushed it, its memberships, and the sync failures recorded for it. Read-only.

use crate::exit;
use crate::names::{self, NameKey};
use crate::store::{AuditQuery, ListQuery, Load, Store, StoredResource, format_timestamp};
use scim_schema::filter::{AttrPath, CompValue, CompareOp, Filter};
use scim_schema::schema::ResourceKind;
use serde_json::{Value, json};

/// How many of the recorded runs are searched for failures of the resource.
const RUNS_SEARCHED: i64 = 50;
/// At most this many failures are shown, newest first.
const FAILURES_SHOWN: usize = 10;

/// What was found for one name; [`Shown::to_json`] is what `--json` prints.
pub struct Shown {
    kind: ResourceKind,
    source: String,
    resource: Value,
    aws: Option<Aws>,
    /// The first `limit` memberships (a user's groups, a group's members), by name.
    memberships: Vec<Membership>,
    membership_total: usize,
    last_push: Option<Push>,
    failures: Vec<Failure>,
}

struct Aws {
    id: String,
    ownership: crate::store::Ownership,
}

struct Membership {
    id: String,
    name: String,
    /// The bridge recorded this membership as made in AWS.
    in_aws: bool,
}

struct Push {
    at: String,
    action: String,
    run_id: String,
}

struct Failure {
    run_id: String,
    at: String,
    dry_run: bool,
    principal: String,
    message: String,
}

/// Finds the resource of `kind` named `name` (userName / displayName, compared in the
/// store's folded form). A name is held by one source at most (the store keeps names unique
/// across sources), so `source` only makes sure it is that one. Not found, or held by
/// another source than `source`: a runtime "not found" (exit 1, as `token revoke` of an
/// unknown id); an unknown `source`: a usage error naming the sources (exit 2).
pub async fn find(
    store: &dyn Store,
    kind: ResourceKind,
    name: &str,
    source: Option<&str>,
    limit: usize,
) -> anyhow::Result<Shown> {
    let name = names::normalize(name);
    let sources = store.list_sources().await?;
    if let Some(wanted) = source
        && !sources.iter().any(|s| s.name == wanted)
    {
        let known: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        return Err(exit::usage(format!(
            "--source: no source named {wanted:?} (sources: {})",
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        )));
    }
    let attribute = match kind {
        ResourceKind::User => "userName",
        ResourceKind::Group => "displayName",
    };
    let query = ListQuery {
        filter: Some(Filter::Compare(
            AttrPath::new(attribute),
            CompareOp::Eq,
            CompValue::String(name.clone()),
        )),
        sort_by: None,
        descending: false,
        start_index: 1,
        count: 1,
        load: Load { members: kind == ResourceKind::Group, groups: kind == ResourceKind::User },
    };
    let mut found = None;
    for s in &sources {
        let page = store.list(s.id, kind, &query).await?;
        if let Some(r) = page.resources.into_iter().next() {
            found = Some((s.name.to_string(), r));
            break;
        }
    }
    let what = kind.name().to_lowercase();
    let (source, resource): (String, StoredResource) = match (found, source) {
        (None, None) => anyhow::bail!("no {what} with {attribute} {name:?}"),
        (None, Some(wanted)) => {
            anyhow::bail!("no {what} with {attribute} {name:?} in source {wanted}")
        }
        (Some((holder, _)), Some(wanted)) if holder != wanted => anyhow::bail!(
            "no {what} with {attribute} {name:?} in source {wanted} (source {holder} holds that name)"
        ),
        (Some(found), _) => found,
    };
    let resource_id: uuid::Uuid = resource.id.parse()?;
    // The record of this principal and of its memberships only, never the whole record.
    let aws = store
        .recorded(&[resource_id], &[])
        .await?
        .into_iter()
        .find(|p| p.kind == kind)
        .map(|p| Aws { id: p.aws_id, ownership: p.ownership });
    let recorded: std::collections::HashSet<uuid::Uuid> = match kind {
        ResourceKind::User => {
            let seeds = crate::store::ScopeSeeds {
                users: [resource_id].into(),
                ..crate::store::ScopeSeeds::default()
            };
            let read = store.scope(&seeds).await?;
            read.state
                .memberships
                .iter()
                .filter(|m| m.user_id == resource_id)
                .map(|m| m.group_id)
                .collect()
        }
        ResourceKind::Group => store
            .recorded_members(resource_id)
            .await?
            .into_iter()
            .map(|m| m.membership.user_id)
            .collect(),
    };
    let in_aws = |other: &str| other.parse::<uuid::Uuid>().is_ok_and(|o| recorded.contains(&o));
    let mut memberships: Vec<Membership> = match kind {
        ResourceKind::User => resource
            .groups
            .iter()
            .flatten()
            .map(|g| Membership { id: g.value.clone(), name: g.display.clone(), in_aws: false })
            .collect(),
        ResourceKind::Group => resource
            .members
            .iter()
            .flatten()
            .map(|m| Membership {
                id: m.value.clone(),
                name: m.display.clone().unwrap_or_default(),
                in_aws: false,
            })
            .collect(),
    };
    memberships.sort_by_cached_key(|m| NameKey::of(&m.name));
    let membership_total = memberships.len();
    memberships.truncate(limit);
    for m in &mut memberships {
        m.in_aws = in_aws(&m.id);
    }
    let last_push = match &aws {
        Some(a) => last_push(store, &a.id).await?,
        None => None,
    };
    let failures = failures(store, &name).await?;
    let base = "/scim/v2";
    Ok(Shown {
        kind,
        source,
        resource: crate::scim::render::render(&resource, base),
        aws,
        memberships,
        membership_total,
        last_push,
        failures,
    })
}

/// The newest audit entry of the AWS principal: what the bridge last did to it, and when.
async fn last_push(store: &dyn Store, aws_id: &str) -> anyhow::Result<Option<Push>> {
    let mut query = AuditQuery { since: chrono::DateTime::UNIX_EPOCH, after_seq: 0, limit: 10_000 };
    let mut newest = None;
    loop {
        let page = store.list_audit(&query).await?;
        let Some(last) = page.last() else { break };
        query.after_seq = last.seq;
        if let Some(e) = page.iter().rev().find(|e| e.aws_id.as_deref() == Some(aws_id)) {
            newest = Some(Push {
                at: format_timestamp(&e.at),
                action: e.action.clone(),
                run_id: e.run_id.to_string(),
            });
        }
    }
    Ok(newest)
}

/// The errors the recent runs recorded for the name: as the principal, or as the group or
/// the user of a membership (`group / user`).
async fn failures(store: &dyn Store, name: &str) -> anyhow::Result<Vec<Failure>> {
    let key = NameKey::of(name);
    let mut out = Vec::new();
    for run in store.list_runs(RUNS_SEARCHED).await? {
        let errors =
            run.report.get("errors").and_then(Value::as_array).cloned().unwrap_or_default();
        for e in errors {
            let principal = e.get("principal").and_then(Value::as_str).unwrap_or_default();
            let concerns = NameKey::of(principal) == key
                || principal.split(" / ").any(|part| NameKey::of(part) == key);
            if concerns && out.len() < FAILURES_SHOWN {
                out.push(Failure {
                    run_id: run.id.to_string(),
                    at: format_timestamp(&run.started_at),
                    dry_run: run.dry_run,
                    principal: principal.to_owned(),
                    message: e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                });
            }
        }
    }
    Ok(out)
}

impl Shown {
    pub fn to_json(&self) -> Value {
        let memberships_key = match self.kind {
            ResourceKind::User => "groups",
            ResourceKind::Group => "members",
        };
        json!({
            "kind": self.kind.name(),
            "source": self.source,
            "resource": self.resource,
            "aws": self.aws.as_ref().map(|a| json!({"id": a.id, "ownership": a.ownership.as_str()})),
            "last_push": self.last_push.as_ref().map(|p| json!({"at": p.at, "action": p.action, "run_id": p.run_id})),
            memberships_key: {
                "total": self.membership_total,
                "first": self.memberships.iter().map(|m| json!({"id": m.id, "name": m.name, "in_aws": m.in_aws})).collect::<Vec<_>>(),
            },
            "failures": self.failures.iter().map(|f| json!({
                "run_id": f.run_id, "at": f.at, "dry_run": f.dry_run,
                "principal": f.principal, "message": f.message,
            })).collect::<Vec<_>>(),
        })
    }

    /// The text report: a few labelled lines, then the resource as indented JSON.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        let name = self.resource.get(match self.kind {
            ResourceKind::User => "userName",
            ResourceKind::Group => "displayName",
        });
        out.push(format!(
            "{} {}",
            self.kind.name(),
            name.and_then(Value::as_str).unwrap_or_default()
        ));
        out.push(format!("  source:     {}", self.source));
        out.push(format!("  id:         {}", self.resource["id"].as_str().unwrap_or_default()));
        match &self.aws {
            Some(a) => {
                let owner = match a.ownership {
                    crate::store::Ownership::Adopted => {
                        "adopted (it existed in AWS; the bridge took it over)"
                    }
                    crate::store::Ownership::Created => "created by the bridge",
                };
                out.push(format!("  aws id:     {}", a.id));
                out.push(format!("  ownership:  {owner}"));
            }
            None => out.push(
                "  aws id:     - (not in AWS: not synced yet, filtered out, or failed)".to_owned(),
            ),
        }
        out.push(match &self.last_push {
            Some(p) => format!("  last push:  {} ({}, run {})", p.at, p.action, p.run_id),
            None => "  last push:  never".to_owned(),
        });
        let label = match self.kind {
            ResourceKind::User => "groups",
            ResourceKind::Group => "members",
        };
        let shown = if self.memberships.len() < self.membership_total {
            format!(" (first {})", self.memberships.len())
        } else {
            String::new()
        };
        out.push(format!(
            "  {label}:{:width$}{}{shown}",
            "",
            self.membership_total,
            width = 11 - label.len()
        ));
        for m in &self.memberships {
            let aws = if m.in_aws { "in AWS" } else { "not in AWS" };
            out.push(format!("    {}  {}  ({aws})", m.name, m.id));
        }
        if self.failures.is_empty() {
            out.push("  failures:   none recorded".to_owned());
        } else {
            out.push(format!("  failures:   {}", self.failures.len()));
            for f in &self.failures {
                let dry = if f.dry_run { " (dry run)" } else { "" };
                out.push(format!(
                    "    {} run {}{dry}: {}: {}",
                    f.at, f.run_id, f.principal, f.message
                ));
            }
        }
        out.push("  resource:".to_owned());
        let pretty = serde_json::to_string_pretty(&self.resource).unwrap_or_default();
        out.extend(pretty.lines().map(|l| format!("    {l}")));
        out.join("\n")
    }
}
