//! Real servers on loopback for the demo and the tests.
//!
//! A scanner is only tested against servers, so the servers are part of the
//! product: `sensor demo` serves these on 127.0.2.x, and the integration
//! tests start them on port 0 next to `openssl s_server` and nginx. The PKI is
//! generated on the spot (root → intermediate → leaf) with rcgen; nothing
//! secret is ever checked in. Never bind anything but loopback here.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    EcdsaP256,
    EcdsaP384,
    Rsa2048,
}

/// A three-level chain with its keys, DER and PEM.
pub struct Chain {
    pub root: Vec<u8>,
    pub intermediate: Vec<u8>,
    pub leaf: Vec<u8>,
    /// PKCS#8 DER of the leaf key.
    pub leaf_key: Vec<u8>,
    pub root_pem: String,
    pub intermediate_pem: String,
    pub leaf_pem: String,
    pub leaf_key_pem: String,
}

impl Chain {
    /// Leaf then intermediate: what a correctly configured server sends.
    pub fn presented(&self) -> Vec<Vec<u8>> {
        vec![self.leaf.clone(), self.intermediate.clone()]
    }

    /// PEM of leaf + intermediate, for servers that take one chain file.
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.leaf_pem, self.intermediate_pem)
    }
}

fn key_for(kind: KeyKind) -> Result<KeyPair, rcgen::Error> {
    match kind {
        KeyKind::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyKind::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyKind::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048),
    }
}

fn ca_params(cn: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name.push(DnType::OrganizationName, "netsensor testbed");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

/// What the leaf of a test chain looks like; the defaults make a good leaf.
#[derive(Clone, Debug)]
pub struct LeafSpec {
    pub kind: KeyKind,
    /// Validity relative to now.
    pub not_before_days: i64,
    pub not_after_days: i64,
    /// Sign the leaf with its own key instead of the intermediate.
    pub self_signed: bool,
}

impl Default for LeafSpec {
    fn default() -> Self {
        LeafSpec {
            kind: KeyKind::EcdsaP256,
            not_before_days: -1,
            not_after_days: 90,
            self_signed: false,
        }
    }
}

/// Issue root → intermediate → leaf for `names` (DNS names or IP addresses;
/// the first is the leaf's CN). `tag` goes into every CN so tests can tell
/// chains apart.
pub fn issue_chain(tag: &str, names: &[&str], leaf_kind: KeyKind) -> Result<Chain, rcgen::Error> {
    issue_chain_with(
        tag,
        names,
        &LeafSpec {
            kind: leaf_kind,
            ..LeafSpec::default()
        },
    )
}

/// [`issue_chain`] with a leaf built to `spec` (expired, self-signed, …).
pub fn issue_chain_with(tag: &str, names: &[&str], spec: &LeafSpec) -> Result<Chain, rcgen::Error> {
    let root_key = key_for(KeyKind::EcdsaP256)?;
    let root_params = ca_params(&format!("{tag} root CA"))?;
    let root = root_params.self_signed(&root_key)?;
    let root_issuer = Issuer::new(root_params, root_key);

    let inter_key = key_for(KeyKind::EcdsaP256)?;
    let inter_params = ca_params(&format!("{tag} intermediate CA"))?;
    let intermediate = inter_params.signed_by(&inter_key, &root_issuer)?;
    let inter_issuer = Issuer::new(inter_params, inter_key);

    let leaf_key = key_for(spec.kind)?;
    let mut leaf_params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, names.first().copied().unwrap_or("localhost"));
    leaf_params.distinguished_name.push(DnType::OrganizationName, tag);
    let now = time::OffsetDateTime::now_utc();
    leaf_params.not_before = now + time::Duration::days(spec.not_before_days);
    leaf_params.not_after = now + time::Duration::days(spec.not_after_days);
    let leaf = if spec.self_signed {
        leaf_params.self_signed(&leaf_key)?
    } else {
        leaf_params.signed_by(&leaf_key, &inter_issuer)?
    };

    Ok(Chain {
        root: root.der().to_vec(),
        intermediate: intermediate.der().to_vec(),
        leaf: leaf.der().to_vec(),
        leaf_key: leaf_key.serialize_der(),
        root_pem: root.pem(),
        intermediate_pem: intermediate.pem(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
    })
}

/// Hands out one certificate and remembers the SNI of every ClientHello.
#[derive(Debug)]
pub struct SniLog {
    key: Arc<CertifiedKey>,
    seen: Mutex<Vec<Option<String>>>,
}

impl SniLog {
    pub fn seen(&self) -> Vec<Option<String>> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl ResolvesServerCert for SniLog {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(hello.server_name().map(str::to_string));
        }
        Some(self.key.clone())
    }
}

