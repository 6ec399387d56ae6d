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
}

/// Most unsent requests one call may hold at once.
pub(crate) const MAX_UNSENT_REQUESTS: usize = 16;

/// Most bytes the host buffers for one call's unsent requests: twice the request-body cap,
/// so a guest cannot turn one reused buffer into gigabytes of host memory.
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

/// Caps linear memory at the connector's limit and remembers whether it refused a growth,
/// so an out-of-memory abort is reported as such rather than as a bare trap.
pub struct CallLimiter {
    pub(crate) memory_cap: usize,
    pub(crate) memory_refused: bool,
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
