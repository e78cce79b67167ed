//! Alerting with real processes, loopback only (issue 23).
//!
//! - A webhook receiver (a small Python server started here, verifying the
//!   HMAC signature and the timestamp) gets exactly the expected notices for
//!   a daemon scanning TLS servers whose certificates expire in 2, 20 and
//!   200 days, a plain HTTP port and a downgraded (TLS 1.0/1.1 only)
//!   server: first while the receiver is down, then through two 500s, then
//!   for a dozen more endpoints while the sensor is SIGKILLed at random
//!   points of delivery. Nothing is lost, and no message the sensor saw
//!   acknowledged is sent again (each is logged `alert delivered` once).
//! - An SMTP sink (aiosmtpd with STARTTLS and AUTH) gets the digest mail
//!   (plain text and escaped HTML); a recipient it refuses parks the notice
//!   with the server's reason, tried once, not forever.
//! - A rule with an unknown key or a bad threshold stops the daemon at
//!   start with file:line:field.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::{self, KeyKind, LeafSpec};

mod common;
use common::{bind_reusable, eventually, free_port, kill9, sensor, term};

const SECRET: &str = "alert-secret-0123456789abcdef";

/// A child process killed when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TLS 1.3 server on `port` whose leaf (CN `name`) expires in `days` days.
fn tls_expiring(port: u16, name: &str, days: i64) -> tokio::task::JoinHandle<()> {
    let spec = LeafSpec {
        not_after_days: days,
        ..LeafSpec::default()
    };
    let chain = testbed::issue_chain_with(&format!("alerts {name}"), &[name], &spec).unwrap();
    let (cfg, _) = testbed::rustls_config(chain.presented(), &chain.leaf_key, &[&rustls::version::TLS13]).unwrap();
    testbed::serve_tls(bind_reusable(SocketAddr::from(([127, 0, 0, 1], port))), cfg)
}

