//! Compatibility modes of a source ([`CompatMode`]): which one a request runs in, and how
//! `auto` recognises the client.
//!
//! Every mode but `strict` switches on every tolerance of `scim_schema::Tolerances`: each one
//! only turns a request that strict RFC 7643/7644 processing would reject into what the client
//! meant (reference `scim-and-idp-clients.md` §2.6); none changes the meaning of a valid
//! request. So a wrong or missing detection never breaks provisioning, and the IdP modes name
//! the client for logs, `token list` and the admin rather than switching behaviour.

use crate::config::Settings;
use crate::names::SourceName;
use crate::scim::Caller;
pub use crate::store::CompatMode;
use crate::store::{Source, Store};
use scim_schema::Tolerances;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

impl CompatMode {
    /// The mode a request of `source` runs in: `[sources.NAME] compat`, else the stored mode;
    /// `auto` resolved to what was detected of the client, else `generic`.
    pub fn effective(source: &Source, settings: &Settings) -> CompatMode {
        match configured(settings, &source.name).unwrap_or(source.compat) {
            CompatMode::Auto => source.detected_compat.unwrap_or(CompatMode::Generic),
            mode => mode,
        }
    }

    /// The tolerances of an effective mode (`auto` already resolved).
    pub fn tolerances(self) -> Tolerances {
        match self {
            CompatMode::Strict => Tolerances::strict(),
            _ => Tolerances::lenient(),
        }
    }
}

/// The mode `[sources.NAME] compat` sets for `source`, if any. An unknown one stops every
/// command at start (`startup::load_settings`), so one that does not parse here was never
/// accepted.
pub fn configured(settings: &Settings, source: &SourceName) -> Option<CompatMode> {
    let mode = settings.sources.get(source.as_str())?.compat.as_deref()?;
    CompatMode::parse(mode).ok()
}

/// The problem with `[sources.NAME] compat = mode`, if it is not a mode.
pub fn config_problem(name: &str, mode: &str) -> Option<String> {
    CompatMode::parse(mode).is_err().then(|| {
        let modes: Vec<&str> = CompatMode::ALL.iter().map(|m| m.as_str()).collect();
        format!(
            "config: sources.{name}.compat: unknown mode `{mode}` (one of {})",
            modes.join(", ")
        )
    })
}

/// The client a request shows itself to be, and by what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detection {
    pub mode: CompatMode,
    pub signal: &'static str,
}

const fn detected(mode: CompatMode, signal: &'static str) -> Option<Detection> {
    Some(Detection { mode, signal })
}

/// Recognises a client from its User-Agent and query string.
pub fn detect_from_request(user_agent: Option<&str>, query: &str) -> Option<Detection> {
    // Entra ID's opt-in RFC PATCH flag rides on the tenant URL (reference §2.2).
    if query.split('&').any(|p| p.split('=').next() == Some("aadOptscim062020")) {
        return detected(CompatMode::Entra, "the aadOptscim062020 query flag");
    }
    let ua = user_agent?;
    let lower = ua.to_ascii_lowercase();
    if ua.starts_with("Okta SCIM Client") {
        // Okta's documented User-Agent (reference §2.1).
        detected(CompatMode::Okta, "User-Agent `Okta SCIM Client`")
    } else if lower.starts_with("authentik@") {
        // authentik's `authentik_user_agent()` is `authentik@<version>`.
        detected(CompatMode::Authentik, "User-Agent `authentik@…`")
    } else if lower.contains("pingone") {
        // Not documented by Ping; matched when the client names itself.
        detected(CompatMode::Ping, "User-Agent naming PingOne")
    } else if lower.contains("microsoft") || lower.contains("azure") {
        detected(CompatMode::Entra, "User-Agent naming Microsoft or Azure")
    } else {
        None
    }
}

/// Entra ID's group schema URN, sent in `schemas` of a POST /Groups (reference §2.2).
const ENTRA_GROUP_SCHEMA: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

/// Recognises a client from a request body (POST, PUT or PATCH).
pub fn detect_from_body(body: &Value) -> Option<Detection> {
    let schemas = body.get("schemas").and_then(Value::as_array);
    if schemas.is_some_and(|s| s.iter().any(|u| u.as_str() == Some(ENTRA_GROUP_SCHEMA))) {
        return detected(CompatMode::Entra, "Entra ID's group schema URN");
    }
    // Entra ID without the flag capitalises `op` (`Replace`); no other known client does.
    let ops = body.get("Operations").and_then(Value::as_array)?;
    let capitalised = |op: &Value| {
        op.get("op").and_then(Value::as_str).is_some_and(|s| {
            let mut chars = s.chars();
            chars.next().is_some_and(char::is_uppercase) && chars.all(|c| !c.is_uppercase())
        })
    };
    ops.iter().any(capitalised).then_some(Detection {
        mode: CompatMode::Entra,
        signal: "a capitalised PATCH op (`Replace`)",
    })
}

/// Records the first detection for each source (`sources.detected_compat`), once per process.
pub struct DetectionRecorder {
    store: Arc<dyn Store>,
    recorded: Mutex<HashSet<i64>>,
}

impl DetectionRecorder {
    pub fn new(store: Arc<dyn Store>) -> Self {
        DetectionRecorder { store, recorded: Mutex::new(HashSet::new()) }
    }

