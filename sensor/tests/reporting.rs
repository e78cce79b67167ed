//! Reporting upstream with real processes, loopback only (issue 7).
//!
//! - A segment `sensor run` scanning loopback servers reports to a central
//!   `sensor run --listen … --accept-token …`, is SIGKILLed at random points
//!   while it delivers and restarted; at the end the central inventory holds
//!   the segment's endpoints and every event the segment stored was applied
//!   exactly once (event ids counted on both sides from their logs).
//! - A fault-injecting upstream (a small Python HTTP server started here):
//!   down at first, then 500s, a 429 with Retry-After, a batch taken and the
//!   connection dropped before the answer, a 422 (parked, kept, shown by
//!   `sensor outbox status`), then SIGKILLs during slow answers. Every body
//!   sent validates against `docs/schema/report.schema.json`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::{self, KeyKind};

mod common;
use common::{bind_reusable, eventually, free_port, kill9, sensor, term, tls_server};

#[path = "../../tests/it/pg.rs"]
mod pg;

const TOKEN: &str = "segment-token-0123456789";
/// An empty configuration: the tests never read a sensor.toml installed on the machine.
const NO_CONFIG: &str = "/dev/null";

/// A central sensor accepting [`TOKEN`] on 127.0.0.1:`port`, with its state
/// and an idle profile (nothing of interest to scan) under `dir`; callers add
/// their own options and spawn it.
fn central(dir: &Path, port: u16) -> Command {
    let profile = dir.join("central.toml");
    std::fs::write(
        &profile,
        "name = \"central\"\ntargets = [\"127.0.0.1\"]\nports = \"1\"\n",
    )
    .unwrap();
    let mut c = sensor();
    c.args([
        "run",
        "--config",
        NO_CONFIG,
        "--sensor-id",
        "central",
        "--accept-token",
        TOKEN,
        "--listen",
    ])
    .arg(format!("127.0.0.1:{port}"))
    .arg("--state-dir")
    .arg(dir.join("central-state"))
    .arg("--profile")
    .arg(profile)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    c
}

/// A small deterministic generator (the seed is printed for reruns).
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn seed() -> u64 {
    let s = std::env::var("REPORT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("REPORT_TEST_SEED={s}");
    s
}

struct Segment {
    state: PathBuf,
    profile: PathBuf,
    upstream: String,
    logs: PathBuf,
    starts: usize,
}

impl Segment {
    fn start(&mut self) -> Child {
        self.starts += 1;
        let log = std::fs::File::create(self.logs.join(format!("segment-{}.log", self.starts))).unwrap();
        sensor()
            .args([
                "run",
                "--config",
                NO_CONFIG,
                "--gone-after",
                "1",
                "--grace",
                "5",
                "--sensor-id",
                "seg-1",
                "--token",
                TOKEN,
            ])
            .arg("--upstream")
            .arg(&self.upstream)
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--profile")
            .arg(&self.profile)
            .env("SENSOR_LOG", "info,rustls=error,sensor::reporting::events=debug")
            .env("SENSOR_UPSTREAM_BACKOFF_MAX_MS", "1500")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn log(&self) -> String {
        let mut all = String::new();
        for i in 1..=self.starts {
            all.push_str(&std::fs::read_to_string(self.logs.join(format!("segment-{i}.log"))).unwrap_or_default());
        }
        all
    }

    /// Every event id the segment logged as durably stored.
    fn stored_ids(&self) -> Vec<String> {
        ids_in(&self.log(), "event stored")
    }

    fn outbox(&self) -> Value {
        let out = sensor()
            .args(["outbox", "status", "-o", "json", "--state-dir"])
            .arg(&self.state)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }
}

/// The `event=ID` values of the log lines containing `what`.
fn ids_in(log: &str, what: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| l.split("event=").nth(1))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_string()
        })
        .collect()
}

fn report_schema() -> jsonschema::Validator {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/schema/");
    let load =
        |f: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(format!("{dir}{f}")).unwrap()).unwrap() };
    let endpoint = load("endpoint.schema.json");
    let report = load("report.schema.json");
    let registry = jsonschema::Registry::new()
        .add("https://netsensor.invalid/schema/endpoint/1", endpoint)
        .unwrap()
        .prepare()
        .unwrap();
    jsonschema::options()
        .with_registry(&registry)
        .build(&report)
        .expect("report schema compiles")
}

fn assert_valid(v: &jsonschema::Validator, body: &Value) {
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .take(5)
        .collect();
    assert!(errors.is_empty(), "report does not match the schema: {errors:#?}");
}

