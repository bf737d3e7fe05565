//! TLS on the TCP listener: the certificate and key from PEM files, rustls with the
//! `ring` provider, TLS 1.2 and 1.3.

use std::{path::Path, sync::Arc};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio_rustls::TlsAcceptor;

/// Builds the TLS acceptor of the daemon from a PEM certificate chain (the server's
/// certificate first) and its PEM private key (PKCS#8, PKCS#1 or SEC1).
///
/// The error names the file and what is wrong with it.
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, String> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| format!("TLS certificate {}: {e}", cert_file.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("TLS certificate {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "TLS certificate {}: no PEM certificate in the file",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("TLS key {}: {e}", key_file.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| {
        format!(
            "TLS certificate {} and key {}: {e}",
            cert_file.display(),
            key_file.display()
        )
    })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
