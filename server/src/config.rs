//! Settings: defaults → TOML file (`--config`) → `SCIMBRIDGE_<SECTION>__<KEY>` environment →
//! command-line flags (`--database-url`/`DATABASE_URL`, `--listen`/`SCIMBRIDGE_LISTEN`).
//! Unknown keys in the sections this version implements are errors that name the key.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://scimbridge.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

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
    pub mapping: crate::mapping::rules::MappingSettings,
    /// Managed permission sets.
    pub permission_sets: Vec<crate::sync::access::rules::PermissionSetSettings>,
    /// Account and application assignment rules.
    pub assignments: crate::sync::access::rules::AssignmentSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    /// The externally visible base URL (e.g. `https://scim.example.com`), used in `meta.location`
    /// and `Location`. Unset: taken from the request's Host (and X-Forwarded-* headers).
    pub public_url: Option<String>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Seconds to let in-flight requests finish on shutdown.
    pub shutdown_timeout_seconds: u64,
    /// CIDRs (or single addresses) of the reverse proxies whose `Forwarded`,
    /// `X-Forwarded-Host` and `X-Forwarded-Proto` headers are honoured; from any other peer
    /// they are ignored. `public_url` wins over both.
    pub trusted_proxies: Vec<String>,
    /// A second address serving `/metrics`, `/livez` and `/readyz` (plain HTTP); when set,
    /// the main listener no longer serves `/metrics`.
    pub metrics_listen: Option<String>,
    /// Seconds a client has to send a request body once its headers arrived; a slower one is
    /// cut off with 408 (actix itself limits the headers to 5 seconds).
    pub request_body_timeout_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://…`.
    pub url: String,
    /// PostgreSQL connections per replica (SQLite: readers; it always has one writer). `serve`
    /// shares them out as [`DatabaseSettings::budget`] says.
    pub max_connections: u32,
    /// PostgreSQL `statement_timeout` of every connection (0: none), so a runaway statement
    /// cannot hold a connection forever. Migrations run without it.
    pub statement_timeout_seconds: u64,
}

/// How `serve` shares `database.max_connections` out on PostgreSQL, and how many HTTP worker
/// threads it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// The pool of the sync engine, the scheduler and start-up (a run uses one at a time).
    pub background: u32,
    pub http_workers: u32,
    /// The pool of each HTTP worker thread (see `Store::for_http_worker`).
    pub per_http_worker: u32,
}

