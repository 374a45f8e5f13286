//! The AlarmPolicy reconciler against the AWS emulator, driven through the in-memory cluster.

use std::sync::Arc;
use std::time::Duration;

use alertops::aws::AwsClients;
use alertops::k8s::{ClusterApi, MemoryCluster};
use alertops::reconcile::{Context, OperatorSettings, alarm_policy};
use alertops::resources::AlarmPolicy;
use aws_sdk_cloudwatch::types::MetricAlarm;
use serde_json::{Value, json};

use crate::harness;

struct Fixture {
    cluster: MemoryCluster,
    ctx: Context<MemoryCluster>,
    aws: AwsClients,
    namespace: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let cluster = MemoryCluster::new();
        let settings = OperatorSettings {
            resync_interval: Duration::from_secs(600),
            ..OperatorSettings::new(harness::unique("c").to_lowercase())
        };
        let aws = harness::aws_clients().await;
        let ctx = Context::new(cluster.clone(), aws.clone(), settings);
        Fixture {
            cluster,
            ctx,
            aws,
            namespace: harness::unique("ns").to_lowercase(),
        }
    }

    fn aws(&self) -> &AwsClients {
        &self.aws
    }

    fn apply(&self, name: &str, spec: Value) {
        self.cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1",
                "kind": "AlarmPolicy",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": spec,
            }))
            .expect("manifest applies");
    }

    async fn get(&self, name: &str) -> Option<AlarmPolicy> {
        self.cluster
            .get::<AlarmPolicy>(&self.namespace, name)
            .await
            .expect("get")
    }

    async fn reconcile(&self, name: &str) -> AlarmPolicy {
        let policy = self.get(name).await.expect("policy exists");
        alarm_policy::reconcile(Arc::new(policy), &self.ctx)
            .await
            .expect("reconcile succeeds");
        self.get(name).await.expect("policy still exists")
    }

    /// Deletes the policy in the cluster and runs the reconcile that finalizes it.
    async fn delete(&self, name: &str) {
        self.cluster
            .request_delete(
                "alertops.dev/v1alpha1",
                "AlarmPolicy",
                &self.namespace,
                name,
            )
            .unwrap();
        let deleting = self
            .get(name)
            .await
            .expect("kept while the finalizer is there");
        alarm_policy::reconcile(Arc::new(deleting), &self.ctx)
            .await
            .unwrap();
    }

    fn alarm_name(&self, policy: &str, alarm: &str) -> String {
        format!(
            "alertops/{}/{}/{}/{}",
            self.ctx.settings.cluster_id, self.namespace, policy, alarm
        )
    }

    async fn alarm(&self, name: &str) -> Option<MetricAlarm> {
        self.aws()
            .cloudwatch
            .describe_alarms()
            .alarm_names(name)
            .send()
            .await
            .expect("DescribeAlarms")
            .metric_alarms()
            .first()
            .cloned()
    }
}

fn ready(policy: &AlarmPolicy) -> (String, String, String) {
    let status = policy.status.as_ref().expect("status written");
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready condition");
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn elb_alarm(name: &str, threshold: f64) -> Value {
    json!({
        "name": name,
        "description": "The load balancer cannot reach its backends",
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
        "datapointsToAlarm": 3,
        "threshold": threshold,
        "comparison": "GreaterThanThreshold",
        "treatMissingData": "notBreaching",
        "tags": {"Component": "broker"}
    })
}

fn full_spec(threshold: f64) -> Value {
    json!({
        "tags": {"Team": "data-eng", "Feature": "ingest"},
        "alarms": [
            elb_alarm("backend-errors", threshold),
            {
                "name": "latency-p99",
                "metric": {"namespace": "AWS/ApplicationELB", "name": "TargetResponseTime",
                           "dimensions": {"LoadBalancer": "app/web/123"}, "percentile": "p99"},
                "period": 300, "evaluationPeriods": 3, "threshold": 1.5,
                "comparison": "GreaterThanThreshold"
            },
            {
                "name": "error-rate",
                "metrics": [
                    {"id": "errors", "metric": {"namespace": "AWS/ApplicationELB", "name": "HTTPCode_Target_5XX_Count", "stat": "Sum"}},
                    {"id": "requests", "metric": {"namespace": "AWS/ApplicationELB", "name": "RequestCount", "stat": "Sum"}},
                    {"id": "rate", "expression": "100 * errors / requests", "label": "5xx %", "returnData": true}
                ],
                "period": 60, "evaluationPeriods": 5, "threshold": 5,
                "comparison": "GreaterThanThreshold", "treatMissingData": "notBreaching"
            }
        ],
        "eventRules": [
            {"name": "emr-failed", "preset": "EmrClusterFailed"},
            {"name": "ecs-actions", "preset": "EcsServiceAction"},
            {"name": "custom", "eventPattern": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]}}
        ]
    })
}

