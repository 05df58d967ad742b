//! The Identity Store side of the adapter: [`Directory`] over aws-sdk-identitystore (users,
//! groups, memberships), each operation one traced call through [`super::retry`].

use super::AwsDirectory;
use super::convert;
use super::retry::{found, gone};
use crate::mapping::aws_profile::AwsAttributes;
use crate::sync::target::{AttributeChange, AwsError, Directory, Listed, Organizations, SsoAdmin};
use async_trait::async_trait;
use aws_sdk_identitystore::operation::list_group_memberships::ListGroupMembershipsOutput;
use aws_sdk_identitystore::operation::list_groups::ListGroupsOutput;
use aws_sdk_identitystore::operation::list_users::ListUsersOutput;
use aws_sdk_identitystore::types::{AlternateIdentifier, MemberId, UniqueAttribute};
use aws_smithy_types::Document;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

fn unique(path: &str, value: &str) -> Result<AlternateIdentifier, AwsError> {
    let attr = UniqueAttribute::builder()
        .attribute_path(path)
        .attribute_value(Document::String(value.to_owned()))
        .build()
        .map_err(|e| AwsError::Invalid { operation: "GetUserId", message: e.to_string() })?;
    Ok(AlternateIdentifier::UniqueAttribute(attr))
}

#[async_trait]
impl Directory for AwsDirectory {
    #[tracing::instrument(skip_all, level = "debug", fields(operation = "CreateUser", user_name = attrs.get("userName").and_then(serde_json::Value::as_str)))]
    async fn create_user(&self, attrs: &AwsAttributes) -> Result<String, AwsError> {
        let req = convert::create_user(
            self.ids.create_user().identity_store_id(&self.identity_store_id),
            attrs,
        );
        let out = self.call("CreateUser", || req.clone().send()).await?;
        Ok(out.user_id().to_owned())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "UpdateUser", user_id = id, attributes = changes.len()))]
    async fn update_user(&self, id: &str, changes: &[AttributeChange]) -> Result<(), AwsError> {
        let ops = convert::operations(changes, "UpdateUser")?;
        let req = self
            .ids
            .update_user()
            .identity_store_id(&self.identity_store_id)
            .user_id(id)
            .set_operations(Some(ops));
        self.call("UpdateUser", || req.clone().send()).await.map(|_| ())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "DeleteUser", user_id = id))]
    async fn delete_user(&self, id: &str) -> Result<(), AwsError> {
        let req = self.ids.delete_user().identity_store_id(&self.identity_store_id).user_id(id);
        gone(self.call("DeleteUser", || req.clone().send()).await.map(|_| ()))
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "GetUserId", user_name = user_name))]
    async fn find_user(&self, user_name: &str) -> Result<Option<String>, AwsError> {
        let req = self
            .ids
            .get_user_id()
            .identity_store_id(&self.identity_store_id)
            .alternate_identifier(unique("userName", user_name)?);
        let out = found(self.call("GetUserId", || req.clone().send()).await)?;
        Ok(out.map(|o| o.user_id().to_owned()))
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "ListUsers"))]
    async fn list_users(&self) -> Result<Vec<Listed>, AwsError> {
        let list =
            self.ids.list_users().identity_store_id(&self.identity_store_id).max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        self.all_pages("ListUsers", send, |page: ListUsersOutput, all| {
            all.extend(page.users().iter().map(|u| Listed {
                id: u.user_id().to_owned(),
                name: u.user_name().unwrap_or_default().to_owned(),
            }));
            page.next_token().map(str::to_owned)
        })
        .await
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "CreateGroup", display_name = attrs.get("displayName").and_then(serde_json::Value::as_str)))]
    async fn create_group(&self, attrs: &AwsAttributes) -> Result<String, AwsError> {
        let mut req = self.ids.create_group().identity_store_id(&self.identity_store_id);
        if let Some(name) = attrs.get("displayName").and_then(Value::as_str) {
            req = req.display_name(name);
        }
        if let Some(description) = attrs.get("description").and_then(Value::as_str) {
            req = req.description(description);
        }
        let out = self.call("CreateGroup", || req.clone().send()).await?;
        Ok(out.group_id().to_owned())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "UpdateGroup", group_id = id, attributes = changes.len()))]
    async fn update_group(&self, id: &str, changes: &[AttributeChange]) -> Result<(), AwsError> {
        let ops = convert::operations(changes, "UpdateGroup")?;
        let req = self
            .ids
            .update_group()
            .identity_store_id(&self.identity_store_id)
            .group_id(id)
            .set_operations(Some(ops));
        self.call("UpdateGroup", || req.clone().send()).await.map(|_| ())
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "DeleteGroup", group_id = id))]
    async fn delete_group(&self, id: &str) -> Result<(), AwsError> {
        let req = self.ids.delete_group().identity_store_id(&self.identity_store_id).group_id(id);
        gone(self.call("DeleteGroup", || req.clone().send()).await.map(|_| ()))
    }

    #[tracing::instrument(
        skip_all,
        level = "debug",
        fields(operation = "GetGroupId", display_name = display_name)
    )]
    async fn find_group(&self, display_name: &str) -> Result<Option<String>, AwsError> {
        let req = self
            .ids
            .get_group_id()
            .identity_store_id(&self.identity_store_id)
            .alternate_identifier(unique("displayName", display_name)?);
        let out = found(self.call("GetGroupId", || req.clone().send()).await)?;
        Ok(out.map(|o| o.group_id().to_owned()))
    }

    #[tracing::instrument(skip_all, level = "debug", fields(operation = "ListGroups"))]
    async fn list_groups(&self) -> Result<Vec<Listed>, AwsError> {
        let list =
            self.ids.list_groups().identity_store_id(&self.identity_store_id).max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        self.all_pages("ListGroups", send, |page: ListGroupsOutput, all| {
            all.extend(page.groups().iter().map(|g| Listed {
                id: g.group_id().to_owned(),
                name: g.display_name().unwrap_or_default().to_owned(),
            }));
            page.next_token().map(str::to_owned)
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        level = "debug",
        fields(operation = "ListGroupMemberships", group_id = group_id)
    )]
    async fn list_memberships(&self, group_id: &str) -> Result<Vec<(String, String)>, AwsError> {
        let list = self
            .ids
            .list_group_memberships()
            .identity_store_id(&self.identity_store_id)
            .group_id(group_id)
            .max_results(100);
        let send = |token| list.clone().set_next_token(token).send();
        self.all_pages("ListGroupMemberships", send, |page: ListGroupMembershipsOutput, all| {
            for m in page.group_memberships() {
                if let Some(MemberId::UserId(user)) = m.member_id() {
                    all.push((m.membership_id().to_owned(), user.clone()));
                }
            }
            page.next_token().map(str::to_owned)
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        level = "debug",
        fields(operation = "CreateGroupMembership", group_id = group_id, user_id = user_id)
    )]
    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<String, AwsError> {
        let member = MemberId::UserId(user_id.to_owned());
        let req = self
            .ids
            .create_group_membership()
            .identity_store_id(&self.identity_store_id)
            .group_id(group_id)
            .member_id(member.clone());
        match self.call("CreateGroupMembership", || req.clone().send()).await {
            Ok(out) => Ok(out.membership_id().to_owned()),
            // Already a member (AWS answers a duplicate with a conflict): find its id.
            Err(AwsError::Conflict { .. }) => {
                let req = self
                    .ids
                    .get_group_membership_id()
                    .identity_store_id(&self.identity_store_id)
                    .group_id(group_id)
                    .member_id(member);
                let out = self.call("GetGroupMembershipId", || req.clone().send()).await?;
                Ok(out.membership_id().to_owned())
            }
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(
        skip_all,
        level = "debug",
        fields(operation = "DeleteGroupMembership", membership_id = membership_id)
    )]
    async fn remove_member(&self, membership_id: &str) -> Result<(), AwsError> {
        let req = self
            .ids
            .delete_group_membership()
            .identity_store_id(&self.identity_store_id)
            .membership_id(membership_id);
        gone(self.call("DeleteGroupMembership", || req.clone().send()).await.map(|_| ()))
    }

    fn sso(&self) -> &dyn SsoAdmin {
        self
    }

    fn organizations(&self) -> &dyn Organizations {
        self
    }

    fn calls(&self) -> BTreeMap<String, u64> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn throttles(&self) -> u64 {
        self.throttles.load(Ordering::Relaxed)
    }
}
