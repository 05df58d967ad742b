//! The keys of a run report's `counts`: every kind of change a run makes (or would make, or
//! holds), as a type. They serialise to the text keys reports have always had (`create_user`,
//! `held_remove_membership`, …) and sort as that text does, so the JSON is unchanged. A leaf
//! module: the planners, the holds and the run all count with it.

use crate::store::{AssignmentKind, Removals};
use scim_schema::schema::ResourceKind;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// A run report's `counts`: how many of each kind of change.
pub type Counts = BTreeMap<ActionKind, u64>;

macro_rules! action_kinds {
    ($($(#[$doc:meta])* $variant:ident = $text:literal),* $(,)?) => {
        /// One kind of change of a run report's `counts`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ActionKind {
            $($(#[$doc])* $variant,)*
        }

        impl ActionKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ActionKind] = &[$(ActionKind::$variant,)*];

            /// The key as reports, logs and metrics have it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ActionKind::$variant => $text,)*
                }
            }
        }
    };
}

action_kinds! {
    CreateUser = "create_user",
    CreateGroup = "create_group",
    AdoptUser = "adopt_user",
    AdoptGroup = "adopt_group",
    UpdateUser = "update_user",
    UpdateGroup = "update_group",
    DeleteUser = "delete_user",
    DeleteGroup = "delete_group",
    AddMembership = "add_membership",
    RemoveMembership = "remove_membership",
    /// A managed principal deleted outside the bridge, forgotten so that it is re-created.
    DriftRecreated = "drift_recreated",
    CreatePermissionSet = "create_permission_set",
    AdoptPermissionSet = "adopt_permission_set",
    UpdatePermissionSet = "update_permission_set",
    ProvisionPermissionSet = "provision_permission_set",
    CreateAccountAssignment = "create_account_assignment",
    CreateApplicationAssignment = "create_application_assignment",
    DeleteAccountAssignment = "delete_account_assignment",
    DeleteApplicationAssignment = "delete_application_assignment",
    FoundExistingAssignment = "found_existing_assignment",
    DriftRecreatedAssignment = "drift_recreated_assignment",
    SetAssignmentRequired = "set_assignment_required",
    HeldDeleteUser = "held_delete_user",
    HeldDeleteGroup = "held_delete_group",
    HeldRemoveMembership = "held_remove_membership",
    HeldDeleteAccountAssignment = "held_delete_account_assignment",
    HeldDeleteApplicationAssignment = "held_delete_application_assignment",
}

impl ActionKind {
    pub fn create(kind: ResourceKind) -> ActionKind {
        match kind {
            ResourceKind::User => ActionKind::CreateUser,
            ResourceKind::Group => ActionKind::CreateGroup,
        }
    }

    pub fn adopt(kind: ResourceKind) -> ActionKind {
        match kind {
            ResourceKind::User => ActionKind::AdoptUser,
            ResourceKind::Group => ActionKind::AdoptGroup,
        }
    }

    pub fn update(kind: ResourceKind) -> ActionKind {
        match kind {
            ResourceKind::User => ActionKind::UpdateUser,
            ResourceKind::Group => ActionKind::UpdateGroup,
        }
    }

    pub fn delete(kind: ResourceKind) -> ActionKind {
        match kind {
            ResourceKind::User => ActionKind::DeleteUser,
            ResourceKind::Group => ActionKind::DeleteGroup,
        }
    }

    pub fn delete_assignment(kind: AssignmentKind) -> ActionKind {
        match kind {
            AssignmentKind::Account => ActionKind::DeleteAccountAssignment,
            AssignmentKind::Application => ActionKind::DeleteApplicationAssignment,
        }
    }

    /// The kind counting this action held for approval (None: never held, not destructive).
    pub fn held(self) -> Option<ActionKind> {
        match self {
            ActionKind::DeleteUser => Some(ActionKind::HeldDeleteUser),
            ActionKind::DeleteGroup => Some(ActionKind::HeldDeleteGroup),
            ActionKind::RemoveMembership => Some(ActionKind::HeldRemoveMembership),
            ActionKind::DeleteAccountAssignment => Some(ActionKind::HeldDeleteAccountAssignment),
            ActionKind::DeleteApplicationAssignment => {
                Some(ActionKind::HeldDeleteApplicationAssignment)
            }
            _ => None,
        }
    }

    /// Whether this counts actions held for approval (`held_…`): not changes made.
    pub fn is_held(self) -> bool {
        self.as_str().starts_with("held_")
    }

