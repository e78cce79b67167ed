//! `sensor status`: what a running daemon is doing, asked over its service
//! port (`GET /api/v1/status`), printed for a person or as JSON.
//!
//! Plain HTTP on purpose: the service port tells TLS from plain by the first
//! byte, so this works whether or not the daemon has a service certificate,
//! and the default listen address is loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use netsensor::output::human;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::UsageError;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The daemon's service address [default: the config's service.listen, else 127.0.0.1:48999].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Configuration file to read service.listen from [default: /etc/sensor/sensor.toml when it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// text or json.
    #[arg(short = 'o', long = "output", default_value = "text")]
    pub format: String,
    /// A read token for the status route [default: the config's first intake token].
    #[arg(long, value_name = "TOKEN", env = "SENSOR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

/// The configuration file to read: `config`, else the default file when it exists.
fn config_path(config: Option<&std::path::Path>) -> Option<PathBuf> {
    config
        .map(std::path::Path::to_path_buf)
        .or_else(|| Some(PathBuf::from(netsensor::appliance::config::DEFAULT_PATH)).filter(|p| p.exists()))
}

/// The token `sensor status` sends: the configuration's first intake token
/// (they may read the status), from the file or its `tokens_file`.
pub fn config_token(config: Option<&std::path::Path>) -> Option<String> {
    let c = netsensor::appliance::config::load(&config_path(config)?).ok()?;
    if let Some(t) = c.intake.tokens.values().next() {
        return Some(t.clone());
    }
    let file = c.intake.tokens_file.as_ref()?;
    netsensor::appliance::config::read_tokens(file)
        .ok()?
        .into_values()
        .next()
}

/// The daemon's service address: `listen`, else the configuration's
/// `service.listen` (`config`, else the default file when it exists), else
/// loopback port 48999.
pub fn target(listen: Option<&str>, config: Option<&std::path::Path>) -> anyhow::Result<SocketAddr> {
    if let Some(l) = listen {
        return l
            .parse()
            .map_err(|_| usage(format!("--listen `{l}`: write ADDR:PORT, e.g. 127.0.0.1:48999")));
    }
    let listen = match config_path(config) {
        Some(p) => netsensor::appliance::config::load(&p).map_err(usage)?.service.listen,
        None => None,
    };
    let mut addr = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], netsensor::serve::proxy::DEFAULT_PORT)));
    // A wildcard listen address is reached on loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Ok(addr)
}

/// One GET on the service port; the body of a 200.
pub async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let (status, head, body) = call(addr, "GET", path, token).await?;
    if status == 401 {
        anyhow::bail!("{addr} answered {head}: give a read token (--token, or an intake token in the configuration)");
    }
    if status != 200 {
        anyhow::bail!("{addr} answered {head}");
    }
    Ok(body)
}

/// One request on the service port (no body): the status, the status
/// line and the body.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, String, Vec<u8>)> {
    let auth = token
        .filter(|t| !t.contains(['\r', '\n']))
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut answer = Vec::new();
        (&mut s).take(16 * 1024 * 1024).read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {addr} within 10 s"))?
        .with_context(|| {
            format!("cannot reach the sensor's service port at {addr} (is `sensor run` running with --listen?)")
        })?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("{addr} did not answer in HTTP"))?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let line = head.lines().next().unwrap_or("").to_string();
    Ok((status, line, answer[split + 4..].to_vec()))
}

pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    if !matches!(args.format.as_str(), "text" | "json") {
        return Err(usage(format!("-o `{}`: use text or json", args.format)));
    }
    let addr = target(args.listen.as_deref(), args.config.as_deref())?;
    let token = args.token.clone().or_else(|| config_token(args.config.as_deref()));
    let body = get(addr, "/api/v1/status", token.as_deref()).await?;
    let v: Value = serde_json::from_slice(&body).context("the status is not JSON")?;
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let s = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| "-".into());
    println!(
        "sensor {} ({}) up since {}, serving {}",
        s(&v["sensor"]["version"]),
        s(&v["sensor"]["id"]),
        s(&v["started_at"]),
        s(&v["listen"])
    );
    println!("state {}", s(&v["state_dir"]));
    if let Some(inv) = v["inventory"].as_object() {
        let parts: Vec<String> = inv.iter().map(|(k, n)| format!("{n} {k}")).collect();
        println!(
            "inventory: {}",
            if parts.is_empty() {
                "empty".into()
            } else {
                parts.join(", ")
            }
        );
    }
    let profiles = v["profiles"].as_array().cloned().unwrap_or_default();
    println!("{} profile(s), {} running", profiles.len(), v["scans_running"]);
    for p in profiles {
        for line in profile_lines(&p) {
            println!("{line}");
        }
    }
    print_alerts(&v["alerts"]);
    Ok(())
}

