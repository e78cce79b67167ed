//! The web console (`crate::console::web`) mounted on the service port.
//!
//! The console is an axum `Router`; until the service port itself runs on
//! hyper and axum, this adapter hands it the requests the port's hardened
//! head parser has already read (size and deadline limits, TLS or plain)
//! for the console's paths, and turns its answer back into the port's
//! `Response`. Every other path goes on to the next route.

use std::sync::Arc;

use axum::body::Body;
use tower_service::Service as _;

use crate::console::web::{self, Console, Stores, Tokens};
use crate::serve::{BoxFuture, Handler, Request, Response};

/// The largest answer the console builds (an export of a big inventory).
const ANSWER_CAP: usize = 256 * 1024 * 1024;

/// The paths the console owns.
pub fn owns(path: &str) -> bool {
    path == "/"
        || path == "/login"
        || path == "/logout"
        || path == "/endpoints"
        || path.starts_with("/endpoints/")
        || path == "/certificates"
        || path == "/scans"
        || path == "/sensors"
        || path.starts_with("/assets/")
}

/// The console as a route of the service port.
pub struct Mounted {
    router: axum::Router,
}

impl Mounted {
    pub fn new(stores: Stores, tokens: Tokens, tls: bool) -> Mounted {
        let mut console = Console::new(Arc::new(stores), tokens);
        console.secure_cookie = tls;
        Mounted {
            router: web::router(Arc::new(console)),
        }
    }
}

impl Handler for Mounted {
    fn handle<'a>(&'a self, req: &'a Request) -> Option<BoxFuture<'a, Response>> {
        if !owns(req.path_only()) {
            return None;
        }
        let mut svc = self.router.clone().into_service::<Body>();
        Some(Box::pin(async move {
            let mut b = axum::http::Request::builder()
                .method(req.method.as_str())
                .uri(req.path.as_str());
            for (n, v) in &req.headers {
                b = b.header(n.as_str(), v.as_str());
            }
            let Ok(request) = b.body(Body::from(req.body.clone())) else {
                return Response::error(400, "request not understood");
            };
            if std::future::poll_fn(|cx| svc.poll_ready(cx)).await.is_err() {
                return Response::error(503, "console not ready");
            }
            let Ok(answer) = svc.call(request).await;
            let (parts, body) = answer.into_parts();
            let body = match axum::body::to_bytes(body, ANSWER_CAP).await {
                Ok(b) => b.to_vec(),
                Err(e) => return Response::error(500, &format!("console answer: {e}")),
            };
            let mut out = Response::text(
                parts.status.as_u16(),
                parts
                    .headers
                    .get(axum::http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("text/plain"),
                body,
            );
            for (name, value) in &parts.headers {
                // The port writes these itself.
                if matches!(
                    name.as_str(),
                    "content-type" | "content-length" | "cache-control" | "connection"
                ) {
                    continue;
                }
                if let Ok(v) = value.to_str() {
                    out = out.with_header(name.as_str(), v);
                }
            }
            out
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_owns_its_pages_and_nothing_else() {
        for p in [
            "/",
            "/login",
            "/endpoints",
            "/endpoints/abc",
            "/endpoints/export.csv",
            "/assets/console.css",
        ] {
            assert!(owns(p), "{p}");
        }
        for p in [
            "/healthz",
            "/metrics",
            "/api/v1/endpoints",
            "/api/v1/status",
            "/endpointsx",
        ] {
            assert!(!owns(p), "{p}");
        }
    }
}
