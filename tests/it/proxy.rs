//! The agent proxy (issue 8) against real sockets on loopback: tunnels with
//! bytes checked end to end, every refusal with its status line, and agents
//! that misbehave (a 1 MB request line, silence) without cost to the others.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netsensor::serve::proxy::{Allowlist, Counters, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Aborts its tasks when dropped, so a failing test leaves no server behind.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// A loopback server that sends back whatever it receives.
async fn echo_server() -> (SocketAddr, Tasks) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (addr, Tasks(vec![task]))
}

struct Proxy {
    addr: SocketAddr,
    counters: Arc<Counters>,
    _stop: oneshot::Sender<()>,
    _tasks: Tasks,
}

async fn start_proxy(config: ProxyConfig) -> Proxy {
    config.validate().expect("valid config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let counters = Arc::new(Counters::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let c = counters.clone();
    let task = tokio::spawn(async move {
        let _ = netsensor::serve::listener::run(listener, config, c, async {
            let _ = stopped.await;
        })
        .await;
    });
    Proxy {
        addr,
        counters,
        _stop: stop,
        _tasks: Tasks(vec![task]),
    }
}

fn config(allow: &[&str], resolve: &[&str]) -> ProxyConfig {
    let mut c = ProxyConfig {
        allow: Allowlist::parse(allow).expect("allow entries"),
        ..ProxyConfig::default()
    };
    for r in resolve {
        c.add_resolve(r).expect("resolve entry");
    }
    c
}

/// Sends `head` and reads the answer's head (up to the blank line, at most 4 KiB).
async fn request(proxy: SocketAddr, head: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy).await.expect("connect to proxy");
    s.write_all(head.as_bytes()).await.expect("send head");
    let answer = read_head(&mut s).await;
    (s, answer)
}

async fn read_head(s: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") && answer.len() < 4096 {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte)).await {
            Ok(Ok(1)) => answer.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn status(answer: &str) -> u16 {
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Sends `len` patterned bytes through an open tunnel to the echo server and checks they come back.
async fn echo_through(s: &mut TcpStream, len: usize, seed: u8) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let (mut r, mut w) = s.split();
    let send = async {
        w.write_all(&data).await.expect("send through tunnel");
    };
    let mut back = vec![0u8; len];
    let recv = async {
        r.read_exact(&mut back).await.expect("read back through tunnel");
    };
    tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(send, recv) })
        .await
        .expect("echo within 30 s");
    assert!(back == data, "bytes changed in the tunnel");
}

