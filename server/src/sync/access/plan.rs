//! What must change so that AWS's assignments match the rules — pure, so a dry run shows what a
//! real run does. Desired assignments come from the rules and the principals that exist (or will,
//! once this run's creates are in) in AWS; recorded ones from the bridge's own record.
//!
//! Rules that keep access safe:
//! - only assignments recorded as created by the bridge are ever deleted; a foreign one (it
//!   existed before a rule wanted it) is only forgotten when no rule wants it any more;
//! - when a rule cannot be resolved (its permission set is unknown), no assignment is deleted in
//!   this run — what it would have matched is unknown, and a typo must not revoke access —
//!   except those of principals leaving AWS;
//! - a user deactivated at the IdP with `on_deactivate = "remove_memberships"` loses its direct
//!   assignments too, as it loses its groups.

use super::rules::{AssignmentSettings, Subject};
use crate::config::OnDeactivate;
use crate::names::NameKey;
use crate::store::{
    AccessObject, AccessObjectKind, AssignmentKey, AssignmentKind, AssignmentRecord,
    AssignmentState, PrincipalType, Snapshot,
};
use crate::sync::organization::{self, OrgTree};
use crate::sync::plan::Skipped;
use scim_schema::schema::ResourceKind;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// A principal as it will be in AWS once this run's principal changes are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalAfter {
    pub kind: ResourceKind,
    pub resource_id: Uuid,
    /// None: to be created by this run (a dry run's plan).
    pub aws_id: Option<String>,
}

/// An assignment to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assign {
    pub kind: AssignmentKind,
    /// The account id or the application ARN.
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission_set: Option<String>,
    /// None: the permission set is created by this run.
    #[serde(skip)]
    pub permission_set_arn: Option<String>,
    pub principal_type: PrincipalType,
    /// The userName / displayName.
    pub principal: String,
    #[serde(skip)]
    pub resource_id: Uuid,
    /// None: the principal is created by this run.
    #[serde(skip)]
    pub principal_id: Option<String>,
    /// The rule's key (`assignments.account[0]`).
    pub rule: String,
    /// Into the organisation's management account: AWS accepts it only from the management
    /// account itself (not from a delegated administrator), so the plan says so.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub management_account: bool,
}

impl Assign {
    /// The AWS key, once the permission set and principal ids are known.
    pub fn key(&self) -> Option<AssignmentKey> {
        Some(AssignmentKey {
            kind: self.kind,
            target: self.target.clone(),
            permission_set_arn: match self.kind {
                AssignmentKind::Account => self.permission_set_arn.clone()?,
                AssignmentKind::Application => String::new(),
            },
            principal_type: self.principal_type,
            principal_id: self.principal_id.clone()?,
        })
    }
}

/// An assignment the bridge created that no rule wants any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unassign {
    #[serde(flatten)]
    pub key: AssignmentKey,
    /// The permission set's name, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission_set: Option<String>,
    /// The principal's name, where known (else its AWS id).
    pub principal: String,
}

#[derive(Debug, Clone, Default)]
pub struct AccessPlan {
    /// In rule order.
    pub assign: Vec<Assign>,
    pub unassign: Vec<Unassign>,
    /// Foreign assignments no rule wants any more: forgotten, left in AWS.
    pub forget: Vec<AssignmentKey>,
    /// Applications whose assignment configuration changes: (ARN, required).
    pub assignment_required: Vec<(String, bool)>,
    /// Rules that match nothing or cannot be resolved.
    pub skipped: Vec<Skipped>,
    /// False when a rule could not be resolved: deletes wait for a run that resolves them all.
    pub deletes_allowed: bool,
    /// Assignments the bridge created (for the delete guard).
    pub managed: usize,
}

