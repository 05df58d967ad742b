//! SCIM resource operations (the [`Resources`] role), each written once over the
//! [`Steps`] of a transaction: lock, check the precondition, change, journal, commit. Member
//! changes keep the group's version honest: a write that changes nothing leaves version,
//! `lastModified` and the journal untouched (RFC 7644 §3.5.2: adding a present value is no
//! change).

use super::columns::{
    Indexed, MemberDelta, ids, is_name_conflict, journal_detail, uniqueness_error,
};
use super::members::{apply_member_changes, replace_members, resolve_members};
use super::resource_sql::{Adoptable, JournalRow, Selection, wants_relation};
use super::steps::{Steps, filter_backend};
use super::{SqlStore, retry_transient};
use crate::store::backend::{Backend, Bind, Conn, Tx};
use crate::store::filter_sql;
use crate::store::roles::Resources;
use crate::store::{
    IfMatch, JournalAction, ListPage, ListQuery, Load, NewResource, PatchPlan, Patcher, StoreError,
    StoredResource, WriteCtx,
};
use async_trait::async_trait;
use scim_schema::schema::ResourceKind;
use serde_json::{Value, json};
use uuid::Uuid;

#[async_trait]
impl<B: Backend> Resources for SqlStore<B> {
    #[tracing::instrument(skip_all, fields(kind = kind.name(), source_id = ctx.source_id), level = "debug")]
    async fn create(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        new: &NewResource,
    ) -> Result<StoredResource, StoreError> {
        retry_transient(|| async { create(self.write().await?, ctx, kind, new).await }).await
    }

    #[tracing::instrument(skip_all, fields(kind = kind.name(), source_id, id), level = "debug")]
    async fn get(
        &self,
        source_id: i64,
        kind: ResourceKind,
        id: &str,
        load: Load,
    ) -> Result<StoredResource, StoreError> {
        get(&mut self.read().await?, source_id, kind, id, load).await
    }

    #[tracing::instrument(skip_all, fields(kind = kind.name(), source_id = ctx.source_id, id), level = "debug")]
    async fn replace(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        id: &str,
        new: &NewResource,
        cond: &IfMatch,
        load: Load,
    ) -> Result<StoredResource, StoreError> {
        retry_transient(|| async {
            replace(self.write().await?, ctx, kind, id, new, cond, load).await
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(kind = kind.name(), source_id = ctx.source_id, id), level = "debug")]
    async fn patch(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        id: &str,
        cond: &IfMatch,
        patcher: Patcher<'_>,
        load: Load,
    ) -> Result<StoredResource, StoreError> {
        retry_transient(|| async {
            patch(self.write().await?, ctx, kind, id, cond, patcher, load).await
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(kind = kind.name(), source_id = ctx.source_id, id), level = "debug")]
    async fn delete(
        &self,
        ctx: &WriteCtx,
        kind: ResourceKind,
        id: &str,
        cond: &IfMatch,
    ) -> Result<(), StoreError> {
        retry_transient(|| async { delete(self.write().await?, ctx, kind, id, cond).await }).await
    }

    #[tracing::instrument(skip_all, fields(kind = kind.name(), source_id, filtered = query.filter.is_some(), start = query.start_index, count = query.count), level = "debug")]
    async fn list(
        &self,
        source_id: i64,
        kind: ResourceKind,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        list(&mut self.read().await?, source_id, kind, query).await
    }
}

impl<B: Backend> SqlStore<B> {
    async fn write(&self) -> Result<Steps<B::Tx>, StoreError> {
        Ok(Steps::new(self.backend.write().await?, B::DIALECT))
    }

    async fn read(&self) -> Result<Steps<B::Conn>, StoreError> {
        Ok(Steps::new(self.backend.read().await?, B::DIALECT))
    }
}

async fn create<W: Tx>(
    mut tx: Steps<W>,
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
    let now = crate::store::now();
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
    tx.journal(JournalRow { ctx, kind, id, action: JournalAction::Create, detail, at: now })
        .await?;
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
async fn adopt<W: Tx>(
    mut tx: Steps<W>,
    ctx: &WriteCtx,
    kind: ResourceKind,
    found: Adoptable,
    ix: &Indexed,
    new: &NewResource,
) -> Result<StoredResource, StoreError> {
    let now = crate::store::now();
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
    tx.journal(JournalRow {
        ctx,
        kind,
        id,
        action: JournalAction::Adopt,
        detail: Some(detail),
        at: now,
    })
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
async fn replace<W: Tx>(
    mut tx: Steps<W>,
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
    finish_update(tx, ctx, kind, uid, &before, changed_doc, &delta, JournalAction::Replace, load)
        .await
}

async fn patch<W: Tx>(
    mut tx: Steps<W>,
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
    finish_update(tx, ctx, kind, uid, &before, changed_doc, &delta, JournalAction::Patch, load)
        .await
}

async fn delete<W: Tx>(
    mut tx: Steps<W>,
    ctx: &WriteCtx,
    kind: ResourceKind,
    id: &str,
    cond: &IfMatch,
) -> Result<(), StoreError> {
    let (uid, before) = lock(&mut tx, kind, ctx.source_id, id, cond).await?;
    let now = crate::store::now();
    let parents = tx.detach_member(uid, now).await?;
    tx.delete_row(kind, uid).await?;
    let name_attr = if kind == ResourceKind::User { "userName" } else { "displayName" };
    let mut detail = json!({ "name": before.get(name_attr) });
    if !parents.is_empty() {
        detail["member_of"] = json!(ids(parents.clone()));
    }
    tx.journal(JournalRow {
        ctx,
        kind,
        id: uid,
        action: JournalAction::Delete,
        detail: Some(detail),
        at: now,
    })
    .await?;
    // Each group that lost the member changed too (the sync engine recomputes its members).
    for parent in parents {
        let detail = Some(json!({ "members_removed": [uid.to_string()] }));
        let kind = ResourceKind::Group;
        tx.journal(JournalRow {
            ctx,
            kind,
            id: parent,
            action: JournalAction::MemberDeleted,
            detail,
            at: now,
        })
        .await?;
    }
    tx.commit().await
}

async fn get<R: Conn>(
    reader: &mut Steps<R>,
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
async fn list<R: Conn>(
    reader: &mut Steps<R>,
    source_id: i64,
    kind: ResourceKind,
    query: &ListQuery,
) -> Result<ListPage, StoreError> {
    let backend = filter_backend(reader.dialect());
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
async fn attach_relations<R: Conn>(
    reader: &mut Steps<R>,
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
async fn lock<W: Tx>(
    tx: &mut Steps<W>,
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
async fn finish_update<W: Tx>(
    mut tx: Steps<W>,
    ctx: &WriteCtx,
    kind: ResourceKind,
    uid: Uuid,
    before: &Value,
    changed_doc: Option<&Value>,
    delta: &MemberDelta,
    action: JournalAction,
    load: Load,
) -> Result<StoredResource, StoreError> {
    let now = crate::store::now();
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
