//! Every decoder against the fixtures in `tests/fixtures/events/`.

use super::*;
use crate::resources::{AlertKind, AlertState, Severity};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/events/",
            $name
        ))
    };
}

#[test]
fn cloudwatch_alarm_single_metric() {
    let alert = decode_sqs_body(fixture!("cloudwatch_alarm_single_metric.json"));
    assert_eq!(alert.kind, AlertKind::CloudWatchAlarm);
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!(alert.source_state.as_deref(), Some("ALARM"));
    assert_eq!(alert.title, "EXAMPLE");
    assert!(
        alert
            .summary
            .starts_with("Threshold Crossed: 1 out of the last 1 datapoints")
    );
    assert_eq!(alert.account.as_deref(), Some("123456789012"));
    assert_eq!(
        alert.region.as_deref(),
        Some("us-east-1"),
        "region code from the alarm ARN"
    );
    assert_eq!(alert.resource.as_deref(), Some("EXAMPLE"));
    assert_eq!(
        alert.source_topic_arn.as_deref(),
        Some("arn:aws:sns:us-east-1:123456789012:alertops-prod-alarms")
    );
    assert_eq!(
        alert.sns_message_id.as_deref(),
        Some("95df01b4-ee98-5cb9-9903-4c221d41eb5e")
    );
    assert_eq!(
        alert.time.map(|t| t.to_rfc3339()),
        Some("2015-06-03T17:43:27.123+00:00".to_string())
    );
    assert_eq!(alert.detail("Metric"), Some("AWS/EC2 NetworkOut"));
    assert_eq!(alert.detail("Dimensions"), Some("InstanceId=TestInstance"));
    assert_eq!(alert.detail("Statistic"), Some("AVERAGE"));
    assert_eq!(alert.detail("Condition"), Some("> 0.0"));
    assert_eq!(alert.detail("Evaluation"), Some("1 periods of 60 s"));
    assert_eq!(alert.detail("Missing data"), Some("missing"));
    assert_eq!(alert.detail("Previous state"), Some("INSUFFICIENT_DATA"));
    assert_eq!(alert.detail("Description"), Some("EXAMPLE"));
    assert_eq!(
        alert.links[0].url,
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/EXAMPLE"
    );
    assert!(
        alert.raw.starts_with("{\"AlarmName\""),
        "raw is the SNS Message"
    );
    assert_eq!(alert.severity, None, "alarm severity comes from its tags");
}

#[test]
fn cloudwatch_ok_resolves_the_same_fingerprint() {
    let alarm = decode_sqs_body(fixture!("cloudwatch_alarm_single_metric.json"));
    let ok = decode_sqs_body(fixture!("cloudwatch_alarm_ok.json"));
    assert_eq!(ok.state, AlertState::Resolved);
    assert_eq!(ok.fingerprint, alarm.fingerprint);
    assert_eq!(ok.detail("Previous state"), Some("ALARM"));
}

#[test]
fn cloudwatch_alarm_metric_math() {
    let alert = decode_sqs_body(fixture!("cloudwatch_alarm_metric_math.json"));
    assert_eq!(alert.kind, AlertKind::CloudWatchAlarm);
    assert_eq!(alert.detail("Expression e1"), Some("m1*1 (Expression1)"));
    assert_eq!(
        alert.detail("Metric m1"),
        Some("AWS/EC2 NetworkOut [InstanceId=TestInstance], Average, 60 s")
    );
    assert_eq!(alert.detail("Condition"), Some("> 0.0"));
    assert_eq!(alert.detail("Metric"), None, "no single metric");
}

