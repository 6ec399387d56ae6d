//! How each domain error becomes a problem response. This is the only place that knows both
//! a capability's error enum and HTTP; see the policy table in `crate::error`.

use crate::connections::ConnectionError;
use crate::error::ApiError;
use crate::marketplace::{InstallError, MarketplaceError, PermissionReview};
use crate::oauth::{OAuthError, ProviderError};
use axum::http::StatusCode;
use nexum_marketplace::signing::SigningError;

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Conflict => {
                ApiError::conflict("a resource with these unique fields already exists")
            }
            crate::store::StoreError::Unavailable(what) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "Service unavailable",
                format!("the {what} cannot be written right now, so nothing was done; retry shortly"),
            )
            .with_retry_after(1),
            crate::store::StoreError::Changed => ApiError::new(
                StatusCode::CONFLICT,
                "changed_meanwhile",
                "Conflict",
                "it was changed by another request meanwhile; read it again and retry",
            ),
            crate::store::StoreError::Database(ref cause) if is_transient(cause) => {
                tracing::warn!(error = %crate::error::cause_chain(&e), "database busy; answered 503");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_busy",
                    "Service unavailable",
                    "the database is busy; nothing was done, retry shortly",
                )
                .with_retry_after(1)
            }
            other => ApiError::internal(&other),
        }
    }
}

/// A database error that says "not now" rather than "never": SQLite busy or locked (also a
/// write transaction whose snapshot went stale), PostgreSQL serialization failures, deadlocks
/// and lock timeouts. Retrying the request can succeed.
fn is_transient(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else { return false };
    matches!(
        db.code().as_deref(),
        // SQLite: BUSY, LOCKED, BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT.
        Some("5" | "6" | "261" | "517" | "773")
            // PostgreSQL: serialization_failure, deadlock_detected, lock_not_available.
            | Some("40001" | "40P01" | "55P03")
    )
}

impl From<crate::vault::VaultError> for ApiError {
    fn from(e: crate::vault::VaultError) -> Self {
        ApiError::internal(&e)
    }
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        let detail = e.to_string();
        match e {
            OAuthError::NotFound(what) => ApiError::not_found(what),
            OAuthError::Invalid { code, .. } => ApiError::unprocessable(code, detail),
            OAuthError::AppMissing(_) => ApiError::unprocessable("oauth_app_missing", detail),
            OAuthError::Provider(p) => {
                let code = match p {
                    ProviderError::InvalidGrant(_) => "oauth_invalid_grant",
                    ProviderError::Rejected { .. } => "oauth_rejected",
                    ProviderError::Unavailable(_) => "oauth_provider_unavailable",
                    ProviderError::Malformed(_) => "oauth_provider_error",
                };
                ApiError::new(StatusCode::BAD_GATEWAY, code, "OAuth provider error", detail)
            }
            OAuthError::Exhausted(_) => {
                ApiError::new(StatusCode::CONFLICT, "refresh_exhausted", "Reconnect needed", detail)
            }
            OAuthError::Expired => ApiError::new(StatusCode::CONFLICT, "token_expired", "Reconnect needed", detail),
            OAuthError::Store(s) => s.into(),
            OAuthError::Vault(v) => v.into(),
        }
    }
}

impl From<ConnectionError> for ApiError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::NotFound(what) => ApiError::not_found(what),
            ConnectionError::WorkspaceBusy(busy) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "workspace_busy",
                "Too many requests",
                format!(
                    "this workspace already runs {} connector calls at once; retry when one finishes",
                    busy.limit
                ),
            )
            .with_retry_after(1),
            ConnectionError::Changed => ApiError::new(
                StatusCode::CONFLICT,
                "changed_meanwhile",
                "Conflict",
                ConnectionError::Changed.to_string(),
            ),
            ConnectionError::Invalid { code, message } => ApiError::unprocessable(code, message),
            ConnectionError::CredentialsUnreadable(ref cause) => {
                tracing::error!(error = %crate::error::cause_chain(cause), "stored credentials could not be opened");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "credentials_unreadable",
                    "Internal server error",
                    e.to_string(),
                )
            }
            ConnectionError::TestFailed(message) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "test_failed",
                "Connection test failed",
                message,
            ),
            ConnectionError::OAuth(o) => o.into(),
            ConnectionError::Store(s) => s.into(),
            ConnectionError::Vault(v) => v.into(),
            ConnectionError::Corrupt(_) | ConnectionError::Load(_) => ApiError::internal(&e),
        }
    }
}

