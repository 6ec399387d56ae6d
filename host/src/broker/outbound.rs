//! The one owner of outbound HTTP on a host, as Spin's outbound-networking factor is: the
//! address policy, the policed resolver, the connection pool and the caps live here, built
//! once at start-up. Connector traffic ([`super::Broker`]), OAuth token endpoints,
//! remote-marketplace fetches and webhook deliveries all send through [`Outbound::client`],
//! so "where is the egress policy?" has one answer: this module and [`super::address`].

use super::address::{self, AddressPolicy, BlockedAddress};
use super::{BrokerBuildError, BrokerConfig};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Outbound HTTP for the whole host.
pub struct Outbound {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    config: BrokerConfig,
    /// Clients for workspaces granted extra ranges, by the sorted extra ranges: each has its
    /// own resolver and its own connection pool, so a connection one workspace may open is
    /// never reused by another.
    granted: std::sync::Mutex<std::collections::HashMap<Vec<ipnet::IpNet>, Policed>>,
}

/// A client and the policy its resolver enforces.
#[derive(Clone)]
pub struct Policed {
    /// The policed, pooled client.
    pub client: reqwest::Client,
    /// Its address policy.
    pub policy: Arc<AddressPolicy>,
}

/// Why a host-initiated URL (token endpoint, marketplace, webhook endpoint) is refused
/// before anything is sent.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum UrlRefused {
    /// Not an absolute `http(s)` URL.
    #[error("{0}: an absolute http(s) URL is required")]
    Invalid(String),
    /// An IP literal in a range the address policy refuses.
    #[error(transparent)]
    Blocked(#[from] BlockedAddress),
}

impl Outbound {
    /// Build the shared client: it dials only addresses the policy allows (checked after
    /// DNS resolution), follows no redirects (callers re-check each hop or refuse them) and
    /// ignores proxy settings from the environment.
    pub fn new(config: BrokerConfig) -> Result<Arc<Self>, BrokerBuildError> {
        crate::tls::install_crypto_provider();
        let policy = Arc::new(config.address_policy.clone());
        let client = build_client(&config, policy.clone())?;
        Ok(Arc::new(Self {
            client,
            policy,
            config,
            granted: Default::default(),
        }))
    }

    /// The client and policy for a workspace granted `extra` non-public ranges on top of the
    /// host's (the host's own when `extra` is empty).
    pub fn policed_for(&self, extra: &[ipnet::IpNet]) -> Policed {
        if extra.is_empty() {
            return Policed {
                client: self.client.clone(),
                policy: self.policy.clone(),
            };
        }
        let mut key = extra.to_vec();
        key.sort();
        key.dedup();
        let mut granted = self.granted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = granted.get(&key) {
            return found.clone();
        }
        let mut policy = (*self.policy).clone();
        policy.allowed_ranges.extend(key.iter().copied());
        let policy = Arc::new(policy);
        let policed = match build_client(&self.config, policy.clone()) {
            Ok(client) => Policed { client, policy },
            Err(e) => {
                // Building a client only fails if TLS cannot initialise, which start-up
                // would have hit first; fall back to the host's own, stricter policy.
                tracing::error!(error = %e, "could not build a client for granted ranges");
                return Policed {
                    client: self.client.clone(),
                    policy: self.policy.clone(),
                };
            }
        };
        granted.insert(key, policed.clone());
        policed
    }

    /// The policed, pooled client. Set a per-request timeout on every request.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The address policy every connection is dialled under.
    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// Settings and caps.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Parse and check a host-initiated URL before sending: absolute `http(s)`, and an IP
    /// literal host must be allowed (host names are checked when they resolve).
    pub fn check_url(&self, raw: &str) -> Result<Url, UrlRefused> {
        let url = Url::parse(raw).map_err(|_| UrlRefused::Invalid(raw.chars().take(200).collect()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(UrlRefused::Invalid(raw.chars().take(200).collect()));
        }
        self.policy.check_url(&url)?;
        Ok(url)
    }

    /// [`Outbound::check_url`], and a host name is resolved now and refused if any address
    /// it resolves to is refused (for URLs stored to be called later, such as webhook
    /// endpoints, so a mistake shows when it is made). A name that does not resolve within
    /// [`RESOLVE_PATIENCE`] is accepted: every request checks the addresses again anyway.
    /// Returns the URL and the addresses it reaches now (the literal, or the resolved ones).
    pub async fn check_url_resolving(&self, raw: &str) -> Result<(Url, Vec<std::net::IpAddr>), UrlRefused> {
        let url = self.check_url(raw)?;
        let addresses = match url.host() {
            Some(url::Host::Ipv4(v4)) => vec![v4.into()],
            Some(url::Host::Ipv6(v6)) => vec![v6.into()],
            _ => self.resolve(&url).await,
        };
        for addr in &addresses {
            self.policy.check(url.host_str().unwrap_or_default(), *addr)?;
        }
        Ok((url, addresses))
    }

    /// Whether `addresses` are all non-public ones the operator allows (an internal
    /// receiver, which may be plain `http://`); `false` for none.
    pub fn only_allowed_private(&self, addresses: &[std::net::IpAddr]) -> bool {
        !addresses.is_empty()
            && addresses
                .iter()
                .all(|a| address::non_public_class(*a).is_some() && self.policy.check("", *a).is_ok())
    }

    /// The addresses a URL's host name resolves to (empty for a literal, or when it does not
    /// resolve within [`RESOLVE_PATIENCE`]).
    async fn resolve(&self, url: &Url) -> Vec<std::net::IpAddr> {
        let Some(url::Host::Domain(host)) = url.host() else {
            return Vec::new();
        };
        let port = url.port_or_known_default().unwrap_or(443);
        match tokio::time::timeout(RESOLVE_PATIENCE, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
            _ => Vec::new(),
        }
    }
}

/// Longest [`Outbound::check_url_resolving`] waits for DNS.
pub const RESOLVE_PATIENCE: Duration = Duration::from_secs(2);

fn build_client(config: &BrokerConfig, policy: Arc<AddressPolicy>) -> Result<reqwest::Client, BrokerBuildError> {
    address::policed_client_builder(policy)
        .user_agent(config.user_agent.clone())
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
        .map_err(BrokerBuildError)
}
