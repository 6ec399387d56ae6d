//! `/api-keys`: create (shown once), list, get, revoke.

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery, Pagination, Principal};
use crate::auth::{Scope, generate_key};
use crate::error::{ApiError, ApiResult};
use crate::store::{ApiKeyRecord, AuditEntry, NewApiKey, new_id, now_ms};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An API key as shown after creation: never the key itself.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    /// `key_…`
    pub id: String,
    /// Display name.
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Requests per minute.
    pub rate_limit_per_minute: i64,
    /// Unix ms expiry.
    pub expires_at: Option<i64>,
    /// Unix ms revocation.
    pub revoked_at: Option<i64>,
    /// Unix ms of last use (updated within a second or so).
    pub last_used_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Requests allowed per UTC hour (absent = unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_per_hour: Option<i64>,
    /// Requests allowed per UTC day (absent = unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_per_day: Option<i64>,
}

impl From<&ApiKeyRecord> for ApiKeyView {
    fn from(r: &ApiKeyRecord) -> Self {
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            prefix: r.prefix.clone(),
            scopes: r.scopes.split_whitespace().map(str::to_string).collect(),
            rate_limit_per_minute: r.rate_limit_per_minute,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
            created_at: r.created_at,
            quota_per_hour: r.quota_per_hour,
            quota_per_day: r.quota_per_day,
        }
    }
}

/// A new key: the full secret, shown this once, and its record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    /// The key. Store it now: only its hash is kept.
    pub key: String,
    /// The key's record.
    pub api_key: ApiKeyView,
}

/// A page of keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyList {
    /// Keys.
    pub data: Vec<ApiKeyView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// Request to create a key.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// Display name: 1–200 characters (counted as UTF-8 bytes), not only whitespace.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    /// Scopes (a key can never hold `workspaces:create` unless its creator does).
    pub scopes: Vec<Scope>,
    /// Expire after this many days.
    #[schema(format = "uint32", maximum = 4294967295u32)]
    pub expires_in_days: Option<u32>,
    /// Requests per minute (default from server settings).
    #[schema(format = "uint32", maximum = 4294967295u32)]
    pub rate_limit_per_minute: Option<u32>,
    /// Requests per UTC hour (default: the creating key's, else unlimited).
    #[serde(default)]
    #[schema(format = "uint32", maximum = 4294967295u32)]
    pub quota_per_hour: Option<u32>,
    /// Requests per UTC day (default: the creating key's, else unlimited).
    #[serde(default)]
    #[schema(format = "uint32", maximum = 4294967295u32)]
    pub quota_per_day: Option<u32>,
}

