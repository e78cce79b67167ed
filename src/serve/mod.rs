//! The sensor's own HTTP routes on the service port (48999): health,
//! metrics, status, and (from the reporting side) the report intake and the
//! endpoints API.
//!
//! The vendor's sensor serves agents and its own API on one port, so ours
//! does too: the proxy's listener reads every request head under its limits
//! (size, deadline, TLS-or-plain by the first byte) and hands origin-form
//! requests (`GET /healthz`) here, keeping `CONNECT` for itself. One
//! listener means one set of limits and one place where hostile clients are
//! cut off.
//!
//! Deliberately small: requests carry a `Content-Length` body (read whole,
//! up to a cap, before a handler runs), answers are complete buffers and
//! every connection closes after one answer. The callers are sensors,
//! Prometheus and `sensor status`, which send one request per connection
//! anyway; keep-alive and chunked bodies would only add states to attack.
//! Handlers are plain trait objects so the library's parts (intake,
//! inventory API) and the binary's (daemon status) plug in side by side.

pub mod proxy;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;

/// A boxed future, as handlers return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One request, head and body complete.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query as sent (`/api/v1/endpoints?limit=10`).
    pub path: String,
    /// Header names lower-cased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
}

impl Request {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path_only(&self) -> &str {
        self.path.split_once('?').map_or(self.path.as_str(), |(p, _)| p)
    }

