//! The durable job queue: idempotent enqueue, leases that hide a claimed job and fence a
//! holder whose lease ran out, workers that run every job once and wake on enqueue, and two
//! nodes on one PostgreSQL claiming each job exactly once.

use nexum_host::jobs::{Outcome, Queue, QueueHandler, WorkerSettings};
use nexum_host::store::{ClaimedJob, Db, JobFate, NewJob};
use nexum_tests::app::TestApp;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

on_both_databases!(
    enqueue_is_idempotent_per_dedupe_key,
    a_lease_hides_a_job_and_fences_a_holder_whose_lease_ran_out,
    workers_run_every_job_once_and_retry_when_asked
);

fn job<'a>(queue: &'a str, key: Option<&'a str>, payload: &'a str) -> NewJob<'a> {
    NewJob {
        queue,
        dedupe_key: key,
        payload,
        run_at: 0,
    }
}

async fn enqueue_is_idempotent_per_dedupe_key(app: TestApp) {
    let db = &app.state().db;
    assert!(db.enqueue_job(&job("q.a", Some("msg_1"), "{}")).await.expect("enqueue"));
    assert!(!db.enqueue_job(&job("q.a", Some("msg_1"), "{}")).await.expect("enqueue"));
    assert!(db.enqueue_job(&job("q.b", Some("msg_1"), "{}")).await.expect("enqueue"));
    assert!(db.enqueue_job(&job("q.a", None, "{}")).await.expect("enqueue"));
    assert!(db.enqueue_job(&job("q.a", None, "{}")).await.expect("enqueue"));
    assert_eq!(db.count_jobs("q.a").await.expect("count"), 3);
    app.shutdown().await;
}

async fn a_lease_hides_a_job_and_fences_a_holder_whose_lease_ran_out(app: TestApp) {
    let db = &app.state().db;
    db.enqueue_job(&job("q.lease", Some("one"), r#"{"n":1}"#))
        .await
        .expect("enqueue");

    let held = db.claim_jobs("q.lease", 10, 60_000).await.expect("claim");
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].payload.as_str(), held[0].attempts), (r#"{"n":1}"#, 1));
    assert!(
        db.claim_jobs("q.lease", 10, 60_000).await.expect("claim").is_empty(),
        "a leased job was claimed twice"
    );

    // Released for a retry now: claimable again, with the attempt counted.
    assert!(
        db.settle_job(
            &held[0],
            &JobFate::Retry {
                run_at: 0,
                error: "upstream 503".into()
            }
        )
        .await
        .expect("retry")
    );
    let dead = db.claim_jobs("q.lease", 10, 0).await.expect("claim").remove(0);
    assert_eq!(dead.attempts, 2);
    // That claim's lease ran out at once (a node that died): another worker re-claims it…
    let alive = db.claim_jobs("q.lease", 10, 60_000).await.expect("claim").remove(0);
    assert_eq!((alive.id.as_str(), alive.attempts), (dead.id.as_str(), 3));
    // …and the old holder can no longer touch it.
    assert!(!db.heartbeat_job(&dead, 60_000).await.expect("heartbeat"));
    assert!(!db.settle_job(&dead, &JobFate::Remove).await.expect("complete"));
    assert!(
        !db.settle_job(
            &dead,
            &JobFate::Retry {
                run_at: 0,
                error: "late".into()
            }
        )
        .await
        .expect("retry")
    );
    assert!(!db.settle_job(&held[0], &JobFate::Remove).await.expect("complete"));
    assert_eq!(db.count_jobs("q.lease").await.expect("count"), 1);
    // The live holder's outcome counts.
    assert!(db.heartbeat_job(&alive, 60_000).await.expect("heartbeat"));
    assert!(db.settle_job(&alive, &JobFate::Remove).await.expect("complete"));
    assert_eq!(db.count_jobs("q.lease").await.expect("count"), 0);
    app.shutdown().await;
}

/// Records every run; fails the first run of payload `"retry"` once.
struct Recorder {
    runs: Arc<Mutex<Vec<(String, i64)>>>,
    done: Arc<tokio::sync::Notify>,
}

impl QueueHandler for Recorder {
    fn queue(&self) -> &'static str {
        "q.work"
    }

    fn lease(&self) -> Duration {
        Duration::from_secs(30)
    }

    fn handle(&self, job: ClaimedJob) -> nexum_host::jobs::queue::HandlerFuture {
        let (runs, done) = (self.runs.clone(), self.done.clone());
        Box::pin(async move {
            runs.lock().expect("lock").push((job.payload.clone(), job.attempts));
            done.notify_one();
            if job.payload == "retry" && job.attempts == 1 {
                Outcome::Retry {
                    at_ms: 0,
                    error: "try again".into(),
                }
            } else {
                Outcome::Done
            }
        })
    }
}

