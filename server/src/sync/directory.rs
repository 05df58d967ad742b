//! The Identity Store port's former path. The traits and types live in [`super::target`] (one
//! port module for the Identity Store and SSO Admin); these re-exports keep the
//! `crate::sync::directory::…` imports of the engine, the principal applier and the commands
//! working.

pub use super::target::{AttributeChange, AwsError, Directory, Listed};
