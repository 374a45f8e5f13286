//! The desired AWS state of an AlarmPolicy, built from the spec alone (no I/O), and the
//! normalised comparison with what AWS reports.

use serde_json::{Value, json};

pub use crate::aws::cloudwatch::{
    AlarmDefinition, AlarmMetric, CompositeDefinition, MathMetric, MathQuery,
};
pub use crate::aws::eventbridge::RuleDefinition;
pub use crate::aws::log_filters::MetricFilterDefinition;
use crate::names::OwnerIdentity;
use crate::resources::alarm_policy::{
    AlarmPolicySpec, AlarmSpec, AnomalyDetectionSpec, CompositeAlarmSpec, EventRuleSpec,
    LogAlarmSpec,
};
use crate::resources::{SpecMap, Tags, owned_map};

use super::presets;

/// Id of the EventBridge target alertops puts on its rules.
pub const RULE_TARGET_ID: &str = "alertops-topic";

/// Everything an AlarmPolicy should have in AWS.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredPolicy {
    /// The topic: created with this name, or an existing ARN.
    pub topic: DesiredTopic,
    /// Tags of the topic (policy tags and ownership tags).
    pub topic_tags: Tags,
    /// Alarms by spec name, in spec order.
    pub alarms: Vec<DesiredAlarm>,
    /// Composite alarms, in spec order.
    pub composites: Vec<DesiredComposite>,
    /// Rules by spec name, in spec order.
    pub rules: Vec<DesiredRule>,
    /// Metric filters of the log alarms, in spec order (their alarms are in `alarms`).
    pub filters: Vec<DesiredFilter>,
}

/// The metric filter of one log alarm.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredFilter {
    /// Name of the log alarm in the spec.
    pub spec_name: String,
    /// The filter, in the shape CloudWatch Logs reports it.
    pub definition: MetricFilterDefinition,
}

/// One composite alarm.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredComposite {
    /// Name in the spec.
    pub spec_name: String,
    /// The definition, in the shape CloudWatch reports it.
    pub definition: CompositeDefinition,
    /// Tags (policy, composite, severity, ownership).
    pub tags: Tags,
}

/// The policy's topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DesiredTopic {
    /// A topic alertops creates and owns.
    Owned {
        /// Topic name.
        name: String,
        /// Display name attribute.
        display_name: Option<String>,
    },
    /// An existing topic, published to and never modified.
    Existing {
        /// Its ARN.
        arn: String,
    },
}

/// One alarm, with the topic ARN still to be filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredAlarm {
    /// Name in the spec.
    pub spec_name: String,
    /// The definition, in the shape CloudWatch reports it.
    pub definition: AlarmDefinition,
    /// Tags (policy, alarm, severity, ownership).
    pub tags: Tags,
}

/// One EventBridge rule.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredRule {
    /// Name in the spec.
    pub spec_name: String,
    /// The definition, in the shape EventBridge reports it.
    pub definition: RuleDefinition,
    /// Tags (policy and ownership).
    pub tags: Tags,
}

/// Builds the desired state. `topic_arn` is used for the alarm actions; pass the ARN known so far
/// (for a topic still to be created, the actions are filled in once it exists).
pub fn build(spec: &AlarmPolicySpec, owner: &OwnerIdentity, topic_arn: &str) -> DesiredPolicy {
    let (topic, policy_tags) = topic(spec, owner);
    DesiredPolicy {
        topic,
        topic_tags: policy_tags.clone(),
        // A log alarm's alarm is an ordinary alarm of the policy, after the spec's alarms.
        alarms: spec
            .alarms
            .iter()
            .cloned()
            .chain(spec.log_alarms.iter().map(LogAlarmSpec::alarm))
            .map(|alarm| build_alarm(&alarm, owner, topic_arn, &policy_tags))
            .collect(),
        composites: spec
            .composite_alarms
            .iter()
            .map(|composite| build_composite(composite, owner, topic_arn, &policy_tags))
            .collect(),
        rules: spec
            .event_rules
            .iter()
            .map(|rule| build_rule(rule, owner, &policy_tags))
            .collect(),
        filters: spec
            .log_alarms
            .iter()
            .map(|log_alarm| build_filter(log_alarm, owner))
            .collect(),
    }
}