async fn workers_run_every_job_once_and_retry_when_asked(app: TestApp) {
    let db = app.state().db.clone();
    let queue = Queue::new(db.clone());
    let runs = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(tokio::sync::Notify::new());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    // A long idle poll: only the wake-up on enqueue can start these jobs in time.
    let worker = queue.spawn_worker(
        Arc::new(Recorder {
            runs: runs.clone(),
            done: done.clone(),
        }),
        WorkerSettings {
            concurrency: 4,
            idle_poll: Duration::from_secs(3600),
        },
        stop,
    );
    let mut expected = BTreeSet::new();
    for i in 0..40 {
        let payload = format!("job-{i}");
        queue
            .enqueue(&job("q.work", Some(&payload), &payload))
            .await
            .expect("enqueue");
        expected.insert(payload);
    }
    queue.enqueue(&job("q.work", None, "retry")).await.expect("enqueue");
    let finished = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if runs.lock().expect("lock").len() >= 42 && db.count_jobs("q.work").await.expect("count") == 0 {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), done.notified()).await;
        }
    })
    .await;
    let runs = runs.lock().expect("lock").clone();
    assert!(finished.is_ok(), "jobs left undone: {} runs recorded", runs.len());
    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (payload, attempts) in runs {
        seen.entry(payload).or_default().push(attempts);
    }
    assert_eq!(
        seen.remove("retry"),
        Some(vec![1, 2]),
        "the retried job runs twice, as attempts 1 and 2"
    );
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert!(
        seen.values().all(|a| a == &vec![1]),
        "a job ran more than once: {seen:?}"
    );
    stop_tx.send(true).expect("stop");
    worker.await.expect("worker ends");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_claim_each_job_exactly_once() {
    let app = TestApp::postgres().await;
    let one = app.state().db.clone();
    let two = Db::connect(&app.database_url, 4).await.expect("second node's pool");
    for i in 0..300 {
        one.enqueue_job(&job("q.nodes", Some(&format!("m{i}")), "{}"))
            .await
            .expect("enqueue");
    }
    let claim_all = |db: Db| async move {
        let mut mine = Vec::new();
        loop {
            let batch = db.claim_jobs("q.nodes", 7, 600_000).await.expect("claim");
            if batch.is_empty() {
                return mine;
            }
            mine.extend(batch);
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(claim_all(one.clone())),
        tokio::spawn(claim_all(two.clone()))
    );
    let (a, b) = (a.expect("node one"), b.expect("node two"));
    let ids_a: BTreeSet<_> = a.iter().map(|j| j.id.clone()).collect();
    let ids_b: BTreeSet<_> = b.iter().map(|j| j.id.clone()).collect();
    assert_eq!(ids_a.len(), a.len(), "node one claimed a job twice");
    assert_eq!(ids_b.len(), b.len(), "node two claimed a job twice");
    assert!(ids_a.is_disjoint(&ids_b), "a job was held by both nodes at once");
    assert_eq!(ids_a.len() + ids_b.len(), 300, "a job was never claimed");
    for j in a.iter().chain(b.iter()) {
        assert!(one.settle_job(j, &JobFate::Remove).await.expect("complete"));
    }
    assert_eq!(one.count_jobs("q.nodes").await.expect("count"), 0);
    app.shutdown().await;
}
