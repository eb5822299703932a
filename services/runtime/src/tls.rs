//! Optional TLS on the mesh's gRPC, by certificate paths in the environment (tonic's rustls):
//! a server with `CALLMESH_TLS_CERT` and `CALLMESH_TLS_KEY` (PEM) accepts TLS only; a client
//! trusts the CA in `CALLMESH_TLS_CA` for `https://` service URLs. Without them the mesh speaks
//! plaintext HTTP/2 (keep it on a private network).

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::{ConfigError, env_var};

pub const CERT_VAR: &str = "CALLMESH_TLS_CERT";
pub const KEY_VAR: &str = "CALLMESH_TLS_KEY";
pub const CA_VAR: &str = "CALLMESH_TLS_CA";

fn read(variable: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| ConfigError::invalid(variable, format!("cannot read {path}: {e}")))
}

/// Chooses rustls' cryptography (aws-lc-rs) for this process, once; other crates in the build
/// enable more than one provider, so rustls cannot choose by itself.
pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The server's TLS settings, when a certificate and key are configured.
pub fn server_config() -> Result<Option<ServerTlsConfig>, ConfigError> {
    match (env_var(CERT_VAR), env_var(KEY_VAR)) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            install_crypto();
            let identity = Identity::from_pem(read(CERT_VAR, &cert)?, read(KEY_VAR, &key)?);
            Ok(Some(ServerTlsConfig::new().identity(identity)))
        }
        (Some(_), None) => Err(ConfigError::invalid(
            KEY_VAR,
            "required with CALLMESH_TLS_CERT",
        )),
        (None, Some(_)) => Err(ConfigError::invalid(
            CERT_VAR,
            "required with CALLMESH_TLS_KEY",
        )),
    }
}

/// The clients' TLS settings, when a CA is configured.
pub fn client_config() -> Result<Option<ClientTlsConfig>, ConfigError> {
    match env_var(CA_VAR) {
        None => Ok(None),
        Some(ca) => Ok(Some({
            install_crypto();
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(CA_VAR, &ca)?))
        })),
    }
}
