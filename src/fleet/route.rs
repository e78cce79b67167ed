//! The fleet API as a route of the service port: the request's method,
//! path, bearer token, `If-None-Match` and body handed to [`Api::handle`]
//! on a blocking thread (the store's clients block), its reply written back.

use std::sync::Arc;

use crate::fleet::api::{Api, Call, Caller, Reply, is_fleet_path};
use crate::report::intake::{OtherToken, OtherTokens};
use crate::serve::{BoxFuture, Handler, Request, Response};
use crate::store::fleet::SensorState;

/// The route: answers the fleet's paths, leaves the rest to the next handler.
pub struct FleetRoute(pub Arc<Api>);

fn response(r: Reply) -> Response {
    let mut out = match &r.body {
        Some(v) => Response::json(r.status, v),
        None => Response::text(r.status, "application/json", Vec::new()),
    };
    for (n, v) in &r.headers {
        out = out.with_header(n, v);
    }
    out
}

impl Handler for FleetRoute {
    fn handle<'a>(&'a self, req: &'a Request) -> Option<BoxFuture<'a, Response>> {
        let path = req.path_only();
        if !is_fleet_path(path) {
            return None;
        }
        let call = Call {
            method: req.method.clone(),
            path: path.to_string(),
            bearer: req.bearer().map(str::to_string),
            if_none_match: req.header("if-none-match").map(str::to_string),
            body: req.body.clone(),
        };
        let api = self.0.clone();
        Some(Box::pin(async move {
            match tokio::task::spawn_blocking(move || api.handle(&call)).await {
                Ok(r) => response(r),
                Err(e) => Response::error(500, &format!("fleet API: {e}")),
            }
        }))
    }
}

/// What the intake asks of a token it does not know: enrolled sensors
/// report (unless suspended or voided), administrators read.
pub fn other_tokens(api: Arc<Api>) -> OtherTokens {
    Arc::new(move |token| match api.caller(token) {
        Ok(Some(Caller::Admin)) => OtherToken::Reader,
        Ok(Some(Caller::Sensor(s))) => match s.state {
            SensorState::Active => OtherToken::Sensor(s.id),
            SensorState::Suspended => OtherToken::Refused(403, "this sensor is suspended: it reports nothing".into()),
            SensorState::Voided => OtherToken::Refused(401, "this sensor's credential was voided".into()),
        },
        Ok(None) => OtherToken::Unknown,
        Err(e) => OtherToken::Refused(500, format!("fleet store: {e}")),
    })
}