#[test]
fn cloudwatch_alarm_through_eventbridge_shares_the_fingerprint() {
    let event = r#"{"version":"0","id":"c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type":"CloudWatch Alarm State Change","source":"aws.cloudwatch",
        "account":"123456789012","time":"2019-10-02T17:04:40Z","region":"us-east-1",
        "resources":["arn:aws:cloudwatch:us-east-1:123456789012:alarm:EXAMPLE"],
        "detail":{"alarmName":"EXAMPLE",
          "state":{"value":"OK","reason":"back to normal","timestamp":"2019-10-02T17:04:40.985+0000"},
          "previousState":{"value":"ALARM"},
          "configuration":{"description":"d","metrics":[{"id":"m1","metricStat":{"metric":{"namespace":"AWS/EC2","name":"CPUUtilization"}}}]}}}"#;
    let alert = decode_sqs_body(event);
    let sns = decode_sqs_body(fixture!("cloudwatch_alarm_single_metric.json"));
    assert_eq!(alert.kind, AlertKind::CloudWatchAlarm);
    assert_eq!(alert.state, AlertState::Resolved);
    assert_eq!(alert.fingerprint, sns.fingerprint);
    assert_eq!(alert.summary, "back to normal");
    assert_eq!(alert.detail("Metric m1"), Some("AWS/EC2 CPUUtilization"));
}

#[test]
fn emr_cluster_terminated_with_errors() {
    let alert = decode_sqs_body(fixture!("emr_cluster_terminated_with_errors.json"));
    assert_eq!(alert.kind, AlertKind::EmrClusterStateChange);
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!(alert.severity, Some(Severity::Critical));
    assert_eq!(alert.resource.as_deref(), Some("j-123456789ABC"));
    assert_eq!(alert.failed_emr_cluster_id(), Some("j-123456789ABC"));
    assert_eq!(
        alert.title,
        "EMR cluster Development Cluster (j-123456789ABC) terminated with errors"
    );
    assert!(
        alert
            .summary
            .starts_with("The VPC/subnet configuration was invalid"),
        "summary is the reason inside the stateChangeReason JSON string: {}",
        alert.summary
    );
    assert_eq!(alert.detail("Reason code"), Some("VALIDATION_ERROR"));
    assert!(
        alert
            .detail("Message")
            .unwrap()
            .contains("has terminated with errors")
    );
    assert_eq!(alert.account.as_deref(), Some("123456789012"));
    assert_eq!(alert.region.as_deref(), Some("us-east-1"));
    assert_eq!(
        alert.links[0].url,
        "https://us-east-1.console.aws.amazon.com/emr/home?region=us-east-1#/clusterDetails/j-123456789ABC"
    );
}

#[test]
fn emr_cluster_terminated_by_user_raw_delivery() {
    let alert = decode_sqs_body(fixture!("emr_cluster_terminated_user_request_raw.json"));
    assert_eq!(alert.kind, AlertKind::EmrClusterStateChange);
    assert_eq!(alert.state, AlertState::Info);
    assert_eq!(alert.severity, Some(Severity::Info));
    assert_eq!(alert.failed_emr_cluster_id(), None);
    assert_eq!(alert.summary, "Terminated by user request");
    assert_eq!(alert.detail("Reason code"), Some("USER_REQUEST"));
    assert_eq!(alert.source_topic_arn, None, "raw delivery has no envelope");
    assert_eq!(
        alert.time.map(|t| t.to_rfc3339()),
        Some("2016-12-16T21:00:23+00:00".to_string())
    );
}

#[test]
fn emr_fingerprint_is_the_cluster_across_states() {
    let failed = decode_sqs_body(fixture!("emr_cluster_terminated_with_errors.json"));
    let same_cluster = fixture!("emr_cluster_terminated_with_errors.json")
        .replace("TERMINATED_WITH_ERRORS", "TERMINATING");
    let other = decode_sqs_body(&same_cluster);
    assert_eq!(other.state, AlertState::Info);
    assert_eq!(other.fingerprint, failed.fingerprint);
    let user = decode_sqs_body(fixture!("emr_cluster_terminated_user_request_raw.json"));
    assert_ne!(user.fingerprint, failed.fingerprint);
}