/// A log alarm's metric filter, named like its alarm: under the policy's prefix, which is the
/// only ownership proof a metric filter can carry (they have no tags).
fn build_filter(log_alarm: &LogAlarmSpec, owner: &OwnerIdentity) -> DesiredFilter {
    let logs = &log_alarm.logs;
    DesiredFilter {
        spec_name: log_alarm.name.clone(),
        definition: MetricFilterDefinition {
            filter_name: owner.metric_filter_name(&log_alarm.name),
            log_group: logs.log_group.clone(),
            pattern: logs.filter_pattern.clone(),
            metric_namespace: logs.metric.namespace.clone(),
            metric_name: logs.metric.name.clone(),
            metric_value: logs.metric.value.clone(),
            default_value: logs.metric.default_value,
            dimensions: owned_map(&logs.metric.dimensions),
            unit: logs.metric.unit.clone().filter(|u| u != "None"),
        },
    }
}

/// The fields in which an observed metric filter differs from the desired one, with both values
/// (PutMetricFilter replaces the whole filter, so any difference is one write).
pub fn filter_changes(
    desired: &MetricFilterDefinition,
    observed: &MetricFilterDefinition,
) -> Vec<FieldChange> {
    let mut out = Changes::default();
    out.check("filterPattern", &desired.pattern, &observed.pattern);
    out.check(
        "metricNamespace",
        &desired.metric_namespace,
        &observed.metric_namespace,
    );
    out.check("metricName", &desired.metric_name, &observed.metric_name);
    out.check("metricValue", &desired.metric_value, &observed.metric_value);
    out.check(
        "defaultValue",
        &desired.default_value,
        &observed.default_value,
    );
    out.check("dimensions", &desired.dimensions, &observed.dimensions);
    out.check("unit", &desired.unit, &observed.unit);
    out.0
}

/// Names of the fields in which an observed metric filter differs (see [`filter_changes`]).
pub fn filter_differences(
    desired: &MetricFilterDefinition,
    observed: &MetricFilterDefinition,
) -> Vec<&'static str> {
    field_names(filter_changes(desired, observed))
}

/// A composite alarm: its rule over our AWS alarm names (validation has checked it parses and
/// names only the policy's alarms; a rule that does not parse is kept as written so the
/// definition stays total), the topic for ALARM and OK, and tags like a metric alarm's.
fn build_composite(
    composite: &CompositeAlarmSpec,
    owner: &OwnerIdentity,
    topic_arn: &str,
    policy_tags: &Tags,
) -> DesiredComposite {
    let rule =
        crate::resources::composite_rule::aws_rule(&composite.rule, |name| owner.alarm_name(name))
            .unwrap_or_else(|_| composite.rule.clone());
    let mut description = Vec::new();
    if let Some(d) = &composite.description {
        description.push(d.trim().to_string());
    }
    if let Some(url) = &composite.runbook_url {
        description.push(format!("Runbook: {url}"));
    }
    let mut tags = policy_tags.clone();
    tags.extend(composite.tags.clone());
    tags.insert(
        crate::alert::SEVERITY_TAG.to_string(),
        composite.severity.as_str().to_string(),
    );
    if let Some(url) = &composite.runbook_url {
        tags.insert(crate::alert::RUNBOOK_TAG.to_string(), url.clone());
    }
    tags.extend(owner.ownership_tags());
    DesiredComposite {
        spec_name: composite.name.clone(),
        definition: CompositeDefinition {
            alarm_name: owner.alarm_name(&composite.name),
            description: (!description.is_empty()).then(|| description.join("\n")),
            actions_enabled: composite.actions_enabled,
            alarm_actions: vec![topic_arn.to_string()],
            ok_actions: if composite.ok_notifications {
                vec![topic_arn.to_string()]
            } else {
                Vec::new()
            },
            insufficient_data_actions: Vec::new(),
            rule,
        },
        tags,
    }
}

/// The fields in which an observed composite differs from the desired one, with both values.
pub fn composite_changes(
    desired: &CompositeDefinition,
    observed: &CompositeDefinition,
) -> Vec<FieldChange> {
    let mut out = Changes::default();
    out.check_notifications(
        &Notifications::of_composite(desired),
        &Notifications::of_composite(observed),
    );
    out.check("rule", &desired.rule, &observed.rule);
    out.0
}

/// What metric and composite alarms have in common: their description and where they notify.
/// Compared first, in this order, for both kinds.
struct Notifications<'a> {
    description: &'a Option<String>,
    actions_enabled: &'a bool,
    alarm_actions: &'a Vec<String>,
    ok_actions: &'a Vec<String>,
    insufficient_data_actions: &'a Vec<String>,
}

