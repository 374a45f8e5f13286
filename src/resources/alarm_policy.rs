//! `AlarmPolicy`: what to watch. One SNS topic, CloudWatch metric alarms and EventBridge rules.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Conditions, DeletionPolicy, Severity, SpecMap};

/// What to watch: a topic, the CloudWatch alarms and the EventBridge rules that publish to it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "alertops.dev",
    version = "v1alpha1",
    kind = "AlarmPolicy",
    namespaced,
    status = "AlarmPolicyStatus",
    shortname = "ap",
    category = "alertops",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Alarms","type":"integer","jsonPath":".status.alarmCount"}"#,
    printcolumn = r#"{"name":"Firing","type":"integer","jsonPath":".status.firing"}"#,
    printcolumn = r#"{"name":"Rules","type":"integer","jsonPath":".status.ruleCount"}"#,
    printcolumn = r#"{"name":"Lint","type":"string","jsonPath":".status.conditions[?(@.type==\"Lint\")].reason"}"#,
    printcolumn = r#"{"name":"Topic","type":"string","jsonPath":".status.topicArn","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    cel
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.alarms) || self.alarms.all(a, self.alarms.exists_one(b, b.name == a.name))")
    .message("alarm names must be unique within a policy"))]
#[x_kube(validation = Rule::new("!has(self.eventRules) || self.eventRules.all(a, self.eventRules.exists_one(b, b.name == a.name))")
    .message("event rule names must be unique within a policy"))]
#[x_kube(validation = Rule::new("!has(self.compositeAlarms) || self.compositeAlarms.all(a, self.compositeAlarms.exists_one(b, b.name == a.name) && (!has(self.alarms) || !self.alarms.exists(b, b.name == a.name)))")
    .message("composite alarm names must be unique within a policy and differ from its alarm names"))]
#[x_kube(validation = Rule::new("!has(self.logAlarms) || self.logAlarms.all(a, self.logAlarms.exists_one(b, b.name == a.name) && (!has(self.alarms) || !self.alarms.exists(b, b.name == a.name)) && (!has(self.compositeAlarms) || !self.compositeAlarms.exists(b, b.name == a.name)))")
    .message("log alarm names must be unique within a policy and differ from its alarm and composite alarm names"))]
pub struct AlarmPolicySpec {
    /// The SNS topic alarms and rules publish to. By default a topic is created for the policy.
    #[serde(default)]
    pub topic: TopicSpec,
    /// What happens to the AWS resources this policy created when it is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Tags put on every AWS resource the policy creates, for example `Team` and `Feature`.
    /// Alert routes match on them.
    #[serde(default, skip_serializing_if = "SpecMap::is_empty")]
    #[schemars(with = "BTreeMap<String, String>")]
    pub tags: SpecMap,
    /// CloudWatch metric alarms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500))]
    pub alarms: Vec<AlarmSpec>,
    /// Composite alarms: rules over this policy's alarms (`ALARM(errors) AND ALARM(latency)`)
    /// that notify once when the combination holds, instead of once per alarm. Give the alarms
    /// they combine `actionsEnabled: false` (or leave their notifications on) as you need.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub composite_alarms: Vec<CompositeAlarmSpec>,
    /// Alarms on log events: a CloudWatch Logs metric filter (owned by the policy) turns the
    /// matching lines of a log group into a metric, and an ordinary alarm watches that metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub log_alarms: Vec<LogAlarmSpec>,
    /// EventBridge rules whose events are published to the topic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub event_rules: Vec<EventRuleSpec>,
}

/// The policy's SNS topic: created and owned (default), or an existing topic by ARN, which is
/// published to but never modified or deleted.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.existingArn) && has(self.displayName))")
    .message("displayName applies only to a topic alertops creates; remove it or existingArn"))]
pub struct TopicSpec {
    /// ARN of an existing topic to use instead of creating one. Its access policy must already
    /// allow CloudWatch and EventBridge to publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^arn:aws[a-zA-Z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"
    ))]
    pub existing_arn: Option<String>,
    /// Display name of the created topic (used as the sender name of SMS and email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub display_name: Option<String>,
}

