//! `GET /api/v1/status`: what the daemon is doing, as JSON.
//!
//! `sensor status` prints this document and scripts read it, so its field
//! names are an interface: add fields, never rename one.

use crate::appliance::state::{ProfileStatus, Shared};

/// The status document of `s` (reads the inventory's counts: call it off
/// the runtime's workers).
pub fn document(s: &Shared) -> serde_json::Value {
    let profiles: Vec<ProfileStatus> = s.profiles_with_progress();
    let counts = s
        .inventory
        .lock()
        .ok()
        .and_then(|i| i.counts().ok())
        .unwrap_or_default();
    serde_json::json!({
        "sensor": {"id": s.sensor_id, "name": s.sensor_name, "version": env!("CARGO_PKG_VERSION")},
        "started_at": s.started_at,
        "state_dir": s.state_dir,
        "listen": s.listen(),
        "scans_running": profiles.iter().filter(|p| p.running).count(),
        "profiles": profiles,
        "inventory": counts.by_category,
        "reporting": s.reporter.as_ref().map(|r| r.summary()),
        // Notices: sent, failed (parked) and waiting, by channel.
        "alerts": s.alerts().and_then(|a| a.status().ok()),
    })
}