/// Create a key (`admin`). The response holds the only copy of the key. A new key holds
/// no scope, expiry or rate beyond those of the key that creates it.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", operation_id = "create_api_key", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey),
        (status = 403, description = "A scope the creating key does not hold (`scope_escalation`)", body = crate::error::Problem),
        (status = 404, description = "The creating key is gone", body = crate::error::Problem),
        (status = 422, description = "Invalid name, or an expiry, rate or quota beyond the creating key's, or the body does not match the schema", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now; nothing was done", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    principal.require(Scope::Admin)?;
    if body.name.trim().is_empty() || body.name.len() > 200 {
        return Err(ApiError::unprocessable("invalid_name", "name must be 1–200 characters"));
    }
    if let Some(escalation) = body.scopes.iter().find(|s| !principal.scopes.contains(s)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "scope_escalation",
            "Forbidden",
            format!("a key cannot grant `{}`, which it does not hold", escalation.as_str()),
        ));
    }
    // A key never outlives or outpaces the key that minted it.
    let parent = state
        .db
        .api_key(&principal.workspace_id, &principal.key_id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    if parent.revoked_at.is_some() || parent.expires_at.is_some_and(|at| at <= now_ms()) {
        return Err(ApiError::unauthorized("this API key has been revoked or has expired"));
    }
    let expires_at = body
        .expires_in_days
        .map(|d| now_ms().saturating_add(i64::from(d).saturating_mul(86_400_000)));
    let expires_at = match (expires_at, parent.expires_at) {
        (Some(child), Some(limit)) if child > limit => {
            return Err(ApiError::unprocessable(
                "expiry_exceeds_parent",
                "a key cannot expire after the key that creates it",
            ));
        }
        (None, limit) => limit,
        (child, _) => child,
    };
    let rate_limit_per_minute = match body.rate_limit_per_minute {
        Some(r) if i64::from(r) > parent.rate_limit_per_minute => {
            return Err(ApiError::unprocessable(
                "rate_limit_exceeds_parent",
                format!(
                    "a key cannot allow more than its creator's {} requests per minute",
                    parent.rate_limit_per_minute
                ),
            ));
        }
        Some(r) => i64::from(r.max(1)),
        None => i64::from(state.config.default_key_rate_limit_per_minute.max(1)).min(parent.rate_limit_per_minute),
    };
    let quota_per_hour = capped_quota(body.quota_per_hour, parent.quota_per_hour, "quota_per_hour")?;
    let quota_per_day = capped_quota(body.quota_per_day, parent.quota_per_day, "quota_per_day")?;
    let generated = generate_key();
    let record = state
        .db
        .insert_api_key(&NewApiKey {
            id: new_id("key"),
            workspace_id: principal.workspace_id.clone(),
            // A key minted by a member's key acts for that member.
            member_id: principal.member_id.clone(),
            name: body.name,
            prefix: generated.prefix.clone(),
            hash: generated.hash.clone(),
            scopes: Scope::join(&body.scopes),
            rate_limit_per_minute,
            expires_at,
            parent_id: Some(principal.key_id.clone()),
            quota_per_hour,
            quota_per_day,
        })
        .await?;
    state
        .db
        .append_audit(&[AuditEntry::new(
            &principal.workspace_id,
            &principal.key_id,
            "api_key.create",
            &record.id,
            "",
        )])
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: generated.secret.to_string(),
            api_key: ApiKeyView::from(&record),
        }),
    ))
}

/// List keys (`admin`).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", operation_id = "list_api_keys", params(Pagination),
    responses((status = 200, body = ApiKeyList), (status = 422, description = "`limit` outside 1–100", body = crate::error::Problem)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<ApiKeyList>> {
    principal.require(Scope::Admin)?;
    let p = state
        .db
        .list_api_keys(&principal.workspace_id, page.after(), page.limit()?)
        .await?;
    Ok(Json(ApiKeyList {
        data: p.items.iter().map(ApiKeyView::from).collect(),
        next_cursor: p.next_cursor,
    }))
}

/// The window of a usage report: unix ms, `to` defaults to now and `from` to 24 hours
/// before it; at most 90 days.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageWindow {
    /// Start (unix ms).
    #[param(minimum = 0)]
    pub from: Option<i64>,
    /// End (unix ms).
    #[param(minimum = 0)]
    pub to: Option<i64>,
}

/// Most days one usage report covers.
const MAX_USAGE_DAYS: i64 = 90;

/// A key's usage over a window: requests, success and error rates, average and p95 latency,
/// by endpoint and by hour (`admin`, or the key itself).
#[utoipa::path(get, path = "/api/v1/api-keys/{id}/usage", tag = "api-keys", operation_id = "api_key_usage",
    params(("id" = String, Path, description = "`key_…`"), UsageWindow),
    responses((status = 200, body = crate::auth::usage::KeyUsageReport), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem, description = "`from` after `to`, a negative one, or a window over 90 days")))]