/// A CloudWatch metric alarm: one metric with a statistic or percentile, or a metric-math expression.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.period * self.evaluationPeriods <= 86400")
    .message("period × evaluationPeriods must be at most 86400 seconds (one day)"))]
#[x_kube(validation = Rule::new("!has(self.datapointsToAlarm) || self.datapointsToAlarm <= self.evaluationPeriods")
    .message("datapointsToAlarm must not exceed evaluationPeriods"))]
#[x_kube(validation = Rule::new("has(self.metric) != has(self.metrics)")
    .message("set exactly one of metric (a single metric) or metrics (metric math)"))]
#[x_kube(validation = Rule::new("self.period in [10, 20, 30] || self.period % 60 == 0")
    .message("period must be 10, 20, 30 or a multiple of 60 seconds"))]
#[x_kube(validation = Rule::new("!has(self.additionalActions) || size(self.additionalActions) <= 4")
    .message("CloudWatch allows at most 5 alarm actions; the policy topic is one of them, so at most 4 additionalActions"))]
#[x_kube(validation = Rule::new("has(self.threshold) != has(self.anomalyDetection)")
    .message("set exactly one of threshold (a fixed line) or anomalyDetection (a band around the learned pattern)"))]
#[x_kube(validation = Rule::new("!has(self.comparison) || (has(self.anomalyDetection) == (self.comparison in ['LessThanLowerOrGreaterThanUpperThreshold', 'GreaterThanUpperThreshold', 'LessThanLowerThreshold']))")
    .message("anomalyDetection compares with its band (LessThanLowerOrGreaterThanUpperThreshold, GreaterThanUpperThreshold, LessThanLowerThreshold); a threshold with the other comparisons"))]
#[x_kube(validation = Rule::new("!has(self.anomalyDetection) || !has(self.metrics) || self.metrics.all(q, q.id != 'anomaly_band')")
    .message("the query id anomaly_band is taken by the anomaly detection band"))]
pub struct AlarmSpec {
    /// Name of the alarm within the policy; the AWS alarm name is derived from it.
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    )]
    pub name: String,
    /// What the alarm means, shown in notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 700))]
    pub description: Option<String>,
    /// Severity, written as the `Severity` tag and used by routes.
    #[serde(default)]
    pub severity: Severity,
    /// Link to the runbook, shown in notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), regex(pattern = r"^https?://"))]
    pub runbook_url: Option<String>,
    /// The metric to alarm on, with a statistic or a percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricSpec>,
    /// Metric-math queries; exactly one of them returns the data the alarm evaluates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 10))]
    pub metrics: Option<Vec<MetricQuery>>,
    /// Length of one datapoint in seconds: 10, 20, 30 or a multiple of 60.
    #[schemars(range(min = 10, max = 86400))]
    pub period: i32,
    /// Number of most recent periods evaluated.
    #[schemars(range(min = 1, max = 1440))]
    pub evaluation_periods: i32,
    /// Number of breaching datapoints within the evaluation periods that trigger the alarm
    /// ("M out of N"); defaults to evaluationPeriods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1440))]
    pub datapoints_to_alarm: Option<i32>,
    /// Value the statistic is compared with (a static threshold). Set this or
    /// `anomalyDetection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Compare with a band of standard deviations around the metric's learned pattern instead of
    /// a fixed threshold (CloudWatch anomaly detection): catches a slow leak or a drift that a
    /// fixed line would see too late. The comparison then names the band's sides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly_detection: Option<AnomalyDetectionSpec>,
    /// How the statistic is compared with the threshold (or the anomaly band).
    pub comparison: ComparisonOperator,
    /// How missing datapoints are treated.
    #[serde(default)]
    pub treat_missing_data: TreatMissingData,
    /// Also notify when the alarm returns to OK, so messages can be resolved.
    #[serde(default = "default_true")]
    pub ok_notifications: bool,
    /// Also notify on INSUFFICIENT_DATA.
    #[serde(default)]
    pub insufficient_data_notifications: bool,
    /// Whether actions run at all; false keeps the alarm but silences it.
    #[serde(default = "default_true")]
    pub actions_enabled: bool,
    /// Further alarm actions (ARNs of topics, Auto Scaling policies, ...), besides the policy topic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_actions: Vec<String>,
    /// Tags of this alarm, added to the policy's tags.
    #[serde(default, skip_serializing_if = "SpecMap::is_empty")]
    #[schemars(with = "BTreeMap<String, String>")]
    pub tags: SpecMap,
}

