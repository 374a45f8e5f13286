//! Converting what AWS reports into the normalised definitions of [`super::desired`].

use aws_sdk_cloudwatch::types::{Dimension, MetricAlarm};
use serde_json::Value;

use super::desired::{AlarmDefinition, AlarmMetric, MathMetric, MathQuery, RuleDefinition};

/// The normalised definition of an alarm as CloudWatch reports it (defaults filled in the same
/// way [`super::desired::build`] fills them).
pub fn alarm_definition(alarm: &MetricAlarm) -> AlarmDefinition {
    let evaluation_periods = alarm.evaluation_periods().unwrap_or(1);
    let metric = if alarm.metrics().is_empty() {
        AlarmMetric::Single {
            namespace: alarm.namespace().unwrap_or_default().to_string(),
            name: alarm.metric_name().unwrap_or_default().to_string(),
            dimensions: dimensions(alarm.dimensions()),
            statistic: alarm.statistic().map(|s| s.as_str().to_string()),
            extended_statistic: non_empty(alarm.extended_statistic()),
            period: alarm.period().unwrap_or_default(),
            unit: alarm
                .unit()
                .map(|u| u.as_str().to_string())
                .filter(|u| u != "None"),
        }
    } else {
        AlarmMetric::Math(
            alarm
                .metrics()
                .iter()
                .map(|q| {
                    let stat = q.metric_stat();
                    MathQuery {
                        id: q.id().unwrap_or_default().to_string(),
                        expression: non_empty(q.expression()),
                        metric: stat.map(|s| {
                            let m = s.metric();
                            MathMetric {
                                namespace: m
                                    .and_then(|m| m.namespace())
                                    .unwrap_or_default()
                                    .to_string(),
                                name: m
                                    .and_then(|m| m.metric_name())
                                    .unwrap_or_default()
                                    .to_string(),
                                dimensions: dimensions(
                                    m.map(|m| m.dimensions()).unwrap_or_default(),
                                ),
                                stat: s.stat().unwrap_or_default().to_string(),
                                unit: s
                                    .unit()
                                    .map(|u| u.as_str().to_string())
                                    .filter(|u| u != "None"),
                            }
                        }),
                        label: non_empty(q.label()),
                        return_data: q.return_data().unwrap_or(false),
                        period: stat.and_then(|s| s.period()).or(q.period()),
                    }
                })
                .collect(),
        )
    };
    AlarmDefinition {
        alarm_name: alarm.alarm_name().unwrap_or_default().to_string(),
        description: non_empty(alarm.alarm_description()),
        actions_enabled: alarm.actions_enabled().unwrap_or(true),
        alarm_actions: sorted(alarm.alarm_actions()),
        ok_actions: sorted(alarm.ok_actions()),
        insufficient_data_actions: sorted(alarm.insufficient_data_actions()),
        metric,
        evaluation_periods,
        datapoints_to_alarm: alarm.datapoints_to_alarm().unwrap_or(evaluation_periods),
        threshold: alarm.threshold().unwrap_or_default(),
        comparison: alarm
            .comparison_operator()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        treat_missing_data: non_empty(alarm.treat_missing_data())
            .unwrap_or_else(|| "missing".to_string()),
    }
}

/// The normalised definition of a rule as EventBridge reports it. A pattern that is not JSON
/// (never written by alertops) compares unequal to anything we want, so it gets rewritten.
pub fn rule_definition(rule: &aws_sdk_eventbridge::types::Rule) -> RuleDefinition {
    RuleDefinition {
        rule_name: rule.name().unwrap_or_default().to_string(),
        description: non_empty(rule.description()),
        enabled: rule
            .state()
            .is_some_and(|s| *s == aws_sdk_eventbridge::types::RuleState::Enabled),
        event_pattern: rule
            .event_pattern()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(Value::Null),
    }
}

fn dimensions(dims: &[Dimension]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = dims
        .iter()
        .map(|d| {
            (
                d.name().unwrap_or_default().to_string(),
                d.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut v = items.to_vec();
    v.sort();
    v.dedup();
    v
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}