impl DatabaseSettings {
    /// A quarter of the connections (at least one) for the background; one HTTP worker per
    /// CPU, but no more than half the remaining connections, so that each worker has two to
    /// itself; the rest shared evenly by the workers. 10 connections on 2 CPUs: 2 + 2 × 4; on
    /// 64 CPUs: 2 + 4 × 2. A replica never opens more than `max_connections` (at least 2).
    pub fn budget(&self, cpus: u32) -> ConnectionBudget {
        let background = (self.max_connections / 4).max(1);
        let rest = self.max_connections.saturating_sub(background).max(1);
        let http_workers = cpus.clamp(1, (rest / 2).max(1));
        ConnectionBudget { background, http_workers, per_http_worker: rest / http_workers }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScimSettings {
    /// Page size cap and the default `count` (advertised as `filter.maxResults`).
    pub max_results: u32,
    /// Operations per Bulk request (advertised as `bulk.maxOperations`; authentik sizes its
    /// PATCH batches by it).
    pub bulk_max_operations: u32,
    /// Largest `/Bulk` request body in bytes (advertised as `bulk.maxPayloadSize`).
    pub max_payload_bytes: u64,
    /// Operations per PATCH request; more is 400 `tooMany`. Each runs inside the resource's
    /// write transaction, so this bounds how long one request holds the writes of every source
    /// (SQLite) or the group's lock (PostgreSQL). SCIM has no ServiceProviderConfig field for it.
    pub max_patch_operations: u32,
    /// Largest request body in bytes everywhere else (a parsed body costs many times its size
    /// in memory).
    pub max_request_bytes: u64,
    /// How many `/Bulk` bodies larger than `max_request_bytes` may be read and processed at
    /// once; another one gets 503 with `Retry-After`. Unset: sized from the memory available
    /// ([`ScimSettings::large_request_permits`]).
    pub max_concurrent_large_requests: Option<u32>,
    /// How long a verified token stays cached; a revocation takes effect within this time.
    pub token_cache_seconds: u64,
}

/// A parsed SCIM body with its working state costs up to about this many times its size in
/// memory (measured: an 8 MiB Bulk body, ~200 MB).
pub const BODY_MEMORY_FACTOR: u64 = 25;
/// At most this many large bodies at once, however much memory there is.
const MAX_LARGE_REQUEST_PERMITS: u64 = 16;

impl ScimSettings {
    /// `max_concurrent_large_requests`, or when unset: half of `memory_bytes` (the container's
    /// limit) divided by what one body of `max_payload_bytes` may cost, between 1 and 16.
    pub fn large_request_permits(&self, memory_bytes: Option<u64>) -> u32 {
        if let Some(n) = self.max_concurrent_large_requests {
            return n.max(1);
        }
        let per_body = self.max_payload_bytes.saturating_mul(BODY_MEMORY_FACTOR).max(1);
        let permits = memory_bytes.map_or(1, |m| (m / 2) / per_body);
        u32::try_from(permits.clamp(1, MAX_LARGE_REQUEST_PERMITS)).unwrap_or(1)
    }
}

/// The memory this process may use: the cgroup limit (v2, then v1), else the machine's.
pub fn available_memory_bytes() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        // v1 reports "no limit" as a huge number.
        .filter(|&v| v < (1 << 60));
    cgroup.or_else(|| {
        let meminfo = read("/proc/meminfo")?;
        let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    })
}

/// `[auth]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// A directory of token files, one per source (`admin`: the admin token), accepted at
    /// start (the Helm chart mounts its tokens Secret here).
    pub tokens_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `scimbridge=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
    /// One line per HTTP request (target `scimbridge::access`). Off: only rejected and failed
    /// requests are logged.
    pub access: bool,
}

/// `[aws]`: where and how the sync engine reaches IAM Identity Center.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsSettings {
    /// The Identity Center instance's (primary) Region; unset: the SDK's own chain
    /// (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Emulators and tests only.
    pub endpoint_url: Option<String>,
    /// Discovered with sso-admin `ListInstances` when unset.
    pub identity_store_id: Option<String>,
    pub instance_arn: Option<String>,
    /// Optional STS AssumeRole.
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    /// One limiter for every AWS attempt, retries included (AWS allows ~20/s in total).
    pub max_requests_per_second: u32,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            region: None,
            endpoint_url: None,
            identity_store_id: None,
            instance_arn: None,
            role_arn: None,
            external_id: None,
            max_requests_per_second: 10,
        }
    }
}

/// What happens in AWS to a user the IdP deactivated (`active = false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDeactivate {
    /// The user stays (same AWS id, reversible) but leaves every group.
    RemoveMemberships,
    Delete,
    Ignore,
}

/// `[sync]`: when and how carefully the sync engine pushes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSettings {
    /// Whether `serve` syncs into AWS by itself (at start-up, on the schedule, after changes).
    /// Off unless set: an AWS Region in the shell (`AWS_REGION`) must never start pushing into
    /// a real Identity Store. `scimbridge sync` runs whatever this says.
    pub enabled: bool,
    /// Hold principal deletes, membership removals and assignment deletes until an admin
    /// approves them (`scimbridge sync approve RUN_ID`); the rest of each plan still applies.
    pub approve_destructive: bool,
    /// Full reconcile schedule: 6-field cron with seconds, UTC.
    pub schedule: String,
    /// A change reaches AWS this long after the IdP's last request.
    pub debounce_seconds: u64,
    pub on_deactivate: OnDeactivate,
    /// A run that would delete more than this share of the managed principals refuses.
    pub max_delete_fraction: f64,
    /// Below this many managed principals (recorded memberships, assignments) the fraction
    /// guard is off; a group with at least this many members is also guarded on its own.
    pub min_principals_for_guard: u64,
    /// The deletes and removals of the runs in this window (`24h`, `90m`, `7d`) count together
    /// with the run's own, so that spacing them out does not get around the guard.
    pub guard_window: String,
    /// userNames never adopted, changed or deleted.
    pub protected_users: Vec<String>,
    /// Group displayNames never adopted, changed or deleted.
    pub protected_groups: Vec<String>,
    /// CEL predicates choosing what is synced (`users`, `groups`).
    pub filter: BTreeMap<String, String>,
    /// Advanced: how long a run's sync lease lasts without renewal (5 to 3600).
    pub lease_seconds: u64,
    /// Advanced: how often a running run looks at the change journal (50 to 60000).
    pub journal_poll_milliseconds: u64,
    /// Advanced: how often `serve`'s scheduler looks at the change journal (50 to 60000).
    pub scheduler_tick_milliseconds: u64,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            enabled: false,
            approve_destructive: false,
            schedule: "0 0 3 * * *".to_owned(),
            debounce_seconds: 5,
            on_deactivate: OnDeactivate::RemoveMemberships,
            max_delete_fraction: 0.10,
            min_principals_for_guard: 20,
            guard_window: "24h".to_owned(),
            protected_users: Vec::new(),
            protected_groups: Vec::new(),
            filter: BTreeMap::new(),
            lease_seconds: crate::sync::run::config::DEFAULT_LEASE_SECONDS,
            journal_poll_milliseconds: crate::sync::run::config::DEFAULT_JOURNAL_POLL_MILLISECONDS,
            scheduler_tick_milliseconds:
                crate::sync::run::config::DEFAULT_SCHEDULER_TICK_MILLISECONDS,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceSettings {
    /// Compatibility mode; overrides what `token create --compat` stored.
    pub compat: Option<String>,
    /// Sources whose users and groups this one may take over (identity-source migration).
    pub adopt_from: Vec<String>,
    /// Whether this source's creates may take over an unmanaged AWS user or group of the same
    /// userName / displayName (one an admin made by hand, or another tool). Off: such a
    /// create is an error naming the AWS principal, which is left as it is.
    pub adopt_existing: bool,
}

impl SyncSettings {
    /// `guard_window` as a duration (validated at load).
    pub fn guard_window(&self) -> std::time::Duration {
        humantime::parse_duration(&self.guard_window)
            .unwrap_or(std::time::Duration::from_secs(86_400))
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: DEFAULT_LISTEN.to_owned(),
            public_url: None,
            tls_cert_file: None,
            tls_key_file: None,
            shutdown_timeout_seconds: 30,
            trusted_proxies: Vec::new(),
            metrics_listen: None,
            request_body_timeout_seconds: 30,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: DEFAULT_DATABASE_URL.to_owned(),
            max_connections: 10,
            statement_timeout_seconds: 30,
        }
    }
}

