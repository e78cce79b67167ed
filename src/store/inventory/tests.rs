//! The inventory as a whole: runs, reports, agents and migrations
//! against a real SQLite file.

use std::collections::HashSet;

use rusqlite::{Connection, params};

use super::migrate::MIGRATIONS;
use super::*;
use crate::model::cert::CertInfo;
use crate::model::record::{Category, EndpointRecord};

pub(super) fn rec(addr: &str, port: u16, thumb: &str, at: &str) -> EndpointRecord {
    let mut r = EndpointRecord::new(addr.parse().unwrap(), port, None, Category::Discovered, at.into());
    r.certificate = Some(CertInfo {
        thumbprint: thumb.into(),
        valid_to: "2027-06-01T00:00:00Z".into(),
        ..CertInfo::default()
    });
    r
}

const POLICY: DiffPolicy = DiffPolicy {
    gone_after: 2,
    expiry_warning_days: 30,
};

fn run<'a>(at: &'a str, records: &'a [EndpointRecord]) -> Run<'a> {
    Run {
        profile: "lab",
        started_at: at,
        finished_at: at,
        records,
        tags: &[],
        complete: true,
    }
}

#[test]
fn runs_become_new_changed_and_gone_events_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.sqlite");
    let t = |d: u32| format!("2026-11-{d:02}T00:00:00Z");
    let mut inv = Inventory::open(&path).unwrap();
    let run1 = vec![rec("127.0.0.1", 443, "AA", &t(1)), rec("127.0.0.2", 443, "CC", &t(1))];
    let c = inv.record_run(&run(&t(1), &run1), &POLICY).unwrap();
    assert_eq!(c.iter().filter(|c| matches!(c, Change::New { .. })).count(), 2);
    // Run 2: .1 got a new certificate, .2 is missing once.
    let c = inv
        .record_run(&run(&t(2), &[rec("127.0.0.1", 443, "BB", &t(2))]), &POLICY)
        .unwrap();
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(matches!(&c[0], Change::Changed { reasons, .. } if reasons == &vec!["certificate replaced".to_string()]));
    drop(inv);
    // Reopen: nothing lost; run 3: .2 missing twice -> gone, reported once.
    let mut inv = Inventory::open(&path).unwrap();
    let c = inv
        .record_run(&run(&t(3), &[rec("127.0.0.1", 443, "BB", &t(3))]), &POLICY)
        .unwrap();
    assert_eq!(
        c,
        vec![Change::Gone {
            key: Key::of(&run1[1]),
            missed_runs: 2
        }]
    );
    let c = inv
        .record_run(&run(&t(4), &[rec("127.0.0.1", 443, "BB", &t(4))]), &POLICY)
        .unwrap();
    assert!(c.is_empty(), "gone is reported once: {c:?}");
    let all = inv.list(None).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].first_seen, t(1));
    assert_eq!(all[0].last_seen, t(4));
    assert_eq!(inv.list(Some(Category::Unsecured)).unwrap().len(), 0);
}

#[test]
fn an_endpoint_back_after_gone_is_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = Inventory::open(&dir.path().join("i.sqlite")).unwrap();
    let t = |d: u32| format!("2026-11-0{d}T00:00:00Z");
    let one = |d: u32| vec![rec("127.0.0.1", 443, "AA", &t(d))];
    assert_eq!(inv.record_run(&run(&t(1), &one(1)), &POLICY).unwrap().len(), 1);
    inv.record_run(&run(&t(2), &[]), &POLICY).unwrap();
    let c = inv.record_run(&run(&t(3), &[]), &POLICY).unwrap();
    assert!(matches!(c.as_slice(), [Change::Gone { .. }]), "{c:?}");
    // The same record again: not silent, or upstream would keep it gone.
    let c = inv.record_run(&run(&t(4), &one(4)), &POLICY).unwrap();
    assert!(
        matches!(c.as_slice(), [Change::Changed { reasons, .. }] if reasons[0].starts_with("seen again")),
        "{c:?}"
    );
    assert!(inv.record_run(&run(&t(5), &one(5)), &POLICY).unwrap().is_empty());
}

