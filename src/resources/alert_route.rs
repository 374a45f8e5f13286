//! `AlertRoute`: who hears about an alert, and how.

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    AlertMatch, Conditions, DeletionPolicy, EmailDestination, SlackDestination, SourceRef,
    SubscriptionStatus,
};

/// Routes alerts from AlarmPolicies or existing topics to Slack and email, through an SQS queue
/// with a dead-letter queue and a consumer Deployment that alertops owns.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "alertops.dev",
    version = "v1alpha1",
    kind = "AlertRoute",
    namespaced,
    status = "AlertRouteStatus",
    shortname = "ar",
    category = "alertops",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Sources","type":"integer","jsonPath":".status.subscribedSources"}"#,
    printcolumn = r#"{"name":"Consumer","type":"integer","jsonPath":".status.consumerReadyReplicas"}"#,
    printcolumn = r#"{"name":"Queue","type":"string","jsonPath":".status.queueUrl","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    cel
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.slack) || has(self.email)")
    .message("a route needs at least one destination: slack or email"))]
#[x_kube(validation = Rule::new("!has(self.actions) || !has(self.actions.retry) || !self.actions.retry.enabled || has(self.slack)")
    .message("retry is a Slack button: enable it only on routes with a slack destination"))]
#[x_kube(validation = Rule::new("!has(self.grouping) || !has(self.grouping.repeatIntervalMinutes) || (has(self.slack) && has(self.slack.botTokenSecretRef))")
    .message("reminders are thread replies: grouping.repeatIntervalMinutes needs slack.botTokenSecretRef"))]
#[x_kube(validation = Rule::new("!has(self.actions) || !has(self.actions.snooze) || !self.actions.snooze.enabled || (has(self.slack) && has(self.slack.botTokenSecretRef))")
    .message("snooze notes are thread replies: actions.snooze needs slack.botTokenSecretRef"))]
pub struct AlertRouteSpec {
    /// Where alerts come from: AlarmPolicies in this namespace, or existing SNS topic ARNs.
    #[schemars(length(min = 1, max = 20))]
    pub sources: Vec<SourceRef>,
    /// Which alerts this route takes; empty takes all.
    #[serde(default, rename = "match")]
    pub match_: AlertMatch,
    /// Slack delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackDestination>,
    /// Immediate email delivery through SES.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailDestination>,
    /// Names of SNS message attributes to show on Slack posts and in emails, in this order, when
    /// a message carries them: the correlation ids publishers pass along (`correlation_id`,
    /// `request_id`, `user_id`), so a person can find the request in the logs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), inner(length(min = 1, max = 256)))]
    pub correlation_attributes: Vec<String>,
    /// Buttons on Slack messages and what they may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<RouteActions>,
    /// Storm control: how bursts are grouped.
    #[serde(default)]
    pub grouping: Grouping,
    /// The route's SQS queue and dead-letter queue.
    #[serde(default)]
    pub queue: QueueSettings,
    /// The consumer Deployment alertops runs for this route.
    #[serde(default)]
    pub consumer: ConsumerSettings,
    /// What happens to the queues and subscriptions when the route is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Buttons on Slack messages.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteActions {
    /// Show an Acknowledge button on every alert.
    #[serde(default = "default_true")]
    pub acknowledge: bool,
    /// Show a Retry button on failed EMR clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Show Snooze buttons (1 h, 4 h, until tomorrow 09:00) on firing alerts: anyone who can
    /// press the message's buttons may silence that problem's further posts for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snooze: Option<SnoozePolicy>,
}

/// Snoozing alerts from Slack.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SnoozePolicy {
    /// Show the Snooze buttons.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// IANA time zone of "until tomorrow 09:00", for example `America/Los_Angeles`; UTC when
    /// unset or unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,
}

impl Default for RouteActions {
    fn default() -> Self {
        RouteActions {
            acknowledge: true,
            retry: None,
            snooze: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// Who may retry a failed EMR cluster, and how often.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.enabled || (has(self.allowedUsers) && size(self.allowedUsers) > 0) || (has(self.allowedUserGroups) && size(self.allowedUserGroups) > 0)")
    .message("an enabled retry needs allowedUsers or allowedUserGroups: say who may start clusters"))]
pub struct RetryPolicy {
    /// Whether the Retry button is shown and honoured.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Most retries of one original cluster, counted across restarts by a tag on the new clusters.
    #[serde(default = "default_max_attempts")]
    #[schemars(range(min = 1, max = 10))]
    pub max_attempts: i32,
    /// Slack user IDs (for example `U0123ABCD`) allowed to press Retry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_users: Vec<String>,
    /// Slack user-group IDs (for example `S0123ABCD`) whose members may press Retry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_user_groups: Vec<String>,
}

fn default_max_attempts() -> i32 {
    3
}

/// Storm control. A channel never gets more than one post per second; alerts arriving within
/// `groupWaitSeconds` of each other are posted as one message that lists them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.byAttributes) || self.byAttributes.all(n, self.byAttributes.exists_one(m, m == n))")
    .message("grouping.byAttributes names each attribute once"))]
