//! The service port's routes: one axum [`Router`] every part of the sensor
//! adds its routes to, and the layers every route gets.
//!
//! To add routes (the web console, the fleet API), build an axum `Router`
//! in your module and hand it to [`Routes::merge`] (or [`Routes::nest`]
//! under a prefix); protect it with `.route_layer(auth::require(&tokens,
//! Scope::…))` (see [`crate::serve::auth`]). The listener takes the result
//! with [`Routes::finish`]. Handlers read the caller's address as
//! `ConnectInfo<SocketAddr>` and, behind an auth layer, the caller as
//! `Extension<Principal>`.
//!
//! Every route gets, before it runs: `Transfer-Encoding` refused (`411`:
//! callers are sensors, Prometheus and `sensor status`, which all send
//! `Content-Length`), a declared length over the cap refused (`413`) without
//! reading a byte, and the body capped as it streams. Which concurrency
//! class a request counts against is [`class`].

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;

use crate::serve::answer;

/// Which slots a request takes: health checks and scrapes never wait behind
/// API calls, and neither waits behind tunnels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// `/healthz`, `/metrics`: small, frequent, must answer under load.
    Health,
    /// Everything else on the router.
    Api,
}

/// The class of a request for `path`.
pub fn class(path: &str) -> Class {
    match path {
        "/healthz" | "/metrics" => Class::Health,
        _ => Class::Api,
    }
}

/// The routes of the service port under construction.
pub struct Routes {
    router: Router,
}

impl Default for Routes {
    fn default() -> Self {
        Routes::new()
    }
}

impl Routes {
    /// The health route alone (`GET /healthz`).
    pub fn new() -> Routes {
        Routes {
            router: Router::new().route("/healthz", get(health).fallback(not_allowed_get)),
        }
    }

    /// Adds `routes` (paths must not collide with routes already added).
    pub fn merge(mut self, routes: Router) -> Routes {
        self.router = self.router.merge(routes);
        self
    }

    /// Adds `routes` under `prefix` (`/console`).
    pub fn nest(mut self, prefix: &str, routes: Router) -> Routes {
        self.router = self.router.nest(prefix, routes);
        self
    }

    /// The router the listener serves: unknown paths `404`, bodies capped
    /// at `max_body` bytes.
    pub fn finish(self, max_body: usize) -> Router {
        self.router
            .fallback(|req: Request| async move {
                answer::error(
                    StatusCode::NOT_FOUND,
                    &format!("no route for {} {}", req.method(), req.uri().path()),
                )
            })
            .layer(DefaultBodyLimit::max(max_body))
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                framing(req, next, max_body)
            }))
    }
}

/// `GET /healthz`: 200 while the process serves. The `Server` header names
/// the service and its version, so a scan recognises a sensor's port without
/// a token (`probe::sensor_port`).
async fn health() -> Response {
    answer::with_header(
        answer::json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        header::SERVER,
        &format!("netsensor/{}", env!("CARGO_PKG_VERSION")),
    )
}

/// `405`, empty, for a GET-only route.
pub async fn not_allowed_get() -> Response {
    answer::method_not_allowed("GET")
}

/// `405`, empty, for a POST-only route.
pub async fn not_allowed_post() -> Response {
    answer::method_not_allowed("POST")
}

/// Refuses bodies the routes never take, before any handler or extractor.
async fn framing(req: Request, next: Next, max_body: usize) -> Response {
    let h = req.headers();
    if h.get(header::TRANSFER_ENCODING)
        .is_some_and(|v| v != HeaderValue::from_static("identity"))
    {
        return answer::error(
            StatusCode::LENGTH_REQUIRED,
            "chunked request bodies are not accepted: send Content-Length",
        );
    }
    let declared = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::serve::query::digits);
    if let Some(n) = declared
        && n > max_body as u64
    {
        return answer::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body of {n} bytes exceeds the limit of {max_body} bytes"),
        );
    }
    if declared.is_none() && matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        return answer::error(StatusCode::LENGTH_REQUIRED, "a request body needs Content-Length");
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    async fn call(r: &Router, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
        let mut b = axum::http::Request::builder().method(method).uri(path);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let resp = r.clone().oneshot(b.body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, body.to_vec())
    }

    #[tokio::test]
    async fn health_404_405_and_framing() {
        let echo = Router::new().route("/echo", axum::routing::post(|b: axum::body::Bytes| async move { b }));
        let r = Routes::new().merge(echo).finish(10);
        assert_eq!(
            call(&r, "GET", "/healthz", &[]).await,
            (200, br#"{"status":"ok"}"#.to_vec())
        );
        assert_eq!(
            call(&r, "POST", "/healthz", &[("content-length", "0")]).await,
            (405, Vec::new())
        );
        assert_eq!(call(&r, "GET", "/nope", &[]).await.0, 404);
        assert_eq!(call(&r, "POST", "/echo", &[("content-length", "11")]).await.0, 413);
        assert_eq!(
            call(&r, "POST", "/echo", &[("transfer-encoding", "chunked")]).await.0,
            411
        );
        assert_eq!(call(&r, "POST", "/echo", &[]).await.0, 411);
        assert_eq!(class("/healthz"), Class::Health);
        assert_eq!(class("/api/v1/status"), Class::Api);
    }
}
