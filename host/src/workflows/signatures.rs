//! Verifying an incoming webhook in its provider's own scheme, on the byte-exact body, with
//! every active secret (several during a rotation), a timestamp tolerance where the scheme
//! has one, and the delivery id to dedupe on where the scheme gives one. Comparisons are in
//! constant time (`Mac::verify_slice`); SendGrid's is an ECDSA signature checked against
//! its public verification key.

use crate::webhooks::signing::{self, WebhookSecret};
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use std::borrow::Cow;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;
type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// Stripe's, Slack's and SendGrid's timestamp tolerance.
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
    /// `X-Twilio-Signature: <base64 HMAC-SHA1 under the auth token>` of the full URL Twilio
    /// called followed, for a form-encoded body, by every POST parameter as name then value
    /// sorted by name; a JSON body is bound instead through the URL's `bodySHA256` query
    /// parameter (hex SHA-256 of the body). No timestamp; dedupe on
    /// `I-Twilio-Idempotency-Token` when present.
    Twilio,
    /// SendGrid's signed Event Webhook: `X-Twilio-Email-Event-Webhook-Signature` is a base64
    /// DER ECDSA P-256/SHA-256 signature of the `X-Twilio-Email-Event-Webhook-Timestamp`
    /// value followed by the body. The "secret" is the public verification key SendGrid
    /// shows (base64 DER SubjectPublicKeyInfo). No delivery id: each event in the body's
    /// array carries its own `sg_event_id`, so dedupe is left off.
    Sendgrid,
}

impl Scheme {
    /// Whether `secret` can be a signing secret of this scheme: Standard Webhooks secrets are
    /// `whsec_` and the base64 of 24–64 bytes (anything else could never verify a delivery);
    /// the other schemes take any text. The reason, without the secret, when it cannot.
    pub fn check_secret(&self, secret: &str) -> Result<(), String> {
        match self {
            Scheme::StandardWebhooks => WebhookSecret::parse(secret)
                .map(|_| ())
                .map_err(|e| format!("not a Standard Webhooks secret (`whsec_` and the base64 of 24–64 bytes): {e}")),
            _ => Ok(()),
        }
    }

    /// Every scheme, in declaration order.
    pub const ALL: [Scheme; 7] = [
        Scheme::StandardWebhooks,
        Scheme::Stripe,
        Scheme::Github,
        Scheme::Slack,
        Scheme::Shopify,
        Scheme::Twilio,
        Scheme::Sendgrid,
    ];

    /// The scheme's serde name (as the API spells it).
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard_webhooks",
            Scheme::Stripe => "stripe",
            Scheme::Github => "github",
            Scheme::Slack => "slack",
            Scheme::Shopify => "shopify",
            Scheme::Twilio => "twilio",
            Scheme::Sendgrid => "sendgrid",
        }
    }

    /// The header that carries the scheme's signature.
    pub const fn signature_header(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => signing::HEADER_WEBHOOK_SIGNATURE,
            Scheme::Stripe => "stripe-signature",
            Scheme::Github => "x-hub-signature-256",
            Scheme::Slack => "x-slack-signature",
            Scheme::Shopify => "x-shopify-hmac-sha256",
            Scheme::Twilio => "x-twilio-signature",
            Scheme::Sendgrid => "x-twilio-email-event-webhook-signature",
        }
    }

    /// Whether the delivery id [`verify`] returns is covered by the signature (so a replay
    /// cannot change it): Standard Webhooks signs `webhook-id`, Stripe's event id is in the
    /// signed body. Other schemes' ids are plain headers anyone can change.
    pub const fn signs_delivery_id(self) -> bool {
        matches!(self, Scheme::StandardWebhooks | Scheme::Stripe)
    }
}

/// What arrived: the headers, the byte-exact body and the public URL the provider called.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The body, byte for byte as received.
    pub body: &'a [u8],
    /// The full public URL the provider called (scheme, host, path and query exactly as
    /// configured at the provider), which Twilio signs.
    pub url: &'a str,
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
    any_mac_matches::<HmacSha256>(secrets, parts, tag)
}

/// Whether the MAC `M` of `parts` under any of `secrets` equals `tag`, in constant time.
fn any_mac_matches<M: Mac + KeyInit>(secrets: &[&str], parts: &[&[u8]], tag: &[u8]) -> bool {
    secrets.iter().any(|secret| {
        let Ok(mut mac) = M::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(tag).is_ok()
    })
}