impl Default for ScimSettings {
    fn default() -> Self {
        ScimSettings {
            max_results: 1000,
            bulk_max_operations: 100,
            max_payload_bytes: 8 * 1024 * 1024,
            max_patch_operations: 1000,
            max_request_bytes: 1024 * 1024,
            max_concurrent_large_requests: None,
            token_cache_seconds: 5,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { format: "text".to_owned(), level: "info".to_owned(), access: true }
    }
}

/// Values given on the command line (or their dedicated environment variables).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub database_url: Option<String>,
    pub listen: Option<String>,
}

pub use crate::scim::compat::COMPAT_MODES;

impl Settings {
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
        let mut settings: Settings =
            figment.extract().map_err(|e| anyhow::anyhow!(config_error(e)))?;
        // Policy files are named relative to the config file.
        let config_dir = config_file.and_then(Path::parent).unwrap_or(Path::new("."));
        crate::sync::access::rules::load_inline_policies(
            &mut settings.permission_sets,
            config_dir,
        )?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(problem) = crate::store::url_problem(&self.database.url) {
            anyhow::bail!("config: database.url: {problem}");
        }
        if let Some(problem) = listen_problem(&self.server.listen) {
            anyhow::bail!("config: server.listen (--listen, SCIMBRIDGE_LISTEN): {problem}");
        }
        if let Some(problem) = self.server.metrics_listen.as_deref().and_then(listen_problem) {
            anyhow::bail!("config: server.metrics_listen: {problem}");
        }
        for (name, s) in &self.sources {
            if s.adopt_from.iter().any(|from| from == name) {
                anyhow::bail!("config: sources.{name}.adopt_from names the source itself");
            }
            if let Some(c) = &s.compat
                && !COMPAT_MODES.contains(&c.as_str())
            {
                anyhow::bail!(
                    "config: sources.{name}.compat: unknown mode `{c}` (one of {})",
                    COMPAT_MODES.join(", ")
                );
            }
        }
        if let Some(problem) = crate::telemetry::level_problem(&self.log.level) {
            anyhow::bail!("config: log.level: {problem}");
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            anyhow::bail!("config: log.format must be `text` or `json`, not `{}`", self.log.format);
        }
        crate::sync::scheduler::parse_schedule(&self.sync.schedule)
            .map_err(|e| anyhow::anyhow!("config: {e}"))?;
        if self.aws.max_requests_per_second == 0 {
            anyhow::bail!("config: aws.max_requests_per_second must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.sync.max_delete_fraction) {
            anyhow::bail!("config: sync.max_delete_fraction must be between 0 and 1");
        }
        crate::sync::run::SyncTimings::from_settings(&self.sync)?;
        humantime::parse_duration(&self.sync.guard_window).map_err(|e| {
            anyhow::anyhow!(
                "config: sync.guard_window: {:?} is not a duration such as \"24h\" or \"90m\" ({e})",
                self.sync.guard_window
            )
        })?;
        // Compiled here so that a broken expression stops start-up, not a run.
        crate::mapping::rules::Rules::compile(&self.sync.filter, &self.mapping)?;
        crate::sync::access::rules::validate(&self.permission_sets, &self.assignments)?;
        if self.database.max_connections == 0 {
            anyhow::bail!("config: database.max_connections must be at least 1");
        }
        if self.scim.max_results == 0 {
            anyhow::bail!("config: scim.max_results must be at least 1");
        }
        if self.scim.max_patch_operations == 0 {
            anyhow::bail!("config: scim.max_patch_operations must be at least 1");
        }
        if self.scim.max_request_bytes == 0 || self.scim.max_payload_bytes == 0 {
            anyhow::bail!(
                "config: scim.max_request_bytes and scim.max_payload_bytes must be at least 1"
            );
        }
        if self.scim.max_concurrent_large_requests == Some(0) {
            anyhow::bail!("config: scim.max_concurrent_large_requests must be at least 1");
        }
        if self.server.request_body_timeout_seconds == 0 {
            anyhow::bail!("config: server.request_body_timeout_seconds must be at least 1");
        }
        crate::http::forwarded::TrustedProxies::parse(&self.server.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("config: server.trusted_proxies: {e}"))?;
        if let Some(addr) = &self.server.metrics_listen
            && addr.trim() == self.server.listen.trim()
        {
            anyhow::bail!("config: server.metrics_listen must differ from server.listen ({addr})");
        }
        if self.server.tls_cert_file.is_some() != self.server.tls_key_file.is_some() {
            anyhow::bail!(
                "config: server.tls_cert_file and server.tls_key_file go together: set both (HTTPS) or neither"
            );
        }
        Ok(())
    }
}

