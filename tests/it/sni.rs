//! SNI policy: extra names per TLS endpoint (`--sni-list`) and the names in
//! the first certificate's SANs, one record per (address, port, name), with
//! a flag where a name brings a different certificate.

use std::collections::HashMap;
use std::sync::Arc;

use netsensor::model::record::{Category, EndpointRecord, Transport};
use netsensor::scan::{self, ScanOptions};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use testbed::{self, Chain, KeyKind};

use crate::support::{quick, scan};

/// A certificate per name, and a default one for other names and no SNI.
#[derive(Debug)]
struct ByName {
    names: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let key = hello.server_name().and_then(|n| self.names.get(n));
        Some(key.unwrap_or(&self.default).clone())
    }
}

fn certified(chain: &Chain) -> Arc<CertifiedKey> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.leaf_key.clone()));
    let signing = provider.key_provider.load_private_key(key).unwrap();
    let certs = chain.presented().into_iter().map(CertificateDer::from).collect();
    Arc::new(CertifiedKey::new(certs, signing))
}

fn options() -> ScanOptions {
    let mut o = quick();
    o.enumerate = false;
    o.vulnerabilities = false;
    o.http_headers = false;
    o
}

#[tokio::test]
async fn listed_names_and_san_names_each_get_a_record() {
    let default = testbed::issue_chain("it sni default", &["default.test", "c.test"], KeyKind::EcdsaP256).unwrap();
    let a = testbed::issue_chain("it sni a", &["a.test"], KeyKind::EcdsaP256).unwrap();
    let b = testbed::issue_chain("it sni b", &["b.test"], KeyKind::EcdsaP256).unwrap();
    let resolver = ByName {
        names: HashMap::from([
            ("a.test".to_string(), certified(&a)),
            ("b.test".to_string(), certified(&b)),
        ]),
        default: certified(&default),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    let l = testbed::bind_loopback("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = testbed::serve_tls(l, Arc::new(config));

    let mut opts = options();
    opts.sni_names = ["a.test", "b.test", "A.test.", "*.wild.test", "127.0.0.1"]
        .map(String::from)
        .to_vec();
    opts.sni_from_sans = true;
    let records = scan(&["127.0.0.1"], &[], &addr.port().to_string(), opts).await;
    server.abort();

    let by_name: HashMap<Option<String>, &EndpointRecord> = records.iter().map(|r| (r.hostname.clone(), r)).collect();
    assert_eq!(records.len(), 5, "{:?}", by_name.keys());
    let cn = |name: Option<&str>| {
        let r = by_name[&name.map(String::from)];
        assert_eq!(r.category, Category::Discovered);
        assert_eq!(r.transport, Transport::Tls);
        (
            r.certificate.as_ref().unwrap().common_name.clone().unwrap(),
            r.sni_certificate_differs,
        )
    };
    assert_eq!(cn(None), ("default.test".into(), None));
    assert_eq!(cn(Some("a.test")), ("a.test".into(), Some(true)));
    assert_eq!(cn(Some("b.test")), ("b.test".into(), Some(true)));
    assert_eq!(cn(Some("default.test")), ("default.test".into(), Some(false)));
    assert_eq!(cn(Some("c.test")), ("default.test".into(), Some(false)));
}

#[test]
fn only_tls_endpoints_get_extra_names() {
    let mut opts = options();
    opts.sni_names = vec!["a.test".into()];
    let mut r = EndpointRecord::new(
        "127.0.0.1".parse().unwrap(),
        25,
        None,
        Category::Unsecured,
        String::new(),
    );
    r.transport = Transport::Plain;
    assert!(scan::virtual_hosts(&opts, None, &r).is_empty());
    r.category = Category::Discovered;
    r.transport = Transport::StarttlsSmtp;
    assert_eq!(scan::virtual_hosts(&opts, None, &r), vec!["a.test".to_string()]);
    assert!(scan::virtual_hosts(&opts, Some("A.TEST"), &r).is_empty());
}
