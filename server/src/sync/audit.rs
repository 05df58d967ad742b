//! Reading the audit log (one row per AWS change, with names): the `since` syntax shared by
//! `scimbridge audit --since` and `GET /admin/v1/audit?since=`, and the one-line text form.

use crate::names::NameKey;
use crate::store::{AuditEntry, Timestamp, format_timestamp, parse_timestamp};

/// `since` as an RFC 3339 instant (`2026-11-01T00:00:00Z`) or an age: a number and `s`, `m`,
/// `h`, `d` or `w` (`90m`, `24h`, `7d`).
pub fn parse_since(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Some(t) = parse_timestamp(s) {
        return Ok(t.max(chrono::DateTime::UNIX_EPOCH));
    }
    let bad = || {
        format!(
            "since {s:?} is neither an RFC 3339 time (2026-11-01T00:00:00Z) nor an age such as \
             90m, 24h or 7d"
        )
    };
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let seconds_per_unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(bad()),
    };
    let age = n
        .checked_mul(seconds_per_unit)
        .filter(|a| *a >= 0)
        .and_then(chrono::TimeDelta::try_seconds)
        .ok_or_else(bad)?;
    // Nothing is older than the epoch, and PostgreSQL cannot bind dates before 4713 BC.
    Ok(now.checked_sub_signed(age).ok_or_else(bad)?.max(chrono::DateTime::UNIX_EPOCH))
}

/// Every action the audit log records (`audit --action` takes one of these).
pub const ACTIONS: [&str; 10] = [
    "create",
    "update",
    "delete",
    "adopt",
    "add_member",
    "remove_member",
    "assign",
    "unassign",
    "found_existing",
    "provision",
];

/// Whether the entry is about the principal whose name has this key: the entry's own name,
/// or the user of a membership change (`detail.user`).
pub fn concerns(e: &AuditEntry, name_key: &NameKey) -> bool {
    let user = e.detail.as_ref().and_then(|d| d.get("user")).and_then(serde_json::Value::as_str);
    NameKey::of(&e.name) == *name_key || user.is_some_and(|u| NameKey::of(u) == *name_key)
}

/// `2026-11-23T02:03:04.000Z  create  User  alice@example.com  <aws id>  run <run id>  {detail}`
pub fn line(e: &AuditEntry) -> String {
    let mut out = format!(
        "{}  {:<13} {:<5} {}  {}  run {}",
        format_timestamp(&e.at),
        e.action,
        e.kind,
        e.name,
        e.aws_id.as_deref().unwrap_or("-"),
        e.run_id
    );
    if let Some(d) = &e.detail {
        out.push_str("  ");
        out.push_str(&d.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_instants_and_ages() {
        let now = parse_timestamp("2026-11-23T12:00:00Z").unwrap();
        let at = |s| format_timestamp(&parse_since(s, now).unwrap());
        assert_eq!(
            at("2026-11-01T00:00:00Z"),
            format_timestamp(&parse_timestamp("2026-11-01T00:00:00Z").unwrap())
        );
        assert_eq!(at("90m"), format_timestamp(&parse_timestamp("2026-11-23T10:30:00Z").unwrap()));
        assert_eq!(at("7d"), format_timestamp(&parse_timestamp("2026-11-16T12:00:00Z").unwrap()));
        for bad in ["", "yesterday", "7y", "-5d", "h", "99999999999999999w"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }
}