#[tokio::test]
async fn tunnels_to_an_allowlisted_name_byte_for_byte() {
    let (echo, _e) = echo_server().await;
    let seen = Arc::new(Mutex::new(Vec::<IpAddr>::new()));
    let mut c = config(&[&format!("echo.test:{}", echo.port())], &["echo.test=127.0.0.1"]);
    let s2 = seen.clone();
    c.on_agent = Some(Arc::new(move |ip| s2.lock().unwrap().push(ip)));
    let p = start_proxy(c).await;
    let target = format!("echo.test:{}", echo.port());
    // The agent sends the first tunnel bytes right behind its head, as TLS clients may.
    let (mut s, answer) = request(p.addr, &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n")).await;
    assert_eq!(answer, "HTTP/1.1 200 Connection established\r\n\r\n");
    echo_through(&mut s, 256 * 1024, 7).await;
    drop(s);
    let mut pipelined = TcpStream::connect(p.addr).await.unwrap();
    pipelined
        .write_all(format!("CONNECT {target} HTTP/1.1\r\n\r\nearly").as_bytes())
        .await
        .unwrap();
    assert_eq!(status(&read_head(&mut pipelined).await), 200);
    let mut early = [0u8; 5];
    pipelined.read_exact(&mut early).await.unwrap();
    assert_eq!(&early, b"early");
    drop(pipelined);
    wait_for(|| p.counters.snapshot().tunnels_open == 0).await;
    let snap = p.counters.snapshot();
    assert_eq!(snap.tunnels_total, 2);
    assert_eq!(snap.bytes_up, 256 * 1024 + 5);
    assert_eq!(snap.bytes_down, 256 * 1024 + 5);
    assert_eq!(*seen.lock().unwrap(), vec![IpAddr::from([127, 0, 0, 1]); 2]);
}

#[tokio::test]
async fn http10_connect_without_headers_works() {
    let (echo, _e) = echo_server().await;
    let p = start_proxy(config(
        &[&format!("echo.test:{}", echo.port())],
        &["echo.test=127.0.0.1"],
    ))
    .await;
    let (mut s, answer) = request(p.addr, &format!("CONNECT echo.test:{} HTTP/1.0\r\n\r\n", echo.port())).await;
    assert_eq!(answer, "HTTP/1.0 200 Connection established\r\n\r\n");
    echo_through(&mut s, 4096, 1).await;
}

#[tokio::test]
async fn refuses_destinations_off_the_allowlist() {
    let (echo, _e) = echo_server().await;
    let port = echo.port();
    let p = start_proxy(config(
        &[
            &format!("echo.test:{port}"),
            &format!("*.issuer.test:{port}"),
            &format!("[::1]:{port}"),
        ],
        &[
            "echo.test=127.0.0.1",
            "other.test=127.0.0.1",
            "evil.issuer.test=127.0.0.1",
        ],
    ))
    .await;
    let cases = [
        // Not listed at all, although it resolves.
        (format!("other.test:{port}"), 403),
        // Listed name, other port.
        (format!("echo.test:{}", port.wrapping_add(1).max(1)), 403),
        // IP literal of the same destination, not listed.
        (format!("127.0.0.1:{port}"), 403),
        // A wildcard match that resolves to loopback: no DNS tricks into the sensor's network.
        (format!("evil.issuer.test:{port}"), 403),
        // Garbage target.
        ("echo.test".to_string(), 400),
    ];
    for (target, want) in cases {
        let (_s, answer) = request(p.addr, &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n")).await;
        assert_eq!(status(&answer), want, "{target}: {answer}");
    }
    let snap = p.counters.snapshot();
    assert_eq!(
        (snap.refused_not_allowed, snap.refused_bad_request, snap.tunnels_total),
        (4, 1, 0)
    );
}

#[tokio::test]
async fn listed_ip_literal_is_allowed() {
    let (echo, _e) = echo_server().await;
    let p = start_proxy(config(&[&format!("127.0.0.1:{}", echo.port())], &[])).await;
    let (mut s, answer) = request(p.addr, &format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n\r\n", echo.port())).await;
    assert_eq!(status(&answer), 200, "{answer}");
    echo_through(&mut s, 1000, 3).await;
}

#[tokio::test]
async fn agents_must_authenticate_when_a_token_is_set() {
    let (echo, _e) = echo_server().await;
    let mut c = config(&[&format!("echo.test:{}", echo.port())], &["echo.test=127.0.0.1"]);
    c.auth_token = Some("s3cret".into());
    let p = start_proxy(c).await;
    let target = format!("echo.test:{}", echo.port());
    for (auth, want) in [
        ("", 407),
        ("Proxy-Authorization: Bearer wrong\r\n", 407),
        ("Proxy-Authorization: Basic YWdlbnQ6d3Jvbmc=\r\n", 407),
        ("Proxy-Authorization: Bearer s3cret\r\n", 200),
        // agent:s3cret
        ("Proxy-Authorization: Basic YWdlbnQ6czNjcmV0\r\n", 200),
    ] {
        let (mut s, answer) = request(p.addr, &format!("CONNECT {target} HTTP/1.1\r\n{auth}\r\n")).await;
        assert_eq!(status(&answer), want, "{auth:?}: {answer}");
        if want == 407 {
            assert!(
                answer.contains("Proxy-Authenticate: Basic realm=\"netsensor\"\r\n"),
                "{answer}"
            );
        } else {
            echo_through(&mut s, 100, 9).await;
        }
    }
    assert_eq!(p.counters.snapshot().refused_auth, 3);
}

#[tokio::test]
async fn other_methods_get_405() {
    let p = start_proxy(config(&["echo.test:80"], &[])).await;
    let (_s, answer) = request(p.addr, "GET http://echo.test/ HTTP/1.1\r\nHost: echo.test\r\n\r\n").await;
    assert_eq!(status(&answer), 405, "{answer}");
    assert!(answer.contains("Allow: CONNECT\r\n"), "{answer}");
}

#[tokio::test]
async fn unreachable_destination_gets_502() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let p = start_proxy(config(
        &[&format!("closed.test:{}", closed.port())],
        &["closed.test=127.0.0.1"],
    ))
    .await;
    let (_s, answer) = request(
        p.addr,
        &format!("CONNECT closed.test:{} HTTP/1.1\r\n\r\n", closed.port()),
    )
    .await;
    assert_eq!(status(&answer), 502, "{answer}");
    assert_eq!(p.counters.snapshot().refused_unreachable, 1);
}

#[tokio::test]
async fn a_one_megabyte_request_line_is_cut_off_and_others_are_served() {
    let (echo, _e) = echo_server().await;
    let p = start_proxy(config(
        &[&format!("echo.test:{}", echo.port())],
        &["echo.test=127.0.0.1"],
    ))
    .await;
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    let (mut r, mut w) = s.split();
    let mut line = b"CONNECT ".to_vec();
    line.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    line.extend_from_slice(b":443 HTTP/1.1\r\n\r\n");
    let send = async {
        // The proxy stops reading after its limit: the write may fail or stall, both are fine.
        let _ = tokio::time::timeout(Duration::from_secs(3), w.write_all(&line)).await;
    };
    let mut answer = Vec::new();
    let recv = async {
        let _ = tokio::time::timeout(Duration::from_secs(10), r.read_to_end(&mut answer)).await;
    };
    tokio::join!(send, recv);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    let (mut other, answer) = request(p.addr, &format!("CONNECT echo.test:{} HTTP/1.1\r\n\r\n", echo.port())).await;
    assert_eq!(status(&answer), 200);
    echo_through(&mut other, 1000, 5).await;
    assert_eq!(p.counters.snapshot().refused_too_large, 1);
}

#[tokio::test]
async fn silent_agents_do_not_block_others() {
    let (echo, _e) = echo_server().await;
    let mut c = config(&[&format!("echo.test:{}", echo.port())], &["echo.test=127.0.0.1"]);
    c.head_timeout = Duration::from_millis(500);
    c.max_tunnels = 8;
    let p = start_proxy(c).await;
    let target = format!("echo.test:{}", echo.port());
    // Four agents open a tunnel and go silent; four connect and never send a head.
    let mut silent = Vec::new();
    for _ in 0..4 {
        let (s, answer) = request(p.addr, &format!("CONNECT {target} HTTP/1.1\r\n\r\n")).await;
        assert_eq!(status(&answer), 200);
        silent.push(s);
    }
    let mut mute = Vec::new();
    for _ in 0..4 {
        mute.push(TcpStream::connect(p.addr).await.unwrap());
    }
    // Every slot is taken; the mute ones are cut off after the head timeout and others get in.
    let started = std::time::Instant::now();
    let (mut s, answer) = request(p.addr, &format!("CONNECT {target} HTTP/1.1\r\n\r\n")).await;
    assert_eq!(status(&answer), 200, "{answer}");
    echo_through(&mut s, 1000, 2).await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    for m in &mut mute {
        assert_eq!(status(&read_head(m).await), 408);
    }
    // The silent tunnels are still open and still work.
    for s in &mut silent {
        echo_through(s, 10, 4).await;
    }
    assert_eq!(p.counters.snapshot().refused_head_timeout, 4);
}

#[tokio::test]
async fn idle_tunnels_are_closed() {
    let (echo, _e) = echo_server().await;
    let mut c = config(&[&format!("echo.test:{}", echo.port())], &["echo.test=127.0.0.1"]);
    c.idle_timeout = Duration::from_millis(300);
    let p = start_proxy(c).await;
    let (mut s, answer) = request(p.addr, &format!("CONNECT echo.test:{} HTTP/1.1\r\n\r\n", echo.port())).await;
    assert_eq!(status(&answer), 200);
    echo_through(&mut s, 10, 1).await;
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    assert!(matches!(n, Ok(Ok(0))), "the idle tunnel was closed: {n:?}");
    wait_for(|| p.counters.snapshot().tunnels_open == 0).await;
}

#[tokio::test]
async fn two_hundred_concurrent_tunnels_carry_their_own_bytes() {
    // Four descriptors per tunnel in this process, shared with the tests running beside this one.
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok())
        })
        .unwrap_or(1024);
    let tunnels = 200.min(limit / 8);
    let (echo, _e) = echo_server().await;
    let p = start_proxy(config(
        &[&format!("echo.test:{}", echo.port())],
        &["echo.test=127.0.0.1"],
    ))
    .await;
    let target = format!("echo.test:{}", echo.port());
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..tunnels {
        let target = target.clone();
        let done = done.clone();
        let addr = p.addr;
        tasks.push(tokio::spawn(async move {
            let (mut s, answer) = request(addr, &format!("CONNECT {target} HTTP/1.1\r\n\r\n")).await;
            assert_eq!(status(&answer), 200, "{answer}");
            echo_through(&mut s, 32 * 1024, i as u8).await;
            done.fetch_add(1, Ordering::Relaxed);
        }));
    }
    let all = tokio::time::timeout(Duration::from_secs(60), futures_join(tasks)).await;
    assert!(all.is_ok(), "{tunnels} tunnels within 60 s");
    assert_eq!(done.load(Ordering::Relaxed), tunnels);
    wait_for(|| p.counters.snapshot().tunnels_open == 0).await;
    let snap = p.counters.snapshot();
    assert_eq!(snap.tunnels_total, tunnels as u64);
    assert_eq!(snap.bytes_up, (tunnels * 32 * 1024) as u64);
    assert_eq!(snap.bytes_down, (tunnels * 32 * 1024) as u64);
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        t.await.expect("tunnel task");
    }
}

