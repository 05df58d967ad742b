//! `[mapping]`: what the admin sets on top of the built-in AWS profile (compiled by
//! `mapping::rules`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[mapping]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingSettings {
    /// Attributes of the AWS user to leave out (`title`, `name.middleName`,
    /// `enterprise.costCenter`, `emails`, …).
    pub drop_user_attributes: Vec<String>,
    /// Attribute → CEL expression over `user` (the SCIM user).
    pub user_set: BTreeMap<String, String>,
}