const FAULTY_UPSTREAM: &str = r#"
import gzip, http.server, json, os, socket, socketserver, sys, threading, time
port, plan, log_path = int(sys.argv[1]), [s for s in sys.argv[2].split(",") if s], sys.argv[3]
delay = float(sys.argv[4])
seen, lock = set(), threading.Lock()

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            step = plan.pop(0) if plan else "ok"
        try:
            raw = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
            data = json.loads(raw)
        except Exception as e:
            return self.answer(400, json.dumps({"error": str(e)}).encode())
        first = False
        with lock:
            if step in ("ok", "drop"):
                first = data["batch_id"] not in seen
                seen.add(data["batch_id"])
            with open(log_path, "a") as f:
                f.write(json.dumps({"t": time.time(), "step": step, "first": first,
                    "key": self.headers.get("Idempotency-Key"), "auth": self.headers.get("Authorization"),
                    "path": self.path, "report": data}) + "\n")
                f.flush()
                os.fsync(f.fileno())
        if step == "500":
            return self.answer(500, b'{"error": "injected"}')
        if step.startswith("429"):
            return self.answer(429, b'{"error": "slow down"}', [("Retry-After", step.split(":")[1])])
        if step == "422":
            return self.answer(422, b'{"error": "injected: not processable"}')
        if step == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        time.sleep(delay)
        self.answer(200, json.dumps({"batch_id": data["batch_id"], "applied": first}).encode())
    def answer(self, code, body, headers=()):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    def handle_error(self, request, client_address):
        pass  # a client SIGKILLed mid-answer: expected here

S(("127.0.0.1", port), H).serve_forever()
"#;

