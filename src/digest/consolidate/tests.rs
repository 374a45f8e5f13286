use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::alert::{SnsEnvelope, decode_message};

/// An EMR failure as EventBridge sends it, decoded by the consumer's decoder.
pub(crate) fn emr_failure(
    cluster_id: &str,
    team: Option<&str>,
    feature: Option<&str>,
    code: &str,
    message: &str,
    minute: u32,
) -> Alert {
    let reason = json!({"code": code, "message": message}).to_string();
    let event = json!({
        "version": "0", "id": format!("id-{cluster_id}"),
        "detail-type": "EMR Cluster State Change", "source": "aws.emr",
        "account": "123456789012",
        "time": format!("2024-05-01T08:{minute:02}:00Z"),
        "region": "us-east-1", "resources": [],
        "detail": {
            "severity": "CRITICAL", "stateChangeReason": reason,
            "name": format!("etl-{cluster_id}"), "clusterId": cluster_id,
            "state": "TERMINATED_WITH_ERRORS",
            "message": format!("Amazon EMR Cluster {cluster_id} has terminated with errors"),
        }
    });
    let mut alert = decode_message(&event.to_string(), &SnsEnvelope::default());
    if let Some(team) = team {
        alert.tags.insert(TEAM_TAG.into(), team.into());
    }
    if let Some(feature) = feature {
        alert.tags.insert(FEATURE_TAG.into(), feature.into());
    }
    alert
}

/// A CloudWatch alarm notification, decoded.
pub(crate) fn alarm(name: &str, team: Option<&str>, reason: &str, minute: u32) -> Alert {
    let message = json!({
        "AlarmName": name, "AWSAccountId": "123456789012",
        "NewStateValue": "ALARM", "NewStateReason": reason,
        "StateChangeTime": format!("2024-05-01T09:{minute:02}:00.000+0000"),
        "Region": "US East (N. Virginia)",
        "AlarmArn": format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"),
        "OldStateValue": "OK",
        "Trigger": {"MetricName": "CPUUtilization", "Namespace": "AWS/EC2", "Statistic": "AVERAGE",
            "Dimensions": [], "Period": 60, "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanThreshold", "Threshold": 90.0}
    });
    let mut alert = decode_message(&message.to_string(), &SnsEnvelope::default());
    if let Some(team) = team {
        alert.tags.insert(TEAM_TAG.into(), team.into());
    }
    alert
}

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, hour, minute, 0).unwrap()
}

#[test]
fn groups_by_team_feature_and_reason_with_counts_and_times() {
    let mut alerts = Vec::new();
    for i in 0..5 {
        alerts.push(emr_failure(
            &format!("j-{i}"),
            Some("data"),
            Some("ingest"),
            "VALIDATION_ERROR",
            "Subnet is required",
            10 + i,
        ));
    }
    alerts.push(emr_failure(
        "j-9",
        Some("data"),
        Some("export"),
        "BOOTSTRAP_FAILURE",
        "Bootstrap action 1 failed",
        3,
    ));
    alerts.push(emr_failure(
        "j-8",
        Some("web"),
        None,
        "VALIDATION_ERROR",
        "Subnet is required",
        1,
    ));
    alerts.push(alarm(
        "cpu-high",
        None,
        "Threshold Crossed: 1 datapoint [95.0]",
        5,
    ));
    alerts.push(alarm(
        "cpu-high",
        None,
        "Threshold Crossed: 1 datapoint [97.0]",
        7,
    ));

    let summary = consolidate(&alerts);
    assert_eq!(summary.total, 9);
    assert_eq!(summary.first_seen, Some(at(8, 1)));
    assert_eq!(summary.last_seen, Some(at(9, 7)));

    let teams: Vec<(Option<&str>, usize)> = summary
        .teams
        .iter()
        .map(|t| (t.team.as_deref(), t.count))
        .collect();
    assert_eq!(teams, [(Some("data"), 6), (None, 2), (Some("web"), 1)]);

    let data = &summary.teams[0];
    assert_eq!(
        data.features,
        [
            (Some("ingest".to_string()), 5),
            (Some("export".to_string()), 1)
        ]
    );
    let top = &data.groups[0];
    assert_eq!(top.reason, "VALIDATION_ERROR: Subnet is required");
    assert_eq!(top.count, 5);
    assert_eq!(top.feature.as_deref(), Some("ingest"));
    assert_eq!(top.first_seen, Some(at(8, 10)));
    assert_eq!(top.last_seen, Some(at(8, 14)));
    assert_eq!(top.resources.len(), 5);
    assert_eq!(top.resources[0], "etl-j-0 (j-0)");
    assert_eq!(
        data.groups[1].reason,
        "BOOTSTRAP_FAILURE: Bootstrap action 1 failed"
    );

    let alarms = &summary.teams[1].groups[0];
    assert_eq!(alarms.reason, "Alarm cpu-high in ALARM");
    assert_eq!(alarms.count, 2);
    assert_eq!(alarms.resources, ["cpu-high"]);
    assert_eq!(
        alarms.latest_detail.as_deref(),
        Some("Threshold Crossed: 1 datapoint [97.0]"),
        "the latest state reason is kept"
    );

    let reasons: Vec<(&str, usize)> = summary
        .reasons
        .iter()
        .map(|r| (r.reason.as_str(), r.count))
        .collect();
    assert_eq!(
        reasons,
        [
            ("VALIDATION_ERROR: Subnet is required", 6),
            ("Alarm cpu-high in ALARM", 2),
            ("BOOTSTRAP_FAILURE: Bootstrap action 1 failed", 1),
        ]
    );
    assert_eq!(summary.reasons[0].teams, ["data", "web"]);
    assert!(
        summary.reasons[1].teams.is_empty(),
        "untagged alerts name no team"
    );
}

