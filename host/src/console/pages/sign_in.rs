//! Sign-in with an API key, and sign-out.

use super::super::Shared;
use super::super::client::ApiClient;
use super::super::forms::Fields;
use super::super::render;
use super::super::session::{self, Session};
use crate::store::now_ms;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The sign-in page.
pub async fn form(State(console): State<Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    let next = query.get("next").and_then(|n| safe_next(n));
    render::render(
        &console.templates,
        StatusCode::OK,
        "sign_in.html",
        None,
        json!({ "next": next }),
    )
}

/// Check the pasted key against the API (it must be live), then seal it into the cookie.
pub async fn submit(State(console): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied();
    let headers = parts.headers;
    let body = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let again = |status: StatusCode, error: &str, next: Option<&str>| {
        render::render(
            &console.templates,
            status,
            "sign_in.html",
            None,
            json!({ "error": error, "next": next }),
        )
    };
    let form = Fields::parse(&body);
    let next = form.get("next").and_then(safe_next);
    let next = next.as_deref();
    // A login form posted from elsewhere would sign the browser in as an attacker's key.
    let unmarked = !headers.contains_key(header::ORIGIN) && !headers.contains_key("sec-fetch-site");
    if unmarked || !session::same_origin(&headers) {
        return again(
            StatusCode::FORBIDDEN,
            "This sign-in was sent from another site, so it was refused.",
            next,
        );
    }
    let Some(key) = form.get("api_key") else {
        return again(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Paste an API key (it starts with nx_).",
            next,
        );
    };
    let api = ApiClient::new(console.api.clone(), Some(key), peer);
    let me = match api.get("/api-keys/current").await {
        Ok(me) => me,
        Err(problem) => {
            let status = render::status_of(&problem);
            return again(status, &format!("That key was refused: {}", problem.detail), next);
        }
    };
    let scopes = me
        .get("scopes")
        .and_then(Value::as_array)
        .map(|s| s.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let name = me.get("name").and_then(Value::as_str).unwrap_or("API key").to_string();
    let sealed = Session::new(key.to_string(), name, scopes, now_ms()).and_then(|s| s.seal(&console.state.vault));
    let Ok(cookie) = sealed else {
        return again(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The session could not be created; try again.",
            next,
        );
    };
    let mut response = Redirect::to(next.unwrap_or("/console/connections")).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(Some(&cookie), console.state.oauth.is_https()),
    );
    response
}

/// Clear the cookie. Needs no session: signing out is always allowed, from this origin.
pub async fn sign_out(State(console): State<Shared>, headers: HeaderMap) -> Response {
    if !session::same_origin(&headers) {
        return render::render(
            &console.templates,
            StatusCode::FORBIDDEN,
            "message.html",
            None,
            json!({ "title": "Request refused", "message": "This form was sent from another site." }),
        );
    }
    let mut response = render::render(
        &console.templates,
        StatusCode::OK,
        "sign_in.html",
        None,
        json!({ "notice": "You are signed out." }),
    );
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(None, console.state.oauth.is_https()),
    );
    response
}

/// A sign-in's destination, only ever a console path: resolved as the browser will resolve
/// it (`%2e%2e` is `..`), and given back in that resolved form.
fn safe_next(next: &str) -> Option<String> {
    if !next.starts_with("/console/") || next.contains('\\') || next.bytes().any(|b| b.is_ascii_control()) {
        return None;
    }
    let base = url::Url::parse("http://console.invalid/").ok()?;
    let resolved = base.join(next).ok()?;
    (resolved.origin() == base.origin() && resolved.path().starts_with("/console/")).then(|| match resolved.query() {
        Some(query) => format!("{}?{query}", resolved.path()),
        None => resolved.path().to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_console_paths_are_destinations() {
        assert_eq!(safe_next("/console/webhooks").as_deref(), Some("/console/webhooks"));
        assert_eq!(safe_next("/console/a?b=c").as_deref(), Some("/console/a?b=c"));
        for bad in [
            "/console/%2e%2e/api/v1/oauth/begin",
            "/console/../docs",
            "//evil.example/console/",
            "https://evil.example/console/",
            "/console/\\x",
            "/console/a\nb",
            "/docs",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
    }
}
