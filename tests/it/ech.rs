//! ECH (issue 22) against a real ECH server: BoringSSL through the `boring`
//! crate (`testbed/ech-server`, its own workspace so the engine never builds
//! BoringSSL; built here on first use, which needs cmake and libclang).
//! The server holds a key generated at its start and prints its
//! ECHConfigList; our probe offers ECH under a made-up config, so the server
//! must answer the outer hello with that list as retry_configs.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use netsensor::model::record::{Ech, EchConfigInfo, EndpointRecord};
use netsensor::wire::ech::{EchConfigEntry, parse_config_list};
use testbed::KeyKind;

use crate::support::{self, find, quick, scan};

/// Build `netsensor-ech-server` (a no-op once built) and return its path.
fn ech_server_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = root.join("testbed/ech-server/Cargo.toml");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("ech-server");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo");
    assert!(
        status.success(),
        "building testbed/ech-server failed (BoringSSL needs cmake, clang and libclang-dev: tests/run.sh installs them)"
    );
    target.join("release/netsensor-ech-server")
}

/// Start the ECH server; its address and the ECHConfigList it serves.
fn ech_server(dir: &Path, public_name: &str, config_id: u8) -> (support::Proc, SocketAddr, Vec<u8>) {
    let chain = testbed::issue_chain("ech", &["ech.test", public_name], KeyKind::EcdsaP256).expect("chain");
    let cert = support::write(dir, "chain.pem", &chain.chain_pem());
    let key = support::write(dir, "leaf.key", &chain.leaf_key_pem);
    let mut child = Command::new(ech_server_binary())
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .args(["--public-name", public_name, "--config-id", &config_id.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("netsensor-ech-server");
    let stdout = child.stdout.take().expect("stdout");
    let proc = support::Proc {
        child,
        name: "netsensor-ech-server",
    };
    let mut lines = BufReader::new(stdout).lines();
    let mut next = |prefix: &str| -> String {
        let line = lines.next().expect("a line").expect("stdout");
        line.strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected {prefix}, got {line}"))
            .to_string()
    };
    let addr: SocketAddr = next("LISTEN ").parse().expect("address");
    let hex = next("ECHCONFIGLIST ");
    let list = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    (proc, addr, list)
}

/// Scan by name: ECH's outer hello names the host, so address targets
/// (which never send SNI) are not offered ECH.
async fn one(addr: SocketAddr) -> EndpointRecord {
    let records = scan(&["localhost"], &[], &addr.port().to_string(), quick()).await;
    let r = find(&records, addr).clone();
    assert_eq!(r.hostname.as_deref(), Some("localhost"));
    r
}

#[tokio::test]
async fn ech_server_answers_with_its_retry_configs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, addr, served) = ech_server(dir.path(), "public.ech.test", 7);
    // What the server serves, read independently of the probe's path.
    let decoded = parse_config_list(&served).expect("the server's list");
    let [EchConfigEntry::Known(c)] = decoded.as_slice() else {
        panic!("one config expected")
    };
    assert_eq!(
        (c.config_id, c.kem_id, c.public_name.as_str()),
        (7, 0x0020, "public.ech.test")
    );

    let r = one(addr).await;
    let t = r.tls13.as_ref().expect("tls13");
    let ech = t.ech.as_ref().expect("ech probed");
    assert_eq!(
        ech,
        &Ech {
            retry_configs: true,
            public_name: Some("public.ech.test".into()),
            configs: vec![EchConfigInfo {
                config_id: 7,
                kem: "DHKEM(X25519, HKDF-SHA256)".into(),
                cipher_suites: c
                    .cipher_suites
                    .iter()
                    .copied()
                    .map(netsensor::wire::ech::suite_name)
                    .collect(),
                public_name: "public.ech.test".into(),
                maximum_name_length: 0,
            }],
        }
    );
    // BoringSSL marshals its default HPKE suites.
    assert!(
        ech.configs[0]
            .cipher_suites
            .contains(&"HKDF-SHA256/AES-128-GCM".to_string()),
        "{ech:#?}"
    );
    // The rest of the endpoint is read as usual.
    assert_eq!(r.handshake.as_ref().and_then(|h| h.error.clone()), None);
    // The seed's shape and `sensor grade`.
    let sr = r
        .security_rating_info
        .as_ref()
        .and_then(|i| i.security_rating.as_ref())
        .expect("security_rating");
    let c = &sr.privacy[0];
    assert_eq!(
        (c.criteria_name.as_str(), c.value.as_str(), c.rating.value),
        (
            "Encrypted Client Hello",
            "Supported (public name public.ech.test)",
            true
        )
    );
    assert_eq!(c.data["supported"], true);
    let text = netsensor::output::detail(&r);
    assert!(text.contains("supported (public name public.ech.test"), "{text}");
}

/// A TLS 1.3 server without ECH (rustls has none server-side) ignores the
/// offer: the record says so instead of leaving the field empty.
#[tokio::test]
async fn server_without_ech_says_not_supported() {
    let chain = testbed::issue_chain("no ech", &["noech.test"], KeyKind::EcdsaP256).expect("chain");
    let (config, _) =
        testbed::rustls_config(chain.presented(), &chain.leaf_key, &[&rustls::version::TLS13]).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let _server = testbed::serve_tls(listener, config);
    let r = one(addr).await;
    let ech = r.tls13.as_ref().and_then(|t| t.ech.clone());
    assert_eq!(ech, Some(Ech::default()), "{:#?}", r.tls13);
    let text = netsensor::output::detail(&r);
    assert!(text.contains("ECH") && text.contains("not supported"), "{text}");

    // An address target: no SNI anywhere, so no ECH offer and no answer.
    let records = scan(&["127.0.0.1"], &[], &addr.port().to_string(), quick()).await;
    let r = find(&records, addr);
    assert_eq!(r.tls13.as_ref().map(|t| t.ech.clone()), Some(None), "{:#?}", r.tls13);
}
