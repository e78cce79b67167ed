//! Who may call which route of the service port: one registry of tokens,
//! each with its scopes, and one tower layer that checks a route's scope.
//!
//! Authentication happens here and nowhere else, from the request head, before
//! any handler runs and so before any byte of the body is read: a stranger's
//! upload costs a head and a `401`, never its body (issue 17, defect 1).
//!
//! Adding a token source is one [`Tokens::add`] per token (intake tokens get
//! `Report` + `Read`; an administrator token gets `Admin`), or, for tokens
//! that live elsewhere (an enrolled sensor's credential in the central
//! store), one [`Lookup`] the layer asks on a blocking thread about a token
//! the registry does not hold ([`Tokens::with_lookup`]); protecting a route
//! is one line, `.route_layer(auth::require(&tokens, Scope::Read))`. A handler
//! that needs to know who called reads the [`Principal`] the layer puts in the
//! request's extensions (`axum::Extension<Principal>`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::serve::answer;

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// May post reports (`POST /api/v1/reports`).
    Report,
    /// May read: status, the endpoints API, metrics when token-gated.
    Read,
    /// May administer; includes `Read`.
    Admin,
    /// An enrolled sensor of a fleet: its own assignments, heartbeats and
    /// run states (`crate::fleet`). Nobody else holds it, not even `Admin`.
    Member,
}

/// Scopes as a small set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    pub const fn of(scopes: &[Scope]) -> Scopes {
        let mut bits = 0u8;
        let mut i = 0;
        while i < scopes.len() {
            bits |= 1 << scopes[i] as u8;
            i += 1;
        }
        Scopes(bits)
    }

    /// `Admin` includes `Read`.
    pub fn allows(self, scope: Scope) -> bool {
        let has = |s: Scope| self.0 & (1 << s as u8) != 0;
        has(scope) || (scope == Scope::Read && has(Scope::Admin))
    }
}

/// Who presented a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// For the log: a sensor id, `*` (any sensor), `admin`…
    pub name: String,
    /// A token bound to one sensor: reports must name it (`None`: any).
    pub sensor: Option<String>,
    pub scopes: Scopes,
    /// Why it lacks scopes it would otherwise hold, told on a 403 instead
    /// of the generic refusal (a suspended fleet sensor: it may still read
    /// its assignments, not report).
    pub withheld: Option<String>,
}

/// Asks about a token the registry does not hold (blocking: the layer
/// calls it on a blocking thread): its principal, `None` for a stranger, or
/// the refusal (a voided credential).
pub type Lookup = Arc<dyn Fn(&str) -> Result<Option<Principal>, Refusal> + Send + Sync>;

/// The tokens the service port accepts.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<(String, Principal)>,
    lookup: Option<Lookup>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens themselves.
        f.debug_struct("Tokens")
            .field("entries", &self.entries.len())
            .field("lookup", &self.lookup.is_some())
            .finish()
    }
}

impl Tokens {
    pub fn new() -> Tokens {
        Tokens::default()
    }

    /// Accepts `token` as `principal`. Empty tokens are never accepted.
    pub fn add(&mut self, token: impl Into<String>, principal: Principal) {
        let token = token.into();
        if !token.is_empty() {
            self.entries.push((token, principal));
        }
    }

    /// Asks `lookup` about tokens not added here.
    pub fn with_lookup(mut self, lookup: Lookup) -> Tokens {
        self.lookup = Some(lookup);
        self
    }

    /// The administrators' tokens: `Admin` (which reads too).
    pub fn add_admin(&mut self, tokens: &[String]) {
        for t in tokens {
            self.add(
                t.clone(),
                Principal {
                    name: "admin".into(),
                    sensor: None,
                    scopes: Scopes::of(&[Scope::Admin]),
                    withheld: None,
                },
            );
        }
    }

    /// The intake's tokens (sensor id → token; an id starting with `*`
    /// accepts reports naming any sensor): `Report` and `Read`.
    pub fn add_intake(&mut self, tokens: &std::collections::BTreeMap<String, String>) {
        for (id, token) in tokens {
            let sensor = (!id.starts_with('*')).then(|| id.clone());
            self.add(
                token.clone(),
                Principal {
                    name: sensor.clone().unwrap_or_else(|| "*".into()),
                    sensor,
                    scopes: Scopes::of(&[Scope::Report, Scope::Read]),
                    withheld: None,
                },
            );
        }
    }

    /// Whether any token grants `scope` (a route gated on a scope nobody
    /// holds can only be opened some other way).
    pub fn any_with(&self, scope: Scope) -> bool {
        self.entries.iter().any(|(_, p)| p.scopes.allows(scope))
    }

    /// The principal of `token`, comparing every entry in constant time.
    pub fn find(&self, token: &str) -> Option<&Principal> {
        let mut found = None;
        for (t, p) in &self.entries {
            if same(t.as_bytes(), token.as_bytes()) && found.is_none() {
                found = Some(p);
            }
        }
        found
    }

