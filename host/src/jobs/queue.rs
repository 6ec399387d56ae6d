//! The durable queue: background work that must not be lost (webhook deliveries now,
//! workflow executions next) lives in the `jobs` table, not in memory.
//!
//! - **Claim:** a worker claims due jobs with a lease (`FOR UPDATE SKIP LOCKED` on
//!   PostgreSQL, so nodes sharing a database never claim the same job; SQLite serializes
//!   writers in one process). Every change to a claimed job is fenced by its lease token.
//! - **Lease:** a [`QueueHandler`] declares a lease longer than its work can take (its own
//!   timeout plus margin), and a heartbeat extends it every third of the lease while the work
//!   runs, so a slow job is never claimed twice. A node that dies stops heartbeating; its
//!   leases run out and another worker re-claims the jobs (at-least-once).
//! - **Wake-up:** enqueueing wakes this process's workers at once, and on PostgreSQL other
//!   nodes through `LISTEN/NOTIFY` (sent at commit). An idle worker otherwise sleeps until
//!   the next job is due or [`WorkerSettings::idle_poll`] passes (which also picks up jobs
//!   whose lease ran out); it never spins, and a lost database connection is retried with
//!   that same pause.

use crate::store::{ClaimedJob, Db, JobFate, NewJob, StoreResult, now_ms};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};

/// What became of one run of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Finished: the job is removed.
    Done,
    /// Try again at `at_ms` (unix ms); `error` is kept on the job for operators.
    Retry {
        /// When to run it again.
        at_ms: i64,
        /// Why this run failed (no secrets).
        error: String,
    },
    /// Failed for good: the job is removed (the handler has recorded why).
    GiveUp,
    /// Not run now (e.g. a rate limit): run it at `at_ms`, and this claim does not count
    /// as an attempt.
    Defer {
        /// When to run it.
        at_ms: i64,
    },
    /// The handler settled the job itself, under its lease, in the same transaction as its
    /// own writes ([`crate::store::Db::settle_job`]'s fence applies).
    Settled,
}

/// A boxed future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The code that runs the jobs of one queue.
pub trait QueueHandler: Send + Sync + 'static {
    /// The queue it serves, e.g. `webhook.deliver`.
    fn queue(&self) -> &'static str;

    /// How long a claim lasts without a heartbeat: longer than one run can take.
    fn lease(&self) -> Duration;

    /// Run one job.
    fn handle(&self, job: ClaimedJob) -> HandlerFuture;
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Jobs run at once by this worker.
    pub concurrency: usize,
    /// Longest idle sleep between looks at the table.
    pub idle_poll: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 16,
            idle_poll: Duration::from_secs(1),
        }
    }
}

/// Longest a worker waits for more free slots before it claims for the ones it has.
const CLAIM_GATHER: Duration = Duration::from_millis(2);

/// Each local worker's queue name and the bell that wakes it.
type Wakers = Arc<Mutex<Vec<(&'static str, Arc<Notify>)>>>;

/// The queue of one process: enqueue jobs and start workers.
#[derive(Clone)]
pub struct Queue {
    db: Db,
    wakers: Wakers,
}

impl Queue {
    /// The queue over `db`.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            wakers: Arc::default(),
        }
    }

    /// Enqueue one job and wake this process's workers of its queue. Returns whether it was
    /// inserted (`false`: a job with its dedupe key exists).
    pub async fn enqueue(&self, job: &NewJob<'_>) -> StoreResult<bool> {
        let inserted = self.db.enqueue_job(job).await?;
        if inserted {
            self.wake(job.queue);
        }
        Ok(inserted)
    }

    /// Wake the workers of `queue` (after jobs were enqueued in a transaction of its own).
    pub fn wake(&self, queue: &str) {
        for (name, notify) in self.wakers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            if *name == queue {
                notify.notify_one();
            }
        }
    }

    /// Start a worker for `handler`'s queue until `stop` changes; it finishes the jobs it
    /// holds before it ends.
    pub fn spawn_worker(
        &self,
        handler: Arc<dyn QueueHandler>,
        settings: WorkerSettings,
        stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let notify = Arc::new(Notify::new());
        self.wakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((handler.queue(), notify.clone()));
        tokio::spawn(run_worker(self.db.clone(), handler, settings, notify, stop))
    }
}

