//! Trust stores: the bundled web roots, the system store and the user's
//! private CA bundles, each kept apart so a verdict can say which store
//! trusted a chain (a chain trusted only by a private CA is not publicly
//! trusted: the 398-day rule does not apply to it).
//!
//! This is the one part of `grade` that reads files: [`TrustStores::load`]
//! is called once by the caller, before any grading; everything it builds is
//! plain data the pure functions take by reference. The other constructors
//! ([`TrustStores::web_roots`], [`TrustStore::from_pem`],
//! [`TrustStore::from_der`]) read nothing.
//!
//! The system store comes from `rustls-native-certs`, not
//! `rustls-platform-verifier`: the platform verifier is a whole
//! `ServerCertVerifier` that asks the operating system (and on some systems
//! the system clock and the network, for revocation), so it can neither take
//! `now` as an argument nor say which anchors it used. native-certs only
//! loads the anchors (on Linux: the OpenSSL bundle, `SSL_CERT_FILE`/`SSL_CERT_DIR`
//! honoured), and we verify with the same webpki code and clock as the other
//! stores.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, TrustAnchor};
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

/// Where a store's anchors come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// Mozilla's roots as bundled by `webpki-roots`: public trust.
    WebRoots,
    /// The operating system's store.
    System,
    /// A PEM bundle the user configured (`--ca-bundle`).
    Bundle(PathBuf),
    /// Anchors handed over in memory (tests, embedding).
    Memory,
}

/// One set of trust anchors with a verifier over them.
pub struct TrustStore {
    /// `webpki-roots`, `system`, `bundle:/etc/pki/corp.pem`, …
    pub name: String,
    pub kind: StoreKind,
    verifier: Arc<WebPkiServerVerifier>,
    /// Anchor subjects as x509-parser prints them (the form of
    /// `CertInfo::issuer_dn`), to tell a missing intermediate from a root.
    subjects: HashSet<String>,
    len: usize,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("anchors", &self.len)
            .finish()
    }
}

impl TrustStore {
    /// A store over `anchors`. Fails only when there are none.
    pub fn from_anchors(name: &str, kind: StoreKind, anchors: Vec<TrustAnchor<'static>>) -> Result<Self, TrustError> {
        if anchors.is_empty() {
            return Err(TrustError::Empty {
                store: name.to_string(),
            });
        }
        let subjects = anchors
            .iter()
            .filter_map(|a| subject_string(a.subject.as_ref()))
            .collect();
        let len = anchors.len();
        let roots = Arc::new(RootCertStore { roots: anchors });
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| TrustError::Verifier {
                store: name.to_string(),
                reason: e.to_string(),
            })?;
        Ok(TrustStore {
            name: name.to_string(),
            kind,
            verifier,
            subjects,
            len,
        })
    }

    /// A store from DER certificates; an unusable one is an error naming its index.
    pub fn from_der(name: &str, kind: StoreKind, certs: &[Vec<u8>]) -> Result<Self, TrustError> {
        let mut roots = RootCertStore::empty();
        for (i, der) in certs.iter().enumerate() {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| TrustError::BadCertificate {
                    store: name.to_string(),
                    index: i,
                    reason: e.to_string(),
                })?;
        }
        Self::from_anchors(name, kind, roots.roots)
    }

    /// A store from the text of a PEM bundle.
    pub fn from_pem(name: &str, kind: StoreKind, pem: &[u8]) -> Result<Self, TrustError> {
        let mut ders = Vec::new();
        for (i, item) in CertificateDer::pem_slice_iter(pem).enumerate() {
            let der = item.map_err(|e| TrustError::BadCertificate {
                store: name.to_string(),
                index: i,
                reason: e.to_string(),
            })?;
            ders.push(der.as_ref().to_vec());
        }
        Self::from_der(name, kind, &ders)
    }

    pub fn verifier(&self) -> &WebPkiServerVerifier {
        &self.verifier
    }

    /// An anchor in this store has this subject (as `CertInfo` prints names).
    pub fn has_subject(&self, dn: &str) -> bool {
        self.subjects.contains(dn)
    }

    pub fn is_public(&self) -> bool {
        self.kind == StoreKind::WebRoots
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Every store a chain is checked against, in the order they are reported.
#[derive(Debug, Default)]
pub struct TrustStores {
    pub stores: Vec<TrustStore>,
}

/// Which stores to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustConfig {
    pub web_roots: bool,
    pub system: bool,
    /// PEM files of private CAs, each its own store.
    pub ca_bundles: Vec<PathBuf>,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            web_roots: true,
            system: true,
            ca_bundles: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("trust store {store}: no certificates")]
    Empty { store: String },
    #[error("trust store {store}: certificate {index} is unusable: {reason}")]
    BadCertificate {
        store: String,
        index: usize,
        reason: String,
    },
    #[error("trust store {store}: {reason}")]
    Verifier { store: String, reason: String },
    #[error("CA bundle {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl TrustStores {
    /// No stores: every chain is untrusted (useful in tests and for
    /// `--no-trust` style runs).
    pub fn empty() -> Self {
        TrustStores { stores: Vec::new() }
    }

    /// Only the bundled Mozilla roots. Reads nothing.
    pub fn web_roots() -> Self {
        TrustStores {
            stores: vec![web_roots_store()],
        }
    }

    /// Load the stores `config` asks for. Reads the system store and the
    /// bundles: call once, before grading. An unreadable or empty bundle is an
    /// error (the user asked for it); a system store that is missing or
    /// partly unreadable is a warning, returned beside the stores.
    pub fn load(config: &TrustConfig) -> Result<(TrustStores, Vec<String>), TrustError> {
        let mut stores = Vec::new();
        let mut warnings = Vec::new();
        if config.web_roots {
            stores.push(web_roots_store());
        }
        if config.system {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                warnings.push(format!("system trust store: {e}"));
            }
            let mut roots = RootCertStore::empty();
            let (_, ignored) = roots.add_parsable_certificates(found.certs);
            if ignored > 0 {
                warnings.push(format!("system trust store: skipped {ignored} unusable certificates"));
            }
            let anchors = roots.roots;
            match TrustStore::from_anchors("system", StoreKind::System, anchors) {
                Ok(s) => stores.push(s),
                Err(e) => warnings.push(e.to_string()),
            }
        }
        for path in &config.ca_bundles {
            stores.push(load_bundle(path)?);
        }
        Ok((TrustStores { stores }, warnings))
    }

    pub fn push(&mut self, store: TrustStore) {
        self.stores.push(store);
    }

    /// Some store holds an anchor with this subject.
    pub fn has_anchor_subject(&self, dn: &str) -> bool {
        self.stores.iter().any(|s| s.has_subject(dn))
    }
}

