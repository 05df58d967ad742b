//! Users, groups and memberships: [`plan`] works out what must change in AWS (pure), and
//! [`apply`] makes those changes one by one, recording each.

pub mod apply;
pub mod diff;
mod outcome;
pub mod plan;

pub(crate) use outcome::not_adoptable;