impl<'a> Notifications<'a> {
    fn of_alarm(alarm: &'a AlarmDefinition) -> Self {
        Notifications {
            description: &alarm.description,
            actions_enabled: &alarm.actions_enabled,
            alarm_actions: &alarm.alarm_actions,
            ok_actions: &alarm.ok_actions,
            insufficient_data_actions: &alarm.insufficient_data_actions,
        }
    }

    fn of_composite(composite: &'a CompositeDefinition) -> Self {
        Notifications {
            description: &composite.description,
            actions_enabled: &composite.actions_enabled,
            alarm_actions: &composite.alarm_actions,
            ok_actions: &composite.ok_actions,
            insufficient_data_actions: &composite.insufficient_data_actions,
        }
    }
}

fn field_names(changes: Vec<FieldChange>) -> Vec<&'static str> {
    changes.into_iter().map(|c| c.field).collect()
}

/// Names of the fields in which an observed composite differs (see [`composite_changes`]).
pub fn composite_differences(
    desired: &CompositeDefinition,
    observed: &CompositeDefinition,
) -> Vec<&'static str> {
    field_names(composite_changes(desired, observed))
}

/// The policy's topic and the tags of everything the policy makes (the spec's tags and the
/// ownership tags). Needed before the rest: the alarms' actions name the topic's ARN.
pub fn topic(spec: &AlarmPolicySpec, owner: &OwnerIdentity) -> (DesiredTopic, Tags) {
    let mut policy_tags = owned_map(&spec.tags);
    policy_tags.extend(owner.ownership_tags());
    let topic = match &spec.topic.existing_arn {
        Some(arn) => DesiredTopic::Existing { arn: arn.clone() },
        None => DesiredTopic::Owned {
            name: owner.topic_name(),
            display_name: spec.topic.display_name.clone(),
        },
    };
    (topic, policy_tags)
}

fn build_alarm(
    alarm: &AlarmSpec,
    owner: &OwnerIdentity,
    topic_arn: &str,
    policy_tags: &Tags,
) -> DesiredAlarm {
    let mut alarm_actions = vec![topic_arn.to_string()];
    alarm_actions.extend(alarm.additional_actions.iter().cloned());
    alarm_actions.sort();
    alarm_actions.dedup();
    let topic_only = vec![topic_arn.to_string()];

    let mut metric = match (&alarm.metric, &alarm.metrics) {
        (Some(m), _) => AlarmMetric::Single {
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            dimensions: sorted_dimensions(&m.dimensions),
            statistic: m.statistic.map(|s| s.as_str().to_string()),
            extended_statistic: m.percentile.clone(),
            period: alarm.period,
            unit: m.unit.clone(),
        },
        (None, Some(queries)) => AlarmMetric::Math(
            queries
                .iter()
                .map(|q| MathQuery {
                    id: q.id.clone(),
                    expression: q.expression.clone(),
                    metric: q.metric.as_ref().map(|m| MathMetric {
                        namespace: m.namespace.clone(),
                        name: m.name.clone(),
                        dimensions: sorted_dimensions(&m.dimensions),
                        stat: m.stat.clone(),
                        unit: m.unit.clone(),
                    }),
                    label: q.label.clone(),
                    return_data: q.return_data,
                    period: q.metric.as_ref().map(|_| alarm.period),
                })
                .collect(),
        ),
        // Rejected by the schema and by validation; an empty query list keeps this total.
        (None, None) => AlarmMetric::Math(Vec::new()),
    };
    let threshold_metric_id = alarm.anomaly_detection.as_ref().map(|band| {
        metric = with_anomaly_band(
            std::mem::replace(&mut metric, AlarmMetric::Math(Vec::new())),
            band,
            alarm.period,
        );
        AnomalyDetectionSpec::BAND_ID.to_string()
    });

    let mut tags = policy_tags.clone();
    tags.extend(alarm.tags.clone());
    tags.insert(
        crate::alert::SEVERITY_TAG.to_string(),
        alarm.severity.as_str().to_string(),
    );
    if let Some(url) = &alarm.runbook_url {
        // Read back by the consumer's enrichment to link the runbook from Slack.
        tags.insert(crate::alert::RUNBOOK_TAG.to_string(), url.clone());
    }
    tags.extend(owner.ownership_tags());

    DesiredAlarm {
        spec_name: alarm.name.clone(),
        definition: AlarmDefinition {
            alarm_name: owner.alarm_name(&alarm.name),
            description: alarm_description(alarm),
            actions_enabled: alarm.actions_enabled,
            alarm_actions,
            ok_actions: if alarm.ok_notifications {
                topic_only.clone()
            } else {
                Vec::new()
            },
            insufficient_data_actions: if alarm.insufficient_data_notifications {
                topic_only
            } else {
                Vec::new()
            },
            metric,
            evaluation_periods: alarm.evaluation_periods,
            datapoints_to_alarm: alarm
                .datapoints_to_alarm
                .unwrap_or(alarm.evaluation_periods),
            // CloudWatch reports no threshold for a band alarm; 0 compares equal to that.
            threshold: alarm.threshold.unwrap_or_default(),
            threshold_metric_id,
            comparison: alarm.comparison.as_str().to_string(),
            treat_missing_data: alarm.treat_missing_data.as_str().to_string(),
        },
        tags,
    }
}

