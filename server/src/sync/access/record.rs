//! What is written to the access record (and the audit log) as assignment operations go:
//! an operation is recorded as `creating` / `deleting` before it is sent, then as done, put
//! back as it was when AWS refused it, or left for the next run to settle when the outcome is
//! unknown. The labels and details the audit log and the failures name assignments by.

use super::plan::{Assign, Unassign};
use super::run::AccessRun;
use crate::store::{
    AccessObject, AccessObjectKind, AssignmentKey, AssignmentKind, AssignmentRecord,
    AssignmentState, AuditRow, PrincipalType,
};
use crate::sync::target::{AwsError, OpState};
use serde_json::{Value, json};

impl AccessRun<'_> {
    pub(super) async fn audit(
        &self,
        action: &str,
        kind: &str,
        name: &str,
        aws_id: Option<&str>,
        detail: Value,
    ) -> anyhow::Result<()> {
        let row = AuditRow {
            at: crate::store::now(),
            run_id: self.run_id,
            action: action.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            aws_id: aws_id.map(str::to_owned),
            detail: Some(detail),
        };
        self.store.append_audit(&row).await?;
        Ok(())
    }

    /// Records the row, keeping the rule recorded for it.
    pub(super) async fn put_row(&mut self, row: AssignmentRecord) -> anyhow::Result<()> {
        self.put_row_by(row, None).await
    }

    /// Records the row as made by `rule` (the rule's key; None keeps the rule recorded): what
    /// the access report names as the rule behind an assignment.
    async fn put_row_by(
        &mut self,
        row: AssignmentRecord,
        rule: Option<&str>,
    ) -> anyhow::Result<()> {
        if !self.dry_run {
            self.store.put_assignment(&row, rule).await?;
        }
        self.state.assignments.retain(|r| r.key != row.key);
        self.state.assignments.push(row);
        Ok(())
    }

    pub(super) async fn remove_row(&mut self, key: &AssignmentKey) -> anyhow::Result<()> {
        if !self.dry_run {
            self.store.remove_assignment(key).await?;
        }
        self.state.assignments.retain(|r| &r.key != key);
        Ok(())
    }

    pub(super) async fn put_object(&mut self, object: AccessObject) -> anyhow::Result<()> {
        if !self.dry_run {
            self.store.put_access_object(&object).await?;
        }
        self.state.objects.retain(|o| !(o.kind == object.kind && o.name == object.name));
        self.state.objects.push(object);
        Ok(())
    }

    pub(super) async fn remove_object(
        &mut self,
        kind: AccessObjectKind,
        name: &str,
    ) -> anyhow::Result<()> {
        if !self.dry_run {
            self.store.remove_access_object(kind, name).await?;
        }
        self.state.objects.retain(|o| !(o.kind == kind && o.name == name));
        Ok(())
    }

    pub(super) fn object(&self, kind: AccessObjectKind, name: &str) -> Option<&AccessObject> {
        self.state.objects.iter().find(|o| o.kind == kind && o.name == name)
    }

    /// Records the operation as under way (`creating` / `deleting`) before it is sent: a
    /// process that dies mid-call leaves a row the next run settles. Returns that state.
    pub(super) async fn record_sending(&mut self, op: &Op) -> anyhow::Result<AssignmentState> {
        let before =
            if op.is_delete() { AssignmentState::Deleting } else { AssignmentState::Creating };
        let row = AssignmentRecord { key: op.key().clone(), state: before, request_id: None };
        self.put_row_by(row, op.rule()).await?;
        Ok(before)
    }

    /// An operation AWS answered with an error. When AWS refused it, it did nothing and the
    /// record goes back to what it was; otherwise (a timeout, a conflict after the retries) it
    /// is unknown whether AWS acted, so the row stays `creating` / `deleting` without a request
    /// id and the next run settles it by looking at what AWS holds — never taking its own
    /// create for someone else's. A failed create holds back the principal's deletes.
    pub(super) async fn not_done(&mut self, op: &Op, e: AwsError) -> anyhow::Result<()> {
        if refused(&e) {
            self.revert(op).await?;
        } else {
            tracing::warn!(key = ?op.key(), error = %e, "assignment operation outcome unknown; the next run settles it");
        }
        if !op.is_delete() {
            self.create_failed.insert(op.key().principal_id.clone());
        }
        self.absorb_item(op.label(), e)
    }

    /// The record as before an operation AWS refused.
    async fn revert(&mut self, op: &Op) -> anyhow::Result<()> {
        match op {
            Op::Create(..) => self.remove_row(op.key()).await,
            Op::Delete(u) => {
                let row = AssignmentRecord {
                    key: u.key.clone(),
                    state: AssignmentState::Created,
                    request_id: None,
                };
                self.put_row(row).await
            }
            Op::Settle(r) => {
                let deleting = r.state == AssignmentState::Deleting;
                self.settled(r.clone(), deleting).await
            }
        }
    }

    pub(super) async fn finish(&mut self, op: Op, state: OpState) -> anyhow::Result<()> {
        if let OpState::Failed(reason) = state {
            self.revert(&op).await?;
            if matches!(op, Op::Create(..)) {
                self.create_failed.insert(op.key().principal_id.clone());
            }
            let what = if op.is_delete() { "the delete" } else { "the create" };
            self.fail(op.label(), failed(what, &reason));
            return Ok(());
        }
        self.done_op(&op).await
    }

    /// Records and audits an operation AWS completed.
    pub(super) async fn done_op(&mut self, op: &Op) -> anyhow::Result<()> {
        let kind = op.key().kind;
        match op {
            Op::Create(a, key) => {
                let row = AssignmentRecord {
                    key: key.clone(),
                    state: AssignmentState::Created,
                    request_id: None,
                };
                self.put_row_by(row, Some(&a.rule)).await?;
                self.count(&format!("create_{}_assignment", kind.as_str()));
                self.audit(
                    "assign",
                    kind_name(kind),
                    &label_assign(a),
                    Some(&key.principal_id),
                    detail(a, key),
                )
                .await?;
            }
            Op::Delete(u) => {
                self.remove_row(&u.key).await?;
                self.count(&format!("delete_{}_assignment", kind.as_str()));
                let detail = json!({"target": u.key.target, "permission_set": u.permission_set,
                    "permission_set_arn": u.key.permission_set_arn, "principal_type": u.key.principal_type});
                self.audit(
                    "unassign",
                    kind_name(kind),
                    &label_unassign(u),
                    Some(&u.key.principal_id),
                    detail,
                )
                .await?;
            }
            Op::Settle(r) => {
                let exists = r.state != AssignmentState::Deleting;
                self.settled(r.clone(), exists).await?;
            }
        }
        // Done: no longer a failure of this run (a retry after a re-plan).
        let label = op.label();
        self.failures.retain(|f| f.principal != label);
        Ok(())
    }

    /// Records how an operation an earlier run left open ended: the assignment `exists` in AWS
    /// or not. Audited as recovered when it changed AWS.
    pub(super) async fn settled(
        &mut self,
        r: AssignmentRecord,
        exists: bool,
    ) -> anyhow::Result<()> {
        tracing::info!(key = ?r.key, exists, "sync: settled an assignment operation an earlier run left open");
        let deleting = r.state == AssignmentState::Deleting;
        let label = label_key(&r.key);
        let kind = kind_name(r.key.kind);
        let detail = json!({"target": r.key.target, "permission_set_arn": r.key.permission_set_arn,
            "principal_type": r.key.principal_type, "recovered": true});
        if exists {
            if !deleting {
                self.audit("assign", kind, &label, Some(&r.key.principal_id), detail).await?;
            }
            let row = AssignmentRecord { state: AssignmentState::Created, request_id: None, ..r };
            self.put_row(row).await
        } else {
            if deleting {
                self.audit("unassign", kind, &label, Some(&r.key.principal_id), detail).await?;
            }
            self.remove_row(&r.key).await
        }
    }
}