fn load_bundle(path: &Path) -> Result<TrustStore, TrustError> {
    let pem = std::fs::read(path).map_err(|source| TrustError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = format!("bundle:{}", path.display());
    TrustStore::from_pem(&name, StoreKind::Bundle(path.to_path_buf()), &pem)
}

fn web_roots_store() -> TrustStore {
    let anchors = webpki_roots::TLS_SERVER_ROOTS.to_vec();
    // The bundled set is never empty and always builds.
    TrustStore::from_anchors("webpki-roots", StoreKind::WebRoots, anchors)
        .unwrap_or_else(|e| unreachable!("bundled web roots: {e}"))
}

/// A trust anchor's subject is the *contents* of the Name SEQUENCE; wrap it
/// back into a SEQUENCE and print it the way `cert::parse` prints names.
fn subject_string(contents: &[u8]) -> Option<String> {
    let mut der = vec![0x30];
    let len = contents.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.extend_from_slice(contents);
    let (_, name) = X509Name::from_der(&der).ok()?;
    Some(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_roots_know_their_subjects() {
        let s = TrustStores::web_roots();
        assert_eq!(s.stores.len(), 1);
        assert!(s.stores[0].is_public());
        assert!(s.stores[0].len() > 100);
        assert!(
            s.has_anchor_subject("C=US, O=Internet Security Research Group, CN=ISRG Root X1"),
            "ISRG Root X1 is a Mozilla root"
        );
    }

    #[test]
    fn a_pem_bundle_becomes_a_store_with_its_subjects() {
        let chain = testbed::issue_chain("pem", &["a.test"], testbed::KeyKind::EcdsaP256).unwrap();
        let store = TrustStore::from_pem("bundle:x", StoreKind::Memory, chain.root_pem.as_bytes()).unwrap();
        assert_eq!(store.len(), 1);
        let root = crate::model::cert::parse(&chain.root).unwrap();
        assert!(store.has_subject(&root.subject_dn), "{}", root.subject_dn);
        assert!(!store.is_public());
    }

    #[test]
    fn rejects_empty_bundles_and_garbage() {
        assert!(matches!(
            TrustStore::from_pem("b", StoreKind::Memory, b"no pem here"),
            Err(TrustError::Empty { .. })
        ));
        assert!(matches!(
            TrustStore::from_der("b", StoreKind::Memory, &[b"junk".to_vec()]),
            Err(TrustError::BadCertificate { index: 0, .. })
        ));
    }

    #[test]
    fn load_reads_the_system_store_without_failing() {
        let config = TrustConfig {
            web_roots: true,
            system: true,
            ca_bundles: Vec::new(),
        };
        let (stores, _warnings) = TrustStores::load(&config).unwrap();
        assert_eq!(stores.stores[0].name, "webpki-roots");
        assert!(stores.stores.len() <= 2);
    }

    #[test]
    fn load_reports_an_unreadable_bundle() {
        let config = TrustConfig {
            web_roots: false,
            system: false,
            ca_bundles: vec![PathBuf::from("/nonexistent/netsensor/ca.pem")],
        };
        let err = TrustStores::load(&config).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/netsensor/ca.pem"), "{err}");
    }
}