/// The alarm's metric as metric math with the anomaly detection band over the evaluated series,
/// as CloudWatch wants it: the series and `ANOMALY_DETECTION_BAND(series, width)` both return
/// data, and the band's id is the alarm's threshold metric.
fn with_anomaly_band(metric: AlarmMetric, band: &AnomalyDetectionSpec, period: i32) -> AlarmMetric {
    let mut queries = match metric {
        AlarmMetric::Single {
            namespace,
            name,
            dimensions,
            statistic,
            extended_statistic,
            unit,
            ..
        } => vec![MathQuery {
            id: ANOMALY_SERIES_ID.to_string(),
            expression: None,
            metric: Some(MathMetric {
                namespace,
                name,
                dimensions,
                stat: statistic.or(extended_statistic).unwrap_or_default(),
                unit,
            }),
            label: None,
            return_data: true,
            period: Some(period),
        }],
        AlarmMetric::Math(queries) => queries,
    };
    let series = queries
        .iter()
        .find(|q| q.return_data)
        .map(|q| q.id.clone())
        .unwrap_or_else(|| ANOMALY_SERIES_ID.to_string());
    queries.push(MathQuery {
        id: AnomalyDetectionSpec::BAND_ID.to_string(),
        expression: Some(format!(
            "ANOMALY_DETECTION_BAND({series}, {})",
            band.band_width
        )),
        metric: None,
        label: Some(format!(
            "expected range ({} standard deviations)",
            band.band_width
        )),
        return_data: true,
        period: None,
    });
    AlarmMetric::Math(queries)
}

/// Id of the series a single-metric anomaly detection alarm evaluates.
const ANOMALY_SERIES_ID: &str = "m1";