/// What planning needs besides the rules.
pub struct Inputs<'a> {
    pub snapshot: &'a Snapshot,
    pub principals: &'a [PrincipalAfter],
    pub on_deactivate: OnDeactivate,
    /// Permission set name → ARN (None: declared, to be created by this run). A name missing
    /// here is unknown in AWS.
    pub permission_sets: &'a HashMap<String, Option<String>>,
    pub recorded: &'a [AssignmentRecord],
    pub objects: &'a [AccessObject],
    /// The names of every source in the database: a rule without `source` is valid only
    /// while there is one.
    pub sources: &'a [String],
    /// The organisation as this run read it; None when no rule needs it or it could not be
    /// read (a rule that targets it is then unresolved).
    pub organization: Option<&'a OrgTree>,
    /// The organisation's management account, where known.
    pub management_account: Option<&'a str>,
}

/// A SCIM principal a rule may name, with what the rule can match it by.
struct Candidate<'a> {
    kind: ResourceKind,
    id: Uuid,
    name: &'a str,
    /// The key the name is compared by.
    key: NameKey,
    external_id: Option<&'a str>,
    active: bool,
    source: &'a str,
}

pub fn plan(rules: &AssignmentSettings, inputs: &Inputs) -> AccessPlan {
    let mut out = AccessPlan { deletes_allowed: true, ..AccessPlan::default() };
    let after: HashMap<(ResourceKind, Uuid), Option<&str>> =
        inputs.principals.iter().map(|p| ((p.kind, p.resource_id), p.aws_id.as_deref())).collect();
    let candidates = candidates(inputs.snapshot);
    // The principals a rule names, in AWS (or about to be) and entitled to access; Err with
    // why the rule cannot be applied safely.
    let matching = |key: &str, source: Option<&str>, subject: &Subject| {
        named(key, source, subject, &candidates, inputs.sources).map(|named| {
            named
                .into_iter()
                // Only what is (or is about to be) in AWS; a deactivated user loses direct
                // access as it loses its groups.
                .filter(|c| after.contains_key(&(c.kind, c.id)))
                .filter(|c| c.active || inputs.on_deactivate == OnDeactivate::Ignore)
                .collect::<Vec<_>>()
        })
    };
    // A rule that cannot be applied safely: its deletes (and every other) wait, and the run
    // reports a configuration error.
    let refuse_rule = |out: &mut AccessPlan, key: &str, message: String| {
        out.deletes_allowed = false;
        out.skipped.push(skip(key, &message));
    };

    // The principals a rule assigns to; None when the rule is refused. A rule that matches
    // nobody is reported as skipped.
    let assignees =
        |out: &mut AccessPlan, key: &str, source: Option<&str>, subject: Subject| match matching(
            key, source, &subject,
        ) {
            Ok(principals) => {
                if principals.is_empty() {
                    out.skipped.push(skip(key, &format!("no synced {subject} (nothing assigned)")));
                }
                Some(principals)
            }
            Err(message) => {
                refuse_rule(out, key, message);
                None
            }
        };
    // An assignment of `p` to `target` by rule `key`, without a permission set.
    let assign_to = |p: &Candidate<'_>, kind: AssignmentKind, target: &str, key: &str| Assign {
        kind,
        target: target.to_owned(),
        permission_set: None,
        permission_set_arn: None,
        principal_type: principal_type(p.kind),
        principal: p.name.to_owned(),
        resource_id: p.id,
        principal_id: after[&(p.kind, p.id)].map(str::to_owned),
        rule: key.to_owned(),
        management_account: false,
    };

    let mut wanted: Vec<Assign> = Vec::new();
    for (i, rule) in rules.account.iter().enumerate() {
        let key = format!("assignments.account[{i}]");
        let Some(arn) = inputs.permission_sets.get(&rule.permission_set) else {
            refuse_rule(
                &mut out,
                &key,
                format!(
                    "no permission set named {:?} in the Identity Center instance; declare it in \
                     [[permission_sets]] to have it created (no assignment is deleted until this is fixed)",
                    rule.permission_set
                ),
            );
            continue;
        };
        let targets = match organization::resolve(rule, inputs.organization) {
            Ok(accounts) => accounts,
            Err(why) => {
                let message = format!(
                    "{why}: the accounts it targets are not known (no assignment is deleted \
                     until this is fixed)"
                );
                refuse_rule(&mut out, &key, message);
                continue;
            }
        };
        let Some(principals) = assignees(&mut out, &key, rule.source.as_deref(), rule.subject())
        else {
            continue;
        };
        for p in principals {
            for account in &targets {
                let mut assign = assign_to(p, AssignmentKind::Account, account, &key);
                assign.permission_set = Some(rule.permission_set.clone());
                assign.permission_set_arn = arn.clone();
                assign.management_account = inputs.management_account == Some(account.as_str());
                wanted.push(assign);
            }
        }
    }
    let mut required: BTreeMap<&str, bool> = BTreeMap::new();
    for (i, rule) in rules.application.iter().enumerate() {
        let key = format!("assignments.application[{i}]");
        if let Some(value) = rule.assignment_required {
            required.insert(&rule.application_arn, value);
        }
        let Some(principals) = assignees(&mut out, &key, rule.source.as_deref(), rule.subject())
        else {
            continue;
        };
        for p in principals {
            wanted.push(assign_to(p, AssignmentKind::Application, &rule.application_arn, &key));
        }
    }

    let recorded: HashMap<&AssignmentKey, &AssignmentRecord> =
        inputs.recorded.iter().map(|r| (&r.key, r)).collect();
    let mut wanted_keys: HashSet<AssignmentKey> = HashSet::new();
    // Two rules may want one assignment; the first names it.
    let mut seen_pending: HashSet<(AssignmentKind, String, Option<String>, PrincipalType, Uuid)> =
        HashSet::new();
    for a in wanted {
        match a.key() {
            Some(key) => {
                if wanted_keys.insert(key.clone()) && !recorded.contains_key(&key) {
                    out.assign.push(a);
                }
            }
            None => {
                if seen_pending.insert((
                    a.kind,
                    a.target.clone(),
                    a.permission_set.clone(),
                    a.principal_type,
                    a.resource_id,
                )) {
                    out.assign.push(a);
                }
            }
        }
    }

    let names = principal_names(inputs, &candidates);
    // Names of permission sets by ARN: those the rules use, and those the record knows (a
    // rule removed no longer names its permission set).
    let set_names: HashMap<&str, &str> = inputs
        .objects
        .iter()
        .filter(|o| o.kind == AccessObjectKind::PermissionSet)
        .map(|o| (o.arn.as_str(), o.name.as_str()))
        .chain(
            inputs
                .permission_sets
                .iter()
                .filter_map(|(name, arn)| arn.as_deref().map(|a| (a, name.as_str()))),
        )
        .collect();
    // Principals that stay in AWS: the assignments of the others go whatever else is unknown.
    let staying: HashSet<&str> =
        inputs.principals.iter().filter_map(|p| p.aws_id.as_deref()).collect();
    for r in inputs.recorded {
        if r.state != AssignmentState::Foreign {
            out.managed += 1;
        }
        if wanted_keys.contains(&r.key) {
            continue;
        }
        match r.state {
            AssignmentState::Foreign => out.forget.push(r.key.clone()),
            // AWS still works on an operation an earlier run sent: the run settles it first.
            AssignmentState::Creating | AssignmentState::Deleting if r.request_id.is_some() => {}
            _ if !out.deletes_allowed && staying.contains(r.key.principal_id.as_str()) => {}
            _ => out.unassign.push(Unassign {
                key: r.key.clone(),
                permission_set: set_names
                    .get(r.key.permission_set_arn.as_str())
                    .map(|s| (*s).to_owned()),
                principal: names
                    .get(r.key.principal_id.as_str())
                    .map_or_else(|| r.key.principal_id.clone(), |n| (*n).to_owned()),
            }),
        }
    }

    let pushed: HashMap<&str, &Value> = inputs
        .objects
        .iter()
        .filter(|o| o.kind == AccessObjectKind::Application)
        .map(|o| (o.name.as_str(), &o.pushed))
        .collect();
    for (arn, value) in required {
        let current =
            pushed.get(arn).and_then(|p| p.get("assignment_required")).and_then(Value::as_bool);
        if current != Some(value) {
            out.assignment_required.push((arn.to_owned(), value));
        }
    }
    out
}

