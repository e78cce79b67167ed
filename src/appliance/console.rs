//! The web console (`crate::console::web`) mounted on the service port:
//! its axum `Router` merged into the port's routes, over the store the
//! endpoints API reads and this sensor's own inventory.
//!
//! Who may log in: the administrator tokens (`--admin-token`,
//! `[service] admin_token_file`) and the read tokens (the intake's tokens,
//! which the service port lets read its status and endpoints too).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::console::web::{self, Console, Stores, Tokens};
use crate::store::central::CentralStore;
use crate::store::inventory::Inventory;

/// The console's routes: `/login`, `/logout`, `/`, `/endpoints…`,
/// `/certificates`, `/scans`, `/sensors`, `/assets/console.css`.
pub fn routes(
    endpoints: Arc<dyn CentralStore>,
    own: Arc<Mutex<Inventory>>,
    admin: &[String],
    intake: &BTreeMap<String, String>,
    tls: bool,
) -> axum::Router {
    if admin.is_empty() {
        tracing::info!("the console is on, but no administrator token is set (--admin-token)");
    }
    let tokens = Tokens {
        admin: admin.to_vec(),
        read: intake.values().cloned().collect(),
    };
    let mut console = Console::new(Arc::new(Stores { endpoints, own }), tokens);
    console.secure_cookie = tls;
    web::router(Arc::new(console))
}
