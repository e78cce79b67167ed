//! Servers and helpers shared by the integration tests.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use netsensor::discover::connect::Progress;
use netsensor::discover::targets::{PortSet, ScanPlan, TargetSet, TargetSpec};
use netsensor::model::record::EndpointRecord;
use netsensor::scan::{self, ScanOptions};
use testbed::Chain;

/// A child process killed when the test lets go of it.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Drop for Proc {
    /// SIGTERM first, so servers with workers (nginx) take them down too;
    /// SIGKILL if that has not worked within two seconds.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..40 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (for servers that cannot bind port 0).
pub fn free_port(ip: IpAddr) -> u16 {
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// Wait (bounded) until something accepts connections on `addr`.
pub async fn wait_listening(addr: SocketAddr, proc_: &mut Proc) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = proc_.child.try_wait() {
            panic!("{} exited before listening on {addr}: {status}", proc_.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} did not listen on {addr} within 5 s", proc_.name);
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

/// `openssl s_server` presenting `chain` on 127.0.0.1, with extra flags
/// (`-tls1_2`, `-tls1_3`, `-cipher …`).
pub async fn openssl_server(chain: &Chain, dir: &Path, extra: &[&str]) -> (Proc, SocketAddr) {
    let cert = write(dir, "leaf.pem", &chain.leaf_pem);
    let key = write(dir, "leaf.key", &chain.leaf_key_pem);
    let inter = write(dir, "inter.pem", &chain.intermediate_pem);
    let addr = SocketAddr::new("127.0.0.1".parse().unwrap(), free_port("127.0.0.1".parse().unwrap()));
    let child = Command::new("openssl")
        .arg("s_server")
        .args(["-accept", &addr.to_string()])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .arg("-cert_chain")
        .arg(&inter)
        .args(["-www", "-quiet"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl must be installed (apt-get install openssl)");
    let mut p = Proc {
        child,
        name: "openssl s_server",
    };
    wait_listening(addr, &mut p).await;
    (p, addr)
}

/// nginx serving TLS (leaf + intermediate) and plain HTTP on two free ports.
pub async fn nginx(chain: &Chain, dir: &Path) -> (Proc, SocketAddr, SocketAddr) {
    nginx_with(chain, dir, "TLSv1.2 TLSv1.3", "HIGH:!aNULL").await
}

/// nginx with chosen `ssl_protocols` and `ssl_ciphers`.
pub async fn nginx_with(chain: &Chain, dir: &Path, protocols: &str, ciphers: &str) -> (Proc, SocketAddr, SocketAddr) {
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let tls = SocketAddr::new(lo, free_port(lo));
    let http = SocketAddr::new(lo, free_port(lo));
    let cert = write(dir, "nginx-chain.pem", &chain.chain_pem());
    let key = write(dir, "nginx.key", &chain.leaf_key_pem);
    let user = if rustix_is_root() { "user root;" } else { "" };
    let conf = format!(
        r#"{user}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fcgi;
    uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    server {{
        listen {tls} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols {protocols};
        ssl_ciphers {ciphers};
        location / {{ return 200 "tls\n"; }}
    }}
    server {{
        listen {http};
        location / {{ return 200 "plain\n"; }}
    }}
}}
"#,
        dir = dir.display(),
        cert = cert.display(),
        key = key.display(),
    );
    let conf_path = write(dir, "nginx.conf", &conf);
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx must be installed (apt-get install nginx-light)");
    let mut p = Proc { child, name: "nginx" };
    wait_listening(tls, &mut p).await;
    wait_listening(http, &mut p).await;
    (p, tls, http)
}

fn nginx_binary() -> &'static str {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Options for fast tests: short deadlines, no rate limit.
pub fn quick() -> ScanOptions {
    let mut o = ScanOptions::default();
    o.portscan.rate = netsensor::discover::pacing::Rate::Unlimited;
    o.portscan.connect_timeout = Duration::from_millis(500);
    o.handshake_timeout = Duration::from_secs(3);
    o.banner_wait = Duration::from_millis(300);
    o
}

/// Scan `targets` × `ports` with the engine and return every record.
pub async fn scan(targets: &[&str], exclude: &[&str], ports: &str, opts: ScanOptions) -> Vec<EndpointRecord> {
    let specs: Vec<TargetSpec> = targets.iter().map(|t| t.parse().expect("target")).collect();
    let excl: Vec<TargetSpec> = exclude.iter().map(|t| t.parse().expect("exclusion")).collect();
    let set = TargetSet::new(&specs, &excl, scan::resolve).expect("target set");
    let plan = ScanPlan::new(set, ports.parse::<PortSet>().expect("ports"), 7).expect("plan");
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let job = tokio::spawn(scan::run(Arc::new(plan), 0, opts, Arc::new(Progress::default()), tx));
    let mut out = Vec::new();
    while let Some(r) = rx.recv().await {
        out.push(r);
    }
    job.await.expect("scan task").expect("scan");
    out.sort_by_key(|r| (r.address, r.port, r.hostname.clone()));
    out
}

pub fn find(records: &[EndpointRecord], addr: SocketAddr) -> &EndpointRecord {
    records
        .iter()
        .find(|r| r.address == addr.ip() && r.port == addr.port())
        .unwrap_or_else(|| panic!("no record for {addr} in {records:#?}"))
}
