//! The HTTP side of the application: the listeners (bound first, so port 0 works and a port in
//! use fails before anything is announced), TLS, and the actix server with one state and one
//! database pool per worker.

use crate::config::Settings;
use crate::http::{self, AppState};
use crate::store::Store;
use crate::store::budget::ConnectionBudget;
use crate::sync::scheduler::SyncHandle;
use actix_web::dev::Server;
use actix_web::middleware::{NormalizePath, TrailingSlash, from_fn};
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;

/// The server, running, and the ports it listens on.
pub(super) struct Listening {
    pub port: u16,
    /// The port of `server.metrics_listen`, when set.
    pub metrics_port: Option<u16>,
    pub server: Server,
}

/// Binds the listeners and starts the server. `sync` starts runs for the admin API (None: sync
/// is off).
pub(super) fn start(
    settings: Settings,
    store: Arc<dyn Store>,
    sync: Option<SyncHandle>,
) -> anyhow::Result<Listening> {
    let listener = bind(&settings.server.listen)?;
    let port = listener.local_addr()?.port();
    let metrics_listener = match &settings.server.metrics_listen {
        Some(addr) => Some(bind(addr).map_err(|e| e.context("server.metrics_listen"))?),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    let trusted_proxies = http::forwarded::TrustedProxies::parse(&settings.server.trusted_proxies)
        .map_err(|e| anyhow::anyhow!("config: server.trusted_proxies: {e}"))?;
    let large_bodies = super::resources::large_request_permits(
        &settings.scim,
        super::resources::available_memory_bytes(),
    );
    tracing::debug!(target: "scimbridge::startup", large_bodies, "large /Bulk bodies at once");
    let edge = Arc::new(http::Edge {
        trusted_proxies,
        large_bodies: Arc::new(tokio::sync::Semaphore::new(large_bodies as usize)),
        metrics_addr,
    });
    let shutdown_timeout = settings.server.shutdown_timeout_seconds;
    crate::telemetry::prometheus();
    let tls = match (&settings.server.tls_cert_file, &settings.server.tls_key_file) {
        (Some(cert), Some(key)) => {
            // An unreadable or mismatched certificate is the configuration's fault (exit 2).
            let certificate = http::tls::ReloadingCertificate::load(cert, key)
                .map_err(|e| crate::exit::usage(format!("config: {e:#}")))?;
            certificate.watch();
            Some(http::tls::server_config(certificate)?)
        }
        _ => None,
    };
    let budget = ConnectionBudget::new(&settings.database, super::resources::cpus());
    let per_worker = budget.per_http_worker;
    let settings = Arc::new(settings);
    // The factory runs on each worker thread: each gets its state, and its own database
    // pool (see `Store::for_http_worker`).
    let server = HttpServer::new(move || {
        let store = store.clone().for_http_worker(per_worker);
        let state =
            web::Data::new(AppState::new(store, settings.clone(), sync.clone(), edge.clone()));
        App::new()
            .app_data(state)
            // Registered innermost first: the path is normalised (slashes merged) before
            // these three look at it.
            .wrap(from_fn(http::access_log::note_route))
            .wrap(from_fn(http::listeners::split_by_listener))
            .wrap(from_fn(http::listeners::case_insensitive_scim_paths))
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .wrap(from_fn(http::prometheus::record_request))
            .wrap(from_fn(http::access_log::log_request))
            .configure(http::configure)
            .default_service(web::to(http::not_found))
    })
    .workers(budget.http_workers as usize)
    .shutdown_timeout(shutdown_timeout)
    // `serve` handles SIGTERM/SIGINT itself: the sync stops first, while requests are
    // still answered; then they drain.
    .disable_signals();
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    // Plain HTTP even when the main listener serves HTTPS: it is for in-cluster scrapes
    // and probes.
    let server = match metrics_listener {
        Some(l) => server.listen(l)?,
        None => server,
    }
    .run();
    Ok(Listening { port, metrics_port: metrics_addr.map(|a| a.port()), server })
}

/// A listener on `addr`; the error says what is wrong in a few words: `cannot listen on
/// 127.0.0.1:8080: address already in use`. A host that does not resolve to an address of
/// this machine is the configuration's fault (exit 2); a port in use or refused is not.
fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    use std::io::ErrorKind;
    TcpListener::bind(addr).map_err(|e| {
        let cause = match e.kind() {
            ErrorKind::AddrInUse => "address already in use".to_owned(),
            ErrorKind::AddrNotAvailable => "no such address on this machine".to_owned(),
            ErrorKind::PermissionDenied => {
                "permission denied (ports below 1024 need privileges)".to_owned()
            }
            _ => e.to_string(),
        };
        let message = format!("cannot listen on {addr}: {cause}");
        match e.kind() {
            ErrorKind::AddrNotAvailable | ErrorKind::InvalidInput => crate::exit::usage(message),
            _ => anyhow::anyhow!(message),
        }
    })
}