async fn wait_for(cond: impl Fn() -> bool) {
    for _ in 0..100 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cond(), "condition not reached within 5 s");
}

#[tokio::test]
async fn plain_and_tls_agents_share_the_port() {
    use rustls::pki_types::{CertificateDer, ServerName};
    use testbed::{self, KeyKind};

    let (echo, _e) = echo_server().await;
    let chain = testbed::issue_chain("proxy", &["sensor.test"], KeyKind::EcdsaP256).expect("chain");
    let (server, _sni) = testbed::rustls_config(
        chain.presented(),
        &chain.leaf_key,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    )
    .expect("server config");
    let mut c = config(&[&format!("echo.test:{}", echo.port())], &["echo.test=127.0.0.1"]);
    c.tls = Some(server);
    let p = start_proxy(c).await;
    let head = format!("CONNECT echo.test:{} HTTP/1.1\r\n\r\n", echo.port());

    // https:// proxy URL: TLS to the proxy, CONNECT inside it.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(chain.root.clone())).expect("root");
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(p.addr).await.unwrap();
    let name = ServerName::try_from("sensor.test").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("TLS to the proxy");
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 39];
    tls.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer[..], b"HTTP/1.1 200 Connection established\r\n\r\n");
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    tls.write_all(&data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    tls.read_exact(&mut back).await.unwrap();
    assert!(back == data, "bytes changed in the TLS-wrapped tunnel");

    // http:// proxy URL on the same port.
    let (mut s, answer) = request(p.addr, &head).await;
    assert_eq!(status(&answer), 200, "{answer}");
    echo_through(&mut s, 1000, 8).await;
}

