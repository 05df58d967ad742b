//! What an admin does to the sync itself, from the CLI or the admin API alike: pause and resume
//! it (stored in the database, so every replica obeys and a restart keeps it), and approve the
//! destructive actions a run held (`[sync] approve_destructive`). Each is audited.

use crate::store::{AuditRow, Hold, HoldState, Store, StoreError, SyncPause, format_timestamp};
use serde_json::{Value, json};
use uuid::Uuid;

/// The longest pause reason accepted (characters).
pub const MAX_REASON: usize = 500;

/// The reason as stored (trimmed; empty is none), or why it is refused.
pub fn reason(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(r) = raw.map(str::trim).filter(|r| !r.is_empty()) else { return Ok(None) };
    if r.chars().count() > MAX_REASON {
        return Err(format!("the reason is longer than {MAX_REASON} characters"));
    }
    if r.chars().any(char::is_control) {
        return Err("the reason must not contain control characters (line breaks, tabs)".into());
    }
    Ok(Some(r.to_owned()))
}

/// Audit rows of sync control name no run: they carry the nil run id.
fn audit(action: &str, name: &str, run_id: Uuid, detail: Value) -> AuditRow {
    AuditRow {
        at: crate::store::now(),
        run_id,
        action: action.to_owned(),
        kind: "Sync".to_owned(),
        name: name.to_owned(),
        aws_id: None,
        detail: Some(detail),
    }
}

/// The outcome of a pause request.
#[derive(Debug, Clone)]
pub struct Paused {
    /// The pause in force.
    pub pause: SyncPause,
    /// False when sync was paused already: the first pause (its reason, who, when) stays.
    pub new: bool,
}

/// Pauses sync for every replica; a second pause keeps the first.
pub async fn pause(
    store: &dyn Store,
    reason: Option<String>,
    by: &str,
) -> Result<Paused, StoreError> {
    let asked = SyncPause { since: crate::store::now(), reason, by: by.to_owned() };
    let pause = store.pause_sync(&asked).await?;
    let new = pause == asked;
    if new {
        let detail = json!({"by": by, "reason": pause.reason});
        store.append_audit(&audit("pause", "sync", Uuid::nil(), detail)).await?;
        tracing::warn!(by, reason = pause.reason.as_deref().unwrap_or(""), "sync paused");
    }
    Ok(Paused { pause, new })
}

/// Ends the pause; the pause that was in force, if any.
pub async fn resume(store: &dyn Store, by: &str) -> Result<Option<SyncPause>, StoreError> {
    let ended = store.resume_sync().await?;
    if let Some(p) = &ended {
        let detail =
            json!({"by": by, "paused_since": format_timestamp(&p.since), "paused_by": p.by});
        store.append_audit(&audit("resume", "sync", Uuid::nil(), detail)).await?;
        tracing::info!(by, "sync resumed");
    }
    Ok(ended)
}

/// `since`, `reason`, `by`, or null: `sync.paused` in `GET /admin/v1/status`.
pub fn pause_json(pause: Option<&SyncPause>) -> Value {
    match pause {
        Some(p) => json!({"since": format_timestamp(&p.since), "reason": p.reason, "by": p.by}),
        None => Value::Null,
    }
}

/// How a paused sync is named in refusals: `since …, by …: reason`.
pub fn describe_pause(p: &SyncPause) -> String {
    let reason = p.reason.as_deref().map(|r| format!(": {r:?}")).unwrap_or_default();
    format!("sync is paused (since {}, by {}{reason})", format_timestamp(&p.since), p.by)
}

/// A run that did not start because sync is paused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}; `scimbridge sync resume` (or POST /admin/v1/sync/resume) ends the pause", describe_pause(.0))]
pub struct SyncPaused(pub SyncPause);

/// Why a run cannot be approved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApproveError {
    #[error("no sync run {0}")]
    UnknownRun(Uuid),
    #[error("run {0} held nothing: there is nothing to approve")]
    NothingHeld(Uuid),
    #[error(
        "run {run_id} was approved already ({at}, by {by}); the next sync run applies what it held \
         that is still planned (if the delete guard refused that run, run it with --force)"
    )]
    AlreadyApproved { run_id: Uuid, at: String, by: String },
    #[error("run {run_id}'s held actions were applied by run {by_run} already")]
    Applied { run_id: Uuid, by_run: String },
    #[error(
        "run {run_id}'s held actions were superseded by run {by_run}, which planned a different \
         set: approve the newest pending run (see GET /admin/v1/status, pending_approvals)"
    )]
    Superseded { run_id: Uuid, by_run: String },
}

