//! A `ca_file` of the config (`[[upstreams]]`, `[store]`, `[cimd]`): a PEM
//! file that must hold at least one certificate, read once at start.

use std::path::Path;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;

/// The file `path` that config key `key` names: its bytes and the
/// certificates in them, at least one.
pub(crate) fn read(
    key: &str,
    path: &Path,
) -> Result<(Vec<u8>, Vec<CertificateDer<'static>>), String> {
    let pem =
        std::fs::read(path).map_err(|e| format!("{key}: cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{key}: {} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{key}: {} holds no certificate", path.display()));
    }
    Ok((pem, certs))
}