async fn cloudwatch_tags(aws: &AwsClients, arn: &str) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = aws
        .cloudwatch
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .expect("ListTagsForResource")
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    tags.sort();
    tags
}

#[tokio::test]
async fn creates_topic_alarms_and_rules_with_tags() {
    let f = Fixture::new().await;
    f.apply("elb", full_spec(100.0));
    let policy = f.reconcile("elb").await;
    assert_eq!(ready(&policy).0, "True", "{:?}", ready(&policy));
    let status = policy.status.as_ref().unwrap();
    assert_eq!(status.alarm_count, 3);
    assert_eq!(status.rule_count, 3);
    assert!(
        policy
            .metadata
            .finalizers
            .as_ref()
            .unwrap()
            .contains(&"alertops.dev/cleanup".to_string())
    );

    // Topic: owned, tagged, publishable by CloudWatch and EventBridge.
    let topic = status.topic_arn.clone().expect("topic ARN in status");
    let tags = f
        .aws()
        .sns
        .list_tags_for_resource()
        .resource_arn(&topic)
        .send()
        .await
        .unwrap();
    let tags: Vec<(&str, &str)> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert!(tags.contains(&("Team", "data-eng")), "{tags:?}");
    assert!(tags.contains(&(
        "alertops.dev/owner",
        &*format!("AlarmPolicy/{}/elb", f.namespace)
    )));
    let attributes = f
        .aws()
        .sns
        .get_topic_attributes()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    let policy_doc: Value =
        serde_json::from_str(&attributes.attributes().unwrap()["Policy"]).unwrap();
    let principals: Vec<&str> = policy_doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["Principal"]["Service"].as_str())
        .collect();
    assert_eq!(
        principals,
        vec!["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    );
    // Only our own alarms and rules, and no statement for any other principal.
    let statements = policy_doc["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2);
    let alarm_source = statements[0]["Condition"]["ArnLike"]["aws:SourceArn"]
        .as_str()
        .unwrap();
    assert!(
        alarm_source.ends_with(&format!(
            ":alarm:alertops/{}/{}/elb/*",
            f.ctx.settings.cluster_id, f.namespace
        )),
        "{alarm_source}"
    );

    // Alarms: as specified.
    let alarm = f
        .alarm(&f.alarm_name("elb", "backend-errors"))
        .await
        .expect("alarm created");
    assert_eq!(alarm.statistic().unwrap().as_str(), "Sum");
    assert_eq!(alarm.threshold(), Some(100.0));
    assert_eq!(alarm.datapoints_to_alarm(), Some(3));
    assert_eq!(alarm.treat_missing_data(), Some("notBreaching"));
    assert_eq!(alarm.alarm_actions(), std::slice::from_ref(&topic));
    assert_eq!(alarm.ok_actions(), std::slice::from_ref(&topic));
    assert!(
        alarm
            .alarm_description()
            .unwrap()
            .contains("Runbook: https://runbooks.example.com/elb")
    );
    let alarm_tags = cloudwatch_tags(f.aws(), alarm.alarm_arn().unwrap()).await;
    for expected in [
        ("Component", "broker"),
        ("Feature", "ingest"),
        ("Severity", "Critical"),
        ("Team", "data-eng"),
    ] {
        assert!(
            alarm_tags.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} missing from {alarm_tags:?}"
        );
    }
    let p99 = f
        .alarm(&f.alarm_name("elb", "latency-p99"))
        .await
        .expect("percentile alarm");
    assert_eq!(p99.extended_statistic(), Some("p99"));
    let math = f
        .alarm(&f.alarm_name("elb", "error-rate"))
        .await
        .expect("metric-math alarm");
    assert_eq!(math.metrics().len(), 3);
    assert_eq!(
        math.metrics()
            .iter()
            .find(|q| q.return_data() == Some(true))
            .and_then(|q| q.expression()),
        Some("100 * errors / requests")
    );

    // Rules: pattern and target.
    for rule in &status.event_rules {
        let described = f
            .aws()
            .eventbridge
            .describe_rule()
            .name(&rule.rule_name)
            .send()
            .await
            .unwrap();
        let pattern: Value = serde_json::from_str(described.event_pattern().unwrap()).unwrap();
        if rule.name == "emr-failed" {
            assert_eq!(
                pattern["detail"]["state"],
                json!(["TERMINATED_WITH_ERRORS"])
            );
        }
        let targets = f
            .aws()
            .eventbridge
            .list_targets_by_rule()
            .rule(&rule.rule_name)
            .send()
            .await
            .unwrap();
        assert_eq!(targets.targets().len(), 1);
        assert_eq!(targets.targets()[0].arn(), topic);
    }
}

#[tokio::test]
async fn a_second_reconcile_without_change_writes_nothing() {
    let f = Fixture::new().await;
    f.apply("quiet", full_spec(100.0));
    f.reconcile("quiet").await;
    let calls = f.aws().call_log();
    calls.reset();
    let policy = f.reconcile("quiet").await;
    assert_eq!(ready(&policy).0, "True");
    let writes: Vec<String> = calls.writes().iter().map(|c| c.operation.clone()).collect();
    assert!(writes.is_empty(), "a no-op resync wrote to AWS: {writes:?}");
    // A handful of alarms is one DescribeAlarms page (the emulator pages as CloudWatch does).
    assert_eq!(
        calls.count("DescribeAlarms"),
        1,
        "the resync reads the alarms in one page"
    );
}

#[tokio::test]
async fn threshold_change_updates_the_alarm_and_dropped_alarms_are_deleted() {
    let f = Fixture::new().await;
    f.apply("svc", full_spec(100.0));
    f.reconcile("svc").await;

    f.apply("svc", full_spec(250.0));
    let policy = f.reconcile("svc").await;
    assert_eq!(ready(&policy).0, "True");
    let alarm = f
        .alarm(&f.alarm_name("svc", "backend-errors"))
        .await
        .unwrap();
    assert_eq!(alarm.threshold(), Some(250.0));
    assert!(
        f.cluster
            .events()
            .iter()
            .any(|e| e.reason == "AlarmUpdated"
                && e.note.as_deref().unwrap_or("").contains("threshold")),
        "an event names the change"
    );

    let custom_rule = policy
        .status
        .as_ref()
        .unwrap()
        .event_rules
        .iter()
        .find(|r| r.name == "custom")
        .unwrap()
        .rule_name
        .clone();
    let mut spec = full_spec(250.0);
    spec["alarms"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["name"] != "latency-p99");
    spec["eventRules"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["name"] != "custom");
    f.apply("svc", spec);
    let policy = f.reconcile("svc").await;
    assert!(
        f.alarm(&f.alarm_name("svc", "latency-p99")).await.is_none(),
        "dropped alarm deleted"
    );
    assert!(
        f.alarm(&f.alarm_name("svc", "backend-errors"))
            .await
            .is_some(),
        "kept alarm kept"
    );
    assert!(
        f.aws()
            .eventbridge
            .describe_rule()
            .name(&custom_rule)
            .send()
            .await
            .is_err(),
        "dropped rule deleted"
    );
    let status = policy.status.unwrap();
    assert_eq!(status.alarm_count, 2);
    assert_eq!(status.rule_count, 2);
}

#[tokio::test]
async fn deletion_with_delete_policy_removes_everything_it_owns() {
    let f = Fixture::new().await;
    f.apply("gone", full_spec(100.0));
    let policy = f.reconcile("gone").await;
    let status = policy.status.clone().unwrap();
    let topic = status.topic_arn.clone().unwrap();

    f.delete("gone").await;
    assert!(
        f.get("gone").await.is_none(),
        "finalizer removed, object gone"
    );

    for alarm in &status.alarms {
        assert!(
            f.alarm(&alarm.alarm_name).await.is_none(),
            "{} still exists",
            alarm.alarm_name
        );
    }
    for rule in &status.event_rules {
        assert!(
            f.aws()
                .eventbridge
                .describe_rule()
                .name(&rule.rule_name)
                .send()
                .await
                .is_err()
        );
    }
    assert!(
        f.aws()
            .sns
            .get_topic_attributes()
            .topic_arn(&topic)
            .send()
            .await
            .is_err(),
        "topic deleted"
    );
}

#[tokio::test]
async fn deletion_with_retain_policy_leaves_aws_alone() {
    let f = Fixture::new().await;
    let mut spec = full_spec(100.0);
    spec["deletionPolicy"] = json!("Retain");
    f.apply("kept", spec);
    let policy = f.reconcile("kept").await;
    let status = policy.status.clone().unwrap();

    f.aws().call_log().reset();
    f.delete("kept").await;
    assert!(f.get("kept").await.is_none());
    assert!(
        f.aws().call_log().writes().is_empty(),
        "Retain writes nothing to AWS"
    );
    for alarm in &status.alarms {
        assert!(f.alarm(&alarm.alarm_name).await.is_some());
    }
    let topic = status.topic_arn.unwrap();
    assert!(
        f.aws()
            .sns
            .get_topic_attributes()
            .topic_arn(&topic)
            .send()
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_unowned_alarm_with_the_same_name_is_left_untouched_and_reported() {
    let f = Fixture::new().await;
    let name = f.alarm_name("clash", "backend-errors");
    // Someone created an alarm with exactly the name alertops would use, without its tags.
    f.aws()
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&name)
        .namespace("Custom")
        .metric_name("Handmade")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
        .period(60)
        .evaluation_periods(1)
        .threshold(7.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();

    f.apply(
        "clash",
        json!({"alarms": [elb_alarm("backend-errors", 100.0)]}),
    );
    let policy = f.reconcile("clash").await;
    let (status, reason, message) = ready(&policy);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "AlarmNotOwned")
    );
    assert!(message.contains(&name), "{message}");

    let alarm = f.alarm(&name).await.unwrap();
    assert_eq!(alarm.threshold(), Some(7.0), "left untouched");
    assert_eq!(alarm.metric_name(), Some("Handmade"));
    assert!(
        f.cluster
            .events()
            .iter()
            .any(|e| e.reason == "AlarmNotOwned")
    );

    // Deleting the policy must not delete someone else's alarm either.
    f.delete("clash").await;
    assert!(
        f.alarm(&name).await.is_some(),
        "unowned alarm survives the policy's deletion"
    );
}

#[tokio::test]
async fn two_hundred_fifty_alarms_resync_with_three_describe_pages() {
    let f = Fixture::new().await;
    let alarms: Vec<Value> = (0..250)
        .map(|i| elb_alarm(&format!("a{i:03}"), 10.0 + f64::from(i)))
        .collect();
    f.apply(
        "big",
        json!({"tags": {"Team": "platform"}, "alarms": alarms}),
    );
    let policy = f.reconcile("big").await;
    assert_eq!(ready(&policy).0, "True", "{:?}", ready(&policy));
    assert_eq!(policy.status.as_ref().unwrap().alarm_count, 250);

    f.aws().call_log().reset();
    f.reconcile("big").await;
    // The emulator's CloudWatch pages as CloudWatch does: 100 + 100 + 50, each page asked for
    // with the previous page's token. No writes below shows that every page was read (a missed
    // page would look like missing alarms and be created again).
    let describes = f.aws().call_log().count("DescribeAlarms");
    assert_eq!(describes, 3, "DescribeAlarms pages for 250 alarms");
    assert!(f.aws().call_log().writes().is_empty());
    let alarm_tag_reads = f
        .aws()
        .call_log()
        .snapshot()
        .iter()
        .filter(|c| c.service == "CloudWatch" && c.operation == "ListTagsForResource")
        .count();
    assert_eq!(alarm_tag_reads, 0, "verified alarm tags are not read again");
}

#[tokio::test]
async fn an_invalid_spec_becomes_a_condition_and_touches_nothing() {
    let f = Fixture::new().await;
    let mut alarm = elb_alarm("too-long", 1.0);
    alarm["period"] = json!(3600);
    alarm["evaluationPeriods"] = json!(48);
    f.apply("bad", json!({"alarms": [alarm]}));
    f.aws().call_log().reset();
    let policy = f.reconcile("bad").await;
    let (status, reason, message) = ready(&policy);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    assert!(message.contains("86400"), "{message}");
    assert!(
        f.aws().call_log().snapshot().is_empty(),
        "nothing sent to AWS"
    );
}

#[tokio::test]
async fn lint_findings_reach_status_and_events() {
    let f = Fixture::new().await;
    let mut alarm = elb_alarm("maximum", 100.0);
    alarm["metric"]["statistic"] = json!("Maximum");
    f.apply("linted", json!({"alarms": [alarm]}));
    let policy = f.reconcile("linted").await;
    let status = policy.status.unwrap();
    assert!(
        status
            .lint
            .iter()
            .any(|l| l.rule == "count-metric-needs-sum"),
        "{:?}",
        status.lint
    );
    let lint = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Lint")
        .unwrap();
    assert_eq!(
        (lint.status.as_str(), lint.reason.as_str()),
        ("False", "Errors")
    );
    assert!(
        f.cluster
            .events()
            .iter()
            .any(|e| e.reason == "LintFinding" && e.note.as_deref().unwrap_or("").contains("Sum"))
    );
}

/// Adoption is explicit: with `alertops.dev/adopt: "true"`, a hand-made alarm and topic of our
/// names are tagged as ours, brought to the spec, and reported with an `Adopted` Event.
#[tokio::test]
async fn an_opted_in_policy_adopts_the_alarm_and_topic_teams_built_by_hand() {
    let f = Fixture::new().await;
    let name = f.alarm_name("legacy", "backend-errors");
    f.aws()
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&name)
        .namespace("AWS/ELB")
        .metric_name("BackendConnectionErrors")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(7.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    let owner = alertops::names::OwnerIdentity::new(
        &f.ctx.settings.cluster_id,
        "AlarmPolicy",
        &f.namespace,
        "legacy",
    );
    let topic = f
        .aws()
        .sns
        .create_topic()
        .name(owner.topic_name())
        .tags(
            aws_sdk_sns::types::Tag::builder()
                .key("Team")
                .value("legacy")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();

    f.cluster
        .apply_manifest(json!({
            "apiVersion": "alertops.dev/v1alpha1",
            "kind": "AlarmPolicy",
            "metadata": {
                "name": "legacy",
                "namespace": f.namespace,
                "annotations": {"alertops.dev/adopt": "true"},
            },
            "spec": {"alarms": [elb_alarm("backend-errors", 100.0)]},
        }))
        .unwrap();
    let policy = f.reconcile("legacy").await;
    let (status, reason, message) = ready(&policy);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "Reconciled"),
        "{message}"
    );
    assert_eq!(
        policy.status.as_ref().unwrap().topic_arn.as_deref(),
        Some(topic.as_str())
    );

    let alarm = f.alarm(&name).await.unwrap();
    assert_eq!(alarm.threshold(), Some(100.0), "brought to the spec");
    let tags = cloudwatch_tags(f.aws(), alarm.alarm_arn().unwrap()).await;
    assert!(owner.owns(&tags.into_iter().collect()), "tagged as ours");
    let adopted: Vec<String> = f
        .cluster
        .events()
        .into_iter()
        .filter(|e| e.reason == "Adopted")
        .filter_map(|e| e.note)
        .collect();
    assert!(adopted.iter().any(|n| n.contains(&name)), "{adopted:?}");
    assert!(adopted.iter().any(|n| n.contains(&topic)), "{adopted:?}");
}