/// The sensor's own routes share the port: origin-form requests reach the
/// router (bodies read whole under a cap), CONNECT still tunnels.
#[tokio::test]
async fn service_routes_share_the_port_with_the_tunnels() {
    use netsensor::serve::Routes;
    let (echo, _echo) = echo_server().await;
    let echo_route = axum::Router::new().route(
        "/echo",
        axum::routing::post(|body: axum::body::Bytes| async move { body }),
    );
    let mut c = config(&["echo.test:80"], &[&format!("echo.test={}", echo.ip())]);
    c.allow = Allowlist::parse(&[format!("echo.test:{}", echo.port())]).unwrap();
    c.max_body = 1000;
    c.service = Some(Routes::new().merge(echo_route).finish(c.max_body));
    let p = start_proxy(c).await;

    let (mut s, answer) = request(p.addr, "GET /healthz HTTP/1.1\r\nHost: sensor\r\n\r\n").await;
    assert_eq!(status(&answer), 200, "{answer}");
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    assert_eq!(body, r#"{"status":"ok"}"#);

    // A body split across writes arrives whole.
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nhello")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(b"world").await.unwrap();
    let answer = read_head(&mut s).await;
    assert_eq!(status(&answer), 200, "{answer}");
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    assert_eq!(body, "helloworld");

    let (_s, answer) = request(p.addr, "POST /echo HTTP/1.1\r\nContent-Length: 1001\r\n\r\n").await;
    assert_eq!(status(&answer), 413, "{answer}");
    let (_s, answer) = request(p.addr, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").await;
    assert_eq!(status(&answer), 411, "{answer}");
    let (_s, answer) = request(p.addr, "GET /nothing HTTP/1.0\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.0 404"), "{answer}");

    // And the tunnel still works on the same port.
    let (mut s, answer) = request(
        p.addr,
        &format!("CONNECT echo.test:{} HTTP/1.1\r\nHost: echo.test\r\n\r\n", echo.port()),
    )
    .await;
    assert_eq!(status(&answer), 200, "{answer}");
    echo_through(&mut s, 4096, 7).await;
}

/// Plain-HTTP forwarding, when enabled: an absolute-form GET reaches an
/// allowlisted origin in origin form without the proxy credentials, and the
/// answer comes back; off the allowlist it is 403, and disabled it is 405.
#[tokio::test]
async fn plain_http_forwarding_when_enabled() {
    let origin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = origin.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(String::new()));
    let seen2 = seen.clone();
    let _origin = Tasks(vec![tokio::spawn(async move {
        while let Ok((mut s, _)) = origin.accept().await {
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
                if s.read(&mut b).await.unwrap_or(0) == 0 {
                    break;
                }
                head.push(b[0]);
            }
            *seen2.lock().unwrap() = String::from_utf8_lossy(&head).into_owned();
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
                .await;
        }
    })]);
    let mut c = config(&[&format!("repo.test:{port}")], &["repo.test=127.0.0.1"]);
    c.auth_token = Some("t0k".into());
    c.forward_http = true;
    let p = start_proxy(c).await;
    let (mut s, answer) = request(
        p.addr,
        &format!("GET http://repo.test:{port}/pkg?v=1 HTTP/1.1\r\nHost: repo.test:{port}\r\nProxy-Authorization: Bearer t0k\r\n\r\n"),
    )
    .await;
    assert_eq!(status(&answer), 200, "{answer}");
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    assert_eq!(body, "hello");
    let head = seen.lock().unwrap().clone();
    assert!(head.starts_with("GET /pkg?v=1 HTTP/1.1\r\n"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("proxy-authorization"), "{head}");
    assert!(head.contains("connection: close\r\n"), "{head}");

    let (_s, answer) = request(
        p.addr,
        "GET http://other.test/ HTTP/1.1\r\nProxy-Authorization: Bearer t0k\r\n\r\n",
    )
    .await;
    assert_eq!(status(&answer), 403, "{answer}");
    let (_s, answer) = request(p.addr, &format!("GET http://repo.test:{port}/ HTTP/1.1\r\n\r\n")).await;
    assert_eq!(status(&answer), 407, "credentials apply to forwarding too: {answer}");
}

