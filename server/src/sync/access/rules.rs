//! `[[permission_sets]]`, `[[assignments.account]]` and `[[assignments.application]]`: what the
//! admin declares, checked at start-up so that a malformed rule stops the process with the key
//! named instead of quietly assigning nothing (or the wrong thing).

use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

pub use crate::config::{
    AccountRule, ApplicationRule, AssignmentSettings, CustomerManagedPolicy, PermissionSetSettings,
};

/// Who a rule assigns: one synced group (by displayName, or by the IdP's externalId, which
/// survives renames) or one synced user (by userName).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum Subject {
    Group(String),
    GroupExternalId(String),
    User(String),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Group(name) => write!(f, "group {name:?}"),
            Subject::GroupExternalId(id) => write!(f, "group with externalId {id:?}"),
            Subject::User(name) => write!(f, "user {name:?}"),
        }
    }
}

impl AccountRule {
    /// The rule's principal (validated: exactly one is set).
    pub fn subject(&self) -> Subject {
        subject(&self.group, &self.group_external_id, &self.user)
    }
}

impl ApplicationRule {
    pub fn subject(&self) -> Subject {
        subject(&self.group, &self.group_external_id, &self.user)
    }
}

fn subject(group: &Option<String>, external: &Option<String>, user: &Option<String>) -> Subject {
    match (group, external, user) {
        (Some(g), _, _) => Subject::Group(g.clone()),
        (_, Some(e), _) => Subject::GroupExternalId(e.clone()),
        (_, _, Some(u)) => Subject::User(u.clone()),
        _ => Subject::Group(String::new()),
    }
}

/// Reads every `inline_policy_file` (relative to the config file's directory) as JSON.
pub fn load_inline_policies(
    sets: &mut [PermissionSetSettings],
    config_dir: &Path,
) -> anyhow::Result<()> {
    for (i, set) in sets.iter_mut().enumerate() {
        let Some(file) = &set.inline_policy_file else { continue };
        let path = config_dir.join(file);
        let key = format!("permission_sets[{i}].inline_policy_file");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("config: {key}: cannot read {}: {e}", path.display()))?;
        // AWS's limit on an inline policy.
        if text.len() > 32_768 {
            anyhow::bail!(
                "config: {key}: {} is {} bytes; an inline policy holds at most 32768",
                path.display(),
                text.len()
            );
        }
        let doc: Value = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!("config: {key}: {} is not a JSON policy document: {e}", path.display())
        })?;
        if !doc.is_object() {
            anyhow::bail!("config: {key}: {} must hold a JSON object", path.display());
        }
        set.inline_policy = Some(doc);
    }
    Ok(())
}

