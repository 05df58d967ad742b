//! The access part of the sync record (`migrations/*/0004_access.sql`): permission sets and
//! applications the bridge knows, and the assignments it made. Every column is TEXT or BOOLEAN,
//! so one body of code serves both backends (instantiated per pool type below).

use super::{
    AccessObject, AccessObjectKind, AccessState, AssignmentKey, AssignmentKind, AssignmentRecord,
    AssignmentState, PrincipalType, StoreError,
};

const SELECT_OBJECTS: &str = "SELECT kind, name, arn, managed, pushed, needs_provision \
     FROM aws_access_objects ORDER BY kind, name";
const PUT_OBJECT: &str = "INSERT INTO aws_access_objects (kind, name, arn, managed, pushed, needs_provision) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, name) DO UPDATE SET arn = excluded.arn, \
     managed = excluded.managed, pushed = excluded.pushed, needs_provision = excluded.needs_provision";
const REMOVE_OBJECT: &str = "DELETE FROM aws_access_objects WHERE kind = $1 AND name = $2";
const SELECT_ASSIGNMENTS: &str = "SELECT kind, target, permission_set_arn, principal_type, principal_id, state, request_id \
     FROM aws_assignments ORDER BY kind, target, permission_set_arn, principal_type, principal_id";
const PUT_ASSIGNMENT: &str = "INSERT INTO aws_assignments (kind, target, permission_set_arn, principal_type, principal_id, state, request_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (kind, target, permission_set_arn, principal_type, principal_id) \
     DO UPDATE SET state = excluded.state, request_id = excluded.request_id";
const REMOVE_ASSIGNMENT: &str = "DELETE FROM aws_assignments WHERE kind = $1 AND target = $2 \
     AND permission_set_arn = $3 AND principal_type = $4 AND principal_id = $5";

fn object(
    kind: &str,
    name: String,
    arn: String,
    managed: bool,
    pushed: &str,
    needs_provision: bool,
) -> Result<AccessObject, StoreError> {
    Ok(AccessObject {
        kind: AccessObjectKind::parse(kind)?,
        name,
        arn,
        managed,
        pushed: serde_json::from_str(pushed)
            .map_err(|e| StoreError::Corrupt(format!("bad JSON in aws_access_objects: {e}")))?,
        needs_provision,
    })
}

fn assignment(
    kind: &str,
    target: String,
    permission_set_arn: String,
    principal_type: &str,
    principal_id: String,
    state: &str,
    request_id: Option<String>,
) -> Result<AssignmentRecord, StoreError> {
    Ok(AssignmentRecord {
        key: AssignmentKey {
            kind: AssignmentKind::parse(kind)?,
            target,
            permission_set_arn,
            principal_type: PrincipalType::parse(principal_type)?,
            principal_id,
        },
        state: AssignmentState::parse(state)?,
        request_id,
    })
}

macro_rules! access_functions {
    ($pool:ty) => {
        use super::*;
        use sqlx::Row;

        pub async fn access_state(pool: &$pool) -> Result<AccessState, StoreError> {
            let mut objects = Vec::new();
            for r in sqlx::query(SELECT_OBJECTS).fetch_all(pool).await? {
                let (kind, pushed): (String, String) = (r.try_get("kind")?, r.try_get("pushed")?);
                objects.push(object(
                    &kind,
                    r.try_get("name")?,
                    r.try_get("arn")?,
                    r.try_get("managed")?,
                    &pushed,
                    r.try_get("needs_provision")?,
                )?);
            }
            let mut assignments = Vec::new();
            for r in sqlx::query(SELECT_ASSIGNMENTS).fetch_all(pool).await? {
                let (kind, principal_type, state): (String, String, String) =
                    (r.try_get("kind")?, r.try_get("principal_type")?, r.try_get("state")?);
                assignments.push(assignment(
                    &kind,
                    r.try_get("target")?,
                    r.try_get("permission_set_arn")?,
                    &principal_type,
                    r.try_get("principal_id")?,
                    &state,
                    r.try_get("request_id")?,
                )?);
            }
            Ok(AccessState { objects, assignments })
        }

        pub async fn put_access_object(pool: &$pool, o: &AccessObject) -> Result<(), StoreError> {
            sqlx::query(PUT_OBJECT)
                .bind(o.kind.as_str())
                .bind(&o.name)
                .bind(&o.arn)
                .bind(o.managed)
                .bind(o.pushed.to_string())
                .bind(o.needs_provision)
                .execute(pool)
                .await?;
            Ok(())
        }

        pub async fn remove_access_object(
            pool: &$pool,
            kind: AccessObjectKind,
            name: &str,
        ) -> Result<(), StoreError> {
            sqlx::query(REMOVE_OBJECT).bind(kind.as_str()).bind(name).execute(pool).await?;
            Ok(())
        }

        pub async fn put_assignment(pool: &$pool, a: &AssignmentRecord) -> Result<(), StoreError> {
            sqlx::query(PUT_ASSIGNMENT)
                .bind(a.key.kind.as_str())
                .bind(&a.key.target)
                .bind(&a.key.permission_set_arn)
                .bind(a.key.principal_type.as_str())
                .bind(&a.key.principal_id)
                .bind(a.state.as_str())
                .bind(&a.request_id)
                .execute(pool)
                .await?;
            Ok(())
        }

        pub async fn remove_assignment(pool: &$pool, k: &AssignmentKey) -> Result<(), StoreError> {
            sqlx::query(REMOVE_ASSIGNMENT)
                .bind(k.kind.as_str())
                .bind(&k.target)
                .bind(&k.permission_set_arn)
                .bind(k.principal_type.as_str())
                .bind(&k.principal_id)
                .execute(pool)
                .await?;
            Ok(())
        }
    };
}

pub mod postgres {
    access_functions!(sqlx::PgPool);
}

pub mod sqlite {
    access_functions!(sqlx::SqlitePool);
}
