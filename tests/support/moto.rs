//! The moto AWS emulator in server mode (`tests/aws/moto_server.py`, which adds the Identity
//! Store operations moto lacks), one per test on a free port, and an SDK client to read what
//! the bridge wrote — the way an admin would check it.

use super::binary::{Server, free_port};
use aws_config::{BehaviorVersion, Region};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct Moto {
    pub endpoint: String,
    pub ids: aws_sdk_identitystore::Client,
    pub identity_store_id: String,
    pub sso: aws_sdk_ssoadmin::Client,
    pub instance_arn: String,
    /// AWS Organizations (moto's; no organisation until [`Moto::create_organization`]).
    pub org: aws_sdk_organizations::Client,
    _server: Server,
}

/// The venv `scripts/python-tools.sh` makes (or `SCIMBRIDGE_VENV`).
fn python() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv =
        std::env::var_os("SCIMBRIDGE_VENV").map_or_else(|| repo.join(".venv"), PathBuf::from);
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/python-tools.sh (scripts/test.sh does) to install moto",
        python.display()
    );
    python
}

/// Static fake credentials for the emulator (also what the binary under test gets).
pub const AWS_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
];

/// [`AWS_ENV`] and `[sync] enabled = true`: a `serve` that syncs by itself.
pub const SYNCING_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("SCIMBRIDGE_SYNC__ENABLED", "true"),
];

/// An `[aws]` section for an endpoint (the emulator, or a proxy in front of it).
pub fn aws_config_section(endpoint: &str, max_requests_per_second: u32) -> String {
    format!(
        "[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\n\
         max_requests_per_second = {max_requests_per_second}\n"
    )
}

impl Moto {
    pub async fn start() -> Moto {
        // A free port can be taken by another test's server before the emulator binds it (the
        // emulator then exits, and that server answers): such a start is retried on another.
        for _ in 0..5 {
            if let Some(moto) = Self::start_on(free_port()).await {
                return moto;
            }
        }
        panic!("moto did not start on any of 5 free ports");
    }

    /// The emulator on `port`, or None when something else answers there.
    async fn start_on(port: u16) -> Option<Moto> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("aws/moto_server.py");
        let child = Command::new(python())
            .arg(&script)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(if std::env::var("TEST_LOG").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("start moto");
        let server = Server(child);
        let endpoint = format!("http://127.0.0.1:{port}");
        let what = format!("moto starting on port {port}");
        super::eventually(Duration::from_secs(60), &what, || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        let creds = aws_sdk_identitystore::config::Credentials::new(
            "testing", "testing", None, None, "static",
        );
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&endpoint)
            .load()
            .await;
        let sso = aws_sdk_ssoadmin::Client::new(&shared);
        let instances = match sso.list_instances().send().await {
            Ok(instances) => instances,
            Err(e) => {
                eprintln!("note: port {port} answered ListInstances with {e:?}; another port");
                return None;
            }
        };
        let identity_store_id =
            instances.instances()[0].identity_store_id().expect("identity store id").to_owned();
        let instance_arn =
            instances.instances()[0].instance_arn().expect("instance ARN").to_owned();
        Some(Moto {
            endpoint,
            ids: aws_sdk_identitystore::Client::new(&shared),
            identity_store_id,
            sso,
            instance_arn,
            org: aws_sdk_organizations::Client::new(&shared),
            _server: server,
        })
    }

    /// The `[aws]` section pointing the bridge at this emulator.
    pub fn config(&self) -> String {
        aws_config_section(&self.endpoint, 500)
    }

    /// userName → user id of every user in the Identity Store.
    /// Creates a user directly in the emulator (as an admin or another tool would); its id.
    pub async fn create_user(&self, user_name: &str) -> String {
        self.ids
            .create_user()
            .identity_store_id(&self.identity_store_id)
            .user_name(user_name)
            .display_name(user_name)
            .name(
                aws_sdk_identitystore::types::Name::builder()
                    .given_name("G")
                    .family_name("F")
                    .build(),
            )
            .send()
            .await
            .expect("CreateUser")
            .user_id()
            .to_owned()
    }

    pub async fn users(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        let mut pages = self
            .ids
            .list_users()
            .identity_store_id(&self.identity_store_id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for u in page.expect("ListUsers").users() {
                out.insert(u.user_name().unwrap_or_default().to_owned(), u.user_id().to_owned());
            }
        }
        out
    }

