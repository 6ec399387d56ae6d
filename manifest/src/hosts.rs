//! Outbound host patterns, `scheme://host[:port]`, in the style of Spin's
//! `allowed_outbound_hosts`: `https://api.example.com`, `https://*.example.com`,
//! `http://127.0.0.1:*`, `*://*:*`.

use serde::{Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::Url;

/// Which URL schemes a pattern admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemePattern {
    /// `http` only.
    Http,
    /// `https` only.
    Https,
    /// `*`: either.
    Any,
    /// `smtp`: SMTP upgraded with STARTTLS (mail servers only).
    Smtp,
    /// `smtps`: SMTP over implicit TLS (mail servers only).
    Smtps,
}

/// Which hosts a pattern admits.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    /// Exactly this host name (lower-case).
    Exact(String),
    /// Exactly this IP address (compared as an address, so spellings don't matter).
    Ip(IpAddr),
    /// `*.suffix`: any subdomain of `suffix`, not `suffix` itself.
    Subdomain(String),
    /// `*`: any host.
    Any,
}

/// Which ports a pattern admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPattern {
    /// No port given: only the scheme's default port (80 / 443).
    Default,
    /// Exactly this port.
    Exact(u16),
    /// `*`: any port.
    Any,
}

/// One allowed origin pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: SchemePattern,
    host: HostMatch,
    port: PortPattern,
}

impl HostPattern {
    /// Parse `scheme://host[:port]`. A trailing `/` is tolerated; a path, query, user info or
    /// an empty host is refused.
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("`{s}` is not of the form scheme://host[:port]"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => SchemePattern::Http,
            "https" => SchemePattern::Https,
            "*" => SchemePattern::Any,
            "smtp" => SchemePattern::Smtp,
            "smtps" => SchemePattern::Smtps,
            other => {
                return Err(format!(
                    "scheme `{other}` is not http, https, * (or smtp, smtps for mail)"
                ));
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(format!("`{s}` must be an origin only: no path, query or user info"));
        }
        let (host, port) = split_host_port(authority)?;
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            validate_hostname(suffix)?;
            HostMatch::Subdomain(suffix.to_string())
        } else if host.starts_with('[') {
            let inner = host.trim_start_matches('[').trim_end_matches(']');
            let ip = inner
                .parse::<Ipv6Addr>()
                .map_err(|_| format!("`{host}` is not a valid IPv6 address"))?;
            HostMatch::Ip(IpAddr::V6(ip))
        } else if let Ok(ip) = host.parse::<Ipv4Addr>() {
            HostMatch::Ip(IpAddr::V4(ip))
        } else {
            validate_hostname(&host)?;
            HostMatch::Exact(host)
        };
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(p) => PortPattern::Exact(p.parse().map_err(|_| format!("port `{p}` is not a number 0-65535"))?),
        };
        Ok(Self { scheme, host, port })
    }

    /// Whether `url`'s origin is admitted by this pattern.
    pub fn matches(&self, url: &Url) -> bool {
        let scheme_ok = matches!(
            (self.scheme, url.scheme()),
            (SchemePattern::Any, "http" | "https")
                | (SchemePattern::Http, "http")
                | (SchemePattern::Https, "https")
                | (SchemePattern::Smtp, "smtp")
                | (SchemePattern::Smtps, "smtps")
        );
        let Some(host) = url.host_str() else { return false };
        let host = host.to_ascii_lowercase();
        let url_ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            // `smtp:` is not a special scheme, so the url crate keeps its host opaque: an
            // address arrives as a domain and is read here.
            _ => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        };
        let host_ok = match &self.host {
            HostMatch::Any => true,
            HostMatch::Ip(ip) => url_ip == Some(*ip),
            HostMatch::Exact(h) => url_ip.is_none() && *h == host,
            HostMatch::Subdomain(suffix) => {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix.as_str())
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            // The url crate drops an explicit default port, so "no port" means the default.
            PortPattern::Default => url.port().is_none(),
            PortPattern::Exact(p) => url.port_or_known_default() == Some(p),
        };
        scheme_ok && host_ok && port_ok
    }

    /// Whether this pattern names a mail server (`smtp://` or `smtps://`) rather than HTTP.
    pub fn is_mail(&self) -> bool {
        matches!(self.scheme, SchemePattern::Smtp | SchemePattern::Smtps)
    }

    /// Whether this pattern names exactly one server: no host wildcard, one port.
    pub fn is_one_server(&self) -> bool {
        matches!(self.host, HostMatch::Exact(_) | HostMatch::Ip(_)) && matches!(self.port, PortPattern::Exact(_))
    }

    /// Whether this pattern admits every host (`*`), which a permission review must flag.
    pub fn is_any_host(&self) -> bool {
        self.host == HostMatch::Any
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if authority.is_empty() {
        return Err("the host is empty".into());
    }
    if authority.starts_with('[') {
        let end = authority.find(']').ok_or("unterminated IPv6 address")?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err(format!("unexpected `{rest}` after the host")),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((authority, None)),
    }
}

fn validate_hostname(host: &str) -> Result<(), String> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("`{host}` is not a valid host name"))
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            SchemePattern::Http => "http",
            SchemePattern::Https => "https",
            SchemePattern::Any => "*",
            SchemePattern::Smtp => "smtp",
            SchemePattern::Smtps => "smtps",
        };
        write!(f, "{scheme}://")?;
        match &self.host {
            HostMatch::Any => write!(f, "*")?,
            HostMatch::Exact(h) => write!(f, "{h}")?,
            HostMatch::Ip(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            HostMatch::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            HostMatch::Subdomain(s) => write!(f, "*.{s}")?,
        }
        match self.port {
            PortPattern::Default => Ok(()),
            PortPattern::Any => write!(f, ":*"),
            PortPattern::Exact(p) => write!(f, ":{p}"),
        }
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
