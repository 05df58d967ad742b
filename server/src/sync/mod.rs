//! The sync engine: desired state (store + mappings) → plan → AWS, with its state in the
//! database. [`target`] is what it needs of IAM Identity Center; [`aws`] provides it.

pub mod access;
mod apply;
pub mod audit;
pub mod aws;
pub mod control;
pub mod directory;
pub mod engine;
pub mod fingerprint;
pub mod guard;
pub mod health;
pub mod hold;
pub mod plan;
pub mod scheduler;
pub mod target;