/// Checks the declarations on their own (what AWS holds is checked by the run and by
/// `scimbridge check`).
pub fn validate(sets: &[PermissionSetSettings], rules: &AssignmentSettings) -> anyhow::Result<()> {
    let mut names = HashSet::new();
    for (i, set) in sets.iter().enumerate() {
        let key = format!("permission_sets[{i}]");
        check_permission_set_name(&format!("{key}.name"), &set.name)?;
        if !names.insert(set.name.to_lowercase()) {
            anyhow::bail!("config: {key}.name: {:?} is declared twice", set.name);
        }
        if let Some(d) = &set.description
            && (d.is_empty() || d.chars().count() > 700)
        {
            anyhow::bail!("config: {key}.description must hold 1 to 700 characters");
        }
        if let Some(r) = &set.relay_state
            && (r.is_empty() || r.chars().count() > 240)
        {
            anyhow::bail!("config: {key}.relay_state must hold 1 to 240 characters");
        }
        if let Some(d) = &set.session_duration {
            let seconds = parse_duration(d).ok_or_else(|| {
                anyhow::anyhow!(
                    "config: {key}.session_duration: {d:?} is not an ISO-8601 duration such as \"PT8H\""
                )
            })?;
            if !(3600..=12 * 3600).contains(&seconds) {
                anyhow::bail!("config: {key}.session_duration: {d:?} is outside 1 to 12 hours");
            }
        }
        let mut seen = HashSet::new();
        for (j, arn) in set.managed_policies.iter().enumerate() {
            if !is_managed_policy_arn(arn) {
                anyhow::bail!(
                    "config: {key}.managed_policies[{j}]: {arn:?} is not an AWS-managed policy ARN \
                     (arn:aws:iam::aws:policy/…); use customer_managed_policies for your own"
                );
            }
            if !seen.insert(arn) {
                anyhow::bail!("config: {key}.managed_policies[{j}]: {arn:?} is listed twice");
            }
        }
        if set.managed_policies.len() > 20 {
            anyhow::bail!("config: {key}.managed_policies: at most 20");
        }
        for (j, p) in set.customer_managed_policies.iter().enumerate() {
            let valid_name = !p.name.is_empty()
                && p.name.len() <= 128
                && p.name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            if !valid_name {
                anyhow::bail!(
                    "config: {key}.customer_managed_policies[{j}].name: {:?} is not an IAM policy name",
                    p.name
                );
            }
            if !(p.path.starts_with('/') && p.path.ends_with('/')) || p.path.len() > 512 {
                anyhow::bail!(
                    "config: {key}.customer_managed_policies[{j}].path: {:?} must begin and end with \"/\"",
                    p.path
                );
            }
        }
    }
    for (i, rule) in rules.account.iter().enumerate() {
        let key = format!("assignments.account[{i}]");
        check_source(&key, &rule.source)?;
        check_subject(&key, &rule.group, &rule.group_external_id, &rule.user)?;
        check_permission_set_name(&format!("{key}.permission_set"), &rule.permission_set)?;
        check_account_targets(&key, rule)?;
    }
    let mut required: BTreeMap<&str, (usize, bool)> = BTreeMap::new();
    for (i, rule) in rules.application.iter().enumerate() {
        let key = format!("assignments.application[{i}]");
        check_source(&key, &rule.source)?;
        check_subject(&key, &rule.group, &rule.group_external_id, &rule.user)?;
        if !is_application_arn(&rule.application_arn) {
            anyhow::bail!(
                "config: {key}.application_arn: {:?} is not an IAM Identity Center application ARN \
                 (arn:aws:sso::<account>:application/ssoins-…/apl-…)",
                rule.application_arn
            );
        }
        if let Some(value) = rule.assignment_required {
            match required.get(rule.application_arn.as_str()) {
                Some((other, v)) if *v != value => anyhow::bail!(
                    "config: {key}.assignment_required = {value} contradicts \
                     assignments.application[{other}] for the same application"
                ),
                _ => {
                    required.insert(&rule.application_arn, (i, value));
                }
            }
        }
    }
    Ok(())
}

/// The permission sets the rules name that `[[permission_sets]]` does not declare (they must
/// exist in AWS), each with the first key naming it. Names compare exactly, as AWS's do.
pub fn referenced_only(
    sets: &[PermissionSetSettings],
    rules: &AssignmentSettings,
) -> BTreeMap<String, String> {
    let declared: BTreeSet<&str> = sets.iter().map(|s| s.name.as_str()).collect();
    let mut out = BTreeMap::new();
    for (i, rule) in rules.account.iter().enumerate() {
        if !declared.contains(rule.permission_set.as_str()) {
            out.entry(rule.permission_set.clone())
                .or_insert_with(|| format!("assignments.account[{i}].permission_set"));
        }
    }
    out
}

