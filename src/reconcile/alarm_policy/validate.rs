//! Checks of an AlarmPolicy spec that must hold before anything is sent to AWS.
//!
//! In a cluster the CRD schema and its CEL rules reject most of these at admission; they are
//! repeated here because manifests also arrive through the local mode and older CRD versions,
//! and because a spec that AWS would reject must become a condition, not a retry loop.

use std::collections::HashSet;

use crate::resources::alarm_policy::{AlarmPolicySpec, AlarmSpec, AnomalyDetectionSpec};

const BAND_ID: &str = AnomalyDetectionSpec::BAND_ID;

/// One reason a spec cannot be applied, with the field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecViolation {
    /// Field path, e.g. `spec.alarms[2].period`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for SpecViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All violations of the spec; empty when it can be applied.
pub fn validate(spec: &AlarmPolicySpec) -> Vec<SpecViolation> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, alarm) in spec.alarms.iter().enumerate() {
        let path = format!("spec.alarms[{i}]");
        if !names.insert(alarm.name.as_str()) {
            out.push(violation(
                &path,
                format!("duplicate alarm name {:?}", alarm.name),
            ));
        }
        validate_alarm(alarm, &path, &mut out);
    }
    let alarm_names: Vec<&str> = spec.alarms.iter().map(|a| a.name.as_str()).collect();
    for (i, composite) in spec.composite_alarms.iter().enumerate() {
        let path = format!("spec.compositeAlarms[{i}]");
        if !names.insert(composite.name.as_str()) {
            out.push(violation(
                &path,
                format!(
                    "duplicate alarm name {:?} (composites and alarms share CloudWatch's names)",
                    composite.name
                ),
            ));
        }
        if let Err(e) =
            crate::resources::composite_rule::referenced_alarms(&composite.rule, &alarm_names)
        {
            out.push(violation(&format!("{path}.rule"), e.to_string()));
        }
    }
    for (i, log_alarm) in spec.log_alarms.iter().enumerate() {
        let path = format!("spec.logAlarms[{i}]");
        if !names.insert(log_alarm.name.as_str()) {
            out.push(violation(
                &path,
                format!(
                    "duplicate alarm name {:?} (log alarms, alarms and composites share \
                     CloudWatch's names)",
                    log_alarm.name
                ),
            ));
        }
        validate_alarm(&log_alarm.alarm(), &path, &mut out);
        for problem in crate::resources::filter_pattern::log_alarm_problems(log_alarm) {
            out.push(violation(
                &format!("{path}.{}", problem.field),
                problem.message,
            ));
        }
    }
    let mut rule_names = HashSet::new();
    for (i, rule) in spec.event_rules.iter().enumerate() {
        let path = format!("spec.eventRules[{i}]");
        if !rule_names.insert(rule.name.as_str()) {
            out.push(violation(
                &path,
                format!("duplicate event rule name {:?}", rule.name),
            ));
        }
        match (&rule.preset, &rule.event_pattern) {
            (Some(_), Some(_)) | (None, None) => out.push(violation(
                &path,
                "set exactly one of preset or eventPattern".into(),
            )),
            (None, Some(pattern))
                if !pattern.is_object() || pattern.as_object().is_some_and(|o| o.is_empty()) =>
            {
                out.push(violation(
                    &format!("{path}.eventPattern"),
                    "an event pattern is a non-empty JSON object".into(),
                ))
            }
            _ => {}
        }
    }
    if let Some(arn) = &spec.topic.existing_arn
        && !(arn.starts_with("arn:")
            && arn.split(':').count() == 6
            && arn.split(':').nth(2) == Some("sns"))
    {
        out.push(violation(
            "spec.topic.existingArn",
            format!("{arn:?} is not an SNS topic ARN"),
        ));
    }
    out
}

