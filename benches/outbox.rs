//! The outbox decision, measured: the directory outbox
//! (`netsensor::report::outbox`: a file per 100 events, fsync'd, renamed,
//! directory fsync'd) against a table in the inventory's SQLite database
//! (WAL, `synchronous=FULL`) whose rows are written in the same transaction
//! as the run's changes. Measured on the real disk (tempdirs in $TMPDIR):
//!
//! 1. one large run: 5,000 change events made durable after/with the run;
//! 2. many small runs: 10 events each, per-run latency;
//! 3. delivery bookkeeping: forming 500-event batches and deleting them on
//!    acknowledgement;
//! 4. recovery: a child process enqueues N events and is SIGKILLed; then
//!    the time to open the store and know what is pending.
//!
//! `cargo bench --bench outbox`. Figures and the decision: docs/benchmarks.md
//! and ARCHITECTURE.md ("Why the outbox is (or is not) a SQLite table").

mod support;

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netsensor::model::record::EndpointRecord;
use netsensor::report::outbox::{Class, DirStorage, Limits, Outbox};
use netsensor::report::wire::{Event, EventKind};
use netsensor::report::{self, EVENTS_PER_RECORD};
use netsensor::store::inventory::{DiffPolicy, Inventory, Run};
use rusqlite::{Connection, Transaction, params};
use support::{ms, per_sec};

const OUTBOX_SQL: &str = "
    CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,
        class INTEGER NOT NULL, event BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS outbox_batches (id TEXT PRIMARY KEY,
        lo INTEGER NOT NULL, hi INTEGER NOT NULL, parked TEXT);";

/// `n` events over realistic graded records (500 distinct, cycled with
/// distinct addresses).
fn events(base: &[EndpointRecord], n: usize, offset: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let j = i + offset;
            let mut r = base[j % base.len()].clone();
            r.address = IpAddr::from([10, 100 + (j >> 16) as u8, (j >> 8) as u8, j as u8]);
            r.scanned_at = "2026-11-25T12:00:00Z".into();
            Event::new(EventKind::New, "2026-11-25T12:10:00Z", Vec::new(), r)
        })
        .collect()
}

fn records_of(events: &[Event]) -> Vec<EndpointRecord> {
    events.iter().map(|e| e.endpoint.clone()).collect()
}

/// The inventory database, opened as `Inventory::open` opens it, plus the
/// outbox table.
fn open_db(path: &Path) -> Connection {
    drop(Inventory::open(path).expect("inventory schema"));
    let c = Connection::open(path).expect("open");
    c.busy_timeout(Duration::from_secs(10)).expect("busy");
    c.pragma_update(None, "journal_mode", "WAL").expect("wal");
    c.pragma_update(None, "synchronous", "FULL").expect("full");
    c.execute_batch(OUTBOX_SQL).expect("outbox schema");
    c
}

/// The writes `Inventory::record_run` makes for `records` (run row, then per
/// record: read the stored one, insert or update), without the diff.
fn write_run(tx: &Transaction<'_>, records: &[EndpointRecord]) {
    tx.execute(
        "INSERT INTO runs(profile, started_at, finished_at) VALUES ('bench', ?1, ?1)",
        ["2026-11-25T12:10:00Z"],
    )
    .expect("run");
    let mut sel = tx
        .prepare_cached(
            "SELECT record, gone_at FROM endpoints WHERE address = ?1 AND port = ?2 AND sni = ?3 AND sensor = ''",
        )
        .expect("select");
    let mut ins = tx
        .prepare_cached(
            "INSERT INTO endpoints(address, port, sni, profile, category, first_seen, last_seen, missed_runs, tags, record)
             VALUES (?1, ?2, ?3, 'bench', ?4, ?5, ?5, 0, '[]', ?6)",
        )
        .expect("insert");
    let mut upd = tx
        .prepare_cached(
            "UPDATE endpoints SET profile = 'bench', category = ?4, last_seen = ?5, missed_runs = 0, gone_at = NULL,
             record = ?6 WHERE address = ?1 AND port = ?2 AND sni = ?3 AND sensor = ''",
        )
        .expect("update");
    for r in records {
        let (addr, sni) = (r.address.to_string(), r.hostname.clone().unwrap_or_default());
        let before: Option<String> = sel.query_row(params![addr, r.port, sni], |row| row.get(0)).ok();
        if let Some(old) = &before {
            let _: EndpointRecord = serde_json::from_str(old).expect("stored");
        }
        let json = serde_json::to_string(r).expect("json");
        let args = params![addr, r.port, sni, r.category.as_str(), r.scanned_at, json];
        match before {
            None => ins.execute(args).expect("insert"),
            Some(_) => upd.execute(args).expect("update"),
        };
    }
}

