//! What applying one action came to, where it differs from "done": the per-principal failures
//! a run reports and goes on from, and the errors that end it.

use super::plan::Action;
use crate::sync::error::SyncError;
use crate::sync::target::{AttributeChange, AwsError};
use scim_schema::schema::ResourceKind;

pub(super) enum Failure {
    Aws(AwsError),
    /// Not attempted, for a reason the admin must act on (an unmanaged AWS principal the
    /// source may not take over): a per-principal error.
    Refused(String),
    /// A membership whose group or user is not in AWS (its create failed and was reported).
    EndMissing,
    /// Put off to the end of the run (see `Apply::deferred`).
    Deferred,
    Other(SyncError),
}

impl Failure {
    /// As an error that ends the run (where a caller cannot go on from it).
    pub(super) fn into_sync_error(self) -> SyncError {
        match self {
            Failure::Aws(e) => SyncError::Aws(e),
            Failure::Refused(m) => SyncError::Refused(m),
            Failure::EndMissing => SyncError::Other(anyhow::anyhow!("a membership end is missing")),
            Failure::Deferred => SyncError::Other(anyhow::anyhow!("deferred")),
            Failure::Other(e) => e,
        }
    }
}

impl From<AwsError> for Failure {
    fn from(e: AwsError) -> Self {
        Failure::Aws(e)
    }
}

impl From<SyncError> for Failure {
    fn from(e: SyncError) -> Self {
        Failure::Other(e)
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Failure::Other(e.into())
    }
}

/// What an action came to, where it can differ from the plan.
pub(super) enum Outcome {
    AsPlanned,
    /// A create found an unmanaged principal of the name and took it over.
    Adopted,
}

/// Whether a create may take over an unmanaged AWS principal holding its name.
pub(super) struct Adoption<'a> {
    pub source: &'a str,
    pub allowed: bool,
}

/// Why a create does not take over the unmanaged AWS principal holding its name.
pub(crate) fn not_adoptable(kind: ResourceKind, name: &str, aws_id: &str, source: &str) -> String {
    let (what, attribute) = match kind {
        ResourceKind::User => ("user", "userName"),
        ResourceKind::Group => ("group", "displayName"),
    };
    format!(
        "not created: an AWS {what} with {attribute} {name:?} already exists (id {aws_id}) and \
         the bridge does not manage it; it was left as it is. To let source {source:?} take it \
         over, set [sources.{source}] adopt_existing = true; otherwise rename one of them"
    )
}

pub(super) fn principal_of(action: &Action) -> String {
    match action {
        Action::Create { name, .. }
        | Action::Adopt { name, .. }
        | Action::Update { name, .. }
        | Action::Delete { name, .. } => name.clone(),
        Action::AddMember { group, user, .. } | Action::RemoveMember { group, user, .. } => {
            format!("{group} / {user}")
        }
    }
}

/// The attribute that names a principal in AWS (unique per kind).
pub(super) fn name_attribute(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "userName",
        ResourceKind::Group => "displayName",
    }
}

pub(super) fn renames(kind: ResourceKind, changes: &[AttributeChange]) -> bool {
    changes.iter().any(|(k, _)| k == name_attribute(kind))
}
