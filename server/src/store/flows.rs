//! Each store operation, written once over the backend [`primitives`](super::primitives):
//! lock, check the precondition, change, journal, commit. Member changes keep the group's
//! version honest: a write that changes nothing leaves version, `lastModified` and the journal
//! untouched (RFC 7644 §3.5.2: adding a present value is no change).

use super::columns::{
    Indexed, MemberDelta, check_members, cycle_error, is_name_conflict, journal_detail,
    parse_member_ids, uniqueness_error,
};
use super::filter_sql::{self, Bind};
use super::primitives::{Adoptable, JournalRow, Reader, Selection, Writer, wants_relation};
use super::{
    IfMatch, ListPage, ListQuery, Load, NewResource, PatchPlan, Patcher, StoreError,
    StoredResource, WriteCtx,
};
use scim_schema::patch::MemberChange;
use scim_schema::resource::{MemberRef, MemberType};
use scim_schema::schema::ResourceKind;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

pub async fn create<W: Writer>(
    mut tx: W,
    ctx: &WriteCtx,
    kind: ResourceKind,
    new: &NewResource,
) -> Result<StoredResource, StoreError> {
    let ix = Indexed::of(kind, &new.doc)?;
    if !ctx.adopt_from.is_empty()
        && let Some(found) = tx.find_adoptable(kind, &ix, &ctx.adopt_from).await?
    {
        return adopt(tx, ctx, kind, found, &ix, new).await;
    }
    let id = Uuid::now_v7();
    let now = super::now();
    match tx.insert_row(kind, id, ctx.source_id, &ix, &new.doc, now).await {
        Err(e) if is_name_conflict(&e) => return Err(uniqueness_error(kind, &ix).into()),
        other => other?,
    }
    let mut delta = MemberDelta::default();
    if let (ResourceKind::Group, Some(refs)) = (kind, &new.members) {
        let members = resolve_members(&mut tx, ctx.source_id, id, refs).await?;
        delta.record_added(ids(tx.insert_members(id, &members).await?));
    }
    let detail = journal_detail(kind, None, None, &delta);
    tx.journal(JournalRow { ctx, kind, id, action: "create", detail, at: now }).await?;
    let created = if delta.added.is_empty() {
        // Everything is known: no read back (POST is the hot path of an initial load).
        StoredResource {
            id: id.to_string(),
            kind,
            doc: new.doc.clone(),
            version: 1,
            created: now,
            modified: now,
            members: (kind == ResourceKind::Group).then(Vec::new),
            groups: (kind == ResourceKind::User).then(Vec::new),
        }
    } else {
        // Members are shown with their display names.
        tx.fetch_one(kind, id, Load { members: true, groups: false }).await?
    };
    tx.commit().await?;
    Ok(created)
}

/// Source migration: a create that names a resource of a source listed in `adopt_from` takes
/// it over instead of conflicting. The id and the memberships stay (so nothing downstream is
/// deleted and re-created), the POSTed document replaces the stored one, members the POST
/// lists are added to the kept ones, and the journal records an `adopt` naming the old source.
async fn adopt<W: Writer>(
    mut tx: W,
    ctx: &WriteCtx,
    kind: ResourceKind,
    found: Adoptable,
    ix: &Indexed,
    new: &NewResource,
) -> Result<StoredResource, StoreError> {
    let now = super::now();
    let id = found.id;
    match tx.update_row(kind, id, ix, &new.doc, now).await {
        Err(e) if is_name_conflict(&e) => return Err(uniqueness_error(kind, ix).into()),
        other => other?,
    }
    tx.set_owner(kind, id, ctx.source_id).await?;
    let mut delta = MemberDelta::default();
    if let (ResourceKind::Group, Some(refs)) = (kind, &new.members) {
        let members = resolve_members(&mut tx, ctx.source_id, id, refs).await?;
        delta.record_added(ids(tx.insert_members(id, &members).await?));
    }
    let mut detail =
        journal_detail(kind, Some(&found.doc), Some(&new.doc), &delta).unwrap_or_else(|| json!({}));
    detail["adopted_from"] = json!(found.from_source);
    tx.journal(JournalRow { ctx, kind, id, action: "adopt", detail: Some(detail), at: now })
        .await?;
    let load = Load { members: kind == ResourceKind::Group, groups: kind == ResourceKind::User };
    let adopted = tx.fetch_one(kind, id, load).await?;
    tx.commit().await?;
    tracing::info!(
        kind = ?kind, id = %id, from = %found.from_source,
        "source migration: took over {} \"{}\"", kind_noun(kind), ix.name
    );
    Ok(adopted)
}