/// `errors` of a refused install: the permissions to accept and what they add (or `null`).
fn review_extra(review: &PermissionReview) -> serde_json::Value {
    serde_json::json!({ "permissions": review.permissions, "diff": review.diff })
}

impl From<InstallError> for ApiError {
    fn from(e: InstallError) -> Self {
        let detail = e.to_string();
        match e {
            InstallError::NotFound(what) => ApiError::not_found(what),
            InstallError::Signature(s) => {
                let code = match s {
                    SigningError::Unsigned => "unsigned_bundle",
                    SigningError::UntrustedKey { .. } => "untrusted_publisher",
                    _ => "bad_signature",
                };
                ApiError::unprocessable(code, detail)
            }
            InstallError::PublisherChanged { .. } => {
                ApiError::new(StatusCode::CONFLICT, "publisher_changed", "Conflict", detail)
            }
            InstallError::PermissionsWidened(review) | InstallError::RollbackWidensPermissions(review) => {
                ApiError::new(StatusCode::CONFLICT, "permissions_widened", "Conflict", detail)
                    .with_extra(review_extra(&review))
            }
            InstallError::PermissionsNotAccepted(review) => {
                ApiError::unprocessable("permissions_not_accepted", detail).with_extra(review_extra(&review))
            }
            InstallError::InvalidComponent(_) => ApiError::unprocessable("invalid_component", detail),
            InstallError::UnknownVersion(_) => ApiError::unprocessable("unknown_version", detail),
            InstallError::SignerNoLongerTrusted { .. } => ApiError::unprocessable("untrusted_publisher", detail),
            InstallError::InUse => ApiError::conflict(detail),
            InstallError::Store(s) => s.into(),
            InstallError::Json(_) | InstallError::Join(_) => ApiError::internal(&e),
        }
    }
}

impl From<MarketplaceError> for ApiError {
    fn from(e: MarketplaceError) -> Self {
        let detail = e.to_string();
        match e {
            MarketplaceError::NotFound(what) => ApiError::not_found(what),
            MarketplaceError::Invalid { code, message } => ApiError::unprocessable(code, message),
            MarketplaceError::NotYourNamespace(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "not_your_namespace", "Forbidden", detail)
            }
            MarketplaceError::NamespaceTaken(_) | MarketplaceError::VersionExists { .. } => ApiError::conflict(detail),
            MarketplaceError::PublishSignature { ref source, .. } => {
                let code = match source {
                    SigningError::Unsigned => "unsigned_bundle",
                    SigningError::UntrustedKey { .. } => "unknown_or_revoked_key",
                    _ => "bad_signature",
                };
                ApiError::unprocessable(code, detail)
            }
            MarketplaceError::InstallRequired => {
                ApiError::new(StatusCode::FORBIDDEN, "install_required", "Forbidden", detail)
            }
            MarketplaceError::UseRequired => ApiError::new(StatusCode::FORBIDDEN, "use_required", "Forbidden", detail),
            MarketplaceError::InvalidTemplate(problems) => {
                ApiError::unprocessable("invalid_template", detail).with_extra(serde_json::json!(problems))
            }
            MarketplaceError::Upstream { code, message } => {
                ApiError::new(StatusCode::BAD_GATEWAY, code, "Bad gateway", message)
            }
            MarketplaceError::Install(i) => i.into(),
            MarketplaceError::Store(s) => s.into(),
            MarketplaceError::CorruptBundle(_) | MarketplaceError::Json(_) => ApiError::internal(&e),
        }
    }
}