/// AWS refused the request, or never got it: it did nothing. Other errors (timeouts, 5xx and
/// conflicts that outlasted the retries) leave it unknown whether an earlier attempt went
/// through.
fn refused(e: &AwsError) -> bool {
    matches!(
        e,
        AwsError::Invalid { .. }
            | AwsError::NotFound { .. }
            | AwsError::AccessDenied { .. }
            | AwsError::Configuration { .. }
            | AwsError::Unreachable { .. }
    )
}

/// One account or application assignment operation.
pub(super) enum Op {
    Create(Assign, AssignmentKey),
    Delete(Unassign),
    /// One an earlier run sent and AWS still works on (its row holds the request id).
    Settle(AssignmentRecord),
}

impl Op {
    pub(super) fn key(&self) -> &AssignmentKey {
        match self {
            Op::Create(_, key) => key,
            Op::Delete(u) => &u.key,
            Op::Settle(r) => &r.key,
        }
    }

    pub(super) fn is_delete(&self) -> bool {
        match self {
            Op::Delete(_) => true,
            Op::Settle(r) => r.state == AssignmentState::Deleting,
            Op::Create(..) => false,
        }
    }

    /// The key of the rule a create is for.
    pub(super) fn rule(&self) -> Option<&str> {
        match self {
            Op::Create(a, _) => Some(&a.rule),
            Op::Delete(_) | Op::Settle(_) => None,
        }
    }