fn upstream_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn event_ids(report: &Value) -> Vec<String> {
    report["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["event_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Each id applied exactly once, and every stored id applied or parked.
fn assert_exactly_once(applied: &[String], stored: &[String], parked: &BTreeSet<String>) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in applied {
        *counts.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "events applied more than once: {twice:?}");
    let lost: Vec<_> = stored
        .iter()
        .filter(|id| !counts.contains_key(id.as_str()) && !parked.contains(*id))
        .collect();
    assert!(lost.is_empty(), "{} stored events never applied: {lost:?}", lost.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_upstream_and_sigkills_lose_nothing_and_apply_nothing_twice() {
    let mut rng = Lcg(seed());
    let dir = tempfile::tempdir().unwrap();
    let (tls1, tls2, tls3, http) = (free_port(), free_port(), free_port(), free_port());
    let _s1 = tls_server(tls1, "report one").await;
    let _s2 = tls_server(tls2, "report two").await;
    let http_server = testbed::serve_http(bind_reusable(format!("127.0.0.1:{http}").parse().unwrap()));
    let profile = dir.path().join("seg.toml");
    std::fs::write(
        &profile,
        format!(
            "name = \"seg\"\ntargets = [\"127.0.0.1\"]\nports = \"{tls1},{tls2},{tls3},{http}\"\nanalyses = [\"certificates\"]\nconnect_timeout = \"300ms\"\nhandshake_timeout = \"2s\"\n\n[schedule]\nevery = \"1s\"\n"
        ),
    )
    .unwrap();
    let up_port = free_port();
    let mut seg = Segment {
        state: dir.path().join("seg-state"),
        profile,
        upstream: format!("http://127.0.0.1:{up_port}"),
        logs: dir.path().to_path_buf(),
        starts: 0,
    };

    // Upstream down: the events wait in the outbox, the error is visible.
    let mut child = seg.start();
    eventually("the first run's events in the outbox", 60, || {
        seg.outbox()["events"].as_u64().unwrap_or(0) >= 3
    })
    .await;
    eventually("a failed delivery noted", 30, || {
        seg.outbox()["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("retrying"))
    })
    .await;
    assert!(seg.log().contains("plain http://"), "the http:// warning is logged");

    // Upstream up, misbehaving: 500, 500, 429 (Retry-After: 2), the batch
    // taken and the connection dropped, then the re-send acknowledged.
    let script = dir.path().join("upstream.py");
    std::fs::write(&script, FAULTY_UPSTREAM).unwrap();
    let up_log = dir.path().join("upstream.jsonl");
    let mut upstream = Command::new("python3")
        .arg(&script)
        .arg(up_port.to_string())
        .arg("500,500,429:2,drop")
        .arg(&up_log)
        .arg("0.3")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the first batch acknowledged", 120, || {
        seg.outbox()["records"].as_u64() == Some(0)
    })
    .await;
    let log = upstream_log(&up_log);
    let steps: Vec<&str> = log.iter().filter_map(|e| e["step"].as_str()).collect();
    assert_eq!(&steps[..5], &["500", "500", "429:2", "drop", "ok"], "{steps:?}");
    let t = |i: usize| log[i]["t"].as_f64().unwrap();
    assert!(t(3) - t(2) >= 1.9, "Retry-After: 2 honoured ({}s)", t(3) - t(2));
    let b = |i: usize| log[i]["report"]["batch_id"].as_str().unwrap().to_string();
    assert!((1..5).all(|i| b(i) == b(0)), "every attempt carries the same batch_id");
    assert_eq!(log[4]["first"], false, "the re-send after the drop is recognised");

    // A permanent refusal parks the batch: a new endpoint, answered 422.
    term(&mut upstream);
    let mut upstream = Command::new("python3")
        .arg(&script)
        .arg(up_port.to_string())
        .arg("422")
        .arg(&up_log)
        .arg("0.3")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let _s3 = tls_server(tls3, "report three").await;
    eventually("the 422'd batch parked", 60, || {
        seg.outbox()["parked_batches"].as_array().is_some_and(|p| p.len() == 1)
    })
    .await;
    let st = seg.outbox();
    assert!(
        st["parked_batches"][0]["reason"].as_str().unwrap_or("").contains("422"),
        "{st:#}"
    );
    assert!(seg.log().contains("refused the report for good"), "parking is logged");
    // Delivery goes on after parking: the HTTP server stops, `gone` is reported.
    http_server.abort();
    eventually("the gone event delivered", 60, || {
        upstream_log(&up_log).iter().any(|e| {
            e["first"] == true
                && e["report"]["events"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["kind"] == "gone"))
        })
    })
    .await;

    // SIGKILL at random points while delivering (answers are slow: 0.3 s).
    let kills = 20;
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(100 + rng.below(1200))).await;
        kill9(&mut child);
        child = seg.start();
    }
    eventually("the outbox drained but for the parked batch", 120, || {
        let st = seg.outbox();
        st["records"].as_u64() == st["parked_batches"][0]["records"].as_u64() && st["in_flight"].is_null()
    })
    .await;
    // The operator fixed what upstream refused: requeue, restart, delivered.
    term(&mut child);
    let rq = sensor()
        .args(["outbox", "requeue", "--all", "--state-dir"])
        .arg(&seg.state)
        .output()
        .unwrap();
    assert!(rq.status.success(), "{}", String::from_utf8_lossy(&rq.stderr));
    assert!(String::from_utf8_lossy(&rq.stdout).contains("requeued"));
    let mut child = seg.start();
    eventually("the requeued batch delivered", 60, || {
        seg.outbox()["records"].as_u64() == Some(0)
    })
    .await;
    term(&mut child);
    term(&mut upstream);

    let log = upstream_log(&up_log);
    let schema = report_schema();
    let mut applied = Vec::new();
    let mut parked = BTreeSet::new();
    for e in &log {
        assert_valid(&schema, &e["report"]);
        assert_eq!(e["key"], e["report"]["batch_id"], "Idempotency-Key is the batch_id");
        assert_eq!(e["auth"], format!("Bearer {TOKEN}"));
        assert_eq!(e["path"], "/api/v1/reports");
        if e["first"] == true {
            applied.extend(event_ids(&e["report"]));
        }
        if e["step"] == "422" {
            parked.extend(event_ids(&e["report"]));
        }
    }
    let stored = seg.stored_ids();
    let resent = log.iter().filter(|e| e["first"] == false && e["step"] == "ok").count();
    eprintln!(
        "{kills} SIGKILLs, {} starts: {} events stored, {} applied, {} parked, {} batches, {resent} re-sends recognised",
        seg.starts,
        stored.len(),
        applied.len(),
        parked.len(),
        log.iter().filter(|e| e["first"] == true).count()
    );
    assert!(stored.len() >= 4, "events flowed: {}", stored.len());
    assert!(!parked.is_empty());
    assert!(
        parked.iter().all(|id| applied.contains(id)),
        "the requeued events were applied"
    );
    assert_exactly_once(&applied, &stored, &BTreeSet::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_segment_sensor_reports_to_a_central_sensor_through_sigkills() {
    let mut rng = Lcg(seed());
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut servers = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        servers.push(tls_server(*p, &format!("segment {i}")).await);
    }
    let http = free_port();
    let _http = testbed::serve_http(bind_reusable(format!("127.0.0.1:{http}").parse().unwrap()));
    let port_list = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");

    // The central sensor: intake on a loopback port, scanning nothing of interest.
    let central_port = free_port();
    let central_log = dir.path().join("central.log");
    let mut central = central(dir.path(), central_port)
        .env(
            "SENSOR_LOG",
            "info,rustls=error,netsensor::report::intake::events=debug",
        )
        .stderr(std::fs::File::create(&central_log).unwrap())
        .spawn()
        .unwrap();
    let api = format!("http://127.0.0.1:{central_port}");
    let http_client = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: String, token: &'static str| {
        let c = http_client.clone();
        async move {
            let r = c.get(path).bearer_auth(token).send().await.ok()?;
            let status = r.status().as_u16();
            Some((status, r.json::<Value>().await.unwrap_or(Value::Null)))
        }
    };
    let end = Instant::now() + Duration::from_secs(30);
    while get(format!("{api}/healthz"), TOKEN).await.is_none() {
        assert!(Instant::now() < end, "central never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let profile = dir.path().join("seg.toml");
    std::fs::write(
        &profile,
        format!(
            "name = \"seg\"\ntargets = [\"127.0.0.1\"]\nports = \"{port_list},{http}\"\nanalyses = [\"certificates\"]\nconnect_timeout = \"300ms\"\n\n[schedule]\nevery = \"1s\"\n"
        ),
    )
    .unwrap();
    let mut seg = Segment {
        state: dir.path().join("seg-state"),
        profile,
        upstream: api.clone(),
        logs: dir.path().to_path_buf(),
        starts: 0,
    };
    let mut child = seg.start();
    let kills = 20;
    for i in 0..kills {
        tokio::time::sleep(Duration::from_millis(150 + rng.below(1500))).await;
        kill9(&mut child);
        if i == kills / 2 {
            // A change mid-way: one server goes (gone after one run).
            servers.pop().unwrap().abort();
        }
        child = seg.start();
    }
    eventually("the segment's outbox drained", 120, || {
        let st = seg.outbox();
        st["records"].as_u64() == Some(0)
    })
    .await;

    // The central inventory has the segment's endpoints.
    let seg_inv = sensor()
        .args(["inventory", "-o", "json", "--state-dir"])
        .arg(&seg.state)
        .output()
        .unwrap();
    let seg_inv: Vec<Value> = serde_json::from_slice(&seg_inv.stdout).unwrap();
    let key = |addr: &Value, port: &Value| format!("{}:{}", addr.as_str().unwrap_or(""), port);
    let seg_keys: BTreeSet<String> = seg_inv
        .iter()
        .map(|e| key(&e["key"]["address"], &e["key"]["port"]))
        .collect();
    let (status, page) = get(format!("{api}/api/v1/endpoints?limit=1000&sensor=seg-1"), TOKEN)
        .await
        .unwrap();
    assert_eq!(status, 200, "{page}");
    let central_keys: BTreeSet<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| key(&e["address"], &e["port"]))
        .collect();
    assert_eq!(
        central_keys, seg_keys,
        "the central inventory has the segment's endpoints"
    );
    assert_eq!(seg_keys.len(), 4);
    let gone_port = ports[2];
    let gone = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["port"] == gone_port)
        .unwrap();
    assert!(
        gone["gone_at"].is_string(),
        "the stopped server is gone centrally: {gone}"
    );
    let (_, d) = get(format!("{api}/api/v1/endpoints?category=discovered"), TOKEN)
        .await
        .unwrap();
    assert_eq!(d["total"], 3, "{d}");
    let (_, u) = get(format!("{api}/api/v1/endpoints?category=unsecured"), TOKEN)
        .await
        .unwrap();
    assert_eq!(u["total"], 1, "{u}");
    let id = page["items"][0]["id"].as_str().unwrap();
    let (s, one) = get(format!("{api}/api/v1/endpoints/{id}"), TOKEN).await.unwrap();
    assert_eq!((s, one["id"].as_str()), (200, Some(id)));
    assert_eq!(one["sensor"], "seg-1");
    let (s, _) = get(format!("{api}/api/v1/endpoints"), "not-a-known-token-at-all")
        .await
        .unwrap();
    assert_eq!(s, 401);
    let bad = http_client
        .post(format!("{api}/api/v1/reports"))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/json")
        .body("{\"schema_version\": \"1\", \"events\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let reason = bad.json::<Value>().await.unwrap();
    assert!(
        reason["error"].as_str().unwrap().contains("malformed report"),
        "{reason}"
    );

    // The server comes back: `seen again` reaches the central at once.
    let _back = tls_server(gone_port, "segment back").await;
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, page) = get(format!("{api}/api/v1/endpoints?limit=1000&sensor=seg-1"), TOKEN)
            .await
            .unwrap();
        let item = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["port"] == gone_port)
            .cloned();
        if item.is_some_and(|e| e["gone_at"].is_null()) {
            break;
        }
        assert!(Instant::now() < end, "the endpoint back is not gone centrally: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eventually("the segment's outbox drained again", 60, || {
        seg.outbox()["records"].as_u64() == Some(0)
    })
    .await;

    term(&mut child);
    term(&mut central);
    let central_text = std::fs::read_to_string(&central_log).unwrap();
    let applied = ids_in(&central_text, "event applied");
    let stored = seg.stored_ids();
    eprintln!(
        "{kills} SIGKILLs: {} events stored by the segment, {} applied centrally, {} re-sends recognised",
        stored.len(),
        applied.len(),
        central_text.matches("re-sent; applied before").count()
    );
    assert!(!stored.is_empty());
    assert_exactly_once(&applied, &stored, &BTreeSet::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn https_upstream_is_verified_against_the_configured_ca_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f);
    // The central sensor serves TLS on its service port with a private CA.
    let chain = testbed::issue_chain("central", &["127.0.0.1"], KeyKind::EcdsaP256).unwrap();
    std::fs::write(p("central.pem"), chain.chain_pem()).unwrap();
    std::fs::write(p("central.key"), &chain.leaf_key_pem).unwrap();
    std::fs::write(p("ca.pem"), &chain.root_pem).unwrap();
    let other = testbed::issue_chain("someone else", &["127.0.0.1"], KeyKind::EcdsaP256).unwrap();
    std::fs::write(p("other-ca.pem"), &other.root_pem).unwrap();
    let central_port = free_port();
    let mut central = central(dir.path(), central_port)
        .arg("--tls-cert")
        .arg(p("central.pem"))
        .arg("--tls-key")
        .arg(p("central.key"))
        .stderr(std::fs::File::create(p("central.log")).unwrap())
        .spawn()
        .unwrap();

    let tls = free_port();
    let _server = tls_server(tls, "segment https").await;
    std::fs::write(
        p("seg.toml"),
        format!("name = \"seg\"\ntargets = [\"127.0.0.1\"]\nports = \"{tls}\"\nanalyses = [\"certificates\"]\n"),
    )
    .unwrap();
    let seg_listen = free_port();
    let start = |name: &str, ca: &str| {
        let config = p(&format!("{name}.conf.toml"));
        std::fs::write(
            &config,
            format!(
                "[upstream]\nurl = \"https://127.0.0.1:{central_port}\"\ntoken = \"{TOKEN}\"\nca_bundle = \"{}\"\n",
                p(ca).display()
            ),
        )
        .unwrap();
        let mut cmd = sensor();
        cmd.args(["run", "--sensor-id", name, "--config"]).arg(&config);
        if name == "seg-good" {
            cmd.arg("--listen").arg(format!("127.0.0.1:{seg_listen}"));
        }
        cmd.arg("--state-dir")
            .arg(p(name))
            .arg("--profile")
            .arg(p("seg.toml"))
            .env("SENSOR_UPSTREAM_BACKOFF_MAX_MS", "1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p(&format!("{name}.log"))).unwrap())
            .spawn()
            .unwrap()
    };
    let outbox = |name: &str| -> Value {
        let out = sensor()
            .args(["outbox", "status", "-o", "json", "--state-dir"])
            .arg(p(name))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let mut good = start("seg-good", "ca.pem");
    let mut bad = start("seg-wrong-ca", "other-ca.pem");
    eventually("the segment trusting the right CA delivered", 60, || {
        outbox("seg-good")["events"].as_u64() == Some(0)
            && std::fs::read_to_string(p("central.log"))
                .unwrap_or_default()
                .contains("report applied")
    })
    .await;
    eventually("the segment trusting another CA refused the certificate", 60, || {
        outbox("seg-wrong-ca")["last_error"]
            .as_str()
            .is_some_and(|e| e.to_ascii_lowercase().contains("certificate"))
    })
    .await;
    let st = outbox("seg-wrong-ca");
    assert!(st["events"].as_u64().unwrap_or(0) >= 1, "kept for later: {st:#}");
    eprintln!("wrong CA: {}", st["last_error"]);
    // The reporting series in /metrics.
    let metrics = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{seg_listen}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0)
    };
    assert!(value("netsensor_report_batches_delivered_total") >= 1.0, "{metrics}");
    assert_eq!(value("netsensor_outbox_records"), 0.0, "{metrics}");
    term(&mut good);
    term(&mut bad);
    term(&mut central);
}

