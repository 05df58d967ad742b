//! The sync record as a full run walks it (part of the [`ScopedRecord`] role): the recorded
//! principals in keyed pages, one group's recorded memberships at a time, and the memberships
//! whose end is no longer recorded, so that a full run's drift repair holds a page or a group,
//! never the whole record (issue 16).
//!
//! [`ScopedRecord`]: crate::store::ScopedRecord

use super::sync_record::{membership_of, principal_of};
use crate::store::backend::{Access, Backend, Bind, RowExt, binds};
use crate::store::{AwsMembership, AwsPrincipal, RecordedMember, StoreError};
use scim_schema::schema::ResourceKind;
use uuid::Uuid;

const PRINCIPAL_COLUMNS: &str = "kind, resource_id, aws_id, ownership, name, pushed";

/// A page of `kind`'s principals after the SCIM id `after` (by the primary key, so each page
/// is an index range). The limit is written into the text: PostgreSQL then settles on one
/// plan for the statement.
pub(super) async fn recorded_page<B: Backend>(
    backend: &B,
    kind: ResourceKind,
    after: Option<Uuid>,
    limit: usize,
) -> Result<Vec<AwsPrincipal>, StoreError> {
    let (from, binds) = match after {
        Some(after) => ("AND resource_id > $2", binds![kind.name(), after]),
        None => ("", binds![kind.name()]),
    };
    let sql = format!(
        "SELECT {PRINCIPAL_COLUMNS} FROM aws_principals WHERE kind = $1 {from} \
         ORDER BY resource_id LIMIT {limit}"
    );
    let rows = backend.fetch_all(Access::Read, &sql, binds).await?;
    rows.iter().map(principal_of).collect()
}

/// `(AWS id, SCIM id)` of the recorded principals of `kind` with these AWS ids (by the
/// `(kind, aws_id)` index).
pub(super) async fn recorded_ids<B: Backend>(
    backend: &B,
    kind: ResourceKind,
    aws_ids: &[String],
) -> Result<Vec<(String, Uuid)>, StoreError> {
    if aws_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT aws_id, resource_id FROM aws_principals WHERE kind = $1 AND {}",
        B::DIALECT.in_array("aws_id", 2)
    );
    let binds = vec![Bind::from(kind.name()), Bind::Texts(aws_ids.to_vec())];
    let rows = backend.fetch_all(Access::Read, &sql, binds).await?;
    rows.iter().map(|r| Ok((r.text("aws_id")?, r.uuid("resource_id")?))).collect()
}

/// The memberships recorded for `group`, each with its user's AWS id if that user is recorded.
pub(super) async fn recorded_members<B: Backend>(
    backend: &B,
    group: Uuid,
) -> Result<Vec<RecordedMember>, StoreError> {
    const SQL: &str = "SELECT m.group_id, m.user_id, m.membership_id, p.aws_id AS user_aws_id \
         FROM aws_memberships m \
         LEFT JOIN aws_principals p ON p.kind = 'User' AND p.resource_id = m.user_id \
         WHERE m.group_id = $1";
    let rows = backend.fetch_all(Access::Read, SQL, binds![group]).await?;
    rows.iter()
        .map(|r| {
            Ok(RecordedMember {
                membership: membership_of(r)?,
                user_aws_id: r.opt_text("user_aws_id")?,
            })
        })
        .collect()
}

/// Recorded memberships whose group or user is not a recorded principal, after the key
/// `after` (group, user), in key order. Normally there are none, and the one query scans the
/// memberships once in the database.
pub(super) async fn unowned_memberships<B: Backend>(
    backend: &B,
    after: Option<(Uuid, Uuid)>,
    limit: usize,
) -> Result<Vec<AwsMembership>, StoreError> {
    let (from, binds) = match after {
        Some((g, u)) => ("(m.group_id, m.user_id) > ($1, $2) AND", binds![g, u]),
        None => ("", Vec::new()),
    };
    let sql = format!(
        "SELECT m.group_id, m.user_id, m.membership_id FROM aws_memberships m WHERE {from} \
         (NOT EXISTS (SELECT 1 FROM aws_principals g \
                      WHERE g.kind = 'Group' AND g.resource_id = m.group_id) \
          OR NOT EXISTS (SELECT 1 FROM aws_principals u \
                         WHERE u.kind = 'User' AND u.resource_id = m.user_id)) \
         ORDER BY m.group_id, m.user_id LIMIT {limit}"
    );
    let rows = backend.fetch_all(Access::Read, &sql, binds).await?;
    rows.iter().map(membership_of).collect()
}

#[cfg(test)]
mod tests {
    use crate::store::tests::stores;
    use crate::store::{AwsMembership, AwsPrincipal, Ownership, Store};
    use scim_schema::schema::ResourceKind;
    use serde_json::json;
    use uuid::Uuid;

