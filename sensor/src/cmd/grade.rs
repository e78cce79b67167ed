//! `sensor grade HOST[:PORT]`: one endpoint in depth.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use netsensor::discover::connect::Progress;
use netsensor::discover::targets::{self, PortSet, ScanPlan, TargetSet, TargetSpec};
use netsensor::model::record::Category;
use netsensor::probe::starttls::dialogue::StarttlsMode;
use netsensor::scan::{self, ScanOptions};

use crate::cli::UsageError;

#[derive(Args, Debug)]
pub struct GradeArgs {
    /// The endpoint: `127.0.0.1:8443`, `[::1]:443`, `mail.example:465` (port 443 when omitted).
    pub endpoint: String,
    /// Output format: text or json.
    #[arg(short = 'o', long = "output", default_value = "text")]
    pub format: String,
    /// Deadline for each handshake, in milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout: u64,
    /// Connections to the endpoint at once during enumeration.
    #[arg(long, default_value_t = 4)]
    pub per_host: usize,
    /// Skip the active vulnerability checks (Heartbleed, CCS injection, ROBOT, Ticketbleed, renegotiation).
    #[arg(long)]
    pub no_vulns: bool,
    /// STARTTLS: `auto` (by port, then by banner), a protocol for every port (smtp, imap, pop3, ftp,
    /// ldap, postgres, xmpp, xmpp-server, mysql, rdp), or `none` (implicit TLS only).
    #[arg(long, default_value = "auto", value_name = "auto|PROTO|none")]
    pub starttls: StarttlsMode,
    /// Trust this PEM bundle of private CAs too when validating the chain (repeatable).
    #[arg(long = "ca-bundle", value_name = "FILE")]
    pub ca_bundles: Vec<std::path::PathBuf>,
}

pub async fn run(args: GradeArgs) -> anyhow::Result<()> {
    let usage = |e: String| anyhow::Error::from(UsageError(e));
    let json = match args.format.as_str() {
        "json" => true,
        "text" => false,
        other => return Err(usage(format!("unknown output format `{other}`: use text or json"))),
    };
    if args.per_host == 0 || args.timeout == 0 {
        return Err(usage("--per-host and --timeout must be above 0".into()));
    }
    let (spec, port) = targets::parse_endpoint(&args.endpoint).map_err(|e| usage(e.to_string()))?;
    let set = TargetSet::new(std::slice::from_ref(&spec), &[], scan::resolve).map_err(|e| usage(e.to_string()))?;
    // One address: the first the name resolves to, as testssl.sh and sslyze do.
    let (ip, host) = set.get(0).context("the target has no address")?;
    let single = match host {
        Some(h) => TargetSpec::Host(h.to_string()),
        None => ip
            .to_string()
            .parse()
            .map_err(|e: targets::TargetError| usage(e.to_string()))?,
    };
    let single = TargetSet::new(&[single], &[], |_| Ok(vec![ip])).map_err(|e| usage(e.to_string()))?;
    let ports: PortSet = port
        .to_string()
        .parse()
        .map_err(|e: targets::TargetError| usage(e.to_string()))?;
    let plan = ScanPlan::new(single, ports, 1).map_err(|e| usage(e.to_string()))?;
    let mut options = ScanOptions {
        show_closed: true,
        ..ScanOptions::default()
    };
    options.portscan.rate = 0;
    options.handshake_timeout = Duration::from_millis(args.timeout);
    options.enumerate = true;
    options.per_host = args.per_host;
    options.vulnerabilities = !args.no_vulns;
    options.starttls = args.starttls;
    options.trust = Arc::new(crate::cmd::scan::load_trust(&args.ca_bundles)?);
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let job = tokio::spawn(scan::run(Arc::new(plan), 0, options, Arc::new(Progress::default()), tx));
    let mut records = Vec::new();
    while let Some(r) = rx.recv().await {
        records.push(r);
    }
    job.await.context("grade task")??;
    let record = records.into_iter().next().context("the probe produced no result")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print!("{}", netsensor::output::detail(&record));
    }
    if matches!(record.category, Category::Closed | Category::Filtered) {
        anyhow::bail!(
            "{}:{} is {} ({})",
            record.address,
            record.port,
            record.category.as_str(),
            record.port_reason
        );
    }
    Ok(())
}