/// The first value of the query parameter `name` in the URL `target`, decoded.
fn query_param<'a>(target: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let (_, query) = target.split_once('?')?;
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// Whether the body is declared `application/x-www-form-urlencoded`.
fn is_form(headers: &HeaderMap) -> bool {
    header(headers, "content-type").is_ok_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    })
}

/// Twilio: HMAC-SHA1 of the URL (plus the sorted form parameters, or with the body bound
/// through `bodySHA256`).
fn verify_twilio(secrets: &[&str], incoming: &Incoming<'_>) -> Result<Verified, Refused> {
    const SIGNATURE: &str = "x-twilio-signature";
    let Incoming {
        headers,
        body,
        url: called,
    } = *incoming;
    let tag = STANDARD
        .decode(header(headers, SIGNATURE)?)
        .map_err(|_| Refused::Malformed(SIGNATURE))?;
    let body_sha256 = query_param(called, "bodySHA256");
    let mut params: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::new();
    if body_sha256.is_none() {
        if is_form(headers) {
            params = url::form_urlencoded::parse(body).collect();
            // Sorted by name, and repeated names by value with exact duplicates dropped: the
            // order Twilio's own validators (twilio-python, twilio-node) sign, rather than the
            // order of arrival.
            params.sort();
            params.dedup();
        } else if !body.is_empty() {
            // Neither form parameters nor `bodySHA256`: the signature would not cover the body.
            return Err(Refused::BadSignature);
        }
    }
    let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * params.len());
    parts.push(called.as_bytes());
    for (name, value) in &params {
        parts.push(name.as_bytes());
        parts.push(value.as_bytes());
    }
    if !any_mac_matches::<HmacSha1>(secrets, &parts, &tag) {
        return Err(Refused::BadSignature);
    }
    if let Some(expected) = body_sha256 {
        // The URL (and so `bodySHA256`) is authentic; the body must be the one it names.
        use sha2::Digest as _;
        let matches = hex::decode(expected.as_bytes())
            .is_ok_and(|expected| expected.as_slice() == sha2::Sha256::digest(body).as_slice());
        if !matches {
            return Err(Refused::BadSignature);
        }
    }
    Ok(Verified {
        delivery_id: header(headers, "i-twilio-idempotency-token").ok().map(str::to_string),
    })
}

/// SendGrid: ECDSA P-256/SHA-256 of `timestamp || body` under any of the public keys.
fn verify_sendgrid(keys: &[&str], incoming: &Incoming<'_>, now_secs: i64) -> Result<Verified, Refused> {
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    use p256::pkcs8::DecodePublicKey;

    const SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
    const TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";
    let Incoming { headers, body, .. } = *incoming;
    let timestamp = header(headers, TIMESTAMP)?;
    let seconds: i64 = timestamp.parse().map_err(|_| Refused::Malformed(TIMESTAMP))?;
    let signature = STANDARD
        .decode(header(headers, SIGNATURE)?)
        .ok()
        .and_then(|der| Signature::from_der(&der).ok())
        .ok_or(Refused::Malformed(SIGNATURE))?;
    fresh(seconds, now_secs, TOLERANCE_SECS)?;
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    // A secret that is not a P-256 public key simply never matches.
    let matched = keys.iter().any(|secret| {
        let secret: String = secret.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        STANDARD
            .decode(secret)
            .ok()
            .and_then(|der| VerifyingKey::from_public_key_der(&der).ok())
            .is_some_and(|key| key.verify(&signed, &signature).is_ok())
    });
    matched
        .then_some(Verified { delivery_id: None })
        .ok_or(Refused::BadSignature)
}

