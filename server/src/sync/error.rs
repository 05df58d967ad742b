//! How a sync run fails, as a type: callers match on why a run ended instead of comparing its
//! text. The texts are the ones runs have always recorded in their reports.

use super::target::AwsError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The server is shutting down: the run stopped before its next AWS call (what it did is
    /// recorded).
    #[error("stopped: the server is shutting down; the next run continues from the record")]
    Stopped,
    /// Another run took the lease (this process stalled past it): two runs at once could fight.
    #[error(
        "the sync lease was lost to another run (this process stalled past it); the run \
         stopped and the next one continues from its record"
    )]
    LeaseLost,
    /// Not attempted, for a reason the admin must act on.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A setting the run cannot work with (the text names it).
    #[error("config: {0}")]
    Config(String),
    /// An error of a part that reports with `anyhow` (the access module, the rules).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl SyncError {
    /// As an `anyhow::Error` whose outermost error is the cause itself (an [`AwsError`], a
    /// [`StoreError`]), so that `downcast_ref` and `chain` find it as they did before this type.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            SyncError::Aws(e) => e.into(),
            SyncError::Store(e) => e.into(),
            SyncError::Other(e) => e,
            other => anyhow::Error::new(other),
        }
    }

    /// Whether this AWS error says the setup is wrong (access denied, no identity store, KMS).
    pub fn is_configuration(&self) -> bool {
        let aws = match self {
            SyncError::Aws(e) => Some(e),
            SyncError::Other(e) => e.downcast_ref::<AwsError>(),
            _ => None,
        };
        matches!(aws, Some(AwsError::AccessDenied { .. } | AwsError::Configuration { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_those_runs_always_recorded() {
        assert_eq!(
            format!("{:#}", SyncError::Stopped.into_anyhow()),
            "stopped: the server is shutting down; the next run continues from the record"
        );
        assert_eq!(
            SyncError::LeaseLost.to_string(),
            "the sync lease was lost to another run (this process stalled past it); the run \
             stopped and the next one continues from its record"
        );
    }

    #[test]
    fn aws_errors_stay_downcastable_and_configuration_is_recognised() {
        let denied = AwsError::AccessDenied { operation: "ListUsers", message: "no".into() };
        let e = SyncError::from(denied.clone());
        assert!(e.is_configuration());
        assert!(e.into_anyhow().downcast_ref::<AwsError>().is_some());
        let wrapped = SyncError::from(anyhow::Error::from(denied));
        assert!(wrapped.is_configuration());
        assert!(!SyncError::Stopped.is_configuration());
    }
}
