//! Which origin a request was sent to, for `meta.location`, `Location` and `$ref`. The
//! forwarded headers (`Forwarded`, `X-Forwarded-Host`, `X-Forwarded-Proto`) are honoured only
//! when the TCP peer is one of `[server] trusted_proxies`: from anyone else they would let a
//! client choose the host written into the responses (issue 13).

use actix_web::HttpRequest;
use actix_web::http::header;
use ipnet::IpNet;
use std::net::IpAddr;

/// `[server] trusted_proxies`, parsed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// CIDRs such as `10.0.0.0/8` or `fd00::/8`, or single addresses (`127.0.0.1`).
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|entry| {
                let e = entry.trim();
                e.parse::<IpNet>().or_else(|_| e.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                    format!("`{entry}` is not a CIDR (e.g. 10.0.0.0/8) or an IP address")
                })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, peer: IpAddr) -> bool {
        // An IPv4 client of a dual-stack socket arrives as ::ffff:a.b.c.d.
        let peer = peer.to_canonical();
        self.0.iter().any(|net| net.contains(&peer))
    }
}

/// `scheme://host` the request was sent to: through a trusted proxy, what its forwarded headers
/// say; otherwise this connection's scheme and the `Host` header (or HTTP/2 `:authority`).
pub fn origin(req: &HttpRequest, trusted: &TrustedProxies) -> String {
    if req.peer_addr().is_some_and(|peer| trusted.contains(peer.ip())) {
        // actix's ConnectionInfo reads the forwarded headers itself.
        let info = req.connection_info();
        return format!("{}://{}", info.scheme(), info.host());
    }
    let scheme = if req.app_config().secure() { "https" } else { "http" };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| req.app_config().host().to_owned());
    format!("{scheme}://{host}")
}

/// The address of the client that sent the request: the TCP peer, unless the peer is one of
/// `trusted_proxies`; then the nearest address in `Forwarded` (`for=`), or else
/// `X-Forwarded-For`, that is not a trusted proxy itself, read from the right. Each proxy
/// appends what it saw, so only the part written by trusted proxies can be believed: the
/// leftmost entry is whatever the client claimed. None when the peer is unknown.
pub fn client_ip(req: &HttpRequest, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let headers = req.headers();
    let values =
        |name| headers.get_all(name).filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    let forwarded: Vec<IpAddr> = values(header::FORWARDED)
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.trim().eq_ignore_ascii_case("for").then(|| forwarded_node(value))?
            })
        })
        .collect();
    let chain = if forwarded.is_empty() {
        values(header::HeaderName::from_static("x-forwarded-for"))
            .filter_map(forwarded_node)
            .collect()
    } else {
        forwarded
    };
    // All hops trusted: the first one is as near to the client as the chain goes.
    chain.iter().rev().find(|ip| !trusted.contains(**ip)).or(chain.first()).copied().or(Some(peer))
}

