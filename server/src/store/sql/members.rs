//! Group membership changes inside a write: member references resolved and checked (unknown
//! ids, wrong types, cycles), a PUT's full replacement, and a PATCH's member operations folded
//! into one DELETE and one INSERT.

use super::columns::{MemberDelta, check_members, cycle_error, ids, parse_member_ids};
use super::steps::Steps;
use crate::store::StoreError;
use crate::store::backend::Tx;
use scim_schema::patch::MemberChange;
use scim_schema::resource::{MemberRef, MemberType};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Member refs → (id, type) within the source: unknown ids, wrong types and cycles are errors.
pub async fn resolve_members<W: Tx>(
    tx: &mut Steps<W>,
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
pub async fn replace_members<W: Tx>(
    tx: &mut Steps<W>,
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
pub async fn apply_member_changes<W: Tx>(
    tx: &mut Steps<W>,
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
    async fn write<W: Tx>(
        &mut self,
        tx: &mut Steps<W>,
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