#[tokio::test]
async fn alarm_states_set_behind_the_controllers_back_reach_the_status_and_events() {
    let f = Fixture::new().await;
    f.apply("states", full_spec(100.0));
    let policy = f.reconcile("states").await;
    assert_eq!(ready(&policy).0, "True", "{:?}", ready(&policy));
    assert_eq!(policy.status.as_ref().unwrap().firing, 0);
    let name = f.alarm_name("states", "backend-errors");

    // CloudWatch's evaluation, played by SetAlarmState through the CBOR translator.
    f.aws()
        .cloudwatch
        .set_alarm_state()
        .alarm_name(&name)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("Threshold Crossed: 3 out of the last 5 datapoints were greater than the threshold (100.0)")
        .send()
        .await
        .expect("SetAlarmState");
    let changed_at = f
        .alarm(&name)
        .await
        .and_then(|a| a.state_updated_timestamp().map(|t| t.secs()))
        .expect("the emulator reports when the state changed");

    let calls = f.aws().call_log();
    calls.reset();
    let policy = f.reconcile("states").await;
    let writes: Vec<String> = calls.writes().iter().map(|c| c.operation.clone()).collect();
    assert!(writes.is_empty(), "a state change wrote to AWS: {writes:?}");
    assert_eq!(calls.count("DescribeAlarms"), 1, "the usual single page");
    assert_eq!(
        calls
            .snapshot()
            .iter()
            .filter(|c| c.service == "CloudWatch" && c.operation != "DescribeAlarms")
            .count(),
        0,
        "no other CloudWatch read: {:?}",
        calls.snapshot()
    );

    let status = policy.status.as_ref().unwrap();
    assert_eq!(status.firing, 1);
    let alarm = status
        .alarms
        .iter()
        .find(|a| a.alarm_name == name)
        .expect("recorded");
    assert_eq!(
        alarm.state,
        Some(alertops::resources::alarm_policy::AlarmState::Alarm)
    );
    assert!(
        alarm
            .state_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("Threshold Crossed: 3 out of the last 5")),
        "{alarm:?}"
    );
    assert_eq!(
        alarm.state_changed_at.as_ref().map(|t| t.0.as_second()),
        Some(changed_at)
    );
    let others = status.alarms.iter().filter(|a| a.alarm_name != name);
    for other in others {
        assert_ne!(
            other.state,
            Some(alertops::resources::alarm_policy::AlarmState::Alarm),
            "{other:?}"
        );
    }
    let events: Vec<_> = f
        .cluster
        .events()
        .into_iter()
        .filter(|e| e.reason == "AlarmStateChanged")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].type_, alertops::k8s::EventType::Warning);
    assert!(
        events[0]
            .note
            .as_deref()
            .is_some_and(|n| n.contains(&name) && n.contains("is ALARM (was OK)")),
        "{events:?}"
    );

    // Nothing changed since: the next resync writes neither AWS nor the status.
    let revision = f.cluster.revision();
    f.reconcile("states").await;
    assert_eq!(f.cluster.revision(), revision, "the status was rewritten");
}