/// The alerts block: notices sent, failed (parked) and waiting, by channel.
fn print_alerts(a: &Value) {
    if a.is_null() {
        return;
    }
    println!();
    println!(
        "alerts: {} sent, {} failed, {} waiting",
        a["sent"], a["failed"], a["waiting"]
    );
    for (name, c) in a["channels"].as_object().into_iter().flatten() {
        println!(
            "  {name:<20} sent {:<6} failed {:<4} waiting {:<4} (retrying {}){}",
            c["sent"],
            c["failed"],
            c["waiting"],
            c["retrying"],
            c["last_error"]
                .as_str()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default()
        );
    }
}

/// A profile's lines in `sensor status`: its state and last run; how far
/// a run going now has got; why an idle one waits.
fn profile_lines(p: &Value) -> Vec<String> {
    let s = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| "-".into());
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let running = p["running"].as_bool() == Some(true);
    let mut lines = vec![format!(
        "  {:<20} {:<8} runs {:<4} last {} {} ({}, {}), next {}  {}",
        s(&p["name"]),
        if running { "RUNNING" } else { "idle" },
        n(&p["runs"]),
        s(&p["last_started"]),
        s(&p["last_outcome"]),
        human::plural(n(&p["last_endpoints"]), "endpoint"),
        human::plural(n(&p["last_changes"]), "change"),
        s(&p["next_run"]),
        s(&p["summary"])
    )];
    let pr = &p["progress"];
    if running && pr.is_object() {
        let (probes, total) = (n(&pr["probes"]), n(&pr["total"]));
        let percent = (probes * 100).checked_div(total).unwrap_or(0);
        let left = match pr["eta_seconds"].as_u64() {
            Some(eta) => format!("about {} left", human::duration(Duration::from_secs(eta))),
            None if n(&pr["examining"]) > 0 => "all probes done; examining the rest".to_string(),
            None => "finishing".to_string(),
        };
        lines.push(format!(
            "  {:<20} probes {}/{} ({percent}%), {} open, {} examined, {} examining, {}, {} so far, {left}",
            "",
            human::count(probes),
            human::count(total),
            human::count(n(&pr["open"])),
            human::count(n(&pr["examined"])),
            human::count(n(&pr["examining"])),
            human::rate(pr["rate"].as_f64().unwrap_or(0.0)),
            human::duration(Duration::from_secs(n(&pr["elapsed_seconds"]))),
        ));
    }
    if !running && let Some(why) = p["waiting"].as_str() {
        lines.push(format!("  {:<20} waits: {why}", ""));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_profile_shows_its_progress_and_an_idle_one_why_it_waits() {
        let running = serde_json::json!({
            "name": "lab", "running": true, "runs": 2, "last_started": "2026-11-24T12:00:00Z",
            "last_outcome": "finished", "last_endpoints": 1, "last_changes": 0, "next_run": null,
            "summary": "`lab`: 1 target(s), ports 443, every 6h",
            "progress": {"probes": 1234, "total": 5000, "open": 3, "examined": 2, "examining": 1,
                         "rate": 450.4, "elapsed_seconds": 3, "eta_seconds": 9}
        });
        assert_eq!(
            profile_lines(&running),
            [
                "  lab                  RUNNING  runs 2    last 2026-11-24T12:00:00Z finished (1 endpoint, 0 changes), next -  `lab`: 1 target(s), ports 443, every 6h",
                "                       probes 1,234/5,000 (24%), 3 open, 2 examined, 1 examining, 450/s, 3s so far, about 9s left",
            ]
        );
        let idle = serde_json::json!({
            "name": "night", "running": false, "runs": 0, "last_endpoints": 0, "last_changes": 0,
            "next_run": "2026-11-24T22:00:00Z", "summary": "`night`: every 6h within 22:00-06:00 UTC",
            "waiting": "a run is due but its window 22:00-06:00 UTC is closed"
        });
        let lines = profile_lines(&idle);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("idle     runs 0    last - - (0 endpoints, 0 changes), next 2026-11-24T22:00:00Z"));
        assert_eq!(
            lines[1],
            "                       waits: a run is due but its window 22:00-06:00 UTC is closed"
        );
    }
}