/// Why `addr` is not a `host:port` to listen on, if it is not. Checked at load, so that every
/// command (not only `serve`, when it binds) refuses it as a configuration error; the host is
/// not looked up here.
pub fn listen_problem(addr: &str) -> Option<String> {
    let example = "such as 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080";
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Some(format!("{addr:?} is not an address {example} (no port)"));
    };
    if port.parse::<u16>().is_err() {
        return Some(format!("{addr:?}: the port {port:?} is not a number from 0 to 65535"));
    }
    if host.is_empty() {
        return Some(format!("{addr:?} names no host; use an address {example}"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Some(format!("{addr:?}: an IPv6 address goes in brackets, as in [::1]:8080"));
    }
    None
}

/// Figment's errors already name the key and the source (file or environment variable).
fn config_error(e: figment::Error) -> String {
    let mut out = Vec::new();
    for err in e {
        out.push(format!("config: {err}"));
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
            Ok(())
        });
    }

    #[test]
    fn connection_budget_shares_max_connections_out() {
        let budget = |max, cpus| {
            DatabaseSettings { max_connections: max, ..Default::default() }.budget(cpus)
        };
        let b = |background, http_workers, per_http_worker| ConnectionBudget {
            background,
            http_workers,
            per_http_worker,
        };
        assert_eq!(budget(10, 2), b(2, 2, 4));
        assert_eq!(budget(10, 1), b(2, 1, 8));
        assert_eq!(budget(20, 4), b(5, 4, 3));
        // Many CPUs: no more workers than can have two connections each.
        assert_eq!(budget(10, 64), b(2, 4, 2));
        assert_eq!(budget(3, 8), b(1, 1, 2));
        // Never a pool of none, nor no worker.
        assert_eq!(budget(1, 2), b(1, 1, 1));
        assert_eq!(budget(10, 0), b(2, 1, 8));
        for max in 2..200 {
            for cpus in 1..70 {
                let x = budget(max, cpus);
                assert!(x.background + x.http_workers * x.per_http_worker <= max, "{max} {cpus}");
            }
        }
    }

    #[test]
    fn large_request_permits_sized_from_memory() {
        let scim = ScimSettings::default();
        const MIB: u64 = 1024 * 1024;
        // 8 MiB bodies cost ~200 MiB each; half the memory is theirs.
        assert_eq!(scim.large_request_permits(Some(512 * MIB)), 1);
        assert_eq!(scim.large_request_permits(Some(2048 * MIB)), 5);
        assert_eq!(scim.large_request_permits(Some(64 * 1024 * MIB)), 16);
        assert_eq!(scim.large_request_permits(Some(MIB)), 1);
        assert_eq!(scim.large_request_permits(None), 1);
        let set =
            ScimSettings { max_concurrent_large_requests: Some(3), ..ScimSettings::default() };
        assert_eq!(set.large_request_permits(Some(MIB)), 3);
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
    fn a_listen_address_without_a_numeric_port_is_named() {
        for good in ["127.0.0.1:8080", "localhost:0", "0.0.0.0:65535", "[::1]:8080"] {
            assert_eq!(listen_problem(good), None, "{good}");
        }
        for bad in ["localhost:abc", "localhost", ":8080", "::1:8080", "h:70000"] {
            assert!(listen_problem(bad).is_some(), "{bad}");
        }
        Jail::expect_with(|_jail| {
            let over = Overrides { listen: Some("localhost:abc".into()), ..Default::default() };
            let err = Settings::load(None, &over).unwrap_err().to_string();
            assert!(err.contains("--listen") && err.contains("\"abc\""), "{err}");
            let over =
                Overrides { database_url: Some("mysql://u:pw@h/db".into()), ..Default::default() };
            let err = Settings::load(None, &over).unwrap_err().to_string();
            assert!(err.contains("database.url") && err.contains("mysql") && !err.contains("pw"));
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
            let s = Settings::load(Some(Path::new("conf/c.toml")), &Overrides::default()).unwrap();
            let set = &s.permission_sets[0];
            assert_eq!(set.inline_policy.as_ref().unwrap()["Version"], "2012-10-17");
            assert_eq!(set.customer_managed_policies[0].path, "/");
            assert_eq!(
                s.assignments.account[0].subject(),
                crate::sync::access::rules::Subject::GroupExternalId("00aa".into())
            );
            assert_eq!(s.assignments.application.len(), 1);

            jail.create_file("conf/policies/ec2.json", "{not json")?;
            let err =
                Settings::load(Some(Path::new("conf/c.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("permission_sets[0].inline_policy_file"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_compat_mode_is_named() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[sources.x]\ncompat = \"nope\"\n")?;
            let err = Settings::load(Some(Path::new("c.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("sources.x.compat"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_guard_window_or_rule_source_is_named() {
        Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[sync]\nguard_window = \"a day\"\n")?;
            let err = Settings::load(Some(Path::new("c.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("sync.guard_window"), "{err}");
            jail.create_file("c.toml", "[sync]\nguard_window = \"90m\"\n")?;
            let s = Settings::load(Some(Path::new("c.toml")), &Overrides::default()).unwrap();
            assert_eq!(s.sync.guard_window(), std::time::Duration::from_secs(5400));
            jail.create_file(
                "c.toml",
                "[[assignments.account]]\nsource = \"okta tenant\"\ngroup = \"G\"\n\
                 permission_set = \"P\"\naccounts = [\"111111111111\"]\n",
            )?;
            let err = Settings::load(Some(Path::new("c.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("assignments.account[0].source"), "{err}");
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

    #[test]
    fn a_log_level_that_would_silence_the_logs_is_named() {
        for good in ["info", "WARN", "scimbridge=debug,info", "off"] {
            assert!(crate::telemetry::level_problem(good).is_none(), "{good}");
        }
        for bad in ["verbose", "info,chatty", "scimbridge=loud"] {
            assert!(crate::telemetry::level_problem(bad).is_some(), "{bad}");
        }
    }
}
