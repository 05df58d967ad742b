//! `scimbridge token create|list|revoke`.

use crate::auth::create_token;
use crate::cli::{TokenCommand, TokenCreateArgs};
use crate::config::Settings;
use crate::exit::{self, ExitCode};
use crate::names::{ADMIN_NAME, SourceName, SourceNameError};
use crate::startup::open_store;
use crate::store::{self, CompatMode, Store, TokenInfo, format_timestamp};
use serde_json::Value;

pub(super) async fn token(cmd: TokenCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    // Checked before the database is opened: a bad name is a usage error (exit 2).
    let source = match &cmd {
        TokenCommand::Create(TokenCreateArgs { source: Some(name), .. }) => {
            Some(source_name(name)?)
        }
        _ => None,
    };
    let store = open_store(settings).await?;
    match cmd {
        TokenCommand::Create(args) => token_create(&*store, source.as_ref(), &args).await,
        TokenCommand::List { json } => {
            let mut tokens = store.list_tokens().await?;
            for source in tokens.iter_mut().filter_map(|t| t.source.as_mut()) {
                // A mode set in the config file wins over the stored one (as when serving).
                if let Some(mode) = crate::scim::compat::configured(settings, &source.name) {
                    source.compat = mode;
                }
            }
            if json {
                let rows: Vec<Value> = tokens.iter().map(token_json).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!("{TOKEN_HEADER}");
                for t in &tokens {
                    println!("{}", token_line(t));
                }
            }
            Ok(ExitCode::Ok)
        }
        TokenCommand::Revoke { id } => {
            if store.revoke_token(id).await? {
                println!("revoked {id}");
                Ok(ExitCode::Ok)
            } else {
                eprintln!("no live token with id {id}");
                Ok(ExitCode::Failure)
            }
        }
    }
}

async fn token_create(
    store: &dyn Store,
    source: Option<&SourceName>,
    args: &TokenCreateArgs,
) -> anyhow::Result<ExitCode> {
    let source = source.map(|name| (name, args.compat));
    let (id, secret, source) = create_token(store, source, args.expires_in).await?;
    let who = match &source {
        Some(s) => format!("source {} (compat {})", s.name, s.compat),
        None => "the admin API".to_owned(),
    };
    let expiry =
        args.expires_in.map_or("never expires".to_owned(), |d| format!("expires in {d} days"));
    eprintln!("Created token {id} for {who}; it {expiry}. It is shown only once: store it now.");
    println!("{secret}");
    Ok(ExitCode::Ok)
}

fn source_name(name: &str) -> anyhow::Result<SourceName> {
    SourceName::parse(name).map_err(|problem| match problem {
        SourceNameError::Reserved => exit::usage(format!("--source: {problem} (use --admin)")),
        SourceNameError::Malformed(_) => exit::usage(format!("--source: {problem}")),
    })
}

/// The header row of `token list` (tab-separated, like the rows, so `cut -f` still works).
const TOKEN_HEADER: &str = "ID\tSOURCE\tCREATED\tEXPIRES\tLAST_USED\tSTATE\tCOMPAT";

/// Whether a token is accepted now, as `token list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum TokenState {
    Live,
    Expired,
    Revoked,
}

impl TokenState {
    fn of(t: &TokenInfo) -> TokenState {
        if t.revoked() {
            TokenState::Revoked
        } else if t.expires_at.is_some_and(|e| e <= store::now()) {
            TokenState::Expired
        } else {
            TokenState::Live
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            TokenState::Live => "live",
            TokenState::Expired => "expired",
            TokenState::Revoked => "revoked",
        }
    }
}

/// The source's mode, with what `auto` detected (`auto:entra`); None for an admin token.
fn token_compat(t: &TokenInfo) -> Option<String> {
    let source = t.source.as_ref()?;
    Some(match (source.compat, source.detected_compat) {
        (CompatMode::Auto, Some(detected)) => format!("auto:{detected}"),
        (mode, _) => mode.to_string(),
    })
}

/// The source column: the source's name, or `admin` for an admin token.
fn token_owner(t: &TokenInfo) -> &str {
    t.source.as_ref().map_or(ADMIN_NAME, |s| s.name.as_str())
}

/// `id  source  created  expires  last-used  state  compat`, tab-separated; `never` for no
/// expiry or no use, compat `-` for an admin token.
fn token_line(t: &TokenInfo) -> String {
    let opt = |v: &Option<store::Timestamp>, none: &str| {
        v.as_ref().map_or(none.to_owned(), format_timestamp)
    };
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        t.id,
        token_owner(t),
        format_timestamp(&t.created_at),
        opt(&t.expires_at, "never"),
        opt(&t.last_used_at, "never"),
        TokenState::of(t).as_str(),
        token_compat(t).as_deref().unwrap_or("-")
    )
}

/// One token of `token list --json`: the columns of the text form, with null for no expiry,
/// no use, no revocation, and an admin token's compat.
fn token_json(t: &TokenInfo) -> Value {
    let opt = |v: &Option<store::Timestamp>| v.as_ref().map(format_timestamp);
    serde_json::json!({
        "id": t.id,
        "source": token_owner(t),
        "created": format_timestamp(&t.created_at),
        "expires": opt(&t.expires_at),
        "last_used": opt(&t.last_used_at),
        "state": TokenState::of(t),
        "compat": token_compat(t),
        "revoked": opt(&t.revoked_at),
    })
}