#[test]
fn the_same_failure_on_different_instances_groups_together() {
    let a = emr_failure(
        "j-1",
        Some("data"),
        None,
        "INSTANCE_FAILURE",
        "Instance i-0123456789abcdef0 at 10.0.1.17 failed to bootstrap.",
        1,
    );
    let b = emr_failure(
        "j-2",
        Some("data"),
        None,
        "INSTANCE_FAILURE",
        "Instance i-0fedcba9876543210 at 10.0.3.4 failed to bootstrap.",
        2,
    );
    let summary = consolidate(&[a, b]);
    assert_eq!(summary.teams[0].groups.len(), 1);
    assert_eq!(
        summary.teams[0].groups[0].reason,
        "INSTANCE_FAILURE: Instance i-… at … failed to bootstrap."
    );
}

#[test]
fn masking_leaves_ordinary_words_alone() {
    assert_eq!(
        mask_ids("m5.xlarge in us-east-1 (j-1ABC2DEF3GH4), exit code 137"),
        "m5.xlarge in us-east-1 (j-…), exit code 137"
    );
    assert_eq!(mask_ids("re-deploy pre-checks"), "re-deploy pre-checks");
    assert_eq!(mask_ids("sg-0a1b2c3d4e, vol-12345678."), "sg-…, vol-….");
}

#[test]
fn reasons_are_one_line_and_bounded() {
    let long = format!("line one\nline two {}", "x".repeat(1000));
    let alert = emr_failure("j-1", None, None, "ERR", &long, 1);
    let reason = failure_reason(&alert);
    assert!(!reason.text.contains('\n'));
    assert_eq!(reason.text.chars().count(), MAX_REASON_CHARS);
    assert!(reason.text.starts_with("ERR: line one line two x"));
}

#[test]
fn emr_without_reason_falls_back_to_state() {
    let event = json!({
        "detail-type": "EMR Cluster State Change", "source": "aws.emr",
        "account": "1", "time": "2024-05-01T08:00:00Z", "region": "us-east-1",
        "detail": {"clusterId": "j-1", "state": "TERMINATED_WITH_ERRORS",
            "message": "Amazon EMR Cluster j-1 has terminated with errors at 2024-05-01 08:00 UTC"}
    });
    let alert = decode_message(&event.to_string(), &SnsEnvelope::default());
    assert_eq!(
        failure_reason(&alert).text,
        "Cluster TERMINATED_WITH_ERRORS"
    );
}

#[test]
fn ecs_and_plain_messages_have_reasons() {
    let mut task = Alert::new(
        AlertKind::EcsTaskStateChange,
        crate::resources::AlertState::Firing,
        crate::alert::Fingerprint::from_raw("t"),
        "ECS task of service web stopped".into(),
    );
    task.summary = "Essential container in task exited".into();
    task.resource = Some("arn:aws:ecs:us-east-1:123456789012:task/prod/0abc".into());
    assert_eq!(
        failure_reason(&task).text,
        "Essential container in task exited"
    );
    assert_eq!(resource_label(&task).as_deref(), Some("task/prod/0abc"));

    let message = decode_message("disk <full> on host", &SnsEnvelope::default());
    let reason = failure_reason(&message);
    assert_eq!(reason.text, message.title);
}

#[test]
fn empty_input_gives_an_empty_summary() {
    let summary = consolidate(&[]);
    assert_eq!(summary.total, 0);
    assert!(summary.teams.is_empty() && summary.reasons.is_empty());
    assert_eq!(summary.first_seen, None);
}
