//! `sensor demo`: something real to scan on a machine with nothing running.
//!
//! Starts three servers on loopback addresses of their own (127.0.2.1–3) —
//! TLS 1.3 with an ECDSA chain, TLS 1.2 only with an RSA chain, and plain
//! HTTP — and scans 127.0.2.0/29 on ports 8080 and 8443, the targets of
//! `scan-profiles/loopback-demo.toml`. With `--serve` the servers stay up so
//! other tools can be pointed at them, and the demo's CA certificates are
//! written to a file (its path printed) for `sensor scan --ca-bundle`: only
//! the demo trusts its private CAs, so a scan without them grades T.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;
use netsensor::grade::TrustStore;
use netsensor::grade::trust::StoreKind;
use testbed::{self, KeyKind};

use crate::cmd::scan::{self, ScanArgs};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output format: table, json, ndjson, csv.
    #[arg(short = 'o', long = "output", default_value = "table")]
    pub format: String,
    /// Keep the demo servers running after the scan, until Ctrl-C, and write the demo CA for --ca-bundle.
    #[arg(long)]
    pub serve: bool,
    /// Where --serve writes the demo CA certificates (PEM) [default: sensor-demo-ca.pem in the temporary directory].
    #[arg(long, value_name = "FILE", requires = "serve")]
    pub ca_out: Option<std::path::PathBuf>,
}

pub const TLS13: &str = "127.0.2.1:8443";
pub const TLS12: &str = "127.0.2.2:8443";
pub const HTTP: &str = "127.0.2.3:8080";

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let bind = |a: &'static str| async move {
        let addr: SocketAddr = a.parse().context("demo address")?;
        testbed::bind_loopback(addr)
            .await
            .with_context(|| format!("cannot listen on {a} for the demo (is another demo running?)"))
    };
    let modern = testbed::issue_chain("demo modern", &["demo-modern.test"], KeyKind::EcdsaP256)
        .map_err(|e| anyhow::anyhow!("cannot generate demo certificates: {e}"))?;
    let legacy = testbed::issue_chain("demo tls12", &["demo-tls12.test"], KeyKind::Rsa2048)
        .map_err(|e| anyhow::anyhow!("cannot generate demo certificates: {e}"))?;
    let (cfg13, _) = testbed::rustls_config(modern.presented(), &modern.leaf_key, &[&rustls::version::TLS13])
        .map_err(|e| anyhow::anyhow!("demo TLS config: {e}"))?;
    let (cfg12, _) = testbed::rustls_config(legacy.presented(), &legacy.leaf_key, &[&rustls::version::TLS12])
        .map_err(|e| anyhow::anyhow!("demo TLS config: {e}"))?;
    let servers = [
        testbed::serve_tls(bind(TLS13).await?, cfg13),
        testbed::serve_tls(bind(TLS12).await?, cfg12),
        testbed::serve_http(bind(HTTP).await?),
    ];
    eprintln!("demo servers: {TLS13} (TLS 1.3), {TLS12} (TLS 1.2, RSA), {HTTP} (plain HTTP)");
    eprintln!("scanning 127.0.2.0/29 ports 8080,8443 …");
    let scan_args = ScanArgs {
        targets: vec!["127.0.2.0/29".into()],
        ports: "8080,8443".into(),
        format: args.format.clone(),
        seed: Some(1),
        ..default_scan_args()
    };
    let mut prepared = scan::prepare(&scan_args)?;
    // Trust the demo's private CAs, as `--ca-bundle` would for an enterprise PKI,
    // so the grades show the servers' TLS rather than "unknown issuer".
    let mut trust = scan::load_trust(&[])?;
    for (name, root) in [("demo modern CA", &modern.root), ("demo tls12 CA", &legacy.root)] {
        trust.push(
            TrustStore::from_der(name, StoreKind::Memory, std::slice::from_ref(root))
                .map_err(|e| anyhow::anyhow!("demo trust store: {e}"))?,
        );
    }
    prepared.options.trust = std::sync::Arc::new(trust);
    prepared.options.trust_later = None;
    if args.serve {
        prepared.kept = Some(Vec::new());
    }
    let records = scan::run_scan(prepared, Box::new(std::io::stdout()), true).await?;
    let mut console = None;
    if args.serve {
        console = Some(serve_console(&records).await?);
        let ca = args
            .ca_out
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("sensor-demo-ca.pem"));
        std::fs::write(&ca, format!("{}{}", modern.root_pem, legacy.root_pem))
            .with_context(|| format!("cannot write the demo CA to {}", ca.display()))?;
        eprintln!("demo CA: {}", ca.display());
        eprintln!(
            "demo servers stay up; Ctrl-C to stop. Only the demo trusts its CA: scan them with\n  \
             sensor scan 127.0.2.0/29 -p 8080,8443 --ca-bundle {}",
            ca.display()
        );
        let waited = tokio::signal::ctrl_c().await.context("waiting for Ctrl-C");
        // The CA of servers that are gone is of no use to anyone.
        let _ = std::fs::remove_file(&ca);
        waited?;
    }
    if let Some(task) = console {
        task.abort();
    }
    for s in servers {
        s.abort();
    }
    Ok(())
}

/// Where `sensor demo --serve` serves its console.
pub const CONSOLE: &str = "127.0.2.4:48999";

/// The demo's scan in an inventory in memory, and the console over it on
/// [`CONSOLE`] with a fresh token, printed with the URL.
async fn serve_console(
    records: &[netsensor::model::record::EndpointRecord],
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use std::sync::{Arc, Mutex};

    use netsensor::console::web::{self, Console, Stores, Tokens};
    use netsensor::store::inventory::{DiffPolicy, Inventory, Run};

    // In memory: the demo leaves nothing behind.
    let mut inv = Inventory::open(std::path::Path::new(":memory:"))?;
    let now = netsensor::model::timestamp::rfc3339(time::OffsetDateTime::now_utc());
    inv.record_run(
        &Run {
            profile: "loopback-demo",
            started_at: &now,
            finished_at: &now,
            records,
            tags: &["demo".to_string()],
            complete: true,
        },
        &DiffPolicy::default(),
    )?;
    let inv = Arc::new(Mutex::new(inv));
    let token = netsensor::model::ids::random_id();
    let console = Arc::new(Console::new(
        Arc::new(Stores {
            endpoints: inv.clone(),
            own: inv,
        }),
        Tokens {
            admin: vec![token.clone()],
            read: Vec::new(),
        },
    ));
    let addr: SocketAddr = CONSOLE.parse().context("console address")?;
    let listener = testbed::bind_loopback(addr)
        .await
        .with_context(|| format!("cannot listen on {CONSOLE} for the demo's console"))?;
    let task = tokio::spawn(async move {
        if let Err(e) = web::serve(listener, console, std::future::pending()).await {
            tracing::warn!("demo console: {e}");
        }
    });
    eprintln!("console: http://{CONSOLE}/  (log in with the token {token})");
    Ok(task)
}

fn default_scan_args() -> ScanArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        a: ScanArgs,
    }
    Wrap::parse_from(["sensor"]).a
}