/// An address as `Forwarded` (`"[2001:db8::1]:4711"`, `192.0.2.1:80`) or `X-Forwarded-For`
/// writes it; None for obfuscated identifiers (`_hidden`, `unknown`).
fn forwarded_node(value: &str) -> Option<IpAddr> {
    let v = value.trim().trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    v.parse().ok().or_else(|| v.rsplit_once(':').and_then(|(host, _)| host.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn proxies(entries: &[&str]) -> Result<TrustedProxies, String> {
        TrustedProxies::parse(&entries.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn cidrs_and_single_addresses() {
        let p = proxies(&["10.0.0.0/8", "127.0.0.1", "fd00::/8"]).unwrap();
        assert!(p.contains("10.1.2.3".parse().unwrap()));
        assert!(p.contains("127.0.0.1".parse().unwrap()));
        assert!(!p.contains("127.0.0.2".parse().unwrap()));
        assert!(!p.contains("11.0.0.1".parse().unwrap()));
        assert!(p.contains("fd12::1".parse().unwrap()));
        assert!(p.contains("::ffff:10.9.9.9".parse().unwrap()), "IPv4-mapped IPv6 peer");
        assert!(!TrustedProxies::default().contains("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn invalid_entries_are_named() {
        for bad in ["10.0.0.0/33", "10.0.0/8", "example.com", ""] {
            let err = proxies(&["127.0.0.1/32", bad]).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn forwarded_headers_only_from_trusted_peers() {
        let req = || {
            TestRequest::default()
                .peer_addr("10.0.0.5:4000".parse().unwrap())
                .insert_header((header::HOST, "internal:8080"))
                .insert_header(("X-Forwarded-Host", "scim.example.com"))
                .insert_header(("X-Forwarded-Proto", "https"))
                .to_http_request()
        };
        assert_eq!(origin(&req(), &TrustedProxies::default()), "http://internal:8080");
        let trusted = proxies(&["10.0.0.0/8"]).unwrap();
        assert_eq!(origin(&req(), &trusted), "https://scim.example.com");
        let other = proxies(&["192.168.0.0/16"]).unwrap();
        assert_eq!(origin(&req(), &other), "http://internal:8080");
        let forwarded = TestRequest::default()
            .peer_addr("10.0.0.5:4000".parse().unwrap())
            .insert_header((header::HOST, "internal:8080"))
            .insert_header((header::FORWARDED, "proto=https;host=evil.example"))
            .to_http_request();
        assert_eq!(origin(&forwarded, &other), "http://internal:8080");
        assert_eq!(origin(&forwarded, &trusted), "https://evil.example");
    }

    #[test]
    fn client_ip_believes_only_trusted_hops() {
        let req = |peer: &str, headers: &[(&str, &str)]| {
            let mut r = TestRequest::default().peer_addr(peer.parse().unwrap());
            for (k, v) in headers {
                r = r.append_header((*k, *v));
            }
            r.to_http_request()
        };
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let trusted = proxies(&["10.0.0.0/8"]).unwrap();
        let spoofed = [("X-Forwarded-For", "1.2.3.4")];
        // From anyone else, the headers are the client's own claim: the peer it is.
        assert_eq!(client_ip(&req("203.0.113.9:1", &spoofed), &trusted), ip("203.0.113.9"));
        assert_eq!(
            client_ip(&req("10.0.0.5:1", &spoofed), &TrustedProxies::default()),
            ip("10.0.0.5")
        );
        // Through the ingress: the nearest untrusted hop, not what the client prepended.
        let chain = [("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.1.1.1")];
        assert_eq!(client_ip(&req("10.0.0.5:1", &chain), &trusted), ip("198.51.100.7"));
        let split = [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.7")];
        assert_eq!(client_ip(&req("10.0.0.5:1", &split), &trusted), ip("198.51.100.7"));
        // Forwarded wins over X-Forwarded-For; ports, quotes and brackets are taken off.
        let forwarded = [
            ("Forwarded", r#"for="[2001:db8::7]:4711";proto=https, for=10.2.2.2"#),
            ("X-Forwarded-For", "198.51.100.7"),
        ];
        assert_eq!(client_ip(&req("10.0.0.5:1", &forwarded), &trusted), ip("2001:db8::7"));
        let with_port = [("Forwarded", "for=192.0.2.60:8080")];
        assert_eq!(client_ip(&req("10.0.0.5:1", &with_port), &trusted), ip("192.0.2.60"));
        // Only trusted hops, or nothing usable: as near to the client as the chain goes.
        let internal = [("X-Forwarded-For", "10.9.9.9, 10.1.1.1")];
        assert_eq!(client_ip(&req("10.0.0.5:1", &internal), &trusted), ip("10.9.9.9"));
        let hidden = [("Forwarded", "for=_hidden"), ("X-Forwarded-For", "garbage")];
        assert_eq!(client_ip(&req("10.0.0.5:1", &hidden), &trusted), ip("10.0.0.5"));
        assert_eq!(client_ip(&req("10.0.0.5:1", &[]), &trusted), ip("10.0.0.5"));
    }
}
