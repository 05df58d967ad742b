//! How `sync` and `sync approve` show a run: a progress bar on a terminal while it runs, then
//! its report, as one JSON object or as lines with the plan and the held actions as tables.

use crate::store::PlanPages;
use crate::sync::engine::RunReport;
use crate::sync::run::plan_pages::PAGE_SIZE;
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;

/// A progress bar on stderr when it is a terminal (stdout keeps only the documented output).
pub(super) fn progress_bar() -> Option<Arc<dyn crate::sync::engine::Progress>> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    struct Bar(indicatif::ProgressBar);
    impl crate::sync::engine::Progress for Bar {
        fn phase(&self, name: &str, steps: u64) {
            self.0.reset();
            self.0.set_length(steps);
            self.0.set_message(name.to_owned());
        }
        fn step(&self) {
            self.0.inc(1);
        }
        fn resize(&self, steps: u64) {
            self.0.set_length(steps);
        }
        fn finish(&self) {
            self.0.finish_and_clear();
        }
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(Arc::new(Bar(bar)))
}

/// The report on stdout; `differ_note`: how a dry run's rules differ from the serving
/// replicas'. A plan stored in pages (`plan_pages`) is read back and written out a page at a
/// time, never held whole.
pub(super) async fn print(
    store: &dyn PlanPages,
    report: &RunReport,
    json: bool,
    differ_note: Option<&str>,
) -> anyhow::Result<()> {
    // Locked once for the whole report, and buffered: a large plan is many small writes.
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if json {
        print_json(&mut out, store, report, differ_note).await?;
    } else {
        print_text(&mut out, store, report, differ_note).await?;
    }
    out.flush()?;
    Ok(())
}

/// The report as one JSON object on one line. A paged plan is printed as `plan`, where the
/// report has `plan_pages`: the same object a small plan's report is, streamed.
async fn print_json(
    out: &mut impl Write,
    store: &dyn PlanPages,
    report: &RunReport,
    differ_note: Option<&str>,
) -> anyhow::Result<()> {
    let mut json = serde_json::to_value(report)?;
    if let (Some(o), Some(message)) = (json.as_object_mut(), differ_note) {
        o.insert("rules_differ".into(), Value::String(message.to_owned()));
    }
    let fields = match &json {
        Value::Object(fields) if report.plan_pages > 0 => fields,
        _ => {
            serde_json::to_writer(&mut *out, &json)?;
            out.write_all(b"\n")?;
            return Ok(());
        }
    };
    // What `serde_json::to_writer` writes for the object (compact: no spaces), field by field.
    out.write_all(b"{")?;
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        if key == "plan_pages" {
            out.write_all(b"\"plan\":[")?;
            for page in 0..report.plan_pages {
                for (j, action) in plan_page(store, report, page).await?.iter().enumerate() {
                    if page > 0 || j > 0 {
                        out.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut *out, action)?;
                }
            }
            out.write_all(b"]")?;
        } else {
            serde_json::to_writer(&mut *out, key)?;
            out.write_all(b":")?;
            serde_json::to_writer(&mut *out, value)?;
        }
    }
    out.write_all(b"}\n")?;
    Ok(())
}

/// The report as lines, with the plan and the held actions as tables.
async fn print_text(
    out: &mut impl Write,
    store: &dyn PlanPages,
    report: &RunReport,
    differ_note: Option<&str>,
) -> anyhow::Result<()> {
    let dry = if report.dry_run { " (dry run: nothing was changed)" } else { "" };
    writeln!(out, "run {} {}{dry}", report.run_id, report.status)?;
    if let Some(message) = differ_note {
        writeln!(out, "  note: {message}")?;
    }
    for (action, n) in &report.counts {
        writeln!(out, "  {action}: {n}")?;
    }
    let calls: u64 = report.aws_calls.values().sum();
    writeln!(out, "  aws calls: {calls} ({} throttled)", report.throttles)?;
    for e in &report.errors {
        writeln!(out, "  error: {}: {}", e.principal, e.message)?;
    }
    if let Some(plan) = &report.plan {
        writeln!(out, "  plan ({} steps):", plan.len())?;
        for line in plan_table(plan) {
            writeln!(out, "    {line}")?;
        }
    } else if report.plan_pages > 0 {
        // A table per page (the columns line up within a page), under one header.
        writeln!(out, "  plan ({} pages of at most {PAGE_SIZE} steps):", report.plan_pages)?;
        for page in 0..report.plan_pages {
            let steps = plan_page(store, report, page).await?;
            for line in plan_table(&steps).into_iter().skip(usize::from(page > 0)) {
                writeln!(out, "    {line}")?;
            }
        }
    }
    if !report.held.is_empty() {
        let total: u64 = report.counts.iter().filter(|(k, _)| k.is_held()).map(|(_, n)| n).sum();
        let approve = report
            .approval
            .as_ref()
            .and_then(|a| a.get("run_id"))
            .and_then(Value::as_str)
            .map(|id| format!("; approve with `scimbridge sync approve {id}`"))
            .unwrap_or_default();
        writeln!(out, "  held for approval ({total} destructive actions{approve}):")?;
        for line in plan_table(&report.held) {
            writeln!(out, "    {line}")?;
        }
    }
    Ok(())
}

