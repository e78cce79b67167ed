//! The fleet's state (issue 19) on both central stores, the embedded SQLite
//! store and a real PostgreSQL started by the test: one-time enrollment
//! tokens (expired, replayed, raced by threads), sensors and their states
//! (voiding is final), heartbeats and liveness transitions logged once,
//! definitions with revisions, runs.

use std::sync::{Arc, Mutex};

use netsensor::store::central::{CentralStore, PgInventory, transaction};
use netsensor::store::fleet::{self, Redeem, RunRow, ScanState, SensorState, secret_hash};
use netsensor::store::inventory::Inventory;
use serde_json::json;

use crate::pg::start_postgres;

fn exercise(store: Arc<dyn CentralStore>) {
    let s = &*store;
    let now = "2026-12-05T08:00:00Z";
    let later = "2026-12-05T09:00:00Z";
    transaction(s, |tx| {
        fleet::add_enrollment_token(tx, &secret_hash("tok-1"), now, later)
    })
    .unwrap();
    transaction(s, |tx| {
        fleet::add_enrollment_token(tx, &secret_hash("tok-old"), now, now)
    })
    .unwrap();
    let redeem = |tok: &str, who: &str| {
        transaction(s, |tx| fleet::redeem_enrollment_token(tx, &secret_hash(tok), now, who)).unwrap()
    };
    assert_eq!(redeem("tok-old", "x"), Redeem::Expired);
    assert_eq!(redeem("nope", "x"), Redeem::Unknown);
    // Threads racing on one token: one wins.
    let wins: usize = (0..4)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                transaction(&*store, |tx| {
                    fleet::redeem_enrollment_token(tx, &secret_hash("tok-1"), now, &format!("s{i}"))
                })
                .unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| usize::from(h.join().unwrap() == Redeem::Redeemed))
        .sum();
    assert_eq!(wins, 1);
    assert_eq!(redeem("tok-1", "again"), Redeem::Used);

    assert!(transaction(s, |tx| fleet::add_sensor(tx, "id-a", "a", &secret_hash("cred-a"), now)).unwrap());
    assert!(transaction(s, |tx| fleet::add_sensor(tx, "id-b", "b", &secret_hash("cred-b"), now)).unwrap());
    assert!(
        !transaction(s, |tx| fleet::add_sensor(tx, "id-x", "a", &secret_hash("cred-x"), now)).unwrap(),
        "name taken"
    );
    let a = transaction(s, |tx| fleet::sensor_by_credential(tx, &secret_hash("cred-a")))
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.id.as_str(), a.name.as_str(), a.state, a.last_seen.as_deref()),
        ("id-a", "a", SensorState::Active, None)
    );
    transaction(s, |tx| {
        fleet::heartbeat(tx, "id-a", later, Some("1.2.3"), &json!({"uptime_s": 5}))
    })
    .unwrap();
    let a = transaction(s, |tx| fleet::sensor(tx, "id-a")).unwrap().unwrap();
    assert_eq!(
        (a.version.as_deref(), a.last_seen.as_deref()),
        (Some("1.2.3"), Some(later))
    );
    assert_eq!(a.heartbeat, Some(json!({"uptime_s": 5})));
    // A transition is reported once, whoever marks it.
    assert!(transaction(s, |tx| fleet::mark_offline(tx, "id-a", true)).unwrap());
    assert!(!transaction(s, |tx| fleet::mark_offline(tx, "id-a", true)).unwrap());
    assert!(transaction(s, |tx| fleet::mark_offline(tx, "id-a", false)).unwrap());
    assert!(transaction(s, |tx| fleet::set_sensor_state(tx, "id-b", SensorState::Suspended)).unwrap());
    assert!(transaction(s, |tx| fleet::set_sensor_state(tx, "id-b", SensorState::Voided)).unwrap());
    assert!(
        !transaction(s, |tx| fleet::set_sensor_state(tx, "id-b", SensorState::Active)).unwrap(),
        "voiding is final"
    );
    assert!(!transaction(s, |tx| fleet::set_sensor_state(tx, "nobody", SensorState::Active)).unwrap());
    let names: Vec<_> = transaction(s, fleet::sensors)
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.state))
        .collect();
    assert_eq!(
        names,
        [
            ("a".to_string(), SensorState::Active),
            ("b".to_string(), SensorState::Voided)
        ]
    );

    let def = json!({"name": "lab", "targets": ["127.0.0.1"], "sensors": ["a"]});
    assert!(transaction(s, |tx| fleet::add_scan(tx, "d1", "lab", &def, now)).unwrap());
    assert!(
        !transaction(s, |tx| fleet::add_scan(tx, "d2", "lab", &def, now)).unwrap(),
        "name taken"
    );
    assert!(
        transaction(s, |tx| fleet::update_scan(
            tx,
            "d1",
            "lab",
            &json!({"name": "lab", "targets": ["127.0.0.2"], "sensors": ["a"]}),
            later
        ))
        .unwrap()
    );
    assert!(transaction(s, |tx| fleet::set_scan_state(tx, "d1", ScanState::Suspended, later)).unwrap());
    let d = transaction(s, |tx| fleet::scan(tx, "d1")).unwrap().unwrap();
    assert_eq!(
        (d.revision, d.state, d.updated_at.as_str()),
        (2, ScanState::Suspended, later)
    );
    assert_eq!(d.definition["targets"], json!(["127.0.0.2"]));
    let run = |state: &str, reason: Option<&str>| RunRow {
        scan: "d1".into(),
        sensor: "id-a".into(),
        revision: 2,
        state: state.into(),
        reason: reason.map(str::to_string),
        at: later.into(),
    };
    transaction(s, |tx| fleet::record_run(tx, &run("started", None))).unwrap();
    transaction(s, |tx| fleet::record_run(tx, &run("failed", Some("no route")))).unwrap();
    assert_eq!(
        transaction(s, |tx| fleet::runs(tx, "d1")).unwrap(),
        [run("failed", Some("no route"))]
    );
    assert!(transaction(s, |tx| fleet::delete_scan(tx, "d1")).unwrap());
    assert!(transaction(s, |tx| fleet::scan(tx, "d1")).unwrap().is_none());
    assert!(transaction(s, |tx| fleet::runs(tx, "d1")).unwrap().is_empty());
    assert!(!transaction(s, |tx| fleet::delete_scan(tx, "d1")).unwrap());
}

#[test]
fn the_sqlite_store_keeps_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Inventory::open(&dir.path().join("central.sqlite")).unwrap();
    exercise(Arc::new(Mutex::new(inv)));
}

#[test]
fn the_postgresql_store_keeps_the_same_fleet() {
    let Some(pg) = start_postgres() else { return };
    // Two centrals on one database: what one writes the other reads.
    let one: Arc<dyn CentralStore> = Arc::new(PgInventory::connect(&pg.url()).unwrap());
    exercise(one);
    let two = PgInventory::connect(&pg.url()).unwrap();
    let names: Vec<_> = transaction(&two, fleet::sensors)
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
}