/// Verify `incoming` under `scheme` with any of `secrets` (for SendGrid, public keys), at
/// `now_secs`.
pub fn verify(scheme: Scheme, secrets: &[&str], incoming: &Incoming<'_>, now_secs: i64) -> Result<Verified, Refused> {
    let Incoming { headers, body, .. } = *incoming;
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
        Scheme::Twilio => verify_twilio(secrets, incoming),
        Scheme::Sendgrid => verify_sendgrid(secrets, incoming, now_secs),
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

    /// An arrival at a URL no scheme but Twilio's signs.
    fn incoming<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Incoming<'a> {
        Incoming {
            headers,
            body,
            url: "https://hooks.example.com/in",
        }
    }

    /// GitHub's published example ("Validating webhook deliveries").
    #[test]
    fn github_published_vector() {
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let h = headers(&[("x-hub-signature-256", sig), ("x-github-delivery", "72d3162e")]);
        let secret = "It's a Secret to Everybody";
        let ok = verify(
            Scheme::Github,
            &["old-secret", secret],
            &incoming(&h, b"Hello, World!"),
            0,
        );
        assert_eq!(
            ok,
            Ok(Verified {
                delivery_id: Some("72d3162e".into())
            })
        );
        assert_eq!(
            verify(Scheme::Github, &[secret], &incoming(&h, b"Hello, World?"), 0),
            Err(Refused::BadSignature)
        );
        let bare = headers(&[("x-hub-signature-256", "757107ea")]);
        assert_eq!(
            verify(Scheme::Github, &[secret], &incoming(&bare, b"Hello, World!"), 0),
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
        assert!(
            verify(
                Scheme::Slack,
                &[secret],
                &incoming(&h, body.as_bytes()),
                1_531_420_618 + 60
            )
            .is_ok()
        );
        assert_eq!(
            verify(
                Scheme::Slack,
                &[secret],
                &incoming(&h, body.as_bytes()),
                1_531_420_618 + 301
            ),
            Err(Refused::Stale(300))
        );
        assert_eq!(
            verify(Scheme::Slack, &["other"], &incoming(&h, body.as_bytes()), 1_531_420_618),
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
            verify(Scheme::Stripe, &[secret], &incoming(&h, body), 1_700_000_100),
            Ok(Verified {
                delivery_id: Some("evt_1".into())
            })
        );
        assert_eq!(
            verify(Scheme::Stripe, &[secret], &incoming(&h, body), 1_700_000_301),
            Err(Refused::Stale(300))
        );
        assert_eq!(
            verify(Scheme::Stripe, &[secret], &incoming(&h, b"{}"), 1_700_000_000),
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
            verify(Scheme::Shopify, &["shpss_secret"], &incoming(&h, body), 0),
            Ok(Verified {
                delivery_id: Some("b54557e4".into())
            })
        );
        assert_eq!(
            verify(Scheme::Shopify, &["shpss_other"], &incoming(&h, body), 0),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(
                Scheme::Shopify,
                &["shpss_secret"],
                &incoming(&HeaderMap::new(), body),
                0
            ),
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
            verify(Scheme::StandardWebhooks, &[secret], &incoming(&h, body), 1_649_367_553),
            Ok(Verified {
                delivery_id: Some("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk".into())
            })
        );
        assert_eq!(
            verify(
                Scheme::StandardWebhooks,
                &[secret],
                &incoming(&h, body),
                1_649_367_553 + 301
            ),
            Err(Refused::Stale(300))
        );
    }

    #[test]
    fn every_scheme_spells_its_serde_name() {
        for scheme in Scheme::ALL {
            let json = serde_json::to_value(scheme).expect("serialize");
            assert_eq!(json, serde_json::Value::from(scheme.as_str()));
            assert_eq!(serde_json::from_value::<Scheme>(json).ok(), Some(scheme));
        }
    }

    const FORM: &str = "application/x-www-form-urlencoded";
    const TWILIO_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn twilio(headers: &HeaderMap, body: &[u8], url: &str) -> Result<Verified, Refused> {
        let incoming = Incoming { headers, body, url };
        verify(Scheme::Twilio, &["old-token", "12345"], &incoming, 0)
    }

    /// Twilio's worked example ("Webhooks security"; auth token `12345`), in its current
    /// (`+14158675310`) and earlier (`+12349013030`) editions, the parameters sent out of order.
    #[test]
    fn twilio_published_vectors() {
        for (phone, sig) in [
            ("%2B14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),
            ("%2B12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
        ] {
            let body = format!("To=%2B18005551212&From={phone}&Digits=1234&Caller={phone}&CallSid=CA1234567890ABCDE");
            let h = headers(&[
                ("content-type", FORM),
                ("x-twilio-signature", sig),
                ("i-twilio-idempotency-token", "idem-1"),
            ]);
            assert_eq!(
                twilio(&h, body.as_bytes(), TWILIO_URL),
                Ok(Verified {
                    delivery_id: Some("idem-1".into())
                })
            );
        }
    }

    #[test]
    fn twilio_refuses_a_bad_signature() {
        let body = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675310&Digits=1234&From=%2B14158675310&To=%2B18005551212";
        let sig = "GvWf1cFY/Q7PnoempGyD5oXAezc=";
        let h = headers(&[("content-type", FORM), ("x-twilio-signature", sig)]);
        assert_eq!(twilio(&h, body, TWILIO_URL), Ok(Verified { delivery_id: None }));
        let incoming = Incoming {
            headers: &h,
            body,
            url: TWILIO_URL,
        };
        assert_eq!(
            verify(Scheme::Twilio, &["54321"], &incoming, 0),
            Err(Refused::BadSignature)
        );
        let tampered =
            b"CallSid=CA1234567890ABCDE&Caller=%2B14158675310&Digits=9999&From=%2B14158675310&To=%2B18005551212";
        assert_eq!(twilio(&h, tampered, TWILIO_URL), Err(Refused::BadSignature));
        assert_eq!(
            twilio(&h, body, "https://mycompany.com/myapp.php?foo=1&bar=3"),
            Err(Refused::BadSignature)
        );
        let not_form = headers(&[("content-type", "text/plain"), ("x-twilio-signature", sig)]);
        assert_eq!(twilio(&not_form, body, TWILIO_URL), Err(Refused::BadSignature));
        let garbled = headers(&[("content-type", FORM), ("x-twilio-signature", "not base64!")]);
        assert_eq!(
            twilio(&garbled, body, TWILIO_URL),
            Err(Refused::Malformed("x-twilio-signature"))
        );
        let unsigned = headers(&[("content-type", FORM)]);
        assert_eq!(
            twilio(&unsigned, body, TWILIO_URL),
            Err(Refused::MissingHeader("x-twilio-signature"))
        );
    }

    /// Repeated names: sorted by value, exact duplicates dropped, as Twilio's validators
    /// sign them. Computed independently (Python: base64 of hmac.new(b"12345",
    /// b"https://mycompany.com/sms" b"Bodyhi there" b"MediaUrlhttps://a.example/1"
    /// b"MediaUrlhttps://b.example/2", sha1)).
    #[test]
    fn twilio_repeated_parameters() {
        let body = b"MediaUrl=https%3A%2F%2Fb.example%2F2&Body=hi+there\
                     &MediaUrl=https%3A%2F%2Fa.example%2F1&MediaUrl=https%3A%2F%2Fa.example%2F1";
        let h = headers(&[
            ("content-type", "application/x-www-form-urlencoded; charset=UTF-8"),
            ("x-twilio-signature", "ysUt2A7fEztmrG2x/dZsmw8ol/U="),
        ]);
        assert!(twilio(&h, body, "https://mycompany.com/sms").is_ok());
    }

    /// A JSON body: the signature covers the URL alone, whose `bodySHA256` binds the body.
    /// Computed independently (Python: hashlib.sha256 of the body, then base64 of
    /// hmac.new(b"12345", url, sha1)).
    #[test]
    fn twilio_json_body_with_body_sha256() {
        let body = br#"{"CallSid":"CA1234567890ABCDE","CallStatus":"completed"}"#;
        let url = "https://mycompany.com/myapp.php?bodySHA256=\
                   d9c5d12fd882ca9a84684e362e36cd06396d25f809baea7ae9e6eb9e8a7d0502";
        let h = headers(&[
            ("content-type", "application/json"),
            ("x-twilio-signature", "Nm+QxmMYUD+hcFgkmuQYDvE2ZOE="),
        ]);
        assert_eq!(twilio(&h, body, url), Ok(Verified { delivery_id: None }));
        let tampered = br#"{"CallSid":"CA1234567890ABCDE","CallStatus":"failed"}"#;
        assert_eq!(twilio(&h, tampered, url), Err(Refused::BadSignature));
        let other_hash = "https://mycompany.com/myapp.php?bodySHA256=\
                          0000000000000000000000000000000000000000000000000000000000000000";
        assert_eq!(twilio(&h, body, other_hash), Err(Refused::BadSignature));
        assert_eq!(
            twilio(&h, body, "https://mycompany.com/myapp.php"),
            Err(Refused::BadSignature)
        );
    }

    const SG_SIGNATURE: &str = "x-twilio-email-event-webhook-signature";
    const SG_TIMESTAMP: &str = "x-twilio-email-event-webhook-timestamp";

    fn sendgrid(keys: &[&str], h: &HeaderMap, body: &[u8], now_secs: i64) -> Result<Verified, Refused> {
        let incoming = Incoming {
            headers: h,
            body,
            url: "https://hooks.example.com/in",
        };
        verify(Scheme::Sendgrid, keys, &incoming, now_secs)
    }

    /// The vector of SendGrid's own helper libraries' tests (sendgrid-python, sendgrid-ruby):
    /// the body ends in CRLF, as SendGrid sends it.
    #[test]
    fn sendgrid_published_vector() {
        let key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
        let sig = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=";
        let body = "[{\"email\":\"hello@world.com\",\"event\":\"dropped\",\"reason\":\"Bounced Address\",\
                    \"sg_event_id\":\"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA\",\
                    \"sg_message_id\":\"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0\",\
                    \"smtp-id\":\"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>\",\
                    \"timestamp\":1600112492}]\r\n";
        let h = headers(&[(SG_SIGNATURE, sig), (SG_TIMESTAMP, "1600112502")]);
        assert_eq!(
            sendgrid(&[key], &h, body.as_bytes(), 1_600_112_502 + 10),
            Ok(Verified { delivery_id: None })
        );
        assert_eq!(
            sendgrid(&[key], &h, body.trim_end().as_bytes(), 1_600_112_502),
            Err(Refused::BadSignature)
        );
    }

    /// A key pair from fixed bytes; the public half exported as SendGrid shows it.
    fn sendgrid_key(seed: u8) -> (p256::ecdsa::SigningKey, String) {
        use p256::pkcs8::EncodePublicKey;
        let signing = p256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).expect("scalar");
        let der = p256::PublicKey::from(signing.verifying_key())
            .to_public_key_der()
            .expect("spki");
        (signing, STANDARD.encode(der.as_bytes()))
    }

    fn sendgrid_sign(key: &p256::ecdsa::SigningKey, timestamp: &str, body: &[u8]) -> String {
        use p256::ecdsa::signature::Signer;
        let signed = [timestamp.as_bytes(), body].concat();
        let signature: p256::ecdsa::Signature = key.sign(&signed);
        STANDARD.encode(signature.to_der().as_bytes())
    }

    #[test]
    fn sendgrid_signature_timestamp_and_keys() {
        let (signing, public) = sendgrid_key(7);
        let (other, other_public) = sendgrid_key(9);
        let body = br#"[{"email":"a@example.com","event":"delivered","sg_event_id":"ev1"}]"#;
        let ts = "1700000000";
        let sig = sendgrid_sign(&signing, ts, body);
        let h = headers(&[(SG_SIGNATURE, &sig), (SG_TIMESTAMP, ts)]);
        let now = 1_700_000_000;

        // Valid, with a malformed key and a rotated-out key alongside: they never match.
        assert_eq!(
            sendgrid(&["not a key", &other_public, &public], &h, body, now + 299),
            Ok(Verified { delivery_id: None })
        );
        // Signed by another key.
        let forged = sendgrid_sign(&other, ts, body);
        let forged_h = headers(&[(SG_SIGNATURE, &forged), (SG_TIMESTAMP, ts)]);
        assert_eq!(sendgrid(&[&public], &forged_h, body, now), Err(Refused::BadSignature));
        // A tampered body, and a fresh timestamp the signature was not made over.
        assert_eq!(
            sendgrid(&[&public], &h, br#"[{"event":"bounce"}]"#, now),
            Err(Refused::BadSignature)
        );
        let moved = headers(&[(SG_SIGNATURE, &sig), (SG_TIMESTAMP, "1700000001")]);
        assert_eq!(sendgrid(&[&public], &moved, body, now), Err(Refused::BadSignature));
        // Stale, either way.
        assert_eq!(sendgrid(&[&public], &h, body, now + 301), Err(Refused::Stale(300)));
        assert_eq!(sendgrid(&[&public], &h, body, now - 301), Err(Refused::Stale(300)));
        // Only malformed keys: nothing matches.
        assert_eq!(
            sendgrid(&["bm90IGEga2V5", "%%%", ""], &h, body, now),
            Err(Refused::BadSignature)
        );
        // Malformed or missing headers.
        let not_der = headers(&[(SG_SIGNATURE, "bm90IGRlcg=="), (SG_TIMESTAMP, ts)]);
        assert_eq!(
            sendgrid(&[&public], &not_der, body, now),
            Err(Refused::Malformed(SG_SIGNATURE))
        );
        let bad_ts = headers(&[(SG_SIGNATURE, &sig), (SG_TIMESTAMP, "yesterday")]);
        assert_eq!(
            sendgrid(&[&public], &bad_ts, body, now),
            Err(Refused::Malformed(SG_TIMESTAMP))
        );
        let unsigned = headers(&[(SG_TIMESTAMP, ts)]);
        assert_eq!(
            sendgrid(&[&public], &unsigned, body, now),
            Err(Refused::MissingHeader(SG_SIGNATURE))
        );
    }
}
