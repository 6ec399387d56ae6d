//! `nexum:connector/execution` (since 0.1.1): facts about the current call. A 0.1.0
//! component never imports it.

use super::bindings::nexum::connector::execution::Host;
use super::state::CallState;

impl Host for CallState {
    async fn idempotency_key(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.idempotency_key.clone())
    }
}