fn default_true() -> bool {
    true
}

/// A CloudWatch anomaly detection band: `ANOMALY_DETECTION_BAND(metric, bandWidth)`, which
/// CloudWatch learns from up to two weeks of the metric's history (daily and weekly patterns).
/// A new band needs some history before it is narrow; the alarm is INSUFFICIENT_DATA until then.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyDetectionSpec {
    /// Width of the band in standard deviations; wider means fewer alarms (CloudWatch suggests 2).
    #[serde(default = "default_band_width")]
    #[schemars(range(min = 0.1, max = 100.0))]
    pub band_width: f64,
}

fn default_band_width() -> f64 {
    2.0
}

impl AnomalyDetectionSpec {
    /// Id of the band's query in the alarm's metric math (the alarm's `ThresholdMetricId`).
    pub const BAND_ID: &'static str = "anomaly_band";
}

/// A composite alarm: a rule over the policy's own alarms, with its own notifications.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CompositeAlarmSpec {
    /// Name of the composite within the policy; the AWS alarm name is derived from it.
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    )]
    pub name: String,
    /// What the combination means, shown in notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 700))]
    pub description: Option<String>,
    /// Severity, written as the `Severity` tag and used by routes.
    #[serde(default)]
    pub severity: Severity,
    /// Link to the runbook, shown in notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), regex(pattern = r"^https?://"))]
    pub runbook_url: Option<String>,
    /// CloudWatch's rule syntax over the names of this policy's alarms (`spec.alarms`):
    /// `ALARM(name)`, `OK(name)`, `INSUFFICIENT_DATA(name)`, `TRUE`, `FALSE`, `AND`, `OR`, `NOT`
    /// and parentheses, for example `ALARM(error-rate) AND ALARM(latency-p99)`.
    #[schemars(length(min = 1, max = 10240))]
    pub rule: String,
    /// Also notify when the composite returns to OK.
    #[serde(default = "default_true")]
    pub ok_notifications: bool,
    /// Whether actions run at all.
    #[serde(default = "default_true")]
    pub actions_enabled: bool,
    /// Tags of this composite, added to the policy's tags.
    #[serde(default, skip_serializing_if = "SpecMap::is_empty")]
    #[schemars(with = "BTreeMap<String, String>")]
    pub tags: SpecMap,
}

/// An alarm on log events: the metric filter that counts (or measures) matching lines, and the
/// alarm on the metric it publishes. The alarm fields are those of `alarms[]`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.period * self.evaluationPeriods <= 86400")
    .message("period × evaluationPeriods must be at most 86400 seconds (one day)"))]
#[x_kube(validation = Rule::new("!has(self.datapointsToAlarm) || self.datapointsToAlarm <= self.evaluationPeriods")
    .message("datapointsToAlarm must not exceed evaluationPeriods"))]
#[x_kube(validation = Rule::new("self.period in [10, 20, 30] || self.period % 60 == 0")
    .message("period must be 10, 20, 30 or a multiple of 60 seconds"))]
#[x_kube(validation = Rule::new("!has(self.additionalActions) || size(self.additionalActions) <= 4")
    .message("CloudWatch allows at most 5 alarm actions; the policy topic is one of them, so at most 4 additionalActions"))]
#[x_kube(validation = Rule::new("!self.comparison.endsWith('UpperThreshold') && !self.comparison.endsWith('LowerThreshold')")
    .message("a log alarm compares with a threshold (GreaterThanThreshold, GreaterThanOrEqualToThreshold, LessThanThreshold, LessThanOrEqualToThreshold)"))]
