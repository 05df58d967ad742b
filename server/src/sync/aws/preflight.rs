//! `scimbridge check`: which Identity Store operations these credentials may call, found
//! without changing anything — reads are made for real, and writes are made on ids that cannot
//! exist, so AWS answers "not found" when the permission is there and "access denied" when it
//! is not. CreateUser and CreateGroup cannot be probed that way (they would create) and are
//! reported as not checked.

use super::AwsDirectory;
use crate::sync::directory::{AwsError, Directory};
use serde_json::json;

/// One preflight check: its name and, when it failed, why.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub problem: Option<String>,
}

impl AwsDirectory {
    pub async fn preflight(&self) -> Vec<Check> {
        let nobody = uuid::Uuid::new_v4().to_string();
        let nothing = uuid::Uuid::new_v4().to_string();
        let probe_name = format!("scimbridge-preflight-{nobody}");
        let change = vec![("displayName".to_owned(), Some(json!("scimbridge preflight")))];
        let mut checks = Vec::new();
        let mut record = |operation: &str, outcome: Result<(), AwsError>| {
            let problem = match outcome {
                // Not found, or refused as invalid: AWS authorised the call.
                Ok(()) | Err(AwsError::NotFound { .. } | AwsError::Invalid { .. }) => None,
                Err(e) => Some(e.to_string()),
            };
            checks.push(Check { name: format!("identitystore:{operation}"), problem });
        };
        // One page each: the permission is the question, not the directory.
        let (ids, store) = (&self.ids, self.identity_store_id.as_str());
        let users = self
            .call("ListUsers", || ids.list_users().identity_store_id(store).max_results(1).send())
            .await;
        record("ListUsers", users.map(drop));
        let groups = self
            .call("ListGroups", || ids.list_groups().identity_store_id(store).max_results(1).send())
            .await;
        record("ListGroups", groups.map(drop));
        record("ListGroupMemberships", self.list_memberships(&nothing).await.map(drop));
        record("GetUserId", self.find_user(&probe_name).await.map(drop));
        record("GetGroupId", self.find_group(&probe_name).await.map(drop));
        record("UpdateUser", self.update_user(&nobody, &change).await);
        record("DeleteUser", self.delete_user(&nobody).await);
        record("UpdateGroup", self.update_group(&nothing, &change).await);
        record("DeleteGroup", self.delete_group(&nothing).await);
        record("CreateGroupMembership", self.add_member(&nothing, &nobody).await.map(drop));
        record("DeleteGroupMembership", self.remove_member(&nothing).await);
        checks
    }
}
