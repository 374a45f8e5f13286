//! The one alert model every decoder produces and every destination renders.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::resources::{AlertKind, AlertState, Severity, Tags};

/// Tag holding an alert's severity (written by AlarmPolicy on its alarms, readable on any resource).
pub const SEVERITY_TAG: &str = "Severity";
/// Tag holding a runbook URL; enrichment turns it into a link.
pub const RUNBOOK_TAG: &str = "alertops.dev/runbook";
/// Tag a retried EMR cluster carries: the id of the cluster the retries started from.
pub const ORIGINAL_CLUSTER_TAG: &str = "alertops.dev/original-cluster-id";
/// Tag a retried EMR cluster carries: its attempt number (1 for the first retry).
pub const RETRY_ATTEMPT_TAG: &str = "alertops.dev/retry-attempt";
/// The EMR state that marks a failed cluster, the only one that offers a Retry button.
pub const EMR_FAILED_STATE: &str = "TERMINATED_WITH_ERRORS";

/// Identity of a problem: the same problem always has the same fingerprint, so a later state
/// change (OK after ALARM) can update the Slack message the first one posted.
///
/// It is the first 128 bits of a SHA-256 over the kind and the identifying parts, in hex: short
/// enough for button payloads and Slack block ids, and free of characters that need escaping.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Fingerprint of a problem identified by `parts` within `kind`. Parts are separated by a
    /// control character so that `["ab", "c"]` and `["a", "bc"]` differ.
    pub fn of(kind: AlertKind, parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(format!("{kind:?}").as_bytes());
        for part in parts {
            hasher.update([0x1f]);
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        Fingerprint(hex::encode(&digest[..16]))
    }

    /// Wraps a fingerprint read back from storage or a button payload, unchecked.
    pub fn from_raw(value: impl Into<String>) -> Self {
        Fingerprint(value.into())
    }

    /// The hex form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One labelled value shown with an alert (metric, threshold, reason...), in display order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detail {
    /// Short label, for example `Metric`.
    pub label: String,
    /// The value, plain text (renderers escape it).
    pub value: String,
}

/// A link shown with an alert: AWS console, runbook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Text of the link, for example `Open in CloudWatch`.
    pub label: String,
    /// Absolute URL.
    pub url: String,
}

/// An alert decoded from one SQS message, whatever produced it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Identity of the problem (see [`Fingerprint`]).
    pub fingerprint: Fingerprint,
    /// What the alert was decoded from.
    pub kind: AlertKind,
    /// What it reports: firing, resolved, insufficient data, information.
    pub state: AlertState,
    /// The state as the source names it (`ALARM`, `TERMINATED_WITH_ERRORS`, `STOPPED`,
    /// `SERVICE_TASK_START_IMPAIRED`...), when it has one.
    pub source_state: Option<String>,
    /// Severity when the source or enrichment says; routes treat `None` as Warning.
    pub severity: Option<Severity>,
    /// One line saying what happened, plain text.
    pub title: String,
    /// Why: the alarm's state reason, the cluster's failure message, the task's stop reason,
    /// or the whole text of a plain message.
    pub summary: String,
    /// The affected resource: alarm name, EMR cluster id, ECS service or task ARN...
    pub resource: Option<String>,
    /// AWS account id.
    pub account: Option<String>,
    /// AWS region code (`us-east-1`) or, when only that is known, the region's display name.
    pub region: Option<String>,
    /// When the state changed (or the event happened, or SNS received the message).
    pub time: Option<DateTime<Utc>>,
    /// ARN of the SNS topic that delivered it.
    pub source_topic_arn: Option<String>,
    /// SNS message id, for de-duplication of redelivered messages.
    pub sns_message_id: Option<String>,
    /// Tags of the resource, filled by enrichment (EMR cluster tags, alarm tags).
    pub tags: Tags,
    /// The SNS message attributes of the envelope (correlation ids such as `correlation_id` or
    /// `request_id`), by name: untrusted text as the publisher wrote it, escaped by renderers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Labelled values for rendering, in display order.
    pub details: Vec<Detail>,
    /// Console and runbook links.
    pub links: Vec<Link>,
    /// The matching log lines of a firing log alarm, read by the consumer before delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_excerpt: Option<super::log_lines::LogExcerpt>,
    /// The message as published (the SNS `Message`, or the whole body without an envelope).
    pub raw: String,
}

impl Alert {
    /// A `Message` alert with only the essentials set; decoders fill in the rest.
    pub fn new(
        kind: AlertKind,
        state: AlertState,
        fingerprint: Fingerprint,
        title: String,
    ) -> Self {
        Alert {
            fingerprint,
            kind,
            state,
            source_state: None,
            severity: None,
            title,
            summary: String::new(),
            resource: None,
            account: None,
            region: None,
            time: None,
            source_topic_arn: None,
            sns_message_id: None,
            tags: Tags::new(),
            attributes: BTreeMap::new(),
            details: Vec::new(),
            links: Vec::new(),
            log_excerpt: None,
            raw: String::new(),
        }
    }

    /// Severity as routes see it: `Warning` when nothing said otherwise.
    pub fn effective_severity(&self) -> Severity {
        self.severity.unwrap_or(Severity::Warning)
    }

    /// Shows the named SNS message attributes (a route's `correlationAttributes`) as details, in
    /// the order named; attributes the message does not carry are skipped. The values stay
    /// untrusted text: renderers escape details like any other field.
    pub fn show_attributes(&mut self, names: &[String]) {
        for name in names {
            if let Some(value) = self.attributes.get(name).cloned() {
                self.push_detail(name, value);
            }
        }
    }

