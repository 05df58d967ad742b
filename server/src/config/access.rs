//! `[[permission_sets]]`, `[[assignments.account]]` and `[[assignments.application]]` as
//! declared (checked by `sync::access::rules`, which reads the inline policy files).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One managed permission set: created (or adopted by name) and kept as declared, updated in
/// place — never deleted and re-created, which would change its IAM role names.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PermissionSetSettings {
    pub name: String,
    pub description: Option<String>,
    /// ISO-8601 duration, 1 to 12 hours (`PT8H`); unset: AWS's default (1 hour).
    pub session_duration: Option<String>,
    pub relay_state: Option<String>,
    /// AWS-managed policy ARNs.
    pub managed_policies: Vec<String>,
    pub customer_managed_policies: Vec<CustomerManagedPolicy>,
    /// A JSON policy document, relative to the config file.
    pub inline_policy_file: Option<PathBuf>,
    /// The document read from `inline_policy_file` at load.
    #[serde(skip)]
    pub inline_policy: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerManagedPolicy {
    pub name: String,
    #[serde(default = "root_path")]
    pub path: String,
}

fn root_path() -> String {
    "/".to_owned()
}

/// `[assignments]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssignmentSettings {
    pub account: Vec<AccountRule>,
    pub application: Vec<ApplicationRule>,
}

impl AssignmentSettings {
    pub fn is_empty(&self) -> bool {
        self.account.is_empty() && self.application.is_empty()
    }

    /// Whether a run must read AWS Organizations: an account rule targets units, tags or names.
    pub fn reads_organization(&self) -> bool {
        self.account.iter().any(AccountRule::targets_organization)
    }

    /// Whether that read needs the accounts' tags (one call per account).
    pub fn reads_account_tags(&self) -> bool {
        self.account.iter().any(|r| !r.account_tags.is_empty())
    }
}

/// An AWS account id: exactly 12 ASCII digits.
pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountRule {
    /// The source whose principals the rule assigns. Required once the database holds more
    /// than one source: a rule must never match what another IdP pushed.
    pub source: Option<String>,
    pub group: Option<String>,
    pub group_external_id: Option<String>,
    pub user: Option<String>,
    /// The permission set's name (declared in `[[permission_sets]]` or existing in AWS).
    pub permission_set: String,
    /// 12-digit AWS account ids.
    pub accounts: Vec<String>,
    /// Root (`r-…`) and organisational unit (`ou-…`) ids: every active account below them,
    /// recursively, as the organisation stands at each run.
    pub organizational_units: Vec<String>,
    /// Active accounts carrying every one of these tags (key = value, compared exactly).
    pub account_tags: BTreeMap<String, String>,
    /// Glob patterns (`*`, `?`, `[a-z]`) on the active accounts' names, case-insensitive.
    pub account_names: Vec<String>,
    /// Account ids taken out of what the other keys name.
    pub exclude_accounts: Vec<String>,
}

impl AccountRule {
    /// Whether its targets are read from AWS Organizations (else only `accounts` names them).
    pub fn targets_organization(&self) -> bool {
        !self.organizational_units.is_empty()
            || !self.account_tags.is_empty()
            || !self.account_names.is_empty()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApplicationRule {
    /// As [`AccountRule::source`].
    pub source: Option<String>,
    pub group: Option<String>,
    pub group_external_id: Option<String>,
    pub user: Option<String>,
    pub application_arn: String,
    /// Sets the application's assignment configuration: true, only assigned principals may use
    /// it; false, everyone may. Unset: left as it is.
    pub assignment_required: Option<bool>,
}