pub struct LogAlarmSpec {
    /// Name of the log alarm within the policy; the names of its metric filter and of its
    /// CloudWatch alarm are derived from it.
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    )]
    pub name: String,
    /// The log group, the filter pattern and the metric the matching lines produce.
    pub logs: LogSourceSpec,
    /// What the alarm means, shown in notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 700))]
    pub description: Option<String>,
    /// Severity, written as the `Severity` tag and used by routes.
    #[serde(default)]
    pub severity: Severity,
    /// Link to the runbook, shown in notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), regex(pattern = r"^https?://"))]
    pub runbook_url: Option<String>,
    /// Statistic of the produced metric the alarm evaluates. Counting matching lines (metric
    /// value `1`) wants `Sum`, the default.
    #[serde(default = "default_sum")]
    pub statistic: Statistic,
    /// Dimension values of the series the alarm watches, one for each dimension of
    /// `logs.metric.dimensions` (a filter with dimensions publishes only per-value series).
    #[serde(default, skip_serializing_if = "SpecMap::is_empty")]
    #[schemars(with = "BTreeMap<String, String>")]
    pub dimensions: SpecMap,
    /// Length of one datapoint in seconds: 10, 20, 30 or a multiple of 60.
    #[schemars(range(min = 10, max = 86400))]
    pub period: i32,
    /// Number of most recent periods evaluated.
    #[schemars(range(min = 1, max = 1440))]
    pub evaluation_periods: i32,
    /// Number of breaching datapoints within the evaluation periods that trigger the alarm;
    /// defaults to evaluationPeriods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1440))]
    pub datapoints_to_alarm: Option<i32>,
    /// Value the statistic is compared with.
    pub threshold: f64,
    /// How the statistic is compared with the threshold.
    pub comparison: ComparisonOperator,
    /// How missing datapoints are treated. A count of log lines has no datapoint when nothing
    /// matched (unless `logs.metric.defaultValue` is set): `notBreaching` is usually right.
    #[serde(default)]
    pub treat_missing_data: TreatMissingData,
    /// Also notify when the alarm returns to OK.
    #[serde(default = "default_true")]
    pub ok_notifications: bool,
    /// Also notify on INSUFFICIENT_DATA.
    #[serde(default)]
    pub insufficient_data_notifications: bool,
    /// Whether actions run at all; false keeps the alarm but silences it.
    #[serde(default = "default_true")]
    pub actions_enabled: bool,
    /// Further alarm actions (ARNs), besides the policy topic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_actions: Vec<String>,
    /// Tags of the alarm, added to the policy's tags (metric filters have no tags).
    #[serde(default, skip_serializing_if = "SpecMap::is_empty")]
    #[schemars(with = "BTreeMap<String, String>")]
    pub tags: SpecMap,
}

fn default_sum() -> Statistic {
    Statistic::Sum
}

impl LogAlarmSpec {
    /// The ordinary alarm on the metric the filter publishes: everything a log alarm says about
    /// alarming, in the shape of `alarms[]`, so it is built, planned and owned like one.
    pub fn alarm(&self) -> AlarmSpec {
        AlarmSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            severity: self.severity,
            runbook_url: self.runbook_url.clone(),
            metric: Some(MetricSpec {
                namespace: self.logs.metric.namespace.clone(),
                name: self.logs.metric.name.clone(),
                dimensions: self.dimensions.clone(),
                statistic: Some(self.statistic),
                percentile: None,
                unit: None,
            }),
            metrics: None,
            period: self.period,
            evaluation_periods: self.evaluation_periods,
            datapoints_to_alarm: self.datapoints_to_alarm,
            threshold: Some(self.threshold),
            anomaly_detection: None,
            comparison: self.comparison,
            treat_missing_data: self.treat_missing_data,
            ok_notifications: self.ok_notifications,
            insufficient_data_notifications: self.insufficient_data_notifications,
            actions_enabled: self.actions_enabled,
            additional_actions: self.additional_actions.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// Where the log lines come from and what metric they produce (a CloudWatch Logs metric filter).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogSourceSpec {
    /// The log group, for example `/aws/lambda/checkout`. It must exist: a missing group is
    /// reported as `Ready=False LogGroupNotFound`.
    #[schemars(length(min = 1, max = 512), regex(pattern = r"^[.\-_/#A-Za-z0-9]+$"))]
    pub log_group: String,
    /// CloudWatch Logs filter pattern: terms (`ERROR`, `"Connection refused"`, `?ERROR ?WARN`,
    /// `-healthcheck`), a JSON selector (`{ $.level = "ERROR" && $.service = "checkout" }`) or
    /// space-delimited fields (`[ip, user, ..., status = 5*, bytes]`). `alertops lint` checks
    /// its syntax.
    #[schemars(length(max = 1024))]
    pub filter_pattern: String,
    /// The metric the matching lines produce.
    pub metric: LogMetricSpec,
}

/// The metric a metric filter publishes for each matching log event.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.dimensions) || !has(self.defaultValue)")
    .message("CloudWatch Logs allows no defaultValue on a metric with dimensions"))]
