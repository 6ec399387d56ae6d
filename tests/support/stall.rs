//! An upstream that holds requests without answering: the first `hold` requests wait
//! (until [`Stall::release`] or the test ends), every later one gets `{"ok":true}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// A running stalling upstream on 127.0.0.1.
#[derive(Clone)]
pub struct Stall {
    /// `http://127.0.0.1:<port>`.
    pub origin: String,
    arrived: Arc<AtomicUsize>,
    release: Arc<Notify>,
}

impl Stall {
    /// Start one that holds the first `hold` requests.
    pub async fn start(hold: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let arrived = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let (counter, released) = (arrived.clone(), release.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (counter, released) = (counter.clone(), released.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let _ = socket.read(&mut buf).await;
                    if counter.fetch_add(1, Ordering::SeqCst) < hold {
                        released.notified().await;
                        return;
                    }
                    let body = r#"{"ok":true}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Self {
            origin,
            arrived,
            release,
        }
    }

    /// Requests that arrived so far.
    pub fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }

    /// Wait until at least `n` requests arrived (panics after a minute).
    pub async fn wait_for(&self, n: usize) {
        let started = Instant::now();
        while self.arrived() < n {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "only {} of {n} requests arrived",
                self.arrived()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Close every held request without an answer.
    pub fn release(&self) {
        self.release.notify_waiters();
    }
}