    /// The first token granting `scope` (what `sensor status` sends).
    pub fn first_with(&self, scope: Scope) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, p)| p.scopes.allows(scope))
            .map(|(t, _)| t.as_str())
    }
}

/// Equal length and equal bytes, examining every byte.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who may read a route that is not always token-gated (`[service]
/// status_access`, `metrics_access`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Anyone.
    Open,
    /// Callers on loopback without a token; others with a token.
    Loopback,
    /// Everyone with a token (when no token grants the scope, loopback
    /// callers only: otherwise nobody could ever read it).
    Token,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Open => "open",
            Access::Loopback => "loopback",
            Access::Token => "token",
        }
    }
}

/// The decision for one request, pure: the principal, `None` for an
/// admitted caller without a token, or the refusal.
pub fn decide(
    tokens: &Tokens,
    scope: Scope,
    access: Access,
    bearer: Option<&str>,
    peer_is_loopback: bool,
) -> Result<Option<Principal>, Refusal> {
    if let Some(token) = bearer {
        return match tokens.find(token) {
            Some(p) => admit(p.clone(), scope).map(Some),
            None => Err(Refusal::UnknownToken),
        };
    }
    match access {
        Access::Open => Ok(None),
        Access::Loopback if peer_is_loopback => Ok(None),
        Access::Token if peer_is_loopback && !tokens.any_with(scope) => Ok(None),
        _ => Err(Refusal::NoToken),
    }
}

/// Whether `principal` may use a route holding `scope`.
pub fn admit(principal: Principal, scope: Scope) -> Result<Principal, Refusal> {
    if principal.scopes.allows(scope) {
        Ok(principal)
    } else if let Some(why) = principal.withheld {
        Err(Refusal::Withheld(why))
    } else {
        Err(Refusal::Forbidden)
    }
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoToken,
    UnknownToken,
    /// A known token without the route's scope.
    Forbidden,
    /// A known token whose holder's scope is withheld, and why (403).
    Withheld(String),
    /// A credential its issuer withdrew (a voided fleet sensor).
    Revoked,
    /// The [`Lookup`] could not answer (its store failed).
    Unavailable,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, msg) = match &self {
            Refusal::NoToken => (StatusCode::UNAUTHORIZED, "send Authorization: Bearer TOKEN"),
            Refusal::UnknownToken => (StatusCode::UNAUTHORIZED, "unknown token"),
            Refusal::Forbidden => (StatusCode::FORBIDDEN, "this token may not use this route"),
            Refusal::Withheld(why) => (StatusCode::FORBIDDEN, why.as_str()),
            Refusal::Revoked => (StatusCode::UNAUTHORIZED, "this credential was voided"),
            Refusal::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "tokens cannot be checked now"),
        };
        let mut r = answer::error(status, msg);
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        // A refused request's body is never read: close rather than drain it.
        r.headers_mut()
            .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        r
    }
}

/// The token of `Authorization: Bearer T`, if sent.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The layer that admits a request to a route holding `scope` with a token.
pub fn require(tokens: &Arc<Tokens>, scope: Scope) -> Require {
    gate(tokens, scope, Access::Token)
}

/// The layer that admits a request by `access`, or by a token holding `scope`.
pub fn gate(tokens: &Arc<Tokens>, scope: Scope, access: Access) -> Require {
    Require {
        tokens: tokens.clone(),
        scope,
        access,
    }
}

/// See [`require`] and [`gate`].
#[derive(Clone)]
pub struct Require {
    tokens: Arc<Tokens>,
    scope: Scope,
    access: Access,
}

