//! Telling people in time: certificate expiry and new risks, as notices
//! through webhooks, e-mail and the log, delivered without losing or
//! doubling any.
//!
//! The inventory knows every certificate's end and every endpoint's grade,
//! but knowledge helps only once someone hears of it before the day. The
//! flow, one way like the rest of the sensor: [`rules`] (pure) turns the
//! inventory, what was already told and the time into notices, each with an
//! idempotency key (rule, certificate or endpoint, threshold); [`queue`]
//! stores them in the inventory database, deduplicated by key, before any
//! channel is tried; [`tasks`] delivers them per channel ([`webhook`],
//! [`email`], [`log`] behind [`channel`]), retrying with backoff and parking
//! what is refused for good. [`config`] reads `[alerts]` strictly;
//! [`notice`] is the message (`docs/schema/alert.schema.json`) and
//! [`render`] its text and HTML. See `docs/alerts.md`.

pub mod answer;
pub mod channel;
pub mod config;
pub mod email;
pub mod log;
pub mod notice;
pub mod queue;
pub mod render;
pub mod rules;
pub mod tasks;
pub mod webhook;

pub use tasks::{AlertError, Alerts};
