//! How `scimbridge access` prints the report, a page at a time as the store hands them over, so
//! that a report of millions of rows is never held: an aligned table (the default), one JSON
//! object, or CSV (RFC 4180, with a header row) for an access review.

use crate::store::{AccessAsOf, AccessRow};
use std::io::Write;

/// The CSV header, and the fields of each row in that order.
pub const CSV_HEADER: [&str; 10] = [
    "user",
    "user_id",
    "kind",
    "target",
    "permission_set",
    "via",
    "rule",
    "source",
    "state",
    "principal_id",
];

const TABLE_HEADER: [&str; 8] =
    ["USER", "KIND", "TARGET", "PERMISSION SET", "VIA", "RULE", "SOURCE", "STATE"];

/// The CSV fields of a row ([`CSV_HEADER`]); absent values are empty.
fn csv_fields(r: &AccessRow) -> [&str; 10] {
    [
        &r.user,
        &r.user_id,
        r.kind.as_str(),
        &r.target,
        r.permission_set.as_deref().unwrap_or(""),
        r.via.as_str(),
        r.rule.as_deref().unwrap_or(""),
        r.source.as_deref().unwrap_or(""),
        r.state.as_str(),
        &r.principal_id,
    ]
}

/// The table's cells of a row ([`TABLE_HEADER`]); absent values are `-`.
fn table_fields(r: &AccessRow) -> [&str; 8] {
    [
        &r.user,
        r.kind.as_str(),
        &r.target,
        r.permission_set.as_deref().unwrap_or("-"),
        r.via.as_str(),
        r.rule.as_deref().unwrap_or("-"),
        r.source.as_deref().unwrap_or("-"),
        r.state.as_str(),
    ]
}

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

enum Sink<W: Write> {
    /// The table: its column widths, set by the first page (a later, wider value shifts its
    /// own line only: the table is never held whole to measure it).
    Table {
        out: W,
        widths: Option<[usize; 8]>,
    },
    Json {
        out: W,
        first: bool,
    },
    /// Boxed: the CSV writer holds its buffer inline.
    Csv(Box<csv::Writer<W>>),
}

/// Prints the report page by page: [`ReportWriter::start`], [`ReportWriter::page`] for each
/// page, [`ReportWriter::finish`].
pub struct ReportWriter<W: Write> {
    sink: Sink<W>,
    rows: u64,
}

impl<W: Write> ReportWriter<W> {
    /// Starts the output: the JSON object's opening and `as_of`, or the CSV header. The table's
    /// header waits for the first page, whose values set the column widths.
    pub fn start(mut out: W, format: Format, as_of: &AccessAsOf) -> std::io::Result<Self> {
        let sink = match format {
            Format::Table => Sink::Table { out, widths: None },
            Format::Json => {
                write!(out, "{{\"as_of\":{},\"rows\":[", serde_json::to_string(as_of)?)?;
                Sink::Json { out, first: true }
            }
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(CSV_HEADER)?;
                Sink::Csv(Box::new(w))
            }
        };
        Ok(ReportWriter { sink, rows: 0 })
    }

    /// Prints one page of rows.
    pub fn page(&mut self, rows: &[AccessRow]) -> std::io::Result<()> {
        self.rows += rows.len() as u64;
        match &mut self.sink {
            Sink::Table { out, widths } => {
                let widths = match widths {
                    Some(w) => *w,
                    None => {
                        let w = column_widths(rows);
                        table_line(out, &TABLE_HEADER, &w)?;
                        *widths = Some(w);
                        w
                    }
                };
                for r in rows {
                    table_line(out, &table_fields(r), &widths)?;
                }
            }
            Sink::Json { out, first } => {
                for r in rows {
                    if !*first {
                        out.write_all(b",")?;
                    }
                    *first = false;
                    serde_json::to_writer(&mut *out, r)?;
                }
            }
            Sink::Csv(w) => {
                for r in rows {
                    w.write_record(csv_fields(r))?;
                }
            }
        }
        Ok(())
    }

    /// Ends the output (the JSON object's closing; an empty table's header); how many rows
    /// were printed.
    pub fn finish(mut self) -> std::io::Result<u64> {
        match &mut self.sink {
            Sink::Table { out, widths } => {
                if widths.is_none() {
                    table_line(out, &TABLE_HEADER, &column_widths(&[]))?;
                }
                out.flush()?;
            }
            Sink::Json { out, .. } => {
                out.write_all(b"]}\n")?;
                out.flush()?;
            }
            Sink::Csv(w) => w.flush()?,
        }
        Ok(self.rows)
    }
}

