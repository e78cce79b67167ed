//! `sensor grade HOST[:PORT]`: one endpoint in depth.
//!
//! A port that answers but not in TLS has nothing to grade: that is said in
//! words (the scan already knows what the port speaks) and the exit code is
//! not 0, so a script grading a list notices.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use netsensor::discover::connect::Progress;
use netsensor::discover::targets::{self, PortSet, ScanPlan, TargetSet, TargetSpec};
use netsensor::model::record::Category;
use netsensor::output::{self, Format};
use netsensor::probe::starttls::dialogue::StarttlsMode;
use netsensor::scan::{self, ScanOptions};

use crate::cli::UsageError;

#[derive(Args, Debug)]
pub struct GradeArgs {
    /// The endpoint: `127.0.0.1:8443`, `[::1]:443`, `mail.example:465` (port 443 when omitted).
    pub endpoint: String,
    /// Output format: text (the in-depth view), json (the record), or as `sensor scan` prints: table, ndjson, csv.
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
    /// Time budget of the endpoint's examination (enumeration, `GET /`, active checks, extras), e.g.
    /// `60s`, `500ms`, `5m` (at most 1h), or `none`; what is not finished then is shown as
    /// `not probed: budget`.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub endpoint_budget: String,
    /// STARTTLS: `auto` (by port, then by banner), a protocol for every port (smtp, imap, pop3, ftp,
    /// ldap, postgres, xmpp, xmpp-server, mysql, rdp), or `none` (implicit TLS only).
    #[arg(long, default_value = "auto", value_name = "auto|PROTO|none")]
    pub starttls: StarttlsMode,
    /// Trust this PEM bundle of private CAs too when validating the chain (repeatable).
    #[arg(long = "ca-bundle", value_name = "FILE")]
    pub ca_bundles: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub revocation: crate::cmd::scan::RevocationFlags,
}

pub async fn run(args: GradeArgs) -> anyhow::Result<()> {
    let usage = |e: String| anyhow::Error::from(UsageError(e));
    let format = match args.format.as_str() {
        "text" => None,
        other => Some(other.parse::<Format>().map_err(|_| {
            usage(format!(
                "unknown output format `{other}`: use text, json, table, ndjson or csv"
            ))
        })?),
    };
    if args.per_host == 0 || args.timeout == 0 {
        return Err(usage("--per-host and --timeout must be above 0".into()));
    }
    let (spec, port) = targets::parse_endpoint(&args.endpoint).map_err(|e| usage(e.to_string()))?;
    if !port_given(&args.endpoint) {
        eprintln!("sensor: no port given: grading {}:{port}", args.endpoint);
    }
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
    options.portscan.rate = netsensor::discover::pacing::Rate::Unlimited;
    options.handshake_timeout = Duration::from_millis(args.timeout);
    options.enumerate = true;
    options.per_host = args.per_host;
    options.vulnerabilities = !args.no_vulns;
    options.starttls = args.starttls;
    options.endpoint_budget = crate::cmd::scan::endpoint_budget(&args.endpoint_budget)?;
    // Loaded beside the connect and the enumeration; grading waits for it.
    options.trust_later = Some(crate::cmd::scan::trust_later(&args.ca_bundles)?);
    options.revocation = args.revocation.checker()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let job = tokio::spawn(scan::run(Arc::new(plan), 0, options, Arc::new(Progress::default()), tx));
    let mut records = Vec::new();
    while let Some(r) = rx.recv().await {
        records.push(r);
    }
    job.await.context("grade task")??;
    let record = records.into_iter().next().context("the probe produced no result")?;
    match format {
        None => print!("{}", netsensor::output::detail(&record)),
        // One object, as before the other formats came: scripts read it.
        Some(Format::Json) => println!("{}", serde_json::to_string_pretty(&record)?),
        Some(f) => {
            let options = crate::print::options(true, netsensor::output::expiry::SOON_DAYS);
            let mut sink = output::sink_with(f, std::io::stdout().lock(), None, options);
            sink.record(&record)?;
            sink.finish()?;
        }
    }
    let at = format!("{}:{}", record.address, record.port);
    match record.category {
        Category::Closed | Category::Filtered => {
            anyhow::bail!("{at} is {} ({})", record.category.as_str(), record.port_reason)
        }
        Category::Unsecured => anyhow::bail!("{at}: {}; nothing to grade", not_tls(&record)),
        _ => Ok(()),
    }
}

/// Why an unsecured endpoint has no grade, in words.
fn not_tls(r: &netsensor::model::record::EndpointRecord) -> String {
    match r.plain.as_ref().map(|p| p.name.as_str()) {
        Some("unknown") | None => "this port does not speak TLS (it did not answer a TLS ClientHello)".to_string(),
        Some(service) => format!("this port speaks plaintext {}, not TLS", service.to_ascii_uppercase()),
    }
}

/// Whether the endpoint names a port (`host:443`, `[::1]:443`) rather than
/// leaving the default (`host`, `::1`, `[::1]`).
fn port_given(endpoint: &str) -> bool {
    match endpoint.strip_prefix('[') {
        Some(rest) => rest.split_once(']').is_some_and(|(_, tail)| tail.starts_with(':')),
        None => endpoint.matches(':').count() == 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_port_is_noticed() {
        for (e, given) in [
            ("example.test", false),
            ("example.test:8443", true),
            ("127.0.0.1", false),
            ("::1", false),
            ("[::1]", false),
            ("[::1]:443", true),
        ] {
            assert_eq!(port_given(e), given, "{e}");
        }
    }
}