    /// Creates `count` groups named `{prefix} {n}` in the emulator's state in one request
    /// (`POST /_scimbridge/seed`), as groups made by hand or by another tool would be: a
    /// listing of the Identity Store that takes many pages.
    pub async fn seed_groups(&self, prefix: &str, count: usize) {
        let groups: Vec<serde_json::Value> = (0..count)
            .map(|n| serde_json::json!({"displayName": format!("{prefix} {n:05}")}))
            .collect();
        let body = serde_json::json!({"Groups": groups, "IdentityStoreId": self.identity_store_id});
        let r = reqwest::Client::new()
            .post(format!("{}/_scimbridge/seed", self.endpoint))
            .json(&body)
            .send()
            .await
            .expect("seed request");
        assert!(r.status().is_success(), "seed: {}", r.text().await.unwrap_or_default());
    }

    /// displayName → group id of every group.
    pub async fn groups(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        let mut pages = self
            .ids
            .list_groups()
            .identity_store_id(&self.identity_store_id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for g in page.expect("ListGroups").groups() {
                out.insert(
                    g.display_name().unwrap_or_default().to_owned(),
                    g.group_id().to_owned(),
                );
            }
        }
        out
    }

    /// The userNames in a group, sorted.
    pub async fn members(&self, group_id: &str) -> Vec<String> {
        let users: std::collections::BTreeMap<String, String> =
            self.users().await.into_iter().map(|(name, id)| (id, name)).collect();
        let mut out = Vec::new();
        let mut pages = self
            .ids
            .list_group_memberships()
            .identity_store_id(&self.identity_store_id)
            .group_id(group_id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for m in page.expect("ListGroupMemberships").group_memberships() {
                if let Some(aws_sdk_identitystore::types::MemberId::UserId(u)) = m.member_id() {
                    out.push(users.get(u).cloned().unwrap_or_else(|| u.clone()));
                }
            }
        }
        out.sort();
        out
    }

    pub async fn describe_user(
        &self,
        id: &str,
    ) -> aws_sdk_identitystore::operation::describe_user::DescribeUserOutput {
        self.ids
            .describe_user()
            .identity_store_id(&self.identity_store_id)
            .user_id(id)
            .extensions("aws:identitystore:enterprise")
            .send()
            .await
            .expect("DescribeUser")
    }
}

/// SSO Admin, read and written the way an admin would (or another tool).
impl Moto {
    /// Creates a permission set directly; its ARN.
    pub async fn create_permission_set(&self, name: &str) -> String {
        self.sso
            .create_permission_set()
            .instance_arn(&self.instance_arn)
            .name(name)
            .send()
            .await
            .expect("CreatePermissionSet")
            .permission_set()
            .and_then(|p| p.permission_set_arn())
            .expect("permission set ARN")
            .to_owned()
    }

    /// name → ARN of every permission set.
    pub async fn permission_sets(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        let arns = self
            .sso
            .list_permission_sets()
            .instance_arn(&self.instance_arn)
            .send()
            .await
            .expect("ListPermissionSets");
        for arn in arns.permission_sets() {
            let d = self
                .sso
                .describe_permission_set()
                .instance_arn(&self.instance_arn)
                .permission_set_arn(arn)
                .send()
                .await
                .expect("DescribePermissionSet");
            let name = d.permission_set().and_then(|p| p.name()).unwrap_or_default();
            out.insert(name.to_owned(), arn.clone());
        }
        out
    }

    /// (session duration, managed policy ARNs sorted, inline policy) of a permission set.
    pub async fn permission_set(&self, arn: &str) -> (Option<String>, Vec<String>, Option<String>) {
        let d = self
            .sso
            .describe_permission_set()
            .instance_arn(&self.instance_arn)
            .permission_set_arn(arn)
            .send()
            .await
            .expect("DescribePermissionSet");
        let duration = d.permission_set().and_then(|p| p.session_duration()).map(str::to_owned);
        let managed = self
            .sso
            .list_managed_policies_in_permission_set()
            .instance_arn(&self.instance_arn)
            .permission_set_arn(arn)
            .send()
            .await
            .expect("ListManagedPoliciesInPermissionSet");
        let mut policies: Vec<String> = managed
            .attached_managed_policies()
            .iter()
            .filter_map(|p| p.arn().map(str::to_owned))
            .collect();
        policies.sort();
        let inline = self
            .sso
            .get_inline_policy_for_permission_set()
            .instance_arn(&self.instance_arn)
            .permission_set_arn(arn)
            .send()
            .await
            .expect("GetInlinePolicyForPermissionSet")
            .inline_policy()
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        (duration, policies, inline)
    }

