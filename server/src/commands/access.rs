//! `scimbridge access`: who can reach what, as a table, one JSON object or CSV, read from the
//! database a page at a time and printed as it is read.

use crate::access_report::output::{Format, ReportWriter};
use crate::access_report::{Filters, age_line};
use crate::cli::AccessArgs;
use crate::config::Settings;
use crate::exit::ExitCode;
use crate::startup::open_store;
use crate::store::{AccessQuery, AccessRow};
use std::io::BufWriter;

/// Rows read per page: large enough that a report of millions of rows takes few round trips,
/// small enough that a page is a few megabytes at most.
const PAGE: u32 = 5000;

pub(super) async fn access(args: &AccessArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let filters = Filters {
        user: args.user.clone(),
        group: args.group.clone(),
        account: args.account.clone(),
        permission_set: args.permission_set.clone(),
    };
    let filter = filters.parse().map_err(crate::exit::usage)?;
    let format = match (args.json, args.csv) {
        (true, _) => Format::Json,
        (_, true) => Format::Csv,
        _ => Format::Table,
    };
    let store = open_store(settings).await?;
    let as_of = store.access_as_of().await?;
    eprintln!("{}", age_line(&as_of, crate::store::now()));
    let mut out = ReportWriter::start(BufWriter::new(std::io::stdout()), format, &as_of)?;
    let mut query = AccessQuery { filter, after: None, limit: PAGE };
    loop {
        let page = store.access_page(&query).await?;
        out.page(&page.rows)?;
        match page.rows.last() {
            Some(last) if page.more => query.after = Some(AccessRow::position(last)),
            _ => break,
        }
    }
    let rows = out.finish()?;
    tracing::info!(rows, "access report printed");
    Ok(ExitCode::Ok)
}
