//! What one call's `Store` holds: an empty WASI context, the call's resource table and
//! credential handles, its memory limiter, deadline, connection and trace.

use super::connection::Connection;
use super::trace::CallTrace;
use crate::broker::Broker;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The host side of a `credential` resource: an index into the call's credentials. The
/// secret itself stays in [`Connection`]; the guest only ever holds this handle's number.
pub struct CredentialHandle {
    pub(crate) index: usize,
}

/// The host side of an `http.request` resource: a request the guest is building.
pub struct OutgoingRequest {
    pub(crate) method: reqwest::Method,
    pub(crate) url: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) header_bytes: usize,
    pub(crate) body: Option<Vec<u8>>,
}

impl OutgoingRequest {
    /// Bytes the host holds for this request (URL, headers and body).
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.url.len() + self.header_bytes + self.body.as_ref().map_or(0, Vec::len)
    }
}

/// Per-call store data.
pub struct CallState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: CallLimiter,
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) connection: Arc<Connection>,
    pub(crate) broker: Arc<Broker>,
    pub(crate) deadline: Instant,
    pub(crate) trace: CallTrace,
    pub(crate) limits: CallLimits,
    pub(crate) handles_issued: usize,
    /// Whether this call already renewed its OAuth2 token after a 401 (at most once).
    pub(crate) refreshed_after_401: bool,
    /// Requests the guest created and has neither sent nor dropped.
    pub(crate) unsent_requests: usize,
    /// Bytes of URLs, headers and bodies the host holds for those requests.
    pub(crate) unsent_bytes: usize,
    /// The call's idempotency key (a workflow step's, or the API client's), readable by a
    /// connector built against `nexum:connector@0.1.1`.
    pub(crate) idempotency_key: Option<String>,
}

/// Most unsent requests one call may hold at once.
pub(crate) const MAX_UNSENT_REQUESTS: usize = 16;

/// Most bytes the host buffers for one call's unsent requests: twice the request-body cap,
/// so a guest cannot turn one reused buffer into gigabytes of host memory.
impl CallState {
    /// Which of the connection's credentials a handle the guest passed stands for.
    pub(crate) fn credential_index(
        &self,
        handle: Option<&wasmtime::component::Resource<CredentialHandle>>,
    ) -> wasmtime::Result<Option<usize>> {
        handle.map(|h| Ok(self.table.get(h)?.index)).transpose()
    }

    /// Why one more outbound request (HTTP or mail, which share the call's cap) is refused,
    /// or `None` while the cap is not reached.
    pub(crate) fn request_cap_reached(&self) -> Option<String> {
        (self.trace.http.len() >= self.limits.max_http_requests)
            .then(|| format!("a call may make at most {} requests", self.limits.max_http_requests))
    }
}

pub(crate) fn max_unsent_bytes(max_request_bytes: usize) -> usize {
    max_request_bytes.saturating_mul(2)
}

/// Per-call caps on host-side state a guest could otherwise grow without bound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallLimits {
    pub(crate) max_log_lines: usize,
    pub(crate) max_log_line_bytes: usize,
    pub(crate) max_credential_handles: usize,
    pub(crate) max_http_requests: usize,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps the call's linear memory, all memories together, at the connector's limit and
/// remembers whether it refused a growth, so an out-of-memory abort is reported as such
/// rather than as a bare trap.
pub struct CallLimiter {
    pub(crate) memory_cap: usize,
    pub(crate) memory_refused: bool,
    /// Bytes of every linear memory of the call so far (initial sizes count: wasmtime asks
    /// the limiter for them at instantiation).
    pub(crate) memory_total: usize,
}

impl CallLimiter {
    /// A limiter allowing `memory_cap` bytes in all.
    pub(crate) fn new(memory_cap: usize) -> Self {
        Self {
            memory_cap,
            memory_refused: false,
            memory_total: 0,
        }
    }
}

/// Most table elements one call may have, all tables together.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for CallLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.memory_total.saturating_sub(current).saturating_add(desired);
        if total > self.memory_cap {
            self.memory_refused = true;
            return Ok(false);
        }
        self.memory_total = total;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        super::engine::CORE_INSTANCES_PER_CALL as usize
    }

    fn memories(&self) -> usize {
        super::engine::MEMORIES_PER_CALL as usize
    }

    fn tables(&self) -> usize {
        super::engine::TABLES_PER_CALL as usize
    }
}

#[cfg(test)]
mod tests {
    use super::CallLimiter;
    use wasmtime::ResourceLimiter;

    const MIB: usize = 1 << 20;

    #[test]
    fn the_memory_cap_covers_every_memory_of_a_call_together() {
        let mut limiter = CallLimiter::new(4 * MIB);
        // Two memories of 3 MiB each: the second would take the call to 6 MiB.
        assert!(limiter.memory_growing(0, 3 * MIB, None).expect("grow"));
        assert!(!limiter.memory_growing(0, 3 * MIB, None).expect("grow"));
        assert!(limiter.memory_refused);
        // Growing the first memory within what is left is fine; past it is not.
        assert!(limiter.memory_growing(3 * MIB, 4 * MIB, None).expect("grow"));
        assert!(!limiter.memory_growing(0, 64 * 1024, None).expect("grow"));
    }

    #[test]
    fn a_memory_alone_under_the_cap_still_grows() {
        let mut limiter = CallLimiter::new(4 * MIB);
        assert!(limiter.memory_growing(0, MIB, None).expect("grow"));
        assert!(limiter.memory_growing(MIB, 4 * MIB, None).expect("grow"));
        assert!(!limiter.memory_refused);
        assert!(!limiter.memory_growing(4 * MIB, 4 * MIB + 1, None).expect("grow"));
    }
}