fn kind_noun(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "user",
        ResourceKind::Group => "group",
    }
}

/// PUT: the new document replaces the old; `new.members` (if given) becomes the membership.
pub async fn replace<W: Writer>(
    mut tx: W,
    ctx: &WriteCtx,
    kind: ResourceKind,
    id: &str,
    new: &NewResource,
    cond: &IfMatch,
    load: Load,
) -> Result<StoredResource, StoreError> {
    let (uid, before) = lock(&mut tx, kind, ctx.source_id, id, cond).await?;
    let mut delta = MemberDelta::default();
    if let (ResourceKind::Group, Some(refs)) = (kind, &new.members) {
        replace_members(&mut tx, ctx.source_id, uid, refs, &mut delta).await?;
    }
    let changed_doc = (before != new.doc).then_some(&new.doc);
    finish_update(tx, ctx, kind, uid, &before, changed_doc, &delta, "replace", load).await
}

pub async fn patch<W: Writer>(
    mut tx: W,
    ctx: &WriteCtx,
    kind: ResourceKind,
    id: &str,
    cond: &IfMatch,
    patcher: Patcher<'_>,
    load: Load,
) -> Result<StoredResource, StoreError> {
    let (uid, before) = lock(&mut tx, kind, ctx.source_id, id, cond).await?;
    let PatchPlan { doc, member_changes } = patcher(&before)?;
    let mut delta = MemberDelta::default();
    apply_member_changes(&mut tx, ctx.source_id, uid, &member_changes, &mut delta).await?;
    let changed_doc = doc.as_ref().filter(|d| **d != before);
    finish_update(tx, ctx, kind, uid, &before, changed_doc, &delta, "patch", load).await
}

pub async fn delete<W: Writer>(
    mut tx: W,
    ctx: &WriteCtx,
    kind: ResourceKind,
    id: &str,
    cond: &IfMatch,
) -> Result<(), StoreError> {
    let (uid, before) = lock(&mut tx, kind, ctx.source_id, id, cond).await?;
    let now = super::now();
    let parents = tx.detach_member(uid, now).await?;
    tx.delete_row(kind, uid).await?;
    let name_attr = if kind == ResourceKind::User { "userName" } else { "displayName" };
    let mut detail = json!({ "name": before.get(name_attr) });
    if !parents.is_empty() {
        detail["member_of"] = json!(ids(parents.clone()));
    }
    tx.journal(JournalRow { ctx, kind, id: uid, action: "delete", detail: Some(detail), at: now })
        .await?;
    // Each group that lost the member changed too (the sync engine recomputes its members).
    for parent in parents {
        let detail = Some(json!({ "members_removed": [uid.to_string()] }));
        let kind = ResourceKind::Group;
        tx.journal(JournalRow { ctx, kind, id: parent, action: "member_deleted", detail, at: now })
            .await?;
    }
    tx.commit().await
}

