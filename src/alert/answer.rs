//! What a channel made of one attempt, and what can stop a channel from
//! being built: one vocabulary for the webhook, the mail server and the log,
//! below all three so that none of them depends on the others.

use std::time::Duration;

/// What a channel made of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Taken; the receiver's answer (`HTTP 200 …`, `250 OK …`).
    Delivered(String),
    /// Try again later (after `after` when the receiver said so).
    Retry { reason: String, after: Option<Duration> },
    /// Refused for good: park it.
    Refused(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("alert channel `{channel}`: {field} {path}: {reason}")]
    Secret {
        channel: String,
        field: &'static str,
        path: String,
        reason: String,
    },
    #[error("alert channel `{channel}`: CA bundle {path}: {reason}")]
    Ca {
        channel: String,
        path: String,
        reason: String,
    },
    #[error("alert channel `{channel}`: {reason}")]
    Client { channel: String, reason: String },
}
