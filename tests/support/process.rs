//! The real `nexum serve` binary as a child process, for what only a real process can show:
//! what survives `kill -9`. It prints its address (and, on first start, the operator key)
//! on stdout; [`NexumProcess::start`] waits for both. Its log goes to `serve.log` in the
//! data directory.

use crate::app::{Backend, TestApp};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nexum serve`.
pub struct NexumProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The operator key printed on first start (`None` on a restart).
    pub first_key: Option<String>,
}

impl NexumProcess {
    /// Start `binary serve` on `data_dir` and `database_url` with test settings (loopback
    /// fakes reachable, unsigned connectors allowed, no timers) plus `extra` variables.
    pub fn start(binary: &Path, data_dir: &Path, database_url: &str, extra: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NEXUM_DATA_DIR", data_dir)
            .env("DATABASE_URL", database_url)
            .env("NEXUM_LISTEN", "127.0.0.1:0")
            .env("NEXUM_ALLOW_RANGES", "127.0.0.0/8")
            .env("NEXUM_ALLOW_UNSIGNED_CONNECTORS", "true")
            .env("NEXUM_HEALTH_CHECK_INTERVAL_SECS", "0")
            .env("NEXUM_OAUTH_REFRESH_SWEEP_SECS", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(data_dir.join("serve.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::inherit()),
            );
        for (k, v) in extra {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("nexum serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut first_key = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = received.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("nexum serve did not report listening (see serve.log in its data directory)");
            };
            if let Some(key) = line.trim().strip_prefix("export NEXUM_API_KEY=") {
                first_key = Some(key.to_string());
            }
            if let Some(addr) = line.strip_prefix("nexum listening on ") {
                return Self {
                    child,
                    base: addr.trim().to_string(),
                    first_key,
                };
            }
        }
    }

    /// A client for this process, acting with `key`.
    pub fn app(&self, key: &str, backend: Backend, database_url: &str) -> TestApp {
        TestApp::attach(&self.base, key, backend, database_url)
    }

    /// `kill -9`: no shutdown hook, no flush, nothing.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL sent");
        self.child.wait().expect("reaped");
    }
}

impl Drop for NexumProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