/// One row per event, in `tx`.
fn insert_events(tx: &Transaction<'_>, class: i64, events: &[Event]) {
    let mut ins = tx
        .prepare_cached("INSERT INTO outbox(class, event) VALUES (?1, ?2)")
        .expect("insert event");
    for e in events {
        ins.execute(params![class, serde_json::to_vec(e).expect("json")])
            .expect("event");
    }
}

/// Forms the next batch of up to `max` events and `max_bytes` (at least
/// one event), durably, and returns its payloads (what `Outbox::next_batch`
/// does). Events leave in order, so a batch is a range of sequence numbers:
/// one small row, the events themselves are not rewritten.
fn sql_next_batch(c: &mut Connection, id: &str, max: usize, max_bytes: usize) -> Option<Vec<Vec<u8>>> {
    let tx = c.transaction().expect("tx");
    let (mut seqs, mut payloads, mut bytes) = (Vec::new(), Vec::new(), 0);
    {
        let mut s = tx
            .prepare_cached(
                "SELECT seq, event FROM outbox
                 WHERE seq > (SELECT coalesce(max(hi), -1) FROM outbox_batches) ORDER BY seq LIMIT ?1",
            )
            .expect("read");
        let rows = s
            .query_map([max as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .expect("rows");
        for row in rows {
            let (seq, p) = row.expect("row");
            if !payloads.is_empty() && bytes + p.len() > max_bytes {
                break;
            }
            bytes += p.len();
            seqs.push(seq);
            payloads.push(p);
        }
    }
    let (lo, hi) = (*seqs.first()?, *seqs.last()?);
    tx.execute(
        "INSERT INTO outbox_batches(id, lo, hi) VALUES (?1, ?2, ?3)",
        params![id, lo, hi],
    )
    .expect("batch");
    tx.commit().expect("commit");
    Some(payloads)
}

fn sql_ack(c: &mut Connection, id: &str) {
    let tx = c.transaction().expect("tx");
    tx.execute(
        "DELETE FROM outbox WHERE seq BETWEEN (SELECT lo FROM outbox_batches WHERE id = ?1)
            AND (SELECT hi FROM outbox_batches WHERE id = ?1)",
        [id],
    )
    .expect("delete");
    tx.execute("DELETE FROM outbox_batches WHERE id = ?1", [id])
        .expect("delete batch");
    tx.commit().expect("commit");
}

fn open_outbox(dir: &Path) -> Outbox<DirStorage> {
    Outbox::open(DirStorage::open(dir).expect("dir"), Limits::default())
        .expect("outbox")
        .0
}

fn run_of(records: &[EndpointRecord]) -> Run<'_> {
    Run {
        profile: "bench",
        started_at: "2026-11-25T12:00:00Z",
        finished_at: "2026-11-25T12:10:00Z",
        records,
        tags: &[],
        complete: false,
    }
}

fn line(what: &str, events: usize, d: Duration) {
    println!("  {what:<58} {:>9.1} ms {:>10.0} events/s", ms(d), per_sec(events, d));
}

/// The child of the recovery measurement: store `n` events durably, say
/// so, and wait to be killed.
fn child(kind: &str, path: &Path, n: usize) {
    let base = support::graded(16);
    let ev = events(&base, n, 0);
    match kind {
        "outbox" => {
            let mut ob = open_outbox(path);
            report::enqueue(&mut ob, Class::Change, &ev).expect("enqueue");
        }
        _ => {
            let mut c = open_db(path);
            for chunk in ev.chunks(5_000) {
                let tx = c.transaction().expect("tx");
                insert_events(&tx, 0, chunk);
                tx.commit().expect("commit");
            }
            // Keep the connection open: the kill leaves the WAL as it is.
            std::mem::forget(c);
        }
    }
    println!("ready");
    std::thread::sleep(Duration::from_secs(600));
}

fn killed_child(kind: &str, path: &Path, n: usize) {
    let exe = std::env::current_exe().expect("exe");
    let mut c = Command::new(exe)
        .args(["--child", kind, &path.display().to_string(), &n.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("child");
    let mut out = BufReader::new(c.stdout.take().expect("stdout"));
    let mut l = String::new();
    out.read_line(&mut l).expect("ready line");
    assert_eq!(l.trim(), "ready", "child said {l:?}");
    c.kill().expect("SIGKILL");
    c.wait().expect("reaped");
}

fn main() {
    if support::not_benchmarking("outbox") {
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let n = args[i + 3].parse().expect("n");
        child(&args[i + 1], Path::new(&args[i + 2]), n);
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    println!(
        "outbox bench in {} (ext4 on this machine: fsync reaches the disk)",
        tmp.path().display()
    );
    let base = support::graded(500);
    let big = events(&base, 5_000, 0);
    let one = serde_json::to_vec(&big[0]).expect("json").len();
    println!("  events are graded records, {one} bytes of JSON each");

    // -- 1. One large run --------------------------------------------------
    println!("\n1. one run, 5,000 changed endpoints, their events made durable");
    let records = records_of(&big);
    let mut inv = Inventory::open(&tmp.path().join("a.sqlite")).expect("inventory");
    let t = Instant::now();
    let changes = inv.record_run(&run_of(&records), &DiffPolicy::default()).expect("run");
    let real_run = t.elapsed();
    assert_eq!(changes.len(), 5_000);
    let mut ob = open_outbox(&tmp.path().join("a-outbox"));
    let t = Instant::now();
    report::enqueue(&mut ob, Class::Change, &big).expect("enqueue");
    let outbox = t.elapsed();
    line("Inventory::record_run (the run's own transaction)", 5_000, real_run);
    line(
        &format!("(a) outbox: report::enqueue, {} records", 5_000 / EVENTS_PER_RECORD),
        5_000,
        outbox,
    );
    let mut c = open_db(&tmp.path().join("b.sqlite"));
    let t = Instant::now();
    let tx = c.transaction().expect("tx");
    write_run(&tx, &records);
    tx.commit().expect("commit");
    let rows_only = t.elapsed();
    let mut c2 = open_db(&tmp.path().join("c.sqlite"));
    let t = Instant::now();
    let tx = c2.transaction().expect("tx");
    write_run(&tx, &records);
    insert_events(&tx, 0, &big);
    tx.commit().expect("commit");
    let with_events = t.elapsed();
    let t = Instant::now();
    let tx = c.transaction().expect("tx");
    insert_events(&tx, 0, &big);
    tx.commit().expect("commit");
    let separate = t.elapsed();
    line("run's writes alone, one SQLite transaction", 5_000, rows_only);
    line(
        "(b) run's writes + 5,000 event rows, same transaction",
        5_000,
        with_events,
    );
    line(
        "    marginal cost of the events in the run's transaction",
        5_000,
        with_events.saturating_sub(rows_only),
    );
    line("(b') the events alone, a transaction of their own", 5_000, separate);
    println!(
        "  durable run + events: today {:.0} ms (the run's transaction, then the outbox); one transaction {:.0} ms",
        ms(rows_only + outbox),
        ms(with_events)
    );

    // -- 2. Many small runs ------------------------------------------------
    const RUNS: usize = 100;
    const PER_RUN: usize = 10;
    println!("\n2. {RUNS} small runs of {PER_RUN} changed endpoints each: latency per run");
    let small = events(&base, RUNS * PER_RUN, 100_000);
    let mut ob = open_outbox(&tmp.path().join("s-outbox"));
    let t = Instant::now();
    for chunk in small.chunks(PER_RUN) {
        report::enqueue(&mut ob, Class::Change, chunk).expect("enqueue");
    }
    let outbox = t.elapsed();
    let mut c = open_db(&tmp.path().join("s.sqlite"));
    let t = Instant::now();
    for chunk in small.chunks(PER_RUN) {
        let tx = c.transaction().expect("tx");
        write_run(&tx, &records_of(chunk));
        tx.commit().expect("commit");
    }
    let rows_only = t.elapsed();
    let mut c2 = open_db(&tmp.path().join("s2.sqlite"));
    let t = Instant::now();
    for chunk in small.chunks(PER_RUN) {
        let tx = c2.transaction().expect("tx");
        write_run(&tx, &records_of(chunk));
        insert_events(&tx, 0, chunk);
        tx.commit().expect("commit");
    }
    let with_events = t.elapsed();
    let per = |d: Duration| ms(d) / RUNS as f64;
    println!(
        "  (a) outbox enqueue after the run's commit:      {:>6.2} ms per run ({:.0} events/s)",
        per(outbox),
        per_sec(RUNS * PER_RUN, outbox)
    );
    println!(
        "      run's own SQLite transaction:                {:>6.2} ms per run",
        per(rows_only)
    );
    println!(
        "  (b) run + its event rows in that transaction:  {:>6.2} ms per run (events add {:.2} ms)",
        per(with_events),
        per(with_events.saturating_sub(rows_only))
    );

    // -- 3. Delivery bookkeeping -------------------------------------------
    println!("\n3. draining 5,000 events in batches of 500: form the batch durably, delete on ack");
    let mut ob = open_outbox(&tmp.path().join("a-outbox"));
    let (mut formed, mut acked, mut batches) = (Duration::ZERO, Duration::ZERO, 0);
    loop {
        let t = Instant::now();
        let Some(b) = ob
            .next_batch(500, 4 << 20, netsensor::report::outbox::random_id)
            .expect("batch")
        else {
            break;
        };
        formed += t.elapsed();
        let t = Instant::now();
        ob.ack(&b.id).expect("ack");
        acked += t.elapsed();
        batches += 1;
    }
    println!(
        "  (a) outbox:  next_batch {:>6.2} ms, ack {:>6.2} ms per batch ({batches} batches; {:.0} events/s drained)",
        ms(formed) / batches as f64,
        ms(acked) / batches as f64,
        per_sec(5_000, formed + acked)
    );
    let mut c = Connection::open(tmp.path().join("c.sqlite")).expect("open");
    c.pragma_update(None, "synchronous", "FULL").expect("full");
    let (mut formed, mut acked, mut batches) = (Duration::ZERO, Duration::ZERO, 0);
    loop {
        let id = netsensor::report::outbox::random_id();
        let t = Instant::now();
        let Some(p) = sql_next_batch(&mut c, &id, 500, 4 << 20) else {
            break;
        };
        std::hint::black_box(p);
        formed += t.elapsed();
        let t = Instant::now();
        sql_ack(&mut c, &id);
        acked += t.elapsed();
        batches += 1;
    }
    println!(
        "  (c) SQLite:  next_batch {:>6.2} ms, ack {:>6.2} ms per batch ({batches} batches; {:.0} events/s drained)",
        ms(formed) / batches as f64,
        ms(acked) / batches as f64,
        per_sec(5_000, formed + acked)
    );

    // -- 4. Recovery after SIGKILL -----------------------------------------
    println!("\n4. recovery: a child stores N events, is SIGKILLed; open + status (+ first batch)");
    for n in [5_000usize, 20_000] {
        let dir = tmp.path().join(format!("k-outbox-{n}"));
        killed_child("outbox", &dir, n);
        let t = Instant::now();
        let mut ob = open_outbox(&dir);
        let st = ob.status();
        let open = t.elapsed();
        assert_eq!(st.events, n as u64);
        let t = Instant::now();
        ob.next_batch(500, 4 << 20, netsensor::report::outbox::random_id)
            .expect("batch")
            .expect("pending");
        let first = t.elapsed();
        println!(
            "  (a) outbox, {n:>6} events ({} files, {:.0} MiB): open+status {:>7.1} ms, first batch {:>5.1} ms",
            st.records,
            st.bytes as f64 / (1 << 20) as f64,
            ms(open),
            ms(first)
        );
        let db = tmp.path().join(format!("k-{n}.sqlite"));
        killed_child("sqlite", &db, n);
        let wal = std::fs::metadata(db.with_extension("sqlite-wal")).map_or(0, |m| m.len());
        let t = Instant::now();
        let mut c = Connection::open(&db).expect("open");
        c.pragma_update(None, "journal_mode", "WAL").expect("wal");
        c.pragma_update(None, "synchronous", "FULL").expect("full");
        let (count, bytes): (i64, i64) = c
            .query_row(
                "SELECT count(*), coalesce(sum(length(event)), 0) FROM outbox",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("status");
        let open = t.elapsed();
        assert_eq!(count as usize, n);
        let t = Instant::now();
        sql_next_batch(&mut c, "first", 500, 4 << 20).expect("pending");
        let first = t.elapsed();
        println!(
            "  (c) SQLite, {n:>6} events (WAL left {:.0} MiB, {:.0} MiB of rows): open+status {:>7.1} ms, first batch {:>5.1} ms",
            wal as f64 / (1 << 20) as f64,
            bytes as f64 / (1 << 20) as f64,
            ms(open),
            ms(first)
        );
    }
}