    async fn record(s: &dyn Store, kind: ResourceKind, id: Uuid) {
        let p = AwsPrincipal {
            kind,
            resource_id: id,
            aws_id: format!("aws-{id}"),
            ownership: Ownership::Created,
            name: id.to_string(),
            pushed: json!({"n": 1}),
        };
        s.put_principal(&p).await.unwrap();
    }

    async fn member(s: &dyn Store, g: Uuid, u: Uuid) {
        let m = AwsMembership { group_id: g, user_id: u, membership_id: format!("m-{g}-{u}") };
        s.put_membership(&m).await.unwrap();
    }

    /// Every principal of a kind, walked in pages of `limit`.
    async fn walk(s: &dyn Store, kind: ResourceKind, limit: usize) -> (Vec<Uuid>, usize) {
        let (mut out, mut pages, mut after) = (Vec::new(), 0, None);
        loop {
            let page = s.recorded_page(kind, after, limit).await.unwrap();
            assert!(page.len() <= limit);
            let Some(last) = page.last() else { break };
            after = Some(last.resource_id);
            assert!(page.iter().all(|p| p.kind == kind));
            out.extend(page.iter().map(|p| p.resource_id));
            pages += 1;
        }
        (out, pages)
    }

    #[tokio::test]
    async fn the_record_is_walked_in_keyed_pages_and_group_by_group() {
        for t in stores().await {
            let s = &*t.store;
            let b = s.backend();
            // Random (v4) ids: the pages follow the key, not the order of insertion.
            let users: Vec<Uuid> = (0..23).map(|_| Uuid::new_v4()).collect();
            let groups: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
            for u in &users {
                record(s, ResourceKind::User, *u).await;
            }
            for g in &groups {
                record(s, ResourceKind::Group, *g).await;
            }
            let (walked, pages) = walk(s, ResourceKind::User, 10).await;
            let mut sorted = users.clone();
            sorted.sort();
            assert_eq!(walked, sorted, "{b}: every user once, in key order");
            assert_eq!(pages, 3, "{b}");
            let (walked, _) = walk(s, ResourceKind::Group, 10).await;
            assert_eq!(walked.len(), 5, "{b}");
            // A principal removed (or added) between pages does not disturb the walk.
            let first = s.recorded_page(ResourceKind::User, None, 10).await.unwrap();
            s.remove_principal(ResourceKind::User, sorted[15]).await.unwrap();
            let rest = s.recorded_page(ResourceKind::User, Some(first[9].resource_id), 100);
            let rest: Vec<Uuid> = rest.await.unwrap().iter().map(|p| p.resource_id).collect();
            assert_eq!(rest.len(), 12, "{b}");
            assert!(!rest.contains(&sorted[15]), "{b}");
            record(s, ResourceKind::User, sorted[15]).await;

            // One group's record, with its users' AWS ids; a user no longer recorded has none.
            let gone = Uuid::new_v4();
            member(s, groups[0], users[0]).await;
            member(s, groups[0], users[1]).await;
            member(s, groups[0], gone).await;
            member(s, groups[1], users[0]).await;
            let mut got = s.recorded_members(groups[0]).await.unwrap();
            got.sort_by_key(|m| m.membership.user_id);
            let mut want = vec![
                (users[0], Some(format!("aws-{}", users[0]))),
                (users[1], Some(format!("aws-{}", users[1]))),
                (gone, None),
            ];
            want.sort_by_key(|(u, _)| *u);
            let got: Vec<(Uuid, Option<String>)> =
                got.into_iter().map(|m| (m.membership.user_id, m.user_aws_id)).collect();
            assert_eq!(got, want, "{b}");
            assert!(s.recorded_members(gone).await.unwrap().is_empty(), "{b}");

            // AWS ids to SCIM ids, by kind.
            let asked = [format!("aws-{}", users[2]), format!("aws-{}", groups[2]), "x".into()];
            let found = s.recorded_ids(ResourceKind::User, &asked).await.unwrap();
            assert_eq!(found, vec![(asked[0].clone(), users[2])], "{b}");
            assert!(s.recorded_ids(ResourceKind::Group, &[]).await.unwrap().is_empty());

            // A group forgotten takes its memberships with it; memberships with an end no
            // longer recorded (the one of `gone`, one of a group recorded by an older version
            // that left it behind) are walked in pages of one.
            s.remove_principal(ResourceKind::Group, groups[1]).await.unwrap();
            assert!(s.recorded_members(groups[1]).await.unwrap().is_empty(), "{b}");
            let left_behind = Uuid::new_v4();
            member(s, left_behind, users[0]).await;
            let (mut unowned, mut after) = (Vec::new(), None);
            loop {
                let page = s.unowned_memberships(after, 1).await.unwrap();
                let Some(last) = page.last() else { break };
                after = Some((last.group_id, last.user_id));
                unowned.extend(page.into_iter().map(|m| (m.group_id, m.user_id)));
            }
            let mut want = vec![(groups[0], gone), (left_behind, users[0])];
            want.sort();
            assert_eq!(unowned, want, "{b}");
            t.drop_database().await;
        }
    }
}
