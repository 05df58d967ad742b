//! The command line (see `shared/DESIGN.md`, "CLI"), as clap parses it; what each command
//! does is [`crate::commands`]. Logs go to stderr; stdout carries only each command's
//! documented output.

use crate::store::CompatMode;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "scimbridge",
    // Also in usage lines, whatever the file is called (the e2e tests' build has its own name).
    bin_name = "scimbridge",
    version,
    about = "SCIM 2.0 provisioning bridge into AWS IAM Identity Center"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML config file; any key can also be set as SCIMBRIDGE_<SECTION>__<KEY>
    #[arg(long, global = true, env = "SCIMBRIDGE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// postgres://… or sqlite://… [default: sqlite://scimbridge.db in the working directory;
    /// only serve and migrate create a missing SQLite file]. Every command names it on stderr
    #[arg(long, global = true, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, global = true, env = "SCIMBRIDGE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (SCIM, admin API, health, metrics) and, with [sync] enabled = true,
    /// the sync scheduler (a run at start-up, on sync.schedule, and debounce_seconds after
    /// changes). Creates a missing SQLite database.
    /// Exit codes: 0 stopped by SIGTERM or Ctrl-C, 1 a runtime failure (the database cannot be
    /// reached, the address is in use), 2 usage or configuration error
    Serve,
    /// Apply pending database migrations and exit; creates a missing SQLite database.
    /// Exit codes: 0 applied, 1 the database cannot be reached or a migration failed, 2 usage
    /// or configuration error
    Migrate,
    /// Create, list and revoke bearer tokens.
    /// Exit codes: 0 done, 1 no live token with that id (revoke) or the database cannot be
    /// reached, 2 usage or configuration error (a reserved or malformed source name, no such
    /// SQLite database file)
    #[command(subcommand)]
    Token(TokenCommand),
    /// Push users, groups and memberships into the Identity Store, and apply the permission
    /// sets and assignments of the rules, now, to completion.
    /// Exit codes: 0 done (deliberate skips are listed as errors), 1 AWS calls still failing
    /// (or the AWS endpoint or the database cannot be reached, or a principal not created
    /// because an unmanaged AWS principal holds its name and its source lacks adopt_existing),
    /// 2 usage or configuration error (also no AWS Region or credentials, a rule naming an
    /// unknown permission set, a rule without `source` while several sources exist, an
    /// externalId matching two groups, or a sync.filter failing for a principal, which is left
    /// as it is; also while sync is paused, though a dry run still
    /// runs, and when these rules differ from those of the serving replicas' last run, see
    /// --config-differs-ok), 3 the delete guard refused the run (too many deletes, membership
    /// removals or assignment deletes, counted over sync.guard_window), 4 another run held the
    /// lock past --wait. With sync.approve_destructive, deletes and removals are held (listed
    /// as `held`) until `sync approve RUN_ID`
    Sync(SyncArgs),
    /// The sync's state (running, idle, paused, failing, unreachable) and health, the last
    /// error and when, the next scheduled full run, the identity store, pending approvals, the
    /// last run and the sources, read from the database (no server needed).
    /// Exit codes: 0 shown, 1 the database cannot be reached, 2 usage or configuration error
    /// (no such SQLite database file)
    Status(StatusArgs),
    /// Preflight: the database, the configuration, AWS credentials, the identity store,
    /// each Identity Store permission the sync needs (probed without changing anything), and,
    /// with assignment rules, that each names one source's principals unambiguously, the SSO
    /// Admin permissions and the permission sets and applications the rules name; with
    /// sync.filter, that it gives true or false for each stored user and group. The AWS
    /// Region and credentials are resolved as `sync` resolves them ([aws] region, then the
    /// SDK's chain: AWS_REGION, the profile in ~/.aws/config, instance metadata).
    /// One line per check ("ok" or "FAIL").
    /// Exit codes: 0 every check passed, 1 a problem found, 2 usage or configuration error
    /// (the config file does not load, the SQLite database file does not exist)
    Check,
    /// The audit log: one line per change the bridge made in AWS, with names, oldest first.
    /// Exit codes: 0 listed (also when nothing matched), 1 the database cannot be reached,
    /// 2 usage or configuration error (a bad --since, --action or --run)
    Audit(AuditArgs),
    /// One user or group as the bridge sees it: the SCIM resource, its source, its AWS id and
    /// ownership (created by the bridge, or adopted), the last push, its memberships, and the
    /// failures the recent sync runs recorded for it.
    /// Exit codes: 0 shown, 1 no such user or group (in --source: a name belongs to one
    /// source), or the database cannot be reached, 2 usage or configuration error (an unknown
    /// --source, no such SQLite database file)
    #[command(subcommand)]
    Show(ShowCommand),
    /// Who can reach what: one row per user, target (account or application), permission set
    /// and path — `direct`, or the group the user reaches it through — with the rule and
    /// source that made it, or `foreign` for an assignment found in AWS that the bridge does
    /// not own. Read from the bridge's record (no AWS call); how old it is (the last full run
    /// that succeeded, the last run) goes to stderr, or into `as_of` with --json. Rows are
    /// ordered by user name, target, permission set and path, byte by byte.
    /// Exit codes: 0 listed (also when nothing matched), 1 the database cannot be reached,
    /// 2 usage or configuration error (two filters, a malformed account id, no such SQLite
    /// database file)
    Access(AccessArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("filter").args(["user", "group", "account", "permission_set"])))]