/// The SCIM principals a rule names among those of its source; Err with why the rule cannot
/// be applied safely: it names no source while several exist (it would match what any IdP
/// pushes), or its externalId matches more than one group.
fn named<'c>(
    key: &str,
    source: Option<&str>,
    subject: &Subject,
    candidates: &'c [Candidate<'c>],
    sources: &[String],
) -> Result<Vec<&'c Candidate<'c>>, String> {
    let source = match (source, sources) {
        (Some(s), _) => s,
        // One source: the rule can only mean it.
        (None, [only]) => only.as_str(),
        (None, []) => return Ok(Vec::new()),
        (None, many) => {
            let mut names: Vec<String> = many.iter().map(|s| format!("{s:?}")).collect();
            names.sort();
            return Err(format!(
                "{key} names no source, and the database holds {} sources ({}): a rule without \
                 `source` would match what any of them pushes; set source = \"…\" to the source \
                 whose principals it assigns (nothing is assigned or removed until this is fixed)",
                many.len(),
                names.join(", ")
            ));
        }
    };
    // The rule's name folded once, not once per candidate.
    let (kind, folded) = match subject {
        Subject::Group(name) => (ResourceKind::Group, Some(NameKey::of(name))),
        Subject::GroupExternalId(_) => (ResourceKind::Group, None),
        Subject::User(name) => (ResourceKind::User, Some(NameKey::of(name))),
    };
    let named: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.source == source && c.kind == kind)
        .filter(|c| match (subject, &folded) {
            (Subject::GroupExternalId(id), _) => c.external_id == Some(id.as_str()),
            (_, Some(name)) => c.key == *name,
            (_, None) => false,
        })
        .collect();
    // An externalId is the IdP's and need not be unique: a rule must name one group.
    if named.len() > 1 {
        return Err(format!(
            "{key}: {subject} matches {} groups of source {source:?} ({}); a rule must name \
             exactly one group (nothing is assigned or removed until this is fixed)",
            named.len(),
            named.iter().map(|c| format!("{:?}", c.name)).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(named)
}

/// The rules that cannot be applied safely against these principals and sources (what
/// `scimbridge check` reports, and a run refuses as a configuration error).
pub fn rule_problems(
    rules: &AssignmentSettings,
    snapshot: &Snapshot,
    sources: &[String],
) -> Vec<Skipped> {
    let candidates = candidates(snapshot);
    let account = rules
        .account
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("assignments.account[{i}]"), r.source.as_deref(), r.subject()));
    let application =
        rules.application.iter().enumerate().map(|(i, r)| {
            (format!("assignments.application[{i}]"), r.source.as_deref(), r.subject())
        });
    account
        .chain(application)
        .filter_map(|(key, source, subject)| {
            named(&key, source, &subject, &candidates, sources).err().map(|m| skip(&key, &m))
        })
        .collect()
}

