//! Direct HTTPS (`[server] tls_cert_file` / `tls_key_file`) for installs without an ingress:
//! rustls, with the certificate and key read again when their files change (cert-manager and
//! similar renew them in place). A pair that cannot be loaded at start-up is a configuration
//! error; a bad pair later is logged and the previous one kept, so a half-written renewal never
//! takes the endpoint down.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How often the files' modification times are compared.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// The server's certificate, swapped in place when its files change.
#[derive(Debug)]
pub struct ReloadingCertificate {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    modified: (Option<SystemTime>, Option<SystemTime>),
}

impl ReloadingCertificate {
    pub fn load(cert_file: &Path, key_file: &Path) -> anyhow::Result<Arc<ReloadingCertificate>> {
        let modified = (modified(cert_file), modified(key_file));
        let key = Arc::new(load_pair(cert_file, key_file)?);
        Ok(Arc::new(ReloadingCertificate {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            current: RwLock::new(Loaded { key, modified }),
        }))
    }

    /// Watches the files for as long as the server runs.
    pub fn watch(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RELOAD_EVERY).await;
                this.reload_if_changed();
            }
        });
    }

    fn reload_if_changed(&self) {
        let now = (modified(&self.cert_file), modified(&self.key_file));
        let unchanged = self.current.read().map(|c| c.modified == now).unwrap_or(false);
        if unchanged {
            return;
        }
        match load_pair(&self.cert_file, &self.key_file) {
            Ok(key) => {
                if let Ok(mut current) = self.current.write() {
                    *current = Loaded { key: Arc::new(key), modified: now };
                    tracing::info!(cert_file = %self.cert_file.display(), "TLS certificate reloaded");
                }
            }
            // Perhaps one file is written and the other not yet: the next look retries, since
            // the recorded times stay the old ones.
            Err(e) => tracing::error!(error = %format!("{e:#}"),
                "the TLS certificate files changed but cannot be loaded; still serving the previous certificate"),
        }
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.key.clone())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load_pair(cert_file: &Path, key_file: &Path) -> anyhow::Result<CertifiedKey> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("server.tls_cert_file {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        anyhow::bail!("server.tls_cert_file {}: no PEM certificate in it", cert_file.display());
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| anyhow::anyhow!("server.tls_key_file {}: {e}", key_file.display()))?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|e| anyhow::anyhow!("server.tls_key_file {}: {e}", key_file.display()))?;
    let pair = CertifiedKey::new(certs, signing);
    pair.keys_match().map_err(|e| {
        anyhow::anyhow!("server.tls_cert_file and server.tls_key_file do not belong together: {e}")
    })?;
    Ok(pair)
}

/// The rustls configuration serving `certificate` (TLS 1.2 and 1.3, HTTP/1.1).
pub fn server_config(
    certificate: Arc<ReloadingCertificate>,
) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
