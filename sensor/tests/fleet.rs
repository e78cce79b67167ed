//! The fleet end to end (issue 19): one central sensor (embedded SQLite)
//! and three sensors enrolled with one-time tokens, real processes on
//! loopback. A split definition over real TLS and plain servers is covered
//! exactly once across the three; suspending it stops it before the next
//! run; a SIGKILLed sensor shows offline within the configured silence;
//! replayed and expired enrollment tokens, a sensor credential on an
//! administrator route, a voided credential and bad definitions are refused
//! with the status and the field. The bodies are checked against
//! docs/schema/fleet-*.schema.json.

mod common;
#[path = "../../tests/it/pg.rs"]
mod pg;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{bind_reusable, free_port, kill9, sensor, term, tls_server};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-0123456789abcdef";

fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema").join(name);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&v).unwrap()
}

fn valid(name: &str, body: &Value) {
    let v = schema(name);
    let errors: Vec<String> = v.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{body}");
}

/// A sensor process, SIGKILLed and reaped when dropped if still running, so
/// a failing assertion leaves no central or member behind.
struct Proc(Child);

impl std::ops::Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

struct Api {
    base: String,
    http: reqwest::blocking::Client,
}

impl Api {
    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(token)
            .timeout(Duration::from_secs(10));
        match body {
            Some(b) => req = req.json(&b),
            // The service port wants a length on every POST.
            None if method != "GET" => req = req.header("Content-Length", "0"),
            None => {}
        }
        match req.send() {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, ADMIN, body)
    }

    fn sensors(&self) -> BTreeMap<String, Value> {
        let (status, list) = self.admin("GET", "/api/v1/sensors", None);
        assert_eq!(status, 200, "{list}");
        valid("fleet-sensors.schema.json", &list);
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap().to_string(), s.clone()))
            .collect()
    }

    fn enrollment_token(&self) -> String {
        let (status, body) = self.admin("POST", "/api/v1/enrollment-tokens", None);
        assert_eq!(status, 201, "{body}");
        valid("fleet-enrollment-token.schema.json", &body);
        body["token"].as_str().unwrap().to_string()
    }
}

fn central(dir: &Path, port: u16) -> Proc {
    central_named(dir, "central", port, "")
}

