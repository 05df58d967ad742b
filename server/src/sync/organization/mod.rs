//! The AWS organisation as assignment rules see it: the tree of roots, organisational units
//! and accounts read through the [`Organizations`](crate::sync::target::Organizations) port ([`tree`]), and the accounts a rule's
//! organisation targets resolve to ([`targets`]), kept between runs ([`cache`]). Read when a
//! rule needs it; the bridge never changes the organisation.

pub mod cache;
pub mod targets;
pub mod tree;

pub use cache::{Freshness, OrganizationCache};
pub use targets::resolve;
pub use tree::{OrgTree, TreeAccount};
