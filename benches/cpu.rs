//! Where the CPU work of a large run goes: grading 5,000 endpoints
//! (certificate parsing, chain validation against every trust store, rating)
//! on one thread, inline on the tokio workers (as the scan did), and through
//! the rayon pool (`netsensor::cpu`, as it does now); the intake's parse of
//! report batches the same two ways; and the inventory diff of the run
//! against the previous one, sequential and with `par_iter`. For the runtime
//! modes a ticker task sleeps 1 ms in a loop on the same runtime and records
//! how late it wakes: that lateness is what every socket deadline and timer
//! of a scan suffers while the CPU work runs.
//!
//! `cargo bench --bench cpu` (optionally `-- N` endpoints). Figures in
//! docs/benchmarks.md.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use netsensor::cpu;
use netsensor::model::record::EndpointRecord;
use netsensor::report::wire::{Event, EventKind, Report, SensorInfo};
use netsensor::store::inventory::{self, DiffPolicy, Inventory, Run};
use rayon::prelude::*;
use support::{Input, World, ms, per_sec};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The scan's default `max_examine`: endpoints examined at once.
const IN_FLIGHT: usize = 256;
/// Each mode runs this often; the fastest run's wall time is shown (the
/// machine is shared, so slower runs measure the neighbours), and the median
/// and the worst of the runs' worst timer lags.
const REPS: usize = 5;

/// Fastest of [`REPS`] runs of `f` (wall time, its result).
fn best<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut out = None;
    let mut fastest = Duration::MAX;
    for _ in 0..REPS {
        let t = Instant::now();
        let r = f();
        let d = t.elapsed();
        if d < fastest {
            fastest = d;
        }
        out = Some(r);
    }
    (fastest, out.expect("REPS > 0"))
}

/// CPU time of this process so far (every thread; 10 ms resolution).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name, which ends with the last `)`: fields 3 onward.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// How late a 1 ms sleep woke, over one run.
struct Lag {
    max: Duration,
    /// CPU time of the whole process during the run.
    cpu: Duration,
}

/// Sleeps 1 ms in a loop until `stop`; the latest wake-up.
async fn ticker(stop: Arc<AtomicBool>) -> Lag {
    let mut max = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        tokio::time::sleep(Duration::from_millis(1)).await;
        max = max.max(t.elapsed().saturating_sub(Duration::from_millis(1)));
    }
    Lag {
        max,
        cpu: Duration::ZERO,
    }
}

type Work<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// What [`interleaved`] found for one mode over [`REPS`] runs.
struct Runs<T> {
    /// The fastest run.
    wall: Duration,
    /// The median of the runs' worst lags, and the worst of all.
    lag_median: Duration,
    lag_worst: Duration,
    /// The least CPU time of a run.
    cpu: Duration,
    /// The last run's result.
    out: T,
}

