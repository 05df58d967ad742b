//! How `sync` and `sync approve` show a run: a progress bar on a terminal while it runs, then
//! its report, as one JSON object or as lines with the plan and the held actions as tables.

use crate::sync::engine::RunReport;
use serde_json::Value;
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
/// replicas'.
pub(super) fn print(
    report: &RunReport,
    json: bool,
    differ_note: Option<&str>,
) -> anyhow::Result<()> {
    if json {
        let mut json = serde_json::to_value(report)?;
        if let (Some(o), Some(message)) = (json.as_object_mut(), differ_note) {
            o.insert("rules_differ".into(), Value::String(message.to_owned()));
        }
        println!("{}", serde_json::to_string(&json)?);
    } else {
        let dry = if report.dry_run { " (dry run: nothing was changed)" } else { "" };
        println!("run {} {}{dry}", report.run_id, report.status);
        if let Some(message) = differ_note {
            println!("  note: {message}");
        }
        for (action, n) in &report.counts {
            println!("  {action}: {n}");
        }
        let calls: u64 = report.aws_calls.values().sum();
        println!("  aws calls: {calls} ({} throttled)", report.throttles);
        for e in &report.errors {
            println!("  error: {}: {}", e.principal, e.message);
        }
        if let Some(plan) = &report.plan {
            println!("  plan ({} steps):", plan.len());
            for line in plan_table(plan) {
                println!("    {line}");
            }
        }
        if !report.held.is_empty() {
            let total: u64 =
                report.counts.iter().filter(|(k, _)| k.is_held()).map(|(_, n)| n).sum();
            let approve = report
                .approval
                .as_ref()
                .and_then(|a| a.get("run_id"))
                .and_then(Value::as_str)
                .map(|id| format!("; approve with `scimbridge sync approve {id}`"))
                .unwrap_or_default();
            println!("  held for approval ({total} destructive actions{approve}):");
            for line in plan_table(&report.held) {
                println!("    {line}");
            }
        }
    }
    Ok(())
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
