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
}

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

fn target(args: &StatusArgs) -> anyhow::Result<SocketAddr> {
    if let Some(l) = &args.listen {
        return l
            .parse()
            .map_err(|_| usage(format!("--listen `{l}`: write ADDR:PORT, e.g. 127.0.0.1:48999")));
    }
    let path = args
        .config
        .clone()
        .or_else(|| Some(PathBuf::from(netsensor::appliance::config::DEFAULT_PATH)).filter(|p| p.exists()));
    let listen = match path {
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
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<Vec<u8>> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
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
    let status = head.split(' ').nth(1).unwrap_or("");
    if status != "200" {
        anyhow::bail!("{addr} answered {}", head.lines().next().unwrap_or(""));
    }
    Ok(answer[split + 4..].to_vec())
}

pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    if !matches!(args.format.as_str(), "text" | "json") {
        return Err(usage(format!("-o `{}`: use text or json", args.format)));
    }
    let addr = target(&args)?;
    let body = get(addr, "/api/v1/status").await?;
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
        println!(
            "  {:<20} {:<8} runs {:<4} last {} {} ({} endpoints, {} changes), next {}  {}",
            s(&p["name"]),
            if p["running"].as_bool() == Some(true) {
                "RUNNING"
            } else {
                "idle"
            },
            p["runs"],
            s(&p["last_started"]),
            s(&p["last_outcome"]),
            p["last_endpoints"],
            p["last_changes"],
            s(&p["next_run"]),
            s(&p["summary"])
        );
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