pub struct Grouping {
    /// How long to wait for more alerts before posting a group.
    #[serde(default = "default_group_wait")]
    #[schemars(range(min = 0, max = 60))]
    pub group_wait_seconds: i32,
    /// Most alerts listed in one grouped message; the rest follow in the next message.
    #[serde(default = "default_max_group_size")]
    #[schemars(range(min = 1, max = 40))]
    pub max_alerts_per_message: i32,
    /// Remind the channel every this many minutes while an alert stays firing (Alertmanager's
    /// `repeat_interval`): a reply in the thread of the alert's message, also sent to the
    /// channel, saying how long it has been firing and linking to the first post. Reminders
    /// stop when the alert resolves. Needs a Slack bot token (webhooks cannot reply in a
    /// thread). Unset: no reminders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 15, max = 10080))]
    pub repeat_interval_minutes: Option<i32>,
    /// Names of SNS message attributes to group by (for example `correlation_id`): alerts of
    /// one group wait that carry the same values are posted together, in a message headed by
    /// the values; different values get separate messages; alerts carrying none of them are
    /// grouped as without this field. Each distinct value costs its own post (paced at one per
    /// second per channel). The values are also shown on every alert, after
    /// `correlationAttributes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 5),
        inner(
            length(min = 1, max = 256),
            regex(pattern = r"^[A-Za-z0-9_-]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?$")
        )
    )]
    pub by_attributes: Vec<String>,
}

impl Default for Grouping {
    fn default() -> Self {
        Grouping {
            group_wait_seconds: default_group_wait(),
            max_alerts_per_message: default_max_group_size(),
            repeat_interval_minutes: None,
            by_attributes: Vec::new(),
        }
    }
}

impl AlertRouteSpec {
    /// The message attributes shown on every alert: `correlationAttributes` in their order,
    /// then those grouped by that are not among them (a single alert's message has no group
    /// heading, so it must show them itself).
    pub fn shown_attributes(&self) -> Vec<String> {
        let mut names = self.correlation_attributes.clone();
        for name in &self.grouping.by_attributes {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }
}

fn default_group_wait() -> i32 {
    1
}

fn default_max_group_size() -> i32 {
    20
}

/// The route's SQS queue.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueueSettings {
    /// Receives of one message before it moves to the dead-letter queue. A Slack outage within
    /// the tolerance costs no further receives (the consumer holds what it has), except one per
    /// consumer restart.
    #[serde(default = "default_max_receive_count")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_receive_count: i32,
    /// Seconds a received message stays invisible while the consumer delivers it.
    #[serde(default = "default_visibility_timeout")]
    #[schemars(range(min = 10, max = 43200))]
    pub visibility_timeout_seconds: i32,
    /// Seconds an undelivered message is kept; at least the operator's Slack outage tolerance
    /// plus an hour (the chart's `consumer.slackOutageToleranceSeconds`, 2 h by default).
    #[serde(default = "default_retention")]
    #[schemars(range(min = 60, max = 1209600))]
    pub retention_seconds: i32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            max_receive_count: default_max_receive_count(),
            visibility_timeout_seconds: default_visibility_timeout(),
            retention_seconds: default_retention(),
        }
    }
}

fn default_max_receive_count() -> i32 {
    5
}

fn default_visibility_timeout() -> i32 {
    60
}

fn default_retention() -> i32 {
    345_600
}

/// The consumer Deployment.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerSettings {
    /// Replicas of the consumer; more than one shares the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub replicas: Option<i32>,
    /// Compute resources of the consumer container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Observed state of an AlertRoute.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertRouteStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `SourcesReady`, and `DeadLetters` (True with the count while messages wait in
    /// the dead-letter queue).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Conditions,
    /// URL of the route's SQS queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<String>,
    /// ARN of the route's SQS queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_arn: Option<String>,
    /// URL of the dead-letter queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_queue_url: Option<String>,
    /// ARN of the dead-letter queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_queue_arn: Option<String>,
    /// Subscriptions of the queue to its source topics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<SubscriptionStatus>,
    /// Number of sources subscribed.
    #[serde(default)]
    pub subscribed_sources: i32,
    /// Name of the consumer Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_deployment: Option<String>,
    /// Ready replicas of the consumer Deployment.
    #[serde(default)]
    pub consumer_ready_replicas: i32,
}