/// Every SCIM user and group, with the names rules match.
fn candidates(snapshot: &Snapshot) -> Vec<Candidate<'_>> {
    fn text<'v>(doc: &'v Value, key: &str) -> Option<&'v str> {
        doc.get(key).and_then(Value::as_str)
    }
    let users = snapshot.users.iter().map(|u| {
        let name = text(&u.doc, "userName").unwrap_or_default();
        Candidate {
            kind: ResourceKind::User,
            id: u.id,
            name,
            key: NameKey::of(name),
            external_id: None,
            active: u.active,
            source: &u.source,
        }
    });
    let groups = snapshot.groups.iter().map(|g| {
        let name = text(&g.doc, "displayName").unwrap_or_default();
        Candidate {
            kind: ResourceKind::Group,
            id: g.id,
            name,
            key: NameKey::of(name),
            external_id: text(&g.doc, "externalId"),
            active: true,
            source: &g.source,
        }
    });
    users.chain(groups).collect()
}

/// AWS principal id → the name the IdP gives it (for reports on deletes).
fn principal_names<'a>(
    inputs: &'a Inputs,
    candidates: &[Candidate<'a>],
) -> HashMap<&'a str, &'a str> {
    let by_resource: HashMap<Uuid, &str> = candidates.iter().map(|c| (c.id, c.name)).collect();
    inputs
        .principals
        .iter()
        .filter_map(|p| Some((p.aws_id.as_deref()?, *by_resource.get(&p.resource_id)?)))
        .collect()
}

