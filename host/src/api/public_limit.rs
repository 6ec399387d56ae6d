//! Rate limits for endpoints anyone may call without a key (the public marketplace, the
//! OAuth callback, incoming webhooks): a budget per client address, an IPv6 client's whole
//! /64 counting as one (per address and trigger for incoming webhooks).

use super::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Answer 429 once the caller's address has used its per-minute budget.
pub async fn limit_by_peer(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    limit(&state, request, next, false).await
}

/// The same budget per client address *and path*, for incoming webhooks: a provider's few
/// addresses send every tenant's webhooks, so one trigger flooded (or one tenant's own
/// traffic) must not use up the budget of the others.
pub async fn limit_by_peer_and_path(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    limit(&state, request, next, true).await
}

async fn limit(state: &AppState, request: Request, next: Next, per_path: bool) -> Response {
    let per_minute = state.config.public_rate_limit_per_minute;
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let (Some(peer), true) = (peer, per_minute > 0) else {
        return next.run(request).await;
    };
    let trigger = request.uri().path().rsplit('/').next().unwrap_or_default();
    // Only a trigger this node knows exists (read in the last seconds) gets a budget of its
    // own; made-up ids share the address's budget, so they cannot multiply it.
    let key = if per_path && state.workflows.remembered_trigger(trigger).is_some() {
        format!("ip:{}:{trigger}", client_key(peer))
    } else {
        format!("ip:{}", client_key(peer))
    };
    let decision = state.counters.rate(&key, per_minute, Duration::from_secs(60)).await;
    if !decision.allowed {
        return ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
            format!("unauthenticated clients may make {per_minute} requests per minute"),
        )
        .with_retry_after(decision.reset_secs)
        .into_response();
    }
    next.run(request).await
}

/// The address a budget belongs to: IPv4 as is, IPv6 by its /64 (one host's share).
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::client_key;

    #[test]
    fn an_ipv6_host_counts_once_per_64() {
        let a = client_key("2001:db8:1:2::1".parse().expect("ip"));
        let b = client_key("2001:db8:1:2:ffff::9".parse().expect("ip"));
        assert_eq!(a, b);
        assert_ne!(a, client_key("2001:db8:1:3::1".parse().expect("ip")));
        assert_eq!(client_key("::ffff:10.0.0.1".parse().expect("ip")), "10.0.0.1");
    }
}