/// Page `page` of the report's stored plan.
async fn plan_page(
    store: &dyn PlanPages,
    report: &RunReport,
    page: u32,
) -> anyhow::Result<Vec<Value>> {
    store.plan_page(report.run_id, page).await?.ok_or_else(|| {
        anyhow::anyhow!(
            "page {page} of the {} pages of run {}'s plan is missing from the database",
            report.plan_pages,
            report.run_id
        )
    })
}

/// A run's plan as a table: action, kind, name, what changes. The columns are read from the
/// plan's JSON (what `--json` prints), so every kind of step — principals, memberships,
/// permission sets, assignments — gets a row.
fn plan_table(plan: &[Value]) -> Vec<String> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let rows: Vec<[String; 4]> = plan
        .iter()
        .map(|step| {
            let action = text(step, "action").unwrap_or_default();
            let (kind, name) = match (text(step, "group"), text(step, "user")) {
                (Some(group), Some(user)) => {
                    ("Membership".to_owned(), format!("{user} in {group}"))
                }
                _ => (
                    text(step, "kind").unwrap_or_else(|| {
                        if action.ends_with("_assignment") {
                            "Assignment".to_owned()
                        } else if action.ends_with("_permission_set") {
                            "PermissionSet".to_owned()
                        } else {
                            String::new()
                        }
                    }),
                    text(step, "name")
                        .or_else(|| text(step, "principal"))
                        .or_else(|| text(step, "application_arn"))
                        .unwrap_or_default(),
                ),
            };
            let mut detail = Vec::new();
            if let Some(attributes) = step.get("attributes").and_then(Value::as_array) {
                let names: Vec<&str> = attributes.iter().filter_map(Value::as_str).collect();
                detail.push(names.join(", "));
            }
            for key in ["reason", "permission_set", "target", "aws_id", "rule"] {
                if let Some(v) = text(step, key) {
                    detail.push(format!("{key} {v}"));
                }
            }
            [action, kind, name, detail.join("; ")]
        })
        .collect();
    let header = ["ACTION", "KIND", "NAME", "CHANGES"].map(str::to_owned);
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|[a, k, n, d]| {
            format!(
                "{a:<w0$}  {k:<w1$}  {n:<w2$}  {d}",
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )
            .trim_end()
            .to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_plan_reads_as_a_table() {
        let plan = vec![
            json!({"action": "update", "kind": "User", "name": "ana@example.com", "attributes": ["displayName", "title"]}),
            json!({"action": "delete", "kind": "Group", "name": "Old", "reason": "deleted at the IdP"}),
            json!({"action": "add_member", "group": "Admins", "user": "ana@example.com"}),
            json!({"action": "create_account_assignment", "principal": "Admins", "permission_set": "AdminAccess", "target": "111111111111", "rule": "assignments.account[0]"}),
        ];
        let lines = plan_table(&plan);
        // Columns line up under the header.
        assert!(lines[0].starts_with("ACTION") && lines[0].ends_with("CHANGES"), "{lines:?}");
        assert_eq!(lines[0].find("KIND"), lines[1].find("User"), "{lines:?}");
        assert_eq!(lines[0].find("NAME"), lines[1].find("ana@example.com"), "{lines:?}");
        assert_eq!(lines[0].find("CHANGES"), lines[1].find("displayName, title"), "{lines:?}");
        assert!(lines[2].ends_with("reason deleted at the IdP"), "{lines:?}");
        assert!(lines[3].contains("Membership  ana@example.com in Admins"), "{lines:?}");
        assert!(
            lines[4].contains("Assignment  Admins")
                && lines[4].ends_with(
                    "permission_set AdminAccess; target 111111111111; rule assignments.account[0]"
                ),
            "{lines:?}"
        );
    }
}
