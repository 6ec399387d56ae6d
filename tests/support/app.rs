//! `TestApp`: a real `nexum serve` (in-process) on 127.0.0.1:0 over SQLite or PostgreSQL,
//! plus a reqwest client and helpers that speak the API the way a user would.
//!
//! Each Postgres app gets its own schema in the `test` database (`search_path`), so tests run
//! in parallel without seeing each other. Set `NEXUM_TEST_POSTGRES_URL` to use another server
//! (default `postgres://postgres@127.0.0.1:5432/test`).

use crate::fakes::{Fake, SLACK_TOKEN};
use nexum_host::config::Config;
use nexum_host::server::{self, Server};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Which database a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the app's data directory.
    Sqlite,
    /// A fresh schema in the local PostgreSQL.
    Postgres,
}

/// A response, decoded.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// JSON body (`Null` when empty or not JSON).
    pub body: Value,
}

impl Reply {
    /// The problem `code` of an error response.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

/// A running server and a client for it.
pub struct TestApp {
    /// The server (shut down with [`TestApp::shutdown`]).
    pub server: Option<Server>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The bootstrap (operator) key of the first workspace.
    pub key: String,
    /// Which database.
    pub backend: Backend,
    /// The data directory (SQLite file, key file, artifacts).
    pub data_dir: tempfile::TempDir,
    /// The database URL.
    pub database_url: String,
    client: reqwest::Client,
}

/// The settings every test server starts from: loopback only (127.0.0.0/8 allowed for the
/// fakes), unsigned connectors allowed, no timers (tests run jobs with `run_job_now`).
pub fn test_config(data_dir: &std::path::Path, database_url: &str) -> Config {
    let env: HashMap<&str, String> = HashMap::from([
        ("NEXUM_DATA_DIR", data_dir.display().to_string()),
        ("NEXUM_LISTEN", "127.0.0.1:0".into()),
        ("DATABASE_URL", database_url.to_string()),
        ("NEXUM_ALLOW_RANGES", "127.0.0.0/8".into()),
        ("NEXUM_HEALTH_CHECK_INTERVAL_SECS", "0".into()),
        ("NEXUM_MAX_CONCURRENT_CALLS", "16".into()),
        ("NEXUM_ALLOW_UNSIGNED_CONNECTORS", "true".into()),
        ("NEXUM_OAUTH_REFRESH_SWEEP_SECS", "0".into()),
        ("NEXUM_OAUTH_RETURN_ORIGINS", "http://127.0.0.1:9".into()),
    ]);
    Config::load(None, |k| env.get(k).cloned()).expect("config")
}

/// The Postgres URL tests use.
pub fn postgres_url() -> String {
    std::env::var("NEXUM_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl TestApp {
    /// Start on `backend` with default test settings.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Start on `backend`, adjusting the typed settings first (for example
    /// `|c| c.health_check_interval_secs = 1`).
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite:{}", data_dir.path().join("nexum.db").display()),
            Backend::Postgres => fresh_postgres_schema().await,
        };
        Self::start_on(backend, data_dir, database_url, configure).await
    }

    /// Start a server on an existing data directory and database (a second node, or a
    /// restart), adjusting the typed settings first.
    pub async fn start_on(
        backend: Backend,
        data_dir: tempfile::TempDir,
        database_url: String,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = test_config(data_dir.path(), &database_url);
        configure(&mut config);
        let state = server::build_state(config).await.expect("server state");
        let key = server::bootstrap(&state).await.expect("bootstrap").unwrap_or_default();
        let server = Server::start(state).await.expect("server starts");
        let base = format!("http://{}", server.addr);
        let client = reqwest::Client::builder().no_proxy().build().expect("client");
        Self {
            server: Some(server),
            base,
            key,
            backend,
            data_dir,
            database_url,
            client,
        }
    }

    /// Run a background job once, now, instead of waiting for its timer (see
    /// `nexum_host::jobs::all` for the names).
    pub async fn run_job_now(&self, name: &str) -> nexum_host::jobs::JobReport {
        nexum_host::jobs::run_now(self.state(), name)
            .await
            .unwrap_or_else(|e| panic!("job {name} failed: {e}"))
    }