    /// Appends a detail, skipping empty values so renderers never show blank rows.
    pub fn push_detail(&mut self, label: &str, value: impl Into<String>) {
        let value = value.into();
        if !value.trim().is_empty() {
            self.details.push(Detail {
                label: label.to_string(),
                value,
            });
        }
    }

    /// Appends a link.
    pub fn push_link(&mut self, label: &str, url: impl Into<String>) {
        self.links.push(Link {
            label: label.to_string(),
            url: url.into(),
        });
    }

    /// The value of a detail by label.
    pub fn detail(&self, label: &str) -> Option<&str> {
        self.details
            .iter()
            .find(|d| d.label == label)
            .map(|d| d.value.as_str())
    }

    /// Merges the resource's tags (enrichment). The `Severity` tag sets the severity when the
    /// source gave none, and the runbook tag adds a link.
    pub fn apply_tags(&mut self, tags: Tags) {
        if self.severity.is_none() {
            self.severity = tags.get(SEVERITY_TAG).and_then(|v| Severity::parse(v));
        }
        if let Some(url) = tags.get(RUNBOOK_TAG)
            && (url.starts_with("https://") || url.starts_with("http://"))
            && !self.links.iter().any(|l| &l.url == url)
        {
            self.push_link("Runbook", url.clone());
        }
        self.tags.extend(tags);
    }

    /// The EMR cluster id when this alert is a failed EMR cluster (`TERMINATED_WITH_ERRORS`),
    /// the only alerts a Retry button may be offered on.
    pub fn failed_emr_cluster_id(&self) -> Option<&str> {
        if self.kind == AlertKind::EmrClusterStateChange
            && self.source_state.as_deref() == Some(EMR_FAILED_STATE)
        {
            self.resource.as_deref()
        } else {
            None
        }
    }

    /// The id of the cluster a chain of retries started from: the original-cluster tag of a
    /// retried cluster, or the cluster itself.
    pub fn original_emr_cluster_id(&self) -> Option<&str> {
        self.failed_emr_cluster_id().map(|id| {
            self.tags
                .get(ORIGINAL_CLUSTER_TAG)
                .map(String::as_str)
                .unwrap_or(id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_separates_parts() {
        let a = Fingerprint::of(AlertKind::CloudWatchAlarm, &["1", "us-east-1", "cpu"]);
        let b = Fingerprint::of(AlertKind::CloudWatchAlarm, &["1", "us-east-1", "cpu"]);
        assert_eq!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert_ne!(
            Fingerprint::of(AlertKind::Message, &["ab", "c"]),
            Fingerprint::of(AlertKind::Message, &["a", "bc"])
        );
        assert_ne!(
            Fingerprint::of(AlertKind::Message, &["x"]),
            Fingerprint::of(AlertKind::EventBridgeEvent, &["x"])
        );
    }

    #[test]
    fn tags_set_missing_severity_and_runbook_link() {
        let fp = Fingerprint::of(AlertKind::CloudWatchAlarm, &["a"]);
        let mut alert = Alert::new(
            AlertKind::CloudWatchAlarm,
            AlertState::Firing,
            fp,
            "t".into(),
        );
        assert_eq!(alert.effective_severity(), Severity::Warning);
        let mut tags = Tags::new();
        tags.insert("Severity".into(), "critical".into());
        tags.insert(
            RUNBOOK_TAG.into(),
            "https://runbooks.example.com/cpu".into(),
        );
        tags.insert("Team".into(), "data".into());
        alert.apply_tags(tags.clone());
        alert.apply_tags(tags);
        assert_eq!(alert.severity, Some(Severity::Critical));
        assert_eq!(alert.links.len(), 1, "the runbook link is added once");
        assert_eq!(alert.tags.get("Team").map(String::as_str), Some("data"));
    }

    #[test]
    fn source_severity_wins_over_tag() {
        let fp = Fingerprint::of(AlertKind::EmrClusterStateChange, &["j-1"]);
        let mut alert = Alert::new(
            AlertKind::EmrClusterStateChange,
            AlertState::Firing,
            fp,
            "t".into(),
        );
        alert.severity = Some(Severity::Critical);
        alert.apply_tags(Tags::from([("Severity".to_string(), "Info".to_string())]));
        assert_eq!(alert.severity, Some(Severity::Critical));
    }

    #[test]
    fn original_cluster_comes_from_tag_of_retried_cluster() {
        let fp = Fingerprint::of(AlertKind::EmrClusterStateChange, &["j-2"]);
        let mut alert = Alert::new(
            AlertKind::EmrClusterStateChange,
            AlertState::Firing,
            fp,
            "t".into(),
        );
        alert.resource = Some("j-2".into());
        assert_eq!(
            alert.failed_emr_cluster_id(),
            None,
            "no state: not a failure"
        );
        alert.source_state = Some(EMR_FAILED_STATE.into());
        assert_eq!(alert.original_emr_cluster_id(), Some("j-2"));
        alert.apply_tags(Tags::from([(
            ORIGINAL_CLUSTER_TAG.to_string(),
            "j-1".to_string(),
        )]));
        assert_eq!(alert.failed_emr_cluster_id(), Some("j-2"));
        assert_eq!(alert.original_emr_cluster_id(), Some("j-1"));
    }
}
