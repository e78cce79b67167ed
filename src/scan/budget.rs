//! The endpoint's time budget (`--endpoint-budget`, profile key
//! `endpoint_budget`): one deadline, from the start of one record's
//! examination, for the stages that follow its first handshake
//! (enumeration, `GET /`, active checks, extras).
//!
//! Each stage has its own per-connection deadlines already; what they do not
//! bound is their sum on a server that answers slowly but answers, or a
//! single-threaded one that serialises ~150 connections. A stage still
//! running when the budget runs out is dropped, and the record names it in
//! `not_probed` (`vulnerabilities: budget`): what is missing is said, never
//! silently left out. The naming is pure and tested here; the deadline is
//! tokio's clock.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Why a stage was cut: the budget ran out.
pub const BUDGET: &str = "budget";

/// The stages a budget can cut, as `not_probed` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Enumeration,
    HttpHeaders,
    Vulnerabilities,
    TlsExtras,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Enumeration => "enumeration",
            Stage::HttpHeaders => "http_headers",
            Stage::Vulnerabilities => "vulnerabilities",
            Stage::TlsExtras => "tls_extras",
        }
    }
}

/// The `not_probed` entry of a stage the budget cut.
pub fn cut(stage: Stage) -> String {
    format!("{}: {BUDGET}", stage.name())
}

/// Add the entries for `stages` to `not_probed`, in stage order, each once.
pub fn name_cuts(not_probed: &mut Vec<String>, stages: &[Stage]) {
    let mut stages = stages.to_vec();
    stages.sort();
    stages.dedup();
    for s in stages {
        let entry = cut(s);
        if !not_probed.contains(&entry) {
            not_probed.push(entry);
        }
    }
}

/// One endpoint's deadline.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    deadline: Option<Instant>,
}

impl Budget {
    /// A budget of `limit` from now; `None`: no budget.
    pub fn start(limit: Option<Duration>) -> Self {
        Budget {
            deadline: limit.and_then(|l| Instant::now().checked_add(l)),
        }
    }

    /// `f`'s output, or `None` when the budget ran out first (`f` is dropped:
    /// its connections close).
    pub async fn run<F: Future>(&self, f: F) -> Option<F::Output> {
        match self.deadline {
            None => Some(f.await),
            Some(d) => tokio::time::timeout_at(d, f).await.ok(),
        }
    }

    /// The budget has run out.
    pub fn spent(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_named_once_in_stage_order() {
        let mut v = vec!["enumeration: budget".to_string()];
        name_cuts(
            &mut v,
            &[
                Stage::TlsExtras,
                Stage::Vulnerabilities,
                Stage::Enumeration,
                Stage::TlsExtras,
            ],
        );
        assert_eq!(
            v,
            ["enumeration: budget", "vulnerabilities: budget", "tls_extras: budget"]
        );
        assert_eq!(cut(Stage::HttpHeaders), "http_headers: budget");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stage_past_the_budget_is_cut_and_one_within_it_is_not() {
        let b = Budget::start(Some(Duration::from_secs(2)));
        assert_eq!(b.run(async { 7 }).await, Some(7));
        let slow = b.run(tokio::time::sleep(Duration::from_secs(5))).await;
        assert!(slow.is_none());
        assert!(b.spent());
        let none = Budget::start(None);
        assert!(none.run(tokio::time::sleep(Duration::from_secs(5))).await.is_some());
        assert!(!none.spent());
    }
}
