//! Structured logs on stderr (text or JSON), filtered by `RUST_LOG` or `[log] level`.

use crate::config::LogFormat;
use serde::Serialize;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

/// The target of the lines `serve` and the other commands log themselves (start-up,
/// shutdown, the database, a run started by hand): `scimbridge::commands`, where they were
/// logged before start-up and the commands had modules of their own, so that log filters and
/// pipelines that select by it keep working.
pub const COMMANDS_TARGET: &str = "scimbridge::commands";

pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // try_init: tests and embedders may have installed a subscriber already.
    let _ = match format {
        LogFormat::Json => registry.with(json_layer(std::io::stderr)).try_init(),
        LogFormat::Text => {
            // Colour only on a terminal: `kubectl logs` and log shippers get plain text.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            registry.with(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr)).try_init()
        }
    };
}

/// The `[log] format = "json"` layer: tracing-subscriber's JSON lines, with the fields of
/// [`JSON_VALUED_FIELDS`] as JSON values.
fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let format = fmt::format().json().with_current_span(true);
    fmt::layer().json().event_format(JsonValued(format)).with_writer(writer)
}

/// Event fields that hold JSON text (written with [`AsJson`]), such as a run's `counts` and
/// `aws_calls`. tracing passes structured values to a formatter only under an unstable cfg
/// (`valuable`), so they travel as text and the JSON formatter puts them back as values, which
/// keeps each field's type the same in every line (log stores index by type).
pub const JSON_VALUED_FIELDS: [&str; 2] = ["counts", "aws_calls"];

/// A value logged as compact JSON: `counts = %AsJson(&report.counts)` (text logs show the JSON).
pub struct AsJson<'a, T: Serialize>(pub &'a T);

impl<T: Serialize> std::fmt::Display for AsJson<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_string(self.0).map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

/// Wraps the JSON event format: an event with a field of [`JSON_VALUED_FIELDS`] is formatted,
/// parsed back, and written with that field's text replaced by the JSON it holds. Other events
/// pass through untouched.
struct JsonValued<F>(F);

impl<S, N, F> FormatEvent<S, N> for JsonValued<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        if !event.fields().any(|f| JSON_VALUED_FIELDS.contains(&f.name())) {
            return self.0.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let Ok(mut parsed) = serde_json::from_str::<serde_json::Value>(&line) else {
            return writer.write_str(&line);
        };
        if let Some(fields) = parsed.get_mut("fields").and_then(serde_json::Value::as_object_mut) {
            for name in JSON_VALUED_FIELDS {
                let value = fields.get(name).and_then(serde_json::Value::as_str);
                if let Some(value) = value.and_then(|text| serde_json::from_str(text).ok()) {
                    fields.insert(name.to_owned(), value);
                }
            }
        }
        writeln!(writer, "{parsed}")
    }
}

/// Why `level` is not a usable `[log] level`, if it is not: a tracing filter whose every
/// directive is a level (`info`) or names its target (`scimbridge=debug`). A bare word that is
/// no level (`verbose`) would be read as a target and silently turn every other log off.
pub fn level_problem(level: &str) -> Option<String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    if let Err(e) = EnvFilter::try_new(level) {
        return Some(format!("{level:?} is not a log filter ({e})"));
    }
    let bare = level
        .split(',')
        .map(str::trim)
        .find(|d| !d.contains('=') && !LEVELS.contains(&d.to_ascii_lowercase().as_str()));
    bare.map(|d| {
        format!(
            "{d:?} is not a log level (one of {}); a filter names its target as in \"scimbridge=debug\"",
            LEVELS.join(", ")
        )
    })
}

/// The Prometheus recorder behind `/metrics`, installed on first use (once per process: the
/// tests run many servers in one).
pub fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        const BUCKETS: [f64; 16] = [
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            900.0, 3600.0,
        ];
        // set_buckets fails only on an empty list; without buckets histograms become summaries.
        let recorder =
            match metrics_exporter_prometheus::PrometheusBuilder::new().set_buckets(&BUCKETS) {
                Ok(builder) => builder.build_recorder(),
                Err(_) => metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
            };
        let handle = recorder.handle();
        // Fails only when another recorder is installed (an embedder's): theirs is kept.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Captures what a layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_logs_carry_counts_as_objects() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry().with(json_layer(move || writer.clone()));
        let counts = std::collections::BTreeMap::from([("create_user", 2), ("add_member", 3)]);
        let calls = std::collections::BTreeMap::from([("CreateUser", 2)]);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(run_id = "r1", counts = %AsJson(&counts), aws_calls = %AsJson(&calls), errors = 0, "sync run finished");
            tracing::info!(detail = r#"{"not": "parsed"}"#, "other fields stay as they are");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
        assert_eq!(lines.len(), 2, "{text}");
        let fields = &lines[0]["fields"];
        assert_eq!(fields["counts"], serde_json::json!({"add_member": 3, "create_user": 2}));
        assert_eq!(fields["aws_calls"]["CreateUser"], 2);
        assert_eq!(fields["errors"], 0);
        assert_eq!(fields["run_id"], "r1");
        assert_eq!(fields["message"], "sync run finished");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[1]["fields"]["detail"], r#"{"not": "parsed"}"#);
    }

    #[test]
    fn a_log_level_that_would_silence_the_logs_is_named() {
        for good in ["info", "WARN", "scimbridge=debug,info", "off"] {
            assert!(level_problem(good).is_none(), "{good}");
        }
        for bad in ["verbose", "info,chatty", "scimbridge=loud"] {
            assert!(level_problem(bad).is_some(), "{bad}");
        }
    }
}
