//! The `nexum` command line: the author's harness today; the server joins it later.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use nexum_host::harness::{self, RunOptions};
use nexum_host::runtime::Invocation;
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
    /// Work with connectors: run one locally against real or fake APIs.
    #[command(subcommand)]
    Connector(ConnectorCommand),
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
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("NEXUM_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
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
        Command::Connector(ConnectorCommand::Run(args)) => run(args).await,
    }
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