    /// Stores `detection` for the caller's source unless something was detected before. A
    /// failure only costs the hint, so it is logged, not returned.
    /// `detect` runs only while the source has nothing recorded, so a request of a known
    /// client pays nothing for it.
    pub async fn observe(&self, caller: &Caller, detect: impl FnOnce() -> Option<Detection>) {
        let source = &caller.source;
        if source.detected_compat.is_some() {
            return;
        }
        let Some(d) = detect() else { return };
        if !self.lock().insert(source.id) {
            return;
        }
        match self.store.set_detected_compat(source.id, d.mode).await {
            Ok(()) => tracing::info!(
                source = %source.name,
                detected = d.mode.as_str(),
                "recognised the client as {} by {}",
                d.mode,
                d.signal
            ),
            Err(e) => {
                tracing::warn!(source = %source.name, error = %e, "could not record the detected client");
                self.lock().remove(&source.id);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        // The set holds plain ids: a panic elsewhere cannot leave it half-updated.
        self.recorded.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_agents() {
        let mode = |ua| detect_from_request(Some(ua), "").map(|d| d.mode);
        assert_eq!(mode("Okta SCIM Client 1.0.0"), Some(CompatMode::Okta));
        assert_eq!(mode("authentik@2025.2.1"), Some(CompatMode::Authentik));
        assert_eq!(mode("PingOne-SCIM/1.0"), Some(CompatMode::Ping));
        assert_eq!(mode("Microsoft Azure Active Directory SCIM Client"), Some(CompatMode::Entra));
        assert_eq!(mode("python-requests/2.31"), None);
        assert_eq!(mode("curl/8.5.0"), None);
        assert_eq!(detect_from_request(None, "filter=x"), None);
    }

    #[test]
    fn entra_flag_in_query() {
        let d = detect_from_request(None, "aadOptscim062020&filter=x").unwrap();
        assert_eq!(d.mode, CompatMode::Entra);
        assert_eq!(detect_from_request(None, "filter=aadOptscim062020"), None);
    }

    #[test]
    fn bodies() {
        let entra_op =
            json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
        assert_eq!(detect_from_body(&entra_op).map(|d| d.mode), Some(CompatMode::Entra));
        let rfc_op = json!({"Operations": [{"op": "replace", "path": "active", "value": false}]});
        assert_eq!(detect_from_body(&rfc_op), None);
        let shouting = json!({"Operations": [{"op": "REPLACE"}]});
        assert_eq!(detect_from_body(&shouting), None, "only Entra's `Replace` shape");
        let group =
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", ENTRA_GROUP_SCHEMA]});
        assert_eq!(detect_from_body(&group).map(|d| d.mode), Some(CompatMode::Entra));
        assert_eq!(detect_from_body(&json!({"userName": "x"})), None);
    }

    #[test]
    fn only_strict_is_strict() {
        assert_eq!(CompatMode::Strict.tolerances(), Tolerances::strict());
        for mode in CompatMode::ALL.iter().filter(|m| **m != CompatMode::Strict) {
            assert_eq!(mode.tolerances(), Tolerances::lenient(), "{mode}");
        }
    }

    #[test]
    fn every_mode_parses_from_its_text_and_an_unknown_one_does_not() {
        let texts: Vec<&str> = CompatMode::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(texts, ["auto", "strict", "okta", "entra", "authentik", "ping", "generic"]);
        for mode in CompatMode::ALL {
            assert_eq!(CompatMode::parse(mode.as_str()).unwrap(), *mode);
            assert_eq!(mode.to_string().parse::<CompatMode>().unwrap(), *mode);
            assert_eq!(serde_json::to_value(mode).unwrap(), json!(mode.as_str()));
        }
        for unknown in ["lenient", "Okta", " okta", ""] {
            assert!(CompatMode::parse(unknown).is_err(), "{unknown:?}");
        }
        let err = config_problem("x", "nope").unwrap();
        assert_eq!(
            err,
            "config: sources.x.compat: unknown mode `nope` (one of auto, strict, okta, entra, authentik, ping, generic)"
        );
        assert_eq!(config_problem("x", "entra"), None);
    }

    #[test]
    fn the_effective_mode_is_the_configured_then_the_stored_and_auto_is_resolved() {
        let source = |compat, detected| Source {
            id: 1,
            name: SourceName::parse("okta").unwrap(),
            compat,
            detected_compat: detected,
        };
        let mut settings = Settings::default();
        let effective = |s: &Source, settings: &Settings| CompatMode::effective(s, settings);
        assert_eq!(effective(&source(CompatMode::Auto, None), &settings), CompatMode::Generic);
        let detected = source(CompatMode::Auto, Some(CompatMode::Okta));
        assert_eq!(effective(&detected, &settings), CompatMode::Okta);
        assert_eq!(effective(&source(CompatMode::Strict, None), &settings), CompatMode::Strict);
        settings.sources.entry("okta".into()).or_default().compat = Some("strict".into());
        assert_eq!(effective(&detected, &settings), CompatMode::Strict);
        settings.sources.entry("okta".into()).or_default().compat = Some("auto".into());
        assert_eq!(
            effective(&source(CompatMode::Strict, Some(CompatMode::Entra)), &settings),
            CompatMode::Entra
        );
    }
}
