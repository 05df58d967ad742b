//! The status report: `GET /admin/v1/status` and `scimbridge status --json` give the same
//! object, read from the database (so every replica and the CLI agree), and `scimbridge status`
//! prints it as lines.

use crate::config::Settings;
use crate::store::{RunRecord, Store, StoreError, format_timestamp};
use crate::sync::health;
use serde_json::{Value, json};

/// The run as `scimbridge sync --json` prints it, plus when it started and finished.
pub fn run_json(r: &RunRecord) -> Value {
    let mut v = r.report.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("status".into(), json!(r.status));
        o.insert("started_at".into(), json!(format_timestamp(&r.started_at)));
        o.insert("finished_at".into(), json!(r.finished_at.as_ref().map(format_timestamp)));
        // Recorded with the run; a run recorded before its report carried it has it only here.
        if o.get("rules_fingerprint").is_none_or(Value::is_null) {
            o.insert("rules_fingerprint".into(), json!(r.rules_fingerprint));
        }
    }
    v
}

/// Sources with their resource counts, what the bridge manages in AWS, the change-journal rows
/// not yet covered by a finished run and the resources not yet covered by a succeeded one, the
/// last run, and the sync's health. `enabled`: whether
/// this replica (or, for the CLI, its config) syncs by itself.
pub async fn report(
    store: &dyn Store,
    settings: &Settings,
    enabled: bool,
) -> Result<Value, StoreError> {
    let (sources, counts, last) =
        (store.list_sources().await?, store.sync_counts().await?, store.list_runs(1).await?);
    let pending = store.pending_summary().await?;
    let sources: Vec<Value> = sources
        .iter()
        .map(|s| {
            let (users, groups) = counts
                .per_source
                .iter()
                .find(|(id, _, _)| *id == s.id)
                .map_or((0, 0), |(_, u, g)| (*u, *g));
            json!({
                "name": s.name, "compat": s.compat, "detected_compat": s.detected_compat,
                "users": users, "groups": groups,
            })
        })
        .collect();
    let sync = &settings.sync;
    let reading = health::read(store, enabled).await?;
    let next_run = enabled
        .then(|| crate::sync::scheduler::next_full_run(&sync.schedule))
        .flatten()
        .map(|t| format_timestamp(&t));
    Ok(json!({
        "database": store.backend(),
        "sync": {
            "enabled": enabled,
            "state": reading.health.state,
            "healthy": reading.health.reason.healthy(),
            "reason": reading.health.reason,
            "schedule": sync.schedule,
            "debounce_seconds": sync.debounce_seconds,
            "next_run": next_run,
            "last_error": reading.record.failure,
            "identity_store": reading.record.identity_store,
            "paused": crate::sync::control::pause_json(reading.paused.as_ref()),
            "pending_approvals": reading.open_holds.iter().map(crate::sync::control::hold_json).collect::<Vec<_>>(),
            "rules_fingerprint": crate::sync::fingerprint::of(settings),
        },
        "sources": sources,
        "aws": {
            "users": counts.aws_users,
            "groups": counts.aws_groups,
            "memberships": counts.aws_memberships,
            "account_assignments": counts.aws_account_assignments,
            "application_assignments": counts.aws_application_assignments,
        },
        "pending_journal_entries": counts.pending_journal_entries,
        "pending_resources": pending.count,
        "last_run": last.first().map(run_json),
    }))
}

