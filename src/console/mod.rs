//! The web console and the HTML report: the inventory as pages a person
//! reads (Overview, Endpoints with views and filters, an endpoint's detail,
//! Certificates, Scans, Sensors), rendered on the server.
//!
//! Rendering is pure: each page is a function of store query types
//! ([`Stored`](crate::store::endpoint::Stored), history
//! [`Event`](crate::store::inventory::Event)s, run summaries) and the clock
//! passed in, written with maud, whose templates are Rust checked at
//! compile time and escape every value spliced in. Every value here may
//! have come from a hostile server (certificate names, SANs, banners, HTTP
//! headers), so nothing network-derived is ever written unescaped. Charts
//! are SVG drawn here; the stylesheet is compiled in: no CDN, no script,
//! nothing fetched, so the console works in an air-gapped segment and the
//! report file opens offline. [`web`] serves the pages on the service port
//! behind a session.

pub mod cells;
pub mod certificates;
pub mod chart;
pub mod detail;
pub mod endpoints;
pub mod export;
pub mod layout;
pub mod login;
pub mod overview;
pub mod report;
pub mod scans;
pub mod summary;
pub mod view;
pub mod web;

#[cfg(test)]
pub(crate) mod fixtures;