#[tokio::test]
async fn an_anomaly_detection_alarm_round_trips_and_resyncs_without_writes() {
    let f = Fixture::new().await;
    f.apply(
        "leading",
        json!({
            "tags": {"Team": "data-eng"},
            "alarms": [{
                "name": "free-storage-band",
                "metric": {"namespace": "AWS/RDS", "name": "FreeStorageSpace",
                           "dimensions": {"DBInstanceIdentifier": "orders"}, "statistic": "Minimum"},
                "period": 300, "evaluationPeriods": 3,
                "anomalyDetection": {"bandWidth": 2},
                "comparison": "LessThanLowerThreshold"
            }]
        }),
    );
    let policy = f.reconcile("leading").await;
    assert_eq!(ready(&policy).0, "True", "{:?}", ready(&policy));
    let alarm = f
        .alarm(&f.alarm_name("leading", "free-storage-band"))
        .await
        .expect("created");
    assert_eq!(alarm.threshold_metric_id(), Some("anomaly_band"));
    assert_eq!(
        alarm.comparison_operator().map(|c| c.as_str()),
        Some("LessThanLowerThreshold")
    );
    let expressions: Vec<&str> = alarm
        .metrics()
        .iter()
        .filter_map(|q| q.expression())
        .collect();
    assert_eq!(expressions, vec!["ANOMALY_DETECTION_BAND(m1, 2)"]);

    let calls = f.aws().call_log();
    calls.reset();
    f.reconcile("leading").await;
    let writes: Vec<String> = calls.writes().iter().map(|c| c.operation.clone()).collect();
    assert!(
        writes.is_empty(),
        "the band alarm looked changed: {writes:?}"
    );
}

