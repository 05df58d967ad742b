//! Structured logs on stderr (text or JSON), filtered by `RUST_LOG` or `[log] level`.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

pub fn init(format: &str, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // try_init: tests and embedders may have installed a subscriber already.
    let _ = if format == "json" {
        registry
            .with(fmt::layer().json().with_current_span(true).with_writer(std::io::stderr))
            .try_init()
    } else {
        // Colour only on a terminal: `kubectl logs` and log shippers get plain text.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        registry.with(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr)).try_init()
    };
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