pub async fn get<R: Reader>(
    reader: &mut R,
    source_id: i64,
    kind: ResourceKind,
    id: &str,
    load: Load,
) -> Result<StoredResource, StoreError> {
    let Ok(uid) = Uuid::parse_str(id) else { return Err(StoreError::NotFound) };
    let s = Selection {
        kind,
        where_sql: "r.id = $1 AND r.source_id = $2",
        binds: vec![Bind::Id(uid), Bind::Int(source_id)],
        order: "r.seq",
        limit: 1,
        offset: 0,
        load,
    };
    reader.select(s).await?.pop().ok_or(StoreError::NotFound)
}

/// One page: the filter translated to SQL and run by the database.
///
/// Round trips are what a list costs, so: the relations come in the page's own statement when
/// the page starts at the first match (the scan stops at the page's end); deeper pages fetch
/// them for the page's rows only (a subquery in the page's statement would run for every
/// skipped row). `totalResults` is counted only when the page is full or empty — otherwise it
/// is what the page shows.
pub async fn list<R: Reader>(
    reader: &mut R,
    backend: filter_sql::Backend,
    source_id: i64,
    kind: ResourceKind,
    query: &ListQuery,
) -> Result<ListPage, StoreError> {
    let mut where_sql = "r.source_id = $1".to_owned();
    let mut binds = vec![Bind::Int(source_id)];
    if let Some(f) = &query.filter {
        let w = filter_sql::translate(backend, kind, f, 2)?;
        where_sql = format!("{where_sql} AND {}", w.sql);
        binds.extend(w.binds);
    }
    if query.count <= 0 {
        let total = reader.count(kind, &where_sql, binds).await?;
        return Ok(ListPage { total, resources: Vec::new() });
    }
    // The sequence breaks ties, so pages are stable.
    let order = match &query.sort_by {
        Some(p) => {
            let e = filter_sql::sort_expression(backend, kind, p)?;
            let dir = if query.descending { "DESC" } else { "ASC" };
            format!("{e} {dir} NULLS LAST, r.seq")
        }
        None => "r.seq".to_owned(),
    };
    let offset = query.start_index - 1;
    let inline_relations = offset == 0;
    let s = Selection {
        kind,
        where_sql: &where_sql,
        binds: binds.clone(),
        order: &order,
        limit: query.count,
        offset,
        load: if inline_relations { query.load } else { Load::default() },
    };
    let mut rows = reader.select(s).await?;
    if !inline_relations && !rows.is_empty() && wants_relation(kind, query.load) {
        attach_relations(reader, kind, &mut rows, query.load).await?;
    }
    let page_len = rows.len() as i64;
    let total = if page_len < query.count && (page_len > 0 || offset == 0) {
        offset + page_len
    } else {
        reader.count(kind, &where_sql, binds).await?
    };
    Ok(ListPage { total, resources: rows })
}

/// Loads the relations of these rows with one statement naming their ids.
async fn attach_relations<R: Reader>(
    reader: &mut R,
    kind: ResourceKind,
    rows: &mut [StoredResource],
    load: Load,
) -> Result<(), StoreError> {
    let ids: Vec<Uuid> = rows.iter().filter_map(|r| Uuid::parse_str(&r.id).ok()).collect();
    let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
    let where_sql = format!("r.id IN ({})", placeholders.join(", "));
    let s = Selection {
        kind,
        where_sql: &where_sql,
        binds: ids.into_iter().map(Bind::Id).collect(),
        order: "r.seq",
        limit: rows.len() as i64,
        offset: 0,
        load,
    };
    let mut with_relations: std::collections::HashMap<String, StoredResource> =
        reader.select(s).await?.into_iter().map(|r| (r.id.clone(), r)).collect();
    for row in rows.iter_mut() {
        if let Some(full) = with_relations.remove(&row.id) {
            row.members = full.members;
            row.groups = full.groups;
        }
    }
    Ok(())
}

// --- steps shared by the writes ------------------------------------------------------------