    /// The query's `name=value` pairs, percent-decoded (`+` is a space).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let Some((_, q)) = self.path.split_once('?') else {
            return Vec::new();
        };
        q.split('&')
            .filter(|s| !s.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect()
    }

    /// The token of `Authorization: Bearer T`, if sent.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    /// Extra headers (`Retry-After`, `WWW-Authenticate`…).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// `value` as JSON; a value that does not serialise is a 500 saying so.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => Response {
                status,
                content_type: "application/json".into(),
                headers: Vec::new(),
                body,
            },
            Err(e) => Response::error(500, &format!("response does not serialise: {e}")),
        }
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: &str) -> Response {
        let body = serde_json::json!({ "error": message }).to_string().into_bytes();
        Response {
            status,
            content_type: "application/json".into(),
            headers: Vec::new(),
            body,
        }
    }

    pub fn text(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type: content_type.into(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The whole answer as bytes on the wire (`Connection: close`).
    pub fn to_bytes(&self, version: &str) -> Vec<u8> {
        let mut head = format!("{version} {} {}\r\n", self.status, reason(self.status));
        head.push_str(&format!("Content-Type: {}\r\n", self.content_type));
        head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        for (n, v) in &self.headers {
            // Header values are ours, but never let one smuggle a line break.
            if !n.contains(['\r', '\n']) && !v.contains(['\r', '\n']) {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
        }
        head.push_str("Cache-Control: no-store\r\nConnection: close\r\n\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// The reason phrase of the status codes the sensor answers with.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// One group of routes. `None`: not mine, ask the next handler.
pub trait Handler: Send + Sync {
    fn handle<'a>(&'a self, req: &'a Request) -> Option<BoxFuture<'a, Response>>;
}

/// The routes of the service port, asked in order; 404 when none answers.
#[derive(Clone, Default)]
pub struct Router {
    handlers: Vec<Arc<dyn Handler>>,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    pub fn with(mut self, handler: Arc<dyn Handler>) -> Router {
        self.handlers.push(handler);
        self
    }

    pub async fn dispatch(&self, req: &Request) -> Response {
        for h in &self.handlers {
            if let Some(fut) = h.handle(req) {
                return fut.await;
            }
        }
        Response::error(404, &format!("no route for {} {}", req.method, req.path_only()))
    }
}

/// A handler from a closure, for small synchronous routes (health, status).
pub struct FnHandler<F>(pub F);

impl<F> Handler for FnHandler<F>
where
    F: Fn(&Request) -> Option<Response> + Send + Sync,
{
    fn handle<'a>(&'a self, req: &'a Request) -> Option<BoxFuture<'a, Response>> {
        let answer = (self.0)(req)?;
        Some(Box::pin(std::future::ready(answer)))
    }
}

/// A `GET` route whose answer reads a store (SQLite, a lock a long write may
/// hold): computed on a blocking thread, never on the runtime's workers.
pub fn blocking_route<F>(path: &'static str, answer: F) -> Arc<dyn Handler>
where
    F: Fn() -> Response + Send + Sync + 'static,
{
    Arc::new(BlockingRoute {
        path,
        answer: Arc::new(answer),
    })
}

struct BlockingRoute {
    path: &'static str,
    answer: Arc<dyn Fn() -> Response + Send + Sync>,
}

impl Handler for BlockingRoute {
    fn handle<'a>(&'a self, req: &'a Request) -> Option<BoxFuture<'a, Response>> {
        if req.path_only() != self.path {
            return None;
        }
        if req.method != "GET" && req.method != "HEAD" {
            return Some(Box::pin(std::future::ready(
                Response::error(405, "use GET").with_header("Allow", "GET"),
            )));
        }
        let answer = self.answer.clone();
        Some(Box::pin(async move {
            tokio::task::spawn_blocking(move || answer())
                .await
                .unwrap_or_else(|e| Response::error(500, &format!("route failed: {e}")))
        }))
    }
}

/// How a request body is framed, from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(usize),
}

/// Decides how much body follows a head; the error is the answer to send.
pub fn body_framing(headers: &[(String, String)], method: &str, cap: usize) -> Result<BodyFraming, Response> {
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && !v.eq_ignore_ascii_case("identity"))
    {
        return Err(Response::error(
            411,
            "chunked request bodies are not accepted: send Content-Length",
        ));
    }
    let mut lengths = headers.iter().filter(|(n, _)| n == "content-length");
    let Some((_, first)) = lengths.next() else {
        return if matches!(method, "POST" | "PUT" | "PATCH") {
            Err(Response::error(411, "a request body needs Content-Length"))
        } else {
            Ok(BodyFraming::None)
        };
    };
    if lengths.any(|(_, v)| v != first) {
        return Err(Response::error(400, "conflicting Content-Length headers"));
    }
    let n: usize = first
        .parse()
        .map_err(|_| Response::error(400, "Content-Length is not a number"))?;
    if n > cap {
        return Err(Response::error(
            413,
            &format!("request body of {n} bytes exceeds the limit of {cap} bytes"),
        ));
    }
    Ok(if n == 0 {
        BodyFraming::None
    } else {
        BodyFraming::Length(n)
    })
}

/// The health route: `GET /healthz` answers 200 while the process serves.
pub fn health() -> Arc<dyn Handler> {
    Arc::new(FnHandler(|req: &Request| {
        (req.path_only() == "/healthz").then(|| {
            if req.method == "GET" || req.method == "HEAD" {
                Response::json(200, &serde_json::json!({"status": "ok"}))
            } else {
                Response::error(405, "use GET").with_header("Allow", "GET")
            }
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: Vec::new(),
            peer: "127.0.0.1:1".parse().expect("addr"),
        }
    }

    #[test]
    fn query_and_path() {
        let r = req(
            "GET",
            "/api/v1/endpoints?category=unsecured&limit=5&x=a%20b+c&bad=%zz",
            &[],
        );
        assert_eq!(r.path_only(), "/api/v1/endpoints");
        let q = r.query_pairs();
        assert_eq!(q[0], ("category".into(), "unsecured".into()));
        assert_eq!(q[1], ("limit".into(), "5".into()));
        assert_eq!(q[2], ("x".into(), "a b c".into()));
        assert_eq!(q[3], ("bad".into(), "%zz".into()));
        assert!(req("GET", "/x", &[]).query_pairs().is_empty());
        // A trailing lone percent sign stays as it is.
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(
            req("GET", "/", &[("authorization", "Bearer abc")]).bearer(),
            Some("abc")
        );
        assert_eq!(
            req("GET", "/", &[("authorization", "bearer  abc ")]).bearer(),
            Some("abc")
        );
        assert_eq!(req("GET", "/", &[("authorization", "Basic abc")]).bearer(), None);
        assert_eq!(req("GET", "/", &[]).bearer(), None);
    }

    #[test]
    fn framing() {
        let h = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(body_framing(&h(&[]), "GET", 10), Ok(BodyFraming::None));
        assert_eq!(
            body_framing(&h(&[("content-length", "5")]), "POST", 10),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            body_framing(&h(&[("content-length", "11")]), "POST", 10).map_err(|r| r.status),
            Err(413)
        );
        assert_eq!(body_framing(&h(&[]), "POST", 10).map_err(|r| r.status), Err(411));
        assert_eq!(
            body_framing(&h(&[("transfer-encoding", "chunked")]), "POST", 10).map_err(|r| r.status),
            Err(411)
        );
        assert_eq!(
            body_framing(&h(&[("content-length", "1"), ("content-length", "2")]), "POST", 10).map_err(|r| r.status),
            Err(400)
        );
        assert_eq!(
            body_framing(&h(&[("content-length", "-1")]), "POST", 10).map_err(|r| r.status),
            Err(400)
        );
    }

    #[test]
    fn response_bytes_never_carry_injected_lines() {
        let r = Response::text(200, "text/plain", "hi").with_header("X-A", "1\r\nSet-Cookie: x");
        let wire = String::from_utf8(r.to_bytes("HTTP/1.1")).expect("utf8");
        assert!(wire.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(wire.contains("Content-Length: 2\r\n"));
        assert!(!wire.contains("Set-Cookie"));
        assert!(wire.ends_with("\r\n\r\nhi"));
    }

    #[tokio::test]
    async fn router_asks_in_order_and_404s() {
        let router = Router::new().with(health());
        assert_eq!(router.dispatch(&req("GET", "/healthz", &[])).await.status, 200);
        assert_eq!(router.dispatch(&req("POST", "/healthz", &[])).await.status, 405);
        assert_eq!(router.dispatch(&req("GET", "/nope", &[])).await.status, 404);
        let router = router.with(blocking_route("/slow", || Response::text(200, "text/plain", "done")));
        assert_eq!(router.dispatch(&req("GET", "/slow", &[])).await.body, b"done");
        assert_eq!(router.dispatch(&req("POST", "/slow", &[])).await.status, 405);
    }
}
