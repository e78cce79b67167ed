//! The agent proxy's configuration, built once from the settings.
//!
//! `sensor proxy` (flags only) and `sensor run` (file and flags) serve the
//! same engine; building its [`ProxyConfig`] in one place means a limit,
//! secret or certificate is read and checked the same way for both, and
//! the checks all happen before the port is bound. The daemon adds its own
//! parts (the agent hook, the service routes) afterwards.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::appliance::config::{self, Config, ConfigError};
use crate::serve::proxy::{self, Allowlist, ProxyConfig};

/// Below this, some ACME clients break: they keep one tunnel for the whole
/// exchange, and certbot does not retry a dropped POST.
const ACME_IDLE_MIN: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ProxySettingsError {
    #[error(transparent)]
    Secret(#[from] ConfigError),
    #[error("proxy.allow: {0}")]
    Allow(#[source] proxy::allow::RuleError),
    #[error("proxy.resolve: {0}")]
    Resolve(#[source] proxy::ConfigError),
    #[error("proxy: {0}")]
    Invalid(#[source] proxy::ConfigError),
    /// The service certificate or key (`service.tls_cert`/`--tls-cert`).
    #[error("{field}: {path}: {problem}")]
    Tls {
        field: &'static str,
        path: PathBuf,
        problem: String,
    },
}

/// The proxy of `c`: allowlist, token (read from its file if so
/// configured), limits, names answered before DNS, and the service
/// certificate. Validated; no hook and no service routes yet.
pub fn config(c: &Config) -> Result<ProxyConfig, ProxySettingsError> {
    let p = &c.proxy;
    let auth_token = match (&p.auth_token, &p.auth_token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(config::read_secret(f, "proxy.auth_token_file")?),
        (None, None) => None,
    };
    let mut pc = ProxyConfig {
        allow: Allowlist::parse(&p.allow).map_err(ProxySettingsError::Allow)?,
        auth_token,
        idle_timeout: p.idle_timeout,
        connect_timeout: p.connect_timeout,
        max_tunnels: p.max_tunnels,
        max_tunnels_per_agent: p.max_tunnels_per_agent,
        forward_http: p.forward_plain_http,
        ..ProxyConfig::default()
    };
    for r in &p.resolve {
        pc.add_resolve(r).map_err(ProxySettingsError::Resolve)?;
    }
    pc.validate().map_err(ProxySettingsError::Invalid)?;
    if p.idle_timeout < ACME_IDLE_MIN {
        tracing::warn!(
            idle_timeout = p.idle_timeout.as_secs(),
            "idle timeouts under 120 s break some ACME clients"
        );
    }
    if let (Some(cert), Some(key)) = (&c.service.tls_cert, &c.service.tls_key) {
        pc.tls = Some(tls(cert, key)?);
    }
    Ok(pc)
}

/// The service certificate chain and key (PEM) as a rustls server
/// configuration: TLS on the service port, told apart from plain by the
/// first byte.
fn tls(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ProxySettingsError> {
    let err = |field, path: &Path, problem: String| ProxySettingsError::Tls {
        field,
        path: path.to_path_buf(),
        problem,
    };
    const CERT: &str = "service.tls_cert (--tls-cert)";
    const KEY: &str = "service.tls_key (--tls-key)";
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| err(CERT, cert, e.to_string()))?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| err(KEY, key, e.to_string()))?;
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
        .map_err(|e| err(CERT, cert, e.to_string()))?;
    Ok(Arc::new(server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_proxy_of_the_configuration() {
        let mut c = Config::default();
        c.proxy.allow = vec!["acme.test:14000".into()];
        c.proxy.resolve = vec!["acme.test=127.0.0.1".into()];
        c.proxy.auth_token = Some("s3cret".into());
        c.proxy.max_tunnels = 7;
        let pc = config(&c).unwrap();
        assert_eq!(pc.allow.rules().len(), 1);
        assert_eq!(pc.auth_token.as_deref(), Some("s3cret"));
        assert_eq!(pc.max_tunnels, 7);
        assert_eq!(pc.resolve["acme.test"], vec![std::net::IpAddr::from([127, 0, 0, 1])]);
        assert!(pc.tls.is_none() && pc.service.is_none() && pc.on_agent.is_none());
    }

    fn error(c: &Config) -> String {
        config(c).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn rejects_limits_tokens_and_certificates_it_cannot_use() {
        let mut c = Config::default();
        c.proxy.max_tunnels = 0;
        assert!(error(&c).contains("max tunnels"));
        let mut c = Config::default();
        c.proxy.auth_token_file = Some("/nonexistent/proxy.token".into());
        assert!(error(&c).contains("proxy.auth_token_file"));
        let mut c = Config::default();
        c.service.tls_cert = Some("/nonexistent/cert.pem".into());
        c.service.tls_key = Some("/nonexistent/key.pem".into());
        let e = error(&c);
        assert!(e.contains("--tls-cert") && e.contains("/nonexistent/cert.pem"), "{e}");
    }
}
