//! Settings: defaults → TOML file (`--config`) → `SCIMBRIDGE_<SECTION>__<KEY>` environment →
//! command-line flags (`--database-url`/`DATABASE_URL`, `--listen`/`SCIMBRIDGE_LISTEN`).
//! Unknown keys in the sections this version implements are errors that name the key.
//!
//! This module is plain data and the layering: it imports nothing from the features. Each
//! feature checks or compiles its own section, and `startup::load_settings` runs those checks
//! at start-up (a command never sees settings that did not pass them).

mod access;
mod auth;
mod aws;
mod database;
mod log;
mod mapping;
mod retention;
mod scim;
mod server;
mod sources;
mod sync;

pub use access::{
    AccountRule, ApplicationRule, AssignmentSettings, CustomerManagedPolicy, PermissionSetSettings,
    is_account_id,
};
pub use auth::AuthSettings;
pub use aws::AwsSettings;
pub use database::{DEFAULT_DATABASE_URL, DatabaseSettings};
pub use log::{LogFormat, LogSettings};
pub use mapping::MappingSettings;
pub use retention::{
    DEFAULT_AUDIT_DAYS, DEFAULT_JOURNAL_DAYS, DEFAULT_RETENTION_INTERVAL_SECONDS,
    DEFAULT_RUNS_KEEP, RetentionSettings,
};
pub use scim::ScimSettings;
pub use server::{DEFAULT_LISTEN, ServerSettings, listen_problem};
pub use sources::SourceSettings;
pub use sync::{
    DEFAULT_JOURNAL_POLL_MILLISECONDS, DEFAULT_LEASE_SECONDS, DEFAULT_SCHEDULER_TICK_MILLISECONDS,
    OnDeactivate, SyncSettings,
};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub scim: ScimSettings,
    pub log: LogSettings,
    /// Per-source settings, keyed by source name.
    pub sources: BTreeMap<String, SourceSettings>,
    pub aws: AwsSettings,
    pub sync: SyncSettings,
    pub auth: AuthSettings,
    /// User-defined mappings on top of the built-in AWS profile.
    pub mapping: MappingSettings,
    /// Managed permission sets.
    pub permission_sets: Vec<PermissionSetSettings>,
    /// Account and application assignment rules.
    pub assignments: AssignmentSettings,
    /// How long the change journal, the audit log and the run records are kept.
    pub retention: RetentionSettings,
}

/// Values given on the command line (or their dedicated environment variables).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub database_url: Option<String>,
    pub listen: Option<String>,
}

