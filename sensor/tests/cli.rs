//! The real `sensor` binary end to end: outputs, the schema contract, input
//! files, exit codes and messages for bad input, and the demo.

use std::net::SocketAddr;
use std::process::{Command, Output};

use serde_json::Value;
use testbed::{self, KeyKind};
use tokio::net::TcpListener;

fn sensor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sensor"))
        .args(args)
        .output()
        .expect("run the sensor binary")
}

async fn sensor_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sensor(&args)
    })
    .await
    .expect("join")
}

fn schema() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/schema/endpoint.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema file")).expect("schema JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn assert_valid(v: &jsonschema::Validator, record: &Value) {
    let errors: Vec<String> = v
        .iter_errors(record)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "record does not match the schema: {errors:#?}\n{record:#}"
    );
}

struct Lab {
    tls: SocketAddr,
    http: SocketAddr,
    closed: SocketAddr,
    _servers: Vec<tokio::task::JoinHandle<()>>,
}

async fn lab() -> Lab {
    let chain = testbed::issue_chain("cli", &["cli.test"], KeyKind::EcdsaP256).unwrap();
    let (cfg, _) = testbed::rustls_config(chain.presented(), &chain.leaf_key, &[&rustls::version::TLS13]).unwrap();
    let lt = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lh = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    Lab {
        tls: lt.local_addr().unwrap(),
        http: lh.local_addr().unwrap(),
        closed,
        _servers: vec![testbed::serve_tls(lt, cfg), testbed::serve_http(lh)],
    }
}

fn ports(lab: &Lab) -> String {
    format!("{},{},{}", lab.tls.port(), lab.http.port(), lab.closed.port())
}