#[test]
fn an_incomplete_run_counts_nobody_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = Inventory::open(&dir.path().join("i.sqlite")).unwrap();
    let t = "2026-11-01T00:00:00Z";
    inv.record_run(
        &run(t, &[rec("127.0.0.1", 443, "AA", t), rec("127.0.0.2", 443, "BB", t)]),
        &POLICY,
    )
    .unwrap();
    let cut = Run {
        complete: false,
        ..run(t, &[])
    };
    for _ in 0..3 {
        assert!(inv.record_run(&cut, &POLICY).unwrap().is_empty());
    }
    assert!(inv.list(None).unwrap().iter().all(|s| s.missed_runs == 0));
    assert_eq!(inv.last_run("lab").unwrap().as_deref(), Some(t));
}

#[test]
fn a_newer_schema_is_refused_not_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.sqlite");
    drop(Inventory::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Inventory::open(&path).err().unwrap().to_string();
    assert!(err.contains("schema 99") && err.contains("upgrade the sensor"), "{err}");
}

#[test]
fn a_version_1_store_migrates_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.sqlite");
    let old = rec("127.0.0.1", 443, "AA", "2026-10-01T00:00:00Z");
    {
        // A store exactly as a version-1 sensor left it.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let json = serde_json::to_string(&old).unwrap();
        conn.execute(
            "INSERT INTO endpoints VALUES ('127.0.0.1', 443, '', 'lab', 'discovered', ?1, ?1, 0, '[\"dc1\"]', ?2)",
            params!["2026-10-01T00:00:00Z", json],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO endpoints VALUES ('127.0.0.9', 22, '', 'lab', 'unsecured', ?1, ?1, 4, '[]', ?2)",
            params!["2026-10-01T00:00:00Z", json.replace("127.0.0.1", "127.0.0.9")],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO runs(profile, started_at, finished_at) VALUES ('lab', '2026-10-01T00:00:00Z', NULL)",
            [],
        )
        .unwrap();
    }
    let mut inv = Inventory::open(&path).unwrap();
    let version: i64 = inv.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA);
    let all = inv.list(None).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].key, Key::of(&old));
    assert_eq!(all[0].tags, vec!["dc1".to_string()]);
    assert_eq!(all[0].gone_at, None);
    assert_eq!(
        all[1].gone_at.as_deref(),
        Some("2026-10-01T00:00:00Z"),
        "missing 4 runs: gone"
    );
    assert_eq!(inv.last_run("lab").unwrap().as_deref(), Some("2026-10-01T00:00:00Z"));
    // The migrated store keeps working: the same endpoint is not new.
    let c = inv
        .record_run(
            &run(
                "2026-10-02T00:00:00Z",
                &[rec("127.0.0.1", 443, "AA", "2026-10-02T00:00:00Z")],
            ),
            &POLICY,
        )
        .unwrap();
    assert!(c.is_empty(), "{c:?}");
    // Opening again is a no-op.
    drop(inv);
    assert_eq!(Inventory::open(&path).unwrap().list(None).unwrap().len(), 2);
}

#[test]
fn agents_make_their_hosts_automatable() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = Inventory::open(&dir.path().join("i.sqlite")).unwrap();
    let t = "2026-11-01T00:00:00Z";
    let mut plain = rec("127.0.0.2", 80, "", t);
    plain.category = Category::Unsecured;
    inv.record_run(&run(t, &[rec("127.0.0.1", 443, "AA", t), plain]), &POLICY)
        .unwrap();
    inv.mark_agent("127.0.0.1", t).unwrap();
    inv.mark_agent("127.0.0.2", t).unwrap();
    let auto = inv.list(Some(Category::Automatable)).unwrap();
    assert_eq!(auto.len(), 1);
    assert_eq!(auto[0].key.address, "127.0.0.1");
    // A plaintext port stays unsecured: there is no certificate to automate.
    assert_eq!(inv.list(Some(Category::Unsecured)).unwrap().len(), 1);
    assert!(inv.list(Some(Category::Discovered)).unwrap().is_empty());
}

