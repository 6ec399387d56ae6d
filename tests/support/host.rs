//! Ready-made runtimes and connections for tests.

use nexum_host::broker::{AddressPolicy, Broker, BrokerConfig};
use nexum_host::runtime::{CallError, CallOutcome, Connection, Invocation, LoadedConnector, Runtime, RuntimeConfig};
use nexum_host::vault::Credential;
use nexum_manifest::Manifest;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How a test host treats non-public addresses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The default policy: every private, loopback and link-local address refused.
    Public,
    /// `127.0.0.0/8` allowed explicitly, as an operator would for local fakes.
    LoopbackAllowed,
}

/// A runtime plus helpers to load connectors and call them.
pub struct TestHost {
    /// The runtime under test.
    pub runtime: Runtime,
}

impl TestHost {
    /// A host with default limits.
    pub fn new(network: Network) -> Self {
        Self::with(
            network,
            RuntimeConfig {
                max_concurrent_calls: 16,
                ..RuntimeConfig::default()
            },
            BrokerConfig::default(),
        )
    }

    /// A host with explicit runtime and broker settings (the address policy is set from `network`).
    pub fn with(network: Network, runtime: RuntimeConfig, mut broker: BrokerConfig) -> Self {
        broker.address_policy = AddressPolicy {
            allowed_ranges: match network {
                Network::Public => vec![],
                Network::LoopbackAllowed => vec!["127.0.0.0/8".parse().expect("cidr")],
            },
        };
        let broker = Broker::new(broker).expect("broker");
        Self {
            runtime: Runtime::new(runtime, broker).expect("runtime"),
        }
    }

    /// Load a first-party connector (`plugins/<name>`), optionally with a replacement manifest.
    pub fn load(&self, name: &str, manifest_override: Option<&str>) -> Arc<LoadedConnector> {
        let (wasm, manifest) = crate::plugins::connector(name);
        let manifest = Manifest::parse(manifest_override.unwrap_or(&manifest)).expect("manifest");
        self.runtime.load(manifest, &wasm).expect("load")
    }

    /// A host that may reach loopback fakes, with connector `name` loaded and one connection to
    /// it (variables and `(scheme, fields)` credentials as for [`TestHost::connect`]).
    pub fn connected(
        name: &str,
        variables: &[(&str, &str)],
        credentials: &[(&str, &[(&str, &str)])],
    ) -> (Self, Arc<LoadedConnector>, Arc<Connection>) {
        let host = Self::new(Network::LoopbackAllowed);
        let connector = host.load(name, None);
        let connection = host.connect(&connector, &format!("conn_{name}"), variables, credentials);
        (host, connector, connection)
    }

    /// A connection with variables and `(scheme, fields)` credentials.
    pub fn connect(
        &self,
        connector: &LoadedConnector,
        id: &str,
        variables: &[(&str, &str)],
        credentials: &[(&str, &[(&str, &str)])],
    ) -> Arc<Connection> {
        let manifest = &connector.manifest;
        let vars: BTreeMap<String, String> = variables.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let creds = credentials
            .iter()
            .map(|(scheme, fields)| {
                let scheme = manifest.auth_scheme(scheme).expect("scheme");
                let fields = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                Credential::from_fields(scheme, &fields, "test account").expect("credential")
            })
            .collect();
        Arc::new(Connection::new(id, manifest, &vars, creds).expect("connection"))
    }

    /// Run action `name` with `input`.
    pub async fn run(
        &self,
        connector: &LoadedConnector,
        connection: &Arc<Connection>,
        name: &str,
        input: Value,
    ) -> CallOutcome {
        self.runtime
            .execute(
                connector,
                connection.clone(),
                Invocation::Action {
                    name: name.into(),
                    input,
                },
            )
            .await
    }
}

/// The connector's own error of a call as `(code, message, retryable)`; panics on anything
/// else (a success, or a host-side failure).
pub fn connector_error(outcome: CallOutcome) -> (String, String, bool) {
    match outcome.result {
        Err(CallError::Connector {
            code,
            message,
            retryable,
        }) => (code, message, retryable),
        other => panic!("expected a connector error, got {other:?}"),
    }
}
