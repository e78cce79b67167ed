//! The router on a loopback port, over a real SQLite inventory, driven by
//! reqwest without redirects: what a browser would be told.

use std::sync::{Arc, Mutex};

use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode};

use super::*;
use crate::console::fixtures::endpoint;
use crate::model::assessment::Letter;
use crate::model::record::Category;
use crate::store::inventory::{DiffPolicy, Inventory, Run};

/// `application/x-www-form-urlencoded` by hand (reqwest's `form` is a
/// feature the library does not need).
fn form<K: AsRef<str>, V: AsRef<str>>(r: reqwest::RequestBuilder, pairs: &[(K, V)]) -> reqwest::RequestBuilder {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                crate::console::view::encode(k.as_ref()),
                crate::console::view::encode(v.as_ref())
            )
        })
        .collect();
    r.header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
}

struct Served {
    base: String,
    client: Client,
    _dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

async fn serve() -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut inv = Inventory::open(&dir.path().join("inv.db")).expect("inventory");
    let records: Vec<_> = [
        endpoint("127.0.0.1", 443, Category::Discovered, Some(Letter::A), 200),
        endpoint("127.0.0.2", 443, Category::Discovered, Some(Letter::F), 3),
        endpoint("127.0.0.3", 25, Category::Unsecured, None, 0),
    ]
    .into_iter()
    .map(|s| s.record)
    .collect();
    inv.record_run(
        &Run {
            profile: "lab",
            started_at: "2026-06-01T11:59:00Z",
            finished_at: "2026-06-01T12:00:00Z",
            records: &records,
            tags: &["dmz".to_string()],
            complete: true,
        },
        &DiffPolicy::default(),
    )
    .expect("run");
    let inv = Arc::new(Mutex::new(inv));
    let source = Arc::new(Stores {
        endpoints: inv.clone(),
        own: inv,
    });
    let console = Arc::new(Console::new(
        source,
        Tokens {
            admin: vec!["admin-token".into()],
            read: vec!["read-token".into()],
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = router(console);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client");
    Served {
        base,
        client,
        _dir: dir,
        _task: task,
    }
}

impl Served {
    async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut r = self.client.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        r.send().await.expect("get")
    }

    async fn login(&self, token: &str) -> reqwest::Response {
        form(self.client.post(format!("{}/login", self.base)), &[("token", token)])
            .send()
            .await
            .expect("post")
    }

    /// Logs in; the `name=value` of the session cookie.
    async fn session(&self, token: &str) -> String {
        let res = self.login(token).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let set = res.headers()[SET_COOKIE].to_str().expect("ascii").to_string();
        set.split(';').next().unwrap_or_default().to_string()
    }
}

#[tokio::test]
async fn every_page_wants_a_session_and_every_answer_a_csp() {
    let s = serve().await;
    for path in [
        "/",
        "/endpoints",
        "/endpoints/x",
        "/endpoints/export.csv",
        "/certificates",
        "/scans",
        "/sensors",
        "/logout",
    ] {
        let res = s.get(path, None).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.headers()[LOCATION], "/login", "{path}");
        assert_eq!(res.headers()[CONTENT_SECURITY_POLICY], CSP, "{path}");
    }
    let res = s.get("/endpoints", Some("netsensor_session=forged")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "a made-up session is no session");
    let login = s.get("/login", None).await;
    assert_eq!(login.status(), StatusCode::OK);
    let body = login.text().await.unwrap_or_default();
    assert_eq!(body.matches("<input").count(), 1, "one field");
    assert!(body.contains("name=\"token\""));
}

#[tokio::test]
async fn a_token_buys_a_strict_http_only_session() {
    let s = serve().await;
    let bad = s.login("nope").await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(bad.headers().get(SET_COOKIE).is_none());
    let res = s.login("read-token").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let set = res.headers()[SET_COOKIE].to_str().unwrap_or_default().to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set.contains(part), "{part} in {set}");
    }
    let cookie = s.session("admin-token").await;
    let page = s.get("/endpoints?view=all", Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap_or_default();
    assert!(html.contains("data-count=\"3\""), "three endpoints in All");
    assert!(!html.contains("<script"));
    let csv = s
        .get("/endpoints/export.csv?view=discovered&grade=C", Some(&cookie))
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.unwrap_or_default();
    assert_eq!(text.lines().count(), 2, "header and the F-graded one: {text}");
    assert!(text.contains("127.0.0.2"));
    let scans = s.get("/scans", Some(&cookie)).await.text().await.unwrap_or_default();
    assert!(scans.contains("<td>lab</td>"), "the run is listed");
    let first = s
        .get("/endpoints?view=all", Some(&cookie))
        .await
        .text()
        .await
        .unwrap_or_default();
    let id = first
        .split("data-id=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_string();
    let detail = s.get(&format!("/endpoints/{id}"), Some(&cookie)).await;
    assert_eq!(detail.status(), StatusCode::OK);
    let detail = detail.text().await.unwrap_or_default();
    assert!(detail.contains("data-kind=\"new\""), "its history: {detail}");
    assert_eq!(
        s.get("/endpoints/0000", Some(&cookie)).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_ends_the_session() {
    let s = serve().await;
    let cookie = s.session("admin-token").await;
    let page = s.get("/", Some(&cookie)).await.text().await.unwrap_or_default();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_string();
    assert_eq!(csrf.len(), 32);
    let form_of = form;
    let post = |form: Vec<(&'static str, String)>, origin: Option<&'static str>| {
        let mut r = form_of(
            s.client
                .post(format!("{}/logout", s.base))
                .header("cookie", cookie.clone()),
            &form,
        );
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    assert_eq!(post(vec![], None).await.expect("post").status(), StatusCode::FORBIDDEN);
    assert_eq!(
        post(vec![("csrf", "0".repeat(32))], None).await.expect("post").status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(vec![("csrf", csrf.clone())], Some("http://evil.example"))
            .await
            .expect("post")
            .status(),
        StatusCode::FORBIDDEN,
        "cross-origin"
    );
    assert_eq!(
        s.get("/", Some(&cookie)).await.status(),
        StatusCode::OK,
        "still logged in"
    );
    let out = post(vec![("csrf", csrf)], None).await.expect("post");
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(out.headers()[LOCATION], "/login");
    assert_eq!(
        s.get("/", Some(&cookie)).await.status(),
        StatusCode::SEE_OTHER,
        "the session is over"
    );
}

#[tokio::test]
async fn a_cross_site_login_is_refused() {
    let s = serve().await;
    let res = form(
        s.client
            .post(format!("{}/login", s.base))
            .header("origin", "http://evil.example"),
        &[("token", "admin-token")],
    )
    .send()
    .await
    .expect("post");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers().get(SET_COOKIE).is_none());
}
