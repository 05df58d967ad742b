//! The access part of the sync record (the [`AccessRecord`] role,
//! `migrations/*/0004_access.sql`, `0011_assignment_rule.sql`): permission sets and applications
//! the bridge knows, and the assignments it made (with the rule that made each).

use super::SqlStore;
use crate::store::backend::{Access, Backend, RowExt, binds};
use crate::store::roles::AccessRecord;
use crate::store::{
    AccessObject, AccessObjectKind, AccessState, AssignmentKey, AssignmentKind, AssignmentRecord,
    AssignmentState, PrincipalType, StoreError,
};
use async_trait::async_trait;

const SELECT_OBJECTS: &str = "SELECT kind, name, arn, managed, pushed, needs_provision \
     FROM aws_access_objects ORDER BY kind, name";
const PUT_OBJECT: &str = "INSERT INTO aws_access_objects (kind, name, arn, managed, pushed, needs_provision) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, name) DO UPDATE SET arn = excluded.arn, \
     managed = excluded.managed, pushed = excluded.pushed, needs_provision = excluded.needs_provision";
const REMOVE_OBJECT: &str = "DELETE FROM aws_access_objects WHERE kind = $1 AND name = $2";
const SELECT_ASSIGNMENTS: &str = "SELECT kind, target, permission_set_arn, principal_type, principal_id, state, request_id \
     FROM aws_assignments ORDER BY kind, target, permission_set_arn, principal_type, principal_id";
/// `$8` the rule: NULL keeps the one recorded (a later state of the same assignment).
const PUT_ASSIGNMENT: &str = "INSERT INTO aws_assignments (kind, target, permission_set_arn, principal_type, principal_id, state, request_id, rule) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (kind, target, permission_set_arn, principal_type, principal_id) \
     DO UPDATE SET state = excluded.state, request_id = excluded.request_id, \
     rule = COALESCE(excluded.rule, aws_assignments.rule)";
const REMOVE_ASSIGNMENT: &str = "DELETE FROM aws_assignments WHERE kind = $1 AND target = $2 \
     AND permission_set_arn = $3 AND principal_type = $4 AND principal_id = $5";

/// `pushed` is TEXT holding JSON on both backends (the table has only TEXT and BOOLEAN
/// columns), so it is bound and read as text.
fn object_of<R: RowExt>(r: &R) -> Result<AccessObject, StoreError> {
    Ok(AccessObject {
        kind: AccessObjectKind::parse(&r.text("kind")?)?,
        name: r.text("name")?,
        arn: r.text("arn")?,
        managed: r.bool("managed")?,
        pushed: serde_json::from_str(&r.text("pushed")?)
            .map_err(|e| StoreError::Corrupt(format!("bad JSON in aws_access_objects: {e}")))?,
        needs_provision: r.bool("needs_provision")?,
    })
}

fn assignment_of<R: RowExt>(r: &R) -> Result<AssignmentRecord, StoreError> {
    Ok(AssignmentRecord {
        key: AssignmentKey {
            kind: AssignmentKind::parse(&r.text("kind")?)?,
            target: r.text("target")?,
            permission_set_arn: r.text("permission_set_arn")?,
            principal_type: PrincipalType::parse(&r.text("principal_type")?)?,
            principal_id: r.text("principal_id")?,
        },
        state: AssignmentState::parse(&r.text("state")?)?,
        request_id: r.opt_text("request_id")?,
    })
}

#[async_trait]
impl<B: Backend> AccessRecord for SqlStore<B> {
    #[tracing::instrument(skip_all, level = "debug")]
    async fn access_state(&self) -> Result<AccessState, StoreError> {
        let rows = self.backend.fetch_all(Access::Read, SELECT_OBJECTS, Vec::new()).await?;
        let objects = rows.iter().map(object_of).collect::<Result<Vec<_>, _>>()?;
        let rows = self.backend.fetch_all(Access::Read, SELECT_ASSIGNMENTS, Vec::new()).await?;
        let assignments = rows.iter().map(assignment_of).collect::<Result<Vec<_>, _>>()?;
        Ok(AccessState { objects, assignments })
    }

    #[tracing::instrument(skip_all, fields(kind = o.kind.as_str(), name = %o.name), level = "debug")]
    async fn put_access_object(&self, o: &AccessObject) -> Result<(), StoreError> {
        let binds = binds![
            o.kind.as_str(),
            &o.name,
            &o.arn,
            o.managed,
            o.pushed.to_string(),
            o.needs_provision
        ];
        self.backend.execute(Access::Write, PUT_OBJECT, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(kind = kind.as_str(), name), level = "debug")]
    async fn remove_access_object(
        &self,
        kind: AccessObjectKind,
        name: &str,
    ) -> Result<(), StoreError> {
        let binds = binds![kind.as_str(), name];
        self.backend.execute(Access::Write, REMOVE_OBJECT, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(kind = a.key.kind.as_str(), target = %a.key.target, state = a.state.as_str()), level = "debug")]
    async fn put_assignment(
        &self,
        a: &AssignmentRecord,
        rule: Option<&str>,
    ) -> Result<(), StoreError> {
        let k = &a.key;
        let binds = binds![
            k.kind.as_str(),
            &k.target,
            &k.permission_set_arn,
            k.principal_type.as_str(),
            &k.principal_id,
            a.state.as_str(),
            a.request_id.as_deref(),
            rule
        ];
        self.backend.execute(Access::Write, PUT_ASSIGNMENT, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(kind = k.kind.as_str(), target = %k.target), level = "debug")]
    async fn remove_assignment(&self, k: &AssignmentKey) -> Result<(), StoreError> {
        let binds = binds![
            k.kind.as_str(),
            &k.target,
            &k.permission_set_arn,
            k.principal_type.as_str(),
            &k.principal_id
        ];
        self.backend.execute(Access::Write, REMOVE_ASSIGNMENT, binds).await?;
        Ok(())
    }
}