async fn wait_listening(port: u16, p: &mut Child, what: &str) {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        if let Ok(Some(st)) = p.try_wait() {
            panic!("{what} exited: {st}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not listen on {port} within 10 s");
}

/// `openssl s_server` speaking only TLS 1.0 and 1.1 (a downgraded server),
/// with a leaf good for a year.
async fn downgraded(dir: &Path, port: u16) -> Proc {
    let spec = LeafSpec {
        kind: KeyKind::Rsa2048,
        not_after_days: 365,
        ..LeafSpec::default()
    };
    let chain = testbed::issue_chain_with("alerts legacy", &["legacy.test"], &spec).unwrap();
    let w = |n: &str, t: &str| {
        let p = dir.join(n);
        std::fs::write(&p, t).unwrap();
        p
    };
    let (cert, key, inter) = (
        w("legacy.pem", &chain.leaf_pem),
        w("legacy.key", &chain.leaf_key_pem),
        w("legacy-inter.pem", &chain.intermediate_pem),
    );
    let mut child = Command::new("openssl")
        .arg("s_server")
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .arg("-cert_chain")
        .arg(&inter)
        .args(["-www", "-quiet", "-no_tls1_2", "-no_tls1_3"])
        .args(["-cipher", "AES256-SHA:ECDHE-RSA-AES128-SHA:@SECLEVEL=0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl must be installed (apt-get install openssl)");
    wait_listening(port, &mut child, "openssl s_server").await;
    Proc(child)
}

const RECEIVER: &str = r#"
import hashlib, hmac, http.server, json, os, socketserver, sys, threading, time
port, plan, log_path, delay, secret = int(sys.argv[1]), [s for s in sys.argv[2].split(",") if s], sys.argv[3], float(sys.argv[4]), sys.argv[5].encode()
seen, lock = set(), threading.Lock()
# A receiver remembers what it took across its own restarts (it deduplicates by key).
if os.path.exists(log_path):
    for line in open(log_path):
        e = json.loads(line)
        if e["step"] == "ok":
            seen.add(e["key"])

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        key, ts = self.headers.get("Idempotency-Key"), self.headers.get("X-Netsensor-Timestamp", "")
        want = "v1=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        sig_ok = hmac.compare_digest(want, self.headers.get("X-Netsensor-Signature", ""))
        fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
        with lock:
            step = plan.pop(0) if plan else "ok"
            first = False
            if step == "ok":
                first = key not in seen
                seen.add(key)
            with open(log_path, "a") as f:
                f.write(json.dumps({"t": time.time(), "step": step, "key": key, "sig_ok": sig_ok, "fresh": fresh,
                    "first": first, "body": json.loads(body)}) + "\n")
                f.flush()
                os.fsync(f.fileno())
        if step == "500":
            return self.answer(500, b'{"error": "injected"}')
        time.sleep(delay)
        self.answer(200, json.dumps({"received": key, "first": first}).encode())
    def answer(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    def handle_error(self, request, client_address):
        pass  # a sender SIGKILLed mid-answer: expected here

S(("127.0.0.1", port), H).serve_forever()
"#;

fn receiver(dir: &Path, port: u16, plan: &str, log: &Path, delay: &str) -> Proc {
    let script = dir.join("receiver.py");
    std::fs::write(&script, RECEIVER).unwrap();
    Proc(
        Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(plan)
            .arg(log)
            .arg(delay)
            .arg(SECRET)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn alert_schema() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/schema/alert.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("alert schema compiles")
}

/// A daemon with `config`, scanning with `profile`, logging to `logs/sensor-N.log`.
struct Daemon {
    config: PathBuf,
    profile: PathBuf,
    state: PathBuf,
    logs: PathBuf,
    starts: usize,
    /// The service port (`sensor status`), when wanted.
    listen: Option<u16>,
}

impl Daemon {
    fn start(&mut self) -> Child {
        self.starts += 1;
        let log = std::fs::File::create(self.logs.join(format!("sensor-{}.log", self.starts))).unwrap();
        let mut c = sensor();
        c.args(["run", "--sensor-id", "alerting-1", "--grace", "2"]);
        if let Some(p) = self.listen {
            c.arg("--listen").arg(format!("127.0.0.1:{p}"));
        }
        c.arg("--config")
            .arg(&self.config)
            .arg("--profile")
            .arg(&self.profile)
            .env("SENSOR_LOG", "info,rustls=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn log(&self) -> String {
        (1..=self.starts)
            .map(|i| std::fs::read_to_string(self.logs.join(format!("sensor-{i}.log"))).unwrap_or_default())
            .collect()
    }

    fn status(&self) -> Value {
        let out = sensor()
            .args(["alerts", "status", "-o", "json", "--state-dir"])
            .arg(&self.state)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}

/// The ids of the messages the sensor logged as delivered (acknowledged and recorded).
fn delivered_ids(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("alert delivered"))
        .filter_map(|l| l.split(" id=").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

/// (kind, threshold, what) of a notice: the certificate's name or the port.
fn describe(n: &Value) -> String {
    let what = match n["certificate"]["common_name"].as_str() {
        Some(cn) => cn.to_string(),
        None => n["endpoints"][0]["port"].to_string(),
    };
    format!(
        "{} {} {what}",
        n["kind"].as_str().unwrap_or("?"),
        n["threshold"].as_str().unwrap_or("?")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_gets_exactly_the_expected_notices_through_faults_and_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let (t2, t20, t200, http, legacy) = (free_port(), free_port(), free_port(), free_port(), free_port());
    let _s2 = tls_expiring(t2, "two.test", 2);
    let _s20 = tls_expiring(t20, "twenty.test", 20);
    let _s200 = tls_expiring(t200, "far.test", 200);
    let _http = testbed::serve_http(bind_reusable(SocketAddr::from(([127, 0, 0, 1], http))));
    let _legacy = downgraded(dir.path(), legacy).await;
    // Closed now; plain HTTP servers come up on them in the SIGKILL phase.
    let later: Vec<u16> = (0..12).map(|_| free_port()).collect();

    let mut ports = vec![t2, t20, t200, http, legacy];
    ports.extend(&later);
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let profile = dir.path().join("lab.toml");
    std::fs::write(
        &profile,
        format!(
            "name = \"lab\"\ntargets = [\"127.0.0.1\"]\nports = \"{}\"\nanalyses = [\"certificates\", \"enumeration\", \"grade\"]\nconnect_timeout = \"300ms\"\nhandshake_timeout = \"3s\"\n\n[schedule]\nevery = \"2s\"\n",
            ports.join(",")
        ),
    )
    .unwrap();
    let hook_port = free_port();
    let state = dir.path().join("state");
    let config = dir.path().join("sensor.toml");
    std::fs::write(
        &config,
        format!(
            r#"[sensor]
state_dir = "{}"

[alerts]
retry_max = "1s"

[[alerts.channel]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{hook_port}/hook"
secret = "{SECRET}"

[[alerts.rule]]
kind = "expiring"
days = [90, 60, 30, 7, 3]
channels = ["hook"]

[[alerts.rule]]
kind = "unsecured"
channels = ["hook"]

[[alerts.rule]]
kind = "weak_protocol"
channels = ["hook"]
"#,
            state.display()
        ),
    )
    .unwrap();
    let mut d = Daemon {
        config: config.clone(),
        profile,
        state,
        logs: dir.path().to_path_buf(),
        starts: 0,
        listen: Some(free_port()),
    };

    // The receiver is down: the four notices wait on disk, the failure is visible.
    let mut child = d.start();
    eventually("four notices waiting, delivery failing", 90, || {
        let st = d.status();
        st["waiting"] == 4 && st["channels"]["hook"]["retrying"].as_u64().is_some_and(|n| n >= 1)
    })
    .await;
    let st = d.status();
    let err = st["channels"]["hook"]["last_error"].as_str().unwrap_or("");
    assert!(err.contains("onnect") || err.contains("refused"), "{st:#}");

    // Up, answering 500 twice: the same notice comes again and is taken.
    let log = dir.path().join("hook.jsonl");
    let mut rx = receiver(dir.path(), hook_port, "500,500", &log, "0.05");
    eventually("the first four notices received", 60, || {
        jsonl(&log).iter().filter(|e| e["first"] == true).count() == 4
    })
    .await;
    let got = jsonl(&log);
    let steps: Vec<&str> = got.iter().filter_map(|e| e["step"].as_str()).collect();
    assert_eq!(&steps[..3], &["500", "500", "ok"], "{steps:?}");
    assert!(
        got[0]["key"] == got[1]["key"] && got[1]["key"] == got[2]["key"],
        "retried under one key"
    );
    let mut four: Vec<String> = got
        .iter()
        .filter(|e| e["first"] == true)
        .map(|e| describe(&e["body"]["notices"][0]))
        .collect();
    four.sort();
    let mut want = vec![
        "expiring 30d twenty.test".to_string(),
        "expiring 3d two.test".to_string(),
        format!("unsecured unsecured {http}"),
        format!("weak_protocol TLSv1.0 {legacy}"),
    ];
    want.sort();
    assert_eq!(
        four, want,
        "the 200-day certificate and the 1-year legacy one are not due"
    );
    eventually("the four recorded as sent", 30, || d.status()["sent"] == 4).await;

    // A dozen more endpoints, answered slowly, and SIGKILLs while they are delivered.
    term(&mut rx.0);
    drop(rx);
    let mut rx = receiver(dir.path(), hook_port, "", &log, "0.4");
    let _later: Vec<_> = later
        .iter()
        .map(|p| testbed::serve_http(bind_reusable(SocketAddr::from(([127, 0, 0, 1], *p)))))
        .collect();
    eventually("delivery of the new notices under way", 60, || {
        jsonl(&log).iter().filter(|e| e["first"] == true).count() > 5
    })
    .await;
    let mut kills = 0;
    let mut n = 0u64;
    while kills < 8 && jsonl(&log).iter().filter(|e| e["first"] == true).count() < 16 {
        n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(300 + (n >> 33) % 900)).await;
        kill9(&mut child);
        kills += 1;
        child = d.start();
    }
    eventually("all sixteen notices received and recorded as sent", 120, || {
        let st = d.status();
        st["sent"] == 16 && st["waiting"] == 0
    })
    .await;
    // Quiet: the sensor keeps scanning and evaluating, and sends nothing more.
    let before = jsonl(&log).len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(jsonl(&log).len(), before, "nothing is sent again once acknowledged");

    let got = jsonl(&log);
    let schema = alert_schema();
    for e in &got {
        assert_eq!(e["sig_ok"], true, "every attempt is signed: {e}");
        assert_eq!(e["fresh"], true, "and timestamped: {e}");
        let errors: Vec<String> = schema.iter_errors(&e["body"]).map(|x| x.to_string()).take(3).collect();
        assert!(errors.is_empty(), "{errors:?}: {}", e["body"]);
        assert_eq!(e["key"], e["body"]["id"], "Idempotency-Key is the message id");
    }
    let mut all: Vec<String> = got
        .iter()
        .filter(|e| e["first"] == true)
        .map(|e| describe(&e["body"]["notices"][0]))
        .collect();
    all.sort();
    want.extend(later.iter().map(|p| format!("unsecured unsecured {p}")));
    want.sort();
    assert_eq!(all, want, "exactly the expected notices, each once");
    let acked: Vec<&Value> = got.iter().filter(|e| e["step"] == "ok").collect();
    let keys: BTreeSet<&str> = acked.iter().filter_map(|e| e["key"].as_str()).collect();
    let duplicates = acked.len() - keys.len();
    assert!(duplicates <= kills, "{duplicates} re-sends for {kills} kills");
    // The sensor's side: every message recorded as delivered exactly once.
    let delivered = delivered_ids(&d.log());
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &delivered {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    // The queue's `sent == 16` above is the record; a log line is written
    // after the queue's commit, so a SIGKILL between the two loses at most
    // one line per kill, never a delivery.
    assert!(
        counts.len() <= 16 && counts.len() + kills >= 16,
        "{} logged deliveries after {kills} kills: {counts:?}",
        counts.len()
    );
    assert!(
        counts.values().all(|n| *n == 1),
        "an acknowledged message was sent again: {counts:?}"
    );
    eprintln!(
        "receiver: {} requests, {} distinct notices, {} re-sends after {kills} SIGKILLs, 2 injected 500s",
        got.len(),
        keys.len(),
        duplicates
    );

    // `sensor alerts test`: a test notice through the channel, and its answer.
    let out = sensor()
        .args(["alerts", "test", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("hook") && stdout.contains("delivered: HTTP 200"),
        "{stdout}"
    );
    let last = jsonl(&log).pop().unwrap();
    assert_eq!(last["body"]["notices"][0]["kind"], "test");
    term(&mut child);
    term(&mut rx.0);
}

/// An interpreter that has aiosmtpd (Debian's python3-aiosmtpd is /usr/bin's).
fn python_with_aiosmtpd() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

const SMTP_SINK: &str = r#"
import email, email.policy, json, logging, os, ssl, sys, threading, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
port, log_path, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
lock = threading.Lock()
logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's own deprecation chatter

def log(d):
    with lock, open(log_path, "a") as f:
        f.write(json.dumps(d) + "\n")
        f.flush()
        os.fsync(f.fileno())

def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b"sensor" and data.password == b"s3cret-pass"
    return AuthResult(success=ok)

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            log({"event": "refused", "rcpt": address})
            return "550 5.1.1 <%s>: no such user here" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart()}
        log({"event": "mail", "from": envelope.mail_from, "to": envelope.rcpt_tos,
             "tls": session.ssl is not None, "auth": bool(session.authenticated),
             "subject": str(msg["subject"]), "message_id": str(msg["message-id"]),
             "type": msg.get_content_type(), "text": parts.get("text/plain", ""), "html": parts.get("text/html", "")})
        return "250 2.0.0 queued"

ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
               authenticator=auth, auth_required=True, auth_require_tls=True)
c.start()
while True:
    time.sleep(3600)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn mail_reaches_the_smtp_sink_and_a_refused_recipient_is_parked() {
    let Some(python) = python_with_aiosmtpd() else {
        // tests/run.sh installs it; in CI a missing sink is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "the SMTP test needs aiosmtpd (apt-get install python3-aiosmtpd)"
        );
        eprintln!("SKIPPED: the SMTP test needs aiosmtpd (apt-get install python3-aiosmtpd)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (t2, http, smtp) = (free_port(), free_port(), free_port());
    let _s2 = tls_expiring(t2, "two.test", 2);
    let _http = testbed::serve_http(bind_reusable(SocketAddr::from(([127, 0, 0, 1], http))));
    let pki = testbed::issue_chain("alerts smtp", &["127.0.0.1"], KeyKind::EcdsaP256).unwrap();
    let w = |n: &str, t: &str| {
        let p = dir.path().join(n);
        std::fs::write(&p, t).unwrap();
        p
    };
    let (ca, chain, key) = (
        w("smtp-ca.pem", &pki.root_pem),
        w("smtp-chain.pem", &pki.chain_pem()),
        w("smtp.key", &pki.leaf_key_pem),
    );
    let pass_file = w("smtp.pass", "s3cret-pass\n");
    let profile = w(
        "lab.toml",
        &format!(
            "name = \"lab\"\ntargets = [\"127.0.0.1\"]\nports = \"{t2},{http}\"\nanalyses = [\"certificates\"]\nconnect_timeout = \"300ms\"\n\n[schedule]\nevery = \"2s\"\n"
        ),
    );
    let state = dir.path().join("state");
    let mail = |name: &str, to: &str, digest: bool| {
        format!(
            "[[alerts.channel]]\nname = \"{name}\"\nkind = \"email\"\nsmtp = \"127.0.0.1:{smtp}\"\ntls = \"starttls\"\nca_bundle = \"{}\"\nusername = \"sensor\"\npassword_file = \"{}\"\nfrom = \"Sensor <sensor@example.org>\"\nto = [\"{to}\"]\ndigest = {digest}\ntimeout = \"5s\"\n\n",
            ca.display(),
            pass_file.display()
        )
    };
    let config = w(
        "sensor.toml",
        &format!(
            "[sensor]\nstate_dir = \"{}\"\n\n[alerts]\nretry_max = \"1s\"\n\n{}{}[[alerts.rule]]\nkind = \"expiring\"\nchannels = [\"ops\", \"nobody\"]\n\n[[alerts.rule]]\nkind = \"unsecured\"\nchannels = [\"ops\", \"nobody\"]\n",
            state.display(),
            mail("ops", "ops@example.org", true),
            mail("nobody", "nobody@example.org", false),
        ),
    );
    let mut d = Daemon {
        config: config.clone(),
        profile,
        state,
        logs: dir.path().to_path_buf(),
        starts: 0,
        listen: None,
    };

    // No SMTP server yet: both notices wait for both channels, retried.
    let mut child = d.start();
    eventually("notices waiting while the SMTP server is unreachable", 60, || {
        let st = d.status();
        st["waiting"] == 4 && st["channels"]["ops"]["retrying"].as_u64().is_some_and(|n| n >= 2)
    })
    .await;

    let script = w("sink.py", SMTP_SINK);
    let log = dir.path().join("smtp.jsonl");
    let mut sink = Proc(
        Command::new(python)
            .arg(&script)
            .arg(smtp.to_string())
            .arg(&log)
            .arg(&chain)
            .arg(&key)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(smtp, &mut sink.0, "the SMTP sink").await;
    eventually("the digest delivered and the refused recipient parked", 60, || {
        let st = d.status();
        st["channels"]["ops"]["sent"] == 2 && st["channels"]["nobody"]["failed"] == 2
    })
    .await;
    // Parked means parked: no retry of the refused, no second copy of the sent.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let events = jsonl(&log);
    let mails: Vec<&Value> = events.iter().filter(|e| e["event"] == "mail").collect();
    let refused = events.iter().filter(|e| e["event"] == "refused").count();
    assert_eq!(mails.len(), 1, "one digest for the run's two notices: {events:#?}");
    assert_eq!(refused, 2, "each refused notice tried once: {events:#?}");
    let m = mails[0];
    assert_eq!(m["to"], serde_json::json!(["ops@example.org"]));
    assert_eq!(
        (m["tls"].as_bool(), m["auth"].as_bool()),
        (Some(true), Some(true)),
        "STARTTLS and AUTH: {m}"
    );
    assert_eq!(m["type"], "multipart/alternative");
    let subject = m["subject"].as_str().unwrap();
    assert!(subject.contains("2 notice(s) from alerting-1"), "{subject}");
    assert!(m["message_id"].as_str().unwrap().ends_with("@netsensor.invalid>"));
    let text = m["text"].as_str().unwrap();
    assert!(text.contains("Certificate two.test expires in 2 day(s)"), "{text}");
    assert!(
        text.contains(&format!("Unsecured service on 127.0.0.1:{http}")),
        "{text}"
    );
    let html = m["html"].as_str().unwrap();
    assert!(
        html.contains("<h3>Certificate two.test expires") && html.contains("<table>"),
        "{html}"
    );
    assert!(html.contains("intermediate CA"), "the issuer is shown: {html}");
    let st = d.status();
    let parked = st["parked"].as_array().unwrap();
    assert_eq!(parked.len(), 2);
    assert!(
        parked
            .iter()
            .all(|p| p["reason"].as_str().unwrap_or("").contains("550")),
        "{st:#}"
    );
    assert_eq!(
        (st["sent"].as_u64(), st["failed"].as_u64(), st["waiting"].as_u64()),
        (Some(2), Some(2), Some(0))
    );
    eprintln!(
        "SMTP sink: {} mail(s) with {} notices, {refused} refused recipients parked",
        mails.len(),
        st["channels"]["ops"]["sent"]
    );

    // `sensor alerts test`: what each channel answered; a refusal fails the command.
    let out = sensor()
        .args(["alerts", "test", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ops") && stdout.contains("delivered: 250"), "{stdout}");
    assert!(
        stdout.contains("REFUSED (would be parked)") && stdout.contains("550"),
        "{stdout}"
    );
    term(&mut child);
}

#[test]
fn a_bad_rule_stops_the_daemon_at_start_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("lab.toml");
    std::fs::write(&profile, "name = \"lab\"\ntargets = [\"127.0.0.1\"]\nports = \"1\"\n").unwrap();
    let head = "[sensor]\nstate_dir = \"STATE\"\n\n[[alerts.channel]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\n[[alerts.rule]]\nkind = \"expiring\"\n";
    let cases = [
        ("dayz = [7]\nchannels = [\"hook\"]\n", ":11:", "unknown field `dayz`"),
        (
            "days = [30, 0]\nchannels = [\"hook\"]\n",
            ":11:",
            "`alerts.rule[1].days`: 0 is not a threshold",
        ),
        (
            "days = [30]\nchannels = [\"pager\"]\n",
            ":12:",
            "`alerts.rule[1].channels`: no channel is named `pager`",
        ),
    ];
    for (tail, line, expect) in cases {
        let config = dir.path().join("sensor.toml");
        let state = dir.path().join("state");
        std::fs::write(
            &config,
            format!("{head}{tail}").replace("STATE", &state.display().to_string()),
        )
        .unwrap();
        let out = sensor()
            .args(["run", "--sensor-id", "bad", "--config"])
            .arg(&config)
            .arg("--profile")
            .arg(&profile)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{tail}: {stderr}");
        assert!(
            stderr.contains(&format!("{}{line}", config.display())),
            "{tail}: {stderr}"
        );
        assert!(stderr.contains(expect), "{tail}: {stderr}");
        assert!(!state.exists(), "nothing was started: {tail}");
    }
}
