//! `DigestSchedule`: the periodic summary email.

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    AlertMatch, Conditions, DeletionPolicy, EmailDestination, SlackDestination, SourceRef,
    SubscriptionStatus,
};

/// Sends one consolidated email (and optionally a Slack summary) of the alerts queued since the
/// last run, on a cron schedule in a time zone, from a CronJob that alertops owns.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "alertops.dev",
    version = "v1alpha1",
    kind = "DigestSchedule",
    namespaced,
    status = "DigestScheduleStatus",
    shortname = "dsched",
    category = "alertops",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Zone","type":"string","jsonPath":".spec.timeZone"}"#,
    printcolumn = r#"{"name":"Next","type":"string","jsonPath":".status.nextRunTime"}"#,
    printcolumn = r#"{"name":"Last Alerts","type":"integer","jsonPath":".status.lastRun.alertCount"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    cel
)]
#[serde(rename_all = "camelCase")]
pub struct DigestScheduleSpec {
    /// Cron schedule with five fields (minute hour day-of-month month day-of-week), evaluated in
    /// `timeZone`; for example `0 8,20 * * *` for 8am and 8pm.
    #[schemars(length(min = 9, max = 100))]
    pub schedule: String,
    /// IANA time zone of the schedule, for example `America/Los_Angeles`.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: String,
    /// Where alerts come from.
    #[schemars(length(min = 1, max = 20))]
    pub sources: Vec<SourceRef>,
    /// Which alerts the digest summarises; empty takes all.
    #[serde(default, rename = "match")]
    pub match_: AlertMatch,
    /// The summary email.
    pub email: EmailDestination,
    /// A short Slack summary posted after the email was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackDestination>,
    /// Names of SNS message attributes (correlation ids such as `correlation_id`) whose values
    /// the email lists per row: each row (alerts of one team, feature and reason) shows the
    /// distinct values its alerts carried, so a person can find the requests in the logs. The
    /// schedule names its own, as its sources need not be a route's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 10),
        inner(
            length(min = 1, max = 256),
            regex(pattern = r"^[A-Za-z0-9_-]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?$")
        )
    )]
    pub correlation_attributes: Vec<String>,
    /// Send an email even when no alert arrived since the last run.
    #[serde(default)]
    pub send_empty: bool,
    /// Most alerts one run drains from the queue; the rest wait for the next run.
    #[serde(default = "default_max_alerts")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_alerts_per_run: i32,
    /// Seconds after a missed start time within which the run may still start.
    #[serde(default = "default_starting_deadline")]
    #[schemars(range(min = 10, max = 86400))]
    pub starting_deadline_seconds: i64,
    /// Finished runs kept, successful and failed.
    #[serde(default = "default_history")]
    #[schemars(range(min = 0, max = 20))]
    pub history_limit: i32,
    /// What happens to the queue and subscriptions when the schedule is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_time_zone() -> String {
    "UTC".to_string()
}

fn default_max_alerts() -> i32 {
    10_000
}

fn default_starting_deadline() -> i64 {
    600
}

fn default_history() -> i32 {
    3
}

/// Observed state of a DigestSchedule.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DigestScheduleStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` and the outcome of the last run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Conditions,
    /// URL of the schedule's SQS queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<String>,
    /// ARN of the schedule's SQS queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_arn: Option<String>,
    /// Message retention of the queue: the longest span from a run to the run after next (so one
    /// failed run loses nothing) plus a margin, at most 14 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_seconds: Option<i32>,
    /// Subscriptions of the queue to its source topics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<SubscriptionStatus>,
    /// Name of the owned CronJob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_job: Option<String>,
    /// Next run, computed from the schedule and time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_time: Option<DateTime<Utc>>,
    /// The last completed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<DigestRun>,
}

/// One completed digest run.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DigestRun {
    /// When the run finished.
    pub time: DateTime<Utc>,
    /// Alerts summarised in the email.
    pub alert_count: i32,
    /// Whether an email was sent (empty digests are skipped unless `sendEmpty`).
    pub sent: bool,
    /// SES message id of the email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}