fn validate_alarm(alarm: &AlarmSpec, path: &str, out: &mut Vec<SpecViolation>) {
    if !(alarm.period == 10
        || alarm.period == 20
        || alarm.period == 30
        || (alarm.period > 0 && alarm.period % 60 == 0))
    {
        out.push(violation(
            &format!("{path}.period"),
            "must be 10, 20, 30 or a multiple of 60 seconds".into(),
        ));
    }
    if alarm.evaluation_periods < 1 {
        out.push(violation(
            &format!("{path}.evaluationPeriods"),
            "must be at least 1".into(),
        ));
    }
    if i64::from(alarm.period) * i64::from(alarm.evaluation_periods) > 86_400 {
        out.push(violation(
            path,
            "period × evaluationPeriods must be at most 86400 seconds (one day)".into(),
        ));
    }
    if let Some(m) = alarm.datapoints_to_alarm
        && (m < 1 || m > alarm.evaluation_periods)
    {
        out.push(violation(
            &format!("{path}.datapointsToAlarm"),
            "must be between 1 and evaluationPeriods".into(),
        ));
    }
    if alarm.additional_actions.len() > 4 {
        out.push(violation(
            &format!("{path}.additionalActions"),
            "CloudWatch allows at most 5 alarm actions; the policy topic is one of them".into(),
        ));
    }
    if alarm.threshold.is_some_and(|t| !t.is_finite()) {
        out.push(violation(
            &format!("{path}.threshold"),
            "must be a finite number".into(),
        ));
    }
    match (alarm.threshold, &alarm.anomaly_detection) {
        (Some(_), Some(_)) | (None, None) => out.push(violation(
            path,
            "set exactly one of threshold (a fixed line) or anomalyDetection (a band around the \
             learned pattern)"
                .into(),
        )),
        _ => {}
    }
    if alarm.comparison.is_band() != alarm.anomaly_detection.is_some() {
        out.push(violation(
            &format!("{path}.comparison"),
            format!(
                "{} {}",
                alarm.comparison.as_str(),
                if alarm.comparison.is_band() {
                    "compares with an anomaly band: set anomalyDetection"
                } else {
                    "compares with a threshold: anomalyDetection needs \
                     LessThanLowerOrGreaterThanUpperThreshold, GreaterThanUpperThreshold or \
                     LessThanLowerThreshold"
                }
            ),
        ));
    }
    if let Some(band) = &alarm.anomaly_detection {
        if !(band.band_width.is_finite() && band.band_width > 0.0) {
            out.push(violation(
                &format!("{path}.anomalyDetection.bandWidth"),
                "must be a positive number of standard deviations".into(),
            ));
        }
        let taken = alarm.metrics.iter().flatten().any(|q| q.id == BAND_ID);
        if taken {
            out.push(violation(
                &format!("{path}.metrics"),
                format!("the query id {BAND_ID} is taken by the anomaly detection band"),
            ));
        }
    }
    match (&alarm.metric, &alarm.metrics) {
        (Some(_), Some(_)) | (None, None) => out.push(violation(
            path,
            "set exactly one of metric (a single metric) or metrics (metric math)".into(),
        )),
        (Some(metric), None) => {
            if metric.statistic.is_some() == metric.percentile.is_some() {
                out.push(violation(
                    &format!("{path}.metric"),
                    "set exactly one of statistic or percentile".into(),
                ));
            }
        }
        (None, Some(queries)) => {
            let returning = queries.iter().filter(|q| q.return_data).count();
            if returning != 1 {
                out.push(violation(
                    &format!("{path}.metrics"),
                    format!("exactly one query must set returnData: true (found {returning})"),
                ));
            }
            let mut ids = HashSet::new();
            for (j, q) in queries.iter().enumerate() {
                if !ids.insert(q.id.as_str()) {
                    out.push(violation(
                        &format!("{path}.metrics[{j}].id"),
                        format!("duplicate id {:?}", q.id),
                    ));
                }
                if q.metric.is_some() == q.expression.is_some() {
                    out.push(violation(
                        &format!("{path}.metrics[{j}]"),
                        "set exactly one of metric or expression".into(),
                    ));
                }
            }
        }
    }
}

fn violation(path: &str, message: String) -> SpecViolation {
    SpecViolation {
        path: path.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(alarms: serde_json::Value) -> AlarmPolicySpec {
        serde_json::from_value(json!({ "alarms": alarms })).unwrap()
    }

    fn alarm() -> serde_json::Value {
        json!({
            "name": "a", "period": 60, "evaluationPeriods": 5, "threshold": 1,
            "comparison": "GreaterThanThreshold",
            "metric": {"namespace": "AWS/ELB", "name": "BackendConnectionErrors", "statistic": "Sum"}
        })
    }

    #[test]
    fn threshold_and_anomaly_band_exclude_each_other_and_choose_the_comparison() {
        let mut both = alarm();
        both["anomalyDetection"] = json!({"bandWidth": 2});
        let v = validate(&spec(json!([both])));
        assert!(
            v.iter()
                .any(|v| v.message.contains("exactly one of threshold")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|v| v.path == "spec.alarms[0].comparison"),
            "{v:?}"
        );

        let mut band = alarm();
        band.as_object_mut().unwrap().remove("threshold");
        band["anomalyDetection"] = json!({"bandWidth": 2});
        band["comparison"] = json!("GreaterThanUpperThreshold");
        assert_eq!(validate(&spec(json!([band.clone()]))), vec![]);

        band["anomalyDetection"] = json!({"bandWidth": 0});
        let v = validate(&spec(json!([band])));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].path, "spec.alarms[0].anomalyDetection.bandWidth");

        let mut neither = alarm();
        neither.as_object_mut().unwrap().remove("threshold");
        let v = validate(&spec(json!([neither])));
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn a_good_spec_has_no_violations() {
        assert_eq!(validate(&spec(json!([alarm()]))), vec![]);
    }

    #[test]
    fn evaluation_window_longer_than_a_day_is_rejected() {
        let mut a = alarm();
        a["period"] = json!(3600);
        a["evaluationPeriods"] = json!(25);
        let v = validate(&spec(json!([a])));
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("86400"), "{v:?}");
    }

    #[test]
    fn datapoints_beyond_evaluation_periods_are_rejected() {
        let mut a = alarm();
        a["datapointsToAlarm"] = json!(6);
        assert_eq!(
            validate(&spec(json!([a])))[0].path,
            "spec.alarms[0].datapointsToAlarm"
        );
    }

    #[test]
    fn duplicate_names_and_odd_periods_are_rejected() {
        let mut b = alarm();
        b["period"] = json!(45);
        let v = validate(&spec(json!([alarm(), b])));
        let paths: Vec<&str> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, vec!["spec.alarms[1]", "spec.alarms[1].period"]);
    }

    #[test]
    fn metric_math_needs_exactly_one_returning_query() {
        let mut a = alarm();
        a.as_object_mut().unwrap().remove("metric");
        a["metrics"] = json!([
            {"id": "e", "metric": {"namespace": "AWS/ELB", "name": "HTTPCode_Backend_5XX", "stat": "Sum"}},
            {"id": "r", "metric": {"namespace": "AWS/ELB", "name": "RequestCount", "stat": "Sum"}},
        ]);
        let v = validate(&spec(json!([a])));
        assert!(v[0].message.contains("returnData"), "{v:?}");
    }
}
