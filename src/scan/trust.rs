//! Trust stores loaded beside discovery instead of before it.
//!
//! Reading the system store means a directory walk and parsing a few hundred
//! PEM certificates; building the web roots' verifier parses ~150 anchors.
//! Nothing needs them until the first chain is judged, after a port scan and
//! a handshake and an enumeration, so [`TrustLater::start`] hands that work to
//! a thread of its own and the scan waits for it (if at all) in grading. The
//! stores come out exactly as [`TrustStores::load`] makes them, in the same
//! order: web roots, system, then each bundle. The user's bundles are read
//! first, on the caller's thread, so a bad `--ca-bundle` is still an error
//! before anything is scanned.

use std::sync::Arc;

use tokio::sync::watch;

use crate::grade::TrustStores;
use crate::grade::trust::{TrustConfig, TrustError};

/// Trust stores being loaded; [`TrustLater::get`] waits for them.
#[derive(Clone)]
pub struct TrustLater {
    rx: watch::Receiver<Option<Arc<TrustStores>>>,
}

impl std::fmt::Debug for TrustLater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ready = self.rx.borrow().is_some();
        f.debug_struct("TrustLater").field("ready", &ready).finish()
    }
}

impl TrustLater {
    /// Start loading what `config` asks for. The bundles are read now (their
    /// errors are returned now); the web roots and the system store on a
    /// thread, whose warnings go to the log as [`TrustStores::load`]'s would.
    pub fn start(config: &TrustConfig) -> Result<TrustLater, TrustError> {
        let bundles_only = TrustConfig {
            web_roots: false,
            system: false,
            ca_bundles: config.ca_bundles.clone(),
        };
        let (bundles, _) = TrustStores::load(&bundles_only)?;
        let rest = TrustConfig {
            ca_bundles: Vec::new(),
            ..config.clone()
        };
        let (tx, rx) = watch::channel(None);
        let on_thread = rest.clone();
        let load = move || {
            let stores = join(&on_thread, bundles);
            let _ = tx.send(Some(Arc::new(stores)));
        };
        if let Err(e) = std::thread::Builder::new().name("netsensor-trust".into()).spawn(load) {
            // No thread: load here, as before (the closure went with the error).
            tracing::debug!("trust stores loaded in line: {e}");
            let (bundles, _) = TrustStores::load(&bundles_only)?;
            return Ok(TrustLater::ready(join(&rest, bundles)));
        }
        Ok(TrustLater { rx })
    }

    /// Stores already loaded.
    pub fn ready(stores: TrustStores) -> TrustLater {
        let (_, rx) = watch::channel(Some(Arc::new(stores)));
        TrustLater { rx }
    }

    /// The stores, once loaded; `None` if the loading thread died.
    pub async fn get(&self) -> Option<Arc<TrustStores>> {
        let mut rx = self.rx.clone();
        let loaded = rx.wait_for(Option::is_some).await.ok()?;
        loaded.clone()
    }
}

/// Web roots and system store per `rest` (no bundles: it cannot fail), then
/// the bundles' stores.
fn join(rest: &TrustConfig, bundles: TrustStores) -> TrustStores {
    let (mut stores, warnings) = TrustStores::load(rest).unwrap_or_else(|e| {
        tracing::warn!("trust stores: {e}");
        (TrustStores::empty(), Vec::new())
    });
    for w in warnings {
        tracing::warn!("{w}");
    }
    for s in bundles.stores {
        stores.push(s);
    }
    stores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_stores_come_out_as_load_makes_them() {
        let config = TrustConfig::default();
        let later = TrustLater::start(&config).unwrap();
        let got = later.get().await.unwrap();
        let (direct, _) = TrustStores::load(&config).unwrap();
        let names = |t: &TrustStores| t.stores.iter().map(|s| (s.name.clone(), s.len())).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&direct));
        assert_eq!(got.stores[0].name, "webpki-roots");
    }

    #[test]
    fn a_bad_bundle_is_an_error_at_once() {
        let config = TrustConfig {
            ca_bundles: vec!["/nonexistent/netsensor-ca.pem".into()],
            ..TrustConfig::default()
        };
        let e = TrustLater::start(&config).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/netsensor-ca.pem"), "{e}");
    }
}
