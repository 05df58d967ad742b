//! Who can reach what (the [`AccessReport`] role, issue 17): the access record read as one row
//! per user, target, permission set and path. An assignment to a user is one `direct` row; an
//! assignment to a group is one row per user the bridge made a member of it
//! (`aws_memberships`), with the group as the path. Names come from `aws_principals` (the names
//! in AWS), sources from the SCIM resources, permission set names from `aws_access_objects`.
//!
//! Pages are keyed by the row's position ([`AccessPosition`]), compared and ordered byte by
//! byte on both databases. A filtered page reads the filter's rows (by the indexes of
//! `0011_assignment_rule.sql`); an unfiltered one reads windows of users in name order from
//! the position on, so that a page of the whole report costs a page, not the report.

use super::SqlStore;
use crate::store::backend::{Access, Backend, Bind, Dialect, RowExt, binds};
use crate::store::roles::AccessReport;
use crate::store::{
    AccessAsOf, AccessFilter, AccessPage, AccessPath, AccessQuery, AccessRow, AssignmentKind,
    AssignmentState, PrincipalType, RunMark, RunStatus, StoreError, Trigger,
};
use async_trait::async_trait;

/// The columns every row has, in the order the report sorts by first.
const SORT_COLUMNS: [&str; 6] =
    ["user_name", "target", "permission_set", "via", "user_id", "holder_id"];

/// What a row reads, after the FROM of its branch has named `a` (the assignment), `pu` (the
/// user's principal) and `src` (the holder's source); `{via}` is the path's text.
const ROW_COLUMNS: &str = "pu.name AS user_name, pu.aws_id AS user_id, a.kind AS kind, \
     a.target AS target, \
     COALESCE((SELECT MIN(o.name) FROM aws_access_objects o WHERE o.kind = 'permission_set' \
        AND o.arn = a.permission_set_arn AND a.kind = 'account'), a.permission_set_arn) AS permission_set, \
     {via} AS via, a.principal_id AS holder_id, a.principal_type AS holder_type, a.rule AS rule, \
     a.state AS state, src.name AS source";

/// Assignments to a user.
const DIRECT_FROM: &str = "FROM aws_assignments a \
     JOIN aws_principals pu ON pu.kind = 'User' AND pu.aws_id = a.principal_id \
     LEFT JOIN users u ON u.id = pu.resource_id \
     LEFT JOIN sources src ON src.id = u.source_id \
     WHERE a.principal_type = 'USER'";

/// Assignments to a group, once per member.
const GROUP_FROM: &str = "FROM aws_assignments a \
     JOIN aws_principals pg ON pg.kind = 'Group' AND pg.aws_id = a.principal_id \
     JOIN aws_memberships m ON m.group_id = pg.resource_id \
     JOIN aws_principals pu ON pu.kind = 'User' AND pu.resource_id = m.user_id \
     LEFT JOIN groups g ON g.id = pg.resource_id \
     LEFT JOIN sources src ON src.id = g.source_id \
     WHERE a.principal_type = 'GROUP'";

/// `$1` false: real runs only (a dry run changes nothing in the record).
const LAST_RUN: &str = "SELECT id, trigger, status, finished_at FROM sync_runs \
     WHERE dry_run = $1 AND finished_at IS NOT NULL AND status <> 'running'";

/// The parameters of a statement being built, numbered as they are added.
#[derive(Default)]
struct Params(Vec<Bind>);

impl Params {
    /// Adds a parameter; its placeholder (`$n`).
    fn add(&mut self, value: impl Into<Bind>) -> String {
        self.0.push(value.into());
        format!("${}", self.0.len())
    }
}

/// The user names a statement is held to: after `from` (or at it, when inclusive) and up to
/// `to`.
#[derive(Debug, Clone, Copy, Default)]
struct Window<'a> {
    from: Option<(&'a str, bool)>,
    to: Option<&'a str>,
}