pub struct AccessArgs {
    /// Only this user's access (userName, compared case-insensitively)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Only access through this group (displayName, compared case-insensitively)
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    /// Only access to this account (12 digits)
    #[arg(long, value_name = "ID", value_parser = account_id)]
    pub account: Option<String>,
    /// Only access with this permission set (its name)
    #[arg(long, value_name = "NAME")]
    pub permission_set: Option<String>,
    /// Print one JSON object {"as_of": {...}, "rows": [...]} instead of a table
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (RFC 4180) with a header row instead of a table: ready for an access review
    #[arg(long)]
    pub csv: bool,
}

/// `--account`: an AWS account id, 12 digits.
fn account_id(raw: &str) -> Result<String, String> {
    crate::access_report::account_id(raw)
}

#[derive(Debug, Subcommand)]
pub enum ShowCommand {
    /// A user, by userName (compared case-insensitively, as the IdPs' filters compare it)
    User(ShowArgs),
    /// A group, by displayName (compared case-insensitively)
    Group(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The userName or displayName
    pub name: String,
    /// The source the name must belong to
    #[arg(long)]
    pub source: Option<String>,
    /// How many memberships (a user's groups, a group's members) to list; the total is
    /// always shown
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
    /// Print one JSON object instead
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only changes at or after this: an RFC 3339 time (2026-11-01T00:00:00Z) or an age
    /// (90m, 24h, 7d, 2w)
    #[arg(long, value_name = "TIME|AGE")]
    pub since: Option<String>,
    /// Print a JSON array instead
    #[arg(long)]
    pub json: bool,
    /// Only this action
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::sync::audit::ACTIONS))]
    pub action: Option<String>,
    /// Only changes to principals of this name (userName, displayName, permission set;
    /// case-insensitive), also as the user of a membership change
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Only the changes of this sync run (its id, as `sync` prints it)
    #[arg(long, value_name = "RUN_ID")]
    pub run: Option<uuid::Uuid>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SyncArgs {
    /// Pause, resume, or approve held actions instead of running now
    #[command(subcommand)]
    pub control: Option<SyncControl>,
    /// Compute and print the plan; make no AWS write
    #[arg(long)]
    pub dry_run: bool,
    /// Re-read the Identity Store (paginated lists), the assignments and managed permission
    /// sets first, and repair drift; without it the run diffs against the bridge's own record
    /// of what it pushed and makes no AWS read
    #[arg(long)]
    pub full: bool,
    /// Pass the delete guard (sync.max_delete_fraction; deletes, membership removals and
    /// assignment deletes). A forced run also ends the guard's window (sync.guard_window)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub run: RunOutputArgs,
    /// Run even though these rules (filters, protection, mappings, permission sets,
    /// assignments, adoption) differ from those of the serving replicas' last run, whose next
    /// run will undo what they do differently; without it such a run exits 2 (a dry run only
    /// says so)
    #[arg(long)]
    pub config_differs_ok: bool,
}

/// How a command that runs a sync waits for its turn and reports (`sync`, `sync approve`).
#[derive(Debug, Args)]
pub struct RunOutputArgs {
    /// Print the run report as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for another run (any replica) to finish before exiting with 4
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub wait: u64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the object `GET /admin/v1/status` returns instead
    #[arg(long)]
    pub json: bool,
}