/// A rustls server configuration presenting `certs` with `key`, limited to
/// `versions` (e.g. only TLS 1.2), plus the log of SNIs it receives.
pub fn rustls_config(
    certs: Vec<Vec<u8>>,
    key: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<(Arc<ServerConfig>, Arc<SniLog>), Error> {
    rustls_config_with_groups(certs, key, versions, None)
}

/// [`rustls_config`] with the key-exchange groups limited to `groups`
/// (`None`: the provider's defaults). A rustls server takes the first group
/// of the *client's* list it supports, so the order here does not make a
/// server preference: [`serve_tls_server_group_order`] does. aws-lc-rs
/// offers X25519MLKEM768, SecP256r1MLKEM768, MLKEM768 and MLKEM1024 next to
/// the classical groups (`rustls::crypto::aws_lc_rs::kx_group`).
pub fn rustls_config_with_groups(
    certs: Vec<Vec<u8>>,
    key: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
    groups: Option<Vec<&'static dyn rustls::crypto::SupportedKxGroup>>,
) -> Result<(Arc<ServerConfig>, Arc<SniLog>), Error> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(groups) = groups {
        provider.kx_groups = groups;
    }
    let provider = Arc::new(provider);
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec()));
    let signing = provider.key_provider.load_private_key(key_der)?;
    let chain = certs.into_iter().map(CertificateDer::from).collect();
    let log = Arc::new(SniLog {
        key: Arc::new(CertifiedKey::new(chain, signing)),
        seen: Mutex::new(Vec::new()),
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(log.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), log))
}

/// Serve TLS on `listener` until the handle is aborted: handshake, answer one
/// HTTP request, close.
pub fn serve_tls(listener: TcpListener, config: Arc<ServerConfig>) -> JoinHandle<()> {
    serve_tls_with_headers(listener, config, "")
}

/// [`serve_tls`], adding `headers` (complete `Name: value\r\n` lines) to every response.
pub fn serve_tls_with_headers(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    headers: &'static str,
) -> JoinHandle<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let accept = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
                if let Ok(Ok(mut tls)) = accept {
                    let _ = answer_http(&mut tls, "200 OK", headers).await;
                }
            });
        }
    })
}

/// A TLS 1.3 server that picks the key-exchange group in *its* order, as
/// OpenSSL with `SSL_OP_CIPHER_SERVER_PREFERENCE` or BoringSSL do (rustls
/// itself always follows the client's order): each ClientHello is read with
/// rustls's `Acceptor`, the first of `groups` the client lists is chosen, and
/// the handshake continues with a configuration holding only that group (a
/// HelloRetryRequest when the client sent no share for it). A client listing
/// none of `groups` is refused by a configuration holding them all. Answers
/// one HTTP request per connection like [`serve_tls`].
pub fn serve_tls_server_group_order(
    listener: TcpListener,
    certs: Vec<Vec<u8>>,
    key: &[u8],
    groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup>,
) -> Result<JoinHandle<()>, Error> {
    let tls13: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    let (all, _) = rustls_config_with_groups(certs.clone(), key, tls13, Some(groups.clone()))?;
    let mut each = Vec::with_capacity(groups.len());
    for g in &groups {
        let (config, _) = rustls_config_with_groups(certs.clone(), key, tls13, Some(vec![*g]))?;
        let mut config = Arc::unwrap_or_clone(config);
        // One session store, so a ticket resumes whichever group was chosen.
        config.session_storage = all.session_storage.clone();
        each.push((g.name(), Arc::new(config)));
    }
    let each = Arc::new(each);
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (each, all) = (each.clone(), all.clone());
            tokio::spawn(async move {
                let handshake = async {
                    let start =
                        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
                    let offered = start.client_hello().named_groups().unwrap_or_default().to_vec();
                    let config = each
                        .iter()
                        .find(|(g, _)| offered.contains(g))
                        .map_or(all, |(_, c)| c.clone());
                    start.into_stream(config).await
                };
                if let Ok(Ok(mut tls)) = tokio::time::timeout(Duration::from_secs(10), handshake).await {
                    let _ = answer_http(&mut tls, "200 OK", "").await;
                }
            });
        }
    }))
}