/// One page of rows: the filter's (or the window's), after the position, in order.
fn page_sql(
    d: Dialect,
    query: &AccessQuery,
    window: Window<'_>,
    limit: usize,
) -> (String, Vec<Bind>) {
    let mut p = Params::default();
    let mut both: Vec<String> = Vec::new();
    let (mut direct, mut grouped): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    match &query.filter {
        Some(AccessFilter::User(key)) => {
            let k = p.add(key.as_str());
            both.push(format!(
                "pu.resource_id IN (SELECT id FROM users WHERE user_name_lower = {k})"
            ));
        }
        Some(AccessFilter::Group(key)) => {
            let k = p.add(key.as_str());
            direct.push("1 = 0".to_owned());
            grouped.push(format!(
                "pg.resource_id IN (SELECT id FROM groups WHERE display_name_lower = {k})"
            ));
        }
        Some(AccessFilter::Account(id)) => {
            let k = p.add(id.as_str());
            both.push(format!("a.kind = 'account' AND a.target = {k}"));
        }
        Some(AccessFilter::PermissionSet(name)) => {
            let k = p.add(name.as_str());
            // A permission set the bridge has no name for is shown, and found, by its ARN.
            both.push(format!(
                "a.kind = 'account' AND a.permission_set_arn IN (SELECT arn FROM \
                 aws_access_objects WHERE kind = 'permission_set' AND name = {k} UNION ALL SELECT {k})"
            ));
        }
        None => {}
    }
    let user_name = d.bytewise("pu.name");
    if let Some((from, inclusive)) = window.from {
        let k = p.add(from);
        both.push(format!("{user_name} {} {k}", if inclusive { ">=" } else { ">" }));
    }
    if let Some(to) = window.to {
        let k = p.add(to);
        both.push(format!("{user_name} <= {k}"));
    }
    let branch = |from: &str, via: &str, own: &[String]| {
        let conditions: String =
            both.iter().chain(own).map(|c| format!(" AND {c}")).collect::<Vec<_>>().concat();
        format!("SELECT {} {from}{conditions}", ROW_COLUMNS.replace("{via}", via))
    };
    let direct = branch(DIRECT_FROM, "CAST('direct' AS TEXT)", &direct);
    let grouped = branch(GROUP_FROM, "pg.name", &grouped);
    let sorted: Vec<String> = SORT_COLUMNS.iter().map(|c| d.bytewise(&format!("r.{c}"))).collect();
    let keyset = match &query.after {
        Some(after) => {
            let values = [
                &after.user_name,
                &after.target,
                &after.permission_set,
                &after.via,
                &after.user_id,
                &after.holder_id,
            ];
            let placeholders: Vec<String> = values.iter().map(|v| p.add(v.as_str())).collect();
            format!(" WHERE ({}) > ({})", sorted.join(", "), placeholders.join(", "))
        }
        None => String::new(),
    };
    let limit = p.add(i64::try_from(limit).unwrap_or(i64::MAX));
    let sql = format!(
        "SELECT * FROM ({direct} UNION ALL {grouped}) AS r{keyset} ORDER BY {} LIMIT {limit}",
        sorted.join(", ")
    );
    (sql, p.0)
}

/// The name of the `users`-th user in name order from `from` on, the end of a window of that
/// many users; None when fewer are left (the window is the rest).
fn window_end_sql(d: Dialect, from: Option<(&str, bool)>, users: usize) -> (String, Vec<Bind>) {
    let mut p = Params::default();
    let name = d.bytewise("name");
    let after = match from {
        Some((from, inclusive)) => {
            let k = p.add(from);
            format!(" AND {name} {} {k}", if inclusive { ">=" } else { ">" })
        }
        None => String::new(),
    };
    let offset = p.add(i64::try_from(users.saturating_sub(1)).unwrap_or(i64::MAX));
    let sql = format!(
        "SELECT name FROM aws_principals WHERE kind = 'User'{after} ORDER BY {name} LIMIT 1 OFFSET {offset}"
    );
    (sql, p.0)
}

fn row_of<R: RowExt>(r: &R) -> Result<AccessRow, StoreError> {
    let principal_type = PrincipalType::parse(&r.text("holder_type")?)?;
    let state = AssignmentState::parse(&r.text("state")?)?;
    let permission_set = r.text("permission_set")?;
    let via = match principal_type {
        PrincipalType::User => AccessPath::Direct,
        PrincipalType::Group => AccessPath::Group(r.text("via")?),
    };
    // Only the bridge's own creates name a rule; what it found in AWS is foreign.
    let rule = r
        .opt_text("rule")?
        .or_else(|| (state == AssignmentState::Foreign).then(|| "foreign".to_owned()));
    Ok(AccessRow {
        user: r.text("user_name")?,
        user_id: r.text("user_id")?,
        kind: AssignmentKind::parse(&r.text("kind")?)?,
        target: r.text("target")?,
        permission_set: (!permission_set.is_empty()).then_some(permission_set),
        via,
        rule,
        source: r.opt_text("source")?,
        state,
        principal_id: r.text("holder_id")?,
        principal_type,
    })
}

fn run_mark_of<R: RowExt>(r: &R) -> Result<RunMark, StoreError> {
    Ok(RunMark {
        run_id: r.uuid("id")?,
        trigger: Trigger::parse(&r.text("trigger")?)?,
        status: RunStatus::parse(&r.text("status")?)?,
        finished_at: r.ts("finished_at")?,
    })
}

