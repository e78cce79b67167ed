//! The web console in a real browser: Debian's chromium, headless, driven
//! over WebDriver (chromedriver) by fantoccini, against the real daemon
//! (`sensor run --admin-token …`) that scanned real loopback servers, one of
//! them hostile: its certificate's CN and SANs are a `<script>` payload,
//! its CAs' names and its `Server` header an attribute-breaking `<img
//! onerror>` payload. The test logs in, opens every view, filters, sorts,
//! opens a detail page, exports CSV with the browser's session, reads the
//! SVG charts' counts, proves nothing of the payloads ran, and logs out.
//!
//! `CONSOLE_SCREENSHOTS=DIR` writes the main pages as PNG (docs/console.md).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bind_reusable, free_port, sensor, term};
use fantoccini::{Client, ClientBuilder, Locator};
use testbed::KeyKind;

const TOKEN: &str = "console-admin-token-0123456789";
/// Sets the title and a global if it ever runs.
const SCRIPT: &str = "<script>document.title='pwned';window.pwned=1</script>";
const IMG_HEADER: &str = "Server: \"><img src=x onerror=\"document.title='pwned';window.pwned=2\">\r\n";
const IMG_TAG: &str = "\"><img src=x onerror=\"window.pwned=3\">";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        term(&mut self.0);
    }
}

fn have(tool: &str) -> bool {
    Path::new(tool).exists()
}

async fn wait_port(port: u16, secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens on 127.0.0.1:{port} after {secs} s");
}

async fn browser(driver_port: u16, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a chromium session through chromedriver")
}

async fn attr(c: &Client, css: &str, name: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .attr(name)
        .await
        .expect("attr")
        .unwrap_or_default()
}

async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.expect("find_all").len()
}

