//! `[server]`: the listeners, TLS, proxies and the limits of a request's life.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listen_address_without_a_numeric_port_is_named() {
        for good in ["127.0.0.1:8080", "localhost:0", "0.0.0.0:65535", "[::1]:8080"] {
            assert_eq!(listen_problem(good), None, "{good}");
        }
        for bad in ["localhost:abc", "localhost", ":8080", "::1:8080", "h:70000"] {
            assert!(listen_problem(bad).is_some(), "{bad}");
        }
    }
}
