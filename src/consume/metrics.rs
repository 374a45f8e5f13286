//! Prometheus counters of the consumers, labelled by route (`namespace/name`).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the per-route counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// `namespace/name` of the AlertRoute.
    pub route: String,
}

/// Labels of the failure counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// `namespace/name` of the AlertRoute.
    pub route: String,
    /// `enrichment`, `slack_transient`, `slack_rejected`, `email_transient`,
    /// `email_rejected` or `snooze_record`.
    pub reason: &'static str,
}

/// Labels of the Slack latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SlackCallLabels {
    /// `namespace/name` of the AlertRoute.
    pub route: String,
    /// `post`, `update` or `thread_reply`.
    pub call: &'static str,
}

/// Labels of the batch error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `namespace/name` of the AlertRoute.
    pub route: String,
    /// Error category (see `ConsumeError::category`).
    pub category: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn slack_latency_histogram() -> Histogram {
    // 10 ms to about 80 s: a 429 with Retry-After is part of the latency people feel.
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// The consumers' metrics. Clones share the counters; register once.
#[derive(Clone, Debug)]
pub struct ConsumerMetrics {
    received: Family<RouteLabels, Counter>,
    delivered: Family<RouteLabels, Counter>,
    grouped: Family<RouteLabels, Counter>,
    filtered: Family<RouteLabels, Counter>,
    failed: Family<FailureLabels, Counter>,
    dead_letter_risk: Family<RouteLabels, Counter>,
    batch_errors: Family<ErrorLabels, Counter>,
    slack_latency: HistogramFamily<SlackCallLabels>,
    emails_sent: Family<RouteLabels, Counter>,
    email_latency: HistogramFamily<RouteLabels>,
    queue_messages: Family<QueueLabels, Gauge>,
    slack_circuit_open: Family<RouteLabels, Gauge>,
    reminders: Family<RouteLabels, Counter>,
    suppressed: Family<RouteLabels, Counter>,
    snoozes_ended: Family<RouteLabels, Counter>,
}

/// Labels of the queue depth gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `namespace/name` of the route.
    pub route: String,
    /// `main` or `dead_letter`.
    pub queue: String,
}

impl Default for ConsumerMetrics {
    fn default() -> Self {
        ConsumerMetrics {
            received: Family::default(),
            delivered: Family::default(),
            grouped: Family::default(),
            filtered: Family::default(),
            failed: Family::default(),
            dead_letter_risk: Family::default(),
            batch_errors: Family::default(),
            slack_latency: Family::new_with_constructor(slack_latency_histogram),
            emails_sent: Family::default(),
            email_latency: Family::new_with_constructor(slack_latency_histogram),
            queue_messages: Family::default(),
            slack_circuit_open: Family::default(),
            reminders: Family::default(),
            suppressed: Family::default(),
            snoozes_ended: Family::default(),
        }
    }
}

impl ConsumerMetrics {
    /// Fresh counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records how many messages wait in one of the route's queues (`main` or `dead_letter`).
    pub fn queue_depth(&self, route: &str, queue: &str, messages: u64) {
        self.queue_messages
            .get_or_create(&QueueLabels {
                route: route.to_string(),
                queue: queue.to_string(),
            })
            .set(i64::try_from(messages).unwrap_or(i64::MAX));
    }

    /// Records whether the route's Slack circuit is open (Slack considered down).
    pub(crate) fn circuit_open(&self, route: &str, open: bool) {
        self.slack_circuit_open
            .get_or_create(&Self::route(route))
            .set(i64::from(open));
    }

