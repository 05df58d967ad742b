//! Sync control (issue 14): the pause every replica obeys and the destructive actions runs
//! held for approval.

use super::{Timestamp, serialize_timestamp};
use serde::Serialize;
use serde_json::Value;

/// Sync is paused (`sync_pause`): no replica starts a run until it is resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncPause {
    #[serde(serialize_with = "serialize_timestamp")]
    pub since: Timestamp,
    pub reason: Option<String>,
    /// `cli`, or `admin:<token id>`.
    pub by: String,
}

/// Where a run's held destructive actions stand (`sync_holds.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// Waiting for an admin's approval.
    Pending,
    /// Approved: the next real run applies those of the actions that are still planned.
    Approved,
    /// A run applied the approved actions (those still planned).
    Applied,
    /// A later run held a different set; that one is what an admin approves now.
    Superseded,
}

text_enum!(
    HoldState,
    "hold state",
    Pending = "pending",
    Approved = "approved",
    Applied = "applied",
    Superseded = "superseded"
);

/// The destructive actions one run held for approval (`sync_holds`).
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub run_id: uuid::Uuid,
    pub held_at: Timestamp,
    pub state: HoldState,
    /// What an approval lets go: each held action's key (`sync::hold::key`).
    pub action_keys: Vec<String>,
    /// The held actions as the run report lists them (at most `sync::hold::SHOWN`).
    pub actions: Vec<Value>,
    pub approved_at: Option<Timestamp>,
    /// `cli`, or `admin:<token id>`.
    pub approved_by: Option<String>,
    pub closed_at: Option<Timestamp>,
    /// The run that applied the approved actions, or whose hold superseded this one.
    pub closed_by_run: Option<uuid::Uuid>,
}
