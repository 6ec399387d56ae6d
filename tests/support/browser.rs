//! Headless Chromium for the console's tests, driven over WebDriver: Debian's `chromedriver`
//! started on a free loopback port, one fresh browser profile per test, and screenshots saved
//! under `target/console-screenshots/` as artifacts.
//!
//! Without `chromedriver` the tests are skipped with a message, unless
//! `NEXUM_REQUIRE_CHROMIUM=1` (CI sets it after installing the packages), when they fail.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where Debian puts the driver and the browser.
const DRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A running chromedriver and one browser session on it; both end when dropped.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Whether the browser tests can run here; panics when CI requires them and they cannot.
pub fn available() -> bool {
    let present = std::path::Path::new(DRIVER).exists() && std::path::Path::new(CHROMIUM).exists();
    if !present {
        assert!(
            std::env::var("NEXUM_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "NEXUM_REQUIRE_CHROMIUM=1 but {DRIVER} or {CHROMIUM} is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipping a browser test: install Debian's chromium and chromium-driver to run it");
    }
    present
}

impl Browser {
    /// Start chromedriver and open a headless browser (1280×900, its own temporary profile).
    pub async fn start() -> Self {
        let port = free_port();
        let driver = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-proxy-server", "--no-first-run"],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            builder.capabilities(capabilities.clone());
            match builder.connect(&url).await {
                Ok(client) => return Self { client, driver },
                Err(e) => last = Some(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no WebDriver session on {url}: {last:?}");
    }

    /// Open `url`.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The element with this CSS selector (fails the test, with the page's text, if absent).
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("no `{css}` on {}: {e}\n{}", self.url().await, self.text().await),
        }
    }

    /// Whether an element matches this CSS selector.
    pub async fn has(&self, css: &str) -> bool {
        self.client
            .find_all(Locator::Css(css))
            .await
            .is_ok_and(|found| !found.is_empty())
    }

    /// Type into the field with this CSS selector (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Click the element with this CSS selector (a link or a form's button) and wait until
    /// the page it leads to has loaded.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.mark_page().await;
        element.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
        self.wait_for_new_page(css).await;
    }

    /// Run `script` (which navigates, e.g. submits a form) and wait for the new page.
    pub async fn navigate_by_script(&self, script: &str, args: Vec<serde_json::Value>) {
        self.mark_page().await;
        self.client.execute(script, args).await.expect("script runs");
        self.wait_for_new_page("a script").await;
    }

    /// Tag the current document, so a new one can be told from it.
    async fn mark_page(&self) {
        self.client
            .execute("window.__nexumOldPage = true;", vec![])
            .await
            .expect("mark the page");
    }

    /// Wait until the tagged document is gone and its successor has loaded.
    async fn wait_for_new_page(&self, what: &str) {
        for _ in 0..300 {
            let fresh = self
                .client
                .execute(
                    "return window.__nexumOldPage !== true && document.readyState === 'complete';",
                    vec![],
                )
                .await;
            if fresh.is_ok_and(|v| v == serde_json::Value::Bool(true)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {what} led to no new page (still on {})", self.url().await);
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Save a screenshot as `target/console-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }

    /// End the session.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// `target/console-screenshots` of this workspace (or `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("console-screenshots")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