pub async fn usage(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(window): ApiQuery<UsageWindow>,
) -> ApiResult<Json<crate::auth::usage::KeyUsageReport>> {
    if id != principal.key_id {
        principal.require(Scope::Admin)?;
    }
    if window.from.is_some_and(|t| t < 0) || window.to.is_some_and(|t| t < 0) {
        return Err(ApiError::unprocessable(
            "invalid_window",
            "`from` and `to` are unix ms, 0 or more",
        ));
    }
    let to = window.to.unwrap_or_else(now_ms);
    let from = window.from.unwrap_or(to.saturating_sub(86_400_000));
    if from > to || to.saturating_sub(from) > MAX_USAGE_DAYS * 86_400_000 {
        return Err(ApiError::unprocessable(
            "invalid_window",
            format!("`from` must be before `to`, at most {MAX_USAGE_DAYS} days apart"),
        ));
    }
    state
        .db
        .api_key(&principal.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    // Make the last half second of requests visible.
    if let Err(e) = state.recorder.flush(&state.db).await {
        tracing::warn!(error = %e, "usage flush before reporting failed");
    }
    let hour = crate::limits::Window::Hour;
    let rows = state
        .db
        .key_usage(&principal.workspace_id, &id, hour.start(from), hour.start(to))
        .await?;
    Ok(Json(crate::auth::usage::summarize(&id, hour.start(from), to, &rows)))
}

/// The key this request is made with: its name, scopes, limits and expiry (any key). The
/// console signs in with it.
#[utoipa::path(get, path = "/api/v1/api-keys/current", tag = "api-keys", operation_id = "current_api_key",
    responses((status = 200, body = ApiKeyView), (status = 401, description = "No valid key", body = crate::error::Problem)))]
pub async fn current(State(state): State<Arc<AppState>>, principal: Principal) -> ApiResult<Json<ApiKeyView>> {
    let record = state
        .db
        .api_key(&principal.workspace_id, &principal.key_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("this API key no longer exists"))?;
    Ok(Json(ApiKeyView::from(&record)))
}

/// One key (`admin`).
#[utoipa::path(get, path = "/api/v1/api-keys/{id}", tag = "api-keys", operation_id = "get_api_key",
    params(("id" = String, Path, description = "`key_…`")),
    responses((status = 200, body = ApiKeyView), (status = 404, description = "No such key in this workspace", body = crate::error::Problem)))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiKeyView>> {
    principal.require(Scope::Admin)?;
    let record = state
        .db
        .api_key(&principal.workspace_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    Ok(Json(ApiKeyView::from(&record)))
}

/// Revoke a key (`admin`), and every key minted from it. Takes effect at once on this node
/// and within the cache TTL on others.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", operation_id = "revoke_api_key",
    params(("id" = String, Path, description = "`key_…`")),
    responses((status = 204, description = "Revoked, with every key minted from it"),
        (status = 404, description = "No such key in this workspace", body = crate::error::Problem),
        (status = 503, description = "The audit log cannot be written right now", body = crate::error::Problem)))]
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    principal.require(Scope::Admin)?;
    if state.db.api_key(&principal.workspace_id, &id).await?.is_none() {
        return Err(ApiError::not_found("API key"));
    }
    let revoked = state.db.revoke_api_key(&principal.workspace_id, &id).await?;
    let mut audit = Vec::with_capacity(revoked.len());
    for key in &revoked {
        state.keys.evict_id(key);
        let detail = if *key == id { "" } else { "minted by a revoked key" };
        audit.push(AuditEntry::new(
            &principal.workspace_id,
            &principal.key_id,
            "api_key.revoke",
            key,
            detail,
        ));
    }
    state.db.append_audit(&audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new key's quota: at most its creator's (and the creator's when none is asked for).
fn capped_quota(asked: Option<u32>, parent: Option<i64>, field: &str) -> ApiResult<Option<i64>> {
    match (asked.map(|q| i64::from(q.max(1))), parent) {
        (Some(q), Some(limit)) if q > limit => Err(ApiError::unprocessable(
            "quota_exceeds_parent",
            format!("`{field}` cannot exceed the creating key's {limit}"),
        )),
        (Some(q), _) => Ok(Some(q)),
        (None, limit) => Ok(limit),
    }
}
