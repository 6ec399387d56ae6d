//! Group commit: many callers' writes in one transaction. Each caller waits until its item
//! is committed; every item that arrives while a commit runs shares the next one. Used for
//! the audit log (a `secret.use` record is durable before the call runs) and for finished
//! webhook deliveries (the attempt log and the job's fate, together).

use super::{Db, StoreResult};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Writes one batch in one transaction.
pub type BatchWrite<T> = Arc<dyn Fn(Db, Vec<T>) -> Pin<Box<dyn Future<Output = StoreResult<()>> + Send>> + Send + Sync>;

/// A running group-commit writer for items of type `T`.
pub struct GroupCommit<T> {
    queue: mpsc::Sender<(T, oneshot::Sender<bool>)>,
}

impl<T> Clone for GroupCommit<T> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<T: Send + 'static> GroupCommit<T> {
    /// Start the writer task (it ends when the last handle is dropped): at most `max` items
    /// per transaction, written by `write`; `what` names them in logs.
    pub fn start(db: Db, what: &'static str, max: usize, write: BatchWrite<T>) -> Self {
        let (queue, mut incoming) = mpsc::channel::<(T, oneshot::Sender<bool>)>(max * 8);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max);
            while incoming.recv_many(&mut batch, max).await > 0 {
                let (items, waiting): (Vec<T>, Vec<oneshot::Sender<bool>>) = batch.drain(..).unzip();
                let count = items.len();
                let written = match write(db.clone(), items).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(error = %e, items = count, what, "a group commit failed");
                        false
                    }
                };
                for done in waiting {
                    let _ = done.send(written);
                }
            }
        });
        Self { queue }
    }

    /// Submit `item` and wait until it is committed: `false` when the write failed or took
    /// longer than `patience`.
    pub async fn submit(&self, item: T, patience: Duration) -> bool {
        let (done, committed) = oneshot::channel();
        let submitted = async {
            self.queue.send((item, done)).await.ok()?;
            committed.await.ok()
        };
        matches!(tokio::time::timeout(patience, submitted).await, Ok(Some(true)))
    }
}