    /// SQLite app.
    pub async fn sqlite() -> Self {
        Self::start(Backend::Sqlite).await
    }

    /// Postgres app.
    pub async fn postgres() -> Self {
        Self::start(Backend::Postgres).await
    }

    /// Another node on this app's database, with its own data directory and the same master
    /// key, adjusting the typed settings first. (Its `key` is empty: use the first node's.)
    pub async fn second_node(&self, configure: impl FnOnce(&mut Config)) -> Self {
        let key_file = self.data_dir.path().join("master.keys");
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_on(self.backend, dir, self.database_url.clone(), |c| {
            c.master_key_file = key_file;
            configure(c);
        })
        .await
    }

    /// A client for a server running elsewhere (a child process): no in-process state, so
    /// [`TestApp::state`] is unavailable.
    pub fn attach(base: &str, key: &str, backend: Backend, database_url: &str) -> Self {
        nexum_host::tls::install_crypto_provider();
        Self {
            server: None,
            base: base.to_string(),
            key: key.to_string(),
            backend,
            data_dir: tempfile::tempdir().expect("tempdir"),
            database_url: database_url.to_string(),
            client: reqwest::Client::builder().no_proxy().build().expect("client"),
        }
    }

    /// Shut the server down gracefully; returns the data directory for a restart.
    pub async fn shutdown(mut self) -> (tempfile::TempDir, String) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        (self.data_dir, self.database_url)
    }

    /// The server's state (for reaching into the database in tests).
    pub fn state(&self) -> &std::sync::Arc<nexum_host::state::AppState> {
        &self.server.as_ref().expect("running").state
    }

    /// Send a request with `key` (none = unauthenticated).
    pub async fn request(&self, method: reqwest::Method, path: &str, key: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        reply(req.send().await.expect("request sent")).await
    }

    /// GET with a key.
    pub async fn get(&self, key: &str, path: &str) -> Reply {
        self.request(reqwest::Method::GET, path, Some(key), None).await
    }

    /// POST JSON with a key.
    pub async fn post(&self, key: &str, path: &str, body: Value) -> Reply {
        self.request(reqwest::Method::POST, path, Some(key), Some(body)).await
    }

    /// PATCH JSON with a key.
    pub async fn patch(&self, key: &str, path: &str, body: Value) -> Reply {
        self.request(reqwest::Method::PATCH, path, Some(key), Some(body)).await
    }

    /// DELETE with a key.
    pub async fn delete(&self, key: &str, path: &str) -> Reply {
        self.request(reqwest::Method::DELETE, path, Some(key), None).await
    }

    /// POST a raw body with headers.
    pub async fn post_raw(&self, key: &str, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.send().await.expect("request sent")).await
    }

    /// Install a first-party connector from `plugins/` the way the README shows (multipart).
    pub async fn install(&self, key: &str, connector: &str) -> Reply {
        let (wasm, manifest) = crate::plugins::connector(connector);
        let parsed = nexum_manifest::Manifest::parse(&manifest).expect("manifest");
        let accept = serde_json::to_string(&nexum_marketplace::permissions::Permissions::of(&parsed)).expect("json");
        let form = reqwest::multipart::Form::new()
            .text("accept_permissions", accept)
            .text("manifest", manifest)
            .part(
                "component",
                reqwest::multipart::Part::bytes(wasm).file_name("connector.wasm"),
            );
        let response = self
            .client
            .post(format!("{}/api/v1/connectors", self.base))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .await
            .expect("upload sent");
        reply(response).await
    }

    /// Force a refresh of OAuth2 connection `connection`'s token
    /// (`POST /api/v1/connections/{id}/refresh`).
    pub async fn force_refresh(&self, key: &str, connection: &str) -> Reply {
        self.post(key, &format!("/api/v1/connections/{connection}/refresh"), json!({}))
            .await
    }

    /// Install Slack and connect it to `fake` with the fake's token; returns the connection id.
    pub async fn connect_slack(&self, key: &str, fake: &Fake) -> String {
        let installed = self.install(key, "slack").await;
        assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
        let created = self
            .post(
                key,
                "/api/v1/connections",
                json!({ "connector": "slack", "name": "Acme", "credentials": { "token": SLACK_TOKEN }, "variables": { "api_base": fake.origin() } }),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        created.body["id"].as_str().expect("id").to_string()
    }

    /// Create a second workspace; returns its owner key.
    pub async fn new_workspace(&self, name: &str) -> String {
        let created = self
            .post(
                &self.key,
                "/api/v1/workspaces",
                json!({ "name": name, "owner_email": format!("owner@{name}.test") }),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        created.body["owner_key"]["key"].as_str().expect("key").to_string()
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, body }
}

/// Create an empty schema and return a URL whose connections use it.
pub async fn fresh_postgres_schema() -> String {
    let base = postgres_url();
    let schema = format!("t_{}", ulid_like());
    let admin = nexum_host::store::Db::connect(&base, 1).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {base} is required for the Postgres tests (set NEXUM_TEST_POSTGRES_URL): {e}")
    });
    sqlx_exec(&admin, &format!("CREATE SCHEMA {schema}")).await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

