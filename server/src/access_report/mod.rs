//! Who can reach what (issue 17): the access report as `scimbridge access` and
//! `GET /admin/v1/access` take and give it — the one filter, the page size, the cursor
//! ([`cursor`]), how old the data is, and the CLI's output ([`output`]). The rows themselves are
//! the store's ([`crate::store::AccessReport`]).

pub mod cursor;
pub mod output;

use crate::names::NameKey;
use crate::store::{AccessAsOf, AccessFilter, RunMark, Timestamp};

/// Rows per page of `GET /admin/v1/access` unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most rows one page may have.
pub const MAX_LIMIT: u32 = 1000;

/// The filters as given, by name; at most one may be set.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub user: Option<String>,
    pub group: Option<String>,
    pub account: Option<String>,
    pub permission_set: Option<String>,
}

impl Filters {
    /// The filter to read with; Err with why these filters are not one: two or more, a
    /// malformed account id, an empty name.
    pub fn parse(&self) -> Result<Option<AccessFilter>, String> {
        let given: Vec<(&str, &str)> = [
            ("user", &self.user),
            ("group", &self.group),
            ("account", &self.account),
            ("permission_set", &self.permission_set),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect();
        let (by, value) = match given.as_slice() {
            [] => return Ok(None),
            [one] => *one,
            many => {
                let names: Vec<&str> = many.iter().map(|(k, _)| *k).collect();
                return Err(format!(
                    "{} are mutually exclusive: the report takes one filter at a time",
                    names.join(", ")
                ));
            }
        };
        let named = |what: &str| {
            let key = NameKey::of(value);
            if key.as_str().is_empty() {
                Err(format!("{what} is empty"))
            } else {
                Ok(key.as_str().to_owned())
            }
        };
        Ok(Some(match by {
            "user" => AccessFilter::User(named("user")?),
            "group" => AccessFilter::Group(named("group")?),
            "account" => AccessFilter::Account(account_id(value)?),
            _ => {
                let name = value.trim();
                if name.is_empty() {
                    return Err("permission_set is empty".to_owned());
                }
                AccessFilter::PermissionSet(name.to_owned())
            }
        }))
    }
}

/// An AWS account id: exactly 12 digits.
pub fn account_id(raw: &str) -> Result<String, String> {
    if crate::config::is_account_id(raw) {
        Ok(raw.to_owned())
    } else {
        Err(format!("{raw:?} is not an AWS account id (12 digits)"))
    }
}

/// A page size: 1 to [`MAX_LIMIT`]; [`DEFAULT_LIMIT`] when not given.
pub fn limit(raw: Option<&str>) -> Result<u32, String> {
    let Some(raw) = raw else { return Ok(DEFAULT_LIMIT) };
    match raw.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!("limit={raw:?}: a page has 1 to {MAX_LIMIT} rows")),
    }
}

/// The line that says how old the report's data is (the CLI prints it on stderr).
pub fn age_line(as_of: &AccessAsOf, now: Timestamp) -> String {
    let mark = |m: &RunMark| {
        format!(
            "{} ({} ago, run {}, {})",
            crate::store::format_timestamp(&m.finished_at),
            age(now - m.finished_at),
            m.run_id,
            m.trigger.as_str()
        )
    };
    let full = match &as_of.last_full_run {
        Some(m) => format!("the last full run that succeeded finished {}", mark(m)),
        None => "no full run has succeeded yet: assignments made by hand are not known \
                 (`scimbridge sync --full`)"
            .to_owned(),
    };
    let last = match &as_of.last_run {
        Some(m) => format!("the last run ({}) finished {}", m.status.as_str(), mark(m)),
        None => "no run has finished yet".to_owned(),
    };
    format!("access as recorded by the bridge: {full}; {last}")
}

/// `3d 4h`, `2h 5m`, `42s`: an age to the two largest units.
fn age(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, minutes) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(user: Option<&str>, account: Option<&str>) -> Filters {
        Filters {
            user: user.map(str::to_owned),
            account: account.map(str::to_owned),
            ..Filters::default()
        }
    }

    #[test]
    fn one_filter_at_a_time_names_folded_and_account_ids_of_twelve_digits() {
        assert_eq!(filters(None, None).parse(), Ok(None));
        assert_eq!(
            filters(Some(" Alice@Example.COM "), None).parse(),
            Ok(Some(AccessFilter::User("alice@example.com".into())))
        );
        assert_eq!(
            filters(None, Some("111111111111")).parse(),
            Ok(Some(AccessFilter::Account("111111111111".into())))
        );
        let both = filters(Some("alice"), Some("111111111111")).parse().unwrap_err();
        assert!(both.contains("user, account are mutually exclusive"), "{both}");
        for bad in ["11111111111", "1111111111111", "11111111111x", "", "１１１１１１１１１１１１"]
        {
            assert!(filters(None, Some(bad)).parse().is_err(), "{bad:?}");
        }
        assert!(filters(Some("  "), None).parse().unwrap_err().contains("empty"));
    }

    #[test]
    fn a_page_has_one_to_a_thousand_rows() {
        assert_eq!(limit(None), Ok(DEFAULT_LIMIT));
        assert_eq!(limit(Some("1")), Ok(1));
        assert_eq!(limit(Some("1000")), Ok(1000));
        for bad in ["0", "1001", "5000", "-1", "x", ""] {
            assert!(limit(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn ages_read_in_their_two_largest_units() {
        let t = chrono::TimeDelta::seconds;
        assert_eq!(age(t(42)), "42s");
        assert_eq!(age(t(125)), "2m");
        assert_eq!(age(t(2 * 3600 + 300)), "2h 5m");
        assert_eq!(age(t(3 * 86_400 + 4 * 3600 + 9)), "3d 4h");
        assert_eq!(age(t(-5)), "0s");
    }
}
