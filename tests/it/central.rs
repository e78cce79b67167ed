//! The central inventory (issue 7) on both stores: the embedded SQLite
//! store and a real PostgreSQL server started by the test (initdb and
//! postgres from Debian's postgresql package, in a scratch directory, on a
//! free loopback port), driven through the same trait with the same
//! expectations: a batch applied once and whole, concurrent deliveries of
//! one batch applied once, filters, ids, counts, migrations re-run as no-ops.

use std::sync::{Arc, Mutex};

use netsensor::model::record::{Category, EndpointRecord};
use netsensor::store::central::{CentralStore, PgInventory};
use netsensor::store::inventory::{EventKind, Filter, Inventory};

use crate::pg::start_postgres;

fn rec(addr: &str, port: u16, at: &str) -> EndpointRecord {
    EndpointRecord::new(addr.parse().unwrap(), port, None, Category::Discovered, at.into())
}

/// Everything the intake relies on, asserted against one store.
fn exercise(store: Arc<dyn CentralStore>) {
    let t = "2026-11-24T00:00:00Z";
    let events = vec![
        (EventKind::New, rec("10.0.0.1", 443, t)),
        (EventKind::Snapshot, rec("10.0.0.2", 8443, t)),
    ];
    let a = store.apply_report("seg-a", "batch-1", "d-1", t, &events).unwrap();
    assert!(a.applied && a.events == 2);
    assert!(
        !store
            .apply_report("seg-a", "batch-1", "d-1", t, &events)
            .unwrap()
            .applied
    );
    // The same addresses from another segment are other endpoints.
    store.apply_report("seg-b", "batch-2", "d-2", t, &events[..1]).unwrap();
    let all = store.query(&Filter::default()).unwrap();
    assert_eq!(all.len(), 3);
    let b: Vec<_> = all.iter().filter(|s| s.key.sensor == "seg-b").collect();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].tags, vec!["sensor:seg-b".to_string()]);
    assert_eq!(store.get(&b[0].id).unwrap().unwrap().key, b[0].key);
    assert!(store.get("0000").unwrap().is_none());

    // Concurrent deliveries of one batch: applied exactly once.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                store
                    .apply_report(
                        "seg-c",
                        "batch-3",
                        "d-3",
                        t,
                        &[(EventKind::New, rec("10.0.0.9", 443, t))],
                    )
                    .unwrap()
                    .applied
            })
        })
        .collect();
    let applied = threads.into_iter().map(|h| h.join().unwrap()).filter(|a| *a).count();
    assert_eq!(applied, 1);

    // Gone: kept, marked, left out of active views and counts.
    store
        .apply_report(
            "seg-a",
            "batch-4",
            "d-4",
            "2026-11-25T00:00:00Z",
            &[(EventKind::Gone, rec("10.0.0.2", 8443, t))],
        )
        .unwrap();
    let active = store
        .query(&Filter {
            active_only: true,
            sensor: Some("seg-a".into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(active.len(), 1);
    let counts = store.counts().unwrap();
    assert_eq!(counts.by_category.get("discovered"), Some(&3));
    // A gone event for an endpoint never seen is stored as gone (order-independent convergence).
    store
        .apply_report(
            "seg-d",
            "batch-5",
            "d-5",
            t,
            &[(EventKind::Gone, rec("10.0.0.7", 22, t))],
        )
        .unwrap();
    let d = store
        .query(&Filter {
            sensor: Some("seg-d".into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].gone_at.is_some(), "{d:?}");
}

#[test]
fn the_sqlite_store_keeps_the_central_rules() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Inventory::open(&dir.path().join("central.sqlite")).unwrap();
    exercise(Arc::new(Mutex::new(inv)));
}

#[test]
fn the_postgresql_store_keeps_the_same_rules() {
    let Some(pg) = start_postgres() else { return };
    // Two sensors starting at once migrate the schema once.
    let url = pg.url();
    let openers: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgInventory::connect(&url).map(|_| ()))
        })
        .collect();
    for o in openers {
        o.join().unwrap().unwrap();
    }
    let store = PgInventory::connect(&url).unwrap();
    exercise(Arc::new(store));
    // Reconnecting finds everything and migrates nothing.
    let again = PgInventory::connect(&url).unwrap();
    assert_eq!(again.query(&Filter::default()).unwrap().len(), 5);
    // A wrong password is an error naming the server, not the secret.
    let bad = PgInventory::connect(&format!("postgres://nobody:s3cret@127.0.0.1:{}/nodb", pg.port))
        .err()
        .unwrap()
        .to_string();
    assert!(bad.contains("***") && !bad.contains("s3cret"), "{bad}");
}