fn with_composite(composites: Value) -> Value {
    let mut spec = full_spec(100.0);
    spec["compositeAlarms"] = composites;
    spec
}

async fn composite(f: &Fixture, name: &str) -> Option<aws_sdk_cloudwatch::types::CompositeAlarm> {
    f.aws()
        .cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
        .send()
        .await
        .expect("DescribeAlarms")
        .composite_alarms()
        .first()
        .cloned()
}

#[tokio::test]
async fn a_composite_alarm_combines_the_policys_alarms_and_goes_with_them() {
    let f = Fixture::new().await;
    f.apply(
        "combined",
        with_composite(json!([{
            "name": "errors-and-latency",
            "severity": "Critical",
            "runbookUrl": "https://runbooks.example.com/web",
            "rule": "ALARM(error-rate) AND ALARM(latency-p99)"
        }])),
    );
    let policy = f.reconcile("combined").await;
    assert_eq!(ready(&policy).0, "True", "{:?}", ready(&policy));
    let name = f.alarm_name("combined", "errors-and-latency");
    let made = composite(&f, &name).await.expect("created");
    assert_eq!(
        made.alarm_rule(),
        Some(
            format!(
                "ALARM(\"{}\") AND ALARM(\"{}\")",
                f.alarm_name("combined", "error-rate"),
                f.alarm_name("combined", "latency-p99")
            )
            .as_str()
        )
    );
    let topic = policy.status.as_ref().unwrap().topic_arn.clone().unwrap();
    assert_eq!(made.alarm_actions(), std::slice::from_ref(&topic));
    assert_eq!(made.ok_actions(), [topic]);
    let tags = cloudwatch_tags(f.aws(), made.alarm_arn().unwrap()).await;
    assert!(
        tags.contains(&("Severity".into(), "Critical".into())),
        "{tags:?}"
    );
    assert!(
        tags.iter().any(|(k, _)| k == "alertops.dev/owner"),
        "{tags:?}"
    );

    // A resync reads the composite in the alarms' single page and writes nothing.
    let calls = f.aws().call_log();
    calls.reset();
    f.reconcile("combined").await;
    let writes: Vec<String> = calls.writes().iter().map(|c| c.operation.clone()).collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert_eq!(calls.count("DescribeAlarms"), 1);

    // Its state counts like an alarm's.
    f.aws()
        .cloudwatch
        .set_alarm_state()
        .alarm_name(&name)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("both children are in ALARM")
        .send()
        .await
        .expect("SetAlarmState");
    let policy = f.reconcile("combined").await;
    assert_eq!(policy.status.as_ref().unwrap().firing, 1);

    // Dropped from the spec: deleted, its alarms kept.
    f.apply("combined", full_spec(100.0));
    let policy = f.reconcile("combined").await;
    assert_eq!(ready(&policy).0, "True", "{:?}", ready(&policy));
    assert!(composite(&f, &name).await.is_none());
    assert!(
        f.alarm(&f.alarm_name("combined", "error-rate"))
            .await
            .is_some()
    );

    // With the policy: deleted before the alarms its rule names.
    f.apply(
        "combined",
        with_composite(json!([{"name": "errors-and-latency", "rule": "ALARM(error-rate) AND ALARM(latency-p99)"}])),
    );
    f.reconcile("combined").await;
    assert!(composite(&f, &name).await.is_some());
    f.delete("combined").await;
    assert!(composite(&f, &name).await.is_none());
    assert!(
        f.alarm(&f.alarm_name("combined", "error-rate"))
            .await
            .is_none()
    );
}

