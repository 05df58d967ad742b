//! The sync record as a change run reads it (the [`ScopedRecord`] role): the part of the
//! directory a change reaches, grown with recursive queries over `group_members`, so that a
//! change costs what it touches — one user changed in a group of 50,000 reads that user, the
//! group and the groups above it, never the 50,000 members.

use super::SqlStore;
use super::columns::member_type_of;
use super::record_pages;
use super::sync_record::{membership_of, principal_of, snapshot_group_of, snapshot_user_of};
use crate::store::backend::{Access, Backend, Bind, Conn, Dialect, RowExt, Tx};
use crate::store::roles::ScopedRecord;
use crate::store::{
    AwsMembership, AwsPrincipal, RecordTotals, RecordedMember, ScopeRead, ScopeSeeds, Snapshot,
    StoreError, SyncState,
};
use async_trait::async_trait;
use scim_schema::resource::MemberType;
use scim_schema::schema::ResourceKind;
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// A direct membership: (group, member, member type).
type Edge = (Uuid, Uuid, MemberType);

/// The rows of an id array parameter `$n`, one column (a recursive walk's start).
fn id_rows(d: Dialect, n: usize) -> String {
    match d {
        Dialect::Postgres => format!("SELECT unnest(${n}::uuid[])"),
        Dialect::Sqlite => format!("SELECT value FROM json_each(${n})"),
    }
}

/// The memberships on every path up from the ids `$1`: each membership whose member is one of
/// them or a group that (through nested groups) contains one, at most `$2`. `UNION` ends cycles.
fn up_sql(d: Dialect) -> String {
    format!(
        "WITH RECURSIVE up(id) AS ({} \
           UNION SELECT m.group_id FROM group_members m JOIN up ON m.member_id = up.id) \
         SELECT group_id, member_id, member_type FROM group_members \
         WHERE member_id IN (SELECT id FROM up) LIMIT $2",
        id_rows(d, 1)
    )
}

/// The memberships of the groups `$1` and of every group nested in them, at most `$2`.
fn down_sql(d: Dialect) -> String {
    format!(
        "WITH RECURSIVE down(id) AS ({} \
           UNION SELECT m.member_id FROM group_members m JOIN down ON m.group_id = down.id \
           WHERE m.member_type = 'Group') \
         SELECT group_id, member_id, member_type FROM group_members \
         WHERE group_id IN (SELECT id FROM down) LIMIT $2",
        id_rows(d, 1)
    )
}

fn users_sql(d: Dialect) -> String {
    format!(
        "SELECT u.id, u.doc, u.active, s.name AS source FROM users u \
         JOIN sources s ON s.id = u.source_id WHERE {} ORDER BY u.seq",
        d.in_array("u.id", 1)
    )
}

fn groups_sql(d: Dialect) -> String {
    format!(
        "SELECT g.id, g.doc, s.name AS source FROM groups g \
         JOIN sources s ON s.id = g.source_id WHERE {} ORDER BY g.seq",
        d.in_array("g.id", 1)
    )
}

/// The recorded principals with the SCIM ids `$1` or the AWS ids `$2`. Both indexes begin with
/// `kind`: naming both kinds lets each half be an index lookup, not a scan of the record.
fn principals_sql(d: Dialect) -> String {
    let half = |column: &str, n: usize| {
        format!(
            "SELECT kind, resource_id, aws_id, ownership, name, pushed FROM aws_principals \
             WHERE kind IN ('User', 'Group') AND {}",
            d.in_array(column, n)
        )
    };
    format!(
        "SELECT * FROM ({} UNION {}) AS p ORDER BY kind, name",
        half("resource_id", 1),
        half("aws_id", 2)
    )
}

fn memberships_sql(d: Dialect) -> String {
    format!(
        "SELECT group_id, user_id, membership_id FROM aws_memberships WHERE {} OR {}",
        d.in_array("group_id", 1),
        d.in_array("user_id", 2)
    )
}

/// A keyed page of ids of one kind, SCIM resources and recorded principals together.
fn page_ids_sql(kind: ResourceKind) -> String {
    let table = match kind {
        ResourceKind::User => "users",
        ResourceKind::Group => "groups",
    };
    format!(
        "SELECT id FROM (SELECT id FROM {table} WHERE id > $1 \
           UNION SELECT resource_id AS id FROM aws_principals WHERE kind = $2 AND resource_id > $1) \
         AS ids ORDER BY id LIMIT $3"
    )
}

