//! SCIM 2.0 (RFC 7643 / RFC 7644) protocol library for scimbridge. Pure: no I/O.
//!
//! - [`schema`]: attribute metadata and the User, Group and Enterprise User schemas
//! - [`fold`]: the case folding of every case-insensitive comparison (PostgreSQL's `lower()`)
//! - [`filter`]: the nom filter and attribute-path parser, and in-memory evaluation
//! - [`resource`]: validating and normalising incoming resources, rendering outgoing ones
//! - [`patch`]: the PATCH engine
//! - [`projection`]: `attributes` / `excludedAttributes`
//! - [`discovery`]: `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas` documents
//! - [`error`]: the SCIM error shape; [`compat`]: tolerated client deviations

pub mod compat;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod fold;
pub mod patch;
pub mod projection;
pub mod resource;
pub mod schema;

pub use compat::Tolerances;
pub use error::{ScimError, ScimType};
