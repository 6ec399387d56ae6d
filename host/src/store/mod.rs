//! Persistence: one repository layer over SQLite (embedded default) and PostgreSQL
//! (scale-out), through sqlx's `Any` driver. Queries use `$n` placeholders, which both
//! dialects accept; times are unix milliseconds; every query on tenant data is scoped by
//! workspace id, so a row of another workspace is simply not found (404).

mod api_keys;
mod audit;
mod batch;
mod connections;
mod events;
pub mod group_commit;
mod idempotency;
mod installations;
mod jobs;
mod key_usage;
mod marketplace;
mod oauth;
mod secrets;
mod templates;
mod usage;
mod webhooks;
mod workflows;
mod workspaces;

pub use api_keys::{ApiKeyRecord, NewApiKey};
pub use audit::{AuditEntry, AuditWriter};
pub use connections::{ConnectionRecord, ConnectionSettings, ConnectionStatus};
pub use events::EventRecord;
pub use idempotency::{IdempotencyClaim, IdempotencyRecord};
pub use installations::{InstallationRecord, NewInstallation};
pub use jobs::{ClaimedJob, JobFate, NewJob};
pub use key_usage::{KEY_USAGE_BUCKETS, KeyUsageRow};
pub use marketplace::{PackageRecord, PackageVersionRecord, PublisherRecord, ReviewRecord};
pub use oauth::{AppBinding, FlowClaim, OAuthAppRecord, OAuthFlowRecord, OPERATOR_OWNER, RefreshLock, TokenUpdate};
pub use secrets::{AAD_VERSION, SecretRecord};
pub use templates::{
    BrowsedTemplate, TemplateLink, TemplateLinkRecord, TemplateQuery, TemplateRecord, TemplateVersionRecord,
};
pub use usage::UsageRecord;
pub use webhooks::{
    AttemptRecord, DELIVERY_QUEUE, DeliveryJob, ENDPOINT_SOURCE_API, ENDPOINT_SOURCE_HOOK, EndpointChanges,
    EndpointRecord, FinishedDelivery, MessageRecord, NewEndpointRow, message_body,
};
pub use workflows::{
    ConnectorStepUsageRow, ExecutionEnd, ExecutionRecord, JournalWrite, NewExecution, StepRunRecord,
    TriggerFailureRecord, TriggerRecord, WORKFLOW_QUEUE, WorkflowRecord, WorkflowSave, WorkflowUsageRow,
};
pub use workspaces::{MemberRecord, Role, WorkspaceRecord};

/// Store a type as a text column through sqlx's `Any` driver: it is written with its
/// `as_str()` and read back with its `FromStr` (a value that does not parse is an error, not a
/// silent default). Used for status enums and typed ids.
macro_rules! text_column {
    ($ty:ty) => {
        impl sqlx::Type<sqlx::Any> for $ty {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <str as sqlx::Type<sqlx::Any>>::type_info()
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Any> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<'q, sqlx::Any>>::encode(self.as_str().to_string(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $ty {
            fn decode(value: <sqlx::Any as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
                Ok(text.parse::<$ty>()?)
            }
        }
    };
}
pub(crate) use text_column;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::time::Duration;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in WAL mode (embedded default).
    Sqlite,
    /// PostgreSQL (several nodes may share it).
    Postgres,
}

/// A database failure. The message may name tables, never values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names an unsupported database.
    #[error("unsupported database URL (expected sqlite:… or postgres://…)")]
    UnsupportedUrl,
    /// A unique constraint was violated.
    #[error("already exists")]
    Conflict,
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded.
    #[error("corrupt stored value in {0}")]
    Corrupt(&'static str),
    /// A write that must be durable before going on could not be made (the database
    /// refused it); the request is refused rather than done unrecorded.
    #[error("the {0} cannot be written right now")]
    Unavailable(&'static str),
    /// A compare-and-set write found the row changed since it was read.
    #[error("changed by someone else meanwhile; read it again and retry")]
    Changed,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return StoreError::Conflict;
        }
        StoreError::Database(e)
    }
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// The database handle shared by the whole server.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    /// Where writes go. On SQLite a one-connection pool: one writer at a time, the rest
    /// waiting their turn in the pool's queue rather than sleeping in SQLite's busy handler
    /// (which backs off for milliseconds and collapses throughput under concurrent writes).
    /// On PostgreSQL the same pool as `pool`.
    writer: AnyPool,
    backend: Backend,
    /// Kept to open a LISTEN connection on PostgreSQL; may hold a password, never logged.
    url: std::sync::Arc<str>,
    /// Rung when events were committed to the outbox by this process, so the webhook
    /// fan-out runs at once instead of at its next tick.
    events_bell: std::sync::Arc<tokio::sync::Notify>,
}

impl Db {
    /// Connect to `url` (`sqlite:<path>` or `postgres://…`). SQLite files are created when
    /// missing and put in WAL mode with foreign keys on.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    Ok(())
                })
            });
        }
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let pool = options.clone().connect(&url).await?;
        let writer = match backend {
            Backend::Sqlite => options.max_connections(1).connect(&url).await?,
            Backend::Postgres => pool.clone(),
        };
        Ok(Self {
            pool,
            writer,
            backend,
            url: url.into(),
            events_bell: Default::default(),
        })
    }

    /// Apply pending migrations for this backend.
    pub async fn migrate(&self) -> StoreResult<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begin a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a concurrent writer waits its turn (`busy_timeout`) instead of
    /// failing with "database is locked" when this transaction reads before it writes.
    pub async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writer.begin().await?,
        })
    }

    /// The pool single statements that write go through (see the `writer` field).
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// The pool reads go through (writes: [`Db::begin_write`] or [`Db::writer`]).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// On PostgreSQL, a connection listening for `nexum_jobs` notifications (sent when a
    /// job is enqueued, with the queue's name as payload); `None` on SQLite, where one
    /// process owns the queue and wakes its workers in memory.
    pub async fn job_listener(&self) -> StoreResult<Option<sqlx::postgres::PgListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen("nexum_jobs").await?;
        Ok(Some(listener))
    }

    /// The bell rung when this process commits events to the outbox.
    pub fn events_bell(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.events_bell.clone()
    }

    /// Ring [`Db::events_bell`] (after a transaction holding events committed).
    pub(crate) fn events_committed(&self) {
        self.events_bell.notify_one();
    }

    /// A cheap round-trip, for readiness checks.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Current time in unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new prefixed, time-sortable id such as `conn_01j9…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
}

/// One page of a cursor-paginated listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items, in id order.
    pub items: Vec<T>,
    /// Cursor for the next page, when there is one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Build a page from `limit + 1` fetched rows.
    pub(crate) fn from_rows(mut rows: Vec<T>, limit: usize, id: impl Fn(&T) -> String) -> Self {
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(id)
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}