/// A central sensor `name` on `port`; `extra` is more of its configuration.
fn central_named(dir: &Path, name: &str, port: u16, extra: &str) -> Proc {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[sensor]\nid = \"{name}\"\nstate_dir = {:?}\nprofiles_dir = {:?}\n\n[fleet]\noffline_after = \"4s\"\nenrollment_ttl = \"10s\"\n{extra}",
            dir.join(format!("{name}-state")).display().to_string(),
            empty_dir(dir, &format!("{name}-profiles")).display().to_string(),
        ),
    )
    .unwrap();
    sensor()
        .args(["run", "--admin-token", ADMIN, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(&cfg)
        .env("SENSOR_LOG", "info,rustls=error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
        .spawn()
        .map(Proc)
        .unwrap()
}

fn empty_dir(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// A sensor enrolling with `token` (first start) under `name`.
fn member(dir: &Path, name: &str, upstream: &str, token: &str) -> Proc {
    member_of(dir, name, &[upstream], token)
}

/// The same with several centrals, tried in order.
fn member_of(dir: &Path, name: &str, upstreams: &[&str], token: &str) -> Proc {
    let upstream = upstreams[0];
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[sensor]\nid = \"{name}\"\nname = \"{name}\"\nstate_dir = {:?}\nprofiles_dir = {:?}\n\n[upstream]\nurl = \"{upstream}\"\npoll_every = \"1s\"\n",
            dir.join(format!("{name}-state")).display().to_string(),
            empty_dir(dir, &format!("{name}-profiles")).display().to_string(),
        ),
    )
    .unwrap();
    let mut cmd = sensor();
    cmd.args(["run", "--enroll-token", token, "--config"]).arg(&cfg);
    if upstreams.len() > 1 {
        for u in upstreams {
            cmd.args(["--upstream", u]);
        }
    }
    cmd.env("SENSOR_LOG", "info,rustls=error")
        .env("SENSOR_UPSTREAM_BACKOFF_MAX_MS", "500")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
        .spawn()
        .map(Proc)
        .unwrap()
}

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn three_enrolled_sensors_share_a_split_scan_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Real servers on loopback: three TLS, one plain HTTP; two closed ports.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tls_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let http_port = free_port();
    let servers = rt.block_on(async {
        let mut servers = Vec::new();
        for (i, p) in tls_ports.iter().enumerate() {
            servers.push(tls_server(*p, &format!("fleet {i}")).await);
        }
        servers.push(testbed::serve_http(bind_reusable(
            format!("127.0.0.1:{http_port}").parse().unwrap(),
        )));
        servers
    });
    let open: BTreeSet<u16> = tls_ports.iter().copied().chain([http_port]).collect();
    let ports: Vec<u16> = open.iter().copied().chain([free_port(), free_port()]).collect();

    let port = free_port();
    let mut central = central(d, port);
    let base = format!("http://127.0.0.1:{port}");
    let api = Api {
        base: base.clone(),
        http: reqwest::blocking::Client::builder().no_proxy().build().unwrap(),
    };
    eventually("the central listening", 30, || {
        api.call("GET", "/healthz", "", None).0 == 200
    });

    // Enrollment: three tokens, three sensors.
    let tokens: Vec<String> = (0..3).map(|_| api.enrollment_token()).collect();
    let names = ["s1", "s2", "s3"];
    let mut members: Vec<Proc> = names.iter().zip(&tokens).map(|(n, t)| member(d, n, &base, t)).collect();
    let a = &api;
    eventually("three sensors online", 60, || {
        let s = a.sensors();
        s.len() == 3 && s.values().all(|v| v["status"] == "online")
    });
    let a = &api;
    eventually("a heartbeat from each", 20, || {
        a.sensors().values().all(|s| {
            let h = &s["heartbeat"];
            h["uptime_s"].is_u64()
                && h["version"].is_string()
                && h.get("outbox_depth").is_some()
                && h["running"].is_array()
        })
    });
    let cred_path = d.join("s1-state/fleet.credential");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cred_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the credential is the sensor's alone");
    }
    let cred1 = std::fs::read_to_string(&cred_path).unwrap();

    // Bad input, each refused with its status and field.
    let t0 = tokens[0].clone();
    let checks = {
        let a = &api;
        let mut out = Vec::new();
        // A replayed token.
        let (s, b) = a.call(
            "POST",
            "/api/v1/enroll",
            "",
            Some(json!({"token": t0, "name": "s9", "id": "s9"})),
        );
        out.push(json!([s, b]));
        // An expired one (the central's enrollment_ttl is 10 s: long enough for a loaded machine to start the sensors).
        let t = a.enrollment_token();
        std::thread::sleep(Duration::from_millis(10_500));
        let (s, b) = a.call(
            "POST",
            "/api/v1/enroll",
            "",
            Some(json!({"token": t, "name": "s8", "id": "s8"})),
        );
        out.push(json!([s, b]));
        // A sensor credential on administrator routes.
        out.push(json!(a.call("GET", "/api/v1/sensors", &cred1, None).0));
        out.push(json!(a.call("POST", "/api/v1/enrollment-tokens", &cred1, None).0));
        out.push(json!(a.call("POST", "/api/v1/scans", &cred1, Some(json!({}))).0));
        // ... but its own assignments.
        let (s, b) = a.call("GET", "/api/v1/assignments", &cred1, None);
        out.push(json!(s));
        valid("fleet-assignments.schema.json", &b);
        let def = |extra: Value| {
            let mut d = json!({"name": "bad", "targets": ["127.0.0.1"], "ports": "1", "sensors": ["s1", "s2"]});
            for (k, v) in extra.as_object().unwrap() {
                d[k] = v.clone();
            }
            d
        };
        for body in [
            def(json!({"colour": "blue"})),
            def(json!({"sensors": []})),
            def(json!({"per_sensor": {"s1": {"targets": ["127.0.0.0/30"]}, "s2": {"targets": ["127.0.0.2"]}}})),
            def(json!({"ports": "99999"})),
        ] {
            let (s, b) = a.admin("POST", "/api/v1/scans", Some(body));
            out.push(json!([s, b["field"]]));
        }
        Value::Array(out)
    };
    let c = checks.as_array().unwrap();
    assert_eq!(c[0][0], 401, "replayed: {}", c[0]);
    assert!(c[0][1]["error"].as_str().unwrap().contains("used already"), "{}", c[0]);
    assert_eq!(c[1][0], 401, "expired: {}", c[1]);
    assert!(c[1][1]["error"].as_str().unwrap().contains("expired"), "{}", c[1]);
    assert_eq!(
        (c[2].clone(), c[3].clone(), c[4].clone()),
        (json!(403), json!(403), json!(403))
    );
    assert_eq!(c[5], 200);
    assert_eq!(c[6], json!([400, "colour"]));
    assert_eq!(c[7], json!([400, "sensors"]));
    assert_eq!(c[8], json!([400, "per_sensor.s2.targets"]));
    assert_eq!(c[9], json!([400, "ports"]));

    // The split definition.
    let port_list = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    let definition = json!({
        "name": "lab", "targets": ["127.0.0.1"], "ports": port_list,
        "connect_timeout": "300ms", "analyses": ["certificates"],
        "schedule": {"every": "2s"},
        "sensors": names, "split": true,
    });
    valid("fleet-scan.schema.json", &definition);
    // Created from a TOML profile by the CLI: local and central profiles are one format.
    let lab = d.join("lab.toml");
    std::fs::write(
        &lab,
        format!(
            "name = \"lab\"\ntargets = [\"127.0.0.1\"]\nports = \"{port_list}\"\nconnect_timeout = \"300ms\"\nanalyses = [\"certificates\"]\n\n[schedule]\nevery = \"2s\"\n"
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let out = sensor()
            .args(["fleet", "--central", &base, "--token", ADMIN])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(&[
        "--json",
        "scans",
        "create",
        lab.to_str().unwrap(),
        "--sensors",
        "s1,s2,s3",
        "--split",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let (code, _, err) = cli(&["scans", "create", lab.to_str().unwrap(), "--sensors", "s1"]);
    assert_eq!(code, Some(2), "the name is taken: {err}");
    let created = json!([201, created]);
    let scan_id = created[1]["id"].as_str().unwrap().to_string();

    // Every open (address, port) in the central inventory, once, named by the sensor that probed it.
    let a = &api;
    let mut seen: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    eventually("every server in the central inventory", 90, || {
        let (s, page) = a.admin("GET", "/api/v1/endpoints?limit=1000", None);
        if s != 200 {
            return false;
        }
        seen.clear();
        for e in page["items"].as_array().unwrap() {
            let port = e["port"].as_u64().unwrap() as u16;
            seen.entry(port)
                .or_default()
                .insert(e["sensor"].as_str().unwrap_or("").to_string());
        }
        open.iter().all(|p| seen.contains_key(p))
    });
    for (p, who) in &seen {
        assert_eq!(who.len(), 1, "port {p} was probed by {who:?}");
        assert!(names.contains(&who.iter().next().unwrap().as_str()), "{who:?}");
    }
    assert_eq!(
        seen.keys().copied().collect::<BTreeSet<_>>(),
        open,
        "nothing else was found"
    );
    let sharing: BTreeSet<&String> = seen.values().flatten().collect();
    assert!(sharing.len() >= 2, "the plan was shared: {seen:?}");

    // The definition shows each sensor's last run.
    let id = scan_id.clone();
    let a = &api;
    eventually("every sensor's run recorded", 30, || {
        let (s, b) = a.admin("GET", &format!("/api/v1/scans/{id}"), None);
        s == 200
            && b["sensors"].as_array().unwrap().len() == 3
            && b["sensors"]
                .as_array()
                .unwrap()
                .iter()
                .all(|x| x["last_run"]["state"].is_string())
    });

    let (_, shown) = api.admin("GET", &format!("/api/v1/scans/{scan_id}"), None);
    valid("fleet-scan.schema.json", &shown["definition"]);
    assert_eq!(shown["definition"]["split"], true);

    // Suspend: no fleet run starts after the sensors saw it.
    let id = scan_id.clone();
    let before = {
        let a = &api;
        let (s, _) = a.admin("POST", &format!("/api/v1/scans/{id}/suspend"), None);
        assert_eq!(s, 200);
        // Two polls for the sensors to see it, one run (2 s) to end.
        std::thread::sleep(Duration::from_secs(4));
        a.admin("GET", &format!("/api/v1/scans/{id}"), None).1
    };
    assert_eq!(before["state"], "suspended");
    std::thread::sleep(Duration::from_secs(5));
    let id = scan_id.clone();
    let after = api.admin("GET", &format!("/api/v1/scans/{id}"), None).1;
    let runs = |v: &Value| -> Vec<Value> {
        v["sensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["last_run"].clone())
            .collect()
    };
    assert_eq!(runs(&before), runs(&after), "no run after the suspension");
    for log in names {
        let text = std::fs::read_to_string(d.join(format!("{log}.log"))).unwrap();
        assert!(text.contains("fleet: assignments in force"), "{log}: {text}");
    }

    // Offline within the silence (4 s) after a SIGKILL; in the API, /metrics and the log.
    kill9(&mut members[2]);
    let killed = Instant::now();
    let a = &api;
    eventually("s3 offline", 15, || a.sensors()["s3"]["status"] == "offline");
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "took {:?}",
        killed.elapsed()
    );
    let a = &api;
    eventually("the offline count in /metrics", 20, || {
        let text = a
            .http
            .get(format!("{}/metrics", a.base))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        text.contains("netsensor_fleet_sensors{status=\"offline\"} 1")
    });
    let log = std::fs::read_to_string(d.join("central.log")).unwrap();
    assert!(log.contains("sensor offline") && log.contains("s3"), "{log}");

    // Void s2: its credential is refused from then on.
    let cred2 = std::fs::read_to_string(d.join("s2-state/fleet.credential")).unwrap();
    let refused = {
        let a = &api;
        let (s, b) = a.admin("POST", "/api/v1/sensors/s2/void", None);
        assert_eq!(s, 200, "{b}");
        json!([
            b["status"],
            a.call("GET", "/api/v1/assignments", &cred2, None).0,
            a.admin("POST", "/api/v1/sensors/s2/resume", None).0
        ])
    };
    assert_eq!(refused, json!(["voided", 401, 409]));
    let (code, table, _) = cli(&["sensors"]);
    assert_eq!(code, Some(0));
    let line = |n: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(n))
            .unwrap_or("")
            .to_string()
    };
    assert!(
        line("s1").contains("online") && line("s2").contains("voided") && line("s3").contains("offline"),
        "{table}"
    );

    for m in &mut members {
        term(m);
    }
    term(&mut central);
    for s in servers {
        s.abort();
    }
    drop(rt);
}

/// Two central processes on one PostgreSQL serve one fleet: enrolment on
/// one, the definition on the other; one is SIGKILLed mid-run, its sensor
/// fails over to the other for assignments and heartbeats, and once the
/// killed one is back every server is in the central inventory once.
#[test]
fn two_centrals_on_postgresql_serve_one_fleet_through_a_sigkill() {
    let Some(db) = pg::start_postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tls_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let servers = rt.block_on(async {
        let mut servers = Vec::new();
        for (i, p) in tls_ports.iter().enumerate() {
            servers.push(tls_server(*p, &format!("ha {i}")).await);
        }
        servers
    });
    let open: BTreeSet<u16> = tls_ports.iter().copied().collect();
    let ports: Vec<u16> = open
        .iter()
        .copied()
        .chain([free_port(), free_port(), free_port()])
        .collect();
    let extra = format!("\n[inventory]\nurl = \"{}\"\n", db.url());
    let (pa, pb) = (free_port(), free_port());
    let mut ca = central_named(d, "central-a", pa, &extra);
    let mut cb = central_named(d, "central-b", pb, &extra);
    let (ua, ub) = (format!("http://127.0.0.1:{pa}"), format!("http://127.0.0.1:{pb}"));
    let client = || reqwest::blocking::Client::builder().no_proxy().build().unwrap();
    let a = Api {
        base: ua.clone(),
        http: client(),
    };
    let b = Api {
        base: ub.clone(),
        http: client(),
    };
    eventually("both centrals listening", 30, || {
        a.call("GET", "/healthz", "", None).0 == 200 && b.call("GET", "/healthz", "", None).0 == 200
    });
    // Tokens from A, redeemed through either; s1 prefers A, s2 prefers B.
    let (t1, t2) = (a.enrollment_token(), a.enrollment_token());
    let mut s1 = member_of(d, "s1", &[&ua, &ub], &t1);
    let mut s2 = member_of(d, "s2", &[&ub, &ua], &t2);
    eventually("both sensors online, as B sees them", 60, || {
        let s = b.sensors();
        s.len() == 2 && s.values().all(|v| v["status"] == "online")
    });
    let port_list = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    let (status, created) = b.admin(
        "POST",
        "/api/v1/scans",
        Some(
            json!({"name": "ha", "targets": ["127.0.0.1"], "ports": port_list, "connect_timeout": "300ms",
                    "analyses": ["certificates"], "schedule": {"every": "2s"}, "sensors": ["s1", "s2"], "split": true}),
        ),
    );
    assert_eq!(status, 201, "{created}");
    let (status, listed) = a.admin("GET", "/api/v1/scans", None);
    assert_eq!(
        (status, listed.as_array().map(Vec::len)),
        (200, Some(1)),
        "A sees what B stored"
    );

    // SIGKILL A once the fleet's runs have started.
    eventually("a fleet run on s1", 60, || {
        std::fs::read_to_string(d.join("s1.log"))
            .unwrap_or_default()
            .contains("fleet-ha")
    });
    kill9(&mut ca);
    eventually("s1 failed over to B", 30, || {
        std::fs::read_to_string(d.join("s1.log"))
            .unwrap_or_default()
            .contains("failed over to this central")
    });
    std::thread::sleep(Duration::from_secs(4));
    let s = b.sensors();
    assert_eq!(s["s1"]["status"], "online", "s1's heartbeats reach B: {s:?}");

    // A comes back; every server once in the shared inventory, named by the sensor that probed it.
    let mut ca = central_named(d, "central-a", pa, &extra);
    let mut seen: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    eventually("every server in the inventory", 90, || {
        let (s, page) = b.admin("GET", "/api/v1/endpoints?limit=1000", None);
        if s != 200 {
            return false;
        }
        seen.clear();
        for e in page["items"].as_array().unwrap() {
            seen.entry(e["port"].as_u64().unwrap() as u16)
                .or_default()
                .push(e["sensor"].as_str().unwrap_or("").to_string());
        }
        open.iter().all(|p| seen.contains_key(p))
    });
    for (p, who) in &seen {
        assert_eq!(who.len(), 1, "port {p}: {who:?}");
    }
    assert_eq!(seen.keys().copied().collect::<BTreeSet<_>>(), open);
    eventually("the restarted A reads the same inventory", 30, || {
        let (_, page) = a.admin("GET", "/api/v1/endpoints?limit=1000", None);
        page["total"].as_u64() == Some(open.len() as u64)
    });

    for c in [&mut s1, &mut s2, &mut ca, &mut cb] {
        term(c);
    }
    for s in servers {
        s.abort();
    }
    drop(rt);
}

/// Report delivery fails over too (not only assignments and heartbeats):
/// a sensor with two centrals on one PostgreSQL reports through the first
/// until it is SIGKILLed (and stays down), then through the second; the
/// shared inventory has every server once.
#[test]
fn reports_fail_over_to_the_second_central_when_the_first_is_killed() {
    let Some(db) = pg::start_postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Two servers up before the kill, two more only after it.
    let before: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let after: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let mut servers = rt.block_on(async {
        let mut s = Vec::new();
        for (i, p) in before.iter().enumerate() {
            s.push(tls_server(*p, &format!("before {i}")).await);
        }
        s
    });
    let extra = format!("\n[inventory]\nurl = \"{}\"\n", db.url());
    let (pa, pb) = (free_port(), free_port());
    let mut ca = central_named(d, "central-a", pa, &extra);
    let mut cb = central_named(d, "central-b", pb, &extra);
    let (ua, ub) = (format!("http://127.0.0.1:{pa}"), format!("http://127.0.0.1:{pb}"));
    let client = || reqwest::blocking::Client::builder().no_proxy().build().unwrap();
    let a = Api {
        base: ua.clone(),
        http: client(),
    };
    let b = Api {
        base: ub.clone(),
        http: client(),
    };
    eventually("both centrals listening", 30, || {
        a.call("GET", "/healthz", "", None).0 == 200 && b.call("GET", "/healthz", "", None).0 == 200
    });
    let token = a.enrollment_token();
    let mut s1 = member_of(d, "s1", &[&ua, &ub], &token);
    eventually("s1 online", 60, || {
        b.sensors().get("s1").is_some_and(|v| v["status"] == "online")
    });
    let ports = before
        .iter()
        .chain(&after)
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let (status, created) = b.admin(
        "POST",
        "/api/v1/scans",
        Some(
            json!({"name": "fo", "targets": ["127.0.0.1"], "ports": ports, "connect_timeout": "300ms",
                    "analyses": ["certificates"], "schedule": {"every": "2s"}, "sensors": ["s1"]}),
        ),
    );
    assert_eq!(status, 201, "{created}");
    let ports_in = |api: &Api| -> Option<BTreeMap<u16, usize>> {
        let (s, page) = api.admin("GET", "/api/v1/endpoints?limit=1000", None);
        (s == 200).then(|| {
            let mut n = BTreeMap::new();
            for e in page["items"].as_array().unwrap() {
                *n.entry(e["port"].as_u64().unwrap() as u16).or_insert(0) += 1;
            }
            n
        })
    };
    eventually("the first servers reported through A", 90, || {
        ports_in(&b).is_some_and(|n| before.iter().all(|p| n.contains_key(p)))
    });
    let log_a = std::fs::read_to_string(d.join("central-a.log")).unwrap();
    assert!(
        log_a.contains("report applied") && log_a.contains("s1"),
        "s1 reported through A first: {log_a}"
    );

    // A is gone for good; the next servers' reports must reach B.
    kill9(&mut ca);
    servers.extend(rt.block_on(async {
        let mut s = Vec::new();
        for (i, p) in after.iter().enumerate() {
            s.push(tls_server(*p, &format!("after {i}")).await);
        }
        s
    }));
    let mut seen = BTreeMap::new();
    eventually("the later servers reported through B", 90, || {
        seen = ports_in(&b).unwrap_or_default();
        after.iter().all(|p| seen.contains_key(p))
    });
    let all: BTreeSet<u16> = before.iter().chain(&after).copied().collect();
    assert_eq!(seen.keys().copied().collect::<BTreeSet<_>>(), all, "{seen:?}");
    assert!(seen.values().all(|n| *n == 1), "each endpoint once: {seen:?}");
    let log_s1 = std::fs::read_to_string(d.join("s1.log")).unwrap();
    assert!(
        log_s1.contains("report delivery failed over to this upstream"),
        "{log_s1}"
    );
    let log_b = std::fs::read_to_string(d.join("central-b.log")).unwrap();
    assert!(
        log_b.contains("report applied") && log_b.contains("s1"),
        "s1's reports reach B: {log_b}"
    );
    term(&mut s1);
    term(&mut cb);
    for s in servers {
        s.abort();
    }
    drop(rt);
}

/// Refusals and pauses say why: a run stopped by its schedule window is
/// reported `paused` with the window (API and `sensor fleet scans show`),
/// and a suspended sensor's report gets a 403 naming the sensor and what
/// ends it.
#[test]
fn a_window_pause_and_a_suspension_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let mut central = central(d, port);
    let base = format!("http://127.0.0.1:{port}");
    let api = Api {
        base: base.clone(),
        http: reqwest::blocking::Client::builder().no_proxy().build().unwrap(),
    };
    eventually("the central listening", 30, || {
        api.call("GET", "/healthz", "", None).0 == 200
    });
    let token = api.enrollment_token();
    let mut s1 = member(d, "s1", &base, &token);
    let a = &api;
    eventually("s1 online", 60, || {
        a.sensors().get("s1").is_some_and(|v| v["status"] == "online")
    });

    // A window that is open now and closes at the next minute (or the one
    // after, when this one is nearly over); a walk far longer than that.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let minute = (now / 60) % 1440;
    let end = (minute + if now % 60 < 40 { 1 } else { 2 }) % 1440;
    let hm = |m: u64| format!("{:02}:{:02}", m / 60, m % 60);
    let window = format!("{}-{}", hm(minute), hm(end));
    let (status, created) = api.admin(
        "POST",
        "/api/v1/scans",
        Some(
            json!({"name": "night", "targets": ["127.0.0.1"], "ports": "1-1500", "rate": 10,
                    "connect_timeout": "300ms", "schedule": {"every": "1h", "window": window},
                    "sensors": ["s1"]}),
        ),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let want = format!("outside window {window} UTC");
    let mut run = Value::Null;
    eventually("the run paused by its window", 180, || {
        let (s, b) = a.admin("GET", &format!("/api/v1/scans/{id}"), None);
        run = b["sensors"][0]["last_run"].clone();
        s == 200 && run["state"] == "paused"
    });
    assert_eq!(run["reason"], want.as_str(), "{run}");
    let out = sensor()
        .args(["fleet", "--central", &base, "--token", ADMIN, "scans", "show", &id])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && shown.contains(&want), "{shown}");

    // Suspended: its report is refused, and the answer says why.
    let cred = std::fs::read_to_string(d.join("s1-state/fleet.credential")).unwrap();
    let (s, _) = api.admin("POST", "/api/v1/sensors/s1/suspend", None);
    assert_eq!(s, 200);
    let (s, body) = api.call("POST", "/api/v1/reports", cred.trim(), None);
    assert_eq!(s, 403, "{body}");
    assert_eq!(
        body["error"],
        "sensor s1 is suspended by an administrator; reports are refused until it is resumed"
    );
    // It still reads its assignments (none run while suspended).
    assert_eq!(api.call("GET", "/api/v1/assignments", cred.trim(), None).0, 200);
    term(&mut s1);
    term(&mut central);
}
