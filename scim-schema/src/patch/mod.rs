//! The PATCH engine (RFC 7644 §3.5.2), with the client deviations of
//! `shared/reference/scim-and-idp-clients.md` §2.6 behind
//! [`Tolerances`](crate::compat::Tolerances).
//!
//! [`parse_patch_request`] turns a PatchOp body into [`PatchOperation`]s; [`apply_patch`] applies
//! them to the stored document of one resource (no `id`, `meta`, `schemas`, `groups`, `members`
//! or `password`; extension attributes under their URN key). Group membership never touches the
//! document: operations on `members` become [`MemberChange`]s that the server applies in SQL, so
//! a 50,000-member group is never loaded.
//!
//! Decisions where the RFC is silent or unhelpful:
//! - `remove` with a `value` on a multi-valued attribute (`members` included) removes only the
//!   listed values when `remove_member_values` is on. Strictly (RFC) the value is ignored and the
//!   whole attribute goes; since a client sending a value clearly meant *some* values, strict
//!   mode rejects such a request with `invalidValue` instead of silently removing everything.
//! - A filtered `remove` that matches nothing is a no-op when `filtered_path_creates` is on
//!   (removal is idempotent for the IdPs); strict mode answers `noTarget`.
//! - A filtered `replace` replaces each matching element with the value (the RFC's address
//!   example); a filtered `add` merges the value into each matching element.
//! - A path naming a sub-attribute of a multi-valued attribute without a filter (`emails.type`)
//!   addresses that sub-attribute in every element.
//! - Adding an element that is already present (same `value`, and same `type` if given; for
//!   elements without `value`, all given sub-attributes equal) merges into it instead of
//!   appending a duplicate.
//! - `manager` is replaced as a unit by `add`/`replace`: its `value` and `$ref` describe one
//!   reference, and merging would leave an old `$ref` next to a new `value`.
//! - `value: null` means unassigned (RFC 7643 §2.5): `replace` with null unsets, `add` with null
//!   adds nothing.
//! - Removing a required attribute (or making it empty) is `mutability` (RFC 7644 §3.5.2.2).
//! - Unknown attributes are `invalidPath`, or skipped and reported in
//!   [`PatchOutcome::ignored`] with `ignore_unknown`. `id`, `meta` and `schemas` inside a no-path
//!   value are skipped silently (clients echo the resource back, e.g. Okta's group rename);
//!   other readOnly attributes there are skipped and reported. A *path* naming a readOnly
//!   attribute is `mutability`.
//! - `password` is accepted and dropped (AWS has no passwords); it is reported in `ignored`.
//! - On `members`, only the whole attribute (`add`, `remove`, `replace`) and a filtered
//!   `remove` are supported; anything else (`replace members[…]`, `members.value`) is
//!   `invalidPath`.

mod checks;
mod coerce;
mod engine;
mod members;
mod message;
mod multi_valued;
mod object;
mod selected;
mod single_valued;
mod targets;

#[cfg(test)]
mod test_support;

use serde_json::{Map, Value};

use crate::filter::ast::{Filter, PatchPath};
use crate::resource::MemberRef;

pub use engine::apply_patch;
pub use message::parse_patch_request;

pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

type Object = Map<String, Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    Add,
    Remove,
    Replace,
}

impl PatchOpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Remove => "remove",
            PatchOpKind::Replace => "replace",
        }
    }
}

/// One element of `Operations`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOpKind,
    pub path: Option<PatchPath>,
    /// `None` when the operation has no `value` member; `Some(Value::Null)` for `"value": null`.
    pub value: Option<Value>,
}

/// A change to a Group's membership, applied by the server's store.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    /// Add members (duplicates of existing members are no-ops, by the store).
    Add(Vec<MemberRef>),
    /// Remove these member ids (ids that are not members are no-ops).
    Remove(Vec<String>),
    /// `remove` path `members` without a value.
    RemoveAll,
    /// `remove` path `members[<filter>]`: the store translates the filter over the membership
    /// table (sub-attributes `value`, `type`, `display`, `$ref`).
    RemoveWhere(Filter),
    /// `replace` path `members` (or a no-path `replace` whose value has `members`); `[]`
    /// empties the group (Okta "Push now").
    ReplaceAll(Vec<MemberRef>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// False when the patched document equals the original, so the server can keep
    /// `lastModified` and the version (RFC 7644 §3.5.2: adding a present value changes nothing).
    pub doc_changed: bool,
    pub member_changes: Vec<MemberChange>,
    /// Attributes that were dropped: unknown ones (with `ignore_unknown`), readOnly ones inside
    /// a no-path value, `password`, and whatever
    /// [`normalize_doc`](crate::resource::normalize_doc) dropped.
    pub ignored: Vec<String>,
}
