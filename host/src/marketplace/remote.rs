//! Fetching from another marketplace. Its URL comes from a workspace admin, so it is fetched
//! under the same address policy as connector traffic (no private or metadata addresses
//! unless the operator allows them), without redirects, with a timeout and a size cap.

use super::{MarketplaceError, MarketplaceResult};
use crate::broker::{Outbound, UrlRefused};
use crate::state::AppState;
use serde::Deserialize;
use std::time::Duration;

/// How long one request to a remote marketplace may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The part of a remote package listing the host reads.
#[derive(Debug, Deserialize)]
pub struct RemoteListing {
    /// Latest non-yanked version, as the marketplace reports it.
    pub latest_version: Option<String>,
    /// Every version.
    pub versions: Vec<RemoteVersion>,
}

/// One version of a remote listing.
#[derive(Debug, Deserialize)]
pub struct RemoteVersion {
    /// Semver.
    pub version: String,
    /// Bundle digest, pinned at install.
    pub digest: String,
    /// Yanked versions cannot be newly installed.
    pub yanked: bool,
}

/// A bundle fetched from a remote marketplace, with the digest and version its listing showed.
#[derive(Debug)]
pub struct Fetched {
    /// The digest the listing showed (the bundle must match it).
    pub digest: String,
    /// The version chosen.
    pub version: String,
    /// The bundle bytes as downloaded.
    pub bytes: Vec<u8>,
}

/// Fetch `namespace/name` (version `wanted`, or the latest) from the marketplace at `base`.
pub async fn fetch(
    state: &AppState,
    base: &str,
    namespace: &str,
    name: &str,
    wanted: Option<&str>,
) -> MarketplaceResult<Fetched> {
    let outbound: &Outbound = &state.outbound;
    let parsed_base = outbound.check_url(base.trim_end_matches('/')).map_err(|e| match e {
        UrlRefused::Invalid(_) => {
            MarketplaceError::invalid("invalid_marketplace", "marketplace must be an http(s) URL")
        }
        blocked => MarketplaceError::invalid("marketplace_address_blocked", blocked.to_string()),
    })?;
    let base = parsed_base.as_str().trim_end_matches('/');
    let listing = get(
        outbound,
        format!("{base}/api/v1/marketplace/packages/{namespace}/{name}"),
    )
    .await?;
    let parsed: RemoteListing = serde_json::from_slice(&listing).map_err(|_| MarketplaceError::Upstream {
        code: "marketplace_invalid",
        message: "the marketplace's answer is not a package listing".into(),
    })?;
    let v = pick_remote(&parsed, wanted)?;
    let bytes = get(
        outbound,
        format!(
            "{base}/api/v1/marketplace/packages/{namespace}/{name}/versions/{}/bundle",
            v.version
        ),
    )
    .await?;
    Ok(Fetched {
        digest: v.digest.clone(),
        version: v.version.clone(),
        bytes,
    })
}

/// GET `url` through the broker's client; a non-2xx answer is an upstream error.
async fn get(outbound: &Outbound, url: String) -> MarketplaceResult<Vec<u8>> {
    let response =
        outbound
            .client()
            .get(url)
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| MarketplaceError::Upstream {
                code: "marketplace_unreachable",
                message: format!("the marketplace did not answer: {}", e.without_url()),
            })?;
    if !response.status().is_success() {
        return Err(MarketplaceError::Upstream {
            code: "marketplace_error",
            message: format!("the marketplace answered {}", response.status()),
        });
    }
    read_capped(response).await
}

/// Read a marketplace response body, refusing more than a bundle's maximum size.
pub async fn read_capped(mut response: reqwest::Response) -> MarketplaceResult<Vec<u8>> {
    let limit = nexum_marketplace::bundle::MAX_BUNDLE_BYTES;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| MarketplaceError::Upstream {
        code: "marketplace_unreachable",
        message: e.without_url().to_string(),
    })? {
        if body.len() + chunk.len() > limit {
            return Err(MarketplaceError::Upstream {
                code: "marketplace_invalid",
                message: "the marketplace sent more than a bundle may hold".into(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Choose the version to install from a remote listing: `wanted`, or its latest.
pub fn pick_remote<'a>(listing: &'a RemoteListing, wanted: Option<&str>) -> MarketplaceResult<&'a RemoteVersion> {
    let v = wanted
        .or(listing.latest_version.as_deref())
        .ok_or_else(|| MarketplaceError::invalid("no_versions", "no installable version"))?;
    let found = listing
        .versions
        .iter()
        .find(|x| x.version == v)
        .ok_or(MarketplaceError::NotFound("version"))?;
    if found.yanked {
        return Err(MarketplaceError::invalid(
            "version_yanked",
            format!("version {v} was yanked and cannot be newly installed"),
        ));
    }
    Ok(found)
}