async fn path(c: &Client) -> String {
    let u = c.current_url().await.expect("url");
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

/// Waits (bounded) for `css` on the page the last click led to.
async fn arrive(c: &Client, css: &str) {
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"));
}

/// Waits (bounded) until the address (path and query) satisfies `cond`.
async fn until(c: &Client, what: &str, cond: impl Fn(&str) -> bool) {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let p = path(c).await;
        if cond(&p) {
            return;
        }
        assert!(Instant::now() < end, "never {what}: at {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Nothing of the payloads ran: no global, no title, no injected image.
async fn nothing_ran(c: &Client, page: &str) {
    let pwned = c.execute("return typeof window.pwned", vec![]).await.expect("execute");
    assert_eq!(pwned, "undefined", "a payload ran on {page}");
    let title = c.title().await.expect("title");
    assert!(!title.contains("pwned"), "{page}: title {title}");
    assert_eq!(count(c, "img").await, 0, "{page}: an injected element");
}

async fn shoot(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("CONSOLE_SCREENSHOTS") {
        let png = c.screenshot().await.expect("screenshot");
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).expect("write screenshot");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    if !have("/usr/bin/chromium") || !have("/usr/bin/chromedriver") {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium and chromium-driver are needed (tests/run.sh installs them)"
        );
        eprintln!("skipped: no /usr/bin/chromium or /usr/bin/chromedriver");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");

    // Three loopback servers: a good TLS one, a hostile TLS one, plain HTTP.
    let (good, hostile, plain) = (free_port(), free_port(), free_port());
    let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let chain = testbed::issue_chain("console good", &["good.test"], KeyKind::EcdsaP256).expect("chain");
    let (cfg, _) = testbed::rustls_config(chain.presented(), &chain.leaf_key, &[&rustls::version::TLS13]).expect("cfg");
    let evil = testbed::issue_chain(IMG_TAG, &[SCRIPT, "evil.test"], KeyKind::EcdsaP256).expect("hostile chain");
    let (evil_cfg, _) = testbed::rustls_config(
        evil.presented(),
        &evil.leaf_key,
        &[&rustls::version::TLS12, &rustls::version::TLS13],
    )
    .expect("cfg");
    let servers = [
        testbed::serve_tls(bind_reusable(at(good)), cfg),
        testbed::serve_tls_with_headers(bind_reusable(at(hostile)), evil_cfg, IMG_HEADER),
        testbed::serve_http(bind_reusable(at(plain))),
    ];

    // The daemon scans them once and serves the console.
    let profile = dir.path().join("console.toml");
    std::fs::write(
        &profile,
        format!(
            "name = \"console\"\ntargets = [\"127.0.0.1\"]\nports = \"{good},{hostile},{plain}\"\ntags = [\"lab\"]\n"
        ),
    )
    .expect("profile");
    let listen = free_port();
    let log = dir.path().join("sensor.log");
    let _daemon = Killed(
        sensor()
            .args(["run", "--state-dir"])
            .arg(dir.path().join("state"))
            .arg("--profile")
            .arg(&profile)
            .args(["--listen", &format!("127.0.0.1:{listen}"), "--admin-token", TOKEN])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("sensor run"),
    );
    let end = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("run finished")
    {
        assert!(
            Instant::now() < end,
            "no run finished: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let base = format!("http://127.0.0.1:{listen}");

    let driver_port = free_port();
    let _driver = Killed(
        Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver"),
    );
    wait_port(driver_port, 20).await;
    let c = browser(driver_port, &dir.path().join("chromium")).await;
    // A failed assertion must still close the browser (chromium outlives
    // chromedriver otherwise): drive in a task, close, then report.
    let driven = {
        let (c, base) = (c.clone(), base.clone());
        tokio::spawn(async move { drive(&c, &base).await }).await
    };
    let _ = c.close().await;
    for s in servers {
        s.abort();
    }
    match driven {
        Ok(result) => result.expect("the browser session"),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

async fn drive(c: &Client, base: &str) -> Result<(), fantoccini::error::CmdError> {
    // Not logged in: every page sends the browser to the login form.
    c.goto(&format!("{base}/endpoints")).await?;
    assert_eq!(path(c).await, "/login");
    assert_eq!(count(c, "form input").await, 1, "one field");
    shoot(c, "login").await;
    // A wrong token is refused, the right one logs in.
    c.find(Locator::Css("input[name=token]"))
        .await?
        .send_keys("not-the-token")
        .await?;
    c.find(Locator::Css("#login")).await?.click().await?;
    arrive(c, "#login-error").await;
    c.find(Locator::Css("input[name=token]"))
        .await?
        .send_keys(TOKEN)
        .await?;
    c.find(Locator::Css("#login")).await?.click().await?;
    arrive(c, "#active").await;
    assert_eq!(path(c).await, "/");
    let cookie = c.get_named_cookie("netsensor_session").await?;
    assert_eq!(cookie.http_only(), Some(true));
    assert!(format!("{:?}", cookie.same_site()).contains("Strict"));
    assert!(
        cookie.max_age().is_some() || cookie.expires().is_some(),
        "the session expires"
    );

    // Overview: the cards and the charts count what was scanned.
    assert_eq!(attr(c, "#active", "data-count").await, "3");
    assert_eq!(attr(c, "[data-category=discovered]", "data-count").await, "2");
    assert_eq!(attr(c, "[data-category=unsecured]", "data-count").await, "1");
    assert_eq!(count(c, "svg#grade-chart g.bar").await, 11);
    assert_eq!(count(c, "svg#expiry-chart g.bar").await, 4);
    let graded: u64 = {
        let mut n = 0;
        for bar in c.find_all(Locator::Css("svg#grade-chart g.bar")).await? {
            n += bar
                .attr("data-count")
                .await?
                .unwrap_or_default()
                .parse::<u64>()
                .unwrap_or(0);
        }
        n
    };
    assert_eq!(graded, 2, "every TLS endpoint has one bar");
    assert_eq!(
        attr(c, "svg#grade-chart g.bar[data-label=T]", "data-count").await,
        "2",
        "a private CA: T"
    );
    let rect = c.find(Locator::Css("svg#grade-chart g.bar[data-label=T] rect")).await?;
    assert!(rect.is_displayed().await?, "the chart is drawn");
    // The stylesheet came through the CSP: the bar is the stylesheet's red.
    let fill = c
        .execute(
            "return getComputedStyle(document.querySelector('svg#grade-chart g.bar[data-label=T] rect')).fill",
            vec![],
        )
        .await?;
    assert_eq!(fill, "rgb(198, 40, 40)");
    assert_eq!(count(c, "#changes tr[data-kind=new]").await, 3, "three new endpoints");
    nothing_ran(c, "overview").await;
    shoot(c, "overview").await;

    // Endpoints: each view, by its tab.
    c.goto(&format!("{base}/endpoints")).await?;
    for (view, rows) in [
        ("discovered", 2),
        ("unsecured", 1),
        ("automatable", 0),
        ("expiring", 0),
        ("gone", 0),
        ("all", 3),
    ] {
        c.find(Locator::Css(&format!("a[data-view={view}]")))
            .await?
            .click()
            .await?;
        arrive(c, &format!("a.active[data-view={view}]")).await;
        assert_eq!(attr(c, "#total", "data-count").await, rows.to_string(), "view {view}");
        assert_eq!(count(c, "#endpoints tbody tr[data-id]").await, rows, "view {view}");
        nothing_ran(c, view).await;
    }
    shoot(c, "endpoints").await;
    // Sort by address, then the other way.
    let first = |c: &Client| {
        let c = c.clone();
        async move { attr(&c, "#endpoints tbody tr[data-id] td a", "href").await }
    };
    // (All is ordered by address already: the first click turns it.)
    let ascending = first(c).await;
    c.find(Locator::Css("th a[data-sort=address]")).await?.click().await?;
    until(c, "sorted descending", |p| p.contains("dir=desc")).await;
    let descending = first(c).await;
    assert_ne!(descending, ascending, "the order turned");
    c.find(Locator::Css("th a[data-sort=grade]")).await?.click().await?;
    until(c, "sorted by grade", |p| p.contains("sort=grade")).await;
    // Filter: the text search finds the hostile endpoint by its subject.
    c.find(Locator::Css("input[name=q]"))
        .await?
        .send_keys("evil.test")
        .await?;
    c.find(Locator::Css("#apply")).await?.click().await?;
    until(c, "filtered", |p| p.contains("q=evil.test")).await;
    assert_eq!(attr(c, "#total", "data-count").await, "1");
    // Grade filter: at most T keeps the two untrusted ones (a private CA).
    c.goto(&format!("{base}/endpoints?view=all&grade=T")).await?;
    assert_eq!(attr(c, "#total", "data-count").await, "2");

    // Export CSV of the current view with the browser's session.
    let href = attr(c, "#export-csv", "href").await;
    let csv = reqwest::Client::new()
        .get(format!("{base}{href}"))
        .header("cookie", format!("netsensor_session={}", cookie.value()))
        .send()
        .await
        .expect("export");
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.unwrap_or_default();
    assert!(text.starts_with("id,sensor,address,port"), "{text}");
    assert_eq!(text.lines().count(), 3, "header and the two rows of the view: {text}");

    // The hostile endpoint's detail: the payloads are text, nothing ran.
    c.goto(&format!("{base}/endpoints?view=all&q=evil.test")).await?;
    c.find(Locator::Css("#endpoints tbody tr[data-id] td a"))
        .await?
        .click()
        .await?;
    arrive(c, "#sans").await;
    assert!(path(c).await.starts_with("/endpoints/"));
    let sans = c.find(Locator::Css("#sans")).await?.text().await?;
    assert!(sans.contains(SCRIPT), "the SAN shows as text: {sans}");
    let page = c.source().await?;
    assert!(page.contains("&lt;script&gt;"), "escaped in the page");
    assert!(page.contains("onerror"), "the Server header is shown");
    assert_eq!(count(c, "#history tr[data-kind=new]").await, 1);
    nothing_ran(c, "detail").await;

    // A good endpoint's detail for the screenshot, then the other pages.
    c.goto(&format!("{base}/endpoints?view=all&q=good.test")).await?;
    c.find(Locator::Css("#endpoints tbody tr[data-id] td a"))
        .await?
        .click()
        .await?;
    arrive(c, "svg.validity").await;
    shoot(c, "detail").await;
    c.goto(&format!("{base}/certificates")).await?;
    assert_eq!(count(c, "#certificates tbody tr[data-thumbprint]").await, 2);
    nothing_ran(c, "certificates").await;
    shoot(c, "certificates").await;
    c.goto(&format!("{base}/scans")).await?;
    assert_eq!(count(c, "#scans tbody tr").await, 1);
    c.goto(&format!("{base}/sensors")).await?;
    assert_eq!(path(c).await, "/sensors");

    // Log out: back to the form, and the pages send there again.
    c.find(Locator::Css("#logout")).await?.click().await?;
    arrive(c, "#token").await;
    assert_eq!(path(c).await, "/login");
    for p in ["/", "/endpoints", "/certificates"] {
        c.goto(&format!("{base}{p}")).await?;
        assert_eq!(path(c).await, "/login", "{p} after logout");
    }
    Ok(())
}
