//! A run stopped part-way (SIGTERM, its window closed), kept in the
//! inventory's scan state so that the next start, or the next window,
//! continues the same walk with the same seed.
//!
//! The records found so far travel with the checkpoint: a resumed run is
//! judged on all its parts, so an endpoint seen before the pause is not
//! reported gone by the part after it.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::discover::checkpoint::Checkpoint;
use crate::model::record::EndpointRecord;
use crate::store::inventory::Inventory;

#[derive(Debug, Serialize, Deserialize)]
pub struct Paused {
    pub seed: u64,
    pub started_at: String,
    pub checkpoint: Checkpoint,
    /// What the earlier parts found.
    pub records: Vec<EndpointRecord>,
}

/// The paused run of `profile`, if one was saved and is readable (an
/// unreadable one is logged and forgotten: the run starts afresh).
pub async fn load(inventory: &Arc<Mutex<Inventory>>, profile: &str) -> Option<Paused> {
    let (inventory, name) = (inventory.clone(), profile.to_string());
    let text = tokio::task::spawn_blocking(move || inventory.lock().ok()?.scan_state(&name).ok().flatten())
        .await
        .ok()
        .flatten()?;
    match serde_json::from_str(&text) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(profile, "saved progress unreadable ({e}); starting afresh");
            None
        }
    }
}