#[tokio::test(flavor = "multi_thread")]
async fn ndjson_records_match_the_published_schema() {
    let lab = lab().await;
    let out = sensor_async(
        [
            "scan",
            "127.0.0.1",
            "-p",
            &ports(&lab),
            "-o",
            "ndjson",
            "--show-closed",
            "--rate",
            "0",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = schema();
    let records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(records.len(), 3, "{records:#?}");
    for r in &records {
        assert_valid(&v, r);
    }
    // The schema has teeth: a broken record is rejected.
    let mut broken = records[0].clone();
    broken["port"] = Value::from(0);
    broken["category"] = Value::from("maybe");
    assert_eq!(v.iter_errors(&broken).count(), 2);
    let by_port = |p: u16| records.iter().find(|r| r["port"] == p).expect("record for port");
    assert_eq!(by_port(lab.tls.port())["category"], "discovered");
    assert_eq!(by_port(lab.tls.port())["handshake"]["protocol"], "TLSv1.3");
    assert_eq!(by_port(lab.tls.port())["chain"].as_array().unwrap().len(), 2);
    assert_eq!(by_port(lab.http.port())["category"], "unsecured");
    assert_eq!(by_port(lab.closed.port())["category"], "closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_document_goes_to_the_out_file() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results.json");
    let out = sensor_async(vec![
        "scan".into(),
        "127.0.0.1".into(),
        "-p".into(),
        ports(&lab),
        "-o".into(),
        "json".into(),
        "--out".into(),
        file.display().to_string(),
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "results go to the file, not stdout");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(doc["schema_version"], "2");
    assert_eq!(doc["scan"]["targets"][0], "127.0.0.1");
    let endpoints = doc["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2, "closed ports are hidden by default: {endpoints:#?}");
    let v = schema();
    for e in endpoints {
        assert_valid(&v, e);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn html_reports_of_a_scan_and_of_the_inventory_stand_alone() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let check = |html: &str, what: &str| {
        assert!(html.starts_with("<!DOCTYPE html>"), "{what}");
        assert!(
            html.contains("id=\"grade-chart\"") && html.contains("id=\"expiry-chart\""),
            "{what}"
        );
        assert_eq!(
            html.matches("<article class=\"endpoint\" id=\"ep-").count(),
            2,
            "{what}: one detail per endpoint"
        );
        assert!(html.contains("cli.test"), "{what}");
        for outside in ["<script", "<link", "src=\"http", "href=\"http"] {
            assert!(!html.contains(outside), "{what}: {outside}");
        }
    };
    let file = dir.path().join("report.html");
    let out = sensor_async(vec![
        "scan".into(),
        "127.0.0.1".into(),
        "-p".into(),
        ports(&lab),
        "-o".into(),
        "html".into(),
        "--out".into(),
        file.display().to_string(),
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check(&std::fs::read_to_string(&file).unwrap(), "scan");

    // The same from the inventory, after one run of the daemon.
    let profile = dir.path().join("p.toml");
    std::fs::write(
        &profile,
        format!("name = \"p\"\ntargets = [\"127.0.0.1\"]\nports = \"{}\"\n", ports(&lab)),
    )
    .unwrap();
    let state = dir.path().join("state").display().to_string();
    let run = sensor_async(vec![
        "run".into(),
        "--once".into(),
        "--state-dir".into(),
        state.clone(),
        "--profile".into(),
        profile.display().to_string(),
    ])
    .await;
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let file = dir.path().join("inventory.html");
    let out = sensor_async(vec![
        "inventory".into(),
        "export".into(),
        "--state-dir".into(),
        state,
        "-o".into(),
        "html".into(),
        "--out".into(),
        file.display().to_string(),
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&file).unwrap();
    check(&html, "inventory");
    assert_eq!(
        html.matches("<tr data-kind=\"new\">").count(),
        4,
        "each endpoint's history, and the newest changes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_and_table_outputs_and_target_files() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("targets.txt");
    std::fs::write(&list, "# lab targets\n127.0.0.1   # the lab\n").unwrap();
    let out = sensor_async(vec![
        "scan".into(),
        "-iL".into(),
        list.display().to_string(),
        "-p".into(),
        ports(&lab),
        "-o".into(),
        "csv".into(),
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "address,port,hostname,category,service,protocol,cipher_suite,group,subject_cn,not_after,key,detail,grade"
        )
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows.iter().any(|r| r.contains(",discovered,tls,TLSv1.3,TLS_AES_")),
        "{text}"
    );
    assert!(rows.iter().any(|r| r.contains(",unsecured,http,")), "{text}");

    let out = sensor_async(vec!["scan".into(), "127.0.0.1".into(), "-p".into(), ports(&lab)]).await;
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("ADDRESS"), "{table}");
    assert!(table.contains("cli.test"), "{table}");
    assert!(
        table.contains("2 endpoints: 1 discovered (TLS), 1 unsecured"),
        "{table}"
    );
}

#[test]
fn bad_input_exits_2_and_names_what_is_wrong() {
    for (args, needle) in [
        (vec!["scan", "127.0.0.300"], "`127.0.0.300`"),
        (vec!["scan", "127.0.0.1", "-p", "70000"], "`70000`"),
        (vec!["scan", "127.0.0.1", "-p", "443,https"], "`https`"),
        (vec!["scan", "127.0.0.1", "-o", "xml"], "`xml`"),
        (vec!["scan", "127.0.0.1", "--shard", "5/3"], "`5/3`"),
        (
            vec!["scan", "127.0.0.1", "--exclude", "localhost"],
            "exclusions take addresses",
        ),
        (
            vec!["scan", "-iL", "/nonexistent/targets.txt"],
            "/nonexistent/targets.txt",
        ),
        (vec!["scan"], "no targets given"),
    ] {
        let out = sensor(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed results");
    }
}

#[test]
fn a_bad_endpoint_budget_exits_2_and_names_the_flag() {
    for (args, needle) in [
        (vec!["scan", "127.0.0.1", "--endpoint-budget", "2h"], "longer than 1h"),
        (
            vec!["scan", "127.0.0.1", "--endpoint-budget", "soon"],
            "does not start with a number",
        ),
        (vec!["grade", "127.0.0.1:1", "--endpoint-budget", "0s"], "zero"),
    ] {
        let out = sensor(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("--endpoint-budget") && err.contains(needle),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed results");
    }
}

#[test]
fn a_checkpointed_scan_resumes_only_as_the_same_scan() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("scan.ckpt");
    let ckpt_s = ckpt.to_str().unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let base = [
        "scan",
        "127.0.0.1",
        "-p",
        &closed,
        "--scan-type",
        "connect",
        "-o",
        "csv",
        "--rate",
        "0",
    ];
    let out = sensor(&[&base[..], &["--checkpoint", ckpt_s, "--seed", "3"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cp: Value = serde_json::from_str(&std::fs::read_to_string(&ckpt).unwrap()).unwrap();
    assert_eq!(cp["watermark"], cp["positions"], "a finished scan is complete: {cp}");
    assert_eq!(cp["seed"], 3);
    // Another port list is another scan: refused before anything is probed.
    let other = [
        "scan",
        "127.0.0.1",
        "-p",
        "1",
        "--scan-type",
        "connect",
        "--resume",
        ckpt_s,
    ];
    let out = sensor(&other);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("another scan") && err.contains("ports"), "{err}");
    // The same scan resumes (the seed comes from the file) and has nothing left to do.
    let out = sensor(&[&base[..], &["--resume", ckpt_s, "--show-closed"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "only the CSV header"
    );
    // A bad scan type is invalid input.
    let out = sensor(&["scan", "127.0.0.1", "--scan-type", "udp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("udp"));
}

#[test]
fn demo_scans_its_own_loopback_servers() {
    let out = sensor(&["demo", "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let endpoints = doc["endpoints"].as_array().unwrap();
    let count = |c: &str| endpoints.iter().filter(|e| e["category"] == c).count();
    assert_eq!(count("discovered"), 2, "{doc:#}");
    assert_eq!(count("unsecured"), 1, "{doc:#}");
    let v = schema();
    for e in endpoints {
        assert_valid(&v, e);
    }
    demo_serve_writes_its_ca_for_other_scans();
}

/// `sensor demo --serve` writes the demo CA and says where: a scan of the
/// demo servers with it as `--ca-bundle` trusts them (A, not T); Ctrl-C
/// stops the servers and removes the file. (Part of the demo test: both
/// need the demo's fixed addresses.)
fn demo_serve_writes_its_ca_for_other_scans() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("demo-ca.pem");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_sensor"))
        .args(["demo", "--serve", "-o", "csv", "--ca-out"])
        .arg(&ca)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ca.exists() {
        assert!(std::time::Instant::now() < end, "no demo CA within 60 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    // The console is up beside the servers, behind its login.
    let console = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = console.get("http://127.0.2.4:48999/login").send().unwrap();
    assert_eq!(login.status(), 200);
    let home = console.get("http://127.0.2.4:48999/").send().unwrap();
    assert_eq!(home.status(), 303, "the overview wants a session");
    let grade = |extra: &[&str]| {
        let mut args = vec!["scan", "127.0.2.1", "-p", "8443", "--no-vulns", "-o", "ndjson"];
        args.extend_from_slice(extra);
        let out = sensor(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        r["grade"]["letter"].as_str().unwrap_or_default().to_string()
    };
    let ca_path = ca.to_str().unwrap();
    let trusted = grade(&["--ca-bundle", ca_path]);
    let untrusted = grade(&[]);
    assert!(
        Command::new("kill")
            .args(["-INT", &demo.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = demo.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = demo.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "{status}: {err}");
    assert!(
        err.contains(&format!("demo CA: {ca_path}")) && err.contains("--ca-bundle"),
        "{err}"
    );
    assert!(
        err.contains("console: http://127.0.2.4:48999/  (log in with the token "),
        "{err}"
    );
    assert!(trusted.starts_with('A'), "with the demo CA: {trusted}");
    assert_eq!(untrusted, "T", "without it");
    assert!(!ca.exists(), "removed with the servers");
}

#[tokio::test(flavor = "multi_thread")]
async fn grade_says_a_plaintext_port_is_not_tls_and_fails() {
    let lab = lab().await;
    let out = sensor_async(vec!["grade".into(), lab.http.to_string()]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("this port speaks plaintext HTTP, not TLS"), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("InvalidContentType"), "{text}");
    assert!(text.contains("Category      unsecured / plain / http"), "{text}");
    // The TLS port grades, through any of the list formats too.
    let out = sensor_async(vec!["grade".into(), lab.tls.to_string(), "-o".into(), "csv".into()]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("address,port,") && csv.lines().count() == 2, "{csv}");
    // A name without a port: said, not silent.
    let out = sensor_async(vec![
        "grade".into(),
        "localhost".into(),
        "--timeout".into(),
        "500".into(),
    ])
    .await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no port given: grading localhost:443"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grade_with_revocation_records_the_check_in_the_schema_and_refuses_a_bad_allowlist() {
    let lab = lab().await;
    let tls = lab.tls.to_string();
    let grade = |extra: &[&str]| {
        let mut args: Vec<String> = vec!["grade".into(), tls.clone(), "--no-vulns".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        sensor_async(args)
    };
    // The testbed leaf names no responder: nothing to ask, said in words.
    let out = grade(&["--revocation", "--revocation-allow", "127.0.0.0/8", "-o", "json"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let record: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        record["revocation"],
        serde_json::json!({
            "status": "unknown",
            "source": null,
            "url": null,
            "detail": "the leaf names no OCSP responder and no CRL distribution point"
        })
    );
    let v = schema();
    assert_valid(&v, &record);
    let mut revoked = record.clone();
    revoked["revocation"] = serde_json::json!({
        "status": "revoked", "source": "crl", "url": "http://127.0.0.1:9/ca.crl",
        "revoked_at": "2026-11-01T00:00:00Z", "reason": "keyCompromise", "detail": "crl: revoked"
    });
    assert_valid(&v, &revoked);
    revoked["revocation"]["status"] = Value::from("maybe");
    revoked["revocation"]["source"] = Value::from("ldap");
    assert_eq!(v.iter_errors(&revoked).count(), 2);
    // Without the flag there is no field; the text view has a line.
    let out = grade(&["-o", "json"]).await;
    let record: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(record.get("revocation").is_none(), "{record:#}");
    let out = grade(&["--revocation"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Revocation    unknown: the leaf names no OCSP responder and no CRL distribution point"),
        "{text}"
    );
    // Bad input is a usage error naming the flag.
    let out = grade(&["--revocation-allow", "10.0.0.0/8"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--revocation"), "{out:?}");
    let out = grade(&["--revocation", "--revocation-allow", "10.0.0.0/33"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--revocation-allow") && err.contains("`10.0.0.0/33`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_output_keeps_only_certificates_expiring_within_the_days_asked() {
    let lab = lab().await;
    let scan = |days: &str| {
        sensor_async(vec![
            "scan".into(),
            "127.0.0.1".into(),
            "-p".into(),
            ports(&lab),
            "--scan-type".into(),
            "connect".into(),
            "--no-enum".into(),
            "-o".into(),
            "ndjson".into(),
            "--expiring-within".into(),
            days.into(),
        ])
    };
    // The lab's leaf is valid for about 90 days; the HTTP port has no certificate.
    let soon = scan("30").await;
    assert!(soon.status.success(), "{}", String::from_utf8_lossy(&soon.stderr));
    assert_eq!(String::from_utf8_lossy(&soon.stdout).lines().count(), 0);
    let later = scan("400").await;
    let lines: Vec<Value> = String::from_utf8_lossy(&later.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["port"], lab.tls.port());
}

/// Ctrl-C a checkpointed scan, resume it: the resumed scan prints the
/// whole result, the earlier part's records included.
#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_scan_prints_the_whole_result() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("scan.ckpt");
    // 400 ports closed a moment ago and the lab's: four seconds at 100 probes/s.
    let mut list: Vec<String> = (0..400)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
                .to_string()
        })
        .collect();
    list.extend([lab.tls.port().to_string(), lab.http.port().to_string()]);
    let base = vec![
        "scan".to_string(),
        "127.0.0.1".into(),
        "-p".into(),
        list.join(","),
        "--scan-type".into(),
        "connect".into(),
        "--no-enum".into(),
        "--rate".into(),
        "100".into(),
        "-o".into(),
        "json".into(),
    ];
    let first = std::process::Command::new(env!("CARGO_BIN_EXE_sensor"))
        .args(&base)
        .args(["--seed", "7", "--checkpoint"])
        .arg(&ckpt)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Most of the walk, so that part one most likely found a lab port.
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    assert!(
        Command::new("kill")
            .args(["-INT", &first.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let first = tokio::task::spawn_blocking(move || first.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(err.contains("continue with --resume"), "interrupted part-way: {err}");
    let part: Value = serde_json::from_slice(&first.stdout).unwrap();
    let in_part_one = part["endpoints"].as_array().unwrap().len();

    let mut resume = base.clone();
    resume.extend(["--resume".into(), ckpt.display().to_string()]);
    let second = sensor_async(resume).await;
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{err}");
    let doc: Value = serde_json::from_slice(&second.stdout).unwrap();
    let found: Vec<u64> = doc["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["port"].as_u64())
        .collect();
    // (Another test's listener may have taken one of the "closed" ports meanwhile.)
    for port in [lab.tls.port(), lab.http.port()] {
        assert!(
            found.contains(&u64::from(port)),
            "{port} in the result of both parts ({in_part_one} from part one): {found:?}"
        );
    }
    if in_part_one > 0 {
        assert!(
            err.contains(&format!("{in_part_one} record(s) from earlier part(s)")),
            "{err}"
        );
    }
}

#[test]
fn host_discovery_is_summarised_and_pn_turns_it_off() {
    // 512 loopback addresses (every one alive) x 6 closed ports: the rule turns host discovery on.
    let closed: Vec<String> = (0..6)
        .map(|_| {
            let l = std::net::TcpListener::bind("127.0.2.1:0").unwrap();
            l.local_addr().unwrap().port().to_string()
        })
        .collect();
    let ports = closed.join(",");
    let base = [
        "scan",
        "127.0.2.0/23",
        "-p",
        &ports,
        "--scan-type",
        "connect",
        "-o",
        "csv",
        "--no-progress",
    ];
    let out = sensor(&base);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("host discovery: 512 up, 0 down"), "{err}");
    for off in ["-Pn", "--no-host-discovery"] {
        let mut args = base.to_vec();
        args.push(off);
        let out = sensor(&args);
        assert!(out.status.success(), "{off}: {}", String::from_utf8_lossy(&out.stderr));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("host discovery"), "{off}: {err}");
    }
}

/// `sensor grade --endpoint-budget` on a server that answers the first
/// handshake and then holds every connection without a byte in answer (a
/// rustls server behind a loopback proxy): the run ends soon after the
/// budget, the text says `not probed: budget (…)`, and the JSON record
/// names the cut stages in `not_probed`, valid against the schema.
#[tokio::test(flavor = "multi_thread")]
async fn grade_names_what_the_endpoint_budget_cut() {
    use tokio::io::AsyncReadExt;
    let lab = lab().await;
    let upstream = lab.tls;
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = proxy.local_addr().unwrap();
    // Relay the next connection (each run's first handshake), hold the rest;
    // the second run re-arms it.
    let relay_next = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let relay = relay_next.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = proxy.accept().await {
            let first = relay.swap(false, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if first {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                    }
                } else {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = client.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                }
            });
        }
    });
    let t0 = std::time::Instant::now();
    let out = sensor_async(vec![
        "grade".into(),
        addr.to_string(),
        "--endpoint-budget".into(),
        "1500ms".into(),
    ])
    .await;
    let took = t0.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert!(text.contains("not probed: budget (enumeration"), "{text}");

    relay_next.store(true, std::sync::atomic::Ordering::SeqCst);
    let out = sensor_async(vec![
        "grade".into(),
        addr.to_string(),
        "-o".into(),
        "json".into(),
        "--endpoint-budget".into(),
        "1500ms".into(),
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let record: Value = serde_json::from_slice(&out.stdout).expect("one JSON record");
    assert_valid(&schema(), &record);
    let cut: Vec<&str> = record["not_probed"]
        .as_array()
        .expect("not_probed")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(cut.contains(&"enumeration: budget"), "{cut:?}");
}