/// Runs each mode of `work` (by index) on the runtime, [`REPS`] rounds of
/// all modes in turn, so that every mode meets the same neighbours.
fn interleaved<T: Send + 'static>(modes: usize, mut work: impl FnMut(usize) -> Work<T>) -> Vec<Runs<T>> {
    let mut all: Vec<Vec<(Duration, Lag, T)>> = (0..modes).map(|_| Vec::new()).collect();
    for _ in 0..REPS {
        for (m, runs) in all.iter_mut().enumerate() {
            runs.push(on_runtime(|| work(m)));
        }
    }
    all.into_iter()
        .map(|mut runs| {
            let wall = runs.iter().map(|r| r.0).min().unwrap_or_default();
            let cpu = runs.iter().map(|r| r.1.cpu).min().unwrap_or_default();
            let mut lags: Vec<Duration> = runs.iter().map(|r| r.1.max).collect();
            lags.sort();
            let (_, _, out) = runs.pop().expect("REPS > 0");
            Runs {
                wall,
                lag_median: lags[lags.len() / 2],
                lag_worst: lags[lags.len() - 1],
                cpu,
                out,
            }
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    // The appliance's runtime: one worker per core.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `work` on a fresh runtime beside the ticker: (wall time, lag, result).
fn on_runtime<T: Send + 'static>(work: impl FnOnce() -> Work<T>) -> (Duration, Lag, T) {
    let rt = runtime();
    rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let tick = tokio::spawn(ticker(stop.clone()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (t, c) = (Instant::now(), cpu_time());
        let out = tokio::spawn(work()).await.expect("work");
        let (wall, cpu) = (t.elapsed(), cpu_time() - c);
        stop.store(true, Ordering::Relaxed);
        let mut lag = tick.await.expect("ticker");
        lag.cpu = cpu;
        (wall, lag, out)
    })
}

/// Grades every input in its own task, at most [`IN_FLIGHT`] at once, as
/// the scan's examination stage does; `pool` routes the judging through
/// `cpu::run` exactly as `scan::grade_into` does (the parse stays on the
/// worker there: it costs less than the trip).
async fn grade_tasks(inputs: Arc<Vec<Input>>, w: Arc<World>, pool: bool) -> Vec<EndpointRecord> {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for i in 0..inputs.len() {
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        let (inputs, w) = (inputs.clone(), w.clone());
        tasks.spawn(async move {
            let input = &inputs[i];
            let mut r = input.record.clone();
            support::parse_into(&mut r, &input.der);
            let j = if pool {
                let (seen, der, w) = (r.clone(), input.der.clone(), w.clone());
                cpu::run(move || support::judge(&seen, &der, &w)).await.expect("graded")
            } else {
                support::judge(&r, &input.der, &w)
            };
            support::apply(&mut r, j);
            drop(permit);
            (i, r)
        });
    }
    let mut out: Vec<Option<EndpointRecord>> = vec![None; inputs.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, r) = done.expect("task");
        out[i] = Some(r);
    }
    out.into_iter().map(|r| r.expect("every record")).collect()
}

fn run_of<'a>(records: &'a [EndpointRecord], finished_at: &'a str) -> Run<'a> {
    Run {
        profile: "bench",
        started_at: finished_at,
        finished_at,
        records,
        tags: &[],
        complete: true,
    }
}

fn row(what: &str, n: usize, wall: Duration, base: Duration, lag: Option<(Duration, Duration, Duration)>) {
    let lag = lag.map_or(String::from("-"), |(median, worst, cpu)| {
        format!("{:>6.1} / {:>6.1}   (CPU {:.0} ms)", ms(median), ms(worst), ms(cpu))
    });
    println!(
        "  {what:<34} {:>9.1} {:>10.0} {:>7.2}x   {lag}",
        ms(wall),
        per_sec(n, wall),
        base.as_secs_f64() / wall.as_secs_f64()
    );
}

fn header(unit: &str) {
    println!(
        "  {:<34} {:>9} {:>10} {:>8}   worst timer lag per run, ms: median / max",
        "mode", "wall ms", unit, "vs seq"
    );
}

fn letters(rs: &[EndpointRecord]) -> String {
    let mut m = std::collections::BTreeMap::<String, usize>::new();
    for r in rs {
        *m.entry(r.grade.as_ref().map_or("-".into(), |g| g.letter.to_string()))
            .or_default() += 1;
    }
    format!("{m:?}")
}