    /// Registers every metric (names start with `consumer_`; give the registry a prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "consumer_alerts_received",
            "SQS messages received by the route's consumer",
            self.received.clone(),
        );
        registry.register(
            "consumer_alerts_delivered",
            "Alerts every destination of the route accepted (their SQS messages were then deleted)",
            self.delivered.clone(),
        );
        registry.register(
            "consumer_alerts_grouped",
            "Alerts delivered inside a message that lists several alerts",
            self.grouped.clone(),
        );
        registry.register(
            "consumer_alerts_filtered",
            "Alerts the route's match did not select (deleted on purpose)",
            self.filtered.clone(),
        );
        registry.register(
            "consumer_alerts_failed",
            "SQS messages kept for a later attempt, by reason",
            self.failed.clone(),
        );
        registry.register(
            "consumer_dead_letter_risk",
            "SQS messages that failed on their last receive before the dead-letter queue",
            self.dead_letter_risk.clone(),
        );
        registry.register(
            "consumer_batch_errors",
            "Batches that could not run (route, secret, queue or AWS errors), by category",
            self.batch_errors.clone(),
        );
        registry.register(
            "consumer_slack_latency_seconds",
            "Time Slack took to accept a post or update, retries and waits included",
            self.slack_latency.clone(),
        );
        registry.register(
            "consumer_queue_messages",
            "Messages waiting in the route's queue and its dead-letter queue (SQS's approximate \
             count at the consumer's last route refresh)",
            self.queue_messages.clone(),
        );
        registry.register(
            "consumer_slack_circuit_open",
            "1 while Slack is considered down for the route: the consumer holds its batch, \
             receives nothing new and probes Slack at a growing interval",
            self.slack_circuit_open.clone(),
        );
        registry.register(
            "consumer_emails_sent",
            "Emails SES accepted for the route (one per delivered group)",
            self.emails_sent.clone(),
        );
        registry.register(
            "consumer_reminders",
            "Reminders posted for alerts still firing after the route's repeat interval",
            self.reminders.clone(),
        );
        registry.register(
            "consumer_alerts_snoozed",
            "Alerts a Slack snooze held back from the channel (counted on the snooze, then deleted)",
            self.suppressed.clone(),
        );
        registry.register(
            "consumer_snoozes_ended",
            "Snooze ends announced in Slack with their count",
            self.snoozes_ended.clone(),
        );
        registry.register(
            "consumer_email_latency_seconds",
            "Time SES took to accept an email, SDK retries included",
            self.email_latency.clone(),
        );
    }

    fn route(route: &str) -> RouteLabels {
        RouteLabels {
            route: route.to_string(),
        }
    }

    pub(crate) fn reminded(&self, route: &str, n: usize) {
        self.reminders
            .get_or_create(&Self::route(route))
            .inc_by(n as u64);
    }

    pub(crate) fn snoozed(&self, route: &str, n: usize) {
        self.suppressed
            .get_or_create(&Self::route(route))
            .inc_by(n as u64);
    }

    pub(crate) fn snoozes_ended(&self, route: &str, n: usize) {
        self.snoozes_ended
            .get_or_create(&Self::route(route))
            .inc_by(n as u64);
    }

    pub(crate) fn received(&self, route: &str, n: usize) {
        self.received
            .get_or_create(&Self::route(route))
            .inc_by(n as u64);
    }

    pub(crate) fn delivered(&self, route: &str, n: usize) {
        self.delivered
            .get_or_create(&Self::route(route))
            .inc_by(n as u64);
    }

    pub(crate) fn grouped(&self, route: &str, n: usize) {
        self.grouped
            .get_or_create(&Self::route(route))
            .inc_by(n as u64);
    }

    pub(crate) fn filtered(&self, route: &str, n: usize) {
        self.filtered
            .get_or_create(&Self::route(route))
            .inc_by(n as u64);
    }

    pub(crate) fn failed(&self, route: &str, reason: &'static str, n: usize) {
        self.failed
            .get_or_create(&FailureLabels {
                route: route.to_string(),
                reason,
            })
            .inc_by(n as u64);
    }

    pub(crate) fn dead_letter_risk(&self, route: &str, n: usize) {
        self.dead_letter_risk
            .get_or_create(&Self::route(route))
            .inc_by(n as u64);
    }

    pub(crate) fn batch_error(&self, route: &str, category: &'static str) {
        self.batch_errors
            .get_or_create(&ErrorLabels {
                route: route.to_string(),
                category,
            })
            .inc();
    }

    pub(crate) fn email_sent(&self, route: &str, took: Duration) {
        self.emails_sent.get_or_create(&Self::route(route)).inc();
        self.email_latency
            .get_or_create(&Self::route(route))
            .observe(took.as_secs_f64());
    }

    pub(crate) fn slack_latency(&self, route: &str, call: &'static str, took: Duration) {
        self.slack_latency
            .get_or_create(&SlackCallLabels {
                route: route.to_string(),
                call,
            })
            .observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn counters_are_exposed_per_route() {
        let metrics = ConsumerMetrics::new();
        let mut registry = Registry::with_prefix("alertops");
        metrics.register(&mut registry);
        metrics.received("team/data", 3);
        metrics.failed("team/data", "slack_rejected", 1);
        metrics.slack_latency("team/data", "post", Duration::from_millis(30));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(text.contains(r#"alertops_consumer_alerts_received_total{route="team/data"} 3"#));
        assert!(text.contains(
            r#"alertops_consumer_alerts_failed_total{route="team/data",reason="slack_rejected"} 1"#
        ));
        assert!(text.contains(
            r#"alertops_consumer_slack_latency_seconds_count{route="team/data",call="post"} 1"#
        ));
    }
}