#[test]
fn a_report_batch_applies_once_and_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = Inventory::open(&dir.path().join("i.sqlite")).unwrap();
    let t = "2026-11-01T00:00:00Z";
    let local = rec("10.0.0.1", 443, "LOCAL", t);
    inv.record_run(&run(t, std::slice::from_ref(&local)), &POLICY).unwrap();
    // The same address in another segment is another endpoint.
    let events = vec![
        (EventKind::New, rec("10.0.0.1", 443, "REMOTE", t)),
        (EventKind::Snapshot, rec("10.0.0.2", 443, "R2", t)),
    ];
    let a = inv.apply_report("seg-a", "b-1", "d-1", t, &events).unwrap();
    assert_eq!(
        a,
        Applied {
            applied: true,
            events: 2,
            conflict: false,
        }
    );
    let again = inv.apply_report("seg-a", "b-1", "d-1", t, &events).unwrap();
    assert!(!again.applied && !again.conflict);
    let other = inv.apply_report("seg-a", "b-1", "d-other", t, &events[..1]).unwrap();
    assert!(
        !other.applied && other.conflict,
        "a replay with other content is refused"
    );
    assert_eq!(inv.batches_applied().unwrap(), 1);
    let all = inv.list(None).unwrap();
    assert_eq!(all.len(), 3);
    let remote: Vec<_> = all.iter().filter(|s| s.key.sensor == "seg-a").collect();
    assert_eq!(remote.len(), 2);
    assert!(remote.iter().all(|s| s.tags == vec!["sensor:seg-a".to_string()]));
    let ids: HashSet<_> = all.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids.len(), 3, "ids are distinct across sensors");
    assert_eq!(inv.get(&remote[0].id).unwrap().unwrap().key, remote[0].key);
    inv.apply_report(
        "seg-a",
        "b-2",
        "d-2",
        "2026-11-02T00:00:00Z",
        &[(EventKind::Gone, rec("10.0.0.2", 443, "R2", t))],
    )
    .unwrap();
    let active = inv
        .query(&Filter {
            active_only: true,
            sensor: Some("seg-a".into()),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].key.address, "10.0.0.1");
}

#[test]
fn filters_by_grade_and_tag() {
    use crate::grade::{Grade, Letter};
    let dir = tempfile::tempdir().unwrap();
    let mut inv = Inventory::open(&dir.path().join("i.sqlite")).unwrap();
    let t = "2026-11-01T00:00:00Z";
    let graded = |addr: &str, letter: Letter| {
        let mut r = rec(addr, 443, addr, t);
        r.grade = Some(Grade {
            letter,
            score: 0,
            protocol_score: 0,
            key_exchange_score: 0,
            cipher_score: 0,
            caps: Vec::new(),
            warnings: Vec::new(),
            if_trusted: None,
            notes: Vec::new(),
        });
        r
    };
    let records = [
        graded("127.0.0.1", Letter::A),
        graded("127.0.0.2", Letter::C),
        graded("127.0.0.3", Letter::T),
        rec("127.0.0.4", 443, "x", t),
    ];
    let tags = vec!["dmz".to_string()];
    inv.record_run(
        &Run {
            tags: &tags,
            ..run(t, &records)
        },
        &POLICY,
    )
    .unwrap();
    let below = |l| {
        inv.query(&Filter {
            grade_below: Some(l),
            ..Filter::default()
        })
        .unwrap()
        .into_iter()
        .map(|s| s.key.address)
        .collect::<Vec<_>>()
    };
    assert_eq!(below(Letter::B), vec!["127.0.0.2", "127.0.0.3"]);
    assert_eq!(below(Letter::APlus).len(), 3, "ungraded never matches");
    let tagged = |t: &str| {
        inv.query(&Filter {
            tag: Some(t.into()),
            ..Filter::default()
        })
        .unwrap()
        .len()
    };
    assert_eq!(tagged("dmz"), 4);
    let counts = inv.counts().unwrap();
    assert_eq!(counts.by_category.get("discovered"), Some(&4));
    assert_eq!(
        counts
            .by_grade
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        vec![("A", 1), ("C", 1), ("T", 1), ("none", 1)]
    );
    assert_eq!(tagged("lab"), 0);
}