/// Sync control, stored in the database: it holds for every replica and survives restarts.
#[derive(Debug, Subcommand)]
pub enum SyncControl {
    /// Pause sync for every replica: no run starts (schedule, changes, start-up, POST
    /// /admin/v1/sync, `scimbridge sync`) until `sync resume`; SCIM changes are still accepted
    /// and go out after. A run already going finishes. Dry runs still work (they change
    /// nothing). Pausing a paused sync keeps the first pause and its reason
    Pause {
        /// Why (shown in /admin/v1/status, the log and refusals); at most 500 characters
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// End the pause; what changed meanwhile is pushed by the next run
    Resume,
    /// Let the destructive actions a run held (sync.approve_destructive) go, and run now to
    /// apply them: only those still planned; anything else destructive is held again.
    /// While sync is paused the approval is recorded and the first run after `sync resume`
    /// applies it. Exit 2 for an unknown run, a run that held nothing, or one approved,
    /// applied or superseded already; otherwise as `scimbridge sync`
    Approve(ApproveArgs),
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The run whose held actions to approve (`held` in its report; pending_approvals in
    /// /admin/v1/status)
    #[arg(value_name = "RUN_ID")]
    pub run_id: uuid::Uuid,
    /// Pass the delete guard with the approved actions (sync.max_delete_fraction)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub run: RunOutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it alone on the last line of stdout (it is shown only once)
    Create(TokenCreateArgs),
    /// One line per token under a header row, tab-separated: id, source (or admin), created,
    /// expires, last used, state (live, expired, revoked), compat
    List {
        /// Print a JSON array of {id, source, created, expires, last_used, state, compat,
        /// revoked} instead
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id
    Revoke {
        /// The token's id, as `token list` shows it
        id: uuid::Uuid,
    },
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The identity source (e.g. okta, entra) the token belongs to; created if new
    #[arg(long, required_unless_present = "admin", conflicts_with = "admin")]
    pub source: Option<String>,
    /// An admin-API token instead of a SCIM token
    #[arg(long)]
    pub admin: bool,
    /// The source's compatibility mode
    #[arg(long, value_parser = compat_modes(), conflicts_with = "admin")]
    pub compat: Option<CompatMode>,
    /// Days until the token expires [default: never]
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub expires_in: Option<u32>,
}

/// `--compat`: one of the modes, each spelled as stored (the help lists them).
fn compat_modes() -> impl clap::builder::TypedValueParser<Value = CompatMode> {
    use clap::builder::TypedValueParser;
    let modes = CompatMode::ALL.iter().map(|m| m.as_str());
    clap::builder::PossibleValuesParser::new(modes).try_map(|mode: String| CompatMode::parse(&mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn compat_of(args: &[&str]) -> Result<Option<CompatMode>, clap::Error> {
        let cli = Cli::try_parse_from([&["scimbridge", "token", "create"], args].concat())?;
        match cli.command {
            Command::Token(TokenCommand::Create(create)) => Ok(create.compat),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn access_takes_one_filter_and_a_well_formed_account_id() {
        use clap::error::ErrorKind;
        let parse = |args: &[&str]| Cli::try_parse_from([&["scimbridge", "access"], args].concat());
        match parse(&["--account", "111111111111", "--csv"]).unwrap().command {
            Command::Access(a) => {
                assert_eq!((a.account.as_deref(), a.csv), (Some("111111111111"), true))
            }
            other => panic!("parsed as {other:?}"),
        }
        let two = parse(&["--user", "alice", "--group", "Ops"]).unwrap_err();
        assert_eq!(two.kind(), ErrorKind::ArgumentConflict);
        let bad = parse(&["--account", "12345"]).unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::ValueValidation);
        assert_eq!(bad.exit_code(), 2);
        let formats = parse(&["--json", "--csv"]).unwrap_err();
        assert_eq!(formats.kind(), ErrorKind::ArgumentConflict);
    }

    #[test]
    fn compat_accepts_every_mode_as_spelled_and_lists_them_on_a_bad_one() {
        for mode in CompatMode::ALL {
            assert_eq!(
                compat_of(&["--source", "x", "--compat", mode.as_str()]).unwrap(),
                Some(*mode)
            );
        }
        assert_eq!(compat_of(&["--source", "x"]).unwrap(), None);
        let err = compat_of(&["--source", "x", "--compat", "Okta"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(
            err.to_string()
                .contains("[possible values: auto, strict, okta, entra, authentik, ping, generic]"),
            "{err}"
        );
        let mut cmd = Cli::command();
        let create = cmd.find_subcommand_mut("token").and_then(|t| t.find_subcommand_mut("create"));
        let help = create.map(|c| c.render_long_help().to_string()).unwrap_or_default();
        assert!(
            help.contains("auto, strict, okta, entra, authentik, ping, generic")
                || help.contains("- auto"),
            "{help}"
        );
    }
}
