//! Where CPU-bound work runs: one rayon pool beside the tokio runtime.
//!
//! The runtime's workers (two on the appliance) drive every socket, timer and
//! handshake deadline of a scan and every request on the service port. A
//! chain validation (signature checks against every trust store) or the parse
//! of a 60 MiB report run on one of them stalls all of that for as long as it
//! takes. `spawn_blocking` is the wrong remedy for work that computes rather
//! than waits: its pool grows to hundreds of threads, so a burst of gradings
//! becomes hundreds of threads fighting over two cores. Pure computation goes
//! to one pool with as many threads as cores, fed from async code by [`run`]:
//! the caller's task sleeps on a oneshot while a pool thread computes, and the
//! pool's queue orders the excess instead of the kernel's scheduler. The
//! pool's threads run at nice 10, so the runtime's workers win a core when
//! they wake.
//!
//! The trip is not free: in a burst of small jobs arriving one at a time it
//! cost 30–50 µs of CPU per job (wake-ups, rayon's spinning between jobs;
//! `benches/cpu.rs`, docs/benchmarks.md). Worth it for a grading (100–200
//! µs) or a report batch (20–50 ms); not for a certificate parse (~20 µs).
//!
//! A panic in the work comes back as [`CpuError::Panicked`] (rayon would
//! abort the process on a panic in a spawned job); it never hangs the caller.
//! Dropping the future does not cancel the work: it runs to its end and its
//! result is dropped. Work that splits further (`par_iter`) inside [`run`]
//! stays on the same pool; synchronous callers can use [`pool`] directly
//! (`pool()?.install(|| …)`).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    /// The pool's threads could not be started (out of threads or memory).
    #[error("the CPU pool cannot start: {0}")]
    Pool(String),
    /// The work panicked; the message is the panic's.
    #[error("CPU work panicked: {0}")]
    Panicked(String),
    /// The work was dropped before it answered (the pool went away).
    #[error("CPU work was dropped before it finished")]
    Dropped,
}

static POOL: OnceLock<Result<rayon::ThreadPool, String>> = OnceLock::new();

/// The pool, started on first use with one thread per core.
pub fn pool() -> Result<&'static rayon::ThreadPool, CpuError> {
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("netsensor-cpu-{i}"))
            .start_handler(|_| yield_to_the_runtime())
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| CpuError::Pool(e.clone()))
}

/// Niceness of the pool's threads: on a busy machine the runtime's workers,
/// which wait on sockets and timers, win the core when they wake.
const NICE: i32 = 10;

/// Lowers this (pool) thread's priority; best effort (a sandbox may forbid it).
fn yield_to_the_runtime() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE);
}

/// Threads in the pool (0 when it cannot start).
pub fn threads() -> usize {
    pool().map_or(0, rayon::ThreadPool::current_num_threads)
}

/// Runs `f` on the pool and waits for it without holding a runtime worker.
pub async fn run<F, T>(f: F) -> Result<T, CpuError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let pool = pool()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    pool.spawn(move || {
        let out = catch_unwind(AssertUnwindSafe(f)).map_err(|p| CpuError::Panicked(message(p.as_ref())));
        // A closed receiver: the caller stopped waiting; the result goes.
        let _ = tx.send(out);
    });
    rx.await.unwrap_or(Err(CpuError::Dropped))
}

fn message(p: &(dyn Any + Send)) -> String {
    match (p.downcast_ref::<&str>(), p.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "(no message)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn work_runs_off_the_runtime_and_answers() {
        let (value, name) = run(|| (6 * 7, std::thread::current().name().map(str::to_string)))
            .await
            .unwrap();
        assert_eq!(value, 42);
        assert!(name.unwrap_or_default().starts_with("netsensor-cpu-"));
        assert!(threads() >= 1);
    }

    /// Unwinds like a panic without running the panic hook: with
    /// RUST_BACKTRACE set the hook symbolises a backtrace, 130 MiB of RSS
    /// that another test of this process (walking a /8) would see.
    fn unwind<T>(payload: impl std::any::Any + Send) -> T {
        std::panic::resume_unwind(Box::new(payload))
    }

    #[tokio::test]
    async fn a_panic_is_an_error_and_the_pool_lives_on() {
        let e = run(|| -> u8 { unwind("boom 1") }).await.unwrap_err();
        assert!(matches!(&e, CpuError::Panicked(m) if m == "boom 1"), "{e}");
        let e = run(|| -> u8 { unwind(format!("boom {}", 2)) }).await.unwrap_err();
        assert!(matches!(&e, CpuError::Panicked(m) if m == "boom 2"), "{e}");
        let e = run(|| -> u8 { unwind(7u32) }).await.unwrap_err();
        assert!(matches!(&e, CpuError::Panicked(m) if m == "(no message)"), "{e}");
        // As many panics as threads, then work still gets done.
        for _ in 0..threads() {
            assert!(run(|| -> u8 { unwind("again") }).await.is_err());
        }
        assert_eq!(run(|| 1 + 1).await.unwrap(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_runtime_goes_on_while_the_pool_computes() {
        // One runtime thread: were the work run on it, nothing could answer
        // the work until it gave up waiting.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let work = tokio::spawn(run(move || rx.recv_timeout(Duration::from_secs(10))));
        tokio::task::yield_now().await;
        tx.send(()).unwrap();
        assert_eq!(work.await.unwrap().unwrap(), Ok(()));
    }
}