#[test]
fn emr_state_change_reason_as_object_or_plain_text() {
    let object = r#"{"version":"0","id":"1","detail-type":"EMR Cluster State Change","source":"aws.emr",
        "account":"1","time":"2016-12-16T20:43:05Z","region":"us-east-1","resources":[],
        "detail":{"clusterId":"j-X","state":"TERMINATED_WITH_ERRORS",
          "stateChangeReason":{"code":"STEP_FAILURE","message":"Step failed"}}}"#;
    let alert = decode_sqs_body(object);
    assert_eq!(alert.summary, "Step failed");
    assert_eq!(
        alert.severity,
        Some(Severity::High),
        "failure without severity is High"
    );
    let text = object.replace(
        r#"{"code":"STEP_FAILURE","message":"Step failed"}"#,
        r#""bootstrap action 1 returned a non-zero code""#,
    );
    let alert = decode_sqs_body(&text);
    assert_eq!(alert.summary, "bootstrap action 1 returned a non-zero code");
    assert_eq!(alert.detail("Reason code"), None);
}

#[test]
fn ecs_service_task_start_impaired() {
    let alert = decode_sqs_body(fixture!("ecs_service_task_start_impaired.json"));
    assert_eq!(alert.kind, AlertKind::EcsServiceAction);
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!(alert.severity, Some(Severity::Warning));
    assert_eq!(
        alert.title,
        "ECS service servicetest: SERVICE_TASK_START_IMPAIRED"
    );
    assert_eq!(
        alert.resource.as_deref(),
        Some("arn:aws:ecs:us-west-2:111122223333:service/default/servicetest")
    );
    assert_eq!(alert.detail("Cluster"), Some("default"));
    assert!(alert.summary.contains("unable to consistently start tasks"));
    assert_eq!(
        alert.links[0].url,
        "https://us-west-2.console.aws.amazon.com/ecs/v2/clusters/default/services/servicetest/health?region=us-west-2"
    );
}

#[test]
fn ecs_service_placement_failure_and_steady_state() {
    let failure = decode_sqs_body(fixture!("ecs_service_task_placement_failure_raw.json"));
    assert_eq!(failure.state, AlertState::Firing);
    assert_eq!(failure.severity, Some(Severity::High));
    assert_eq!(failure.summary, "RESOURCE:FARGATE");
    assert_eq!(failure.detail("Capacity providers"), Some("FARGATE_SPOT"));
    let steady = decode_sqs_body(fixture!("ecs_service_steady_state.json"));
    assert_eq!(steady.state, AlertState::Info);
    assert_eq!(steady.severity, Some(Severity::Info));
    assert_ne!(
        steady.fingerprint, failure.fingerprint,
        "service + event name identify a service action"
    );
    let again = decode_sqs_body(fixture!("ecs_service_task_placement_failure_raw.json"));
    assert_eq!(again.fingerprint, failure.fingerprint);
}

#[test]
fn ecs_task_stopped_with_failed_container() {
    let alert = decode_sqs_body(fixture!("ecs_task_stopped.json"));
    assert_eq!(alert.kind, AlertKind::EcsTaskStateChange);
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!(alert.severity, Some(Severity::High));
    assert_eq!(alert.title, "ECS task of service sample-fargate stopped");
    assert_eq!(
        alert.summary,
        "Essential container in task exited; FargateApp exited with code 1"
    );
    assert_eq!(alert.detail("Stop code"), Some("EssentialContainerExited"));
    assert_eq!(alert.detail("Containers"), Some("FargateApp: exit code 1"));
    assert_eq!(alert.detail("Task definition"), Some("sample-fargate:1"));
    assert_eq!(
        alert.resource.as_deref(),
        Some(
            "arn:aws:ecs:us-west-2:111122223333:task/FargateCluster/c13b4cb40f1f4fe4a2971f76ae5a47ad"
        )
    );
}