// ---- issue 17: the service port on hyper, hardened ---------------------------------------

/// A connection from a chosen loopback source address.
async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let s = tokio::net::TcpSocket::new_v4().expect("socket");
    s.bind(SocketAddr::from((source, 0))).expect("bind source");
    s.connect(to).await.expect("connect from source")
}

/// Defect 1: a stranger's upload is answered 401 from its head, at once,
/// without its body being read (before: the whole declared body was read and
/// held, up to 16 MiB each, before the token was checked).
#[tokio::test]
async fn strangers_uploads_are_refused_from_the_head_without_reading_the_body() {
    use netsensor::serve::Routes;
    use netsensor::serve::auth::{self, Principal, Scope, Scopes, Tokens};
    let mut tokens = Tokens::new();
    tokens.add(
        "right",
        Principal {
            name: "t".into(),
            sensor: None,
            scopes: Scopes::of(&[Scope::Report]),
            withheld: None,
        },
    );
    let tokens = Arc::new(tokens);
    let upload = axum::Router::new().route(
        "/upload",
        axum::routing::post(|b: axum::body::Bytes| async move { b.len().to_string() })
            .route_layer(auth::require(&tokens, Scope::Report)),
    );
    let mut c = config(&[], &[]);
    c.max_body = 16 << 20;
    c.service = Some(Routes::new().merge(upload).finish(c.max_body));
    let p = start_proxy(c).await;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..64u8 {
        let addr = p.addr;
        tasks.push(tokio::spawn(async move {
            let mut s = connect_from([127, 0, 1, 1 + i / 16], addr).await;
            let head = format!(
                "POST /upload HTTP/1.1\r\nHost: s\r\nContent-Length: {}\r\n\r\n",
                16 << 20
            );
            s.write_all(head.as_bytes()).await.unwrap();
            // A first MiB of the body; the rest never comes.
            let _ = s.write_all(&vec![b'x'; 1 << 20]).await;
            let answer = read_head(&mut s).await;
            assert_eq!(status(&answer), 401, "{answer}");
        }));
    }
    futures_join(tasks).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "401s took {:?}",
        started.elapsed()
    );
    // The right token is let in and its body read.
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nAuthorization: Bearer right\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .unwrap();
    let answer = read_head(&mut s).await;
    assert_eq!(status(&answer), 200, "{answer}");
}