impl<B: Backend> SqlStore<B> {
    async fn report_rows(
        &self,
        query: &AccessQuery,
        window: Window<'_>,
        limit: usize,
    ) -> Result<Vec<AccessRow>, StoreError> {
        let (sql, binds) = page_sql(B::DIALECT, query, window, limit);
        let rows = self.backend.fetch_all(Access::Read, &sql, binds).await?;
        rows.iter().map(row_of).collect()
    }

    async fn window_end(
        &self,
        from: Option<(&str, bool)>,
        users: usize,
    ) -> Result<Option<String>, StoreError> {
        let (sql, binds) = window_end_sql(B::DIALECT, from, users);
        let row = self.backend.fetch_optional(Access::Read, &sql, binds).await?;
        row.map(|r| r.text("name")).transpose()
    }
}

#[async_trait]
impl<B: Backend> AccessReport for SqlStore<B> {
    #[tracing::instrument(skip_all, fields(filter = ?query.filter, limit = query.limit), level = "debug")]
    async fn access_page(&self, query: &AccessQuery) -> Result<AccessPage, StoreError> {
        // One more than asked for says whether another page follows.
        let want = usize::try_from(query.limit).unwrap_or(usize::MAX).saturating_add(1);
        let from = query.after.as_ref().map(|a| (a.user_name.as_str(), true));
        let mut rows = if query.filter.is_some() {
            // The filter bounds what is read; the position's user name prunes the rows before it.
            self.report_rows(query, Window { from, to: None }, want).await?
        } else {
            // Windows of `want` users (each user with access has a row at least), until the
            // page is full or the users run out.
            let mut rows = Vec::new();
            let mut from = from.map(|(name, inclusive)| (name.to_owned(), inclusive));
            loop {
                let start = from.as_ref().map(|(name, inclusive)| (name.as_str(), *inclusive));
                let to = self.window_end(start, want).await?;
                let window = Window { from: start, to: to.as_deref() };
                rows.extend(self.report_rows(query, window, want - rows.len()).await?);
                match to {
                    Some(to) if rows.len() < want => from = Some((to, false)),
                    _ => break,
                }
            }
            rows
        };
        let more = rows.len() >= want;
        rows.truncate(want - 1);
        Ok(AccessPage { rows, more })
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn access_as_of(&self) -> Result<AccessAsOf, StoreError> {
        let newest = "ORDER BY started_at DESC, id DESC LIMIT 1";
        let last_run = format!("{LAST_RUN} {newest}");
        let last_full = format!(
            "{LAST_RUN} AND status = 'succeeded' AND {} {newest}",
            B::DIALECT.run_was_full()
        );
        let read = |sql: String| async move {
            let row = self.backend.fetch_optional(Access::Read, &sql, binds![false]).await?;
            row.as_ref().map(run_mark_of).transpose()
        };
        Ok(AccessAsOf { last_full_run: read(last_full).await?, last_run: read(last_run).await? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AccessPosition;

    fn query(filter: Option<AccessFilter>, after: Option<AccessPosition>) -> AccessQuery {
        AccessQuery { filter, after, limit: 100 }
    }

    #[test]
    fn a_group_filter_reads_no_direct_row_and_binds_each_value_once() {
        let q = query(Some(AccessFilter::Group("admins".into())), None);
        let (sql, binds) = page_sql(Dialect::Sqlite, &q, Window::default(), 101);
        assert!(sql.contains("WHERE a.principal_type = 'USER' AND 1 = 0"), "{sql}");
        assert!(sql.contains("display_name_lower = $1"), "{sql}");
        assert_eq!(binds, vec![Bind::Text("admins".into()), Bind::Int(101)]);
    }

    #[test]
    fn a_page_after_a_position_compares_every_sort_column_bytewise() {
        let after = AccessPosition {
            user_name: "alice".into(),
            target: "111111111111".into(),
            permission_set: "ReadOnly".into(),
            via: "direct".into(),
            user_id: "u-1".into(),
            holder_id: "u-1".into(),
        };
        let q = query(None, Some(after));
        let window = Window { from: Some(("alice", true)), to: Some("bob") };
        let (sql, binds) = page_sql(Dialect::Postgres, &q, window, 10);
        assert!(sql.contains("pu.name COLLATE \"C\" >= $1"), "{sql}");
        assert!(sql.contains("pu.name COLLATE \"C\" <= $2"), "{sql}");
        assert!(
            sql.contains("(r.user_name COLLATE \"C\", r.target COLLATE \"C\", r.permission_set COLLATE \"C\", r.via COLLATE \"C\", r.user_id COLLATE \"C\", r.holder_id COLLATE \"C\") > ($3, $4, $5, $6, $7, $8)"),
            "{sql}"
        );
        assert!(sql.ends_with("LIMIT $9"), "{sql}");
        assert_eq!(binds.len(), 9);
    }
}