/// The alarm description carries the runbook so that notifications (which include the
/// description) link to it without another API call.
fn alarm_description(alarm: &AlarmSpec) -> Option<String> {
    let mut lines = Vec::new();
    if let Some(d) = &alarm.description {
        lines.push(d.trim().to_string());
    }
    if let Some(url) = &alarm.runbook_url {
        lines.push(format!("Runbook: {url}"));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn sorted_dimensions(dims: &SpecMap) -> Vec<(String, String)> {
    dims.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn build_rule(rule: &EventRuleSpec, owner: &OwnerIdentity, policy_tags: &Tags) -> DesiredRule {
    let event_pattern = match (&rule.preset, &rule.event_pattern) {
        (Some(preset), _) => presets::pattern(*preset, rule.emr.as_ref(), rule.ecs.as_ref()),
        (None, Some(pattern)) => pattern.clone(),
        (None, None) => json!({}),
    };
    let description = Some(match &rule.description {
        Some(d) => format!("{d} (alertops: {})", owner.owner_tag()),
        None => format!("Managed by alertops for {}", owner.owner_tag()),
    });
    let mut tags = policy_tags.clone();
    tags.extend(owner.ownership_tags());
    DesiredRule {
        spec_name: rule.name.clone(),
        definition: RuleDefinition {
            rule_name: owner.rule_name(&rule.name),
            description,
            enabled: rule.enabled,
            event_pattern,
        },
        tags,
    }
}

/// One field in which AWS differs from the spec: its name (as the AWS API spells it) and both
/// values as JSON, so `alertops plan` can show old → new for the same comparison the controller
/// decides on.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    /// The field, e.g. `threshold`.
    pub field: &'static str,
    /// What AWS has now.
    pub old: Value,
    /// What the spec wants.
    pub new: Value,
}

/// Collects the fields whose values differ, in a fixed order.
#[derive(Default)]
struct Changes(Vec<FieldChange>);

impl Changes {
    fn check<T: serde::Serialize + PartialEq + ?Sized>(
        &mut self,
        field: &'static str,
        desired: &T,
        observed: &T,
    ) {
        self.check_with(field, desired == observed, desired, observed);
    }

    fn check_notifications(&mut self, desired: &Notifications<'_>, observed: &Notifications<'_>) {
        self.check("description", desired.description, observed.description);
        self.check(
            "actionsEnabled",
            desired.actions_enabled,
            observed.actions_enabled,
        );
        self.check(
            "alarmActions",
            desired.alarm_actions,
            observed.alarm_actions,
        );
        self.check("okActions", desired.ok_actions, observed.ok_actions);
        self.check(
            "insufficientDataActions",
            desired.insufficient_data_actions,
            observed.insufficient_data_actions,
        );
    }

    fn check_with<T: serde::Serialize + ?Sized>(
        &mut self,
        field: &'static str,
        same: bool,
        desired: &T,
        observed: &T,
    ) {
        if !same {
            self.0.push(FieldChange {
                field,
                old: json!(observed),
                new: json!(desired),
            });
        }
    }
}

/// The fields in which `observed` differs from `desired`, with both values; empty when they
/// match. Thresholds compare with a relative tolerance because they travel as decimal text.
pub fn alarm_changes(desired: &AlarmDefinition, observed: &AlarmDefinition) -> Vec<FieldChange> {
    let mut out = Changes::default();
    out.check_notifications(
        &Notifications::of_alarm(desired),
        &Notifications::of_alarm(observed),
    );
    out.check_with(
        "metric",
        desired.metric == observed.metric,
        &metric_value(&desired.metric),
        &metric_value(&observed.metric),
    );
    out.check(
        "evaluationPeriods",
        &desired.evaluation_periods,
        &observed.evaluation_periods,
    );
    out.check(
        "datapointsToAlarm",
        &desired.datapoints_to_alarm,
        &observed.datapoints_to_alarm,
    );
    let scale = desired
        .threshold
        .abs()
        .max(observed.threshold.abs())
        .max(1.0);
    out.check_with(
        "threshold",
        (desired.threshold - observed.threshold).abs() <= 1e-9 * scale,
        &desired.threshold,
        &observed.threshold,
    );
    out.check(
        "thresholdMetricId",
        &desired.threshold_metric_id,
        &observed.threshold_metric_id,
    );
    out.check("comparison", &desired.comparison, &observed.comparison);
    out.check(
        "treatMissingData",
        &desired.treat_missing_data,
        &observed.treat_missing_data,
    );
    out.0
}

/// Names of the fields in which `observed` differs from `desired` (see [`alarm_changes`]).
pub fn alarm_differences(
    desired: &AlarmDefinition,
    observed: &AlarmDefinition,
) -> Vec<&'static str> {
    field_names(alarm_changes(desired, observed))
}

/// The fields in which an observed rule differs from the desired one, with both values.
pub fn rule_changes(desired: &RuleDefinition, observed: &RuleDefinition) -> Vec<FieldChange> {
    let mut out = Changes::default();
    out.check("description", &desired.description, &observed.description);
    out.check_with(
        "state",
        desired.enabled == observed.enabled,
        rule_state(desired.enabled),
        rule_state(observed.enabled),
    );
    out.check(
        "eventPattern",
        &desired.event_pattern,
        &observed.event_pattern,
    );
    out.0
}

/// Names of the fields in which an observed rule differs from the desired one.
pub fn rule_differences(desired: &RuleDefinition, observed: &RuleDefinition) -> Vec<&'static str> {
    field_names(rule_changes(desired, observed))
}

fn rule_state(enabled: bool) -> &'static str {
    if enabled { "ENABLED" } else { "DISABLED" }
}

