//! `nexum:connector/log`: connector log lines into the call trace (capped, redacted) and
//! into the host's `tracing` output at debug level.

use super::bindings::nexum::connector::log::Host;
use super::bindings::nexum::connector::types::LogLevel;
use super::state::CallState;
use super::trace::LogLine;

impl Host for CallState {
    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        if self.trace.logs.len() >= self.limits.max_log_lines {
            self.trace.logs_dropped += 1;
            return Ok(());
        }
        let mut message = self.connection.egress.redactor.scrub(&message);
        if message.len() > self.limits.max_log_line_bytes {
            let mut cut = self.limits.max_log_line_bytes;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let level = match level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        tracing::debug!(connection = %self.connection.id, level, %message, "connector log");
        self.trace.logs.push(LogLine { level, message });
        Ok(())
    }
}
