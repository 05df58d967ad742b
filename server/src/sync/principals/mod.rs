//! Users, groups and memberships: [`plan`] works out what must change in AWS (pure; a change
//! run plans the [`scope`] its changes reach), and [`apply`] makes those changes one by one,
//! recording each.

pub mod apply;
pub mod diff;
mod memberships;
mod outcome;
pub mod plan;
pub mod scope;

pub(crate) use outcome::not_adoptable;
