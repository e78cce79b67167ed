//! `sensor proxy`: the agent proxy alone, configured from flags; and the
//! proxy's flags, shared with `sensor run`.
//!
//! For operators who only need the proxy and for tests; the daemon serves the
//! same engine (`netsensor::serve::proxy`), built by the same function
//! (`netsensor::appliance::proxy::config`) from the same flags. Every flag is
//! checked before the port is bound, so a typo never leaves a half-started
//! service behind.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use netsensor::appliance::config::Config;
use netsensor::appliance::settings::ProxyOverrides;
use netsensor::serve::proxy::{Counters, ProxyConfig};

use crate::cli::usage;

/// The proxy's flags, flattened into `sensor proxy` and `sensor run` (where
/// they override the configuration's `[proxy]`).
#[derive(Args, Debug, Clone)]
pub struct ProxyFlags {
    /// Allowed destination: HOST:PORT, *.DOMAIN:PORT or IP:PORT (repeatable, comma-separated; `sensor run` adds them to the config's).
    #[arg(long, value_name = "HOST:PORT", value_delimiter = ',')]
    pub allow: Vec<String>,
    /// Require `Proxy-Authorization: Bearer T` (or Basic with password T) from agents (`--auth-token` is deprecated).
    #[arg(
        long = "proxy-auth-token",
        alias = "auth-token",
        value_name = "T",
        env = "SENSOR_PROXY_TOKEN",
        hide_env_values = true
    )]
    pub auth_token: Option<String>,
    /// Also forward plain-HTTP requests (`GET http://host/…`) to allowlisted destinations (off by default: 405).
    #[arg(long)]
    pub forward_http: bool,
    /// Answer NAME with ADDR before asking DNS, like curl's --resolve (repeatable).
    #[arg(long, value_name = "NAME=ADDR")]
    pub resolve: Vec<String>,
    /// Close a tunnel after this many seconds with no byte either way [default: 300].
    #[arg(long, value_name = "S")]
    pub idle_timeout: Option<u64>,
    /// Give up connecting to a destination after this many seconds [default: 10].
    #[arg(long, value_name = "S")]
    pub connect_timeout: Option<u64>,
    /// Tunnels open at once (all agents) [default: 1024].
    #[arg(long, value_name = "N")]
    pub max_tunnels: Option<usize>,
    /// Tunnels open at once from one agent address [default: 256].
    #[arg(long, value_name = "N")]
    pub max_tunnels_per_agent: Option<usize>,
    /// Service certificate chain (PEM): TLS on the service port (agents may use https:// proxy URLs), told apart from plain by the first byte.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ProxyFlags {
    pub fn overrides(&self) -> ProxyOverrides {
        ProxyOverrides {
            allow: self.allow.clone(),
            auth_token: self.auth_token.clone(),
            forward_http: self.forward_http,
            resolve: self.resolve.clone(),
            idle_timeout: self.idle_timeout.map(Duration::from_secs),
            connect_timeout: self.connect_timeout.map(Duration::from_secs),
            max_tunnels: self.max_tunnels,
            max_tunnels_per_agent: self.max_tunnels_per_agent,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
        }
    }
}

/// `--allow` is required here: a proxy alone with nothing allowed serves nothing.
#[derive(Args, Debug, Clone)]
#[command(mut_arg("allow", |a| a.required(true)))]
pub struct ProxyArgs {
    /// Address and port to serve agents on (the appliance uses port 48999).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: String,
    #[command(flatten)]
    pub proxy: ProxyFlags,
}

/// Turns the flags into a validated configuration, reading the certificate files.
pub fn prepare(args: &ProxyArgs) -> anyhow::Result<(SocketAddr, ProxyConfig)> {
    let listen: SocketAddr = args.listen.parse().map_err(|e| usage(format!("--listen: {e}")))?;
    let mut config = Config::default();
    args.proxy.overrides().apply(&mut config).map_err(usage)?;
    let config = netsensor::appliance::proxy::config(&config).map_err(usage)?;
    Ok((listen, config))
}

pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let (listen, config) = prepare(&args)?;
    let listener = netsensor::serve::listener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr().context("listener address")?;
    println!("sensor proxy: listening on {local}");
    tracing::info!(listen = %local, rules = config.allow.rules().len(), "proxy started");
    let counters = Arc::new(Counters::default());
    netsensor::serve::listener::run(listener, config, counters.clone(), shutdown_signal())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> ProxyArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            a: ProxyArgs,
        }
        Wrap::try_parse_from(std::iter::once("proxy").chain(line.iter().copied()))
            .unwrap()
            .a
    }

    #[test]
    fn flags_become_the_proxy_of_the_shared_builder() {
        let a = args(&[
            "--listen",
            "127.0.0.1:0",
            "--allow",
            "a.example:443,b.example:443",
            "--resolve",
            "a.example=127.0.0.1",
            "--idle-timeout",
            "600",
            "--max-tunnels",
            "5",
        ]);
        let (_, pc) = prepare(&a).unwrap();
        assert_eq!(pc.allow.rules().len(), 2);
        assert_eq!(pc.idle_timeout, Duration::from_secs(600));
        assert_eq!(pc.max_tunnels, 5);
        assert_eq!(pc.max_tunnels_per_agent, 256, "the default");
    }

    #[test]
    fn errors_name_the_flag() {
        for (line, name) in [
            (&["--listen", "nowhere", "--allow", "a.example:443"][..], "--listen"),
            (&["--listen", "127.0.0.1:0", "--allow", "a.example"][..], "--allow"),
            (
                &["--listen", "127.0.0.1:0", "--allow", "a.example:443", "--resolve", "x"][..],
                "--resolve",
            ),
        ] {
            let Err(e) = prepare(&args(line)) else {
                panic!("{line:?} accepted")
            };
            assert!(
                e.downcast_ref::<crate::cli::UsageError>().is_some(),
                "{line:?}: exit code 2"
            );
            assert!(e.to_string().starts_with(name), "{line:?}: {e}");
        }
    }
}