async fn run_worker(
    db: Db,
    handler: Arc<dyn QueueHandler>,
    settings: WorkerSettings,
    notify: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let queue = handler.queue();
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let lease_ms = handler.lease().as_millis() as i64;
    let mut listener = match db.job_listener().await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(queue, error = %e, "no LISTEN connection; the worker polls instead");
            None
        }
    };
    let concurrency = settings.concurrency.max(1);
    // While jobs run, claim several at once: one claim statement per handful of jobs, not one
    // per job, when jobs are short and plentiful.
    let claim_batch = (concurrency / 4).max(1);
    while !*stop.borrow() {
        let free = slots.available_permits();
        if free == 0 {
            tokio::select! {
                permit = slots.clone().acquire_owned() => drop(permit),
                _ = stop.changed() => break,
            }
            continue;
        }
        if free < claim_batch && free < concurrency {
            tokio::select! {
                permits = slots.acquire_many(claim_batch as u32) => drop(permits),
                _ = tokio::time::sleep(CLAIM_GATHER) => {}
                _ = stop.changed() => break,
            }
        }
        let free = slots.available_permits();
        match db.claim_jobs(queue, free, lease_ms).await {
            Ok(jobs) if !jobs.is_empty() => {
                for job in jobs {
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    let (db, handler) = (db.clone(), handler.clone());
                    tokio::spawn(async move {
                        run_one(&db, handler.as_ref(), job, lease_ms).await;
                        drop(permit);
                    });
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(queue, error = %e, "could not claim jobs; will retry"),
        }
        let mut pause = settings.idle_poll;
        if let Ok(Some(at)) = db.next_job_due(queue).await {
            pause = pause.min(Duration::from_millis((at - now_ms()).max(0) as u64));
        }
        tokio::select! {
            _ = notify.notified() => {}
            _ = notified_by_database(&mut listener, queue) => {}
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => break,
        }
    }
    // Let the jobs in hand finish (their results are recorded) before the worker ends.
    let _ = slots.acquire_many(settings.concurrency.max(1) as u32).await;
}

/// Resolves when PostgreSQL reports a job enqueued on `queue` (never, without a listener).
async fn notified_by_database(listener: &mut Option<sqlx::postgres::PgListener>, queue: &str) {
    let Some(l) = listener else {
        return std::future::pending().await;
    };
    loop {
        match l.recv().await {
            Ok(n) if n.payload() == queue => return,
            Ok(_) => continue,
            Err(e) => {
                // The listener reconnects on its next recv; pause so an outage never spins.
                tracing::warn!(queue, error = %e, "LISTEN connection failed; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
                return;
            }
        }
    }
}

/// Aborts the heartbeat task when dropped, so a handler that panics (its task unwinds
/// through this) stops renewing its lease and the job is re-claimed when the lease runs out.
struct HeartbeatGuard(tokio::task::JoinHandle<()>);

impl Drop for HeartbeatGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Run one claimed job with a heartbeat, then record its outcome under its lease.
async fn run_one(db: &Db, handler: &dyn QueueHandler, job: ClaimedJob, lease_ms: i64) {
    let heartbeat = HeartbeatGuard({
        let (db, job) = (db.clone(), job.clone());
        let every = Duration::from_millis((lease_ms / 3).max(1) as u64);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match db.heartbeat_job(&job, lease_ms).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job = %job.id, "lease lost while the job ran");
                        return;
                    }
                    Err(e) => tracing::warn!(job = %job.id, error = %e, "heartbeat failed"),
                }
            }
        })
    });
    let outcome = handler.handle(job.clone()).await;
    drop(heartbeat);
    let fate = match outcome {
        Outcome::Settled => return,
        Outcome::Done | Outcome::GiveUp => JobFate::Remove,
        Outcome::Retry { at_ms, error } => JobFate::Retry { run_at: at_ms, error },
        Outcome::Defer { at_ms } => JobFate::Defer { run_at: at_ms },
    };
    let recorded = db.settle_job(&job, &fate).await;
    match recorded {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(job = %job.id, "lease lost before the outcome was recorded; another claim holds the job")
        }
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "could not record a job's outcome; its lease will run out and it runs again")
        }
    }
}
