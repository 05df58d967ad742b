//! The accounts an `[[assignments.account]]` rule targets: what `accounts` names, and the
//! active accounts of the organisation under its `organizational_units`, carrying all its
//! `account_tags` or named like one of its `account_names` — minus `exclude_accounts`.
//!
//! A unit the organisation does not have (mistyped, or deleted) makes the rule unresolvable:
//! the run refuses it and removes nothing, as for an unknown permission set, because "no
//! account under it" would strip everyone of access it granted.

use super::tree::OrgTree;
use crate::config::AccountRule;
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use std::collections::BTreeSet;

/// A glob on account names as the rules use it: case-insensitive (account names are labels
/// people type in several spellings), `*` never stopping at `/`.
pub fn account_glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).case_insensitive(true).literal_separator(false).build()
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, globset::Error> {
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        set.add(account_glob(p)?);
    }
    set.build()
}

/// The accounts `rule` targets in `tree`. `tree` is None when the rule names only `accounts` (no
/// organisation read is needed). Err: why the rule cannot be resolved.
pub fn resolve(rule: &AccountRule, tree: Option<&OrgTree>) -> Result<BTreeSet<String>, String> {
    let mut accounts: BTreeSet<String> = rule.accounts.iter().cloned().collect();
    if rule.targets_organization() {
        let Some(tree) = tree else {
            return Err("the organisation could not be read".to_owned());
        };
        if let Some(unknown) =
            rule.organizational_units.iter().find(|unit| !tree.parents.contains(unit.as_str()))
        {
            return Err(format!(
                "organizational_units: {unknown:?} is no root or organisational unit of the \
                 organisation (mistyped, or deleted)"
            ));
        }
        let names = glob_set(&rule.account_names).map_err(|e| format!("account_names: {e}"))?;
        let wanted = |account: &super::TreeAccount| {
            account.path.iter().any(|p| rule.organizational_units.contains(p))
                || (!rule.account_tags.is_empty()
                    && rule.account_tags.iter().all(|(k, v)| account.tags.get(k) == Some(v)))
                || names.is_match(&account.name)
        };
        accounts.extend(tree.active().filter(|(_, a)| wanted(a)).map(|(id, _)| id.to_owned()));
    }
    for excluded in &rule.exclude_accounts {
        accounts.remove(excluded);
    }
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::organization::TreeAccount;
    use crate::sync::target::AccountState;
    use std::collections::BTreeMap;

    fn account(name: &str, path: &[&str], tags: &[(&str, &str)]) -> TreeAccount {
        TreeAccount {
            name: name.to_owned(),
            state: AccountState::Active,
            path: path.iter().map(|p| (*p).to_owned()).collect(),
            tags: tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    /// r-root ─ ou-top ─ ou-mid: 111 (prod-payments, env=prod); ou-top: 222 (dev-tools,
    /// env=dev); r-root: 333 (Prod-Legacy, closed), 444 (prod-web, env=prod).
    fn tree() -> OrgTree {
        let mut accounts = BTreeMap::new();
        accounts.insert(
            "111111111111".into(),
            account("prod-payments", &["r-root", "ou-top", "ou-mid"], &[("env", "prod")]),
        );
        accounts.insert(
            "222222222222".into(),
            account("dev-tools", &["r-root", "ou-top"], &[("env", "dev")]),
        );
        let mut closed = account("Prod-Legacy", &["r-root"], &[("env", "prod")]);
        closed.state = AccountState::Inactive;
        accounts.insert("333333333333".into(), closed);
        accounts
            .insert("444444444444".into(), account("prod-web", &["r-root"], &[("env", "prod")]));
        OrgTree {
            management_account: Some("999999999999".into()),
            parents: ["r-root", "ou-top", "ou-mid"].into_iter().map(str::to_owned).collect(),
            accounts,
            with_tags: true,
        }
    }

    fn targets(rule: AccountRule) -> Vec<String> {
        resolve(&rule, Some(&tree())).unwrap().into_iter().collect()
    }

    #[test]
    fn a_unit_reaches_every_active_account_below_it_recursively() {
        let rule =
            AccountRule { organizational_units: vec!["ou-top".into()], ..Default::default() };
        assert_eq!(targets(rule), ["111111111111", "222222222222"]);
        // The root reaches everything active, not the closed account.
        let rule =
            AccountRule { organizational_units: vec!["r-root".into()], ..Default::default() };
        assert_eq!(targets(rule), ["111111111111", "222222222222", "444444444444"]);
    }

    #[test]
    fn tags_must_all_match_and_names_match_case_insensitively() {
        let tags = [("env".to_owned(), "prod".to_owned())].into_iter().collect();
        let rule = AccountRule { account_tags: tags, ..Default::default() };
        assert_eq!(targets(rule), ["111111111111", "444444444444"]);
        let tags = [("env", "prod"), ("team", "web")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let rule = AccountRule { account_tags: tags, ..Default::default() };
        assert!(targets(rule).is_empty(), "an account lacking one tag is not a target");
        let rule = AccountRule { account_names: vec!["PROD-*".into()], ..Default::default() };
        assert_eq!(targets(rule), ["111111111111", "444444444444"]);
    }

    #[test]
    fn the_targets_are_the_union_minus_the_exclusions() {
        let rule = AccountRule {
            accounts: vec!["555555555555".into()],
            organizational_units: vec!["ou-mid".into()],
            account_names: vec!["dev-*".into(), "prod-web".into()],
            exclude_accounts: vec!["444444444444".into()],
            ..Default::default()
        };
        assert_eq!(targets(rule), ["111111111111", "222222222222", "555555555555"]);
    }

    #[test]
    fn an_unknown_unit_or_an_unread_organisation_leaves_the_rule_unresolved() {
        let rule =
            AccountRule { organizational_units: vec!["ou-gone".into()], ..Default::default() };
        let err = resolve(&rule, Some(&tree())).unwrap_err();
        assert!(err.contains("\"ou-gone\""), "{err}");
        let rule = AccountRule { account_names: vec!["*".into()], ..Default::default() };
        assert!(resolve(&rule, None).is_err());
        // A rule of explicit accounts needs no organisation.
        let rule = AccountRule { accounts: vec!["555555555555".into()], ..Default::default() };
        assert_eq!(resolve(&rule, None).unwrap().len(), 1);
    }
}
