//! Pages: minijinja templates compiled into the binary (HTML auto-escaped), the layout every
//! page shares, Markdown rendered with raw HTML and unsafe links removed, and the security
//! headers every console answer carries.

use super::client::Problem;
use super::session::Session;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, Value as TemplateValue};
use serde_json::{Value, json};

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("message.html", include_str!("templates/message.html")),
    ("connections.html", include_str!("templates/connections.html")),
    ("connection.html", include_str!("templates/connection.html")),
    ("connect.html", include_str!("templates/connect.html")),
    ("action.html", include_str!("templates/action.html")),
    ("webhooks.html", include_str!("templates/webhooks.html")),
    ("endpoint.html", include_str!("templates/endpoint.html")),
    ("marketplace.html", include_str!("templates/marketplace.html")),
    ("connector.html", include_str!("templates/connector.html")),
    ("template.html", include_str!("templates/template.html")),
    ("admin.html", include_str!("templates/admin.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("workflows.html", include_str!("templates/workflows.html")),
    ("workflow.html", include_str!("templates/workflow.html")),
    ("execution.html", include_str!("templates/execution.html")),
];

/// The stylesheet and the progressive-enhancement script, served from `/console/assets`.
pub const CSS: &str = include_str!("../../assets/console/console.css");
/// See [`CSS`].
pub const JS: &str = include_str!("../../assets/console/console.js");

/// What every console answer carries: no framing, no foreign scripts, styles or fetches, no
/// sniffing, no referrer leaking ids to providers, never cached.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The template environment (built once).
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            // A template that does not parse is a build mistake the console tests catch.
            tracing::error!(template = name, error = %e, "console template does not parse");
        }
    }
    env.add_filter("time", time);
    env.add_filter("markdown", markdown);
    env.add_filter("pretty", pretty);
    env.add_filter("urlencode_segment", urlencode_segment);
    env.add_filter("sparkline", sparkline);
    env
}

/// A page answer: status, HTML, security headers.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(headers);
    response
}

/// The headers of [`CONTENT_SECURITY_POLICY`] and friends.
pub fn secure_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Render `template` inside the layout with the session's facts (`me`, `can`, `csrf`) and
/// `context`.
pub fn render(
    env: &Environment<'static>,
    status: StatusCode,
    template: &str,
    session: Option<&Session>,
    context: Value,
) -> Response {
    let me = session.map(|s| {
        json!({
            "key_name": s.key_name,
            "scopes": s.scopes,
        })
    });
    let can = session.map(|s| {
        let admin = s.may("admin");
        json!({
            "read": s.may("connections:read"),
            "connect": s.may("connections:write"),
            "execute": s.may("actions:execute"),
            "webhooks": s.may("webhooks:write") || admin,
            "workflows": s.may("workflows:write") || admin,
            "admin": admin,
        })
    });
    let mut ctx = json!({
        "me": me,
        "can": can.unwrap_or_else(|| json!({})),
        "csrf": session.map(|s| s.csrf.as_str()),
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut ctx, context) {
        base.extend(extra);
    }
    match env
        .get_template(template)
        .and_then(|t| t.render(TemplateValue::from_serialize(&ctx)))
    {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(template, error = %e, "console page failed to render");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Console error</title><p>This page failed to render; the server log says why.</p>".into(),
            )
        }
    }
}

/// The status a page showing `problem` answers with.
pub fn status_of(problem: &Problem) -> StatusCode {
    StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Unix ms → `2026-12-05 13:20 UTC` (empty for none).
fn time(value: TemplateValue) -> String {
    let Some(ms) = value.as_i64() else {
        return String::new();
    };
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// Any value as indented JSON text (escaped by the template like any text).
fn pretty(value: TemplateValue) -> String {
    serde_json::to_value(&value)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_default()
}

/// An inline SVG sparkline of `calls` per hour (a connection's `usage.last_24_hours`), with
/// failed calls as a second line, and a text alternative.
fn sparkline(hours: TemplateValue) -> TemplateValue {
    let series: Vec<(i64, i64)> = serde_json::to_value(&hours)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|h| (h["calls"].as_i64().unwrap_or(0), h["errors"].as_i64().unwrap_or(0)))
        .collect();
    let (width, height) = (96.0_f64, 20.0_f64);
    let peak = series.iter().map(|(c, _)| *c).max().unwrap_or(0).max(1) as f64;
    let step = if series.len() > 1 {
        width / (series.len() - 1) as f64
    } else {
        width
    };
    let points = |pick: fn(&(i64, i64)) -> i64| {
        series
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "{:.1},{:.1}",
                    i as f64 * step,
                    height - 1.0 - pick(p) as f64 / peak * (height - 2.0)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let total: i64 = series.iter().map(|(c, _)| c).sum();
    let failed: i64 = series.iter().map(|(_, e)| e).sum();
    TemplateValue::from_safe_string(format!(
        "<svg class=\"spark\" width=\"96\" height=\"20\" viewBox=\"0 0 96 20\" role=\"img\" aria-label=\"{total} calls, {failed} failed, in the last 24 hours; busiest hour {peak}\">\
         <polyline fill=\"none\" stroke=\"#0b57d0\" stroke-width=\"1.5\" points=\"{}\"/>\
         <polyline fill=\"none\" stroke=\"#a40e26\" stroke-width=\"1\" points=\"{}\"/></svg>",
        points(|p| p.0),
        points(|p| p.1),
        peak = peak as i64,
    ))
}

/// A path segment, percent-encoded.
fn urlencode_segment(value: String) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Markdown → HTML with raw HTML shown as text and links or images limited to http(s),
/// mailto and relative URLs.
fn markdown(value: String) -> TemplateValue {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let safe = |url: &str| {
        let lower = url.trim().to_ascii_lowercase();
        !lower.contains(':')
            || lower.starts_with("http://")
            || lower.starts_with("https://")
            || lower.starts_with("mailto:")
    };
    let events =
        Parser::new_ext(&value, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(|event| match event {
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) if !safe(&dest_url) => Event::Start(Tag::Link {
                link_type,
                dest_url: "#".into(),
                title,
                id,
            }),
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) if !safe(&dest_url) => Event::Start(Tag::Image {
                link_type,
                dest_url: "#".into(),
                title,
                id,
            }),
            other => other,
        });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    TemplateValue::from_safe_string(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn markdown_shows_raw_html_as_text_and_drops_script_links() {
        let html = markdown("# Hi\n<script>alert(1)</script>\n[x](javascript:alert(1)) [y](https://a.example)".into())
            .to_string();
        assert!(html.contains("<h1>Hi</h1>"));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("href=\"https://a.example\""), "{html}");
    }

    #[test]
    fn every_template_parses() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                panic!("{name} does not parse: {e:#}");
            }
        }
    }

    #[test]
    fn a_sparkline_scales_to_the_busiest_hour() {
        let hours: Vec<_> = (0..24)
            .map(|i| json!({ "calls": if i == 23 { 4 } else { 0 }, "errors": 0 }))
            .collect();
        let svg = sparkline(TemplateValue::from_serialize(&hours)).to_string();
        assert!(svg.contains("4 calls, 0 failed"), "{svg}");
        assert!(svg.contains("96.0,1.0"), "the last hour is at the top: {svg}");
        assert!(svg.contains("0.0,19.0"), "quiet hours at the bottom: {svg}");
    }

    #[test]
    fn times_read_as_utc() {
        assert_eq!(
            time(TemplateValue::from(1_735_689_600_000i64)),
            "2025-01-01 00:00:00 UTC"
        );
        assert_eq!(time(TemplateValue::from(())), "");
    }
}