#[test]
fn ecs_task_clean_exit_and_running_are_info() {
    let clean =
        fixture!("ecs_task_stopped.json").replace("\\\"exitCode\\\": 1", "\\\"exitCode\\\": 0");
    let alert = decode_sqs_body(&clean);
    assert_eq!(alert.kind, AlertKind::EcsTaskStateChange);
    assert_eq!(
        alert.state,
        AlertState::Info,
        "exit code 0 is a normal stop"
    );
    let running = fixture!("ecs_task_stopped.json").replace(
        "\\\"lastStatus\\\": \\\"STOPPED\\\"",
        "\\\"lastStatus\\\": \\\"RUNNING\\\"",
    );
    let alert = decode_sqs_body(&running);
    assert_eq!(alert.state, AlertState::Info);
    assert_eq!(alert.title, "ECS task of service sample-fargate running");
}

#[test]
fn generic_eventbridge_event() {
    let alert = decode_sqs_body(fixture!("eventbridge_ec2_state_change.json"));
    assert_eq!(alert.kind, AlertKind::EventBridgeEvent);
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!(
        alert.title,
        "EC2 Instance State-change Notification: i-abcd1111"
    );
    assert_eq!(alert.summary, "instance-id: i-abcd1111, state: pending");
    assert_eq!(alert.detail("state"), Some("pending"));
    assert_eq!(alert.detail("Source"), Some("aws.ec2"));
    assert_eq!(
        alert.resource.as_deref(),
        Some("arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111")
    );
    let other_state = fixture!("eventbridge_ec2_state_change.json").replace("pending", "running");
    assert_eq!(
        decode_sqs_body(&other_state).fingerprint,
        alert.fingerprint,
        "source + detail-type + resources identify a generic event"
    );
}

#[test]
fn plain_text_message_in_envelope() {
    let alert = decode_sqs_body(fixture!("sns_plain_text.json"));
    assert_eq!(alert.kind, AlertKind::Message);
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!(alert.title, "Nightly backup failed");
    assert!(
        alert
            .summary
            .starts_with("Backup job 42 failed on db-1: disk full")
    );
    assert_eq!(alert.detail("Topic"), Some("alertops-prod-alarms"));
    assert_eq!(alert.account.as_deref(), Some("123456789012"));
    assert_eq!(
        alert.time.map(|t| t.to_rfc3339()),
        Some("2023-04-18T02:00:00+00:00".to_string()),
        "the SNS timestamp when the message has none"
    );
}

#[test]
fn malformed_not_json() {
    let body = fixture!("not_json.txt");
    let alert = decode_sqs_body(body);
    assert_eq!(alert.kind, AlertKind::Message);
    assert_eq!(alert.title, "Backup job 42 failed on db-1: disk full");
    assert_eq!(alert.raw, body);
}

#[test]
fn malformed_unknown_json_shape() {
    let alert = decode_sqs_body(fixture!("unknown_shape.json"));
    assert_eq!(alert.kind, AlertKind::Message);
    assert!(alert.summary.contains("\"hello\": \"world\""));
}

#[test]
fn malformed_envelope_message_not_json() {
    let alert = decode_sqs_body(fixture!("sns_message_not_json.json"));
    assert_eq!(alert.kind, AlertKind::Message);
    assert_eq!(
        alert.summary,
        "{this is not json: deploy <failed> & rolled back"
    );
    assert_eq!(
        alert.sns_message_id.as_deref(),
        Some("a9b8c7d6-5555-5666-8777-988899990000")
    );
}

#[test]
fn malformed_truncated_envelope_and_event() {
    let body = fixture!("truncated_envelope.json");
    let alert = decode_sqs_body(body);
    assert_eq!(alert.kind, AlertKind::Message);
    assert_eq!(alert.raw, body, "the text is carried, never dropped");
    let event = decode_sqs_body(fixture!("truncated_event_raw.json"));
    assert_eq!(event.kind, AlertKind::Message);
    assert!(event.summary.contains("EMR Cluster State Change"));
}

