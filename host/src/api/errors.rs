//! How each domain error becomes a problem response. This is the only place that knows both
//! a capability's error enum and HTTP; see the policy table in `crate::error`.

use crate::connections::ConnectionError;
use crate::error::ApiError;
use crate::oauth::{OAuthError, ProviderError};
use axum::http::StatusCode;

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Conflict => {
                ApiError::conflict("a resource with these unique fields already exists")
            }
            other => ApiError::internal(&other),
        }
    }
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