/// A policy with one log alarm counting the ERROR lines of `group`.
fn log_alarm_spec(group: &str, pattern: &str) -> Value {
    json!({
        "tags": {"Team": "checkout"},
        "logAlarms": [{
            "name": "checkout-errors",
            "severity": "High",
            "logs": {
                "logGroup": group,
                "filterPattern": pattern,
                "metric": {"namespace": "ServerlessApi/Logs", "name": "CheckoutErrors"}
            },
            "period": 60, "evaluationPeriods": 5, "datapointsToAlarm": 3,
            "threshold": 10, "comparison": "GreaterThanThreshold",
            "treatMissingData": "notBreaching"
        }]
    })
}

/// The metric filters of `group` as (name, pattern), in the emulator's order (newest last).
async fn metric_filters(aws: &AwsClients, group: &str) -> Vec<(String, String)> {
    aws.logs
        .describe_metric_filters()
        .log_group_name(group)
        .send()
        .await
        .expect("DescribeMetricFilters")
        .metric_filters()
        .iter()
        .map(|f| {
            (
                f.filter_name().unwrap_or_default().to_owned(),
                f.filter_pattern().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn log_group(aws: &AwsClients) -> String {
    let group = format!("/aws/lambda/{}", harness::unique("checkout"));
    aws.logs
        .create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("CreateLogGroup");
    // A filter the team made by hand in the same group: never ours to touch.
    aws.logs
        .put_metric_filter()
        .log_group_name(&group)
        .filter_name("team-made-timeouts")
        .filter_pattern("Timeout")
        .metric_transformations(
            aws_sdk_cloudwatchlogs::types::MetricTransformation::builder()
                .metric_namespace("Team/Logs")
                .metric_name("Timeouts")
                .metric_value("1")
                .build()
                .expect("transformation"),
        )
        .send()
        .await
        .expect("PutMetricFilter");
    group
}

#[tokio::test]
async fn a_log_alarm_owns_its_metric_filter_and_alarm_and_leaves_the_teams_filter_alone() {
    let f = Fixture::new().await;
    let group = log_group(f.aws()).await;
    let ours = f.alarm_name("logs", "checkout-errors");
    f.apply("logs", log_alarm_spec(&group, "ERROR"));
    let policy = f.reconcile("logs").await;
    assert_eq!(ready(&policy).0, "True", "{:?}", ready(&policy));
    let status = policy.status.expect("status");
    assert_eq!(status.metric_filters.len(), 1);
    assert_eq!(status.metric_filters[0].filter_name, ours);
    assert_eq!(status.metric_filters[0].log_group, group);

    let mut filters = metric_filters(f.aws(), &group).await;
    filters.sort();
    assert_eq!(
        filters,
        [
            (ours.clone(), "ERROR".to_owned()),
            ("team-made-timeouts".to_owned(), "Timeout".to_owned())
        ]
    );
    let alarm = f
        .alarm(&ours)
        .await
        .expect("the alarm on the produced metric");
    assert_eq!(alarm.metric_name(), Some("CheckoutErrors"));
    assert_eq!(alarm.namespace(), Some("ServerlessApi/Logs"));

    // A resync writes nothing.
    let calls = f.aws().call_log();
    calls.reset();
    f.reconcile("logs").await;
    assert!(calls.writes().is_empty(), "{:?}", calls.writes());
    assert_eq!(calls.count("DescribeMetricFilters"), 1);

    // A changed pattern is one PutMetricFilter (moto appends a copy instead of replacing it, so
    // the newest copy of our name is what CloudWatch Logs would hold).
    f.apply("logs", log_alarm_spec(&group, "\"level=ERROR\""));
    calls.reset();
    f.reconcile("logs").await;
    let writes: Vec<String> = calls.writes().into_iter().map(|c| c.operation).collect();
    assert_eq!(writes, ["PutMetricFilter"]);
    let newest = metric_filters(f.aws(), &group)
        .await
        .into_iter()
        .rfind(|(name, _)| *name == ours)
        .expect("our filter");
    assert_eq!(newest.1, "\"level=ERROR\"");
}

#[tokio::test]
async fn a_dropped_log_alarm_deletes_only_its_filter_and_retain_keeps_it_with_the_policy() {
    let f = Fixture::new().await;
    let group = log_group(f.aws()).await;
    let ours = |policy: &str| f.alarm_name(policy, "checkout-errors");

    // Dropped from the spec: our filter goes, the team's stays.
    f.apply("dropped", log_alarm_spec(&group, "ERROR"));
    f.reconcile("dropped").await;
    f.apply(
        "dropped",
        json!({"tags": {"Team": "checkout"}, "alarms": [elb_alarm("backend-errors", 100.0)]}),
    );
    f.reconcile("dropped").await;
    let names: Vec<String> = metric_filters(f.aws(), &group)
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["team-made-timeouts"]);
    assert!(f.alarm(&ours("dropped")).await.is_none());

    // Deleted with Retain: the filter stays.
    let mut retained = log_alarm_spec(&group, "ERROR");
    retained["deletionPolicy"] = json!("Retain");
    f.apply("kept", retained);
    f.reconcile("kept").await;
    f.delete("kept").await;
    assert!(f.get("kept").await.is_none());
    let names: Vec<String> = metric_filters(f.aws(), &group)
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(names.contains(&ours("kept")), "{names:?}");

    // Deleted with the default policy: the filter goes with it.
    f.apply("gone", log_alarm_spec(&group, "ERROR"));
    f.reconcile("gone").await;
    assert!(
        metric_filters(f.aws(), &group)
            .await
            .iter()
            .any(|(n, _)| *n == ours("gone"))
    );
    f.delete("gone").await;
    let names: Vec<String> = metric_filters(f.aws(), &group)
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(!names.contains(&ours("gone")), "{names:?}");
    assert!(names.contains(&"team-made-timeouts".to_owned()));
}
