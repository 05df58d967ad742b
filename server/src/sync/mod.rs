//! The sync engine: desired state (store + mappings) → plan → AWS, with its state in the
//! database. [`target`] is what it needs of IAM Identity Center; [`aws`] provides it.
//! [`run`] is one run as phases, [`principals`] plans and applies users, groups and
//! memberships, [`access`] permission sets and assignments (with the accounts of the AWS
//! organisation rules target, [`organization`]); [`engine`] re-exports the entry points.

pub mod access;
pub mod audit;
pub mod aws;
pub mod change_trigger;
pub mod control;
pub mod counts;
pub mod engine;
pub mod error;
pub mod fingerprint;
pub mod guard;
pub mod health;
pub mod hold;
pub mod organization;
pub mod principals;
pub mod retention;
pub mod run;
pub mod scheduler;
pub mod target;

/// `sync::plan`, where the access module and commands have always found `Skipped`.
pub use principals::plan;