/// Locks the row and checks `If-Match`; returns its id and current document.
async fn lock<W: Writer>(
    tx: &mut W,
    kind: ResourceKind,
    source_id: i64,
    id: &str,
    cond: &IfMatch,
) -> Result<(Uuid, Value), StoreError> {
    let Ok(uid) = Uuid::parse_str(id) else { return Err(StoreError::NotFound) };
    let (doc, version) = tx.lock_row(kind, source_id, uid).await?.ok_or(StoreError::NotFound)?;
    if !cond.allows(version) {
        return Err(StoreError::PreconditionFailed);
    }
    Ok((uid, doc))
}

/// Writes the new document (or just a new group version when only members changed), journals
/// the change, commits, and returns the resource as stored.
#[allow(clippy::too_many_arguments)]
async fn finish_update<W: Writer>(
    mut tx: W,
    ctx: &WriteCtx,
    kind: ResourceKind,
    uid: Uuid,
    before: &Value,
    changed_doc: Option<&Value>,
    delta: &MemberDelta,
    action: &str,
    load: Load,
) -> Result<StoredResource, StoreError> {
    let now = super::now();
    if let Some(doc) = changed_doc {
        let ix = Indexed::of(kind, doc)?;
        match tx.update_row(kind, uid, &ix, doc, now).await {
            Err(e) if is_name_conflict(&e) => return Err(uniqueness_error(kind, &ix).into()),
            other => other?,
        }
    } else if !delta.is_empty() {
        tx.bump_group_version(uid, now).await?;
    }
    if changed_doc.is_some() || !delta.is_empty() {
        let after = changed_doc.unwrap_or(before);
        let detail = journal_detail(kind, Some(before), Some(after), delta);
        tx.journal(JournalRow { ctx, kind, id: uid, action, detail, at: now }).await?;
    }
    let out = tx.fetch_one(kind, uid, load).await?;
    tx.commit().await?;
    Ok(out)
}

/// Member refs → (id, type) within the source: unknown ids, wrong types and cycles are errors.
async fn resolve_members<W: Writer>(
    tx: &mut W,
    source_id: i64,
    group_id: Uuid,
    refs: &[MemberRef],
) -> Result<Vec<(Uuid, MemberType)>, StoreError> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let ids = parse_member_ids(refs)?;
    let found = tx.member_kinds(source_id, &ids).await?;
    let members = check_members(group_id, refs, &ids, &found)?;
    let nested: Vec<Uuid> =
        members.iter().filter(|(_, t)| *t == MemberType::Group).map(|(id, _)| *id).collect();
    if !nested.is_empty()
        && let Some(start) = tx.reaches(&nested, group_id).await?
    {
        return Err(cycle_error(&start).into());
    }
    Ok(members)
}

/// Makes the membership exactly `refs`: removes the others, adds the missing.
async fn replace_members<W: Writer>(
    tx: &mut W,
    source_id: i64,
    group_id: Uuid,
    refs: &[MemberRef],
    delta: &mut MemberDelta,
) -> Result<(), StoreError> {
    let members = resolve_members(tx, source_id, group_id, refs).await?;
    let keep: Vec<Uuid> = members.iter().map(|(id, _)| *id).collect();
    delta.record_removed(ids(tx.delete_members_except(group_id, &keep).await?));
    delta.record_added(ids(tx.insert_members(group_id, &members).await?));
    Ok(())
}

