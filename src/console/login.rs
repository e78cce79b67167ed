//! The login page: one field, `token`, an administrator or read token.

use maud::{Markup, html};

use crate::console::layout::{self, Nav};

pub fn page(error: Option<&str>) -> Markup {
    layout::page(
        "Log in",
        Nav::None,
        None,
        html! {
            div.card.login {
                h1 { "Log in" }
                @if let Some(e) = error { p.error id="login-error" { (e) } }
                form method="post" action="/login" {
                    label for="token" { "Access token" }
                    input id="token" type="password" name="token" autocomplete="current-password" required autofocus;
                    button type="submit" id="login" { "Log in" }
                }
                p.muted { "An administrator or read-only token of this sensor (" code { "sensor run --admin-token" } ")." }
            }
        },
    )
}