    /// The principal ids (sorted) assigned the permission set in the account.
    pub async fn account_assignments(
        &self,
        account: &str,
        permission_set_arn: &str,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let mut pages = self
            .sso
            .list_account_assignments()
            .instance_arn(&self.instance_arn)
            .account_id(account)
            .permission_set_arn(permission_set_arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for a in page.expect("ListAccountAssignments").account_assignments() {
                out.push(a.principal_id().unwrap_or_default().to_owned());
            }
        }
        out.sort();
        out
    }

    /// Assigns a group directly (as an admin in the console would).
    pub async fn assign_group(&self, account: &str, permission_set_arn: &str, group_id: &str) {
        self.sso
            .create_account_assignment()
            .instance_arn(&self.instance_arn)
            .target_id(account)
            .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
            .permission_set_arn(permission_set_arn)
            .principal_type(aws_sdk_ssoadmin::types::PrincipalType::Group)
            .principal_id(group_id)
            .send()
            .await
            .expect("CreateAccountAssignment");
    }

    /// Removes a group's assignment directly.
    pub async fn unassign_group(&self, account: &str, permission_set_arn: &str, group_id: &str) {
        self.sso
            .delete_account_assignment()
            .instance_arn(&self.instance_arn)
            .target_id(account)
            .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
            .permission_set_arn(permission_set_arn)
            .principal_type(aws_sdk_ssoadmin::types::PrincipalType::Group)
            .principal_id(group_id)
            .send()
            .await
            .expect("DeleteAccountAssignment");
    }

    /// The principal ids (sorted) assigned to the application.
    pub async fn application_assignments(&self, application_arn: &str) -> Vec<String> {
        let out = self
            .sso
            .list_application_assignments()
            .application_arn(application_arn)
            .send()
            .await
            .expect("ListApplicationAssignments");
        let mut ids: Vec<String> =
            out.application_assignments().iter().map(|a| a.principal_id().to_owned()).collect();
        ids.sort();
        ids
    }

    pub async fn assignment_required(&self, application_arn: &str) -> bool {
        self.sso
            .get_application_assignment_configuration()
            .application_arn(application_arn)
            .send()
            .await
            .expect("GetApplicationAssignmentConfiguration")
            .assignment_required()
    }
}

/// AWS calls of a run report that write (not List/Get/Describe).
/// The AWS organisation, as an admin shapes it in the Organizations console.
impl Moto {
    /// An organisation managed from the emulator's account (123456789012); its root's id.
    pub async fn create_organization(&self) -> String {
        use aws_sdk_organizations::types::OrganizationFeatureSet;
        self.org
            .create_organization()
            .feature_set(OrganizationFeatureSet::All)
            .send()
            .await
            .expect("CreateOrganization");
        let roots = self.org.list_roots().send().await.expect("ListRoots");
        roots.roots()[0].id().expect("root id").to_owned()
    }

    /// An organisational unit under `parent`; its id.
    pub async fn create_unit(&self, parent: &str, name: &str) -> String {
        let out = self
            .org
            .create_organizational_unit()
            .parent_id(parent)
            .name(name)
            .send()
            .await
            .expect("CreateOrganizationalUnit");
        out.organizational_unit().and_then(|u| u.id()).expect("unit id").to_owned()
    }

    /// An account named `name` (created under the root, then moved under `parent`) with
    /// `tags`; its id.
    pub async fn create_account(&self, name: &str, parent: &str, tags: &[(&str, &str)]) -> String {
        let out = self
            .org
            .create_account()
            .account_name(name)
            .email(format!("{name}@example.com"))
            .send()
            .await
            .expect("CreateAccount");
        let id = out.create_account_status().and_then(|s| s.account_id()).expect("account id");
        let root = self.org.list_roots().send().await.expect("ListRoots").roots()[0]
            .id()
            .expect("root id")
            .to_owned();
        if parent != root {
            self.move_account(id, &root, parent).await;
        }
        if !tags.is_empty() {
            let mut tag = self.org.tag_resource().resource_id(id);
            for (k, v) in tags {
                tag = tag.tags(
                    aws_sdk_organizations::types::Tag::builder()
                        .key(*k)
                        .value(*v)
                        .build()
                        .expect("tag"),
                );
            }
            tag.send().await.expect("TagResource");
        }
        id.to_owned()
    }

    pub async fn move_account(&self, account: &str, from: &str, to: &str) {
        self.org
            .move_account()
            .account_id(account)
            .source_parent_id(from)
            .destination_parent_id(to)
            .send()
            .await
            .expect("MoveAccount");
    }
}

pub fn writes(report: &serde_json::Value) -> u64 {
    let calls = report["aws_calls"].as_object().cloned().unwrap_or_default();
    calls
        .iter()
        .filter(|(op, _)| {
            !op.starts_with("List") && !op.starts_with("Get") && !op.starts_with("Describe")
        })
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum()
}
