//! The frame around every page: head, navigation, the log-out form, the
//! stylesheet. The console links its stylesheet (served from the binary,
//! so the Content-Security-Policy allows no inline style); the report file
//! inlines it, to be one file that opens offline.

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The stylesheet, compiled in.
pub const CSS: &str = include_str!("console.css");
/// Where the console serves [`CSS`].
pub const CSS_PATH: &str = "/assets/console.css";

/// The console's sections, for the navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Endpoints,
    Certificates,
    Scans,
    Sensors,
    None,
}

const NAV: [(Nav, &str, &str); 5] = [
    (Nav::Overview, "/", "Overview"),
    (Nav::Endpoints, "/endpoints", "Endpoints"),
    (Nav::Certificates, "/certificates", "Certificates"),
    (Nav::Scans, "/scans", "Scans"),
    (Nav::Sensors, "/sensors", "Sensors"),
];

/// Who is looking: the session's CSRF token for the log-out form.
#[derive(Clone, Copy, Debug)]
pub struct Viewer<'a> {
    pub csrf: &'a str,
}

/// A console page: `viewer` is `None` on the login page.
pub fn page(title: &str, active: Nav, viewer: Option<Viewer<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · netsensor" }
                link rel="stylesheet" href=(CSS_PATH);
            }
            body {
                header.top {
                    span.brand { "netsensor" }
                    @if let Some(v) = viewer {
                        nav {
                            @for (n, href, name) in NAV {
                                a href=(href) class=[(n == active).then_some("active")] { (name) }
                            }
                        }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            button type="submit" id="logout" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A self-contained document (the HTML report): the stylesheet inline, no
/// link, no script.
pub fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header.top { span.brand { "netsensor" } span { (title) } }
                main { (body) }
            }
        }
    }
}