#[test]
fn odd_inputs_never_panic() {
    for body in [
        "",
        "   ",
        "null",
        "42",
        "[]",
        "\"just a string\"",
        "{\"Type\":\"Notification\"}",
        "{\"Type\":\"Notification\",\"Message\":\"\"}",
        "{\"Type\":\"Notification\",\"Message\":17}",
        "{\"source\":\"aws.emr\",\"detail-type\":\"EMR Cluster State Change\"}",
        "{\"source\":\"aws.ecs\",\"detail-type\":\"ECS Task State Change\",\"detail\":[1]}",
        "{\"source\":\"aws.ecs\",\"detail-type\":\"ECS Service Action\",\"resources\":[1,null]}",
        "{\"AlarmName\":\"a\",\"NewStateValue\":\"ALARM\",\"Trigger\":{\"Metrics\":[{}],\"Dimensions\":7}}",
        "\u{feff}{\"AlarmName\":\"bom\",\"NewStateValue\":\"OK\"}",
    ] {
        let alert = decode_sqs_body(body);
        assert!(!alert.title.is_empty(), "title for {body:?}");
        assert_eq!(alert.fingerprint.as_str().len(), 32);
    }
    assert_eq!(
        decode_sqs_body("\u{feff}{\"AlarmName\":\"bom\",\"NewStateValue\":\"OK\"}").state,
        AlertState::Resolved
    );
}

#[test]
fn message_fingerprint_depends_on_topic_subject_and_body() {
    let a = decode_sqs_body(fixture!("sns_plain_text.json"));
    let b = decode_sqs_body(&fixture!("sns_plain_text.json").replace("Nightly", "Weekly"));
    let c = decode_sqs_body(&fixture!("sns_plain_text.json").replace("job 42", "job 43"));
    let d = decode_sqs_body(&fixture!("sns_plain_text.json").replace("prod-alarms", "dev-alarms"));
    assert_ne!(a.fingerprint, b.fingerprint);
    assert_ne!(a.fingerprint, c.fingerprint);
    assert_ne!(a.fingerprint, d.fingerprint);
    assert_eq!(
        a.fingerprint,
        decode_sqs_body(fixture!("sns_plain_text.json")).fingerprint
    );
}

fn envelope(topic: &str, subject: Option<&str>, message: &str) -> String {
    let mut value = serde_json::json!({
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": topic,
        "Message": message,
        "Timestamp": "2023-04-18T02:00:00.000Z",
    });
    if let Some(subject) = subject {
        value["Subject"] = subject.into();
    }
    value.to_string()
}

#[test]
fn plain_null_message_is_titled_by_its_topic() {
    let topic = "arn:aws:sns:us-east-1:123456789012:payments-alerts";
    let alert = decode_sqs_body(&envelope(topic, None, "null"));
    assert_eq!(alert.title, "Message on payments-alerts");
    let alert = decode_sqs_body(&envelope(topic, Some("Deploy finished"), "null"));
    assert_eq!(alert.title, "Deploy finished");
}

#[test]
fn nested_sns_envelope_is_unwrapped() {
    let inner_event = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/events/emr_cluster_terminated_with_errors.json"
    ));
    let inner = unwrap_sns_envelope(inner_event)
        .map(|(_, m)| m)
        .unwrap_or_else(|| inner_event.to_string());
    let once = envelope("arn:aws:sns:us-east-1:123456789012:inner", None, &inner);
    let twice = envelope("arn:aws:sns:us-east-1:123456789012:outer", None, &once);
    let alert = decode_sqs_body(&twice);
    assert_eq!(
        alert.kind,
        AlertKind::EmrClusterStateChange,
        "{}",
        alert.title
    );
    assert!(!alert.title.starts_with('{'), "{}", alert.title);
    assert_eq!(
        alert.source_topic_arn.as_deref(),
        Some("arn:aws:sns:us-east-1:123456789012:inner"),
        "the topic that published the event"
    );
}