pub fn principal_type(kind: ResourceKind) -> PrincipalType {
    match kind {
        ResourceKind::User => PrincipalType::User,
        ResourceKind::Group => PrincipalType::Group,
    }
}

fn skip(key: &str, message: &str) -> Skipped {
    Skipped { principal: key.to_owned(), message: message.to_owned() }
}

/// The permission set names the rules and declarations use.
pub fn permission_set_names(
    sets: &[super::rules::PermissionSetSettings],
    rules: &AssignmentSettings,
) -> BTreeSet<String> {
    sets.iter()
        .map(|s| s.name.clone())
        .chain(rules.account.iter().map(|r| r.permission_set.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SnapshotGroup, SnapshotUser};
    use crate::sync::access::rules::{AccountRule, ApplicationRule};
    use serde_json::json;

    const APP: &str =
        "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111";

    struct World {
        snapshot: Snapshot,
        principals: Vec<PrincipalAfter>,
        sets: HashMap<String, Option<String>>,
        recorded: Vec<AssignmentRecord>,
        objects: Vec<AccessObject>,
        on_deactivate: OnDeactivate,
        sources: Vec<String>,
        organization: Option<OrgTree>,
        management_account: Option<String>,
    }

    impl World {
        fn new() -> World {
            World {
                snapshot: Snapshot { users: vec![], groups: vec![], members: vec![] },
                principals: vec![],
                sets: HashMap::from([("Admin".to_owned(), Some("arn:ps-admin".to_owned()))]),
                recorded: vec![],
                objects: vec![],
                on_deactivate: OnDeactivate::RemoveMemberships,
                sources: vec!["okta".to_owned()],
                organization: None,
                management_account: None,
            }
        }

        fn group(&mut self, name: &str, external_id: Option<&str>, aws_id: Option<&str>) -> Uuid {
            self.group_of("okta", name, external_id, aws_id)
        }

        fn group_of(
            &mut self,
            source: &str,
            name: &str,
            external_id: Option<&str>,
            aws_id: Option<&str>,
        ) -> Uuid {
            let id = Uuid::now_v7();
            let mut doc = json!({"displayName": name});
            if let Some(e) = external_id {
                doc["externalId"] = json!(e);
            }
            if !self.sources.iter().any(|s| s == source) {
                self.sources.push(source.to_owned());
            }
            self.snapshot.groups.push(SnapshotGroup { id, doc, source: source.to_owned() });
            self.principals.push(PrincipalAfter {
                kind: ResourceKind::Group,
                resource_id: id,
                aws_id: aws_id.map(str::to_owned),
            });
            id
        }

        fn user(&mut self, name: &str, active: bool, aws_id: &str) -> Uuid {
            let id = Uuid::now_v7();
            self.snapshot.users.push(SnapshotUser {
                id,
                doc: json!({"userName": name}),
                active,
                source: "okta".to_owned(),
            });
            self.principals.push(PrincipalAfter {
                kind: ResourceKind::User,
                resource_id: id,
                aws_id: Some(aws_id.to_owned()),
            });
            id
        }

        fn record(&mut self, account: &str, principal_id: &str, state: AssignmentState) {
            self.recorded.push(AssignmentRecord {
                key: account_key(account, principal_id),
                state,
                request_id: None,
            });
        }

        fn plan(&self, rules: &AssignmentSettings) -> AccessPlan {
            plan(
                rules,
                &Inputs {
                    snapshot: &self.snapshot,
                    principals: &self.principals,
                    on_deactivate: self.on_deactivate,
                    permission_sets: &self.sets,
                    recorded: &self.recorded,
                    objects: &self.objects,
                    sources: &self.sources,
                    organization: self.organization.as_ref(),
                    management_account: self.management_account.as_deref(),
                },
            )
        }
    }

    fn account_key(account: &str, principal_id: &str) -> AssignmentKey {
        AssignmentKey {
            kind: AssignmentKind::Account,
            target: account.into(),
            permission_set_arn: "arn:ps-admin".into(),
            principal_type: PrincipalType::Group,
            principal_id: principal_id.into(),
        }
    }

    fn rules(group: Option<&str>, external: Option<&str>, accounts: &[&str]) -> AssignmentSettings {
        AssignmentSettings {
            account: vec![AccountRule {
                group: group.map(str::to_owned),
                group_external_id: external.map(str::to_owned),
                permission_set: "Admin".into(),
                accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
                ..Default::default()
            }],
            application: vec![],
        }
    }

    #[test]
    fn creates_what_is_missing_and_deletes_only_its_own() {
        let mut w = World::new();
        w.group("Admins", None, Some("g-1"));
        w.record("111111111111", "g-1", AssignmentState::Created);
        w.record("333333333333", "g-1", AssignmentState::Created);
        w.record("444444444444", "g-1", AssignmentState::Foreign);
        let p = w.plan(&rules(Some("admins"), None, &["111111111111", "222222222222"]));
        assert_eq!(p.assign.len(), 1);
        assert_eq!(p.assign[0].target, "222222222222");
        assert_eq!(p.assign[0].key().unwrap(), account_key("222222222222", "g-1"));
        assert_eq!(p.unassign.len(), 1);
        assert_eq!(p.unassign[0].key, account_key("333333333333", "g-1"));
        assert_eq!(p.unassign[0].principal, "Admins");
        assert_eq!(p.forget, vec![account_key("444444444444", "g-1")]);
        assert_eq!(p.managed, 2);
    }

    #[test]
    fn a_group_matched_by_external_id_keeps_its_assignments_when_renamed() {
        let mut w = World::new();
        w.group("Renamed at the IdP", Some("ext-1"), Some("g-1"));
        w.record("111111111111", "g-1", AssignmentState::Created);
        let p = w.plan(&rules(None, Some("ext-1"), &["111111111111"]));
        assert!(p.assign.is_empty() && p.unassign.is_empty(), "{p:?}");
        // By displayName, the old name no longer matches: the assignment goes.
        let p = w.plan(&rules(Some("Old name"), None, &["111111111111"]));
        assert_eq!(p.unassign.len(), 1);
        assert_eq!(p.skipped.len(), 1);
    }

    #[test]
    fn an_unknown_permission_set_blocks_every_delete() {
        let mut w = World::new();
        w.group("Admins", None, Some("g-1"));
        w.record("111111111111", "g-1", AssignmentState::Created);
        let mut r = rules(Some("Admins"), None, &["222222222222"]);
        r.account[0].permission_set = "Typo".into();
        let p = w.plan(&r);
        assert!(!p.deletes_allowed);
        assert!(p.unassign.is_empty());
        assert!(p.skipped[0].message.contains("no permission set named \"Typo\""));
        // A principal leaving AWS takes its assignments along all the same.
        w.record("111111111111", "g-gone", AssignmentState::Created);
        let p = w.plan(&r);
        assert_eq!(p.unassign.len(), 1);
        assert_eq!(p.unassign[0].key.principal_id, "g-gone");
    }

    #[test]
    fn principals_and_permission_sets_created_by_this_run_are_planned() {
        let mut w = World::new();
        w.group("New", None, None);
        w.sets.insert("Admin".into(), None);
        let p = w.plan(&rules(Some("New"), None, &["111111111111", "111111111112"]));
        assert_eq!(p.assign.len(), 2);
        assert!(p.assign.iter().all(|a| a.key().is_none()));
    }

    #[test]
    fn deactivated_users_lose_direct_assignments() {
        let mut w = World::new();
        w.user("ana@example.com", false, "u-1");
        let r = AssignmentSettings {
            account: vec![],
            application: vec![ApplicationRule {
                user: Some("ANA@example.com".into()),
                application_arn: APP.into(),
                assignment_required: Some(true),
                ..Default::default()
            }],
        };
        let p = w.plan(&r);
        assert!(p.assign.is_empty());
        assert_eq!(p.assignment_required, vec![(APP.to_owned(), true)]);
        w.on_deactivate = OnDeactivate::Ignore;
        let p = w.plan(&r);
        assert_eq!(p.assign.len(), 1);
        assert_eq!(p.assign[0].key().unwrap().permission_set_arn, "");
        w.objects.push(AccessObject {
            kind: AccessObjectKind::Application,
            name: APP.into(),
            arn: APP.into(),
            managed: true,
            pushed: json!({"assignment_required": true}),
            needs_provision: false,
        });
        assert!(w.plan(&r).assignment_required.is_empty());
    }

    #[test]
    fn two_rules_wanting_one_assignment_create_it_once() {
        let mut w = World::new();
        w.group("Admins", Some("ext"), Some("g-1"));
        let mut r = rules(Some("Admins"), None, &["111111111111"]);
        r.account.push(AccountRule {
            group_external_id: Some("ext".into()),
            group: None,
            ..r.account[0].clone()
        });
        let p = w.plan(&r);
        assert_eq!(p.assign.len(), 1);
        assert_eq!(p.assign[0].rule, "assignments.account[0]");
    }

    #[test]
    fn a_rule_reaches_only_the_principals_of_its_source() {
        let mut w = World::new();
        w.group_of("okta", "Admins", Some("okta-00g-admins"), Some("g-okta"));
        // A second IdP pushes a group with the same externalId, and one with the same name
        // in another case and with a no-break space.
        w.group_of("contractor", "Admins copy", Some("okta-00g-admins"), Some("g-contractor"));
        w.group_of("contractor", "ADMINS\u{a0}", None, Some("g-contractor-2"));
        let mut r = rules(None, Some("okta-00g-admins"), &["111111111111"]);
        r.account[0].source = Some("okta".into());
        let p = w.plan(&r);
        let ids: Vec<_> = p.assign.iter().map(|a| a.principal_id.clone().unwrap()).collect();
        assert_eq!(ids, ["g-okta"]);
        let mut r = rules(Some("admins"), None, &["111111111111"]);
        r.account[0].source = Some("contractor".into());
        let p = w.plan(&r);
        let ids: Vec<_> = p.assign.iter().map(|a| a.principal_id.clone().unwrap()).collect();
        assert_eq!(ids, ["g-contractor-2"], "names compare in their normal form");
    }

    #[test]
    fn a_rule_without_source_is_refused_once_a_second_source_exists() {
        let mut w = World::new();
        w.group("Admins", Some("ext"), Some("g-1"));
        w.record("111111111111", "g-1", AssignmentState::Created);
        let r = rules(None, Some("ext"), &["111111111111", "222222222222"]);
        // One source: the rule means it.
        let p = w.plan(&r);
        assert!(p.deletes_allowed && p.assign.len() == 1, "{p:?}");
        w.group_of("contractor", "Other", Some("ext"), Some("g-2"));
        let p = w.plan(&r);
        assert!(!p.deletes_allowed);
        assert!(p.assign.is_empty() && p.unassign.is_empty(), "{p:?}");
        let message = &p.skipped[0].message;
        assert!(message.contains("assignments.account[0] names no source"), "{message}");
        assert!(message.contains("\"contractor\", \"okta\""), "{message}");
    }

    #[test]
    fn an_external_id_matching_two_groups_of_the_source_is_refused() {
        let mut w = World::new();
        w.group("Admins", Some("ext"), Some("g-1"));
        w.group("Admins 2", Some("ext"), Some("g-2"));
        w.record("111111111111", "g-1", AssignmentState::Created);
        let p = w.plan(&rules(None, Some("ext"), &["111111111111"]));
        assert!(!p.deletes_allowed);
        assert!(p.assign.is_empty() && p.unassign.is_empty(), "{p:?}");
        assert!(p.skipped[0].message.contains("matches 2 groups of source \"okta\""), "{p:?}");
    }

    /// An organisation: r-root ─ ou-top ─ 111111111111 (prod-a); r-root ─ 222222222222
    /// (prod-b), managed from 999999999999.
    fn organization() -> OrgTree {
        use crate::sync::organization::TreeAccount;
        use crate::sync::target::AccountState;
        let account = |name: &str, path: &[&str]| TreeAccount {
            name: name.to_owned(),
            state: AccountState::Active,
            path: path.iter().map(|p| (*p).to_owned()).collect(),
            tags: Default::default(),
        };
        OrgTree {
            management_account: Some("999999999999".into()),
            parents: ["r-root".to_owned(), "ou-top".to_owned()].into(),
            accounts: [
                ("111111111111".to_owned(), account("prod-a", &["r-root", "ou-top"])),
                ("222222222222".to_owned(), account("prod-b", &["r-root"])),
                ("999999999999".to_owned(), account("management", &["r-root"])),
            ]
            .into(),
            with_tags: false,
        }
    }

    fn unit_rule(units: &[&str]) -> AssignmentSettings {
        AssignmentSettings {
            account: vec![AccountRule {
                group: Some("Admins".into()),
                permission_set: "Admin".into(),
                organizational_units: units.iter().map(|u| (*u).to_owned()).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_unit_rule_assigns_the_accounts_below_it_and_flags_the_management_account() {
        let mut w = World::new();
        w.group("Admins", None, Some("g-1"));
        w.organization = Some(organization());
        w.management_account = Some("999999999999".into());
        let plan = w.plan(&unit_rule(&["ou-top"]));
        let targets: Vec<&str> = plan.assign.iter().map(|a| a.target.as_str()).collect();
        assert_eq!(targets, ["111111111111"]);
        assert!(plan.deletes_allowed);
        let plan = w.plan(&unit_rule(&["r-root"]));
        let flagged: Vec<(&str, bool)> =
            plan.assign.iter().map(|a| (a.target.as_str(), a.management_account)).collect();
        assert_eq!(
            flagged,
            [("111111111111", false), ("222222222222", false), ("999999999999", true)]
        );
        let shown = serde_json::to_value(&plan.assign[2]).unwrap();
        assert_eq!(shown["management_account"], json!(true));
        assert!(serde_json::to_value(&plan.assign[0]).unwrap().get("management_account").is_none());
    }

    #[test]
    fn an_unknown_unit_or_an_unread_organisation_deletes_nothing() {
        let mut w = World::new();
        w.group("Admins", None, Some("g-1"));
        w.record("111111111111", "g-1", AssignmentState::Created);
        // Unread: the rule cannot be resolved, and what it made stays.
        let plan = w.plan(&unit_rule(&["ou-top"]));
        assert!(!plan.deletes_allowed);
        assert!(plan.unassign.is_empty(), "{:?}", plan.unassign);
        assert!(plan.skipped[0].message.contains("could not be read"), "{:?}", plan.skipped);
        // A unit that is gone: likewise, and the message names it.
        w.organization = Some(organization());
        let plan = w.plan(&unit_rule(&["ou-gone"]));
        assert!(!plan.deletes_allowed);
        assert!(plan.unassign.is_empty());
        assert!(plan.skipped[0].message.contains("\"ou-gone\""), "{:?}", plan.skipped);
        // The account moved out of the unit: its assignment goes (the guard weighs it).
        let mut moved = organization();
        moved.accounts.get_mut("111111111111").unwrap().path = vec!["r-root".into()];
        w.organization = Some(moved);
        let plan = w.plan(&unit_rule(&["ou-top"]));
        assert!(plan.deletes_allowed);
        assert_eq!(plan.unassign.len(), 1);
        assert_eq!(plan.unassign[0].key.target, "111111111111");
    }
}
