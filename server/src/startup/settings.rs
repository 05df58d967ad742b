//! The settings a command runs with: the layered config file and environment
//! ([`Settings::load`]), the inline policy files it names, and what each feature checks of its
//! section (the database URL, compat modes, the log level, the schedule, the CEL filters and
//! mappings, the assignment rules, retention, trusted proxies) next to the limits' own checks.
//! A broken setting stops every command at start, as a configuration error (exit 2).

use crate::config::{Overrides, Settings, listen_problem};
use crate::names::{DisplayName, SourceName, UserName};
use std::path::Path;

/// The settings of `config_file` and the environment under `overrides`, checked.
pub fn load_settings(
    config_file: Option<&Path>,
    overrides: &Overrides,
) -> anyhow::Result<Settings> {
    let mut settings = Settings::load(config_file, overrides)?;
    // Policy files are named relative to the config file.
    let config_dir = config_file.and_then(Path::parent).unwrap_or(Path::new("."));
    crate::sync::access::rules::load_inline_policies(&mut settings.permission_sets, config_dir)?;
    validate(&settings)?;
    Ok(settings)
}

/// Every check, in a fixed order (the first problem is the one reported).
fn validate(settings: &Settings) -> anyhow::Result<()> {
    if let Some(problem) = crate::store::url_problem(&settings.database.url) {
        anyhow::bail!("config: database.url: {problem}");
    }
    if let Some(problem) = listen_problem(&settings.server.listen) {
        anyhow::bail!("config: server.listen (--listen, SCIMBRIDGE_LISTEN): {problem}");
    }
    if let Some(problem) = settings.server.metrics_listen.as_deref().and_then(listen_problem) {
        anyhow::bail!("config: server.metrics_listen: {problem}");
    }
    for (name, s) in &settings.sources {
        // A key no source can have would silently configure nothing.
        if let Err(problem) = SourceName::parse(name) {
            anyhow::bail!("config: sources.{name}: not a source name: {problem}");
        }
        if s.adopt_from.iter().any(|from| from == name) {
            anyhow::bail!("config: sources.{name}.adopt_from names the source itself");
        }
        if let Some(problem) = s.adopt_from.iter().find_map(|from| SourceName::parse(from).err()) {
            anyhow::bail!("config: sources.{name}.adopt_from: not a source name: {problem}");
        }
        if let Some(problem) =
            s.compat.as_deref().and_then(|c| crate::scim::compat::config_problem(name, c))
        {
            anyhow::bail!(problem);
        }
    }
    // A protected name that no principal can have (empty, or holding a control character)
    // would protect nothing.
    for name in &settings.sync.protected_users {
        UserName::parse(name)
            .map_err(|e| anyhow::anyhow!("config: sync.protected_users: {}", e.detail))?;
    }
    for name in &settings.sync.protected_groups {
        DisplayName::parse(name)
            .map_err(|e| anyhow::anyhow!("config: sync.protected_groups: {}", e.detail))?;
    }
    if let Some(problem) = crate::telemetry::level_problem(&settings.log.level) {
        anyhow::bail!("config: log.level: {problem}");
    }
    // `log.format` is a [`crate::config::LogFormat`]: a bad one does not deserialize.
    crate::sync::scheduler::parse_schedule(&settings.sync.schedule)
        .map_err(|e| anyhow::anyhow!("config: {e}"))?;
    if settings.aws.max_requests_per_second == 0 {
        anyhow::bail!("config: aws.max_requests_per_second must be at least 1");
    }
    if !(0.0..=1.0).contains(&settings.sync.max_delete_fraction) {
        anyhow::bail!("config: sync.max_delete_fraction must be between 0 and 1");
    }
    crate::sync::run::SyncTimings::from_settings(&settings.sync)?;
    humantime::parse_duration(&settings.sync.guard_window).map_err(|e| {
        anyhow::anyhow!(
            "config: sync.guard_window: {:?} is not a duration such as \"24h\" or \"90m\" ({e})",
            settings.sync.guard_window
        )
    })?;
    let poll = humantime::parse_duration(&settings.sync.organization_poll).map_err(|e| {
        anyhow::anyhow!(
            "config: sync.organization_poll: {:?} is not a duration such as \"10m\" ({e})",
            settings.sync.organization_poll
        )
    })?;
    // Each read of a large organisation costs a call per unit and per account: more often
    // than this would crowd the Identity Store's calls out of the one rate limit.
    if poll < std::time::Duration::from_secs(10) {
        anyhow::bail!(
            "config: sync.organization_poll: {:?} is too short (at least \"10s\")",
            settings.sync.organization_poll
        );
    }
    crate::sync::retention::RetentionPolicy::from_settings(settings)?;
    // Compiled here so that a broken expression stops start-up, not a run.
    crate::mapping::rules::Rules::compile(&settings.sync.filter, &settings.mapping)?;
    crate::sync::access::rules::validate(&settings.permission_sets, &settings.assignments)?;
    if settings.database.max_connections == 0 {
        anyhow::bail!("config: database.max_connections must be at least 1");
    }
    if settings.scim.max_results == 0 {
        anyhow::bail!("config: scim.max_results must be at least 1");
    }
    if settings.scim.max_patch_operations == 0 {
        anyhow::bail!("config: scim.max_patch_operations must be at least 1");
    }
    if settings.scim.max_request_bytes == 0 || settings.scim.max_payload_bytes == 0 {
        anyhow::bail!(
            "config: scim.max_request_bytes and scim.max_payload_bytes must be at least 1"
        );
    }
    if settings.scim.max_concurrent_large_requests == Some(0) {
        anyhow::bail!("config: scim.max_concurrent_large_requests must be at least 1");
    }
    if settings.server.request_body_timeout_seconds == 0 {
        anyhow::bail!("config: server.request_body_timeout_seconds must be at least 1");
    }
    crate::http::forwarded::TrustedProxies::parse(&settings.server.trusted_proxies)
        .map_err(|e| anyhow::anyhow!("config: server.trusted_proxies: {e}"))?;
    if let Some(addr) = &settings.server.metrics_listen
        && addr.trim() == settings.server.listen.trim()
    {
        anyhow::bail!("config: server.metrics_listen must differ from server.listen ({addr})");
    }
    if settings.server.tls_cert_file.is_some() != settings.server.tls_key_file.is_some() {
        anyhow::bail!(
            "config: server.tls_cert_file and server.tls_key_file go together: set both (HTTPS) or neither"
        );
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;
    use figment::Jail;

    fn load(path: &str) -> anyhow::Result<Settings> {
        load_settings(Some(Path::new(path)), &Overrides::default())
    }

    #[test]
    fn a_bad_listen_address_or_database_url_is_named() {
        Jail::expect_with(|_jail| {
            let over = Overrides { listen: Some("localhost:abc".into()), ..Default::default() };
            let err = load_settings(None, &over).unwrap_err().to_string();
            assert!(err.contains("--listen") && err.contains("\"abc\""), "{err}");
            let over =
                Overrides { database_url: Some("mysql://u:pw@h/db".into()), ..Default::default() };
            let err = load_settings(None, &over).unwrap_err().to_string();
            assert!(err.contains("database.url") && err.contains("mysql") && !err.contains("pw"));
            Ok(())
        });
    }

    #[test]
    fn assignment_rules_and_inline_policy_relative_to_the_config_file() {
        Jail::expect_with(|jail| {
            jail.create_dir("conf/policies")?;
            jail.create_file(
                "conf/policies/ec2.json",
                r#"{"Version": "2012-10-17", "Statement": []}"#,
            )?;
            jail.create_file(
                "conf/c.toml",
                r#"
[[permission_sets]]
name = "EC2AdminAccess"
session_duration = "PT8H"
managed_policies = ["arn:aws:iam::aws:policy/AmazonEC2FullAccess"]
customer_managed_policies = [{ name = "ec2-extra" }]
inline_policy_file = "policies/ec2.json"

[[assignments.account]]
group_external_id = "00aa"
permission_set = "EC2AdminAccess"
accounts = ["111111111111"]

[[assignments.application]]
user = "ana@example.com"
application_arn = "arn:aws:sso::123456789012:application/ssoins-1111111111111111/apl-1111111111111111"
"#,
            )?;
            let s = load("conf/c.toml").unwrap();
            let set = &s.permission_sets[0];
            assert_eq!(set.inline_policy.as_ref().unwrap()["Version"], "2012-10-17");
            assert_eq!(set.customer_managed_policies[0].path, "/");
            assert_eq!(
                s.assignments.account[0].subject(),
                crate::sync::access::rules::Subject::GroupExternalId("00aa".into())
            );
            assert_eq!(s.assignments.application.len(), 1);

            jail.create_file("conf/policies/ec2.json", "{not json")?;
            let err = load("conf/c.toml").unwrap_err();
            assert!(err.to_string().contains("permission_sets[0].inline_policy_file"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_compat_mode_is_named() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[sources.x]\ncompat = \"nope\"\n")?;
            let err = load("c.toml").unwrap_err();
            assert!(err.to_string().contains("sources.x.compat"), "{err}");
            jail.create_file("c.toml", "[sources.x]\ncompat = \"entra\"\n")?;
            assert_eq!(load("c.toml").unwrap().sources["x"].compat.as_deref(), Some("entra"));
            Ok(())
        });
    }

    #[test]
    fn source_names_and_protected_names_no_principal_can_have_are_named() {
        Jail::expect_with(|_jail| {
            let problem = |toml: &str| -> anyhow::Result<String> {
                std::fs::write("c.toml", toml)?;
                Ok(load("c.toml").map(|_| String::new()).unwrap_or_else(|e| e.to_string()))
            };
            let err = problem("[sources.\"okta tenant\"]\nadopt_existing = true\n").unwrap();
            assert_eq!(
                err,
                "config: sources.okta tenant: not a source name: use 1-64 letters, digits, '-' or '_' (got \"okta tenant\")"
            );
            let err = problem("[sources.admin]\ncompat = \"strict\"\n").unwrap();
            assert!(
                err.contains("sources.admin: not a source name: \"admin\" is reserved"),
                "{err}"
            );
            let err = problem("[sources.entra]\nadopt_from = [\"okta/old\"]\n").unwrap();
            assert!(err.contains("sources.entra.adopt_from: not a source name"), "{err}");
            let err = problem("[sync]\nprotected_users = [\"ok@example.com\", \" \"]\n").unwrap();
            assert_eq!(err, "config: sync.protected_users: userName is empty");
            let err = problem("[sync]\nprotected_groups = [\"a\\u0007\"]\n").unwrap();
            assert!(err.starts_with("config: sync.protected_groups: displayName contains the control character U+0007"), "{err}");
            let ok = "[sources.entra]\nadopt_from = [\"okta\"]\n[sync]\nprotected_groups = [\" Admins \"]\n";
            assert_eq!(problem(ok).unwrap(), "");
            Ok(())
        });
    }

    #[test]
    fn a_bad_or_too_short_organization_poll_is_named() {
        Jail::expect_with(|jail| {
            for bad in ["often", "1s"] {
                jail.create_file("c.toml", &format!("[sync]\norganization_poll = \"{bad}\"\n"))?;
                let err = load("c.toml").unwrap_err();
                assert!(err.to_string().contains("sync.organization_poll"), "{err}");
            }
            jail.create_file("c.toml", "[sync]\norganization_poll = \"2m\"\n")?;
            let s = load("c.toml").unwrap();
            assert_eq!(s.sync.organization_poll(), std::time::Duration::from_secs(120));
            Ok(())
        });
    }

    #[test]
    fn a_bad_guard_window_or_rule_source_is_named() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[sync]\nguard_window = \"a day\"\n")?;
            let err = load("c.toml").unwrap_err();
            assert!(err.to_string().contains("sync.guard_window"), "{err}");
            jail.create_file("c.toml", "[sync]\nguard_window = \"90m\"\n")?;
            let s = load("c.toml").unwrap();
            assert_eq!(s.sync.guard_window(), std::time::Duration::from_secs(5400));
            jail.create_file(
                "c.toml",
                "[[assignments.account]]\nsource = \"okta tenant\"\ngroup = \"G\"\n\
                 permission_set = \"P\"\naccounts = [\"111111111111\"]\n",
            )?;
            let err = load("c.toml").unwrap_err();
            assert!(err.to_string().contains("assignments.account[0].source"), "{err}");
            Ok(())
        });
    }
}