/// `accounts`, `organizational_units`, `account_tags`, `account_names` and
/// `exclude_accounts`: at least one target, each well formed and named once.
fn check_account_targets(key: &str, rule: &AccountRule) -> anyhow::Result<()> {
    if rule.accounts.is_empty() && !rule.targets_organization() {
        anyhow::bail!(
            "config: {key}: name its accounts: accounts, organizational_units, account_tags or \
             account_names"
        );
    }
    check_account_ids(&format!("{key}.accounts"), &rule.accounts)?;
    check_account_ids(&format!("{key}.exclude_accounts"), &rule.exclude_accounts)?;
    let mut seen = HashSet::new();
    for (j, unit) in rule.organizational_units.iter().enumerate() {
        if !is_root_or_unit_id(unit) {
            anyhow::bail!(
                "config: {key}.organizational_units[{j}]: {unit:?} is not a root (r-…) or \
                 organisational unit (ou-…) id"
            );
        }
        if !seen.insert(unit) {
            anyhow::bail!("config: {key}.organizational_units[{j}]: {unit:?} is listed twice");
        }
    }
    for (k, v) in &rule.account_tags {
        // AWS's limits on a tag.
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            anyhow::bail!(
                "config: {key}.account_tags: {k:?} = {v:?} is not a tag (a key of 1 to 128 \
                 characters, a value of at most 256)"
            );
        }
    }
    let mut seen = HashSet::new();
    for (j, pattern) in rule.account_names.iter().enumerate() {
        // An account name holds at most 50 characters; a longer pattern is a mistake.
        if pattern.is_empty() || pattern.chars().count() > 256 {
            anyhow::bail!("config: {key}.account_names[{j}]: a pattern of 1 to 256 characters");
        }
        if let Err(e) = crate::sync::organization::targets::account_glob(pattern) {
            anyhow::bail!("config: {key}.account_names[{j}]: {pattern:?} is not a glob: {e}");
        }
        if !seen.insert(pattern) {
            anyhow::bail!("config: {key}.account_names[{j}]: {pattern:?} is listed twice");
        }
    }
    if let Some(both) = rule.exclude_accounts.iter().find(|a| rule.accounts.contains(a)) {
        anyhow::bail!("config: {key}: account {both:?} is in both accounts and exclude_accounts");
    }
    Ok(())
}

/// 12-digit account ids, each once.
fn check_account_ids(key: &str, ids: &[String]) -> anyhow::Result<()> {
    let mut seen = HashSet::new();
    for (j, account) in ids.iter().enumerate() {
        if !crate::config::is_account_id(account) {
            anyhow::bail!("config: {key}[{j}]: {account:?} is not a 12-digit AWS account id");
        }
        if !seen.insert(account) {
            anyhow::bail!("config: {key}[{j}]: {account:?} is listed twice");
        }
    }
    Ok(())
}

