//! Prometheus counters of the interaction server.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// What became of one request to the interactivity endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Signed, parsed, its button verified: answered 200 and handled.
    Accepted,
    /// An interaction kind alertops does not handle (answered 200, nothing done).
    Ignored,
    /// The Slack signature is missing, malformed or wrong.
    BadSignature,
    /// The signed timestamp is too old (or too far ahead): a replay or a wrong clock.
    Stale,
    /// The body is not an interaction payload.
    Malformed,
    /// The button value is forged or does not match the button.
    InvalidButton,
    /// The button is past its lifetime.
    Expired,
}

impl RequestOutcome {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            RequestOutcome::Accepted => "accepted",
            RequestOutcome::Ignored => "ignored",
            RequestOutcome::BadSignature => "bad_signature",
            RequestOutcome::Stale => "stale",
            RequestOutcome::Malformed => "malformed",
            RequestOutcome::InvalidButton => "invalid_button",
            RequestOutcome::Expired => "expired",
        }
    }
}

/// What a Retry click did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryOutcome {
    /// A retry Job was created.
    Started,
    /// The route's policy refused it (disabled, not allowed, attempts used up).
    Refused,
    /// The Job of this attempt already existed (a double click).
    AlreadyRunning,
    /// It could not start (route, EMR or Kubernetes error).
    Failed,
}

impl RetryOutcome {
    fn label(self) -> &'static str {
        match self {
            RetryOutcome::Started => "started",
            RetryOutcome::Refused => "refused",
            RetryOutcome::AlreadyRunning => "already_running",
            RetryOutcome::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// The interaction server's counters. Clones share them; register once.
#[derive(Clone, Debug, Default)]
pub struct InteractMetrics {
    requests: Family<OutcomeLabels, Counter>,
    acknowledges: Counter,
    retries: Family<OutcomeLabels, Counter>,
}

impl InteractMetrics {
    /// Registers the counters (names start with `interact_`; give the registry a prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "interact_requests",
            "Requests to the interactivity endpoint, by outcome",
            self.requests.clone(),
        );
        registry.register(
            "interact_acknowledges",
            "Alerts acknowledged from Slack",
            self.acknowledges.clone(),
        );
        registry.register(
            "interact_retries",
            "Retry clicks, by outcome",
            self.retries.clone(),
        );
    }

    pub(crate) fn request(&self, outcome: RequestOutcome) {
        self.requests
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    pub(crate) fn acknowledged(&self) {
        self.acknowledges.inc();
    }

    pub(crate) fn retry(&self, outcome: RetryOutcome) {
        self.retries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_exposed_by_outcome() {
        let metrics = InteractMetrics::default();
        let mut registry = Registry::with_prefix("alertops");
        metrics.register(&mut registry);
        metrics.request(RequestOutcome::Stale);
        metrics.acknowledged();
        metrics.retry(RetryOutcome::AlreadyRunning);
        let text = crate::telemetry::encode(&registry);
        assert!(
            text.contains(r#"alertops_interact_requests_total{outcome="stale"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("alertops_interact_acknowledges_total 1"),
            "{text}"
        );
        assert!(
            text.contains(r#"alertops_interact_retries_total{outcome="already_running"} 1"#),
            "{text}"
        );
    }
}
