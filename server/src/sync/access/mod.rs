//! Access from rules: managed permission sets, account assignments (permission set × account ×
//! principal) and application assignments, kept as `[[permission_sets]]` and `[assignments]`
//! declare them. [`rules`] holds the declarations, [`plan`] works out what must change (pure),
//! [`apply`] makes AWS match through the [`SsoAdmin`](crate::sync::target::SsoAdmin)
//! operations of the target port, which the AWS adapter implements over aws-sdk-ssoadmin.
//! [`AccessRun`] is one run's state; its jobs are split by module: [`permission_sets`],
//! what AWS holds already (`existing`), account assignment operations (`account_ops`),
//! application assignments (`application`), what is written to the record (`record`), and
//! what the run reads of the AWS organisation (`organization`).
//!
//! The bridge owns what it creates: it deletes only assignments it recorded as created; one
//! that existed before a rule wanted it is recorded as foreign and never deleted. Assignments
//! are keyed by the AWS principal id, so a principal renamed in place keeps them.

mod account_ops;
mod application;
pub mod apply;
mod existing;
mod organization;
pub mod permission_sets;
pub mod plan;
mod record;
pub mod rules;
mod run;

pub use run::AccessRun;

#[cfg(test)]
mod tests;