async fn sqlx_exec(db: &nexum_host::store::Db, sql: &str) {
    use sqlx::Executor;
    db.pool()
        .execute(sqlx::AssertSqlSafe(sql.to_string()))
        .await
        .expect("schema created");
}

fn ulid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}{}", t, std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

impl TestApp {
    /// Upload a bundle with an explicit acceptance (`None` sends none).
    pub async fn install_bundle(
        &self,
        key: &str,
        bundle: Vec<u8>,
        accept: Option<&nexum_marketplace::permissions::Permissions>,
    ) -> Reply {
        let mut form =
            reqwest::multipart::Form::new().part("bundle", reqwest::multipart::Part::bytes(bundle).file_name("c.nxb"));
        if let Some(a) = accept {
            form = form.text("accept_permissions", serde_json::to_string(a).expect("json"));
        }
        let response = self
            .client
            .post(format!("{}/api/v1/connectors", self.base))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .await
            .expect("upload sent");
        reply(response).await
    }

    /// Publish a bundle to this server's marketplace under `namespace`.
    pub async fn publish(&self, key: &str, namespace: &str, bundle: Vec<u8>) -> Reply {
        let response = self
            .client
            .post(format!(
                "{}/api/v1/marketplace/packages?namespace={namespace}",
                self.base
            ))
            .bearer_auth(key)
            .header("content-type", "application/octet-stream")
            .body(bundle)
            .send()
            .await
            .expect("publish sent");
        reply(response).await
    }

    /// List the built-in connector catalogue and the starter templates in this server's
    /// registry, as `nexum serve` does at every start.
    pub async fn seed_catalogue(&self) {
        server::seed_catalogue(self.state()).await;
    }

    /// Install `nexum/<connector>` from the built-in catalogue (seed first), accepting the
    /// permissions its listing shows.
    pub async fn install_catalogue(&self, key: &str, connector: &str) -> Reply {
        let listing = self
            .get(key, &format!("/api/v1/marketplace/packages/nexum/{connector}"))
            .await;
        assert_eq!(listing.status, StatusCode::OK, "{:?}", listing.body);
        self.post(
            key,
            "/api/v1/connectors/from-marketplace",
            json!({ "package": format!("nexum/{connector}"), "accept_permissions": listing.body["permissions"] }),
        )
        .await
    }

    /// Publish a template bundle to this server's registry under `namespace`.
    pub async fn publish_template(&self, key: &str, namespace: &str, bundle: Vec<u8>, private: bool) -> Reply {
        // Always explicit, so a test states the visibility it publishes with.
        self.post_raw(
            key,
            &format!("/api/v1/templates?namespace={namespace}&private={private}"),
            bundle,
            &[("content-type", "application/octet-stream")],
        )
        .await
    }
}