/// Defect 1: idle sockets from several sources no longer take every slot:
/// each source reads at most 16 heads at once, a full house sheds the busiest
/// source's oldest head, and /healthz and the proxy answer at once.
#[tokio::test]
async fn idle_sockets_from_several_sources_do_not_stall_health_or_tunnels() {
    use netsensor::serve::Routes;
    let (echo, _e) = echo_server().await;
    let mut c = config(&[&format!("echo.test:{}", echo.port())], &["echo.test=127.0.0.1"]);
    c.max_heads = 64;
    c.max_tunnels = 64;
    c.service = Some(Routes::new().finish(1024));
    let p = start_proxy(c).await;
    let mut idle = Vec::new();
    for source in 2..7u8 {
        for _ in 0..40 {
            idle.push(connect_from([127, 0, 2, source], p.addr).await);
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let (mut s, answer) = request(p.addr, "GET /healthz HTTP/1.1\r\nHost: s\r\n\r\n").await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert!(answer.contains("Server: netsensor/"), "{answer}");
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    let mut t = connect_from([127, 0, 2, 9], p.addr).await;
    t.write_all(format!("CONNECT echo.test:{} HTTP/1.1\r\n\r\n", echo.port()).as_bytes())
        .await
        .unwrap();
    assert_eq!(status(&read_head(&mut t).await), 200);
    echo_through(&mut t, 1000, 6).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?} with 200 idle sockets from 5 sources",
        started.elapsed()
    );
    drop(idle);
}