    pub(super) fn label(&self) -> String {
        match self {
            Op::Create(a, _) => label_assign(a),
            Op::Delete(u) => label_unassign(u),
            Op::Settle(r) => label_key(&r.key),
        }
    }
}

impl From<(Assign, AssignmentKey)> for Op {
    fn from((a, key): (Assign, AssignmentKey)) -> Op {
        Op::Create(a, key)
    }
}

pub(super) fn kind_name(kind: AssignmentKind) -> &'static str {
    match kind {
        AssignmentKind::Account => "AccountAssignment",
        AssignmentKind::Application => "ApplicationAssignment",
    }
}

fn principal_label(t: PrincipalType, name: &str) -> String {
    match t {
        PrincipalType::User => format!("user {name}"),
        PrincipalType::Group => format!("group {name}"),
    }
}

/// `account 111111111111 / EC2AdminAccess / group AWS - EC2 Admin`.
pub(super) fn label_assign(a: &Assign) -> String {
    let who = principal_label(a.principal_type, &a.principal);
    match (a.kind, &a.permission_set) {
        (AssignmentKind::Account, Some(set)) => format!("account {} / {set} / {who}", a.target),
        _ => format!("application {} / {who}", a.target),
    }
}

fn label_unassign(u: &Unassign) -> String {
    let who = principal_label(u.key.principal_type, &u.principal);
    match u.key.kind {
        AssignmentKind::Account => {
            let set = u.permission_set.as_deref().unwrap_or(&u.key.permission_set_arn);
            format!("account {} / {set} / {who}", u.key.target)
        }
        AssignmentKind::Application => format!("application {} / {who}", u.key.target),
    }
}

/// A label from the key alone (names unknown): `account 111111111111 / <ARN> / group <id>`.
fn label_key(key: &AssignmentKey) -> String {
    let who = principal_label(key.principal_type, &key.principal_id);
    match key.kind {
        AssignmentKind::Account => {
            format!("account {} / {} / {who}", key.target, key.permission_set_arn)
        }
        AssignmentKind::Application => format!("application {} / {who}", key.target),
    }
}

pub(super) fn detail(a: &Assign, key: &AssignmentKey) -> Value {
    json!({"target": key.target, "permission_set": a.permission_set,
        "permission_set_arn": key.permission_set_arn, "principal_type": key.principal_type, "rule": a.rule})
}

pub(super) fn failed(what: &str, reason: &str) -> String {
    if reason.trim().is_empty() {
        format!("AWS reports {what} FAILED and gives no reason")
    } else {
        format!("AWS reports {what} FAILED: {reason}")
    }
}