/// Serve plaintext HTTP on `listener`: `200` to a request, `400` to anything else.
pub fn serve_http(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = answer_http(&mut stream, "", "").await;
            });
        }
    })
}

async fn answer_http<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    status: &str,
    headers: &str,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while got < buf.len() {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf[got..])).await {
            Ok(Ok(n)) if n > 0 => got += n,
            _ => break,
        }
        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") || !buf[..got].iter().all(|b| b.is_ascii()) {
            break;
        }
    }
    let status = if !status.is_empty() {
        status
    } else if buf[..got].starts_with(b"GET ") || buf[..got].starts_with(b"HEAD ") {
        "200 OK"
    } else {
        "400 Bad Request"
    };
    let body = "netsensor testbed\n";
    let resp = format!(
        "HTTP/1.1 {status}\r\nServer: netsensor-testbed\r\n{headers}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(resp.as_bytes()).await?;
    s.shutdown().await
}

/// Accept connections and never say a word (until aborted).
pub fn serve_stall(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            if let Ok((s, _)) = listener.accept().await {
                held.push(s);
                held.truncate(256);
            }
        }
    })
}

/// Accept connections, answer each with `bytes`, then hold the connection open.
pub fn serve_bytes(listener: TcpListener, bytes: Vec<u8>) -> JoinHandle<()> {
    serve_script(listener, bytes, false)
}

/// Accept connections, answer each with `bytes`, then reset the connection
/// (SO_LINGER 0: an RST instead of a FIN).
pub fn serve_then_reset(listener: TcpListener, bytes: Vec<u8>) -> JoinHandle<()> {
    serve_script(listener, bytes, true)
}

/// Read what the client sends first (briefly), answer `bytes`, then reset or hold.
fn serve_script(listener: TcpListener, bytes: Vec<u8>, reset: bool) -> JoinHandle<()> {
    let bytes = Arc::new(bytes);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let bytes = bytes.clone();
            tokio::spawn(async move {
                let mut sink = [0u8; 2048];
                let _ = tokio::time::timeout(Duration::from_millis(200), s.read(&mut sink)).await;
                let _ = s.write_all(&bytes).await;
                if reset {
                    let _ = rustix::net::sockopt::set_socket_linger(&s, Some(Duration::ZERO));
                } else {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            });
        }
    })
}

/// Accept connections and send `chunk` over and over (up to `max_bytes`
/// per connection, so a broken client cannot make the test run forever).
pub fn serve_endless(listener: TcpListener, chunk: Vec<u8>, max_bytes: usize) -> JoinHandle<()> {
    let chunk = Arc::new(chunk);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let chunk = chunk.clone();
            tokio::spawn(async move {
                let mut sent = 0;
                while sent < max_bytes && !chunk.is_empty() {
                    if s.write_all(&chunk).await.is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
            });
        }
    })
}

/// Bind a loopback listener, refusing anything else.
pub async fn bind_loopback(addr: SocketAddr) -> std::io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the testbed binds loopback only",
        ));
    }
    TcpListener::bind(addr).await
}
