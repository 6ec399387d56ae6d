//! The `nexum` command line: the server, its admin tasks, and the connector author's harness.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use nexum_host::auth::{ALL_SCOPES, Scope, generate_key};
use nexum_host::author;
use nexum_host::config::{Config, LogFormat};
use nexum_host::harness::{self, RunOptions};
use nexum_host::runtime::Invocation;
use nexum_host::server;
use nexum_host::store::{AuditEntry, NewApiKey, new_id, now_ms};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Nexum: an integration hub whose connectors are sandboxed WebAssembly components.
#[derive(Parser)]
#[command(name = "nexum", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (SQLite in ./nexum-data by default; DATABASE_URL=postgres://… to scale out).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(ServeArgs),
    /// Administrative tasks against the configured database.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Master-key management.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Work with connectors: scaffold, run locally, build, sign, inspect, publish.
    #[command(subcommand)]
    Connector(ConnectorCommand),
    /// Make a publisher signing key pair (publisher.key + publisher.pub).
    Keygen {
        /// Directory for the key files.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Run a standalone marketplace registry that many hosts can share.
    #[command(subcommand)]
    Marketplace(MarketplaceCommand),
    /// Work with workflow templates: scaffold, validate, sign, publish.
    #[command(subcommand)]
    Template(TemplateCommand),
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// Scaffold a template directory (template.json + README.md) that validates out of the box.
    New {
        /// Template id (a-z, 0-9, -; starting with a letter).
        name: String,
        /// Where to create it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Check a template directory as the registry will; every problem names its field.
    Validate {
        /// The template directory (holding template.json).
        dir: PathBuf,
    },
    /// Validate, pack and sign a template directory into a .nxt bundle.
    Sign {
        /// The template directory.
        dir: PathBuf,
        /// Secret key file (from `nexum keygen`, or a minisign key with NEXUM_SIGNING_KEY_PASSWORD).
        #[arg(long)]
        key: PathBuf,
        /// Bundle path (default: <dir>/target/<id>-<version>.nxt).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Publish a signed .nxt bundle (needs an API key with marketplace:publish).
    Publish {
        /// The bundle.
        bundle: PathBuf,
        /// Marketplace base URL.
        #[arg(long, env = "NEXUM_MARKETPLACE", default_value = "http://127.0.0.1:8080")]
        marketplace: String,
        /// Your publisher namespace.
        #[arg(long)]
        namespace: String,
        /// API key.
        #[arg(long, env = "NEXUM_API_KEY", hide_env_values = true)]
        api_key: String,
        /// Visible only to your workspace (from this publish on).
        #[arg(long, conflicts_with = "public")]
        private: bool,
        /// Visible to every workspace (from this publish on; the default for a new template).
        #[arg(long)]
        public: bool,
    },
}

#[derive(Subcommand)]
enum MarketplaceCommand {
    /// Serve only `/api/v1/marketplace` (plus health and docs), with this server's API keys.
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Config file (TOML); also NEXUM_CONFIG. NEXUM_* environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an API key and print it (once).
    CreateKey {
        #[command(flatten)]
        serve: ServeArgs,
        /// Workspace id (`ws_…`); default: the oldest workspace.
        #[arg(long)]
        workspace: Option<String>,
        /// Key name.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Comma-separated scopes (default: all but workspaces:create).
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Expire after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Requests per minute.
        #[arg(long)]
        rate_limit_per_minute: Option<u32>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new master key and re-encrypt every stored secret under it (servers keep serving).
    Rotate {
        #[command(flatten)]
        serve: ServeArgs,
        /// Only re-encrypt under the already-active key (after changing NEXUM_MASTER_KEY).
        #[arg(long)]
        reseal_only: bool,
    },
}

#[derive(Subcommand)]
enum ConnectorCommand {
    /// Run one action (or test-connection) with a real broker; print output and trace.
    ///
    /// Example:
    ///   nexum connector run plugins/slack send_message \
    ///     --input '{"channel":"C1","text":"hi"}' --credential bot_token=xoxb-… \
    ///     --var api_base=http://127.0.0.1:9000 --allow-range 127.0.0.0/8
    Run(RunArgs),
    /// Scaffold a connector crate that builds and passes its own test out of the box.
    ///
    /// With --from-openapi, one action per operation of an OpenAPI 3.0/3.1 document:
    ///   nexum connector new petstore --from-openapi petstore.json --operations listPets,getPet
    New {
        /// Connector name (a-z, 0-9, -).
        name: String,
        /// Where to create it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Generate the actions, auth schemes and allowed host from an OpenAPI 3.0/3.1 document
        /// (JSON, or YAML for .yaml/.yml).
        #[arg(long, value_name = "FILE")]
        from_openapi: Option<PathBuf>,
        /// With --from-openapi: only these operations (operationIds or action names, comma-separated).
        #[arg(long, value_name = "IDS", value_delimiter = ',', requires = "from_openapi")]
        operations: Vec<String>,
    },
    /// Compile a connector crate for wasm32-wasip2 and pack it into an (unsigned) bundle.
    Build {
        /// The crate directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Bundle path (default: <dir>/target/<id>-<version>.nxb).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Sign a bundle in place with a publisher secret key.
    Sign {
        /// The bundle.
        bundle: PathBuf,
        /// Secret key file (from `nexum keygen`, or a minisign key with NEXUM_SIGNING_KEY_PASSWORD).
        #[arg(long, env = "NEXUM_SIGNING_KEY")]
        key: PathBuf,
    },
    /// Show a bundle's digest, signer, permissions, auth schemes and actions.
    Inspect {
        /// The bundle.
        bundle: PathBuf,
        /// Public key(s) to verify the signature with.
        #[arg(long = "trust")]
        trust: Vec<PathBuf>,
    },
    /// Publish a signed bundle to a marketplace (needs an API key with marketplace:publish).
    Publish {
        /// The bundle.
        bundle: PathBuf,
        /// Marketplace base URL.
        #[arg(long, env = "NEXUM_MARKETPLACE", default_value = "http://127.0.0.1:8080")]
        marketplace: String,
        /// Your publisher namespace.
        #[arg(long)]
        namespace: String,
        /// API key.
        #[arg(long, env = "NEXUM_API_KEY", hide_env_values = true)]
        api_key: String,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Connector crate directory (built for wasm32-wasip2 on the fly), or a component .wasm.
    target: PathBuf,
    /// Action to run; omit with --test-connection.
    #[arg(required_unless_present = "test_connection")]
    action: Option<String>,
    /// Action input as JSON, or @file.json.
    #[arg(long, default_value = "{}")]
    input: String,
    /// Run the connector's test-connection instead of an action.
    #[arg(long, conflicts_with = "action")]
    test_connection: bool,
    /// Credential: <scheme>=<secret>, <scheme>=<user>:<password> (basic) or <scheme>.<field>=<value>.
    #[arg(long = "credential", value_name = "SCHEME=SECRET")]
    credentials: Vec<String>,
    /// Like --credential, but the secret comes from an environment variable: <scheme>=<ENV_VAR>.
    #[arg(long = "credential-env", value_name = "SCHEME=ENV_VAR")]
    credentials_env: Vec<String>,
    /// Connection variable: <name>=<value> (e.g. api_base=http://127.0.0.1:9000).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    variables: Vec<String>,
    /// Allow a non-public address range (e.g. 127.0.0.0/8 for a local mock).
    #[arg(
        long = "allow-range",
        value_name = "CIDR",
        env = "NEXUM_ALLOW_RANGES",
        value_delimiter = ','
    )]
    allow_ranges: Vec<ipnet::IpNet>,
    /// Manifest to use instead of the connector.toml next to the target.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Print {"output"|"error", "trace"} as one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        let filter = tracing_subscriber::EnvFilter::try_from_env("NEXUM_LOG").unwrap_or_else(|_| "warn".into());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => {
            let config = Config::from_env(args.config.as_deref())?;
            server::open_db(&config).await?;
            println!("migrations applied to {}", redact_url(&config.database_url));
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(AdminCommand::CreateKey {
            serve,
            workspace,
            name,
            scopes,
            expires_in_days,
            rate_limit_per_minute,
        }) => create_key(serve, workspace, name, scopes, expires_in_days, rate_limit_per_minute).await,
        Command::Keys(KeysCommand::Rotate { serve, reseal_only }) => {
            let config = Config::from_env(serve.config.as_deref())?;
            let db = server::open_db(&config).await?;
            let vault = server::open_vault(&config)?;
            let report = vault.rotate(&db, reseal_only).await?;
            let workspaces: Vec<(nexum_host::ids::WorkspaceId,)> =
                sqlx::query_as("SELECT id FROM workspaces").fetch_all(db.pool()).await?;
            let entries: Vec<_> = workspaces
                .iter()
                .map(|(ws,)| {
                    AuditEntry::new(
                        ws,
                        "cli",
                        "secret.rotate",
                        &report.active_key,
                        format!("resealed={}", report.resealed),
                    )
                })
                .collect();
            db.append_audit(&entries).await?;
            println!(
                "active master key: {}\nre-encrypted secrets: {}",
                report.active_key, report.resealed
            );
            if report.unreadable > 0 {
                eprintln!(
                    "warning: {} secrets could not be opened and were left as they are (see the log); reconnect those connections",
                    report.unreadable
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Connector(ConnectorCommand::Run(args)) => run(args).await,
        Command::Connector(ConnectorCommand::New {
            name,
            dir,
            from_openapi,
            operations,
        }) => {
            let path = match from_openapi {
                None => author::scaffold(&dir, &name)?,
                Some(spec) => {
                    let wanted = (!operations.is_empty()).then_some(operations.as_slice());
                    let made = author::openapi::scaffold_with_report(&dir, &name, &spec, wanted)?;
                    println!("{} actions from {}:", made.actions.len(), spec.display());
                    for (action, operation) in &made.actions {
                        println!("  {action} ← {operation}");
                    }
                    for note in &made.notes {
                        eprintln!("note: {note}");
                    }
                    made.dir
                }
            };
            println!(
                "created {}\nnext: cd {} && cargo test && nexum connector build",
                path.display(),
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Connector(ConnectorCommand::Build { dir, out }) => {
            let (path, bundle) = author::build_bundle(&dir, out.as_deref())?;
            println!(
                "{}\ndigest sha256:{} (unsigned; sign it with `nexum connector sign`)",
                path.display(),
                bundle.digest
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Connector(ConnectorCommand::Sign { bundle, key }) => {
            let password = std::env::var("NEXUM_SIGNING_KEY_PASSWORD").ok();
            let signed = author::sign_file(&bundle, &key, password.as_deref())?;
            let key_id = signed
                .signature
                .as_deref()
                .map(nexum_marketplace::signing::signature_key_id)
                .transpose()?
                .unwrap_or_default();
            println!(
                "signed {} with key {key_id}\ndigest sha256:{}",
                bundle.display(),
                signed.digest
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Connector(ConnectorCommand::Inspect { bundle, trust }) => {
            let parsed = author::read_bundle(&bundle)?;
            let mut keys = Vec::new();
            for path in trust {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                keys.push(nexum_marketplace::signing::PublicKey::parse(&text)?);
            }
            println!("{}", serde_json::to_string_pretty(&author::inspect(&parsed, &keys))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Connector(ConnectorCommand::Publish {
            bundle,
            marketplace,
            namespace,
            api_key,
        }) => {
            let published = author::publish(&bundle, &marketplace, &namespace, &api_key).await?;
            println!(
                "published {} {}",
                published["package"].as_str().unwrap_or_default(),
                published["latest_version"].as_str().unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { dir } => {
            let (secret, public, key_id) = author::keygen(&dir)?;
            println!(
                "key id {key_id}\nsecret key: {} (keep it secret)\npublic key: {} (register it with your namespace; hosts trust it)",
                secret.display(),
                public.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Template(command) => template(command).await,
        Command::Marketplace(MarketplaceCommand::Serve(args)) => {
            let config = Config::from_env(args.config.as_deref())?;
            init_logging(config.log_format);
            let state = server::build_state(config).await?;
            if let Some(key) = server::bootstrap(&state).await? {
                println!("\n  First start: operator API key (shown ONCE):\n\n    {key}\n");
            }
            server::seed_catalogue(&state).await;
            let server = server::Server::start_surface(state, nexum_host::api::Surface::MarketplaceOnly).await?;
            println!("nexum marketplace listening on http://{}", server.addr);
            server.run_until_signal().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn template(command: TemplateCommand) -> Result<ExitCode> {
    use nexum_host::templates::author;
    match command {
        TemplateCommand::New { name, dir } => {
            let path = author::scaffold(&dir, &name)?;
            println!(
                "created {}\nnext: edit template.json, then `nexum template validate {}`",
                path.display(),
                path.display()
            );
        }
        TemplateCommand::Validate { dir } => {
            let (template, files) = author::validate(&dir)?;
            let slots: Vec<String> = template
                .slots
                .iter()
                .map(|(name, slot)| format!("{name} → {} {}", slot.connector, slot.version))
                .collect();
            println!(
                "{}@{} is valid: {} variables, {} slots ({}), files: {}",
                template.id,
                template.version,
                template.variables.len(),
                template.slots.len(),
                slots.join(", "),
                files.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        TemplateCommand::Sign { dir, key, out } => {
            let password = std::env::var("NEXUM_SIGNING_KEY_PASSWORD").ok();
            let (path, bundle) = author::sign(&dir, &key, password.as_deref(), out.as_deref())?;
            let key_id = bundle
                .signature
                .as_deref()
                .map(nexum_marketplace::signing::signature_key_id)
                .transpose()?
                .unwrap_or_default();
            println!(
                "{}\nsigned {}@{} with key {key_id}, digest sha256:{}",
                path.display(),
                bundle.id,
                bundle.version,
                bundle.digest
            );
        }
        TemplateCommand::Publish {
            bundle,
            marketplace,
            namespace,
            api_key,
            private,
            public,
        } => {
            let visibility = (private || public).then_some(private);
            let published = author::publish(&bundle, &marketplace, &namespace, &api_key, visibility).await?;
            println!(
                "published {} {}{}",
                published["template"].as_str().unwrap_or_default(),
                published["latest_version"].as_str().unwrap_or_default(),
                if published["private"] == true {
                    " (private)"
                } else {
                    " (public)"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NEXUM_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

async fn serve(args: ServeArgs) -> Result<ExitCode> {
    let config = Config::from_env(args.config.as_deref())?;
    init_logging(config.log_format);
    tracing::info!(listen = %config.listen, database = %redact_url(&config.database_url), data_dir = %config.data_dir.display(), "starting nexum");
    let state = server::build_state(config).await?;
    if let Some(key) = server::bootstrap(&state).await? {
        println!(
            "\n  First start: created workspace `default` and an operator API key.\n  It is shown ONCE; store it now:\n\n    {key}\n\n  export NEXUM_API_KEY={key}\n"
        );
    }
    server::seed_catalogue(&state).await;
    let server = server::Server::start(state).await?;
    tracing::info!(addr = %server.addr, "listening; API at /api/v1, docs at /docs");
    println!("nexum listening on http://{}", server.addr);
    server.run_until_signal().await;
    Ok(ExitCode::SUCCESS)
}

async fn create_key(
    serve: ServeArgs,
    workspace: Option<String>,
    name: String,
    scopes: Vec<String>,
    expires_in_days: Option<u32>,
    rate_limit_per_minute: Option<u32>,
) -> Result<ExitCode> {
    let config = Config::from_env(serve.config.as_deref())?;
    let db = server::open_db(&config).await?;
    let workspace_id = match workspace {
        Some(ws) => db
            .workspace(&ws.parse::<nexum_host::ids::WorkspaceId>()?)
            .await?
            .map(|w| w.id)
            .with_context(|| format!("no workspace {ws}"))?,
        None => {
            let first: Option<(nexum_host::ids::WorkspaceId,)> =
                sqlx::query_as("SELECT id FROM workspaces ORDER BY id LIMIT 1")
                    .fetch_optional(db.pool())
                    .await?;
            first
                .map(|(id,)| id)
                .context("no workspace yet: run `nexum serve` once to bootstrap")?
        }
    };
    let scopes: Vec<Scope> = if scopes.is_empty() {
        ALL_SCOPES
            .iter()
            .copied()
            .filter(|s| *s != Scope::WorkspacesCreate)
            .collect()
    } else {
        scopes
            .iter()
            .map(|s| {
                Scope::parse(s).with_context(|| {
                    format!(
                        "unknown scope `{s}` (known: {})",
                        ALL_SCOPES.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    )
                })
            })
            .collect::<Result<_>>()?
    };
    let generated = generate_key();
    let record = db
        .insert_api_key(&NewApiKey {
            id: new_id("key"),
            workspace_id: workspace_id.clone(),
            member_id: None,
            name,
            prefix: generated.prefix.clone(),
            hash: generated.hash.clone(),
            scopes: Scope::join(&scopes),
            rate_limit_per_minute: i64::from(rate_limit_per_minute.unwrap_or(config.default_key_rate_limit_per_minute)),
            expires_at: expires_in_days.map(|d| now_ms() + i64::from(d) * 86_400_000),
            parent_id: None,
            quota_per_hour: None,
            quota_per_day: None,
        })
        .await?;
    db.append_audit(&[AuditEntry::new(&workspace_id, "cli", "api_key.create", &record.id, "")])
        .await?;
    println!("{}", &*generated.secret);
    eprintln!("created {} in {workspace_id} with scopes: {}", record.id, record.scopes);
    Ok(ExitCode::SUCCESS)
}

async fn run(args: RunArgs) -> Result<ExitCode> {
    let invocation = if args.test_connection {
        Invocation::TestConnection
    } else {
        let raw = match args.input.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading input file {path}"))?,
            None => args.input.clone(),
        };
        let input = serde_json::from_str(&raw).context("--input is not valid JSON")?;
        Invocation::Action {
            name: args.action.clone().unwrap_or_default(),
            input,
        }
    };
    let mut credentials = args.credentials;
    for spec in &args.credentials_env {
        let (scheme, var) = spec
            .split_once('=')
            .context("--credential-env takes <scheme>=<ENV_VAR>")?;
        let value = std::env::var(var).with_context(|| format!("environment variable {var} is not set"))?;
        credentials.push(format!("{scheme}={value}"));
    }
    let mut variables = BTreeMap::new();
    for spec in &args.variables {
        let (k, v) = spec.split_once('=').context("--var takes <name>=<value>")?;
        variables.insert(k.to_string(), v.to_string());
    }
    let outcome = harness::run(RunOptions {
        target: args.target,
        manifest: args.manifest,
        invocation,
        credentials,
        variables,
        allow_ranges: args.allow_ranges,
    })
    .await?;

    if args.json {
        let doc = match &outcome.result {
            Ok(output) => serde_json::json!({ "output": output, "trace": outcome.trace }),
            Err(e) => {
                serde_json::json!({ "error": { "code": e.code(), "message": e.to_string(), "retryable": e.is_retryable() }, "trace": outcome.trace })
            }
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        eprint!("{}", harness::render_trace(&outcome.trace));
        if let Ok(output) = &outcome.result {
            println!("{}", serde_json::to_string_pretty(output)?);
        }
    }
    match outcome.result {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            if !args.json {
                eprintln!("error [{}]: {e}", e.code());
            }
            Ok(ExitCode::from(1))
        }
    }
}
