//! The live revocation check (issue 22) against real parts on loopback: a PKI
//! made with the `openssl` CLI at test time (a CA, a delegated OCSP signer,
//! leaves with AIA and CDP pointing at loopback ports), `openssl ocsp` as the
//! responder over the CA's `index.txt`, the CA's CRL from `openssl ca
//! -gencrl` served by a small HTTP server in the test (which counts
//! requests, stalls or serves too much on demand), and `openssl s_server`
//! presenting each leaf with its CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use netsensor::grade::revocation::Allowlist;
use netsensor::grade::{Letter, TrustStore, trust::StoreKind};
use netsensor::model::record::{EndpointRecord, RevocationStatus};
use netsensor::scan::ScanOptions;
use netsensor::scan::revocation::{Checker, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{self, Proc, find, quick, scan};

const EC: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
const REVOKED_AT: &str = "2026-11-01T00:00:00Z";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What an HTTP server in the test does with each request.
#[derive(Clone)]
enum Serve {
    Bytes(Arc<Vec<u8>>),
    /// Accept, read the request, never answer.
    Stall,
}

/// A one-route HTTP/1.1 server on 127.0.0.1 counting the requests it reads.
struct Http {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

async fn http(serve: Serve) -> Http {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let (count, serve) = (count.clone(), serve.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                match serve {
                    Serve::Bytes(body) => {
                        let h = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = s.write_all(h.as_bytes()).await;
                        let _ = s.write_all(&body).await;
                    }
                    Serve::Stall => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    Http {
        addr,
        requests,
        _task: task,
    }
}

/// A test PKI in `dir`: the CA, the delegated OCSP signer, `index.txt`.
struct Pki {
    dir: PathBuf,
}

/// The serials of the leaves and their state in the CA's database.
const GOOD: &str = "1001";
const REVOKED: &str = "1002";

impl Pki {
    fn new(dir: &Path) -> Pki {
        openssl(
            dir,
            &[
                &["req", "-x509"][..],
                &EC,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-subj",
                    "/CN=Revocation Test CA",
                    "-days",
                    "30",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        );
        openssl(
            dir,
            &[
                &["req"][..],
                &EC,
                &[
                    "-keyout",
                    "ocsp.key",
                    "-out",
                    "ocsp.csr",
                    "-subj",
                    "/CN=Revocation Test OCSP",
                ],
            ]
            .concat(),
        );
        support::write(dir, "ocsp.cnf", "extendedKeyUsage=OCSPSigning\n");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "ocsp.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "100",
                "-days",
                "30",
                "-extfile",
                "ocsp.cnf",
                "-out",
                "ocsp.pem",
            ],
        );
        // Every leaf's serial in the database: 1002 and 1003 revoked (key compromise).
        support::write(
            dir,
            "index.txt",
            "V\t301231000000Z\t\t1001\tunknown\t/CN=good\n\
             R\t301231000000Z\t261101000000Z,keyCompromise\t1002\tunknown\t/CN=revoked\n\
             V\t301231000000Z\t\t1004\tunknown\t/CN=good2\n",
        );
        support::write(dir, "crlnumber", "01\n");
        support::write(
            dir,
            "ca.cnf",
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\n\
             default_crl_days = 7\ncertificate = ca.pem\nprivate_key = ca.key\n",
        );
        Pki { dir: dir.to_path_buf() }
    }

    /// The CA's CRL, DER.
    fn crl(&self) -> Vec<u8> {
        openssl(&self.dir, &["ca", "-gencrl", "-config", "ca.cnf", "-out", "ca.crl.pem"]);
        openssl(
            &self.dir,
            &["crl", "-in", "ca.crl.pem", "-outform", "DER", "-out", "ca.crl"],
        );
        std::fs::read(self.dir.join("ca.crl")).expect("crl")
    }

    /// A leaf for `rev.test` with `serial` and these AIA / CDP URLs.
    fn leaf(&self, name: &str, serial: &str, ocsp: Option<&str>, crl: Option<&str>) {
        let mut ext = "subjectAltName=DNS:rev.test\n".to_string();
        if let Some(u) = ocsp {
            ext.push_str(&format!("authorityInfoAccess=OCSP;URI:{u}\n"));
        }
        if let Some(u) = crl {
            ext.push_str(&format!("crlDistributionPoints=URI:{u}\n"));
        }
        support::write(&self.dir, &format!("{name}.cnf"), &ext);
        let (key, csr, pem, cnf) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.cnf"),
        );
        openssl(
            &self.dir,
            &[
                &["req"][..],
                &EC,
                &["-keyout", &key, "-out", &csr, "-subj", &format!("/CN={name}")],
            ]
            .concat(),
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &format!("0x{serial}"),
                "-days",
                "20",
                "-extfile",
                &cnf,
                "-out",
                &pem,
            ],
        );
    }

    /// `openssl ocsp` answering from `index.txt`, signed by the delegated
    /// signer; every request it reads is written to `ocsp-requests.der`.
    /// Readiness is its "ACCEPT" line, not a probe connection: OpenSSL 3.0's
    /// responder hangs on a connection that closes without a request.
    async fn responder(&self, port: u16) -> Proc {
        self.responder_signing(port, "ocsp").await
    }

    /// The same, signing with `signer.pem` / `signer.key`.
    async fn responder_signing(&self, port: u16, signer: &str) -> Proc {
        let log = std::fs::File::create(self.dir.join("ocsp.log")).expect("log");
        let child = Command::new("openssl")
            .args([
                "ocsp",
                "-port",
                &port.to_string(),
                "-index",
                "index.txt",
                "-CA",
                "ca.pem",
            ])
            .args([
                "-rsigner",
                &format!("{signer}.pem"),
                "-rkey",
                &format!("{signer}.key"),
                "-nmin",
                "60",
                "-ignore_err",
            ])
            .args(["-reqout", "ocsp-requests.der"])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("openssl");
        let mut p = Proc {
            child,
            name: "openssl ocsp",
        };
        for _ in 0..100 {
            let text = std::fs::read_to_string(self.dir.join("ocsp.log")).unwrap_or_default();
            if text.contains("ACCEPT") {
                return p;
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("openssl ocsp exited: {status}: {text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("openssl ocsp did not listen on port {port} within 5 s");
    }

    fn ocsp_requests_seen(&self) -> bool {
        self.dir.join("ocsp-requests.der").exists()
    }

    /// `openssl s_server` presenting the leaf `name` and the CA.
    async fn server(&self, name: &str) -> (Proc, SocketAddr) {
        let lo = "127.0.0.1".parse().unwrap();
        let addr = SocketAddr::new(lo, support::free_port(lo));
        let child = Command::new("openssl")
            .args(["s_server", "-accept", &addr.to_string(), "-www", "-quiet"])
            .args(["-cert", &format!("{name}.pem"), "-key", &format!("{name}.key")])
            .args(["-cert_chain", "ca.pem"])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl");
        let mut p = Proc {
            child,
            name: "openssl s_server",
        };
        support::wait_listening(addr, &mut p).await;
        (p, addr)
    }

    fn options(&self, checker: &Arc<Checker>) -> ScanOptions {
        let pem = std::fs::read(self.dir.join("ca.pem")).expect("ca.pem");
        let mut stores = netsensor::grade::TrustStores::empty();
        stores.push(TrustStore::from_pem("test CA", StoreKind::Memory, &pem).expect("store"));
        let mut o = quick();
        o.trust = Arc::new(stores);
        o.enumerate = false;
        o.vulnerabilities = false;
        o.tls_extras = false;
        o.http_headers = false;
        o.revocation = Some(checker.clone());
        o
    }
}

fn checker(allow: &[&str], limits: Limits) -> Arc<Checker> {
    Arc::new(Checker::new(Allowlist::parse(allow).expect("allowlist"), limits))
}

async fn scan_all(addrs: &[SocketAddr], opts: ScanOptions) -> Vec<EndpointRecord> {
    let ports: Vec<String> = addrs.iter().map(|a| a.port().to_string()).collect();
    let records = scan(&["127.0.0.1"], &[], &ports.join(","), opts).await;
    addrs.iter().map(|a| find(&records, *a).clone()).collect()
}

fn revocation(r: &EndpointRecord) -> &netsensor::model::record::Revocation {
    r.revocation
        .as_ref()
        .unwrap_or_else(|| panic!("no revocation in {r:#?}"))
}

#[tokio::test]
async fn ocsp_says_good_and_revoked_and_revoked_is_an_f_with_the_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let lo = "127.0.0.1".parse().unwrap();
    let port = support::free_port(lo);
    let url = format!("http://127.0.0.1:{port}/");
    let crl_server = http(Serve::Stall).await;
    let crl_url = format!("http://{}/ca.crl", crl_server.addr);
    pki.leaf("good", GOOD, Some(&url), Some(&crl_url));
    pki.leaf("revoked", REVOKED, Some(&url), Some(&crl_url));
    let _responder = pki.responder(port).await;
    let (_g, good) = pki.server("good").await;
    let (_r, revoked) = pki.server("revoked").await;
    let c = checker(&["127.0.0.0/8"], Limits::default());
    let r = scan_all(&[good, revoked], pki.options(&c)).await;

    let v = revocation(&r[0]);
    assert_eq!(
        (v.status, v.source.as_deref(), v.url.as_deref()),
        (RevocationStatus::Good, Some("ocsp"), Some(url.as_str())),
        "{v:#?}"
    );
    assert_eq!((v.revoked_at.as_deref(), v.reason.as_deref()), (None, None));
    assert_ne!(
        r[0].grade.as_ref().map(|g| g.letter),
        Some(Letter::F),
        "{:#?}",
        r[0].grade
    );
    assert_eq!(r[0].chain_report.as_ref().and_then(|c| c.trusted), Some(true));

    let v = revocation(&r[1]);
    assert_eq!(
        (v.status, v.source.as_deref(), v.url.as_deref()),
        (RevocationStatus::Revoked, Some("ocsp"), Some(url.as_str())),
        "{v:#?}"
    );
    assert_eq!(v.revoked_at.as_deref(), Some(REVOKED_AT));
    assert_eq!(v.reason.as_deref(), Some("keyCompromise"));
    let g = r[1].grade.as_ref().expect("grade");
    assert_eq!(g.letter, Letter::F, "{g:#?}");
    let cap = g.caps.iter().find(|c| c.id == "revoked").expect("revoked cap");
    assert_eq!(
        cap.reason,
        format!("the OCSP responder {url} says the leaf #0 (revoked) is revoked since {REVOKED_AT} (keyCompromise)")
    );
    assert_eq!(r[1].chain_report.as_ref().and_then(|c| c.trusted), Some(false));
    let status = &r[1]
        .security_rating_info
        .as_ref()
        .expect("seed")
        .certificate_chain
        .cert_chain_details[0];
    assert_eq!(status.cert_details[0].status, "Revoked");
    // OCSP answered both: the CRL was never asked for; two OCSP fetches.
    assert_eq!(crl_server.requests.load(Ordering::SeqCst), 0);
    assert_eq!(c.fetches(), 2);
    assert!(pki.ocsp_requests_seen());
}

#[tokio::test]
async fn the_crl_says_revoked_and_good_and_one_fetch_serves_every_leaf_of_the_issuer() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let crl = pki.crl();
    let server = http(Serve::Bytes(Arc::new(crl))).await;
    let url = format!("http://{}/ca.crl", server.addr);
    pki.leaf("revoked", REVOKED, None, Some(&url));
    pki.leaf("good", GOOD, None, Some(&url));
    pki.leaf("good2", "1004", None, Some(&url));
    let (_a, revoked) = pki.server("revoked").await;
    let (_b, good) = pki.server("good").await;
    let (_c, good2) = pki.server("good2").await;
    let c = checker(&["127.0.0.1"], Limits::default());
    let r = scan_all(&[revoked, good, good2], pki.options(&c)).await;

    let v = revocation(&r[0]);
    assert_eq!(
        (v.status, v.source.as_deref(), v.url.as_deref()),
        (RevocationStatus::Revoked, Some("crl"), Some(url.as_str())),
        "{v:#?}"
    );
    assert_eq!(v.revoked_at.as_deref(), Some(REVOKED_AT));
    assert_eq!(v.reason.as_deref(), Some("keyCompromise"));
    assert_eq!(r[0].grade.as_ref().map(|g| g.letter), Some(Letter::F));
    assert!(
        r[0].findings
            .iter()
            .any(|f| f.id == "revoked" && f.evidence.starts_with(&format!("the CRL {url} says"))),
        "{:#?}",
        r[0].findings
    );
    for x in &r[1..] {
        let v = revocation(x);
        assert_eq!(
            (v.status, v.source.as_deref()),
            (RevocationStatus::Good, Some("crl")),
            "{v:#?}"
        );
    }
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        1,
        "one CRL fetch for three leaves"
    );
    assert_eq!(c.fetches(), 1);
}

#[tokio::test]
async fn outside_the_allowlist_nothing_is_fetched_and_the_record_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let lo = "127.0.0.1".parse().unwrap();
    let port = support::free_port(lo);
    let crl_server = http(Serve::Bytes(Arc::new(pki.crl()))).await;
    let (url, crl_url) = (
        format!("http://127.0.0.1:{port}/"),
        format!("http://{}/ca.crl", crl_server.addr),
    );
    pki.leaf("revoked", REVOKED, Some(&url), Some(&crl_url));
    let _responder = pki.responder(port).await;
    let (_s, addr) = pki.server("revoked").await;
    for allow in [&[][..], &["10.0.0.0/8", "ocsp.pki.internal"][..]] {
        let c = checker(allow, Limits::default());
        let r = scan_all(&[addr], pki.options(&c)).await;
        let v = revocation(&r[0]);
        assert_eq!(
            (v.status, v.source.as_deref(), v.url.as_deref(), v.detail.as_str()),
            (
                RevocationStatus::NotChecked,
                None,
                Some(url.as_str()),
                "not allowed: 127.0.0.1"
            ),
            "{allow:?}: {v:#?}"
        );
        assert!(r[0].findings.iter().any(|f| f.id == "revocation_not_checked"));
        assert_ne!(r[0].grade.as_ref().map(|g| g.letter), Some(Letter::F));
        assert_eq!(c.fetches(), 0);
    }
    assert!(!pki.ocsp_requests_seen(), "the responder got a request");
    assert_eq!(crl_server.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_stalling_responder_ends_at_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let stall = http(Serve::Stall).await;
    let url = format!("http://{}/", stall.addr);
    pki.leaf("revoked", REVOKED, Some(&url), None);
    let (_s, addr) = pki.server("revoked").await;
    let limits = Limits {
        deadline: Duration::from_millis(800),
        ..Limits::default()
    };
    let c = checker(&["127.0.0.0/8"], limits);
    let started = Instant::now();
    let r = scan_all(&[addr], pki.options(&c)).await;
    let v = revocation(&r[0]);
    assert_eq!(v.status, RevocationStatus::Error, "{v:#?}");
    assert_eq!(v.detail, format!("ocsp {url}: no answer within the deadline (800 ms)"));
    assert!(r[0].findings.iter().any(|f| f.id == "revocation_check_failed"));
    assert_eq!(stall.requests.load(Ordering::SeqCst), 1);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[tokio::test]
async fn an_oversized_crl_stops_at_the_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let big = http(Serve::Bytes(Arc::new(vec![0x30; 64 * 1024]))).await;
    let url = format!("http://{}/ca.crl", big.addr);
    pki.leaf("revoked", REVOKED, None, Some(&url));
    let (_s, addr) = pki.server("revoked").await;
    let limits = Limits {
        crl_max: 16 * 1024,
        ..Limits::default()
    };
    let c = checker(&["127.0.0.1/32"], limits);
    let r = scan_all(&[addr], pki.options(&c)).await;
    let v = revocation(&r[0]);
    assert_eq!(
        (v.status, v.detail.as_str()),
        (
            RevocationStatus::Error,
            format!("crl {url}: the answer is larger than the 16 KiB cap").as_str()
        ),
        "{v:#?}"
    );
    assert_ne!(r[0].grade.as_ref().map(|g| g.letter), Some(Letter::F));
}

#[tokio::test]
async fn an_answer_signed_by_the_ca_counts_and_one_by_an_undelegated_key_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path());
    let lo = "127.0.0.1".parse().unwrap();
    let (by_ca, by_other) = (support::free_port(lo), support::free_port(lo));
    let (ca_url, other_url) = (
        format!("http://127.0.0.1:{by_ca}/"),
        format!("http://127.0.0.1:{by_other}/"),
    );
    pki.leaf("revoked", REVOKED, Some(&ca_url), None);
    pki.leaf("good", GOOD, Some(&other_url), None);
    // A certificate of the same CA without the OCSP-signing purpose: not a delegated responder.
    pki.leaf("impostor", "1005", None, None);
    let _a = pki.responder_signing(by_ca, "ca").await;
    let _b = pki.responder_signing(by_other, "impostor").await;
    let (_r, revoked) = pki.server("revoked").await;
    let (_g, good) = pki.server("good").await;
    let c = checker(&["127.0.0.0/8"], Limits::default());
    let r = scan_all(&[revoked, good], pki.options(&c)).await;
    let v = revocation(&r[0]);
    assert_eq!(
        (v.status, v.source.as_deref(), v.revoked_at.as_deref()),
        (RevocationStatus::Revoked, Some("ocsp"), Some(REVOKED_AT)),
        "{v:#?}"
    );
    let v = revocation(&r[1]);
    assert_eq!(
        (v.status, v.detail.clone()),
        (
            RevocationStatus::Error,
            format!("ocsp {other_url}: the OCSP response is not signed by the issuer or a responder it delegated to")
        ),
        "{v:#?}"
    );
    assert_ne!(r[1].grade.as_ref().map(|g| g.letter), Some(Letter::F));
}