impl Settings {
    /// The layered settings, deserialized: every key known and of its type. What the features
    /// check of their sections (and the inline policy files) is `startup::load_settings`'s.
    pub fn load(config_file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Settings> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = config_file {
            if !path.exists() {
                anyhow::bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Only SCIMBRIDGE_<SECTION>__<KEY>: SCIMBRIDGE_CONFIG and SCIMBRIDGE_LISTEN are flags.
        figment = figment
            .merge(Env::prefixed("SCIMBRIDGE_").filter(|k| k.as_str().contains("__")).split("__"));
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(("database.url", url));
        }
        if let Some(listen) = &overrides.listen {
            figment = figment.merge(("server.listen", listen));
        }
        figment.extract().map_err(|e| anyhow::anyhow!(config_error(e)))
    }
}

/// Figment's errors already name the key and the source (file or environment variable). A
/// value that names its key itself (`log.format`) is said as it is.
fn config_error(e: figment::Error) -> String {
    let mut out = Vec::new();
    for err in e {
        match &err.kind {
            figment::error::Kind::Message(message) if err.path == ["log", "format"] => {
                out.push(format!("config: {message}"));
            }
            _ => out.push(format!("config: {err}")),
        }
    }
    out.join("\n")
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_use_embedded_sqlite() {
        Jail::expect_with(|_jail| {
            let s = Settings::load(None, &Overrides::default()).expect("defaults load");
            assert_eq!(s.database.url, DEFAULT_DATABASE_URL);
            assert_eq!(s.server.listen, DEFAULT_LISTEN);
            assert_eq!(s.scim.bulk_max_operations, 100);
            assert_eq!(s.scim.max_patch_operations, 1000);
            assert_eq!(s.log.format, LogFormat::Text);
            Ok(())
        });
    }

    #[test]
    fn file_then_env_then_flags() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                r#"
                [database]
                url = "postgres://file/db"
                [server]
                listen = "0.0.0.0:1"
                [scim]
                max_results = 50
                [aws]
                region = "us-east-1"
                [sources.entra]
                compat = "entra"
                adopt_from = ["okta"]
                "#,
            )?;
            jail.set_env("SCIMBRIDGE_SCIM__MAX_RESULTS", "70");
            jail.set_env("SCIMBRIDGE_LISTEN", "ignored-here");
            let over = Overrides { database_url: Some("sqlite://flag.db".into()), listen: None };
            let s = Settings::load(Some(Path::new("c.toml")), &over).expect("loads");
            assert_eq!(s.database.url, "sqlite://flag.db");
            assert_eq!(s.server.listen, "0.0.0.0:1");
            assert_eq!(s.scim.max_results, 70);
            assert_eq!(s.sources["entra"].adopt_from, vec!["okta".to_string()]);
            Ok(())
        });
    }

    #[test]
    fn unknown_key_is_named() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[server]\nlisten = \"x\"\nlisten_port = 3\n")?;
            let err = Settings::load(Some(Path::new("c.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("listen_port"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_section_is_named() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[assignmentz]\nx = 1\n")?;
            let err = Settings::load(Some(Path::new("c.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("assignmentz"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_log_format_is_text_or_json_and_a_bad_one_is_named() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[log]\nformat = \"json\"\n")?;
            let s = Settings::load(Some(Path::new("c.toml")), &Overrides::default()).unwrap();
            assert_eq!(s.log.format, LogFormat::Json);
            jail.create_file("c.toml", "[log]\nformat = \"xml\"\n")?;
            let err = Settings::load(Some(Path::new("c.toml")), &Overrides::default()).unwrap_err();
            assert_eq!(err.to_string(), "config: log.format must be `text` or `json`, not `xml`");
            jail.set_env("SCIMBRIDGE_LOG__FORMAT", "yaml");
            let err = Settings::load(None, &Overrides::default()).unwrap_err();
            assert_eq!(err.to_string(), "config: log.format must be `text` or `json`, not `yaml`");
            Ok(())
        });
    }

    #[test]
    fn the_access_log_switch_takes_only_a_boolean() {
        Jail::expect_with(|jail| {
            let s = Settings::load(None, &Overrides::default()).unwrap();
            assert!(s.log.access, "on by default");
            for careless in ["\"no\"", "0", "\"off\"", "[]", "\"\""] {
                jail.create_file("c.toml", &format!("[log]\naccess = {careless}\n"))?;
                let loaded = Settings::load(Some(Path::new("c.toml")), &Overrides::default());
                let err = loaded.map(|s| s.log.access).unwrap_err();
                assert!(err.to_string().contains("log.access"), "{careless}: {err}");
            }
            jail.create_file("c.toml", "[log]\naccess = false\n")?;
            assert!(
                !Settings::load(Some(Path::new("c.toml")), &Overrides::default())
                    .unwrap()
                    .log
                    .access
            );
            jail.set_env("SCIMBRIDGE_LOG__ACCESS", "false");
            assert!(!Settings::load(None, &Overrides::default()).unwrap().log.access);
            jail.set_env("SCIMBRIDGE_LOG__ACCESS", "nope");
            let err = Settings::load(None, &Overrides::default()).unwrap_err().to_string();
            // figment names the variable's key as written: LOG.ACCESS.
            assert!(err.to_lowercase().contains("log.access"), "{err}");
            Ok(())
        });
    }
}