impl ApproveError {
    /// The admin API's status: 404 for a run that does not exist, else 409 (the run's state
    /// does not allow it).
    pub fn status(&self) -> u16 {
        match self {
            ApproveError::UnknownRun(_) => 404,
            _ => 409,
        }
    }
}

/// Approves what run `run_id` held: the next real run (the one the caller starts) may apply
/// those of the actions that are still planned.
pub async fn approve(
    store: &dyn Store,
    run_id: Uuid,
    by: &str,
) -> Result<Result<Hold, ApproveError>, StoreError> {
    if store.get_run(run_id).await?.is_none() {
        return Ok(Err(ApproveError::UnknownRun(run_id)));
    }
    let at = crate::store::now();
    // Pending → approved only if nobody approved or superseded it meanwhile.
    let approved = store.approve_hold(run_id, by, at).await?;
    let Some(hold) = store.get_hold(run_id).await? else {
        return Ok(Err(ApproveError::NothingHeld(run_id)));
    };
    if !approved {
        let by_run = hold.closed_by_run.map(|r| r.to_string()).unwrap_or_default();
        return Ok(Err(match hold.state {
            HoldState::Applied => ApproveError::Applied { run_id, by_run },
            HoldState::Superseded => ApproveError::Superseded { run_id, by_run },
            HoldState::Approved | HoldState::Pending => ApproveError::AlreadyApproved {
                run_id,
                at: hold.approved_at.as_ref().map(format_timestamp).unwrap_or_default(),
                by: hold.approved_by.clone().unwrap_or_default(),
            },
        }));
    }
    let detail = json!({"by": by, "actions": hold.action_keys.len()});
    store.append_audit(&audit("approve", &run_id.to_string(), run_id, detail)).await?;
    tracing::info!(%run_id, by, actions = hold.action_keys.len(), "sync: held actions approved");
    Ok(Ok(hold))
}

/// The held actions of a hold, by report count key (`delete_user`: 2, …).
fn held_counts(hold: &Hold) -> Value {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for k in &hold.action_keys {
        let kind = match k.split(':').next().unwrap_or_default() {
            "delete" => match k.split(':').nth(1) {
                Some("User") => "delete_user",
                _ => "delete_group",
            },
            "remove_membership" => "remove_membership",
            _ => match k.split(':').nth(1) {
                Some("application") => "delete_application_assignment",
                _ => "delete_account_assignment",
            },
        };
        *counts.entry(kind.to_owned()).or_default() += 1;
    }
    json!(counts)
}

/// A hold as `GET /admin/v1/status` and a run's report show it.
pub fn hold_json(hold: &Hold) -> Value {
    json!({
        "run_id": hold.run_id,
        "status": hold.state,
        "held_at": format_timestamp(&hold.held_at),
        "held": held_counts(hold),
        "approved_at": hold.approved_at.as_ref().map(format_timestamp),
        "approved_by": hold.approved_by,
        "closed_by_run": hold.closed_by_run,
    })
}

/// The holds waiting for an admin or for the next run: `sync.pending_approvals` in
/// `GET /admin/v1/status`.
pub async fn pending_approvals_json(store: &dyn Store) -> Result<Value, StoreError> {
    Ok(Value::Array(store.open_holds().await?.iter().map(hold_json).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded_and_single_line() {
        assert_eq!(reason(None), Ok(None));
        assert_eq!(reason(Some("  ")), Ok(None));
        assert_eq!(reason(Some(" IdP migration ")), Ok(Some("IdP migration".into())));
        assert!(reason(Some(&"x".repeat(MAX_REASON))).is_ok());
        assert!(reason(Some(&"x".repeat(MAX_REASON + 1))).unwrap_err().contains("500"));
        assert!(reason(Some("a\nb")).unwrap_err().contains("control"));
    }
}
