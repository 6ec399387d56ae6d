//! Which request headers a connector may set.

/// Headers only the host may set: credentials, cookies, routing and hop-by-hop framing.
const HOST_ONLY: &[&str] = &[
    "authorization",
    "cookie",
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    // A compressed or partial body would hide a secret from the scrubber.
    "accept-encoding",
    "range",
    "if-range",
];

/// Whether a connector may set header `name` (any case), given the headers its own auth
/// schemes inject (`scheme_headers`, lower-case).
pub fn connector_may_set(name: &str, scheme_headers: &[String]) -> bool {
    let lower = name.to_ascii_lowercase();
    !(HOST_ONLY.contains(&lower.as_str()) || lower.starts_with("proxy-") || scheme_headers.contains(&lower))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_cookies_host_and_proxy_headers_are_host_only() {
        let scheme = vec!["x-api-key".to_string()];
        for h in [
            "Authorization",
            "COOKIE",
            "host",
            "Proxy-Authorization",
            "proxy-anything",
            "X-Api-Key",
            "Transfer-Encoding",
            "Accept-Encoding",
            "Range",
        ] {
            assert!(!connector_may_set(h, &scheme), "{h}");
        }
        for h in ["content-type", "accept", "x-request-id", "user-agent"] {
            assert!(connector_may_set(h, &scheme), "{h}");
        }
    }
}