fn main() {
    if support::not_benchmarking("cpu") {
        return;
    }
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5_000);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "cpu bench: {n} endpoints, {cores} cores, rayon pool of {} threads, load average {}",
        cpu::threads(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let t = Instant::now();
    let w = Arc::new(World::new(8));
    let inputs = Arc::new(w.inputs(n));
    println!("  (8 chains issued in {:.0} ms)", ms(t.elapsed()));
    // Warm up: the crypto library's first use, page faults, the pool.
    for i in inputs.iter().take(200) {
        support::grade_one(i, &w);
    }
    let _ = cpu::pool();

    // -- Grading ---------------------------------------------------------
    println!("\ngrading: parse + chain validation + rating, per endpoint");
    let t = Instant::now();
    let mut parsed: Vec<EndpointRecord> = Vec::with_capacity(n);
    for i in inputs.iter() {
        let mut r = i.record.clone();
        support::parse_into(&mut r, &i.der);
        parsed.push(r);
    }
    let parse = t.elapsed();
    let t = Instant::now();
    let copies: Vec<EndpointRecord> = parsed.to_vec();
    let clone = t.elapsed();
    drop(copies);
    let t = Instant::now();
    for (r, i) in parsed.iter().zip(inputs.iter()) {
        std::hint::black_box(support::judge(r, &i.der, &w));
    }
    let judge = t.elapsed();
    println!(
        "  per endpoint: parse {:.1} us, judge (validate + rate) {:.1} us, record clone {:.1} us",
        parse.as_secs_f64() * 1e6 / n as f64,
        judge.as_secs_f64() * 1e6 / n as f64,
        clone.as_secs_f64() * 1e6 / n as f64
    );
    let hops = 10_000;
    let (c, rt) = (cpu_time(), runtime());
    let (hop, _) = best(|| {
        rt.block_on(async {
            for i in 0..hops {
                std::hint::black_box(cpu::run(move || i).await.expect("hop"));
            }
        })
    });
    let hop_cpu = (cpu_time() - c) / (REPS * hops) as u32;
    drop(rt);
    println!(
        "  one cpu::run round trip (empty work, one at a time from a runtime task): {:.1} us wall, {:.1} us CPU",
        hop.as_secs_f64() * 1e6 / hops as f64,
        hop_cpu.as_secs_f64() * 1e6
    );
    header("rec/s");
    let (base, seq) = best(|| -> Vec<EndpointRecord> { inputs.iter().map(|i| support::grade_one(i, &w)).collect() });
    let mut runs = interleaved(3, |m| match m {
        0 => Box::pin(async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Vec::new()
        }),
        m => Box::pin(grade_tasks(inputs.clone(), w.clone(), m == 2)),
    });
    let lag = |r: &Runs<_>| Some((r.lag_median, r.lag_worst, r.cpu));
    println!(
        "  {:<34} {:>9} {:>10} {:>8}   {}",
        "(idle runtime: the machine's floor)",
        "",
        "",
        "",
        lag(&runs[0]).map_or(String::new(), |(a, b, _)| format!("{:>6.1} / {:>6.1}", ms(a), ms(b)))
    );
    row("one thread, sequential", n, base, base, None);
    row(
        "tokio tasks, graded inline (before)",
        n,
        runs[1].wall,
        base,
        lag(&runs[1]),
    );
    row("tokio tasks, judged via cpu::run", n, runs[2].wall, base, lag(&runs[2]));
    let pooled = runs.pop().expect("pool mode").out;
    let inline = runs.pop().expect("inline mode").out;
    let pool = cpu::pool().expect("pool");
    let (wall, par) = best(|| -> Vec<EndpointRecord> {
        pool.install(|| inputs.par_iter().map(|i| support::grade_one(i, &w)).collect())
    });
    row("rayon par_iter (upper bound)", n, wall, base, None);
    assert_eq!(seq, inline, "same grades inline");
    assert_eq!(seq, pooled, "same grades through the pool");
    assert_eq!(seq, par, "same grades in parallel");
    println!("  grades: {}", letters(&seq));

    // -- Intake ----------------------------------------------------------
    let events: Vec<Event> = seq
        .iter()
        .take(500)
        .map(|r| {
            Event::new(
                EventKind::Changed,
                "2026-11-24T12:00:00Z",
                vec!["certificate replaced".into()],
                r.clone(),
            )
        })
        .collect();
    let report = Report::new(
        SensorInfo {
            id: "seg-1".into(),
            name: "seg-1".into(),
            version: "0".into(),
        },
        "0123456789abcdef0123456789abcdef".into(),
        "2026-11-24T12:00:01Z".into(),
        events,
    );
    let body = Arc::new(netsensor::report::delivery::encode(&report).expect("encode"));
    let json_len = serde_json::to_vec(&report).expect("json").len();
    let decode = |body: &[u8]| -> Report {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .expect("gunzip");
        serde_json::from_slice(&out).expect("report")
    };
    const UPLOADS: usize = 16;
    println!(
        "\nintake: {UPLOADS} report batches of 500 events ({:.1} MiB JSON, {:.2} MiB gzip'd): gunzip + parse",
        json_len as f64 / (1 << 20) as f64,
        body.len() as f64 / (1 << 20) as f64
    );
    header("batches/s");
    let (base, _) = best(|| {
        for _ in 0..UPLOADS {
            std::hint::black_box(decode(&body));
        }
    });
    row("one thread, sequential", UPLOADS, base, base, None);
    let runs = interleaved(2, |m| {
        let body = body.clone();
        Box::pin(async move {
            let mut tasks = JoinSet::new();
            for _ in 0..UPLOADS {
                let body = body.clone();
                tasks.spawn(async move {
                    if m == 1 {
                        cpu::run(move || decode(&body).events.len()).await.expect("parsed")
                    } else {
                        decode(&body).events.len()
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        })
    });
    row(
        "tokio tasks, inline (before)",
        UPLOADS,
        runs[0].wall,
        base,
        Some((runs[0].lag_median, runs[0].lag_worst, runs[0].cpu)),
    );
    row(
        "tokio tasks, via cpu::run",
        UPLOADS,
        runs[1].wall,
        base,
        Some((runs[1].lag_median, runs[1].lag_worst, runs[1].cpu)),
    );

    // -- Inventory diff --------------------------------------------------
    // The next run: 5 % certificates replaced (a new chain, graded again),
    // 3 % now also accept TLS 1.0, the rest unchanged.
    let mut next_inputs: Vec<Input> = inputs.iter().cloned().collect();
    for (i, input) in next_inputs.iter_mut().enumerate() {
        if i % 20 == 7 {
            input.der = w.chains[(i + 1) % w.chains.len()].clone();
        }
        if i % 33 == 5
            && let Some(p) = input.record.protocols.as_mut()
        {
            p.insert("TLSv1.0".into(), true);
        }
    }
    let next: Vec<EndpointRecord> = pool.install(|| {
        next_inputs
            .par_iter()
            .map(|i| {
                let mut r = support::grade_one(i, &w);
                r.scanned_at = "2026-11-25T12:00:00Z".into();
                r
            })
            .collect()
    });
    let prev = seq;
    let stored: Vec<String> = prev.iter().map(|r| serde_json::to_string(r).expect("json")).collect();
    println!(
        "\ninventory diff: {n} records against the previous run (stored JSON {:.1} MiB)",
        stored.iter().map(String::len).sum::<usize>() as f64 / (1 << 20) as f64
    );
    header("rec/s");
    let days = DiffPolicy::default().expiry_warning_days;
    let diff_only = |(a, b): (&EndpointRecord, &EndpointRecord)| !inventory::diff(a, b, &b.scanned_at, days).is_empty();
    // What record_run computes per record besides SQL: the stored record
    // read back, compared, the new one serialised.
    let per_record = |(old, r): (&String, &EndpointRecord)| {
        let before: EndpointRecord = serde_json::from_str(old).expect("stored");
        let changed = !inventory::diff(&before, r, &r.scanned_at, days).is_empty();
        std::hint::black_box(serde_json::to_string(r).expect("json"));
        changed
    };
    let (base, changed) = best(|| prev.iter().zip(&next).filter(|p| diff_only(*p)).count());
    row("diff() only, sequential", n, base, base, None);
    let (wall, changed_par) = best(|| pool.install(|| prev.par_iter().zip(&next).filter(|p| diff_only(*p)).count()));
    row("diff() only, par_iter", n, wall, base, None);
    let (base, changed_rr) = best(|| stored.iter().zip(&next).filter(|p| per_record(*p)).count());
    row("JSON read + diff + JSON write, seq", n, base, base, None);
    let (wall, changed_rr_par) =
        best(|| pool.install(|| stored.par_iter().zip(&next).filter(|p| per_record(*p)).count()));
    row("JSON read + diff + JSON write, par", n, wall, base, None);
    assert_eq!((changed, changed_rr), (changed_par, changed_rr_par));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut inv = Inventory::open(&dir.path().join("inventory.sqlite")).expect("inventory");
    inv.record_run(&run_of(&prev, "2026-11-24T12:10:00Z"), &DiffPolicy::default())
        .expect("first run");
    let t = Instant::now();
    let changes = inv
        .record_run(&run_of(&next, "2026-11-25T12:10:00Z"), &DiffPolicy::default())
        .expect("second run");
    row("Inventory::record_run (SQLite, whole)", n, t.elapsed(), base, None);
    println!(
        "  {changed} of {n} records changed; record_run reported {} changes",
        changes.len()
    );
}