/// Changes stored in the inventory but never put in the outbox (what a kill
/// between the two would leave) reach upstream through the start snapshot,
/// gone endpoints included.
#[tokio::test(flavor = "multi_thread")]
async fn the_start_snapshot_brings_upstream_level_with_unreported_changes() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f);
    let (a, b) = (free_port(), free_port());
    let _sa = tls_server(a, "snapshot a").await;
    let sb = tls_server(b, "snapshot b").await;
    std::fs::write(
        p("seg.toml"),
        format!(
            "name = \"seg\"\ntargets = [\"127.0.0.1\"]\nports = \"{a},{b}\"\nanalyses = [\"certificates\"]\nconnect_timeout = \"300ms\"\n\n[schedule]\nevery = \"1s\"\n"
        ),
    )
    .unwrap();
    let inventory = || -> Vec<Value> {
        let out = sensor()
            .args(["inventory", "-o", "json", "--state-dir"])
            .arg(p("seg-state"))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    // Without an upstream: new endpoints, then one gone, all unreported.
    let mut seg = sensor()
        .args([
            "run",
            "--config",
            NO_CONFIG,
            "--gone-after",
            "1",
            "--sensor-id",
            "seg-1",
            "--state-dir",
        ])
        .arg(p("seg-state"))
        .arg("--profile")
        .arg(p("seg.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("both endpoints found", 60, || inventory().len() == 2).await;
    sb.abort();
    eventually("one endpoint gone", 60, || {
        inventory().iter().any(|e| e["gone_at"].is_string())
    })
    .await;
    term(&mut seg);

    let central_port = free_port();
    let mut central = central(dir.path(), central_port).spawn().unwrap();
    // A profile that scans nothing new, so only the snapshot can carry it.
    std::fs::write(
        p("idle.toml"),
        "name = \"idle\"\ntargets = [\"127.0.0.1\"]\nports = \"1\"\n",
    )
    .unwrap();
    let mut seg = sensor()
        .args([
            "run",
            "--config",
            NO_CONFIG,
            "--sensor-id",
            "seg-1",
            "--token",
            TOKEN,
            "--upstream",
        ])
        .arg(format!("http://127.0.0.1:{central_port}"))
        .arg("--state-dir")
        .arg(p("seg-state"))
        .arg("--profile")
        .arg(p("idle.toml"))
        .env("SENSOR_UPSTREAM_BACKOFF_MAX_MS", "500")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut items = Vec::new();
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{central_port}/api/v1/endpoints?sensor=seg-1"))
            .bearer_auth(TOKEN)
            .send()
            .await
        {
            let v: Value = r.json().await.unwrap_or(Value::Null);
            items = v["items"].as_array().cloned().unwrap_or_default();
            if items.len() == 2 && items.iter().any(|e| e["gone_at"].is_string()) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    term(&mut seg);
    term(&mut central);
    assert_eq!(items.len(), 2, "{items:#?}");
    let gone: Vec<_> = items.iter().filter(|e| e["gone_at"].is_string()).collect();
    assert_eq!(gone.len(), 1, "{items:#?}");
    assert_eq!(gone[0]["port"], b);
}

const MTLS_UPSTREAM: &str = r#"
import http.server, json, ssl, sys
port, cert, key, client_ca, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_verify_locations(client_ca)

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        subject = dict(x[0] for x in self.connection.getpeercert()["subject"])
        with open(log_path, "a") as f:
            f.write(json.dumps({"client": subject.get("commonName")}) + "\n")
        body = b'{"applied": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

class S(http.server.HTTPServer):
    allow_reuse_address = True
    def handle_error(self, request, client_address):
        pass

srv = S(("127.0.0.1", port), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

/// mTLS: the client certificate configured in `[upstream]` is presented;
/// without it an upstream that requires one is not reached (and the events wait).
#[tokio::test(flavor = "multi_thread")]
async fn a_client_certificate_is_presented_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f);
    let server = testbed::issue_chain("mtls upstream", &["127.0.0.1"], KeyKind::EcdsaP256).unwrap();
    let client = testbed::issue_chain("mtls client", &["seg-mtls.sensor.test"], KeyKind::EcdsaP256).unwrap();
    std::fs::write(p("server.pem"), server.chain_pem()).unwrap();
    std::fs::write(p("server.key"), &server.leaf_key_pem).unwrap();
    std::fs::write(p("server-ca.pem"), &server.root_pem).unwrap();
    std::fs::write(p("client.pem"), client.chain_pem()).unwrap();
    std::fs::write(p("client.key"), &client.leaf_key_pem).unwrap();
    std::fs::write(p("client-ca.pem"), &client.root_pem).unwrap();
    std::fs::write(p("upstream.py"), MTLS_UPSTREAM).unwrap();
    let port = free_port();
    let log = p("mtls.jsonl");
    let mut upstream = Command::new("python3")
        .arg(p("upstream.py"))
        .arg(port.to_string())
        .arg(p("server.pem"))
        .arg(p("server.key"))
        .arg(p("client-ca.pem"))
        .arg(&log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let tls = free_port();
    let _server = tls_server(tls, "mtls target").await;
    std::fs::write(
        p("seg.toml"),
        format!("name = \"seg\"\ntargets = [\"127.0.0.1\"]\nports = \"{tls}\"\nanalyses = [\"certificates\"]\n"),
    )
    .unwrap();
    let start = |name: &str, with_cert: bool| {
        let mut conf = format!(
            "[upstream]\nurl = \"https://127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\nca_bundle = \"{}\"\n",
            p("server-ca.pem").display()
        );
        if with_cert {
            conf.push_str(&format!(
                "client_cert = \"{}\"\nclient_key = \"{}\"\n",
                p("client.pem").display(),
                p("client.key").display()
            ));
        }
        let config = p(&format!("{name}.conf.toml"));
        std::fs::write(&config, conf).unwrap();
        sensor()
            .args(["run", "--sensor-id", name, "--config"])
            .arg(&config)
            .arg("--state-dir")
            .arg(p(name))
            .arg("--profile")
            .arg(p("seg.toml"))
            .env("SENSOR_UPSTREAM_BACKOFF_MAX_MS", "1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p(&format!("{name}.log"))).unwrap())
            .spawn()
            .unwrap()
    };
    let outbox = |name: &str| -> Value {
        let out = sensor()
            .args(["outbox", "status", "-o", "json", "--state-dir"])
            .arg(p(name))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let mut with = start("seg-with-cert", true);
    let mut without = start("seg-without-cert", false);
    eventually("the report with a client certificate accepted", 60, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("seg-mtls.sensor.test")
    })
    .await;
    eventually("the sensor without a client certificate kept its events", 60, || {
        let st = outbox("seg-without-cert");
        st["events"].as_u64().unwrap_or(0) >= 1 && st["last_error"].is_string()
    })
    .await;
    eventually("the sensor with one drained its outbox", 30, || {
        outbox("seg-with-cert")["records"].as_u64() == Some(0)
    })
    .await;
    let lines = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(lines.lines().all(|l| l.contains("seg-mtls.sensor.test")), "{lines}");
    eprintln!(
        "without a client certificate: {}",
        outbox("seg-without-cert")["last_error"]
    );
    term(&mut with);
    term(&mut without);
    term(&mut upstream);
}

/// The outbox cap: over it a change is refused with an error in the log and a
/// resync owed; once upstream is back and the outbox has room, a snapshot
/// brings upstream level, the refused `gone` included.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_outbox_refuses_logs_and_resyncs_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f);
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut servers = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        servers.push(tls_server(*port, &format!("cap {i}")).await);
    }
    let list = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    std::fs::write(
        p("seg.toml"),
        format!(
            "name = \"seg\"\ntargets = [\"127.0.0.1\"]\nports = \"{list}\"\nanalyses = [\"certificates\"]\nconnect_timeout = \"300ms\"\n\n[schedule]\nevery = \"1s\"\n"
        ),
    )
    .unwrap();
    let central_port = free_port();
    let seg_log = p("seg.log");
    let mut seg = sensor()
        .args([
            "run",
            "--config",
            NO_CONFIG,
            "--gone-after",
            "1",
            "--sensor-id",
            "seg-1",
            "--token",
            TOKEN,
            "--upstream",
        ])
        .arg(format!("http://127.0.0.1:{central_port}"))
        .arg("--state-dir")
        .arg(p("seg-state"))
        .arg("--profile")
        .arg(p("seg.toml"))
        .env("SENSOR_OUTBOX_MAX_RECORDS", "2")
        .env("SENSOR_UPSTREAM_BACKOFF_MAX_MS", "500")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&seg_log).unwrap())
        .spawn()
        .unwrap();
    let outbox = || -> Value {
        let out = sensor()
            .args(["outbox", "status", "-o", "json", "--state-dir"])
            .arg(p("seg-state"))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    // Upstream down: the first run's record, then one gone (record 2), then
    // a second gone that does not fit.
    eventually("the first run stored", 60, || outbox()["records"].as_u64() == Some(1)).await;
    servers.pop().unwrap().abort();
    eventually("the first gone stored", 60, || outbox()["records"].as_u64() == Some(2)).await;
    servers.pop().unwrap().abort();
    eventually("the outbox full and a resync owed", 60, || {
        outbox()["resync_needed"] == true
    })
    .await;
    let text = std::fs::read_to_string(&seg_log).unwrap_or_default();
    assert!(text.contains("outbox full"), "the refusal is logged:\n{text}");
    assert_eq!(outbox()["records"].as_u64(), Some(2), "the cap holds");

    // Upstream back: the two records, then the resync snapshot.
    let mut central = central(dir.path(), central_port).spawn().unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut items = Vec::new();
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{central_port}/api/v1/endpoints?sensor=seg-1"))
            .bearer_auth(TOKEN)
            .send()
            .await
        {
            let v: Value = r.json().await.unwrap_or(Value::Null);
            items = v["items"].as_array().cloned().unwrap_or_default();
            if items.iter().filter(|e| e["gone_at"].is_string()).count() == 2 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let st = outbox();
    term(&mut seg);
    term(&mut central);
    assert_eq!(items.len(), 3, "{items:#?}");
    let gone: BTreeSet<u64> = items
        .iter()
        .filter(|e| e["gone_at"].is_string())
        .filter_map(|e| e["port"].as_u64())
        .collect();
    assert_eq!(
        gone,
        [ports[1], ports[2]].iter().map(|p| u64::from(*p)).collect(),
        "{items:#?}"
    );
    assert_eq!(st["resync_needed"], false, "the resync was done: {st:#}");
}

/// A central sensor whose merged inventory is PostgreSQL (`[inventory] url`):
/// a segment's report lands in the database and the endpoints API serves it.
#[tokio::test(flavor = "multi_thread")]
async fn a_central_sensor_keeps_the_merged_inventory_in_postgresql() {
    let Some(db) = pg::start_postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f);
    let port = free_port();
    let _server = tls_server(port, "postgres central").await;
    std::fs::write(
        p("seg.toml"),
        format!("name = \"seg\"\ntargets = [\"127.0.0.1\"]\nports = \"{port}\"\nanalyses = [\"certificates\"]\n"),
    )
    .unwrap();
    std::fs::write(p("central.toml"), format!("[inventory]\nurl = \"{}\"\n", db.url())).unwrap();
    let central_port = free_port();
    let mut central = sensor()
        .args(["run", "--sensor-id", "central", "--accept-token", TOKEN, "--config"])
        .arg(p("central.toml"))
        .arg("--profiles-dir")
        .arg(p("no-profiles"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{central_port}"))
        .arg("--state-dir")
        .arg(p("central-state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(p("central.log")).unwrap())
        .spawn()
        .unwrap();
    let mut seg = sensor()
        .args([
            "run",
            "--config",
            NO_CONFIG,
            "--sensor-id",
            "seg-1",
            "--token",
            TOKEN,
            "--upstream",
        ])
        .arg(format!("http://127.0.0.1:{central_port}"))
        .arg("--state-dir")
        .arg(p("seg-state"))
        .arg("--profile")
        .arg(p("seg.toml"))
        .env("SENSOR_UPSTREAM_BACKOFF_MAX_MS", "500")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let store = netsensor::store::central::PgInventory::connect_off_runtime(&db.url()).unwrap();
    use netsensor::store::central::CentralStore;
    let mut rows = Vec::new();
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while rows.is_empty() && std::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(300)).await;
        rows = tokio::task::block_in_place(|| store.query(&netsensor::store::inventory::Filter::default())).unwrap();
    }
    term(&mut seg);
    let log = std::fs::read_to_string(p("central.log")).unwrap_or_default();
    assert_eq!(rows.len(), 1, "central log:\n{log}");
    assert_eq!((rows[0].key.sensor.as_str(), rows[0].key.port), ("seg-1", port));
    assert!(log.contains("reports from other sensors go to postgres://"), "{log}");
    // The API reads the same rows from PostgreSQL.
    let body = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{central_port}/api/v1/endpoints"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["total"], 1, "{body}");
    term(&mut central);
    tokio::task::block_in_place(|| drop(store));
}