fn ids(set: &BTreeSet<Uuid>) -> Bind {
    Bind::Ids(set.iter().copied().collect())
}

/// The edges `sql` finds from `from`, at most `limit` (a bound read stops in the database
/// rather than after it has sent everything).
async fn edges<C: Conn>(
    conn: &mut C,
    sql: &str,
    from: &BTreeSet<Uuid>,
    limit: usize,
) -> Result<Vec<Edge>, StoreError> {
    if from.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    conn.fetch_all(sql, vec![ids(from), Bind::Int(limit)])
        .await?
        .iter()
        .map(|r| {
            let t = member_type_of(&r.text("member_type")?);
            Ok((r.uuid("group_id")?, r.uuid("member_id")?, t))
        })
        .collect()
}

/// The groups among `edges` that contain one of `from` (through nested groups), `from`
/// included: `edges` holds every path up from them.
fn ancestors_of(from: &BTreeSet<Uuid>, edges: &[Edge]) -> BTreeSet<Uuid> {
    let mut parents: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (g, m, _) in edges {
        parents.entry(*m).or_default().push(*g);
    }
    let mut out = from.clone();
    let mut stack: Vec<Uuid> = from.iter().copied().collect();
    while let Some(id) = stack.pop() {
        for p in parents.get(&id).map(Vec::as_slice).unwrap_or_default() {
            if out.insert(*p) {
                stack.push(*p);
            }
        }
    }
    out
}