/// One PATCH's member changes as set operations, whatever their number: one existence check
/// and one cycle check for every member the request adds, then the net change in one DELETE
/// and one INSERT. Operations still apply in order (RFC 7644 §3.5.2): they are folded into
/// their net effect ([`NetMembers`]), and only a `members[filter]` remove, which selects from
/// the membership as it stands, makes the pending net change be written first.
///
/// Checking every added member against the membership before the request gives the errors of
/// applying the operations one by one: the request changes only this group's own members, and
/// no path from a nested group back to this group passes through them.
async fn apply_member_changes<W: Writer>(
    tx: &mut W,
    source_id: i64,
    group_id: Uuid,
    changes: &[MemberChange],
    delta: &mut MemberDelta,
) -> Result<(), StoreError> {
    let added: Vec<MemberRef> = changes
        .iter()
        .flat_map(|c| match c {
            MemberChange::Add(refs) | MemberChange::ReplaceAll(refs) => refs.as_slice(),
            MemberChange::Remove(_) | MemberChange::RemoveAll | MemberChange::RemoveWhere(_) => &[],
        })
        .cloned()
        .collect();
    let kinds: HashMap<Uuid, MemberType> =
        resolve_members(tx, source_id, group_id, &added).await?.into_iter().collect();
    let mut net = NetMembers::default();
    for change in changes {
        match change {
            MemberChange::RemoveWhere(filter) => {
                net.write(tx, group_id, delta).await?;
                delta.record_removed(ids(tx.delete_members_where(group_id, filter).await?));
            }
            MemberChange::Add(refs) => net.add(refs, &kinds),
            // A value that is no UUID names no member: nothing to remove for it.
            MemberChange::Remove(values) => {
                net.remove(values.iter().filter_map(|v| Uuid::parse_str(v).ok()))
            }
            MemberChange::RemoveAll => net.clear(),
            MemberChange::ReplaceAll(refs) => {
                net.clear();
                net.add(refs, &kinds);
            }
        }
    }
    net.write(tx, group_id, delta).await
}

/// The net effect of a run of member changes on the membership they started from.
#[derive(Default)]
struct NetMembers {
    /// Every member not in `add` goes (a `remove members` or `replace members` was seen).
    clear: bool,
    /// Members afterwards, each with its position in the request (the order they are written).
    add: HashMap<Uuid, (usize, MemberType)>,
    /// Not members afterwards (only kept while `clear` is false).
    remove: HashSet<Uuid>,
    next: usize,
}

impl NetMembers {
    fn add(&mut self, refs: &[MemberRef], kinds: &HashMap<Uuid, MemberType>) {
        for r in refs {
            // Every ref was resolved by `resolve_members`, so both lookups succeed.
            let Ok(id) = Uuid::parse_str(&r.value) else { continue };
            let Some(kind) = kinds.get(&id) else { continue };
            self.remove.remove(&id);
            self.next += 1;
            self.add.entry(id).or_insert((self.next, *kind));
        }
    }

    fn remove(&mut self, ids: impl Iterator<Item = Uuid>) {
        for id in ids {
            self.add.remove(&id);
            if !self.clear {
                self.remove.insert(id);
            }
        }
    }

    fn clear(&mut self) {
        *self = NetMembers { clear: true, ..NetMembers::default() };
    }

    /// Writes the net change (one DELETE, one INSERT) and starts over.
    async fn write<W: Writer>(
        &mut self,
        tx: &mut W,
        group_id: Uuid,
        delta: &mut MemberDelta,
    ) -> Result<(), StoreError> {
        let net = std::mem::take(self);
        let mut add: Vec<(usize, Uuid, MemberType)> =
            net.add.into_iter().map(|(id, (n, kind))| (n, id, kind)).collect();
        add.sort_unstable_by_key(|(n, _, _)| *n);
        let add: Vec<(Uuid, MemberType)> =
            add.into_iter().map(|(_, id, kind)| (id, kind)).collect();
        if net.clear {
            let keep: Vec<Uuid> = add.iter().map(|(id, _)| *id).collect();
            delta.record_removed(ids(tx.delete_members_except(group_id, &keep).await?));
        } else if !net.remove.is_empty() {
            let gone: Vec<Uuid> = net.remove.into_iter().collect();
            delta.record_removed(ids(tx.delete_members(group_id, &gone).await?));
        }
        delta.record_added(ids(tx.insert_members(group_id, &add).await?));
        Ok(())
    }
}

fn ids(v: Vec<Uuid>) -> Vec<String> {
    v.iter().map(Uuid::to_string).collect()
}