/// `scimbridge status` without `--json`: the report as `label: value` lines.
pub fn text(report: &Value) -> Vec<String> {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let sync = &report["sync"];
    let mut lines = Vec::new();
    let health = if sync["healthy"] == true {
        "healthy".to_owned()
    } else {
        format!("not healthy: {}", s(&sync["reason"]))
    };
    let enabled = if sync["enabled"] == true { "on" } else { "off in this config" };
    lines.push(format!("sync:              {} ({health}; sync {enabled})", s(&sync["state"])));
    let error = &sync["last_error"];
    if error.is_object() {
        lines.push(format!(
            "last error:        {} {}: {}",
            s(&error["at"]),
            s(&error["kind"]),
            s(&error["message"])
        ));
    } else {
        lines.push("last error:        none".to_owned());
    }
    lines.push(format!(
        "next full run:     {} (schedule {})",
        s(&sync["next_run"]),
        sync["schedule"]
    ));
    let store = &sync["identity_store"];
    if store.is_object() {
        lines.push(format!(
            "identity store:    {} (instance {}, Region {}; in use since {})",
            s(&store["id"]),
            s(&store["instance_arn"]),
            s(&store["region"]),
            s(&store["connected_at"])
        ));
    } else {
        lines.push(
            "identity store:    - (no serving replica has set up its AWS clients yet)".to_owned(),
        );
    }
    let paused = &sync["paused"];
    lines.push(if paused.is_object() {
        format!(
            "paused:            since {}, by {} ({})",
            s(&paused["since"]),
            s(&paused["by"]),
            s(&paused["reason"])
        )
    } else {
        "paused:            no".to_owned()
    });
    let pending: Vec<String> = sync["pending_approvals"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    let held: Vec<String> = p["held"]
                        .as_object()
                        .map(|o| o.iter().map(|(k, n)| format!("{n} {k}")).collect())
                        .unwrap_or_default();
                    format!("run {} {} ({})", s(&p["run_id"]), s(&p["status"]), held.join(", "))
                })
                .collect()
        })
        .unwrap_or_default();
    lines.push(format!(
        "pending approvals: {}",
        if pending.is_empty() { "none".to_owned() } else { pending.join(", ") }
    ));
    lines.push(format!(
        "rules:             {}",
        crate::sync::fingerprint::short(sync["rules_fingerprint"].as_str().unwrap_or("-"))
    ));
    let last = &report["last_run"];
    if last.is_object() {
        lines.push(format!(
            "last run:          {} {} ({}, started {}, finished {})",
            s(&last["run_id"]),
            s(&last["status"]),
            s(&last["trigger"]),
            s(&last["started_at"]),
            s(&last["finished_at"])
        ));
    } else {
        lines.push("last run:          none".to_owned());
    }
    lines.push(format!("pending changes:   {}", report["pending_journal_entries"]));
    lines.push(format!("pending resources: {}", report["pending_resources"]));
    lines.push(format!("database:          {}", s(&report["database"])));
    let aws = &report["aws"];
    lines.push(format!(
        "managed in AWS:    {} users, {} groups, {} memberships, {} account and {} application assignments",
        aws["users"],
        aws["groups"],
        aws["memberships"],
        aws["account_assignments"],
        aws["application_assignments"]
    ));
    let sources = report["sources"].as_array().cloned().unwrap_or_default();
    if sources.is_empty() {
        lines.push("sources:           none".to_owned());
    }
    for (i, src) in sources.iter().enumerate() {
        let compat = match (src["compat"].as_str(), src["detected_compat"].as_str()) {
            (Some("auto"), Some(detected)) => format!("auto:{detected}"),
            (compat, _) => compat.unwrap_or("-").to_owned(),
        };
        lines.push(format!(
            "{}{} (compat {compat}): {} users, {} groups",
            if i == 0 { "sources:           " } else { "                   " },
            s(&src["name"]),
            src["users"],
            src["groups"]
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_the_state_the_error_and_the_store() {
        let report = json!({
            "database": "sqlite",
            "sync": {
                "enabled": true, "state": "unreachable", "healthy": false, "reason": "unreachable",
                "schedule": "0 0 3 * * *", "debounce_seconds": 5,
                "next_run": "2026-12-08T03:00:00.000000Z",
                "last_error": {"kind": "unreachable", "message": "ListInstances: AWS not reachable",
                               "at": "2026-12-07T10:00:00.000000Z", "run_id": null},
                "identity_store": {"id": "d-1234567890", "instance_arn": "arn:aws:sso:::instance/ssoins-1",
                                   "region": "us-east-1", "connected_at": "2026-12-06T10:00:00.000000Z"},
                "paused": null, "pending_approvals": [],
                "rules_fingerprint": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            },
            "sources": [{"name": "okta", "compat": "auto", "detected_compat": "okta", "users": 2, "groups": 1}],
            "aws": {"users": 2, "groups": 1, "memberships": 2, "account_assignments": 0, "application_assignments": 0},
            "pending_journal_entries": 0,
            "pending_resources": 3,
            "last_run": null,
        });
        let lines = text(&report);
        let line = |label: &str| {
            lines
                .iter()
                .find(|l| l.starts_with(label))
                .cloned()
                .unwrap_or_else(|| panic!("{label}: {lines:?}"))
        };
        assert_eq!(
            line("sync:"),
            "sync:              unreachable (not healthy: unreachable; sync on)"
        );
        assert!(line("last error:").ends_with(
            "2026-12-07T10:00:00.000000Z unreachable: ListInstances: AWS not reachable"
        ));
        assert!(line("next full run:").contains("2026-12-08T03:00:00.000000Z"));
        assert!(
            line("identity store:").contains(
                "d-1234567890 (instance arn:aws:sso:::instance/ssoins-1, Region us-east-1"
            )
        );
        assert_eq!(line("pending approvals:"), "pending approvals: none");
        assert_eq!(line("rules:"), "rules:             0123456789ab");
        assert_eq!(line("last run:"), "last run:          none");
        assert_eq!(line("pending resources:"), "pending resources: 3");
        assert_eq!(
            line("sources:"),
            "sources:           okta (compat auto:okta): 2 users, 1 groups"
        );
    }
}