pub struct LogMetricSpec {
    /// Metric namespace, for example `ServerlessApi/Logs`.
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[0-9A-Za-z.\-_/#:]+$"))]
    pub namespace: String,
    /// Metric name, for example `CheckoutErrors`.
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[^:*$]+$"))]
    pub name: String,
    /// Value published per matching line: `1` counts lines; `$.field` (JSON) or `$name`
    /// (space-delimited) publishes a number from the line.
    #[serde(default = "default_metric_value")]
    #[schemars(length(min = 1, max = 100))]
    pub value: String,
    /// Value published for a period in which no line matched (no datapoint when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<f64>,
    /// Dimensions taken from the event: dimension name → `$.field` (JSON patterns) or `$name`
    /// (space-delimited). At most 3.
    #[serde(default, skip_serializing_if = "SpecMap::is_empty")]
    #[schemars(with = "BTreeMap<String, String>")]
    #[schemars(length(max = 3))]
    pub dimensions: SpecMap,
    /// Unit of the published metric, e.g. `Count` or `Milliseconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

fn default_metric_value() -> String {
    "1".to_string()
}

/// A single metric and how its datapoints are aggregated.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.statistic) != has(self.percentile)")
    .message("set exactly one of statistic or percentile"))]
pub struct MetricSpec {
    /// Metric namespace, for example `AWS/ELB`.
    #[schemars(length(min = 1, max = 255))]
    pub namespace: String,
    /// Metric name, for example `BackendConnectionErrors`.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// Metric dimensions, for example `LoadBalancerName`.
    #[serde(default, skip_serializing_if = "SpecMap::is_empty")]
    #[schemars(with = "BTreeMap<String, String>")]
    pub dimensions: SpecMap,
    /// Statistic. Count metrics (errors, HTTP codes) need `Sum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<Statistic>,
    /// Percentile or extended statistic, for example `p99`, `p99.9` or `tm90`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(p|tm|tc|ts|wm|pr)\d{1,2}(\.\d{1,10})?$"))]
    pub percentile: Option<String>,
    /// Unit of the metric, when it is published with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// One query of a metric-math alarm: a metric or an expression over other queries.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.metric) != has(self.expression)")
    .message("a query sets exactly one of metric or expression"))]
pub struct MetricQuery {
    /// Query id, referenced by expressions (starts with a lowercase letter).
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[a-z][A-Za-z0-9_]*$"))]
    pub id: String,
    /// A metric-math expression, for example `errors / requests * 100`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub expression: Option<String>,
    /// A metric with a statistic (any CloudWatch statistic, including percentiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<QueryMetric>,
    /// Human-readable label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Whether this query is the one the alarm evaluates; exactly one query returns data.
    #[serde(default)]
    pub return_data: bool,
}

/// A metric inside a metric-math query.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueryMetric {
    /// Metric namespace.
    #[schemars(length(min = 1, max = 255))]
    pub namespace: String,
    /// Metric name.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// Metric dimensions.
    #[serde(default, skip_serializing_if = "SpecMap::is_empty")]
    #[schemars(with = "BTreeMap<String, String>")]
    pub dimensions: SpecMap,
    /// Statistic, for example `Sum` or `p99`.
    #[schemars(length(min = 1, max = 20))]
    pub stat: String,
    /// Unit, when the metric is published with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// CloudWatch statistics.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    /// Sum of the values: right for counts (errors, requests, HTTP codes).
    Sum,
    /// Mean of the values.
    Average,
    /// Highest value.
    Maximum,
    /// Lowest value.
    Minimum,
    /// Number of datapoints.
    SampleCount,
}

