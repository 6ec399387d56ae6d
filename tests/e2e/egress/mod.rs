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

fn two_host_manifest() -> String {
    nexum_tests::plugins::two_host_hostile_manifest()
}