#[async_trait]
impl<B: Backend> ScopedRecord for SqlStore<B> {
    #[tracing::instrument(skip_all, fields(seeds = seeds.len()), level = "debug")]
    async fn scope(&self, seeds: &ScopeSeeds) -> Result<ScopeRead, StoreError> {
        let d = B::DIALECT;
        let mut tx = self.backend.snapshot().await?;
        // Up from the users and the groups whose nesting changed: the groups that reach them.
        // A bound read asks for one edge more than it may follow: more is too far.
        let most = seeds.max_edges.map_or(usize::MAX, |max| max + 1);
        let up_from: BTreeSet<Uuid> = seeds.users.union(&seeds.nesting).copied().collect();
        let up = edges(&mut tx, &up_sql(d), &up_from, most).await?;
        // Whole: the groups asked for, and every group containing one whose nesting changed.
        let mut whole_groups = ancestors_of(&seeds.nesting, &up);
        whole_groups.extend(seeds.whole.iter().copied());
        let down = if up.len() < most {
            edges(&mut tx, &down_sql(d), &whole_groups, most - up.len()).await?
        } else {
            Vec::new()
        };
        if seeds.max_edges.is_some_and(|max| up.len() + down.len() > max) {
            // Reading that much at once would hold a large part of the directory in memory.
            tx.commit().await?;
            return Ok(ScopeRead { too_far: true, ..ScopeRead::default() });
        }
        // Recorded memberships of the whole groups and of the seed users (an end that left at
        // the IdP is read too, so that its membership can be removed).
        let memberships = if whole_groups.is_empty() && seeds.users.is_empty() {
            Vec::new()
        } else {
            let binds = vec![ids(&whole_groups), ids(&seeds.users)];
            let rows = tx.fetch_all(&memberships_sql(d), binds).await?;
            rows.iter().map(membership_of).collect::<Result<Vec<_>, _>>()?
        };
        let mut users: BTreeSet<Uuid> = seeds.users.clone();
        let mut groups: BTreeSet<Uuid> = whole_groups.clone();
        for id in &seeds.single {
            // Either table: a single seed names a user or a group.
            users.insert(*id);
            groups.insert(*id);
        }
        for (g, m, t) in up.iter().chain(&down) {
            groups.insert(*g);
            match t {
                MemberType::User => users.insert(*m),
                MemberType::Group => groups.insert(*m),
            };
        }
        for m in &memberships {
            groups.insert(m.group_id);
            users.insert(m.user_id);
        }
        let snapshot_users = tx
            .fetch_all(&users_sql(d), vec![ids(&users)])
            .await?
            .iter()
            .map(snapshot_user_of)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let snapshot_groups = tx
            .fetch_all(&groups_sql(d), vec![ids(&groups)])
            .await?
            .iter()
            .map(snapshot_group_of)
            .collect::<Result<Vec<_>, StoreError>>()?;
        // The record of every principal named above, whichever table it is in now (or none:
        // deleted at the IdP).
        let named: BTreeSet<Uuid> = users.union(&groups).copied().collect();
        let rows =
            tx.fetch_all(&principals_sql(d), vec![ids(&named), Bind::Texts(Vec::new())]).await?;
        let principals = rows.iter().map(principal_of).collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        let mut members: Vec<Edge> = up;
        members.extend(down);
        members.sort_unstable_by_key(|(g, m, _)| (*g, *m));
        members.dedup_by_key(|(g, m, _)| (*g, *m));
        Ok(ScopeRead {
            snapshot: Snapshot { users: snapshot_users, groups: snapshot_groups, members },
            state: SyncState { principals, memberships },
            whole_groups,
            too_far: false,
        })
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn recorded(
        &self,
        resource_ids: &[Uuid],
        aws_ids: &[String],
    ) -> Result<Vec<AwsPrincipal>, StoreError> {
        if resource_ids.is_empty() && aws_ids.is_empty() {
            return Ok(Vec::new());
        }
        let binds = vec![Bind::Ids(resource_ids.to_vec()), Bind::Texts(aws_ids.to_vec())];
        let rows = self.backend.fetch_all(Access::Read, &principals_sql(B::DIALECT), binds).await?;
        rows.iter().map(principal_of).collect()
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn record_totals(&self, groups: &[Uuid]) -> Result<RecordTotals, StoreError> {
        let sql = "SELECT (SELECT COUNT(*) FROM aws_principals) AS principals, \
                   (SELECT COUNT(*) FROM aws_memberships) AS memberships";
        let row = self.backend.fetch_one(Access::Read, sql, Vec::new()).await?;
        let count = |col: &str| row.int(col).map(|n| usize::try_from(n).unwrap_or_default());
        let mut totals = RecordTotals {
            principals: count("principals")?,
            memberships: count("memberships")?,
            members_per_group: HashMap::new(),
        };
        if !groups.is_empty() {
            let sql = format!(
                "SELECT group_id, COUNT(*) AS n FROM aws_memberships WHERE {} GROUP BY group_id",
                B::DIALECT.in_array("group_id", 1)
            );
            let binds = vec![Bind::Ids(groups.to_vec())];
            for r in self.backend.fetch_all(Access::Read, &sql, binds).await? {
                let n = usize::try_from(r.int("n")?).unwrap_or_default();
                totals.members_per_group.insert(r.uuid("group_id")?, n);
            }
        }
        Ok(totals)
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn kinds_of(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, ResourceKind)>, StoreError> {
        let mut out = Vec::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for (table, kind) in [("users", ResourceKind::User), ("groups", ResourceKind::Group)] {
            let sql = format!("SELECT id FROM {table} WHERE {}", B::DIALECT.in_array("id", 1));
            let rows =
                self.backend.fetch_all(Access::Read, &sql, vec![Bind::Ids(ids.to_vec())]).await?;
            for r in rows {
                out.push((r.uuid("id")?, kind));
            }
        }
        Ok(out)
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn named(
        &self,
        user_names: &[String],
        group_names: &[String],
        group_external_ids: &[String],
    ) -> Result<Vec<Uuid>, StoreError> {
        let d = B::DIALECT;
        let mut out = Vec::new();
        if !user_names.is_empty() {
            let sql = format!("SELECT id FROM users WHERE {}", d.in_array("user_name_lower", 1));
            let binds = vec![Bind::Texts(user_names.to_vec())];
            for r in self.backend.fetch_all(Access::Read, &sql, binds).await? {
                out.push(r.uuid("id")?);
            }
        }
        if !group_names.is_empty() || !group_external_ids.is_empty() {
            let sql = format!(
                "SELECT id FROM groups WHERE {} OR {}",
                d.in_array("display_name_lower", 1),
                d.in_array("external_id", 2)
            );
            let binds =
                vec![Bind::Texts(group_names.to_vec()), Bind::Texts(group_external_ids.to_vec())];
            for r in self.backend.fetch_all(Access::Read, &sql, binds).await? {
                out.push(r.uuid("id")?);
            }
        }
        Ok(out)
    }

    #[tracing::instrument(skip_all, fields(kind = kind.name(), limit), level = "debug")]
    async fn page_ids(
        &self,
        kind: ResourceKind,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Uuid>, StoreError> {
        // The nil id sorts before every other, in both dialects' id order.
        let after = after.unwrap_or(Uuid::nil());
        let binds = vec![after.into(), kind.name().into(), i64::from(limit).into()];
        let rows = self.backend.fetch_all(Access::Read, &page_ids_sql(kind), binds).await?;
        rows.iter().map(|r| r.uuid("id")).collect()
    }

    #[tracing::instrument(skip_all, fields(kind = kind.name()), level = "debug")]
    async fn recorded_page(
        &self,
        kind: ResourceKind,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<AwsPrincipal>, StoreError> {
        record_pages::recorded_page(&self.backend, kind, after, limit).await
    }

    #[tracing::instrument(skip_all, fields(kind = kind.name(), ids = aws_ids.len()), level = "debug")]
    async fn recorded_ids(
        &self,
        kind: ResourceKind,
        aws_ids: &[String],
    ) -> Result<Vec<(String, Uuid)>, StoreError> {
        record_pages::recorded_ids(&self.backend, kind, aws_ids).await
    }

    #[tracing::instrument(skip_all, fields(%group), level = "debug")]
    async fn recorded_members(&self, group: Uuid) -> Result<Vec<RecordedMember>, StoreError> {
        record_pages::recorded_members(&self.backend, group).await
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn unowned_memberships(
        &self,
        after: Option<(Uuid, Uuid)>,
        limit: usize,
    ) -> Result<Vec<AwsMembership>, StoreError> {
        record_pages::unowned_memberships(&self.backend, after, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn ancestors_follow_nesting_up_and_stop_at_cycles() {
        // 1 ∈ 10 ∈ 11 ∈ 12 ∈ 11 (a cycle); 13 holds only 2.
        let edges = vec![
            (id(10), id(1), MemberType::User),
            (id(11), id(10), MemberType::Group),
            (id(12), id(11), MemberType::Group),
            (id(11), id(12), MemberType::Group),
            (id(13), id(2), MemberType::User),
        ];
        let from = BTreeSet::from([id(10)]);
        assert_eq!(ancestors_of(&from, &edges), BTreeSet::from([id(10), id(11), id(12)]));
        assert_eq!(ancestors_of(&BTreeSet::new(), &edges), BTreeSet::new());
    }

    /// The store tests: one body, every backend.
    mod on_the_store {
        use crate::store::tests::{ctx, stores};
        use crate::store::{
            AwsMembership, AwsPrincipal, IfMatch, NewResource, Ownership, ScopeSeeds, Store,
        };
        use scim_schema::resource::{MemberRef, MemberType};
        use scim_schema::schema::ResourceKind;
        use serde_json::json;
        use std::collections::BTreeSet;
        use uuid::Uuid;

        async fn okta(s: &dyn Store) -> i64 {
            let name = crate::names::SourceName::parse("okta").unwrap();
            s.upsert_source(&name, None).await.unwrap().id
        }

        async fn user(s: &dyn Store, source: i64, name: &str) -> Uuid {
            let new = NewResource { doc: json!({"userName": name}), members: None };
            s.create(&ctx(source), ResourceKind::User, &new).await.unwrap().id.parse().unwrap()
        }

        async fn group(s: &dyn Store, source: i64, name: &str, members: &[Uuid]) -> Uuid {
            let refs = members
                .iter()
                .map(|m| MemberRef { value: m.to_string(), member_type: None })
                .collect();
            let new = NewResource { doc: json!({"displayName": name}), members: Some(refs) };
            s.create(&ctx(source), ResourceKind::Group, &new).await.unwrap().id.parse().unwrap()
        }

        async fn record(s: &dyn Store, kind: ResourceKind, id: Uuid) {
            let p = AwsPrincipal {
                kind,
                resource_id: id,
                aws_id: format!("aws-{id}"),
                ownership: Ownership::Created,
                name: id.to_string(),
                pushed: json!({}),
            };
            s.put_principal(&p).await.unwrap();
        }

        async fn member(s: &dyn Store, g: Uuid, u: Uuid) {
            let m = AwsMembership { group_id: g, user_id: u, membership_id: format!("m-{g}-{u}") };
            s.put_membership(&m).await.unwrap();
        }

        fn user_ids(read: &crate::store::ScopeRead) -> BTreeSet<Uuid> {
            read.snapshot.users.iter().map(|u| u.id).collect()
        }

        fn group_ids(read: &crate::store::ScopeRead) -> BTreeSet<Uuid> {
            read.snapshot.groups.iter().map(|g| g.id).collect()
        }

        #[tokio::test]
        async fn a_scope_that_follows_more_memberships_than_allowed_reads_nothing() {
            for t in stores().await {
                let s = &*t.store;
                let source = okta(s).await;
                let mut users = Vec::new();
                for n in 0..30 {
                    users.push(user(s, source, &format!("u{n}@x")).await);
                }
                let big = group(s, source, "Everyone", &users).await;
                let b = s.backend();
                // The group read whole follows its 30 memberships.
                let whole = |max_edges| ScopeSeeds {
                    whole: BTreeSet::from([big]),
                    max_edges,
                    ..ScopeSeeds::default()
                };
                let read = s.scope(&whole(Some(29))).await.unwrap();
                assert!(read.too_far, "{b}");
                assert!(read.snapshot.users.is_empty() && read.state.principals.is_empty(), "{b}");
                for max in [Some(30), None] {
                    let read = s.scope(&whole(max)).await.unwrap();
                    assert!(!read.too_far, "{b}");
                    assert_eq!(read.snapshot.users.len(), 30, "{b}");
                }
                t.drop_database().await;
            }
        }

        #[tokio::test]
        async fn one_user_changed_in_a_big_group_reads_its_pairs_not_the_members() {
            for t in stores().await {
                let s = &*t.store;
                let source = okta(s).await;
                let mut users = Vec::new();
                for n in 0..40 {
                    users.push(user(s, source, &format!("u{n}@x")).await);
                }
                let big = group(s, source, "Everyone", &users).await;
                let outer = group(s, source, "Outer", &[big]).await;
                let other = group(s, source, "Other", &users[1..2]).await;
                for u in &users {
                    record(s, ResourceKind::User, *u).await;
                    member(s, big, *u).await;
                }
                record(s, ResourceKind::Group, big).await;
                record(s, ResourceKind::Group, outer).await;
                record(s, ResourceKind::Group, other).await;
                member(s, outer, users[0]).await;

                let seeds =
                    ScopeSeeds { users: BTreeSet::from([users[0]]), ..ScopeSeeds::default() };
                let read = s.scope(&seeds).await.unwrap();
                let b = s.backend();
                assert_eq!(user_ids(&read), BTreeSet::from([users[0]]), "{b}");
                assert_eq!(group_ids(&read), BTreeSet::from([big, outer]), "{b}");
                let edges: BTreeSet<(Uuid, Uuid)> =
                    read.snapshot.members.iter().map(|(g, m, _)| (*g, *m)).collect();
                assert_eq!(edges, BTreeSet::from([(big, users[0]), (outer, big)]), "{b}");
                assert!(read.whole_groups.is_empty(), "{b}");
                // The record: the three principals read, the user's two memberships only.
                assert_eq!(read.state.principals.len(), 3, "{b}");
                let recorded: BTreeSet<(Uuid, Uuid)> =
                    read.state.memberships.iter().map(|m| (m.group_id, m.user_id)).collect();
                assert_eq!(recorded, BTreeSet::from([(big, users[0]), (outer, users[0])]), "{b}");
                // The guard's totals are the whole record's.
                let totals = s.record_totals(&[big]).await.unwrap();
                assert_eq!((totals.principals, totals.memberships), (43, 41), "{b}");
                assert_eq!(totals.members_per_group.get(&big), Some(&40), "{b}");
                t.drop_database().await;
            }
        }

        #[tokio::test]
        async fn a_nesting_change_reads_the_group_and_its_ancestors_whole() {
            for t in stores().await {
                let s = &*t.store;
                let source = okta(s).await;
                let (a, b, c, d) = (
                    user(s, source, "a@x").await,
                    user(s, source, "b@x").await,
                    user(s, source, "c@x").await,
                    user(s, source, "d@x").await,
                );
                // a ∈ inner ∈ middle ∈ top; b ∈ middle; c ∈ top; d in an unrelated group.
                let inner = group(s, source, "Inner", &[a]).await;
                let middle = group(s, source, "Middle", &[inner, b]).await;
                let top = group(s, source, "Top", &[middle, c]).await;
                let unrelated = group(s, source, "Unrelated", &[d]).await;
                // Left at the IdP: d is recorded in middle (it is read, to be removed).
                member(s, middle, d).await;
                let seeds =
                    ScopeSeeds { nesting: BTreeSet::from([middle]), ..ScopeSeeds::default() };
                let read = s.scope(&seeds).await.unwrap();
                let be = s.backend();
                assert_eq!(read.whole_groups, BTreeSet::from([middle, top]), "{be}");
                assert_eq!(user_ids(&read), BTreeSet::from([a, b, c, d]), "{be}");
                assert!(!group_ids(&read).contains(&unrelated), "{be}");
                assert_eq!(read.state.memberships.len(), 1, "{be}");
                // The group taken whole without its ancestors reads only below it.
                let seeds = ScopeSeeds { whole: BTreeSet::from([inner]), ..ScopeSeeds::default() };
                let read = s.scope(&seeds).await.unwrap();
                assert_eq!(read.whole_groups, BTreeSet::from([inner]), "{be}");
                assert_eq!(user_ids(&read), BTreeSet::from([a]), "{be}");
                // Single seeds: the resource itself, of either kind; a deleted one reads nothing
                // but its record.
                s.delete(&ctx(source), ResourceKind::User, &b.to_string(), &IfMatch::None)
                    .await
                    .unwrap();
                record(s, ResourceKind::User, b).await;
                let seeds =
                    ScopeSeeds { single: BTreeSet::from([b, unrelated]), ..ScopeSeeds::default() };
                let read = s.scope(&seeds).await.unwrap();
                assert!(user_ids(&read).is_empty(), "{be}");
                assert_eq!(group_ids(&read), BTreeSet::from([unrelated]), "{be}");
                assert_eq!(read.state.principals.len(), 1, "{be}");
                assert!(read.snapshot.members.iter().all(|(_, _, t)| *t != MemberType::Group));
                t.drop_database().await;
            }
        }

        #[tokio::test]
        async fn rule_subjects_and_member_kinds_are_found_by_index() {
            for t in stores().await {
                let s = &*t.store;
                let source = okta(s).await;
                let a = user(s, source, "Ada@X").await;
                let g = group(s, source, "AWS - Admins", &[a]).await;
                let h = NewResource {
                    doc: json!({"displayName": "Ops", "externalId": "ext-1"}),
                    members: None,
                };
                let h: Uuid = s
                    .create(&ctx(source), ResourceKind::Group, &h)
                    .await
                    .unwrap()
                    .id
                    .parse()
                    .unwrap();
                let names =
                    |v: &[&str]| v.iter().map(|n| crate::names::fold(n)).collect::<Vec<_>>();
                let mut found = s
                    .named(&names(&["ada@x"]), &names(&["aws - admins"]), &["ext-1".into()])
                    .await
                    .unwrap();
                found.sort();
                let mut want = vec![a, g, h];
                want.sort();
                assert_eq!(found, want, "{}", s.backend());
                let gone = Uuid::now_v7();
                let mut kinds = s.kinds_of(&[a, g, gone]).await.unwrap();
                kinds.sort_by_key(|(id, _)| *id);
                let mut want = vec![(a, ResourceKind::User), (g, ResourceKind::Group)];
                want.sort_by_key(|(id, _)| *id);
                assert_eq!(kinds, want, "{}", s.backend());
                record(s, ResourceKind::User, a).await;
                let by_aws = s.recorded(&[], &[format!("aws-{a}")]).await.unwrap();
                assert_eq!(by_aws.len(), 1, "{}", s.backend());
                t.drop_database().await;
            }
        }
    }
}