impl Statistic {
    /// The name CloudWatch uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Statistic::Sum => "Sum",
            Statistic::Average => "Average",
            Statistic::Maximum => "Maximum",
            Statistic::Minimum => "Minimum",
            Statistic::SampleCount => "SampleCount",
        }
    }
}

/// How the statistic is compared with the threshold.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComparisonOperator {
    /// statistic > threshold
    GreaterThanThreshold,
    /// statistic >= threshold
    GreaterThanOrEqualToThreshold,
    /// statistic < threshold
    LessThanThreshold,
    /// statistic <= threshold
    LessThanOrEqualToThreshold,
    /// statistic outside the anomaly band (either side).
    LessThanLowerOrGreaterThanUpperThreshold,
    /// statistic above the anomaly band.
    GreaterThanUpperThreshold,
    /// statistic below the anomaly band.
    LessThanLowerThreshold,
}

impl ComparisonOperator {
    /// The name CloudWatch uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ComparisonOperator::GreaterThanThreshold => "GreaterThanThreshold",
            ComparisonOperator::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            ComparisonOperator::LessThanThreshold => "LessThanThreshold",
            ComparisonOperator::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
            ComparisonOperator::LessThanLowerOrGreaterThanUpperThreshold => {
                "LessThanLowerOrGreaterThanUpperThreshold"
            }
            ComparisonOperator::GreaterThanUpperThreshold => "GreaterThanUpperThreshold",
            ComparisonOperator::LessThanLowerThreshold => "LessThanLowerThreshold",
        }
    }

    /// Whether it compares with an anomaly detection band rather than a threshold.
    pub fn is_band(self) -> bool {
        matches!(
            self,
            ComparisonOperator::LessThanLowerOrGreaterThanUpperThreshold
                | ComparisonOperator::GreaterThanUpperThreshold
                | ComparisonOperator::LessThanLowerThreshold
        )
    }
}

/// How CloudWatch treats periods without datapoints.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum TreatMissingData {
    /// Missing datapoints are ignored when evaluating (the AWS default).
    #[default]
    Missing,
    /// Missing datapoints count as within the threshold. Right for sparse error counts.
    NotBreaching,
    /// Missing datapoints count as breaching. Right for heartbeats.
    Breaching,
    /// The alarm keeps its current state.
    Ignore,
}

impl TreatMissingData {
    /// The name CloudWatch uses.
    pub fn as_str(self) -> &'static str {
        match self {
            TreatMissingData::Missing => "missing",
            TreatMissingData::NotBreaching => "notBreaching",
            TreatMissingData::Breaching => "breaching",
            TreatMissingData::Ignore => "ignore",
        }
    }
}

/// An EventBridge rule on the default event bus, targeting the policy's topic.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.preset) != has(self.eventPattern)")
    .message("set exactly one of preset or eventPattern"))]
#[x_kube(validation = Rule::new("!has(self.ecs) || (has(self.preset) && self.preset in ['EcsServiceAction', 'EcsTaskStopped'])")
    .message("ecs options apply only to the EcsServiceAction and EcsTaskStopped presets"))]
#[x_kube(validation = Rule::new("!has(self.emr) || (has(self.preset) && self.preset == 'EmrClusterFailed')")
    .message("emr options apply only to the EmrClusterFailed preset"))]
pub struct EventRuleSpec {
    /// Name of the rule within the policy; the AWS rule name is derived from it.
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    )]
    pub name: String,
    /// What the rule catches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 400))]
    pub description: Option<String>,
    /// Whether the rule is enabled.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A ready-made pattern for a common event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<EventPreset>,
    /// Options of the EMR presets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emr: Option<EmrPresetOptions>,
    /// Options of the ECS presets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs: Option<EcsPresetOptions>,
    /// A raw EventBridge event pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::resources::crd::any_object")]
    pub event_pattern: Option<serde_json::Value>,
}

/// Ready-made event patterns.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventPreset {
    /// EMR "Cluster State Change" to TERMINATED_WITH_ERRORS.
    EmrClusterFailed,
    /// ECS "Service Action" events (WARN and ERROR by default: impaired task starts, failed
    /// deployments, and the scale events named in `ecs.eventNames`).
    EcsServiceAction,
    /// ECS "Task State Change" to STOPPED (tasks that keep terminating).
    EcsTaskStopped,
}

