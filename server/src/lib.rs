//! scimbridge: a SCIM 2.0 service provider that identity providers push users and groups into,
//! for provisioning AWS IAM Identity Center.
//!
//! - [`config`]: the settings as plain data, layered from file, environment and flags
//! - [`startup`]: the composition root (what `serve` runs, and the in-process test app) and
//!   the checked settings every command starts from
//! - [`cli`], [`commands`], [`exit`], [`telemetry`]: the command line, one module per command,
//!   exit codes, logs
//! - [`http`]: the SCIM endpoints and health probes (actix-web)
//! - [`scim`]: what each SCIM operation does, independent of HTTP
//! - [`auth`]: bearer tokens
//! - [`store`]: PostgreSQL and SQLite storage behind one interface
//! - [`names`]: the one normal form of userNames and displayNames
//! - [`sync`]: the sync engine into AWS; [`status`]: what `/admin/v1/status` and `scimbridge status` show
//! - [`show`]: one user or group as `scimbridge show` reports it
//! - [`access_report`]: who can reach what, as `scimbridge access` and `/admin/v1/access` give it

pub mod access_report;
pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod exit;
pub mod http;
pub mod mapping;
pub mod names;
pub mod scim;
pub mod show;
pub mod startup;
pub mod status;
pub mod store;
pub mod sync;
pub mod telemetry;
