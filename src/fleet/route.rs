//! The fleet API as routes of the service port (an axum [`Router`] for
//! [`crate::serve::Routes::merge`]): who may call which route is decided by
//! the service port's token layer from the request head, before any body is
//! read; the call itself (method, path, bearer, `If-None-Match`, body) goes
//! to the transport-free [`Api::handle`] on a blocking thread (the store's
//! clients block).
//!
//! Administrator routes need the `Admin` scope; the sensors' own routes
//! (assignments, heartbeat, run states) the `Member` scope, which only an
//! enrolled sensor's credential carries. Credentials live in the central
//! store, not in the registry: [`lookup`] is the registry's way to ask it.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::fleet::api::{Api, Call, Caller, Reply};
use crate::serve::answer;
use crate::serve::auth::{self, Lookup, Principal, Refusal, Scope, Scopes, Tokens};
use crate::store::fleet::SensorState;

/// The enrollment route (its own secret: the one-time token), the
/// administrators' routes and the sensors' routes, each behind its scope.
pub fn routes(api: Arc<Api>, tokens: &Arc<Tokens>) -> Router {
    let admin = Router::new()
        .route("/api/v1/enrollment-tokens", post(call))
        .route("/api/v1/sensors", get(call))
        .route("/api/v1/sensors/{id}/{verb}", post(call))
        .route("/api/v1/scans", get(call).post(call))
        .route("/api/v1/scans/{id}", get(call).patch(call).delete(call))
        .route("/api/v1/scans/{id}/{verb}", post(call))
        .route_layer(auth::require(tokens, Scope::Admin));
    let member = Router::new()
        .route("/api/v1/assignments", get(call))
        .route("/api/v1/heartbeat", post(call))
        .route("/api/v1/runs", post(call))
        .route_layer(auth::require(tokens, Scope::Member));
    Router::new()
        .route("/api/v1/enroll", post(call))
        .merge(admin)
        .merge(member)
        .with_state(api)
}

/// What the registry asks of a token it does not hold: an enrolled sensor
/// reports and reads its assignments (a suspended one only the latter); a
/// voided credential is refused; anything else is a stranger.
pub fn lookup(api: Arc<Api>) -> Lookup {
    Arc::new(move |token| match api.caller(token) {
        Ok(Some(Caller::Sensor(s))) => {
            let (scopes, withheld) = match s.state {
                SensorState::Active => (Scopes::of(&[Scope::Report, Scope::Member]), None),
                SensorState::Suspended => (Scopes::of(&[Scope::Member]), Some(suspended(&s.name))),
                SensorState::Voided => return Err(Refusal::Revoked),
            };
            Ok(Some(Principal {
                name: s.id.clone(),
                sensor: Some(s.id),
                scopes,
                withheld,
            }))
        }
        // Administrators are in the registry already.
        Ok(Some(Caller::Admin) | None) => Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "fleet store: a credential cannot be checked");
            Err(Refusal::Unavailable)
        }
    })
}

/// The 403 a suspended sensor's report gets: why, and what ends it.
pub fn suspended(name: &str) -> String {
    format!("sensor {name} is suspended by an administrator; reports are refused until it is resumed")
}

async fn call(State(api): State<Arc<Api>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let text = |name: HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let call = Call {
        method: method.as_str().to_string(),
        path: uri.path().to_string(),
        bearer: auth::bearer(&headers).map(str::to_string),
        if_none_match: text(header::IF_NONE_MATCH),
        body: body.to_vec(),
    };
    drop(body);
    match tokio::task::spawn_blocking(move || api.handle(&call)).await {
        Ok(r) => response(r),
        Err(e) => answer::error(StatusCode::INTERNAL_SERVER_ERROR, &format!("fleet API: {e}")),
    }
}

fn response(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = match &r.body {
        Some(v) => answer::json(status, v),
        None => answer::empty(status),
    };
    for (n, v) in &r.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(n.as_str()), HeaderValue::from_str(v)) {
            out.headers_mut().insert(n, v);
        }
    }
    if r.status == 401 {
        out.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    out
}