/// Options of the EMR presets.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EmrPresetOptions {
    /// Only clusters with these names (exact match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_names: Vec<String>,
}

/// Options of the ECS presets.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EcsPresetOptions {
    /// Only these ECS cluster ARNs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_arns: Vec<String>,
    /// Service action event types (INFO, WARN, ERROR); defaults to WARN and ERROR.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
    /// Service action event names, for example SERVICE_DESIRED_COUNT_UPDATED; empty means all of
    /// the selected event types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_names: Vec<String>,
}

/// Observed state of an AlarmPolicy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlarmPolicyStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (AWS matches the spec) and `Lint` (findings of the alarm lint rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Conditions,
    /// ARN of the policy's SNS topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    /// Whether alertops created (and owns) the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_owned: Option<bool>,
    /// The alarms as they exist in CloudWatch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<AlarmStatus>,
    /// The composite alarms as they exist in CloudWatch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub composite_alarms: Vec<AlarmStatus>,
    /// The EventBridge rules as they exist in AWS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_rules: Vec<EventRuleStatus>,
    /// The CloudWatch Logs metric filters of the log alarms, as they exist in AWS (their alarms
    /// are in `alarms`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_filters: Vec<MetricFilterStatus>,
    /// Number of alarms in CloudWatch that match the spec.
    #[serde(default)]
    pub alarm_count: i32,
    /// Number of EventBridge rules in AWS that match the spec.
    #[serde(default)]
    pub rule_count: i32,
    /// Number of the policy's alarms and composite alarms in state `ALARM` when CloudWatch was
    /// last read.
    #[serde(default)]
    pub firing: i32,
    /// Findings of the alarm lint rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lint: Vec<LintFinding>,
}

/// One alarm of the policy, as it exists in CloudWatch.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlarmStatus {
    /// Name in the spec.
    pub name: String,
    /// Name of the CloudWatch alarm.
    pub alarm_name: String,
    /// ARN of the CloudWatch alarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Digest of the tags last written to and verified on the alarm; tags are read back from
    /// CloudWatch only when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_digest: Option<String>,
    /// The alarm's state when the controller last read CloudWatch (every resync reads it with
    /// the alarm's definition, so it lags by at most the resync interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AlarmState>,
    /// Why CloudWatch put the alarm in that state, in CloudWatch's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    /// When the alarm entered that state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_changed_at: Option<Time>,
}

/// The state of a CloudWatch alarm.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlarmState {
    /// Within the threshold.
    #[serde(rename = "OK")]
    Ok,
    /// Breaching: the alarm is firing.
    #[serde(rename = "ALARM")]
    Alarm,
    /// Not enough data to decide (new alarms, metrics that stopped).
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    /// The state named as CloudWatch names it; `None` for a name CloudWatch does not use.
    pub fn parse(value: &str) -> Option<AlarmState> {
        match value {
            "OK" => Some(AlarmState::Ok),
            "ALARM" => Some(AlarmState::Alarm),
            "INSUFFICIENT_DATA" => Some(AlarmState::InsufficientData),
            _ => None,
        }
    }

    /// The name CloudWatch uses.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// One EventBridge rule of the policy, as it exists in AWS.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventRuleStatus {
    /// Name in the spec.
    pub name: String,
    /// Name of the EventBridge rule.
    pub rule_name: String,
    /// ARN of the EventBridge rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Digest of the tags last written to and verified on the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_digest: Option<String>,
}

/// One metric filter of the policy, as it exists in CloudWatch Logs.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MetricFilterStatus {
    /// Name of the log alarm in the spec.
    pub name: String,
    /// Name of the metric filter (under the policy's name prefix, which proves it is ours).
    pub filter_name: String,
    /// The log group it filters.
    pub log_group: String,
}

/// A finding of the alarm lint rules.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LintFinding {
    /// Identifier of the rule, for example `count-metric-needs-sum`.
    pub rule: String,
    /// `Error` findings fail `alertops lint`; `Warning` findings are advice.
    pub level: LintLevel,
    /// The alarm the finding is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// How serious a lint finding is.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum LintLevel {
    /// Advice.
    Warning,
    /// A mistake that keeps the alarm from working; `alertops lint` exits 1.
    Error,
}