/// `r-` and 4 to 32 lowercase letters or digits, or `ou-`, that, `-` and 8 to 32 more (AWS's
/// patterns for root and unit ids).
fn is_root_or_unit_id(id: &str) -> bool {
    let id_chars = |s: &str, min: usize| {
        (min..=32).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if let Some(root) = id.strip_prefix("r-") {
        return id_chars(root, 4);
    }
    let Some(unit) = id.strip_prefix("ou-") else { return false };
    let Some((root, rest)) = unit.split_once('-') else { return false };
    id_chars(root, 4) && id_chars(rest, 8)
}

fn check_source(key: &str, source: &Option<String>) -> anyhow::Result<()> {
    match source.as_deref().map(crate::names::SourceName::parse) {
        Some(Err(problem)) => anyhow::bail!("config: {key}.source: not a source name: {problem}"),
        _ => Ok(()),
    }
}

fn check_subject(
    key: &str,
    group: &Option<String>,
    external: &Option<String>,
    user: &Option<String>,
) -> anyhow::Result<()> {
    let set: Vec<(&str, &String)> =
        [("group", group), ("group_external_id", external), ("user", user)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect();
    match set.as_slice() {
        [] => anyhow::bail!(
            "config: {key} names no principal: set one of group, group_external_id or user"
        ),
        [(k, v)] if v.trim().is_empty() => anyhow::bail!("config: {key}.{k} is empty"),
        [_] => Ok(()),
        many => anyhow::bail!(
            "config: {key} names {} principals ({}): a rule assigns one; write one rule each",
            many.len(),
            many.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// 1 to 32 characters of `[\w+=,.@-]`.
fn check_permission_set_name(key: &str, name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.chars().count() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !valid {
        anyhow::bail!(
            "config: {key}: {name:?} is not a permission set name (1 to 32 letters, digits or _+=,.@-)"
        );
    }
    Ok(())
}

fn is_managed_policy_arn(arn: &str) -> bool {
    let Some(rest) = arn.strip_prefix("arn:") else { return false };
    let Some((partition, rest)) = rest.split_once(':') else { return false };
    partition.starts_with("aws")
        && rest.strip_prefix("iam::aws:policy/").is_some_and(|p| !p.is_empty() && !p.ends_with('/'))
}

/// `arn:aws…:sso::<12 digits>:application/(sso)?ins-<16>/apl-<16>`.
fn is_application_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_, partition, "sso", "", account, resource] = parts.as_slice() else { return false };
    let ids: Vec<&str> = resource.split('/').collect();
    let ["application", instance, app] = ids.as_slice() else { return false };
    let instance = instance.strip_prefix("sso").unwrap_or(instance);
    let id_ok = |s: Option<&str>, extra: &str| {
        s.is_some_and(|s| {
            s.len() == 16 && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
        })
    };
    *arn_ == "arn"
        && partition.starts_with("aws")
        && crate::config::is_account_id(account)
        && id_ok(instance.strip_prefix("ins-"), "-.")
        && id_ok(app.strip_prefix("apl-"), "")
}

/// Seconds in an ISO-8601 duration of hours, minutes and seconds (`PT8H`, `PT1H30M`).
pub fn parse_duration(text: &str) -> Option<u64> {
    let mut rest = text.strip_prefix("PT")?;
    if rest.is_empty() {
        return None;
    }
    let mut total = 0u64;
    let mut last_unit = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        let (unit, order) = match rest[digits..].chars().next()? {
            'H' => (3600, 1),
            'M' => (60, 2),
            'S' => (1, 3),
            _ => return None,
        };
        // Units in order, each once.
        if order <= last_unit {
            return None;
        }
        last_unit = order;
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[digits + 1..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account_rule(group: Option<&str>, user: Option<&str>, accounts: &[&str]) -> AccountRule {
        AccountRule {
            group: group.map(str::to_owned),
            user: user.map(str::to_owned),
            permission_set: "ReadOnly".into(),
            accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn err(sets: &[PermissionSetSettings], rules: &AssignmentSettings) -> String {
        validate(sets, rules).unwrap_err().to_string()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT8H"), Some(8 * 3600));
        assert_eq!(parse_duration("PT1H30M"), Some(5400));
        assert_eq!(parse_duration("PT3600S"), Some(3600));
        for bad in ["8H", "PT", "PTH", "PT1M1H", "P1D", "PT1.5H", "PT1H1H"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn application_arns() {
        let good =
            "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111";
        assert!(is_application_arn(good));
        assert!(is_application_arn(
            "arn:aws-us-gov:sso::123456789012:application/ins-11111111111111.1/apl-abcdefABCDEF0123"
        ));
        for bad in [
            "arn:aws:sso::12345678901:application/ssoins-1111111111111111/apl-1111111111111111",
            "arn:aws:sso:::application/ssoins-1111111111111111/apl-1111111111111111",
            "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-111111111111111",
            "arn:aws:iam::123456789012:application/ssoins-1111111111111111/apl-1111111111111111",
            "apl-1111111111111111",
        ] {
            assert!(!is_application_arn(bad), "{bad}");
        }
    }

    #[test]
    fn a_rule_names_exactly_one_principal() {
        let none = AssignmentSettings {
            account: vec![account_rule(None, None, &["111111111111"])],
            ..Default::default()
        };
        assert!(err(&[], &none).contains("assignments.account[0] names no principal"));
        let two = AssignmentSettings {
            account: vec![account_rule(Some("Admins"), Some("ana"), &["111111111111"])],
            ..Default::default()
        };
        assert!(err(&[], &two).contains("names 2 principals (group, user)"));
        let empty = AssignmentSettings {
            account: vec![account_rule(Some(" "), None, &["111111111111"])],
            ..Default::default()
        };
        assert!(err(&[], &empty).contains("assignments.account[0].group is empty"));
    }

    #[test]
    fn organisation_targets_are_checked_naming_the_key() {
        let rule = |edit: &dyn Fn(&mut AccountRule)| {
            let mut rule = account_rule(Some("A"), None, &[]);
            edit(&mut rule);
            err(&[], &AssignmentSettings { account: vec![rule], ..Default::default() })
        };
        assert!(rule(&|_| {}).contains("assignments.account[0]: name its accounts"));
        let units = |ids: &[&str]| ids.iter().map(|i| (*i).to_owned()).collect::<Vec<_>>();
        for bad in ["ou-ab12", "OU-AB12-CDEF1234", "r-", "ou-ab12-cdef12", "111111111111"] {
            let e = rule(&|r| r.organizational_units = units(&[bad]));
            assert!(e.contains("organizational_units[0]") && e.contains(bad), "{bad}: {e}");
        }
        let e = rule(&|r| r.organizational_units = units(&["r-ab12", "r-ab12"]));
        assert!(e.contains("listed twice"), "{e}");
        let e = rule(&|r| r.account_names = units(&["prod-[a"]));
        assert!(e.contains("account_names[0]: \"prod-[a\" is not a glob"), "{e}");
        let e = rule(&|r| r.account_names = units(&[""]));
        assert!(e.contains("account_names[0]"), "{e}");
        let e = rule(&|r| r.account_tags = [(String::new(), "x".to_owned())].into());
        assert!(e.contains("account_tags"), "{e}");
        let e = rule(&|r| {
            r.organizational_units = units(&["r-ab12"]);
            r.exclude_accounts = units(&["1234"]);
        });
        assert!(e.contains("exclude_accounts[0]: \"1234\""), "{e}");
        let e = rule(&|r| {
            r.accounts = units(&["111111111111"]);
            r.exclude_accounts = units(&["111111111111"]);
        });
        assert!(e.contains("in both accounts and exclude_accounts"), "{e}");
        // Well formed: AWS's shapes of root and unit ids.
        let mut good = account_rule(Some("A"), None, &[]);
        good.organizational_units = units(&["r-ab12", "ou-ab12-cdef1234"]);
        good.account_tags = [("env".to_owned(), "prod".to_owned())].into();
        good.account_names = units(&["prod-*"]);
        let rules = AssignmentSettings { account: vec![good], ..Default::default() };
        validate(&[], &rules).unwrap();
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        let rules = AssignmentSettings {
            account: vec![
                account_rule(Some("A"), None, &["111111111111"]),
                account_rule(Some("B"), None, &["111111111111", "12345"]),
            ],
            ..Default::default()
        };
        assert!(err(&[], &rules).contains("assignments.account[1].accounts[1]: \"12345\""));
    }

    #[test]
    fn permission_sets_are_checked() {
        let set = |f: fn(&mut PermissionSetSettings)| {
            let mut s = PermissionSetSettings { name: "Admin".into(), ..Default::default() };
            f(&mut s);
            s
        };
        let none = AssignmentSettings::default();
        assert!(validate(&[set(|_| {})], &none).is_ok());
        assert!(
            err(&[set(|s| s.name = "has space".into())], &none).contains("permission_sets[0].name")
        );
        assert!(
            err(&[set(|s| s.session_duration = Some("PT13H".into()))], &none)
                .contains("outside 1 to 12 hours")
        );
        assert!(
            err(
                &[set(|s| s.managed_policies = vec!["arn:aws:iam::123456789012:policy/x".into()])],
                &none
            )
            .contains("permission_sets[0].managed_policies[0]")
        );
        assert!(err(&[set(|_| {}), set(|_| {})], &none).contains("declared twice"));
        assert!(
            err(
                &[set(|s| s.customer_managed_policies =
                    vec![CustomerManagedPolicy { name: "x".into(), path: "nope".into() }])],
                &none
            )
            .contains("customer_managed_policies[0].path")
        );
    }

    #[test]
    fn contradicting_assignment_required_is_refused() {
        let arn =
            "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111";
        let rule = |group: &str, required| ApplicationRule {
            group: Some(group.into()),
            application_arn: arn.into(),
            assignment_required: Some(required),
            ..Default::default()
        };
        let rules = AssignmentSettings {
            application: vec![rule("A", true), rule("B", false)],
            ..Default::default()
        };
        assert!(err(&[], &rules).contains("assignments.application[1].assignment_required"));
    }

    #[test]
    fn undeclared_permission_sets_are_named_with_their_first_key() {
        let declared = [PermissionSetSettings { name: "Admin".into(), ..Default::default() }];
        let mut rules = AssignmentSettings::default();
        rules.account.push(AccountRule {
            permission_set: "Admin".into(),
            ..account_rule(Some("A"), None, &["111111111111"])
        });
        rules.account.push(account_rule(Some("B"), None, &["111111111111"]));
        rules.account.push(account_rule(Some("C"), None, &["111111111111"]));
        rules.account.push(AccountRule {
            permission_set: "admin".into(),
            ..account_rule(Some("D"), None, &["111111111111"])
        });
        let only = referenced_only(&declared, &rules);
        assert_eq!(only.len(), 2);
        assert_eq!(only["ReadOnly"], "assignments.account[1].permission_set");
        assert_eq!(only["admin"], "assignments.account[3].permission_set");
    }
}