#[test]
fn emr_step_failure_names_step_and_cluster_with_event_severity() {
    let alert = decode_sqs_body(fixture!("emr_step_failed_raw.json"));
    assert_eq!(
        alert.title,
        "EMR step CustomJAR (s-1OLVP7KQ4QKNW) on j-1YONHTCP3YZKC failed"
    );
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!(alert.severity, Some(Severity::High), "severity ERROR");
    assert!(
        alert
            .summary
            .starts_with("Step s-1OLVP7KQ4QKNW (CustomJAR)")
    );
    assert_eq!(alert.detail("Action on failure"), Some("CONTINUE"));
    assert_eq!(
        alert.links[0].url,
        "https://us-east-1.console.aws.amazon.com/emr/home?region=us-east-1#/clusterDetails/j-1YONHTCP3YZKC"
    );
    assert_eq!(
        alert.failed_emr_cluster_id(),
        None,
        "a step failure offers no cluster retry"
    );
}

#[test]
fn ecs_deployment_failure_names_service_with_reason_and_link() {
    let alert = decode_sqs_body(fixture!("ecs_deployment_failed_raw.json"));
    assert_eq!(alert.title, "ECS service servicetest: deployment failed");
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!(alert.severity, Some(Severity::High), "eventType ERROR");
    assert_eq!(
        alert.summary,
        "ECS deployment circuit breaker: task failed to start."
    );
    assert_eq!(alert.detail("Deployment"), Some("ecs-svc/123"));
    assert_eq!(alert.detail("Cluster"), Some("default"));
    assert!(
        alert.links[0].url.ends_with(
            "/ecs/v2/clusters/default/services/servicetest/deployments?region=us-west-2"
        ),
        "{:?}",
        alert.links
    );
}

#[test]
fn sns_message_attributes_are_kept_as_the_publisher_wrote_them() {
    let alert = decode_sqs_body(fixture!("sns_message_attributes.json"));
    assert_eq!(alert.kind, AlertKind::Message);
    let attributes: Vec<(&str, &str)> = alert
        .attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        attributes,
        vec![
            ("attempt", "3"),
            ("correlation_id", "9f2c-user-a-post-17"),
            ("followers", r#"["u1","u2","u3"]"#),
            // Untrusted text is kept verbatim here; renderers escape it.
            ("request_id", "<!channel> req-42"),
        ],
        "Binary attributes have nothing to show"
    );
}

#[test]
fn message_attributes_are_bounded_and_nested_envelopes_keep_the_publishers() {
    let many: serde_json::Map<String, serde_json::Value> = (0..30)
        .map(|i| {
            (
                format!("a{i:02}"),
                serde_json::json!({"Type": "String", "Value": "x".repeat(1000)}),
            )
        })
        .collect();
    let inner = serde_json::json!({
        "Type": "Notification", "MessageId": "inner", "TopicArn": "arn:aws:sns:us-east-1:1:origin",
        "Message": "hello",
        "MessageAttributes": {"correlation_id": {"Type": "String", "Value": "from-publisher"}}
    });
    let outer = serde_json::json!({
        "Type": "Notification", "MessageId": "outer", "TopicArn": "arn:aws:sns:us-east-1:1:bridge",
        "Message": inner.to_string(),
        "MessageAttributes": {
            "correlation_id": {"Type": "String", "Value": "from-forwarder"},
            "hop": {"Type": "String", "Value": "bridge"}
        }
    });
    let alert = decode_sqs_body(&outer.to_string());
    assert_eq!(alert.attributes["correlation_id"], "from-publisher");
    assert_eq!(alert.attributes["hop"], "bridge");

    let flood = serde_json::json!({
        "Type": "Notification", "Message": "m", "MessageAttributes": many
    });
    let alert = decode_sqs_body(&flood.to_string());
    assert_eq!(alert.attributes.len(), MAX_ATTRIBUTES);
    assert!(
        alert
            .attributes
            .values()
            .all(|v| v.chars().count() == MAX_ATTRIBUTE_CHARS)
    );
}
