//! The authentication middleware: API key → workspace and scopes, per-key rate limit with
//! `RateLimit-*` headers, hourly and daily quotas with `Quota-*` headers, a batched
//! `last_used_at`, and the per-key usage record of every request.

use super::AppState;
use super::extract::Principal;
use crate::auth::{Scope, hash_key, hashes_match, looks_like_key};
use crate::error::ApiError;
use crate::limits::{QuotaDecision, Window};
use crate::store::now_ms;
use axum::extract::MatchedPath;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Authenticate the request or answer 401/429.
pub async fn require_api_key(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .map(str::to_string);
    let Some(presented) = presented else {
        return ApiError::unauthorized("send an API key as `Authorization: Bearer nx_live_…`").into_response();
    };
    if !looks_like_key(&presented) {
        return ApiError::unauthorized("invalid API key").into_response();
    }
    let hash = hash_key(&presented);
    let ttl = Duration::from_millis(state.config.cache_ttl_ms);
    let record = match state.keys.get(&hash, ttl) {
        Some(r) => r,
        None => match (state.keys.generation(), state.db.api_key_by_hash(&hash).await) {
            (generation, Ok(Some(r))) => {
                let r = Arc::new(r);
                state.keys.put(r.clone(), generation);
                r
            }
            (_, Ok(None)) => return ApiError::unauthorized("invalid API key").into_response(),
            (_, Err(e)) => return ApiError::from(e).into_response(),
        },
    };
    if !hashes_match(&record.hash, &hash) {
        return ApiError::unauthorized("invalid API key").into_response();
    }
    let now = now_ms();
    if record.revoked_at.is_some() {
        return ApiError::unauthorized("this API key has been revoked").into_response();
    }
    if record.expires_at.is_some_and(|at| at <= now) {
        return ApiError::unauthorized("this API key has expired").into_response();
    }
    let counter_key = format!("key:{}", record.id);
    let decision = state
        .counters
        .rate(
            &counter_key,
            record.rate_limit_per_minute.clamp(1, u32::MAX as i64) as u32,
            Duration::from_secs(60),
        )
        .await;
    if !decision.allowed {
        let mut response = ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
            format!("this API key allows {} requests per minute", decision.limit),
        )
        .with_retry_after(decision.reset_secs)
        .into_response();
        rate_headers(&mut response, decision);
        return response;
    }
    // Hourly and daily quotas; a refused request does not count against them.
    let mut quotas = Vec::new();
    for (window, limit) in [
        (Window::Hour, record.quota_per_hour),
        (Window::Day, record.quota_per_day),
    ] {
        let Some(limit) = limit else { continue };
        let quota = state
            .counters
            .quota(&counter_key, u64::try_from(limit).unwrap_or(0), window)
            .await;
        quotas.push((window, quota));
        if !quota.allowed {
            // The quotas already passed counted a request that is not served.
            for (passed, counted) in quotas.iter_mut().filter(|(w, q)| *w != window && q.allowed) {
                state.counters.refund(&counter_key, *passed).await;
                counted.remaining = counted.remaining.saturating_add(1).min(counted.limit);
            }
            let mut response = ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                "Quota exceeded",
                format!("this API key allows {limit} requests per {}", window.as_str()),
            )
            .with_retry_after(quota.reset_secs)
            .into_response();
            rate_headers(&mut response, decision);
            quota_headers(&mut response, &quotas);
            return response;
        }
    }
    state.recorder.key_used(&record.id, now);
    // Bounded labels only: a known method and a route template (requests matching no route
    // are not recorded).
    let endpoint = request.extensions().get::<MatchedPath>().map(|path| {
        let method = match *request.method() {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::HEAD => "HEAD",
            Method::OPTIONS => "OPTIONS",
            _ => "OTHER",
        };
        format!("{method} {}", path.as_str().chars().take(200).collect::<String>())
    });
    request.extensions_mut().insert(Principal {
        workspace_id: record.workspace_id.clone(),
        key_id: record.id.clone(),
        scopes: effective_scopes(&record),
        member_id: record.member_id.clone(),
    });
    let started = Instant::now();
    let mut response = next.run(request).await;
    if let Some(endpoint) = endpoint {
        state.recorder.key_request(
            &record.id,
            &record.workspace_id,
            &endpoint,
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    rate_headers(&mut response, decision);
    quota_headers(&mut response, &quotas);
    response
}

/// `Quota-Hour-Limit`, `-Remaining` and `-Reset` (and the same for `Day`) for each quota
/// the key has.
fn quota_headers(response: &mut Response, quotas: &[(Window, QuotaDecision)]) {
    let headers = response.headers_mut();
    for (window, d) in quotas {
        let prefix = match window {
            Window::Hour => "quota-hour",
            Window::Day => "quota-day",
        };
        for (suffix, value) in [("limit", d.limit), ("remaining", d.remaining), ("reset", d.reset_secs)] {
            if let (Ok(name), Ok(v)) = (
                axum::http::HeaderName::from_bytes(format!("{prefix}-{suffix}").as_bytes()),
                HeaderValue::from_str(&value.to_string()),
            ) {
                headers.insert(name, v);
            }
        }
    }
}

/// The key's scopes that its member's role allows (a key of no member keeps them all; an
/// unknown role counts as `viewer`; a key whose member row is gone has none).
fn effective_scopes(record: &crate::store::ApiKeyRecord) -> Vec<Scope> {
    let scopes = Scope::parse_list(&record.scopes);
    match (record.member_id.as_ref(), record.member_role.as_deref()) {
        (None, _) => scopes,
        (Some(_), None) => Vec::new(),
        (Some(_), Some(role)) => {
            let role = crate::store::Role::parse(role).unwrap_or(crate::store::Role::Viewer);
            scopes
                .into_iter()
                .filter(|s| crate::auth::role_allows(role, *s))
                .collect()
        }
    }
}

fn rate_headers(response: &mut Response, d: crate::limits::RateDecision) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", d.limit as u64),
        ("ratelimit-remaining", d.remaining as u64),
        ("ratelimit-reset", d.reset_secs),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            headers.insert(name, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{};w=60", d.limit)) {
        headers.insert("ratelimit-policy", v);
    }
}
