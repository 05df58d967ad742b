//! End-to-end tests: the real server over HTTP (in-process on a free port, or the real binary
//! for the CLI), on SQLite and on PostgreSQL. One test binary: add modules here, not files
//! beside this one (every test file is another binary to link).
//!
//! PostgreSQL tests need `DATABASE_URL` (a server where the tests may create databases);
//! `scripts/test.sh` provides one (see `scripts/with-postgres.sh`).

mod support;

mod access;
mod admin;
mod assignments;
mod bad_input;
mod bulk;
mod change_runs;
mod cli;
mod concurrency;
mod control;
mod day2;
mod discovery;
mod edge;
mod filter_differential;
mod filters;
mod groups;
mod ha;
mod idp;
mod infra_errors;
mod listing;
mod logs;
mod member_changes;
mod organization;
mod plan_pages;
mod retention;
mod rules_fingerprint;
mod source_trust;
mod sources;
mod status;
mod sync;
mod tls;
mod tolerances;
mod users;
mod versioning;
mod wiring;
