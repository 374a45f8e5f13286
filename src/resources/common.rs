//! Types shared by the three resources: conditions, sources, alert matching, secret references.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What happens to the AWS resources a resource created when the resource is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete every AWS resource this resource created (never resources it merely references).
    #[default]
    Delete,
    /// Leave the AWS resources in place; only the Kubernetes object goes away.
    Retain,
}

/// Severity of an alert or alarm, used for routing and for how loudly Slack renders it.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    JsonSchema,
)]
pub enum Severity {
    /// Informational; nobody needs to act.
    Info,
    /// Something degrades; act during working hours.
    #[default]
    Warning,
    /// Users are affected; act now.
    High,
    /// An outage; page.
    Critical,
}

impl Severity {
    /// The value used in tags and in rendered messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "Info",
            Severity::Warning => "Warning",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }

    /// Parses the tag value written by [`Severity::as_str`], case-insensitively.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "warning" | "warn" => Some(Severity::Warning),
            "high" | "error" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// The kind of event an alert was decoded from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum AlertKind {
    /// A CloudWatch alarm state change notification.
    CloudWatchAlarm,
    /// An EMR "Cluster State Change" event (for example TERMINATED_WITH_ERRORS).
    EmrClusterStateChange,
    /// An ECS "Service Action" event (scale, steady state, impaired task starts).
    EcsServiceAction,
    /// An ECS "Task State Change" event (for example a task that stopped).
    EcsTaskStateChange,
    /// Any other EventBridge event.
    EventBridgeEvent,
    /// A plain or unrecognised SNS message, delivered as a generic alert.
    Message,
}

/// The state an alert reports.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum AlertState {
    /// A problem: an alarm in ALARM, a failed cluster, a stopped task.
    Firing,
    /// The problem is over: an alarm back to OK.
    Resolved,
    /// An alarm in INSUFFICIENT_DATA.
    InsufficientData,
    /// An event that reports, rather than fails (a scale-up, a steady state).
    Info,
}

/// Where an AlertRoute or DigestSchedule receives alerts from. Exactly one field is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.alarmPolicy) != has(self.topicArn)")
    .message("set exactly one of alarmPolicy or topicArn"))]
pub struct SourceRef {
    /// Name of an AlarmPolicy in the same namespace; its SNS topic is subscribed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub alarm_policy: Option<String>,
    /// ARN of an existing SNS topic (for example a per-environment "alarms" or "notifications"
    /// topic). It is subscribed to, never modified or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^arn:aws[a-zA-Z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"
    ))]
    pub topic_arn: Option<String>,
}

/// How a tag requirement compares the alert's tag value.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TagOperator {
    /// The tag is present and its value is one of `values`.
    #[default]
    In,
    /// The tag is absent, or its value is none of `values`.
    NotIn,
    /// The tag is present, whatever its value.
    Exists,
    /// The tag is absent.
    DoesNotExist,
}

/// One requirement on the tags of an alert's resource (the EMR cluster's tags, the alarm's tags).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(!has(self.operator) || self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)")
    .message("In and NotIn need values; Exists and DoesNotExist take none"))]
pub struct TagRequirement {
    /// Tag key, for example `Team` or `Feature`.
    #[schemars(length(min = 1, max = 128))]
    pub key: String,
    /// How the tag's value is compared.
    #[serde(default)]
    pub operator: TagOperator,
    /// Values for `In` and `NotIn`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Selects alerts. Every non-empty list must match; an empty block matches everything.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertMatch {
    /// Alert kinds to accept; empty accepts every kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<AlertKind>,
    /// Alert states to accept; empty accepts every state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<AlertState>,
    /// Lowest severity to accept (alerts without a severity count as Warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// Requirements on the resource's tags, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagRequirement>,
}

/// A key of a Secret in the resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Delivery to Slack: an incoming webhook, or a bot token and channel (which lets alertops update
/// messages later: resolve them, show who acknowledged, report retries). Exactly one is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.webhookSecretRef) != has(self.botTokenSecretRef)")
    .message("set exactly one of webhookSecretRef or botTokenSecretRef"))]
#[x_kube(validation = Rule::new("!has(self.botTokenSecretRef) || has(self.channel)")
    .message("botTokenSecretRef needs a channel"))]
pub struct SlackDestination {
    /// Secret key holding a Slack incoming-webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret_ref: Option<SecretKeyRef>,
    /// Secret key holding a Slack bot token (`xoxb-...`) with the `chat:write` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token_secret_ref: Option<SecretKeyRef>,
    /// Channel ID (for example `C0123456789`) or name the bot posts to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 80))]
    pub channel: Option<String>,
    /// Slack user or group mentions added to firing alerts of severity High or above,
    /// for example `<!subteam^S0123>` or `<@U0123>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
}

/// Delivery by email through Amazon SES.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailDestination {
    /// Sender address; it must be verified in SES.
    #[schemars(length(min = 3, max = 320))]
    pub from: String,
    /// Recipients.
    #[schemars(length(min = 1, max = 50))]
    pub to: Vec<String>,
    /// Prefix of every subject line, for example `[prod]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub subject_prefix: Option<String>,
    /// SES configuration set, for delivery tracking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_set: Option<String>,
}

/// A topic subscription made for a route or schedule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStatus {
    /// ARN of the subscribed SNS topic.
    pub topic_arn: String,
    /// ARN of the subscription.
    pub subscription_arn: String,
}

/// The standard `conditions` list, a list-map keyed by `type` so server-side apply merges
/// conditions from different writers.
pub type Conditions = Vec<Condition>;

/// Tags of AWS resources, in a stable order.
pub type Tags = BTreeMap<String, String>;

/// A small map of a spec (dimensions, tags), sorted by key. Kept as a sorted vector rather than
/// a `BTreeMap`: the controller caches every policy, and a `BTreeMap` allocates a node of eleven
/// slots (~540 bytes) for its first entry, most of the cache at fleet scale. In the schema it is
/// the same string map (`#[schemars(with = "BTreeMap<String, String>")]` on each field).
pub type SpecMap = litemap::LiteMap<String, String>;

/// A spec's map as tags (or any owned sorted map).
pub fn owned_map(map: &SpecMap) -> Tags {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Condition type every resource reports: true only when AWS and the owned workloads match the spec.
pub const CONDITION_READY: &str = "Ready";
/// Condition type carrying the lint verdict of an AlarmPolicy.
pub const CONDITION_LINT: &str = "Lint";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_map_reads_any_key_order_keeps_the_last_duplicate_and_writes_a_sorted_map() {
        let map: SpecMap =
            serde_json::from_str(r#"{"b": "2", "a": "1", "c": "3", "a": "one"}"#).unwrap();
        let keys: Vec<&str> = map.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(map.get("a").map(String::as_str), Some("one"));
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            r#"{"a":"one","b":"2","c":"3"}"#
        );
        assert_eq!(
            owned_map(&map),
            Tags::from_iter(map.iter().map(|(k, v)| (k.clone(), v.clone())))
        );
    }
}
