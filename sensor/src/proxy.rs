//! `sensor proxy`: the agent proxy alone, configured from flags.
//!
//! For operators who only need the proxy and for tests; the daemon serves the
//! same engine (`netsensor::serve::proxy`) from its configuration. Every flag is
//! checked before the port is bound, so a typo never leaves a half-started
//! service behind.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use netsensor::serve::proxy::{self, Allowlist, Counters, ProxyConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::cli::UsageError;

#[derive(Args, Debug, Clone)]
pub struct ProxyArgs {
    /// Address and port to serve agents on (the appliance uses port 48999).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: String,
    /// Allowed destination: HOST:PORT, *.DOMAIN:PORT or IP:PORT (repeatable, comma-separated).
    #[arg(long, value_name = "HOST:PORT", value_delimiter = ',', required = true)]
    pub allow: Vec<String>,
    /// Require `Proxy-Authorization: Bearer T` (or Basic with password T) from agents.
    #[arg(long, value_name = "T", env = "SENSOR_PROXY_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Also forward plain-HTTP requests (`GET http://host/…`) to allowlisted destinations (off by default: 405).
    #[arg(long)]
    pub forward_http: bool,
    /// Answer NAME with ADDR before asking DNS, like curl's --resolve (repeatable).
    #[arg(long, value_name = "NAME=ADDR")]
    pub resolve: Vec<String>,
    /// Close a tunnel after this many seconds with no byte either way.
    #[arg(long, value_name = "S", default_value_t = 300)]
    pub idle_timeout: u64,
    /// Give up connecting to a destination after this many seconds.
    #[arg(long, value_name = "S", default_value_t = 10)]
    pub connect_timeout: u64,
    /// Tunnels open at once (all agents).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_tunnels: usize,
    /// Tunnels open at once from one agent address.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_tunnels_per_agent: usize,
    /// Service certificate chain (PEM): agents may then use https:// proxy URLs on the same port.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

fn usage(flag: &str, e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(format!("{flag}: {e}")).into()
}

/// Turns the flags into a validated configuration, reading the certificate files.
pub fn prepare(args: &ProxyArgs) -> anyhow::Result<(SocketAddr, ProxyConfig)> {
    let listen: SocketAddr = args.listen.parse().map_err(|e| usage("--listen", e))?;
    let mut config = ProxyConfig {
        allow: Allowlist::parse(&args.allow).map_err(|e| usage("--allow", e))?,
        auth_token: args.auth_token.clone(),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        connect_timeout: Duration::from_secs(args.connect_timeout),
        max_tunnels: args.max_tunnels,
        max_tunnels_per_agent: args.max_tunnels_per_agent,
        forward_http: args.forward_http,
        ..ProxyConfig::default()
    };
    for entry in &args.resolve {
        config.add_resolve(entry).map_err(|e| usage("--resolve", e))?;
    }
    config.validate().map_err(|e| usage("proxy options", e))?;
    if args.idle_timeout < 120 {
        // ACME clients keep one tunnel for the whole exchange; certbot does not retry a dropped POST.
        tracing::warn!(
            idle_timeout = args.idle_timeout,
            "idle timeouts under 120 s break some ACME clients"
        );
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(tls_config(cert, key, "--tls-cert", "--tls-key")?);
    }
    Ok((listen, config))
}

/// The service certificate and key (PEM) as a rustls server configuration;
/// errors name the flag or key they came from.
pub(crate) fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
    cert_field: &str,
    key_field: &str,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| usage(cert_field, format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| usage(key_field, format!("{}: {e}", key.display())))?;
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| usage(cert_field, e))?;
    Ok(Arc::new(server))
}

/// Bind with a deep accept queue: agents arrive in bursts (a fleet renewing at
/// once), and with the usual 128 the kernel drops SYNs and clients wait out a
/// one-second retransmission (measured by benches/proxy.py).
pub(crate) fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let (listen, config) = prepare(&args)?;
    let listener = bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr().context("listener address")?;
    println!("sensor proxy: listening on {local}");
    tracing::info!(listen = %local, rules = config.allow.rules().len(), "proxy started");
    let counters = Arc::new(Counters::default());
    proxy::run(listener, config, counters.clone(), shutdown_signal())
        .await
        .context("proxy")?;
    let s = counters.snapshot();
    tracing::info!(
        tunnels_total = s.tunnels_total,
        bytes_up = s.bytes_up,
        bytes_down = s.bytes_down,
        "proxy stopped"
    );
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
