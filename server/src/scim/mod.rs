//! The SCIM service: what each operation does, independent of HTTP (the handlers in
//! `crate::http::scim` and the Bulk endpoint both call it).

pub mod bulk;
pub mod compat;
pub mod list_params;
pub mod render;
pub mod service;

pub use service::{Caller, Existing, ResourceService};
