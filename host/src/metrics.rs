//! Prometheus metrics: HTTP requests by status, action calls by outcome and their latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// The server's metrics registry.
pub struct Metrics {
    registry: Registry,
    http: Family<StatusLabel, Counter>,
    actions: Family<OutcomeLabel, Counter>,
    action_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("nexum");
        let http = Family::<StatusLabel, Counter>::default();
        let actions = Family::<OutcomeLabel, Counter>::default();
        let action_seconds = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ]);
        registry.register("http_requests", "HTTP requests answered, by status", http.clone());
        registry.register(
            "action_calls",
            "Connector action calls, by outcome code",
            actions.clone(),
        );
        registry.register(
            "action_duration_seconds",
            "Connector action call duration",
            action_seconds.clone(),
        );
        Self {
            registry,
            http,
            actions,
            action_seconds,
        }
    }
}

impl Metrics {
    /// Count an action call.
    pub fn action(&self, outcome: &str, seconds: f64) {
        self.actions
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
        self.action_seconds.observe(seconds);
    }

    /// Render the text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Metrics {
    /// Count an HTTP response by status.
    pub fn http_response(&self, status: u16) {
        self.http.get_or_create(&StatusLabel { status }).inc();
    }
}