/// The width of each column: its header's, or its widest value on this page.
fn column_widths(rows: &[AccessRow]) -> [usize; 8] {
    let mut widths = TABLE_HEADER.map(|h| h.chars().count());
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(table_fields(r)) {
            *w = (*w).max(cell.chars().count());
        }
    }
    widths
}

/// One line of the table: cells padded to their column's width, two spaces apart, the last
/// unpadded.
fn table_line(out: &mut impl Write, cells: &[&str; 8], widths: &[usize; 8]) -> std::io::Result<()> {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            line.push_str(cell);
        } else {
            line.push_str(&format!("{cell:<width$}  "));
        }
    }
    writeln!(out, "{}", line.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AccessPath, AssignmentKind, AssignmentState, PrincipalType};

    fn row(user: &str, via: AccessPath, rule: Option<&str>) -> AccessRow {
        AccessRow {
            user: user.into(),
            user_id: format!("id-{user}"),
            kind: AssignmentKind::Account,
            target: "111111111111".into(),
            permission_set: Some("ReadOnly".into()),
            principal_type: match via {
                AccessPath::Direct => PrincipalType::User,
                AccessPath::Group(_) => PrincipalType::Group,
            },
            via,
            rule: rule.map(str::to_owned),
            source: Some("okta".into()),
            state: AssignmentState::Created,
            principal_id: "g-1".into(),
        }
    }

    fn printed(format: Format, pages: &[&[AccessRow]]) -> String {
        let mut out = Vec::new();
        let mut w = ReportWriter::start(&mut out, format, &AccessAsOf::default()).unwrap();
        for page in pages {
            w.page(page).unwrap();
        }
        w.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_has_a_header_row_and_quotes_what_needs_it() {
        let awkward = row("o\"brien, pat", AccessPath::Group("Ops, \"EU\"".into()), None);
        let text = printed(
            Format::Csv,
            &[&[row("alice", AccessPath::Direct, Some("assignments.account[0]"))], &[awkward]],
        );
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("user,user_id,kind,target,permission_set,via,rule,source,state,principal_id")
        );
        assert_eq!(
            lines.next(),
            Some(
                "alice,id-alice,account,111111111111,ReadOnly,direct,assignments.account[0],okta,created,g-1"
            )
        );
        assert_eq!(
            lines.next(),
            Some(
                "\"o\"\"brien, pat\",\"id-o\"\"brien, pat\",account,111111111111,ReadOnly,\"Ops, \"\"EU\"\"\",,okta,created,g-1"
            )
        );
        assert_eq!(lines.next(), None);
        // Read back by a CSV reader, field by field.
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(&records[1][0], "o\"brien, pat");
        assert_eq!(&records[1][5], "Ops, \"EU\"");
    }

    #[test]
    fn an_empty_report_still_has_its_header() {
        assert_eq!(printed(Format::Csv, &[]), format!("{}\n", CSV_HEADER.join(",")));
        let table = printed(Format::Table, &[]);
        assert!(table.starts_with("USER  KIND  TARGET"), "{table}");
        let json: serde_json::Value = serde_json::from_str(&printed(Format::Json, &[])).unwrap();
        assert_eq!(json["rows"], serde_json::json!([]));
        assert_eq!(json["as_of"], serde_json::json!({"last_full_run": null, "last_run": null}));
    }

    #[test]
    fn json_rows_of_every_page_make_one_array_and_the_table_is_aligned() {
        let pages: [&[AccessRow]; 2] = [
            &[row("alice", AccessPath::Direct, None), row("bob", AccessPath::Direct, None)],
            &[row("carol", AccessPath::Group("Ops".into()), Some("assignments.account[1]"))],
        ];
        let json: serde_json::Value = serde_json::from_str(&printed(Format::Json, &pages)).unwrap();
        let users: Vec<&str> =
            json["rows"].as_array().unwrap().iter().map(|r| r["user"].as_str().unwrap()).collect();
        assert_eq!(users, ["alice", "bob", "carol"]);
        assert_eq!(json["rows"][2]["via"], "Ops");
        assert_eq!(json["rows"][0]["permission_set"], "ReadOnly");
        let table = printed(Format::Table, &pages);
        let columns: Vec<usize> = table.lines().map(|l| l.find("account").unwrap_or(0)).collect();
        assert!(columns.iter().skip(1).all(|c| *c == columns[1]), "{table}");
        assert_eq!(table.lines().next().unwrap().find("KIND"), Some(columns[1]), "{table}");
    }
}