    /// Whether this counts principals created (not adopted) in AWS.
    pub fn is_create(self) -> bool {
        matches!(self, ActionKind::CreateUser | ActionKind::CreateGroup)
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key no kind has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a kind of change a run counts")]
pub struct UnknownActionKind(pub String);

impl std::str::FromStr for ActionKind {
    type Err = UnknownActionKind;
    fn from_str(s: &str) -> Result<ActionKind, UnknownActionKind> {
        ActionKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownActionKind(s.to_owned()))
    }
}

/// In the order of the text keys, as the string-keyed map had them.
impl Ord for ActionKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for ActionKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for ActionKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ActionKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ActionKind, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Adds `n` of `kind` to `counts`.
pub fn add(counts: &mut Counts, kind: ActionKind, n: u64) {
    *counts.entry(kind).or_default() += n;
}

/// Adds counts keyed by text (the access module's) to `counts`. A key no kind has is logged
/// and left out (every key the access module makes is a kind).
pub fn add_keyed(counts: &mut Counts, keyed: &BTreeMap<String, u64>) {
    for (key, n) in keyed {
        match key.parse::<ActionKind>() {
            Ok(kind) => add(counts, kind, *n),
            Err(e) => tracing::error!(error = %e, "sync: a count left out of the run report"),
        }
    }
}

/// What a run's `counts` say it deleted and removed.
pub fn removals_of(counts: &Counts) -> Removals {
    let n = |kind: ActionKind| counts.get(&kind).copied().unwrap_or(0);
    Removals {
        principals: n(ActionKind::DeleteUser) + n(ActionKind::DeleteGroup),
        memberships: n(ActionKind::RemoveMembership),
        assignments: n(ActionKind::DeleteAccountAssignment)
            + n(ActionKind::DeleteApplicationAssignment),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_text() {
        for kind in ActionKind::ALL {
            assert_eq!(kind.as_str().parse::<ActionKind>(), Ok(*kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.as_str()));
            let back: ActionKind =
                serde_json::from_value(serde_json::json!(kind.as_str())).unwrap();
            assert_eq!(back, *kind);
        }
        assert!("create_nothing".parse::<ActionKind>().is_err());
    }

    #[test]
    fn counts_serialise_as_the_text_keyed_map_did() {
        let counts = Counts::from([
            (ActionKind::RemoveMembership, 2),
            (ActionKind::CreateUser, 3),
            (ActionKind::HeldDeleteUser, 1),
            (ActionKind::AddMembership, 4),
            (ActionKind::DeleteAccountAssignment, 5),
        ]);
        let text: BTreeMap<String, u64> =
            counts.iter().map(|(k, n)| (k.as_str().to_owned(), *n)).collect();
        assert_eq!(serde_json::to_string(&counts).unwrap(), serde_json::to_string(&text).unwrap());
        assert_eq!(
            serde_json::to_string(&counts).unwrap(),
            r#"{"add_membership":4,"create_user":3,"delete_account_assignment":5,"held_delete_user":1,"remove_membership":2}"#
        );
    }

    #[test]
    fn held_kinds_are_the_destructive_ones() {
        let held: Vec<ActionKind> = ActionKind::ALL.iter().filter_map(|k| k.held()).collect();
        assert_eq!(held.len(), 5);
        assert!(held.iter().all(|k| k.is_held() && k.as_str().starts_with("held_")));
        assert!(!ActionKind::CreateUser.is_held());
        assert_eq!(ActionKind::HeldRemoveMembership.held(), None);
    }

    #[test]
    fn keyed_counts_are_added_and_unknown_keys_left_out() {
        let mut counts = Counts::from([(ActionKind::CreateUser, 1)]);
        let keyed = BTreeMap::from([
            ("create_user".to_owned(), 2),
            ("provision_permission_set".to_owned(), 1),
            ("no_such_thing".to_owned(), 7),
        ]);
        add_keyed(&mut counts, &keyed);
        assert_eq!(
            counts,
            Counts::from([(ActionKind::CreateUser, 3), (ActionKind::ProvisionPermissionSet, 1)])
        );
    }

    #[test]
    fn removals_are_read_from_counts() {
        let counts = Counts::from([
            (ActionKind::DeleteUser, 2),
            (ActionKind::DeleteGroup, 1),
            (ActionKind::RemoveMembership, 4),
            (ActionKind::DeleteAccountAssignment, 5),
            (ActionKind::CreateUser, 9),
        ]);
        assert_eq!(
            removals_of(&counts),
            Removals { principals: 3, memberships: 4, assignments: 5 }
        );
    }
}