/// The proxy's attack surface on hyper: every hostile head form in the
/// table is refused, and not one tunnel opens.
#[tokio::test]
async fn every_hostile_head_form_opens_no_tunnel() {
    let (echo, _e) = echo_server().await;
    let port = echo.port();
    let p = start_proxy(config(
        &[&format!("echo.test:{port}"), &format!("*.issuer.test:{port}")],
        &["echo.test=127.0.0.1", "evil.issuer.test=127.0.0.1"],
    ))
    .await;
    let heads = [
        format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT [::ffff:127.0.0.1]:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT [::1]:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT 2130706433:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT 0x7f.1:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT 0177.0.0.1:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT localhost:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT evil.issuer.test:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT evil:x.issuer.test:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT u@echo.test:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT http://echo.test:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT echo.test:{port}/x HTTP/1.1\r\n\r\n"),
        format!("CONNECT echo%2etest:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT echo.test:+{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT echo.test:{} HTTP/1.1\r\n\r\n", u32::from(port) + 65536),
        "CONNECT echo.test:0 HTTP/1.1\r\n\r\n".to_string(),
        "CONNECT echo.test HTTP/1.1\r\n\r\n".to_string(),
        format!("CONNECT  echo.test:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT echo.test:{port} HTTP/2.0\r\n\r\n"),
        format!("CONNECT echo.test:{port} HTTP/1.1\r\nHost : x\r\n\r\n"),
        format!("CONNECT echo.test:{port} HTTP/1.1\r\nX: a\r\n b\r\n\r\n"),
        format!("CONNECT echo.test\0:{port} HTTP/1.1\r\n\r\n"),
        format!("CONNECT echo.test:{port} HTTP/1.1\r\nContent-Length: +2\r\n\r\nab"),
        format!("CONNECT echo.test:{port} HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        format!("GET http://echo.test:{port}/ HTTP/1.1\r\nHost: echo.test\r\n\r\n"),
        format!("POST http://echo.test:{port}/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: echo.test:{port}\r\n\r\n"),
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_string(),
        format!("\x16\x03\x01\x00\x05hello CONNECT echo.test:{port} HTTP/1.1\r\n\r\n"),
    ];
    for head in &heads {
        let (_s, answer) = request(p.addr, head).await;
        let code = status(&answer);
        assert!(code != 200, "{head:?} opened a tunnel: {answer}");
    }
    assert_eq!(
        p.counters.snapshot().tunnels_total,
        0,
        "no tunnel from {} hostile heads",
        heads.len()
    );
    // And the honest form still works.
    let (mut s, answer) = request(p.addr, &format!("CONNECT echo.test:{port} HTTP/1.1\r\n\r\n")).await;
    assert_eq!(status(&answer), 200, "{answer}");
    echo_through(&mut s, 100, 1).await;
}

/// Defect 7: `Content-Length: +2` is not a length (strict digits).
#[tokio::test]
async fn a_signed_content_length_is_a_400() {
    use netsensor::serve::Routes;
    let echo = axum::Router::new().route("/echo", axum::routing::post(|b: axum::body::Bytes| async move { b }));
    let mut c = config(&[], &[]);
    c.service = Some(Routes::new().merge(echo).finish(1000));
    let p = start_proxy(c).await;
    let (_s, answer) = request(p.addr, "POST /echo HTTP/1.1\r\nContent-Length: +2\r\n\r\nab").await;
    assert_eq!(status(&answer), 400, "{answer}");
    let (_s, answer) = request(p.addr, "POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nab").await;
    assert_eq!(status(&answer), 200, "{answer}");
}

/// Defect 6: forwarding through hyper. A request with both Content-Length
/// and Transfer-Encoding reaches the origin without Content-Length; the
/// origin gets the allowlisted destination's Host, not the agent's; a later
/// request on the same kept-alive connection is checked like the first.
#[tokio::test]
async fn forwarding_drops_a_conflicting_length_sets_host_and_checks_every_request() {
    let origin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = origin.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    let _origin = Tasks(vec![tokio::spawn(async move {
        while let Ok((mut s, _)) = origin.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut b = [0u8; 4096];
                // Head and the chunked body: up to the last chunk.
                while !(got.ends_with(b"0\r\n\r\n") || got.starts_with(b"GET") && got.ends_with(b"\r\n\r\n")) {
                    match s.read(&mut b).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&b[..n]),
                    }
                }
                seen.lock().unwrap().push(String::from_utf8_lossy(&got).into_owned());
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
            });
        }
    })]);
    let mut c = config(&[&format!("repo.test:{port}")], &["repo.test=127.0.0.1"]);
    c.forward_http = true;
    let p = start_proxy(c).await;
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(
        format!(
            "POST http://repo.test:{port}/up HTTP/1.1\r\nHost: attacker.example\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let answer = read_head(&mut s).await;
    assert_eq!(status(&answer), 200, "{answer}");
    let mut ok = [0u8; 2];
    s.read_exact(&mut ok).await.unwrap();
    let head = seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.starts_with("post /up http/1.1\r\n"), "{head}");
    assert!(!head.contains("content-length"), "CL+TE forwarded with CL: {head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(head.contains(&format!("host: repo.test:{port}\r\n")), "{head}");
    assert!(!head.contains("attacker.example"), "{head}");
    assert!(head.contains("hello"), "{head}");
    // (hyper closes a connection after a CL+TE request.) A kept-alive
    // connection: an allowed request, then one off the allowlist.
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(format!("GET http://repo.test:{port}/a HTTP/1.1\r\nHost: repo.test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let answer = read_head(&mut s).await;
    assert_eq!(status(&answer), 200, "{answer}");
    s.read_exact(&mut ok).await.unwrap();
    s.write_all(b"GET http://other.test/ HTTP/1.1\r\nHost: other.test\r\n\r\n")
        .await
        .unwrap();
    let answer = read_head(&mut s).await;
    assert_eq!(status(&answer), 403, "a kept-alive request is checked too: {answer}");
    assert_eq!(seen.lock().unwrap().len(), 2);
}
