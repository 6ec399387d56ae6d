//! `nexum:connector/config`: read-only, non-secret connection variables.

use super::bindings::nexum::connector::config::Host;
use super::state::CallState;

impl Host for CallState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.connection.variables.get(&name).cloned())
    }
}