/// An alarm's metric as JSON in CloudWatch's terms (for showing, not for sending).
pub fn metric_value(metric: &AlarmMetric) -> Value {
    let dimensions = |dims: &[(String, String)]| -> Value {
        dims.iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    match metric {
        AlarmMetric::Single {
            namespace,
            name,
            dimensions: dims,
            statistic,
            extended_statistic,
            period,
            unit,
        } => json!({
            "namespace": namespace,
            "metricName": name,
            "dimensions": dimensions(dims),
            "statistic": statistic,
            "extendedStatistic": extended_statistic,
            "period": period,
            "unit": unit,
        }),
        AlarmMetric::Math(queries) => Value::Array(
            queries
                .iter()
                .map(|q| {
                    json!({
                        "id": q.id,
                        "expression": q.expression,
                        "metric": q.metric.as_ref().map(|m| json!({
                            "namespace": m.namespace,
                            "metricName": m.name,
                            "dimensions": dimensions(&m.dimensions),
                            "stat": m.stat,
                            "unit": m.unit,
                        })),
                        "label": q.label,
                        "returnData": q.return_data,
                        "period": q.period,
                    })
                })
                .collect(),
        ),
    }
}

/// The topic's access policy: only this policy's CloudWatch alarms and EventBridge rules, in the
/// topic's own account and region, may publish (`aws:SourceArn` under our name prefixes). No
/// statement admits other principals: a message on our topics comes from our alarms and rules,
/// or from a principal of the account that IAM itself allows (retries still check the cluster's
/// live state, never the message alone).
pub fn topic_access_policy(topic_arn: &str, owner: &OwnerIdentity) -> Value {
    // arn:PARTITION:sns:REGION:ACCOUNT:NAME
    let parts: Vec<&str> = topic_arn.split(':').collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let (partition, region, account) = (part(1), part(3), part(4));
    json!({
        "Version": "2012-10-17",
        "Id": "alertops",
        "Statement": [
            {
                "Sid": "CloudWatchAlarmsPublish",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": format!(
                        "arn:{partition}:cloudwatch:{region}:{account}:alarm:{}*",
                        owner.alarm_prefix()
                    )}
                }
            },
            {
                "Sid": "EventBridgeRulesPublish",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": format!(
                        "arn:{partition}:events:{region}:{account}:rule/{}*",
                        owner.rule_prefix()
                    )}
                }
            }
        ]
    })
}

