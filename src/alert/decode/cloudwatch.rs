//! CloudWatch alarm state-change notifications (the JSON CloudWatch publishes to SNS).

use serde_json::Value;

use super::util::{
    console_origin, is_region_code, parse_arn, parse_time, percent_encode, scalar_text, str_field,
};
use crate::alert::model::{Alert, Fingerprint};
use crate::resources::{AlertKind, AlertState};

/// An alarm notification names the alarm and its new state.
pub(super) fn is_alarm_notification(value: &Value) -> bool {
    str_field(value, "AlarmName").is_some() && str_field(value, "NewStateValue").is_some()
}

pub(super) fn decode(value: &Value) -> Alert {
    let name = str_field(value, "AlarmName").unwrap_or("unnamed alarm");
    let new_state = str_field(value, "NewStateValue").unwrap_or("");
    let arn = str_field(value, "AlarmArn").and_then(parse_arn);
    let account = str_field(value, "AWSAccountId")
        .or(arn.as_ref().map(|a| a.account))
        .filter(|a| !a.is_empty());
    // The notification's `Region` is a display name ("US East (N. Virginia)"); the ARN has the code.
    let region = arn
        .as_ref()
        .map(|a| a.region)
        .filter(|r| is_region_code(r))
        .or(str_field(value, "Region"));

    let fingerprint = Fingerprint::of(
        AlertKind::CloudWatchAlarm,
        &[account.unwrap_or(""), region.unwrap_or(""), name],
    );
    let state = match new_state {
        "ALARM" => AlertState::Firing,
        "OK" => AlertState::Resolved,
        "INSUFFICIENT_DATA" => AlertState::InsufficientData,
        _ => AlertState::Info,
    };
    let mut alert = Alert::new(
        AlertKind::CloudWatchAlarm,
        state,
        fingerprint,
        name.to_string(),
    );
    alert.source_state = Some(new_state.to_string());
    alert.summary = str_field(value, "NewStateReason").unwrap_or("").to_string();
    alert.resource = Some(name.to_string());
    alert.account = account.map(str::to_string);
    alert.region = region.map(str::to_string);
    alert.time = str_field(value, "StateChangeTime").and_then(parse_time);

    if let Some(description) = str_field(value, "AlarmDescription") {
        alert.push_detail("Description", description);
    }
    if let Some(trigger) = value.get("Trigger").filter(|t| t.is_object()) {
        push_trigger_details(&mut alert, trigger);
    }
    if let Some(old) = str_field(value, "OldStateValue") {
        alert.push_detail("Previous state", old);
    }
    if let Some(rule) = str_field(value, "AlarmRule") {
        // Composite alarms carry a rule instead of a trigger.
        alert.push_detail("Rule", rule);
    }
    if let Some(region) = region.filter(|r| is_region_code(r)) {
        alert.push_link(
            "Open in CloudWatch",
            format!(
                "{}/cloudwatch/home?region={region}#alarmsV2:alarm/{}",
                console_origin(region),
                percent_encode(name)
            ),
        );
    }
    alert
}

fn push_trigger_details(alert: &mut Alert, trigger: &Value) {
    if let Some(metric) = str_field(trigger, "MetricName") {
        let namespace = str_field(trigger, "Namespace").unwrap_or("");
        alert.push_detail("Metric", format!("{namespace} {metric}").trim().to_string());
        alert.push_detail("Dimensions", dimensions_text(trigger.get("Dimensions")));
        let statistic = str_field(trigger, "ExtendedStatistic").or(str_field(trigger, "Statistic"));
        if let Some(statistic) = statistic {
            alert.push_detail("Statistic", statistic);
        }
    }
    if let Some(metrics) = trigger.get("Metrics").and_then(Value::as_array) {
        for query in metrics {
            push_metric_query(alert, query);
        }
    }
    let operator = str_field(trigger, "ComparisonOperator").map(comparison_symbol);
    let threshold = scalar_text(trigger, "Threshold")
        .or_else(|| str_field(trigger, "ThresholdMetricId").map(|id| format!("band {id}")));
    match (operator, threshold) {
        (Some(op), Some(threshold)) => alert.push_detail("Condition", format!("{op} {threshold}")),
        (Some(op), None) => alert.push_detail("Condition", op),
        (None, Some(threshold)) => alert.push_detail("Threshold", threshold),
        (None, None) => {}
    }
    let period = scalar_text(trigger, "Period");
    let evaluation = scalar_text(trigger, "EvaluationPeriods");
    let datapoints = scalar_text(trigger, "DatapointsToAlarm");
    if let Some(evaluation) = evaluation {
        let of = match datapoints {
            Some(d) => format!("{d} of {evaluation}"),
            None => evaluation,
        };
        let text = match period {
            Some(p) => format!("{of} periods of {p} s"),
            None => format!("{of} periods"),
        };
        alert.push_detail("Evaluation", text);
    }
    if let Some(missing) = str_field(trigger, "TreatMissingData") {
        // CloudWatch writes "- TreatMissingData:   missing"; keep the value only.
        let value = missing.rsplit(':').next().unwrap_or(missing).trim();
        alert.push_detail("Missing data", value);
    }
}

