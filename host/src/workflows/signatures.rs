//! Verifying an incoming webhook in its provider's own scheme, on the byte-exact body, with
//! every active secret (several during a rotation), a timestamp tolerance where the scheme
//! has one, and the delivery id to dedupe on where the scheme gives one. Comparisons are in
//! constant time (`Mac::verify_slice`).

use crate::webhooks::signing::{self, WebhookSecret};
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Stripe's and Slack's timestamp tolerance.
pub const TOLERANCE_SECS: u64 = 300;

/// A provider's signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// `webhook-id` / `webhook-timestamp` / `webhook-signature: v1,<base64>` with `whsec_`
    /// secrets; dedupe on `webhook-id`.
    StandardWebhooks,
    /// `Stripe-Signature: t=<secs>,v1=<hex HMAC-SHA256 of "t.body">`; dedupe on the event's
    /// `id` in the body.
    Stripe,
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`; dedupe on
    /// `X-GitHub-Delivery`.
    Github,
    /// `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:ts:body">` with
    /// `X-Slack-Request-Timestamp`.
    Slack,
    /// `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>`; dedupe on
    /// `X-Shopify-Webhook-Id`.
    Shopify,
}

/// A verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The provider's id of this delivery, to refuse a replay, when the scheme has one.
    pub delivery_id: Option<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A header the scheme needs is missing or not text.
    #[error("the `{0}` header is missing")]
    MissingHeader(&'static str),
    /// A header is not in the scheme's format.
    #[error("the `{0}` header is malformed")]
    Malformed(&'static str),
    /// The timestamp is outside the tolerance (stale, or from the future).
    #[error("the request's timestamp is outside the {0} s tolerance")]
    Stale(u64),
    /// No signature matches any active secret.
    #[error("no signature matches")]
    BadSignature,
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, Refused> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or(Refused::MissingHeader(name))
}

fn fresh(timestamp: i64, now_secs: i64, tolerance: u64) -> Result<(), Refused> {
    if now_secs.abs_diff(timestamp) > tolerance {
        return Err(Refused::Stale(tolerance));
    }
    Ok(())
}

/// Whether HMAC-SHA256 of `parts` under any of `secrets` equals `tag`.
fn any_hmac_matches(secrets: &[&str], parts: &[&[u8]], tag: &[u8]) -> bool {
    secrets.iter().any(|secret| {
        let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(tag).is_ok()
    })
}

/// Verify `body` with `headers` under `scheme` with any of `secrets`, at `now_secs`.
pub fn verify(
    scheme: Scheme,
    secrets: &[&str],
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Result<Verified, Refused> {
    match scheme {
        Scheme::StandardWebhooks => {
            let id = header(headers, signing::HEADER_WEBHOOK_ID)?;
            let timestamp: i64 = header(headers, signing::HEADER_WEBHOOK_TIMESTAMP)?
                .parse()
                .map_err(|_| Refused::Malformed(signing::HEADER_WEBHOOK_TIMESTAMP))?;
            let signature = header(headers, signing::HEADER_WEBHOOK_SIGNATURE)?;
            fresh(timestamp, now_secs, signing::DEFAULT_TOLERANCE_SECS)?;
            let matched = secrets
                .iter()
                .filter_map(|s| WebhookSecret::parse(s).ok())
                .any(|secret| {
                    signing::verify(
                        &secret,
                        id,
                        timestamp,
                        body,
                        signature,
                        now_secs,
                        signing::DEFAULT_TOLERANCE_SECS,
                    )
                    .is_ok()
                });
            matched
                .then(|| Verified {
                    delivery_id: Some(id.to_string()),
                })
                .ok_or(Refused::BadSignature)
        }
        Scheme::Stripe => {
            const NAME: &str = "stripe-signature";
            let value = header(headers, NAME)?;
            let mut timestamp = None;
            let mut candidates = Vec::new();
            for item in value.split(',') {
                match item.trim().split_once('=') {
                    Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
                    Some(("v1", sig)) => candidates.extend(hex::decode(sig).ok()),
                    _ => {}
                }
            }
            let timestamp = timestamp.ok_or(Refused::Malformed(NAME))?;
            fresh(timestamp, now_secs, TOLERANCE_SECS)?;
            let signed = timestamp.to_string();
            let matched = candidates
                .iter()
                .any(|tag| any_hmac_matches(secrets, &[signed.as_bytes(), b".", body], tag));
            if !matched {
                return Err(Refused::BadSignature);
            }
            let event_id = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|event| event["id"].as_str().map(str::to_string));
            Ok(Verified { delivery_id: event_id })
        }
        Scheme::Github => {
            const NAME: &str = "x-hub-signature-256";
            let tag = header(headers, NAME)?
                .strip_prefix("sha256=")
                .and_then(|h| hex::decode(h).ok())
                .ok_or(Refused::Malformed(NAME))?;
            if !any_hmac_matches(secrets, &[body], &tag) {
                return Err(Refused::BadSignature);
            }
            Ok(Verified {
                delivery_id: header(headers, "x-github-delivery").ok().map(str::to_string),
            })
        }
        Scheme::Slack => {
            const SIGNATURE: &str = "x-slack-signature";
            const TIMESTAMP: &str = "x-slack-request-timestamp";
            let timestamp = header(headers, TIMESTAMP)?;
            let seconds: i64 = timestamp.parse().map_err(|_| Refused::Malformed(TIMESTAMP))?;
            let tag = header(headers, SIGNATURE)?
                .strip_prefix("v0=")
                .and_then(|h| hex::decode(h).ok())
                .ok_or(Refused::Malformed(SIGNATURE))?;
            fresh(seconds, now_secs, TOLERANCE_SECS)?;
            if !any_hmac_matches(secrets, &[b"v0:", timestamp.as_bytes(), b":", body], &tag) {
                return Err(Refused::BadSignature);
            }
            Ok(Verified { delivery_id: None })
        }
        Scheme::Shopify => {
            const NAME: &str = "x-shopify-hmac-sha256";
            let tag = STANDARD
                .decode(header(headers, NAME)?)
                .map_err(|_| Refused::Malformed(NAME))?;
            if !any_hmac_matches(secrets, &[body], &tag) {
                return Err(Refused::BadSignature);
            }
            Ok(Verified {
                delivery_id: header(headers, "x-shopify-webhook-id").ok().map(str::to_string),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    /// GitHub's published example ("Validating webhook deliveries").
    #[test]
    fn github_published_vector() {
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let h = headers(&[("x-hub-signature-256", sig), ("x-github-delivery", "72d3162e")]);
        let secret = "It's a Secret to Everybody";
        let ok = verify(Scheme::Github, &["old-secret", secret], &h, b"Hello, World!", 0);
        assert_eq!(
            ok,
            Ok(Verified {
                delivery_id: Some("72d3162e".into())
            })
        );
        assert_eq!(
            verify(Scheme::Github, &[secret], &h, b"Hello, World?", 0),
            Err(Refused::BadSignature)
        );
        let bare = headers(&[("x-hub-signature-256", "757107ea")]);
        assert_eq!(
            verify(Scheme::Github, &[secret], &bare, b"Hello, World!", 0),
            Err(Refused::Malformed("x-hub-signature-256"))
        );
    }

    /// Slack's published example ("Verifying requests from Slack").
    #[test]
    fn slack_published_vector() {
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let h = headers(&[
            ("x-slack-request-timestamp", "1531420618"),
            (
                "x-slack-signature",
                "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ),
        ]);
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        assert!(verify(Scheme::Slack, &[secret], &h, body.as_bytes(), 1_531_420_618 + 60).is_ok());
        assert_eq!(
            verify(Scheme::Slack, &[secret], &h, body.as_bytes(), 1_531_420_618 + 301),
            Err(Refused::Stale(300))
        );
        assert_eq!(
            verify(Scheme::Slack, &["other"], &h, body.as_bytes(), 1_531_420_618),
            Err(Refused::BadSignature)
        );
    }

    /// Stripe: computed independently (Python's `hmac`, the algorithm of Stripe's docs) for
    /// `t=1700000000`, secret `whsec_test_secret`, body `{"id":"evt_1","type":"charge.succeeded"}`.
    #[test]
    fn stripe_signature_timestamp_and_event_id() {
        let body = br#"{"id":"evt_1","type":"charge.succeeded"}"#;
        let secret = "whsec_test_secret";
        let sig = "c0475716eb2200f1fe97fcf35a3c05d1fd4f8ba9a07a596730c8d18bb87c0672";
        let value = format!("t=1700000000,v1=deadbeef,v1={sig},v0=ignored");
        let h = headers(&[("stripe-signature", &value)]);
        assert_eq!(
            verify(Scheme::Stripe, &[secret], &h, body, 1_700_000_100),
            Ok(Verified {
                delivery_id: Some("evt_1".into())
            })
        );
        assert_eq!(
            verify(Scheme::Stripe, &[secret], &h, body, 1_700_000_301),
            Err(Refused::Stale(300))
        );
        assert_eq!(
            verify(Scheme::Stripe, &[secret], &h, b"{}", 1_700_000_000),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn shopify_base64_signature() {
        let body = br#"{"id":1}"#;
        // Computed independently (Python: base64 of hmac.new(key, body, sha256)).
        let sig = "xocA3LkeJ/RvNrkxep1EUtFHuj7rIoIqZYaLU26LyPQ=";
        let h = headers(&[("x-shopify-hmac-sha256", sig), ("x-shopify-webhook-id", "b54557e4")]);
        assert_eq!(
            verify(Scheme::Shopify, &["shpss_secret"], &h, body, 0),
            Ok(Verified {
                delivery_id: Some("b54557e4".into())
            })
        );
        assert_eq!(
            verify(Scheme::Shopify, &["shpss_other"], &h, body, 0),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(Scheme::Shopify, &["shpss_secret"], &HeaderMap::new(), body, 0),
            Err(Refused::MissingHeader("x-shopify-hmac-sha256"))
        );
    }

    /// The Standard Webhooks reference vector, through the same code outgoing deliveries use.
    #[test]
    fn standard_webhooks_reference_vector() {
        let h = headers(&[
            ("webhook-id", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"),
            ("webhook-timestamp", "1649367553"),
            ("webhook-signature", "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="),
        ]);
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        assert_eq!(
            verify(Scheme::StandardWebhooks, &[secret], &h, body, 1_649_367_553),
            Ok(Verified {
                delivery_id: Some("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk".into())
            })
        );
        assert_eq!(
            verify(Scheme::StandardWebhooks, &[secret], &h, body, 1_649_367_553 + 301),
            Err(Refused::Stale(300))
        );
    }
}
