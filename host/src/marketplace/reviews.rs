//! Ratings and reviews. Only a workspace that installed a package from this registry may
//! review it, with the version it installed as the "verified install" mark; a person reviews
//! once (again to edit), and the package's publisher may reply. Reviews are keyed by item
//! type so workflow templates can reuse them.

use super::publish::owned_publisher;
use super::{MarketplaceError, MarketplaceResult, packages};
use crate::ids::WorkspaceId;
use crate::state::AppState;
use crate::store::{ReviewRecord, new_id, now_ms};

/// The item type of a connector package's reviews.
pub const CONNECTOR: &str = "connector";
/// The item type of a workflow template's reviews.
pub const TEMPLATE: &str = "template";

/// Longest review text, in bytes.
const MAX_BODY: usize = 5000;

/// Average stars of `reviews` (none without reviews).
pub fn average(reviews: &[ReviewRecord]) -> Option<f64> {
    (!reviews.is_empty()).then(|| reviews.iter().map(|r| r.stars as f64).sum::<f64>() / reviews.len() as f64)
}

/// Reviews of `namespace/name`, newest first.
pub async fn list(state: &AppState, namespace: &str, name: &str) -> MarketplaceResult<Vec<ReviewRecord>> {
    let package = packages::find_package(state, namespace, name).await?;
    Ok(state.db.reviews(CONNECTOR, &package.id).await?)
}

/// A rating to write.
#[derive(Debug, Clone)]
pub struct NewReview {
    /// 1–5.
    pub stars: i64,
    /// Optional text, at most 5000 bytes.
    pub body: String,
}

/// Write (or edit) the review of `namespace/name` by a reviewer of `workspace_id`: the
/// member `member_id`, or the workspace itself for keys without a member, so minting keys
/// cannot multiply a workspace's voice.
pub async fn write(
    state: &AppState,
    workspace_id: &WorkspaceId,
    member_id: Option<&str>,
    namespace: &str,
    name: &str,
    review: NewReview,
) -> MarketplaceResult<ReviewRecord> {
    let package = packages::find_package(state, namespace, name).await?;
    let version = state
        .db
        .marketplace_install(workspace_id, &package.id)
        .await?
        .ok_or(MarketplaceError::InstallRequired)?;
    write_for(state, workspace_id, member_id, CONNECTOR, &package.id, version, review).await
}

/// Write (or edit) a review of any item (`item_type`, `item_id`): `verified_version` is the
/// version the reviewer's workspace installed or used, which the caller established. One
/// review per reviewer (the member, or the workspace for keys without a member).
pub async fn write_for(
    state: &AppState,
    workspace_id: &WorkspaceId,
    member_id: Option<&str>,
    item_type: &str,
    item_id: &str,
    verified_version: String,
    review: NewReview,
) -> MarketplaceResult<ReviewRecord> {
    if !(1..=5).contains(&review.stars) || review.body.len() > MAX_BODY {
        return Err(MarketplaceError::invalid(
            "invalid_review",
            "stars must be 1–5 and the text at most 5000 characters",
        ));
    }
    let author = member_id.map_or_else(|| workspace_id.to_string(), str::to_string);
    let now = now_ms();
    let record = ReviewRecord {
        id: new_id("rev"),
        item_type: item_type.into(),
        item_id: item_id.into(),
        workspace_id: workspace_id.clone(),
        author,
        stars: review.stars,
        body: review.body,
        version: verified_version,
        reply: None,
        replied_at: None,
        created_at: now,
        updated_at: now,
    };
    Ok(state.db.upsert_review(&record).await?)
}

/// Set the publisher's reply on review `review_id` of `namespace/name`; the namespace must
/// belong to `workspace_id`.
pub async fn reply(
    state: &AppState,
    workspace_id: &WorkspaceId,
    namespace: &str,
    name: &str,
    review_id: &str,
    text: &str,
) -> MarketplaceResult<()> {
    owned_publisher(state, workspace_id, namespace).await?;
    let package = packages::find_package(state, namespace, name).await?;
    reply_for(state, &package.id, review_id, text).await
}

/// Set the reply on review `review_id` of item `item_id`, once the caller established that
/// the replier publishes the item.
pub async fn reply_for(state: &AppState, item_id: &str, review_id: &str, text: &str) -> MarketplaceResult<()> {
    if state.db.reply_to_review(item_id, review_id, text).await? {
        Ok(())
    } else {
        Err(MarketplaceError::NotFound("review"))
    }
}
