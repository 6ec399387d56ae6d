//! Rows of the durable job queue (`jobs`). The claim is one statement: on PostgreSQL it
//! takes due rows with `FOR UPDATE SKIP LOCKED`, so nodes sharing the database never claim
//! the same job; SQLite serializes writers, so the same statement without the lock clause
//! has the same meaning in one process. Every later change to a claimed job is fenced by its
//! lease token: a node whose lease ran out (and whose job was re-claimed) changes nothing.

use super::{Backend, Db, StoreResult, new_id, now_ms};

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// The queue (the kind of work), e.g. `webhook.deliver`.
    pub queue: &'a str,
    /// Enqueueing a second job with the same key on the same queue does nothing.
    pub dedupe_key: Option<&'a str>,
    /// What the handler needs (JSON, never a secret).
    pub payload: &'a str,
    /// Unix ms before which it is not claimed.
    pub run_at: i64,
}

/// A job a node holds a lease on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    /// `job_…`.
    pub id: String,
    /// Its queue.
    pub queue: String,
    /// Its dedupe key.
    pub dedupe_key: Option<String>,
    /// Its payload.
    pub payload: String,
    /// Unix ms it was due.
    pub run_at: i64,
    /// Claims so far, this one included.
    pub attempts: i64,
    /// Unix ms it was enqueued.
    pub created_at: i64,
    /// The token that fences this claim.
    pub lease_token: String,
}

/// The claim statement; `$lock` is the row-lock clause of the inner select.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs SET lease_token = $1, lease_until = $2, attempts = attempts + 1 WHERE id IN (",
            "SELECT id FROM jobs WHERE queue = $3 AND run_at <= $4 AND (lease_until IS NULL OR lease_until <= $4) ORDER BY run_at, id LIMIT $5",
            $lock,
            ") RETURNING id, queue, dedupe_key, payload, run_at, attempts, created_at, lease_token"
        )
    };
}

/// Append a job on an open connection or transaction (so it commits with the change that
/// caused it). Returns whether a row was inserted (`false`: the dedupe key exists).
pub(crate) async fn insert_job(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    job: &NewJob<'_>,
) -> StoreResult<bool> {
    let inserted = sqlx::query(
        "INSERT INTO jobs (id, queue, dedupe_key, payload, run_at, attempts, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT (queue, dedupe_key) DO NOTHING",
    )
    .bind(new_id("job"))
    .bind(job.queue)
    .bind(job.dedupe_key)
    .bind(job.payload)
    .bind(job.run_at)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        notify_enqueued(conn, backend, job.queue).await?;
    }
    Ok(inserted)
}

/// On PostgreSQL, tell every node's workers of `queue` that jobs were enqueued. Delivered at
/// commit, so a listener never wakes before the rows are visible. (SQLite: one process, woken
/// in memory.)
pub(crate) async fn notify_enqueued(conn: &mut sqlx::AnyConnection, backend: Backend, queue: &str) -> StoreResult<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_notify('nexum_jobs', $1)")
            .bind(queue)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// What becomes of a claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFate {
    /// Done (or given up): the job is removed.
    Remove,
    /// Run it again at `run_at` (unix ms); `error` says why this run failed (no secrets).
    Retry {
        /// When.
        run_at: i64,
        /// Why.
        error: String,
    },
    /// Run it at `run_at` without counting this claim as an attempt (e.g. a rate limit).
    Defer {
        /// When.
        run_at: i64,
    },
}

/// Settle a claimed job on an open connection or transaction, fenced by its lease token.
/// Returns whether the lease was still held.
pub(crate) async fn settle_job_in(
    conn: &mut sqlx::AnyConnection,
    job: &ClaimedJob,
    fate: &JobFate,
) -> StoreResult<bool> {
    let done = match fate {
        JobFate::Remove => {
            sqlx::query("DELETE FROM jobs WHERE id = $1 AND lease_token = $2")
                .bind(&job.id)
                .bind(&job.lease_token)
                .execute(&mut *conn)
                .await?
        }
        JobFate::Retry { run_at, error } => {
            sqlx::query(
                "UPDATE jobs SET run_at = $1, lease_token = NULL, lease_until = NULL, last_error = $2 WHERE id = $3 AND lease_token = $4",
            )
            .bind(run_at)
            .bind(error.chars().take(1000).collect::<String>())
            .bind(&job.id)
            .bind(&job.lease_token)
            .execute(&mut *conn)
            .await?
        }
        JobFate::Defer { run_at } => {
            sqlx::query(
                "UPDATE jobs SET run_at = $1, lease_token = NULL, lease_until = NULL, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END WHERE id = $2 AND lease_token = $3",
            )
            .bind(run_at)
            .bind(&job.id)
            .bind(&job.lease_token)
            .execute(&mut *conn)
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

impl Db {
    /// Enqueue one job on its own. Returns whether it was inserted.
    pub async fn enqueue_job(&self, job: &NewJob<'_>) -> StoreResult<bool> {
        let mut conn = self.writer().acquire().await?;
        insert_job(&mut conn, self.backend(), job).await
    }

    /// Claim up to `limit` due jobs of `queue` for `lease_ms`: no other claim sees them
    /// until the lease runs out.
    pub async fn claim_jobs(&self, queue: &str, limit: usize, lease_ms: i64) -> StoreResult<Vec<ClaimedJob>> {
        let now = now_ms();
        let token = new_id("lease");
        let sql = match self.backend() {
            Backend::Postgres => claim_sql!(" FOR UPDATE SKIP LOCKED"),
            Backend::Sqlite => claim_sql!(""),
        };
        let mut jobs: Vec<ClaimedJob> = sqlx::query_as(sql)
            .bind(&token)
            .bind(now + lease_ms)
            .bind(queue)
            .bind(now)
            .bind(limit as i64)
            .fetch_all(self.writer())
            .await?;
        jobs.sort_by(|a, b| (a.run_at, &a.id).cmp(&(b.run_at, &b.id)));
        Ok(jobs)
    }

    /// Extend a held lease to `lease_ms` from now. `false`: the lease was lost.
    pub async fn heartbeat_job(&self, job: &ClaimedJob, lease_ms: i64) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_token = $3")
            .bind(now_ms() + lease_ms)
            .bind(&job.id)
            .bind(&job.lease_token)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Settle a claimed job: remove it, or release it to run again. `false`: the lease was
    /// lost (another claim holds the job) and nothing changed.
    pub async fn settle_job(&self, job: &ClaimedJob, fate: &JobFate) -> StoreResult<bool> {
        let mut conn = self.writer().acquire().await?;
        settle_job_in(&mut conn, job, fate).await
    }

    /// Jobs waiting in `queue` (claimed or not).
    pub async fn count_jobs(&self, queue: &str) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM jobs WHERE queue = $1")
            .bind(queue)
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }

    /// Unix ms of the earliest not-yet-due job of `queue`, to sleep until then.
    pub async fn next_job_due(&self, queue: &str) -> StoreResult<Option<i64>> {
        let (at,): (Option<i64>,) =
            sqlx::query_as("SELECT MIN(run_at) FROM jobs WHERE queue = $1 AND lease_token IS NULL")
                .bind(queue)
                .fetch_one(self.pool())
                .await?;
        Ok(at)
    }
}