#[test]
fn two_openers_of_a_fresh_store_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.sqlite");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || Inventory::open(&path).map(|_| ()))
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let inv = Inventory::open(&path).unwrap();
    let version: i64 = inv.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA);
}

#[test]
fn each_endpoints_history_is_kept_with_what_it_looked_like() {
    let dir = tempfile::tempdir().unwrap();
    let mut inv = Inventory::open(&dir.path().join("i.sqlite")).unwrap();
    let t = |d: u32| format!("2026-11-0{d}T00:00:00Z");
    inv.record_run(
        &run(
            &t(1),
            &[rec("127.0.0.1", 443, "AA", &t(1)), rec("127.0.0.2", 443, "CC", &t(1))],
        ),
        &POLICY,
    )
    .unwrap();
    inv.record_run(&run(&t(2), &[rec("127.0.0.1", 443, "BB", &t(2))]), &POLICY)
        .unwrap();
    inv.record_run(&run(&t(3), &[rec("127.0.0.1", 443, "BB", &t(3))]), &POLICY)
        .unwrap();
    inv.record_run(
        &run(
            &t(4),
            &[rec("127.0.0.1", 443, "BB", &t(4)), rec("127.0.0.2", 443, "CC", &t(4))],
        ),
        &POLICY,
    )
    .unwrap();
    let one = inv
        .history(&Which {
            address: Some("127.0.0.1".into()),
            port: Some(443),
            sni: None,
        })
        .unwrap();
    let kinds: Vec<(&str, &str)> = one.iter().map(|e| (e.at.as_str(), e.kind.as_str())).collect();
    assert_eq!(kinds, [(t(1).as_str(), "new"), (t(2).as_str(), "changed")]);
    assert_eq!(one[1].reasons, ["certificate replaced"]);
    let seen = |i: usize| one[i].seen.as_ref().and_then(|s| s.thumbprint.clone());
    assert_eq!((seen(0).as_deref(), seen(1).as_deref()), (Some("AA"), Some("BB")));
    let other = inv
        .history(&Which {
            address: Some("127.0.0.2".into()),
            ..Which::default()
        })
        .unwrap();
    let kinds: Vec<&str> = other.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["new", "gone", "seen_again"]);
    assert_eq!(other[1].reasons, ["not seen in 2 runs"]);
    assert!(other[1].seen.is_none(), "nothing was seen when it was gone");
    assert_eq!(inv.history(&Which::default()).unwrap().len(), 5);
    assert!(
        inv.history(&Which {
            port: Some(8443),
            ..Which::default()
        })
        .unwrap()
        .is_empty()
    );
}

#[test]
fn endpoints_older_than_the_history_start_with_their_first_sighting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.sqlite");
    let mut inv = Inventory::open(&path).unwrap();
    let t = "2026-10-01T00:00:00Z";
    inv.record_run(&run(t, &[rec("127.0.0.1", 443, "AA", t)]), &POLICY)
        .unwrap();
    // As a store migrated from version 2 has it: endpoints, no changes.
    inv.conn.execute("DELETE FROM changes", []).unwrap();
    let h = inv.history(&Which::default()).unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!((h[0].kind.as_str(), h[0].at.as_str()), ("first_seen", t));
    assert_eq!(h[0].seen.as_ref().and_then(|s| s.thumbprint.as_deref()), Some("AA"));
}
