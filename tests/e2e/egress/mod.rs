//! Invariant 2, declared egress: allow-list, address policy after DNS, redirects re-checked
//! hop by hop, credentials only to their bound hosts, host-only headers, caps, retries and
//! rate limits. Every refusal is checked at the fake too: nothing arrived.

use nexum_host::runtime::{CallError, Connection, LoadedConnector};
use nexum_tests::host::TestHost;
use serde_json::Value;
use std::sync::Arc;

mod address_policy;
mod allow_list;
mod caps;
mod credentials;
mod granted_ranges;
mod headers;
mod rate_limit;
mod redirects;
mod retries;

const SECRET: &str = "hostile-secret-token";

fn hostile(host: &TestHost, upstream: &str) -> (Arc<LoadedConnector>, Arc<Connection>) {
    let connector = host.load("hostile", None);
    let connection = host.connect(
        &connector,
        &format!("conn_{upstream}"),
        &[("upstream", upstream)],
        &[("token", &[("token", SECRET)])],
    );
    (connector, connection)
}

fn code(result: &Result<Value, CallError>) -> String {
    result.as_ref().expect_err("the call should fail").code().to_string()
}

/// A manifest whose connector may reach two origins, with the credential bound to the first.
fn two_host_manifest() -> String {
    let base = std::fs::read_to_string(nexum_tests::plugins::connector_dir("hostile").join("connector.toml"))
        .expect("manifest");
    base.replace(
        "allowed_hosts = [\"{{ upstream }}\"]",
        "allowed_hosts = [\"{{ upstream }}\", \"{{ other }}\"]",
    )
    .replace(
        "[variables.upstream]",
        "[variables.other]\ndescription = \"second origin\"\n\n[variables.upstream]",
    )
}
