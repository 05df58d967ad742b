//! Managed permission sets: names resolved to ARNs (from the record, else by listing the
//! instance), declared ones created or adopted by name, updated in place and re-provisioned
//! to their accounts when they changed; and how a declared shape compares with AWS's.

use super::record::failed;
use super::rules::{self, PermissionSetSettings};
use super::run::{AccessRun, GIVE_UP_AFTER, poll_after};
use crate::store::{AccessObject, AccessObjectKind};
use crate::sync::target::{AwsError, OpState, PermissionSetShape, PolicyChange};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

/// Managed policies one permission set may hold (AWS's quota).
const MANAGED_POLICY_LIMIT: usize = 20;

impl AccessRun<'_> {
    /// Permission set names → ARNs: from the record, else by listing the instance's permission
    /// sets (a full run checks the recorded ones still exist).
    pub async fn resolve_permission_sets(
        &mut self,
        names: &BTreeSet<String>,
        declared: &[PermissionSetSettings],
        full: bool,
    ) -> anyhow::Result<()> {
        let mut known: HashMap<String, String> = self
            .state
            .objects
            .iter()
            .filter(|o| o.kind == AccessObjectKind::PermissionSet)
            .map(|o| (o.name.clone(), o.arn.clone()))
            .collect();
        let mut listed: Option<Vec<String>> = None;
        if full && !known.is_empty() {
            let arns: HashSet<String> =
                self.sso.list_permission_sets().await?.into_iter().collect();
            let gone: Vec<String> = known
                .iter()
                .filter(|(_, arn)| !arns.contains(*arn))
                .map(|(n, _)| n.clone())
                .collect();
            for name in gone {
                tracing::warn!(%name, "permission set no longer in AWS; looking it up again");
                known.remove(&name);
                self.remove_object(AccessObjectKind::PermissionSet, &name).await?;
            }
            listed = Some(arns.into_iter().collect());
        }
        if names.iter().any(|n| !known.contains_key(n)) {
            let arns = match listed {
                Some(arns) => arns,
                None => self.sso.list_permission_sets().await?,
            };
            let recorded: HashSet<String> = known.values().cloned().collect();
            for arn in arns.into_iter().filter(|a| !recorded.contains(a)) {
                if names.iter().all(|n| known.contains_key(n)) {
                    break;
                }
                let name = self.sso.permission_set_name(&arn).await?;
                if known.contains_key(&name) {
                    // Recorded under another ARN (a full run checks recorded ARNs still exist).
                    continue;
                }
                // Every name read is remembered, so that a name AWS does not have (a typo in a
                // rule) costs one listing per run, not a read of every permission set. Not
                // managed: a declared one is taken over by `sync_permission_sets`.
                let object = AccessObject {
                    kind: AccessObjectKind::PermissionSet,
                    name: name.clone(),
                    arn: arn.clone(),
                    managed: false,
                    pushed: json!({}),
                    needs_provision: false,
                };
                self.put_object(object).await?;
                known.insert(name, arn);
            }
        }
        self.permission_sets = names
            .iter()
            .filter_map(|n| match known.get(n) {
                Some(arn) => Some((n.clone(), Some(arn.clone()))),
                None if declared.iter().any(|d| &d.name == n) => Some((n.clone(), None)),
                None => None,
            })
            .collect();
        Ok(())
    }

    /// What `sync_permission_sets` would do, for a dry run's plan (from the record, which
    /// `resolve_permission_sets` has filled with the names it found in AWS: a declared one found
    /// there, not yet managed, is adopted by name).
    pub fn planned_permission_sets(&self, declared: &[PermissionSetSettings]) -> Vec<Value> {
        let mut out = Vec::new();
        for set in declared {
            let desired = PermissionSetShape::declared(set);
            match self.object(AccessObjectKind::PermissionSet, &set.name) {
                None => out.push(json!({"action": "create_permission_set", "name": set.name})),
                Some(o) if !o.managed => {
                    out.push(
                        json!({"action": "adopt_permission_set", "name": set.name, "arn": o.arn}),
                    );
                }
                Some(o) => {
                    let pushed: PermissionSetShape =
                        serde_json::from_value(o.pushed.clone()).unwrap_or_default();
                    let changes = desired.changes_from(&pushed);
                    if !changes.is_empty() {
                        out.push(json!({"action": "update_permission_set", "name": set.name, "attributes": changes}));
                    }
                    if !changes.is_empty() || o.needs_provision {
                        out.push(json!({"action": "provision_permission_set", "name": set.name}));
                    }
                }
            }
        }
        out
    }

    /// Creates, adopts and updates the declared permission sets, and re-provisions those that
    /// changed. A normal run touches only those whose declaration changed since it was pushed;
    /// a full run compares each with AWS.
    pub async fn sync_permission_sets(
        &mut self,
        declared: &[PermissionSetSettings],
        full: bool,
    ) -> anyhow::Result<()> {
        for set in declared {
            if self.stopped() {
                return Err(crate::sync::error::SyncError::Stopped.into());
            }
            let what = format!("permission set {}", set.name);
            if let Err(e) = self.sync_permission_set(set, full).await {
                match e.downcast::<AwsError>() {
                    Ok(aws) => self.absorb(what, aws)?,
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(())
    }

    async fn sync_permission_set(
        &mut self,
        set: &PermissionSetSettings,
        full: bool,
    ) -> anyhow::Result<()> {
        let desired = PermissionSetShape::declared(set);
        let pushed = serde_json::to_value(&desired)?;
        let record = self.object(AccessObjectKind::PermissionSet, &set.name).cloned();
        let up_to_date =
            record.as_ref().is_some_and(|o| o.managed && o.pushed == pushed && !o.needs_provision);
        if up_to_date && !full {
            return Ok(());
        }
        let mut arn = self.permission_sets.get(&set.name).cloned().flatten();
        let mut actual = None;
        if let Some(known) = &arn {
            match self.sso.read_permission_set(known).await {
                Ok(shape) => actual = Some(shape),
                // Deleted outside the bridge: it is created again (under a new ARN).
                Err(AwsError::NotFound { .. }) => {
                    self.forget_permission_set_arn(known).await?;
                    arn = None;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let (arn, changes, action) = match (arn, actual) {
            (Some(arn), Some(actual)) => {
                let changes = desired.changes_from(&actual);
                if !changes.is_empty() {
                    // Recorded before the push: a process that dies half-way leaves a record
                    // that says the accounts still need the new version.
                    let marker = AccessObject {
                        kind: AccessObjectKind::PermissionSet,
                        name: set.name.clone(),
                        arn: arn.clone(),
                        managed: record.as_ref().is_some_and(|o| o.managed),
                        pushed: record.as_ref().map_or_else(|| json!({}), |o| o.pushed.clone()),
                        needs_provision: true,
                    };
                    self.put_object(marker).await?;
                }
                self.push_permission_set(&arn, &desired, &actual, &changes).await?;
                let adopting = !record.as_ref().is_some_and(|o| o.managed);
                (arn, changes, if adopting { "adopt" } else { "update" })
            }
            _ => {
                let arn = self.sso.create_permission_set(&set.name, &desired).await?;
                for policy in &desired.managed_policies {
                    self.sso.change_policy(&arn, PolicyChange::AttachManaged(policy)).await?;
                }
                for policy in &desired.customer_managed_policies {
                    self.sso
                        .change_policy(&arn, PolicyChange::AttachCustomerManaged(policy))
                        .await?;
                }
                if let Some(document) = &desired.inline_policy {
                    self.sso.change_policy(&arn, PolicyChange::PutInline(document)).await?;
                }
                self.created_sets.insert(set.name.clone());
                (arn, Vec::new(), "create")
            }
        };
        let needs_provision =
            record.as_ref().is_some_and(|o| o.needs_provision) || !changes.is_empty();
        let object = AccessObject {
            kind: AccessObjectKind::PermissionSet,
            name: set.name.clone(),
            arn: arn.clone(),
            managed: true,
            pushed,
            needs_provision,
        };
        self.put_object(object.clone()).await?;
        self.permission_sets.insert(set.name.clone(), Some(arn.clone()));
        if action != "update" || !changes.is_empty() {
            self.count(&format!("{action}_permission_set"));
            self.audit(
                action,
                "PermissionSet",
                &set.name,
                Some(&arn),
                json!({"attributes": changes}),
            )
            .await?;
        }
        if needs_provision {
            self.provision(object).await?;
        }
        Ok(())
    }

    /// Pushes what differs: attributes, then policies attached before those detached (the
    /// permission set never has less than either version grants, mid-way).
    async fn push_permission_set(
        &self,
        arn: &str,
        desired: &PermissionSetShape,
        actual: &PermissionSetShape,
        changes: &[&str],
    ) -> Result<(), AwsError> {
        if changes.iter().any(|c| ["description", "session_duration", "relay_state"].contains(c)) {
            self.sso.update_permission_set(arn, desired).await?;
        }
        // Unless attaching first would pass AWS's limit of managed policies per permission
        // set: then detach first (the role briefly has less).
        let detach_first =
            desired.managed_policies.union(&actual.managed_policies).count() > MANAGED_POLICY_LIMIT;
        let stale: Vec<&String> =
            actual.managed_policies.difference(&desired.managed_policies).collect();
        if detach_first {
            for p in &stale {
                self.sso.change_policy(arn, PolicyChange::DetachManaged(p)).await?;
            }
        }
        for p in desired.managed_policies.difference(&actual.managed_policies) {
            self.sso.change_policy(arn, PolicyChange::AttachManaged(p)).await?;
        }
        for p in desired.customer_managed_policies.difference(&actual.customer_managed_policies) {
            self.sso.change_policy(arn, PolicyChange::AttachCustomerManaged(p)).await?;
        }
        match (&desired.inline_policy, &actual.inline_policy) {
            (Some(d), a) if Some(d) != a.as_ref() => {
                self.sso.change_policy(arn, PolicyChange::PutInline(d)).await?
            }
            (None, Some(_)) => self.sso.change_policy(arn, PolicyChange::DeleteInline).await?,
            _ => {}
        }
        if !detach_first {
            for p in &stale {
                self.sso.change_policy(arn, PolicyChange::DetachManaged(p)).await?;
            }
        }
        for p in actual.customer_managed_policies.difference(&desired.customer_managed_policies) {
            self.sso.change_policy(arn, PolicyChange::DetachCustomerManaged(p)).await?;
        }
        Ok(())
    }

    /// Re-provisions a changed permission set to the accounts it is provisioned to, and waits
    /// for AWS to finish. Until it has, the record says so and the next run tries again.
    async fn provision(&mut self, mut object: AccessObject) -> anyhow::Result<()> {
        let accounts = self.sso.provisioned_accounts(&object.arn).await?;
        if !accounts.is_empty() {
            let mut status = self.sso.provision_permission_set(&object.arn).await?;
            let started = Instant::now();
            let mut polls = 0;
            while status.state == OpState::InProgress {
                if started.elapsed() > GIVE_UP_AFTER || self.stopped() {
                    self.fail(
                        format!("permission set {}", object.name),
                        "provisioning still IN_PROGRESS; the next run provisions it again".into(),
                    );
                    return Ok(());
                }
                tokio::time::sleep(poll_after(polls)).await;
                polls += 1;
                status = self.sso.provisioning_status(&status.request_id).await?;
            }
            if let OpState::Failed(reason) = status.state {
                self.fail(
                    format!("permission set {}", object.name),
                    failed("provisioning", &reason),
                );
                return Ok(());
            }
            self.count("provision_permission_set");
            self.audit(
                "provision",
                "PermissionSet",
                &object.name,
                Some(&object.arn),
                json!({"accounts": accounts}),
            )
            .await?;
        }
        object.needs_provision = false;
        self.put_object(object).await?;
        Ok(())
    }

    /// A permission set ARN AWS no longer knows: its name is looked up again by the next run.
    pub(super) async fn forget_permission_set_arn(&mut self, arn: &str) -> anyhow::Result<()> {
        let stale: Vec<String> = self
            .state
            .objects
            .iter()
            .filter(|o| o.kind == AccessObjectKind::PermissionSet && o.arn == arn)
            .map(|o| o.name.clone())
            .collect();
        for name in stale {
            tracing::warn!(%name, %arn, "permission set no longer in AWS; it is looked up again");
            self.remove_object(AccessObjectKind::PermissionSet, &name).await?;
        }
        Ok(())
    }
}

impl PermissionSetShape {
    /// What `[[permission_sets]]` declares. (The shape is a type of the target port; what it
    /// means to the bridge is said here.)
    pub fn declared(set: &PermissionSetSettings) -> PermissionSetShape {
        PermissionSetShape {
            description: set.description.clone(),
            session_duration: set.session_duration.clone(),
            relay_state: set.relay_state.clone(),
            managed_policies: set.managed_policies.iter().cloned().collect(),
            customer_managed_policies: set.customer_managed_policies.iter().cloned().collect(),
            inline_policy: set.inline_policy.clone(),
        }
    }

    /// The names of what differs from `actual` and must be pushed to reach `self` (declared).
    /// An attribute the declaration leaves unset is left as AWS has it.
    pub fn changes_from(&self, actual: &PermissionSetShape) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.description.is_some() && self.description != actual.description {
            out.push("description");
        }
        let seconds = |d: &Option<String>| d.as_deref().and_then(rules::parse_duration);
        if self.session_duration.is_some()
            && seconds(&self.session_duration) != seconds(&actual.session_duration)
        {
            out.push("session_duration");
        }
        if self.relay_state.is_some() && self.relay_state != actual.relay_state {
            out.push("relay_state");
        }
        if self.managed_policies != actual.managed_policies {
            out.push("managed_policies");
        }
        if self.customer_managed_policies != actual.customer_managed_policies {
            out.push("customer_managed_policies");
        }
        if self.inline_policy != actual.inline_policy {
            out.push("inline_policy");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn unset_attributes_are_left_and_durations_compare_by_length() {
        let declared = PermissionSetShape {
            session_duration: Some("PT480M".into()),
            managed_policies: BTreeSet::from(["arn:aws:iam::aws:policy/ReadOnlyAccess".into()]),
            ..Default::default()
        };
        let mut actual = PermissionSetShape {
            description: Some("set by hand".into()),
            session_duration: Some("PT8H".into()),
            managed_policies: declared.managed_policies.clone(),
            ..Default::default()
        };
        assert!(declared.changes_from(&actual).is_empty());
        actual.inline_policy = Some(serde_json::json!({"Version": "2012-10-17"}));
        actual.session_duration = Some("PT1H".into());
        assert_eq!(declared.changes_from(&actual), vec!["session_duration", "inline_policy"]);
    }
}
