//! Database URLs as every message shows them: without secrets, and a SQLite file by its
//! absolute path.

use super::backend::sqlite;

/// Why `url` names no database this build can open, if it does not (its scheme).
pub fn url_problem(url: &str) -> Option<String> {
    let supported = ["postgres://", "postgresql://", "sqlite:"];
    (!supported.iter().any(|s| url.starts_with(s))).then(|| {
        format!(
            "unsupported scheme in {:?}; use postgres://… (or postgresql://…) or sqlite://…",
            redact_url(url)
        )
    })
}

/// The database a URL names, as every command shows it on stderr: without secrets
/// ([`redact_url`]), and a SQLite file by its absolute path (`sqlite:///srv/scimbridge.db`), so
/// that a command run from another directory says which file it used.
pub fn describe_url(url: &str) -> String {
    match sqlite::file_path(url) {
        Some(path) => {
            let query = url.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
            redact_url(&format!("sqlite://{}{query}", path.display()))
        }
        None => redact_url(url),
    }
}

/// Query parameters of a database URL that hold a secret.
const SECRET_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

/// The URL without its secrets, for every message and log line that shows it: the userinfo
/// password and the `password` / `sslpassword` query parameters become `***`.
pub fn redact_url(url: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_fragment, None),
    };
    let mut out = redact_userinfo(base);
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if SECRET_PARAMETERS.iter().any(|s| s.eq_ignore_ascii_case(key)) => {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// `scheme://user:secret@host/path` → `scheme://user:***@host/path`.
fn redact_userinfo(base: &str) -> String {
    let Some(scheme_end) = base.find("://").map(|i| i + 3) else {
        return base.to_owned();
    };
    let authority_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let authority = &base[scheme_end..authority_end];
    match authority.rfind('@') {
        Some(at) if authority[..at].contains(':') => {
            let user = authority[..at].split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &base[..scheme_end], &base[scheme_end + at..])
        }
        _ => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(redact_url("sqlite://x.db?mode=rwc"), "sqlite://x.db?mode=rwc");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgres://u:secret@h/db?password=secret2&sslmode=require&sslpassword=s3"),
            "postgres://u:***@h/db?password=***&sslmode=require&sslpassword=***"
        );
        assert_eq!(
            redact_url("postgresql://h/db?user=u&PASSWORD=secret#frag"),
            "postgresql://h/db?user=u&PASSWORD=***#frag"
        );
        // An unencoded `@` in the password, or one in the query, does not confuse it.
        assert_eq!(redact_url("postgres://u:se@cret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://h/db?password=a@b:c"), "postgres://h/db?password=***");
        assert_eq!(redact_url("postgres://u:@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("not a url password=x"), "not a url password=x");
    }

    #[test]
    fn a_database_is_described_by_its_absolute_path_without_secrets() {
        let cwd = std::env::current_dir().unwrap();
        let here = cwd.join("scimbridge.db");
        assert_eq!(describe_url("sqlite://scimbridge.db"), format!("sqlite://{}", here.display()));
        assert_eq!(describe_url("sqlite:scimbridge.db"), format!("sqlite://{}", here.display()));
        assert_eq!(describe_url("sqlite:///srv/s.db?mode=rwc"), "sqlite:///srv/s.db?mode=rwc");
        assert_eq!(describe_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(describe_url("postgres://u:pw@db:5432/s"), "postgres://u:***@db:5432/s");
    }
}