fn push_metric_query(alert: &mut Alert, query: &Value) {
    let id = str_field(query, "Id").unwrap_or("?");
    let label = str_field(query, "Label");
    if let Some(expression) = str_field(query, "Expression") {
        let text = match label {
            Some(label) => format!("{expression} ({label})"),
            None => expression.to_string(),
        };
        alert.push_detail(&format!("Expression {id}"), text);
    } else if let Some(stat) = query.get("MetricStat") {
        let metric = stat.get("Metric").unwrap_or(&Value::Null);
        let namespace = str_field(metric, "Namespace").unwrap_or("");
        let name = str_field(metric, "MetricName").unwrap_or("");
        let dimensions = dimensions_text(metric.get("Dimensions"));
        let mut text = format!("{namespace} {name}").trim().to_string();
        if !dimensions.is_empty() {
            text.push_str(&format!(" [{dimensions}]"));
        }
        if let Some(s) = str_field(stat, "Stat") {
            text.push_str(&format!(", {s}"));
        }
        if let Some(p) = scalar_text(stat, "Period") {
            text.push_str(&format!(", {p} s"));
        }
        alert.push_detail(&format!("Metric {id}"), text);
    }
}

/// `[{"name":"InstanceId","value":"i-1"}]` → `InstanceId=i-1` (CloudWatch uses lower-case keys
/// in notifications, upper-case in some SDK dumps; both are read).
fn dimensions_text(dimensions: Option<&Value>) -> String {
    dimensions
        .and_then(Value::as_array)
        .map(|dims| {
            dims.iter()
                .filter_map(|d| {
                    let name = str_field(d, "name").or(str_field(d, "Name"))?;
                    let value = str_field(d, "value")
                        .or(str_field(d, "Value"))
                        .unwrap_or("");
                    Some(format!("{name}={value}"))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn comparison_symbol(operator: &str) -> &str {
    match operator {
        "GreaterThanOrEqualToThreshold" => ">=",
        "GreaterThanThreshold" => ">",
        "LessThanThreshold" => "<",
        "LessThanOrEqualToThreshold" => "<=",
        "LessThanLowerOrGreaterThanUpperThreshold" => "outside",
        "LessThanLowerThreshold" => "below",
        "GreaterThanUpperThreshold" => "above",
        other => other,
    }
}

/// The EventBridge form of an alarm change ("CloudWatch Alarm State Change"). It gets the same
/// fingerprint as the SNS notification of the same alarm, so either can resolve the other.
pub(super) fn decode_alarm_event(head: &super::eventbridge::EventHead<'_>) -> Alert {
    let detail = head.detail;
    let name = str_field(detail, "alarmName").unwrap_or("unnamed alarm");
    let state_of = |key: &str| detail.get(key).unwrap_or(&Value::Null);
    let new_state = str_field(state_of("state"), "value").unwrap_or("");
    let account = head.account.unwrap_or("");
    let region = head.region.unwrap_or("");
    let fingerprint = Fingerprint::of(AlertKind::CloudWatchAlarm, &[account, region, name]);
    let state = match new_state {
        "ALARM" => AlertState::Firing,
        "OK" => AlertState::Resolved,
        "INSUFFICIENT_DATA" => AlertState::InsufficientData,
        _ => AlertState::Info,
    };
    let mut alert = Alert::new(
        AlertKind::CloudWatchAlarm,
        state,
        fingerprint,
        name.to_string(),
    );
    head.fill(&mut alert);
    alert.source_state = Some(new_state.to_string());
    alert.summary = str_field(state_of("state"), "reason")
        .unwrap_or("")
        .to_string();
    alert.resource = Some(name.to_string());
    if let Some(time) = str_field(state_of("state"), "timestamp").and_then(parse_time) {
        alert.time = Some(time);
    }
    let configuration = state_of("configuration");
    if let Some(description) = str_field(configuration, "description") {
        alert.push_detail("Description", description);
    }
    for query in configuration
        .get("metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = str_field(query, "id").unwrap_or("?");
        if let Some(expression) = str_field(query, "expression") {
            alert.push_detail(&format!("Expression {id}"), expression);
        } else if let Some(metric) = query.get("metricStat").and_then(|s| s.get("metric")) {
            let namespace = str_field(metric, "namespace").unwrap_or("");
            let metric_name = str_field(metric, "name").unwrap_or("");
            alert.push_detail(
                &format!("Metric {id}"),
                format!("{namespace} {metric_name}").trim().to_string(),
            );
        }
    }
    if let Some(previous) = str_field(state_of("previousState"), "value") {
        alert.push_detail("Previous state", previous);
    }
    if is_region_code(region) {
        alert.push_link(
            "Open in CloudWatch",
            format!(
                "{}/cloudwatch/home?region={region}#alarmsV2:alarm/{}",
                console_origin(region),
                percent_encode(name)
            ),
        );
    }
    alert
}
