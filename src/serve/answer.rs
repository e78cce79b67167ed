//! The answers every route gives in the same shape: JSON documents,
//! `{"error": "…"}` refusals, empty `405`s. One place so that a refusal reads
//! the same whichever route gives it, and `Cache-Control: no-store` is never
//! forgotten (status and inventory answers must not sit in a cache).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

/// `value` as JSON; a value that does not serialise is a 500 saying so.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => bytes(status, "application/json", body),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("response does not serialise: {e}"),
        ),
    }
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Response {
    json_body(status, serde_json::json!({ "error": message }).to_string().into_bytes())
}

fn json_body(status: StatusCode, body: Vec<u8>) -> Response {
    bytes(status, "application/json", body)
}

/// A body of `content_type`.
pub fn bytes(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A status with an empty body (405s, 503 `busy`).
pub fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// `405` with `Allow: allow` and no body.
pub fn method_not_allowed(allow: &'static str) -> Response {
    let mut r = empty(StatusCode::METHOD_NOT_ALLOWED);
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// Adds a header whose value is ours (never a client's line break).
pub fn with_header(mut r: Response, name: header::HeaderName, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}