impl<S> tower::Layer<S> for Require {
    type Service = RequireService<S>;
    fn layer(&self, inner: S) -> RequireService<S> {
        RequireService {
            gate: self.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct RequireService<S> {
    gate: Require,
    inner: S,
}

impl<S, B> tower::Service<Request<B>> for RequireService<S>
where
    S: tower::Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let loopback = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|c| c.0.ip().is_loopback());
        let g = &self.gate;
        let token = bearer(req.headers());
        match decide(&g.tokens, g.scope, g.access, token, loopback) {
            Ok(principal) => {
                if let Some(p) = principal {
                    req.extensions_mut().insert(p);
                }
                Box::pin(self.inner.call(req))
            }
            Err(Refusal::UnknownToken) if g.tokens.lookup.is_some() && token.is_some_and(|t| !t.is_empty()) => {
                let (Some(lookup), Some(token)) = (g.tokens.lookup.clone(), token.map(str::to_string)) else {
                    return Box::pin(std::future::ready(Ok(Refusal::UnknownToken.into_response())));
                };
                let scope = g.scope;
                // The service that was polled ready goes with the request.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move {
                    let found = tokio::task::spawn_blocking(move || lookup(&token))
                        .await
                        .unwrap_or(Err(Refusal::Unavailable));
                    match found
                        .and_then(|p| p.ok_or(Refusal::UnknownToken))
                        .and_then(|p| admit(p, scope))
                    {
                        Ok(p) => {
                            req.extensions_mut().insert(p);
                            inner.call(req).await
                        }
                        Err(refusal) => Ok(refusal.into_response()),
                    }
                })
            }
            Err(refusal) => Box::pin(std::future::ready(Ok(refusal.into_response()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let mut t = Tokens::new();
        let mut intake = std::collections::BTreeMap::new();
        intake.insert("seg-1".to_string(), "report-token".to_string());
        t.add_intake(&intake);
        t.add(
            "admin-token",
            Principal {
                name: "admin".into(),
                sensor: None,
                scopes: Scopes::of(&[Scope::Admin]),
                withheld: None,
            },
        );
        t.add(
            "",
            Principal {
                name: "empty".into(),
                sensor: None,
                scopes: Scopes::of(&[Scope::Admin]),
                withheld: None,
            },
        );
        t
    }

    #[test]
    fn scopes_and_admin_includes_read() {
        let s = Scopes::of(&[Scope::Admin]);
        assert!(s.allows(Scope::Read) && s.allows(Scope::Admin) && !s.allows(Scope::Report));
        assert!(!Scopes::default().allows(Scope::Read));
    }

    #[test]
    fn decides_by_token_scope_and_access() {
        let t = tokens();
        let d = |scope, access, bearer, lo| decide(&t, scope, access, bearer, lo);
        let p = d(Scope::Report, Access::Token, Some("report-token"), false)
            .unwrap()
            .unwrap();
        assert_eq!((p.name.as_str(), p.sensor.as_deref()), ("seg-1", Some("seg-1")));
        assert_eq!(
            d(Scope::Admin, Access::Token, Some("report-token"), true),
            Err(Refusal::Forbidden)
        );
        assert!(
            d(Scope::Read, Access::Token, Some("admin-token"), false)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            d(Scope::Read, Access::Token, Some("nope"), true),
            Err(Refusal::UnknownToken)
        );
        assert_eq!(
            d(Scope::Read, Access::Token, Some(""), true),
            Err(Refusal::UnknownToken)
        );
        assert_eq!(d(Scope::Read, Access::Token, None, true), Err(Refusal::NoToken));
        assert_eq!(d(Scope::Read, Access::Loopback, None, true), Ok(None));
        assert_eq!(d(Scope::Read, Access::Loopback, None, false), Err(Refusal::NoToken));
        assert_eq!(d(Scope::Read, Access::Open, None, false), Ok(None));
        // Nobody holds the scope: loopback callers only.
        let empty = Tokens::new();
        assert_eq!(decide(&empty, Scope::Read, Access::Token, None, true), Ok(None));
        assert_eq!(
            decide(&empty, Scope::Read, Access::Token, None, false),
            Err(Refusal::NoToken)
        );
        assert_eq!(t.first_with(Scope::Read), Some("report-token"));
    }

    /// Tokens outside the registry: the lookup's principal is checked against
    /// the route's scope like a registered one; its refusals are the answer.
    #[tokio::test]
    async fn a_lookup_answers_for_tokens_the_registry_lacks() {
        use axum::body::Body;
        use tower::ServiceExt;
        let lookup: Lookup = Arc::new(|token: &str| match token {
            "cred-active" => Ok(Some(Principal {
                name: "s1".into(),
                sensor: Some("s1".into()),
                scopes: Scopes::of(&[Scope::Report, Scope::Member]),
                withheld: None,
            })),
            "cred-suspended" => Ok(Some(Principal {
                name: "s2".into(),
                sensor: Some("s2".into()),
                scopes: Scopes::of(&[Scope::Member]),
                withheld: Some("sensor s2 is suspended".into()),
            })),
            "cred-voided" => Err(Refusal::Revoked),
            _ => Ok(None),
        });
        let t = Arc::new(tokens().with_lookup(lookup));
        let who = |axum::Extension(p): axum::Extension<Principal>| async move { p.name };
        let r = axum::Router::new()
            .route(
                "/report",
                axum::routing::get(who).route_layer(require(&t, Scope::Report)),
            )
            .route("/admin", axum::routing::get(who).route_layer(require(&t, Scope::Admin)));
        let call = |path: &'static str, token: &'static str| {
            let r = r.clone();
            async move {
                let req = Request::builder()
                    .uri(path)
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap();
                let resp = r.oneshot(req).await.unwrap();
                let status = resp.status().as_u16();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        assert_eq!(call("/report", "cred-active").await, (200, "s1".to_string()));
        assert_eq!(call("/report", "report-token").await, (200, "seg-1".to_string()));
        let (status, body) = call("/report", "cred-suspended").await;
        assert_eq!((status, body.contains("sensor s2 is suspended")), (403, true), "{body}");
        assert_eq!(call("/admin", "cred-active").await.0, 403);
        assert_eq!(call("/admin", "admin-token").await, (200, "admin".to_string()));
        let (status, body) = call("/report", "cred-voided").await;
        assert_eq!((status, body.contains("voided")), (401, true), "{body}");
        assert_eq!(call("/report", "nobody").await.0, 401);
    }
}
