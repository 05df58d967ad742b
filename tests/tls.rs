//! Direct HTTPS (`[server] tls_cert_file` / `tls_key_file`): the server answers over TLS with
//! the configured certificate, and serves a renewed one once its files change — no restart.

use crate::support::{Backend, eventually, fresh_database};
use scimbridge::config::Settings;
use scimbridge::startup::Application;
use std::path::Path;
use std::time::Duration;

/// A self-signed certificate for localhost: (certificate PEM, key PEM, certificate DER).
fn certificate() -> (String, String, Vec<u8>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    (cert.pem(), signing_key.serialize_pem(), cert.der().to_vec())
}

fn install(dir: &Path, (cert, key, _): &(String, String, Vec<u8>)) {
    // Written aside and renamed, as cert-manager's Secret volume update swaps them.
    for (name, pem) in [("tls.crt", cert), ("tls.key", key)] {
        let tmp = dir.join(format!(".{name}.new"));
        std::fs::write(&tmp, pem).expect("write");
        std::fs::rename(&tmp, dir.join(name)).expect("rename");
    }
}

/// The certificate the server presents to a new client (no session to resume) trusting these.
async fn served(trusted: &[String], port: u16) -> Vec<u8> {
    let mut client = reqwest::Client::builder().tls_info(true);
    for pem in trusted {
        client =
            client.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    }
    let r = client
        .build()
        .unwrap()
        .get(format!("https://localhost:{port}/livez"))
        .send()
        .await
        .expect("HTTPS");
    assert_eq!(r.status(), 200);
    let info = r.extensions().get::<reqwest::tls::TlsInfo>().expect("TLS info");
    info.peer_certificate().expect("a certificate").to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_and_picks_up_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (first, renewed) = (certificate(), certificate());
    install(dir.path(), &first);
    let (url, _db) = fresh_database(Backend::Sqlite).await;
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.database.url = url.clone();
    settings.server.tls_cert_file = Some(dir.path().join("tls.crt"));
    settings.server.tls_key_file = Some(dir.path().join("tls.key"));
    let store = scimbridge::store::connect(&url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let app = Application::build_with(settings.clone(), store.clone()).await.unwrap();
    let port = app.port();
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    let trusted = [first.0.clone(), renewed.0.clone()];
    assert_eq!(served(&trusted, port).await, first.2);
    let plain = reqwest::get(format!("http://localhost:{port}/livez")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "no plain HTTP");

    install(dir.path(), &renewed);
    eventually(Duration::from_secs(15), "the renewed certificate picked up", || async {
        served(&trusted, port).await == renewed.2
    })
    .await;

    // A key that does not belong to the certificate is refused at start-up, naming the keys.
    std::fs::write(dir.path().join("tls.key"), certificate().1).unwrap();
    settings.server.listen = "127.0.0.1:0".into();
    let refused = Application::build_with(settings, store).await;
    let message = format!("{:#}", refused.err().expect("refused"));
    assert!(message.contains("tls_key_file"), "{message}");
}