/// Normalises an IAM-style policy so that equivalent documents compare equal: AWS may return a
/// one-element list as a scalar and reorder lists of strings.
pub fn canonical_policy(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), canonical_policy(v)))
                .collect(),
        ),
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(canonical_policy).collect();
            if items.len() == 1 {
                return items.remove(0);
            }
            if items.iter().all(Value::is_string) {
                items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
            Value::Array(items)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Severity;
    use crate::resources::alarm_policy::*;

    fn owner() -> OwnerIdentity {
        OwnerIdentity::new("test", "AlarmPolicy", "team-a", "elb")
    }

    fn alarm() -> AlarmSpec {
        serde_json::from_value(json!({
            "name": "backend-errors",
            "description": "ELB cannot reach its backends",
            "severity": "Critical",
            "runbookUrl": "https://runbooks.example.com/elb",
            "metric": {
                "namespace": "AWS/ELB",
                "name": "BackendConnectionErrors",
                "dimensions": {"LoadBalancerName": "broker"},
                "statistic": "Sum"
            },
            "period": 60,
            "evaluationPeriods": 5,
            "threshold": 100,
            "comparison": "GreaterThanThreshold",
            "treatMissingData": "notBreaching",
            "additionalActions": ["arn:aws:sns:us-east-1:123456789012:pager"]
        }))
        .unwrap()
    }

    fn spec() -> AlarmPolicySpec {
        AlarmPolicySpec {
            topic: TopicSpec::default(),
            deletion_policy: Default::default(),
            tags: SpecMap::from_iter([("Team".into(), "platform".into())]),
            alarms: vec![alarm()],
            composite_alarms: Vec::new(),
            log_alarms: Vec::new(),
            event_rules: vec![
                serde_json::from_value(json!({"name": "emr", "preset": "EmrClusterFailed"}))
                    .unwrap(),
            ],
        }
    }

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:alertops_test";

    #[test]
    fn alarm_definition_follows_the_spec() {
        let desired = build(&spec(), &owner(), TOPIC);
        let a = &desired.alarms[0];
        assert_eq!(
            a.definition.alarm_name,
            "alertops/test/team-a/elb/backend-errors"
        );
        assert_eq!(
            a.definition.alarm_actions,
            vec![
                "arn:aws:sns:us-east-1:123456789012:alertops_test",
                "arn:aws:sns:us-east-1:123456789012:pager"
            ]
        );
        assert_eq!(a.definition.ok_actions, vec![TOPIC]);
        assert!(a.definition.insufficient_data_actions.is_empty());
        assert_eq!(
            a.definition.datapoints_to_alarm, 5,
            "defaults to evaluationPeriods"
        );
        assert_eq!(a.definition.treat_missing_data, "notBreaching");
        assert_eq!(
            a.definition.description.as_deref(),
            Some("ELB cannot reach its backends\nRunbook: https://runbooks.example.com/elb")
        );
        assert_eq!(a.tags["Team"], "platform");
        assert_eq!(a.tags["Severity"], Severity::Critical.as_str());
        assert!(owner().owns(&a.tags));
        match &a.definition.metric {
            AlarmMetric::Single {
                statistic,
                period,
                dimensions,
                ..
            } => {
                assert_eq!(statistic.as_deref(), Some("Sum"));
                assert_eq!(*period, 60);
                assert_eq!(
                    dimensions,
                    &vec![("LoadBalancerName".to_string(), "broker".to_string())]
                );
            }
            other => panic!("expected a single metric, got {other:?}"),
        }
    }

    #[test]
    fn an_anomaly_detection_alarm_is_metric_math_with_its_band_as_threshold_metric() {
        let mut band = alarm();
        band.metric.as_mut().unwrap().statistic = Some(Statistic::Average);
        band.threshold = None;
        band.anomaly_detection = Some(AnomalyDetectionSpec { band_width: 3.0 });
        band.comparison = ComparisonOperator::GreaterThanUpperThreshold;
        let spec = AlarmPolicySpec {
            alarms: vec![band],
            ..spec()
        };
        let def = &build(&spec, &owner(), TOPIC).alarms[0].definition;
        assert_eq!(def.threshold_metric_id.as_deref(), Some("anomaly_band"));
        assert_eq!(def.comparison, "GreaterThanUpperThreshold");
        let AlarmMetric::Math(queries) = &def.metric else {
            panic!("expected metric math, got {:?}", def.metric)
        };
        assert_eq!(queries.len(), 2);
        let series = &queries[0];
        assert_eq!(series.id, "m1");
        assert!(series.return_data);
        assert_eq!(series.period, Some(60));
        let metric = series.metric.as_ref().unwrap();
        assert_eq!(
            (metric.name.as_str(), metric.stat.as_str()),
            ("BackendConnectionErrors", "Average")
        );
        assert_eq!(
            metric.dimensions,
            vec![("LoadBalancerName".into(), "broker".into())]
        );
        let band = &queries[1];
        assert_eq!(band.id, "anomaly_band");
        assert_eq!(
            band.expression.as_deref(),
            Some("ANOMALY_DETECTION_BAND(m1, 3)")
        );
        assert!(band.return_data);
        assert_eq!(band.period, None);
    }

    #[test]
    fn a_band_around_metric_math_surrounds_the_query_that_returns_data() {
        let mut math: AlarmSpec = serde_json::from_value(json!({
            "name": "error-rate", "period": 300, "evaluationPeriods": 3,
            "anomalyDetection": {},
            "comparison": "LessThanLowerOrGreaterThanUpperThreshold",
            "metrics": [
                {"id": "errors", "metric": {"namespace": "AWS/ApplicationELB", "name": "HTTPCode_Target_5XX_Count", "stat": "Sum"}},
                {"id": "requests", "metric": {"namespace": "AWS/ApplicationELB", "name": "RequestCount", "stat": "Sum"}},
                {"id": "rate", "expression": "100 * errors / requests", "returnData": true}
            ]
        }))
        .unwrap();
        assert_eq!(
            math.anomaly_detection.as_ref().unwrap().band_width,
            2.0,
            "the default"
        );
        math.name = "rate".into();
        let spec = AlarmPolicySpec {
            alarms: vec![math],
            ..spec()
        };
        let def = &build(&spec, &owner(), TOPIC).alarms[0].definition;
        let AlarmMetric::Math(queries) = &def.metric else {
            panic!("metric math")
        };
        assert_eq!(queries.len(), 4);
        assert_eq!(
            queries[3].expression.as_deref(),
            Some("ANOMALY_DETECTION_BAND(rate, 2)")
        );
        assert_eq!(def.threshold, 0.0);
    }

    #[test]
    fn ownership_tags_cannot_be_overridden_by_the_spec() {
        let mut s = spec();
        s.tags
            .insert(crate::names::TAG_OWNER.into(), "someone-else".into());
        let desired = build(&s, &owner(), TOPIC);
        assert!(owner().owns(&desired.topic_tags));
        assert!(owner().owns(&desired.alarms[0].tags));
        assert!(owner().owns(&desired.rules[0].tags));
    }

    #[test]
    fn differences_name_the_changed_fields_only() {
        let desired = build(&spec(), &owner(), TOPIC).alarms[0].definition.clone();
        assert!(alarm_differences(&desired, &desired.clone()).is_empty());
        let mut observed = desired.clone();
        observed.threshold = 100.000_000_000_01;
        assert!(
            alarm_differences(&desired, &observed).is_empty(),
            "decimal round trip is not a change"
        );
        observed.threshold = 50.0;
        assert_eq!(alarm_differences(&desired, &observed), vec!["threshold"]);
    }

    #[test]
    fn changes_carry_what_aws_has_and_what_the_spec_wants() {
        let desired = build(&spec(), &owner(), TOPIC).alarms[0].definition.clone();
        let mut observed = desired.clone();
        observed.threshold = 50.0;
        observed.evaluation_periods = 3;
        let changes = alarm_changes(&desired, &observed);
        assert_eq!(
            changes,
            vec![
                FieldChange {
                    field: "evaluationPeriods",
                    old: json!(3),
                    new: json!(5)
                },
                FieldChange {
                    field: "threshold",
                    old: json!(50.0),
                    new: json!(100.0)
                },
            ]
        );
        if let AlarmMetric::Single { statistic, .. } = &mut observed.metric {
            *statistic = Some("Maximum".into());
        }
        let metric = alarm_changes(&desired, &observed)
            .into_iter()
            .find(|c| c.field == "metric")
            .expect("the metric differs");
        assert_eq!(metric.old["statistic"], "Maximum");
        assert_eq!(metric.new["statistic"], "Sum");
        assert_eq!(metric.new["dimensions"]["LoadBalancerName"], "broker");

        let rule = build(&spec(), &owner(), TOPIC).rules[0].definition.clone();
        let mut disabled = rule.clone();
        disabled.enabled = false;
        assert_eq!(
            rule_changes(&rule, &disabled),
            vec![FieldChange {
                field: "state",
                old: json!("DISABLED"),
                new: json!("ENABLED")
            }]
        );
    }

    #[test]
    fn existing_topics_are_referenced_not_created() {
        let mut s = spec();
        s.topic.existing_arn = Some("arn:aws:sns:us-east-1:123456789012:prod-alarms".into());
        assert_eq!(
            build(&s, &owner(), TOPIC).topic,
            DesiredTopic::Existing {
                arn: "arn:aws:sns:us-east-1:123456789012:prod-alarms".into()
            }
        );
    }

    #[test]
    fn topic_policy_admits_only_our_alarms_and_rules_of_the_account() {
        let policy = topic_access_policy(TOPIC, &owner());
        let statements = policy["Statement"].as_array().unwrap();
        let services: Vec<&str> = statements
            .iter()
            .filter_map(|s| s["Principal"]["Service"].as_str())
            .collect();
        assert_eq!(
            services,
            vec!["cloudwatch.amazonaws.com", "events.amazonaws.com"]
        );
        assert_eq!(statements.len(), 2, "no statement for any other principal");
        for statement in statements {
            assert_eq!(statement["Effect"], "Allow");
            assert_eq!(statement["Action"], "sns:Publish");
            assert_eq!(
                statement["Condition"]["StringEquals"]["aws:SourceAccount"],
                "123456789012"
            );
        }
        assert_eq!(
            statements[0]["Condition"]["ArnLike"]["aws:SourceArn"],
            format!(
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{}*",
                owner().alarm_prefix()
            )
        );
        assert_eq!(
            statements[1]["Condition"]["ArnLike"]["aws:SourceArn"],
            format!(
                "arn:aws:events:us-east-1:123456789012:rule/{}*",
                owner().rule_prefix()
            )
        );
    }

    #[test]
    fn canonical_policy_ignores_scalar_lists_and_order() {
        let a = json!({"Statement": [{"Action": ["b", "a"], "Principal": {"Service": ["x"]}}]});
        let b = json!({"Statement": {"Action": ["a", "b"], "Principal": {"Service": "x"}}});
        assert_eq!(canonical_policy(&a), canonical_policy(&b));
        let c = json!({"Statement": {"Action": ["a", "c"], "Principal": {"Service": "x"}}});
        assert_ne!(canonical_policy(&a), canonical_policy(&c));
    }
}
