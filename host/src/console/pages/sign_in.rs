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
    let next = query.get("next").filter(|n| safe_next(n)).cloned();
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
    let next = form.get("next").filter(|n| safe_next(n));
    // A login form posted from elsewhere would sign the browser in as an attacker's key.
    if !session::same_origin(&headers) {
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

/// Only a console path may be a sign-in's destination (no open redirect).
fn safe_next(next: &str) -> bool {
    next.starts_with("/console/") && !next.contains("//") && !next.contains('\\') && !next.contains("..")
}
