//! The AlarmPolicy reconciler end to end over the in-memory cluster and the in-memory AWS: the
//! skeleton's steps (finalizer, status, conditions, deletion policies) and the plan's execution.
//! The same behaviours run against the emulator in `tests/integration/alarm_policy.rs`.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::aws::AwsErrorKind;
use crate::aws::fake::FakeAws;
use crate::k8s::MemoryCluster;
use crate::reconcile::OperatorSettings;
use crate::resources::Tags;

const NAMESPACE: &str = "team-a";

struct Fixture {
    cluster: MemoryCluster,
    aws: FakeAws,
    ctx: Context<MemoryCluster>,
}

impl Fixture {
    fn new() -> Fixture {
        let cluster = MemoryCluster::new();
        let aws = FakeAws::new();
        let ctx = Context::new(cluster.clone(), aws.clone(), OperatorSettings::new("test"));
        Fixture { cluster, aws, ctx }
    }

    fn apply(&self, deletion_policy: &str) {
        self.cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1",
                "kind": "AlarmPolicy",
                "metadata": {"name": "elb", "namespace": NAMESPACE},
                "spec": {
                    "deletionPolicy": deletion_policy,
                    "tags": {"Team": "platform"},
                    "alarms": [{
                        "name": "errors",
                        "metric": {"namespace": "AWS/ELB", "name": "BackendConnectionErrors", "statistic": "Sum"},
                        "period": 60, "evaluationPeriods": 5, "threshold": 100,
                        "comparison": "GreaterThanThreshold"
                    }],
                    "eventRules": [{"name": "emr", "preset": "EmrClusterFailed"}]
                }
            }))
            .expect("manifest applies");
    }

    fn policy(&self) -> Option<AlarmPolicy> {
        self.cluster.object(NAMESPACE, "elb").expect("read")
    }

    async fn reconcile(&self) -> Result<Action, ReconcileError> {
        reconcile(Arc::new(self.policy().expect("exists")), &self.ctx).await
    }

    fn ready(&self) -> (String, String) {
        let status = self.policy().unwrap().status.expect("status");
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        (ready.status.clone(), ready.reason.clone())
    }

    fn delete(&self) {
        self.cluster
            .request_delete("alertops.dev/v1alpha1", "AlarmPolicy", NAMESPACE, "elb")
            .unwrap();
    }
}

fn alarm_name() -> String {
    OwnerIdentity::new("test", KIND, NAMESPACE, "elb").alarm_name("errors")
}

#[tokio::test]
async fn creates_everything_then_a_resync_writes_nothing_and_reads_no_tags() {
    let f = Fixture::new();
    f.apply("Delete");
    f.reconcile().await.unwrap();
    assert_eq!(f.ready(), ("True".into(), "Reconciled".into()));
    assert_eq!(f.aws.alarm_names(), vec![alarm_name()]);
    assert_eq!(f.aws.rule_names().len(), 1);
    assert_eq!(f.aws.topic_arns().len(), 1);
    let topic = &f.aws.topic_arns()[0];
    assert_eq!(f.aws.rule_targets_of(&f.aws.rule_names()[0])[0].arn, *topic);
    let owner = OwnerIdentity::new("test", KIND, NAMESPACE, "elb");
    assert!(owner.owns(&f.aws.topic_tags_of(topic).unwrap()));
    let status = f.policy().unwrap().status.unwrap();
    assert_eq!(
        status.alarms[0]
            .arn
            .as_deref()
            .map(|a| a.ends_with(&alarm_name())),
        Some(true)
    );
    assert_eq!(status.topic_owned, Some(true));
    assert!(
        f.policy()
            .unwrap()
            .metadata
            .finalizers
            .unwrap()
            .contains(&FINALIZER_NAME.to_string())
    );

    f.aws.clear_calls();
    f.reconcile().await.unwrap();
    assert!(f.aws.writes().is_empty(), "{:?}", f.aws.calls());
    assert_eq!(
        f.aws.calls(),
        vec![
            "GetTopicAttributes",
            "ListTagsForResource",
            "DescribeAlarms",
            "ListRules",
            "ListTargetsByRule"
        ],
        "the topic's tags, one page of alarms, one of rules, the rule's target: no alarm tags"
    );
}

const FINALIZER_NAME: &str = crate::reconcile::FINALIZER;

#[tokio::test]
async fn drift_made_behind_the_controllers_back_is_repaired() {
    let f = Fixture::new();
    f.apply("Delete");
    f.reconcile().await.unwrap();
    let (mut definition, tags) = f.aws.alarm(&alarm_name()).unwrap();
    definition.threshold = 1.0;
    f.aws.insert_alarm(definition, tags);
    f.aws.clear_calls();
    f.reconcile().await.unwrap();
    assert_eq!(f.aws.writes(), vec!["PutMetricAlarm"]);
    assert_eq!(f.aws.alarm(&alarm_name()).unwrap().0.threshold, 100.0);
    let events = f.cluster.events();
    assert!(
        events
            .iter()
            .any(|e| e.reason == "AlarmUpdated"
                && e.note.as_deref().unwrap_or("").contains("threshold")),
        "{events:?}"
    );
}

#[tokio::test]
async fn retain_leaves_aws_alone_and_releases_the_finalizer() {
    let f = Fixture::new();
    f.apply("Retain");
    f.reconcile().await.unwrap();
    f.delete();
    f.aws.clear_calls();
    f.reconcile().await.unwrap();
    assert!(f.aws.calls().is_empty(), "{:?}", f.aws.calls());
    assert!(
        f.policy().is_none(),
        "the finalizer went, and the object with it"
    );
    assert_eq!(f.aws.alarm_names(), vec![alarm_name()]);
}

#[tokio::test]
async fn delete_removes_what_the_policy_owns() {
    let f = Fixture::new();
    f.apply("Delete");
    f.reconcile().await.unwrap();
    f.delete();
    f.reconcile().await.unwrap();
    assert!(f.policy().is_none());
    assert!(f.aws.alarm_names().is_empty());
    assert!(f.aws.rule_names().is_empty());
    assert!(f.aws.topic_arns().is_empty());
}

#[tokio::test]
async fn an_alarm_someone_else_owns_blocks_and_is_never_touched() {
    let f = Fixture::new();
    let foreign = crate::aws::cloudwatch::AlarmDefinition {
        alarm_name: alarm_name(),
        description: Some("hand-made".into()),
        actions_enabled: true,
        alarm_actions: Vec::new(),
        ok_actions: Vec::new(),
        insufficient_data_actions: Vec::new(),
        metric: crate::aws::cloudwatch::AlarmMetric::Math(Vec::new()),
        evaluation_periods: 1,
        datapoints_to_alarm: 1,
        threshold: 1.0,
        threshold_metric_id: None,
        comparison: "GreaterThanThreshold".into(),
        treat_missing_data: "missing".into(),
    };
    f.aws.insert_alarm(
        foreign.clone(),
        Tags::from([("Team".into(), "other".into())]),
    );
    f.apply("Delete");
    let action = f.reconcile().await.unwrap();
    assert_eq!(f.ready(), ("False".into(), "AlarmNotOwned".into()));
    assert_eq!(action, Action::requeue(lifecycle::BLOCKED_RECHECK));
    assert_eq!(f.aws.alarm(&alarm_name()).unwrap().0, foreign);
    assert!(
        f.cluster
            .events()
            .iter()
            .any(|e| e.reason == "AlarmNotOwned")
    );

    // Deleting the policy leaves it too.
    f.delete();
    f.reconcile().await.unwrap();
    assert_eq!(f.aws.alarm(&alarm_name()).unwrap().0, foreign);
}

#[tokio::test]
async fn an_aws_error_is_a_condition_keeps_the_record_and_is_returned_for_backoff() {
    let f = Fixture::new();
    f.apply("Delete");
    f.reconcile().await.unwrap();
    let recorded = f.policy().unwrap().status.unwrap();
    f.aws.fail("DescribeAlarms", AwsErrorKind::AccessDenied);
    let error = f.reconcile().await.unwrap_err();
    assert_eq!(error.category(), "access_denied");
    assert_eq!(f.ready(), ("False".into(), "AwsAccessDenied".into()));
    let status = f.policy().unwrap().status.unwrap();
    assert_eq!(status.alarms, recorded.alarms, "what was recorded is kept");
    assert_eq!(status.topic_arn, recorded.topic_arn);
}

#[tokio::test]
async fn an_invalid_spec_is_a_condition_and_calls_no_aws() {
    let f = Fixture::new();
    f.cluster
        .apply_manifest(json!({
            "apiVersion": "alertops.dev/v1alpha1",
            "kind": "AlarmPolicy",
            "metadata": {"name": "elb", "namespace": NAMESPACE},
            "spec": {"alarms": [{
                "name": "errors",
                "metric": {"namespace": "AWS/ELB", "name": "Errors", "statistic": "Sum"},
                "period": 60, "evaluationPeriods": 2, "datapointsToAlarm": 5, "threshold": 1,
                "comparison": "GreaterThanThreshold"
            }]}
        }))
        .unwrap();
    let action = f.reconcile().await.unwrap();
    assert_eq!(action, Action::await_change());
    assert_eq!(f.ready(), ("False".into(), "InvalidSpec".into()));
    assert!(f.aws.calls().is_empty());
}

#[tokio::test]
async fn an_opted_in_policy_adopts_a_hand_made_alarm_and_says_so() {
    let f = Fixture::new();
    let hand_made = crate::aws::cloudwatch::AlarmDefinition {
        alarm_name: alarm_name(),
        description: Some("made in the console".into()),
        actions_enabled: true,
        alarm_actions: Vec::new(),
        ok_actions: Vec::new(),
        insufficient_data_actions: Vec::new(),
        metric: crate::aws::cloudwatch::AlarmMetric::Math(Vec::new()),
        evaluation_periods: 1,
        datapoints_to_alarm: 1,
        threshold: 1.0,
        threshold_metric_id: None,
        comparison: "GreaterThanThreshold".into(),
        treat_missing_data: "missing".into(),
    };
    f.aws
        .insert_alarm(hand_made, Tags::from([("Team".into(), "legacy".into())]));
    f.apply("Delete");
    let mut policy = f.policy().unwrap();
    policy.metadata.annotations = Some(
        [(plan::ADOPT_ANNOTATION.to_string(), "true".to_string())]
            .into_iter()
            .collect(),
    );
    f.cluster
        .apply_manifest(serde_json::to_value(&policy).unwrap())
        .unwrap();
    f.reconcile().await.unwrap();
    assert_eq!(f.ready(), ("True".into(), "Reconciled".into()));
    let (definition, tags) = f.aws.alarm(&alarm_name()).unwrap();
    assert_eq!(
        definition.threshold,
        100.0,
        "the spec's definition now: {:?} {:?}",
        f.aws.calls(),
        f.policy().unwrap().metadata.annotations
    );
    let owner = OwnerIdentity::new("test", KIND, NAMESPACE, "elb");
    assert!(owner.owns(&tags), "{tags:?}");
    assert!(
        f.cluster
            .events()
            .iter()
            .any(|e| e.reason == "Adopted"
                && e.note.as_deref().unwrap_or("").contains(&alarm_name()))
    );
}

#[tokio::test]
async fn an_alarm_state_change_is_recorded_counted_and_told_without_touching_aws() {
    let f = Fixture::new();
    f.apply("Delete");
    f.reconcile().await.unwrap();
    let status = f.policy().unwrap().status.unwrap();
    assert_eq!(
        status.alarms[0].state,
        Some(crate::resources::alarm_policy::AlarmState::InsufficientData),
        "a created alarm's first state comes from the listing that finds its ARN"
    );
    assert_eq!(status.firing, 0);

    // A resync with nothing changed leaves the stored object alone: the state's time survives
    // its round trip through the status.
    f.aws.clear_calls();
    f.reconcile().await.unwrap();
    let no_op_calls = f.aws.calls();
    let revision = f.cluster.revision();
    f.reconcile().await.unwrap();
    assert_eq!(f.cluster.revision(), revision, "nothing was written");

    let since = chrono::DateTime::from_timestamp(1_764_000_000, 0).unwrap();
    f.aws.set_alarm_state(
        &alarm_name(),
        "ALARM",
        "Threshold Crossed: 3 datapoints were greater than the threshold (100.0)",
        since,
    );
    f.aws.clear_calls();
    f.reconcile().await.unwrap();
    assert!(f.aws.writes().is_empty(), "{:?}", f.aws.calls());
    assert_eq!(f.aws.calls(), no_op_calls, "no read besides the usual ones");
    let status = f.policy().unwrap().status.unwrap();
    assert_eq!(status.firing, 1);
    let alarm = &status.alarms[0];
    assert_eq!(
        alarm.state,
        Some(crate::resources::alarm_policy::AlarmState::Alarm)
    );
    assert!(
        alarm
            .state_reason
            .as_deref()
            .unwrap()
            .starts_with("Threshold Crossed")
    );
    assert_eq!(
        alarm.state_changed_at.as_ref().map(|t| t.0.as_second()),
        Some(since.timestamp())
    );
    let events: Vec<_> = f
        .cluster
        .events()
        .into_iter()
        .filter(|e| e.reason == "AlarmStateChanged")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].type_, crate::k8s::EventType::Warning);
    let note = events[0].note.as_deref().unwrap();
    assert!(
        note.contains("is ALARM (was INSUFFICIENT_DATA): Threshold Crossed"),
        "{note}"
    );

    // Back to OK: one more Event, nothing firing.
    f.aws
        .set_alarm_state(&alarm_name(), "OK", "Threshold no longer crossed", since);
    f.reconcile().await.unwrap();
    assert_eq!(f.policy().unwrap().status.unwrap().firing, 0);
    let resolved = f
        .cluster
        .events()
        .into_iter()
        .filter(|e| e.reason == "AlarmStateChanged")
        .count();
    assert_eq!(resolved, 2);
}

impl Fixture {
    /// The fixture's policy with a second alarm and a composite over both (or `composite`).
    fn apply_with_composite(&self, deletion_policy: &str, composite: Option<serde_json::Value>) {
        let alarm = |name: &str, metric: &str| {
            json!({
                "name": name,
                "metric": {"namespace": "AWS/ELB", "name": metric, "statistic": "Sum"},
                "period": 60, "evaluationPeriods": 5, "threshold": 100,
                "comparison": "GreaterThanThreshold"
            })
        };
        let composites: Vec<serde_json::Value> = composite.into_iter().collect();
        self.cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1",
                "kind": "AlarmPolicy",
                "metadata": {"name": "elb", "namespace": NAMESPACE},
                "spec": {
                    "deletionPolicy": deletion_policy,
                    "tags": {"Team": "platform"},
                    "alarms": [alarm("errors", "BackendConnectionErrors"), alarm("surge", "SpilloverCount")],
                    "compositeAlarms": composites,
                }
            }))
            .expect("manifest applies");
    }
}

fn both_firing() -> serde_json::Value {
    json!({"name": "broker-down", "severity": "Critical", "rule": "ALARM(errors) AND ALARM(surge)"})
}

fn composite_name() -> String {
    OwnerIdentity::new("test", KIND, NAMESPACE, "elb").alarm_name("broker-down")
}

#[tokio::test]
async fn a_composite_is_created_over_the_policys_own_alarms_and_resyncs_without_calls_of_its_own() {
    let f = Fixture::new();
    f.apply_with_composite("Delete", Some(both_firing()));
    f.reconcile().await.unwrap();
    assert_eq!(f.ready(), ("True".into(), "Reconciled".into()));
    let (composite, tags) = f.aws.composite(&composite_name()).expect("created");
    let owner = OwnerIdentity::new("test", KIND, NAMESPACE, "elb");
    assert_eq!(
        composite.rule,
        format!(
            "ALARM(\"{}\") AND ALARM(\"{}\")",
            owner.alarm_name("errors"),
            owner.alarm_name("surge")
        )
    );
    assert!(owner.owns(&tags));
    assert_eq!(tags.get("Severity").map(String::as_str), Some("Critical"));
    assert_eq!(composite.alarm_actions, f.aws.topic_arns());
    let calls = f.aws.calls();
    let put_alarm = calls.iter().rposition(|c| c == "PutMetricAlarm").unwrap();
    let put_composite = calls.iter().position(|c| c == "PutCompositeAlarm").unwrap();
    assert!(put_alarm < put_composite, "alarms first: {calls:?}");
    let status = f.policy().unwrap().status.unwrap();
    assert_eq!(status.composite_alarms.len(), 1);
    assert!(
        status.composite_alarms[0]
            .arn
            .as_deref()
            .is_some_and(|a| a.ends_with(&composite_name()))
    );

    f.aws.clear_calls();
    f.reconcile().await.unwrap();
    assert!(f.aws.writes().is_empty(), "{:?}", f.aws.calls());
    assert_eq!(
        f.aws
            .calls()
            .iter()
            .filter(|c| *c == "DescribeAlarms")
            .count(),
        1,
        "composites come in the alarms' pages: {:?}",
        f.aws.calls()
    );
    assert_eq!(
        f.aws
            .calls()
            .iter()
            .filter(|c| *c == "ListTagsForResource")
            .count(),
        1,
        "only the topic's tags, none of the verified composite: {:?}",
        f.aws.calls()
    );

    // Firing composites count and are told like alarms.
    let since = chrono::DateTime::from_timestamp(1_764_000_000, 0).unwrap();
    f.aws
        .set_alarm_state(&composite_name(), "ALARM", "both children in ALARM", since);
    f.reconcile().await.unwrap();
    let status = f.policy().unwrap().status.unwrap();
    assert_eq!(status.firing, 1);
    assert!(
        f.cluster
            .events()
            .iter()
            .any(|e| e.reason == "AlarmStateChanged"
                && e.note.as_deref().unwrap_or("").contains("broker-down"))
    );
}

#[tokio::test]
async fn a_dropped_composite_is_deleted_and_a_deleted_policy_removes_composites_before_alarms() {
    let f = Fixture::new();
    f.apply_with_composite("Delete", Some(both_firing()));
    f.reconcile().await.unwrap();
    f.apply_with_composite("Delete", None);
    f.reconcile().await.unwrap();
    assert!(f.aws.composite(&composite_name()).is_none());
    assert!(
        f.policy()
            .unwrap()
            .status
            .unwrap()
            .composite_alarms
            .is_empty()
    );
    assert!(f.cluster.events().iter().any(
        |e| e.reason == "AlarmDeleted" && e.note.as_deref().unwrap_or("").contains("composite")
    ));

    f.apply_with_composite("Delete", Some(both_firing()));
    f.reconcile().await.unwrap();
    f.delete();
    f.aws.clear_calls();
    f.reconcile().await.unwrap();
    assert!(f.aws.composite(&composite_name()).is_none());
    assert!(f.aws.alarm_names().is_empty());
    let deletes: Vec<String> = f
        .aws
        .calls()
        .into_iter()
        .filter(|c| c == "DeleteAlarms")
        .collect();
    assert_eq!(deletes.len(), 2, "composites in their own call, first");
}

#[tokio::test]
async fn retain_keeps_composites() {
    let f = Fixture::new();
    f.apply_with_composite("Retain", Some(both_firing()));
    f.reconcile().await.unwrap();
    f.delete();
    f.reconcile().await.unwrap();
    assert!(f.policy().is_none());
    assert!(f.aws.composite(&composite_name()).is_some());
}

#[tokio::test]
async fn a_composite_someone_else_made_under_our_name_blocks_and_is_never_touched() {
    let f = Fixture::new();
    let foreign = crate::aws::cloudwatch::CompositeDefinition {
        alarm_name: composite_name(),
        description: Some("hand-made".into()),
        actions_enabled: true,
        alarm_actions: Vec::new(),
        ok_actions: Vec::new(),
        insufficient_data_actions: Vec::new(),
        rule: "TRUE".into(),
    };
    f.aws.insert_composite(
        foreign.clone(),
        Tags::from([("Team".into(), "other".into())]),
    );
    f.apply_with_composite("Delete", Some(both_firing()));
    f.reconcile().await.unwrap();
    assert_eq!(f.ready(), ("False".into(), "AlarmNotOwned".into()));
    assert_eq!(f.aws.composite(&composite_name()).unwrap().0, foreign);
    f.delete();
    f.reconcile().await.unwrap();
    assert_eq!(f.aws.composite(&composite_name()).unwrap().0, foreign);
}

#[tokio::test]
async fn a_composite_naming_an_alarm_outside_the_policy_is_an_invalid_spec() {
    let f = Fixture::new();
    f.apply_with_composite(
        "Delete",
        Some(json!({"name": "mixed", "rule": "ALARM(errors) OR ALARM(\"someone-elses-alarm\")"})),
    );
    let action = f.reconcile().await.unwrap();
    assert_eq!(action, Action::await_change());
    let status = f.policy().unwrap().status.unwrap();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(
        ready.message.contains("spec.compositeAlarms[0].rule")
            && ready.message.contains("someone-elses-alarm"),
        "{}",
        ready.message
    );
    assert!(f.aws.calls().is_empty());
}

mod log_alarms {
    //! Log alarms over the in-memory AWS: the metric filter (owned by its name prefix, no tags)
    //! and the ordinary alarm on the metric it publishes.

    use super::*;
    use crate::aws::log_filters::MetricFilterDefinition;
    use crate::resources::alarm_policy::MetricFilterStatus;

    const GROUP: &str = "/aws/lambda/checkout";
    const CHECKOUT: &str = r#"{ $.level = "ERROR" && $.service = "checkout" }"#;

    fn apply(f: &Fixture, deletion_policy: &str, group: &str, pattern: &str) {
        f.cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1",
                "kind": "AlarmPolicy",
                "metadata": {"name": "elb", "namespace": NAMESPACE},
                "spec": {
                    "deletionPolicy": deletion_policy,
                    "logAlarms": [{
                        "name": "checkout-errors",
                        "logs": {
                            "logGroup": group,
                            "filterPattern": pattern,
                            "metric": {"namespace": "ServerlessApi/Logs", "name": "CheckoutErrors", "unit": "Count"}
                        },
                        "period": 60, "evaluationPeriods": 5, "threshold": 10,
                        "comparison": "GreaterThanThreshold", "treatMissingData": "notBreaching"
                    }]
                }
            }))
            .expect("manifest applies");
    }

    fn filter_name() -> String {
        OwnerIdentity::new("test", KIND, NAMESPACE, "elb").metric_filter_name("checkout-errors")
    }

    fn foreign_filter() -> MetricFilterDefinition {
        MetricFilterDefinition {
            filter_name: "team-b-errors".into(),
            log_group: GROUP.into(),
            pattern: "ERROR".into(),
            metric_namespace: "TeamB".into(),
            metric_name: "Errors".into(),
            metric_value: "1".into(),
            default_value: None,
            dimensions: Default::default(),
            unit: None,
        }
    }

    #[tokio::test]
    async fn creates_the_filter_and_its_alarm_then_a_resync_writes_nothing() {
        let f = Fixture::new();
        f.aws.create_log_group(GROUP);
        apply(&f, "Delete", GROUP, CHECKOUT);
        f.reconcile().await.unwrap();
        assert_eq!(f.ready(), ("True".into(), "Reconciled".into()));
        let filters = f.aws.metric_filters_of(GROUP);
        let filter = &filters[&filter_name()];
        assert_eq!(filter.pattern, CHECKOUT);
        assert_eq!(
            (
                filter.metric_namespace.as_str(),
                filter.metric_name.as_str(),
                filter.metric_value.as_str(),
                filter.unit.as_deref()
            ),
            ("ServerlessApi/Logs", "CheckoutErrors", "1", Some("Count"))
        );
        let alarm =
            OwnerIdentity::new("test", KIND, NAMESPACE, "elb").alarm_name("checkout-errors");
        assert_eq!(f.aws.alarm_names(), vec![alarm]);
        let status = f.policy().unwrap().status.unwrap();
        assert_eq!(
            status.metric_filters,
            vec![MetricFilterStatus {
                name: "checkout-errors".into(),
                filter_name: filter_name(),
                log_group: GROUP.into(),
            }]
        );
        assert_eq!(status.alarm_count, 1);

        f.aws.clear_calls();
        f.reconcile().await.unwrap();
        assert!(f.aws.writes().is_empty(), "{:?}", f.aws.writes());
        assert_eq!(
            f.aws
                .calls()
                .iter()
                .filter(|c| *c == "DescribeMetricFilters")
                .count(),
            1,
            "one listing per log group"
        );
    }

    #[tokio::test]
    async fn a_changed_pattern_is_one_put_and_a_dropped_log_alarm_deletes_only_our_filter() {
        let f = Fixture::new();
        f.aws.insert_metric_filter(foreign_filter());
        apply(&f, "Delete", GROUP, CHECKOUT);
        f.reconcile().await.unwrap();
        apply(&f, "Delete", GROUP, "ERROR -healthcheck");
        f.aws.clear_calls();
        f.reconcile().await.unwrap();
        assert_eq!(f.aws.writes(), vec!["PutMetricFilter"]);
        assert_eq!(
            f.aws.metric_filters_of(GROUP)[&filter_name()].pattern,
            "ERROR -healthcheck"
        );

        f.cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1",
                "kind": "AlarmPolicy",
                "metadata": {"name": "elb", "namespace": NAMESPACE},
                "spec": {"alarms": [{
                    "name": "errors",
                    "metric": {"namespace": "AWS/ELB", "name": "BackendConnectionErrors", "statistic": "Sum"},
                    "period": 60, "evaluationPeriods": 5, "threshold": 100,
                    "comparison": "GreaterThanThreshold"
                }]}
            }))
            .unwrap();
        f.reconcile().await.unwrap();
        let left: Vec<String> = f.aws.metric_filters_of(GROUP).into_keys().collect();
        assert_eq!(left, vec!["team-b-errors".to_string()]);
        assert!(
            f.policy()
                .unwrap()
                .status
                .unwrap()
                .metric_filters
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_missing_log_group_is_a_condition_naming_it_not_an_error() {
        let f = Fixture::new();
        apply(&f, "Delete", GROUP, CHECKOUT);
        f.reconcile().await.expect("no error, no backoff loop");
        let status = f.policy().unwrap().status.unwrap();
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "LogGroupNotFound")
        );
        assert!(ready.message.contains(GROUP), "{}", ready.message);
        assert!(!f.aws.writes().contains(&"PutMetricFilter".to_string()));

        f.aws.create_log_group(GROUP);
        f.reconcile().await.unwrap();
        assert_eq!(f.ready(), ("True".into(), "Reconciled".into()));
        assert!(f.aws.metric_filters_of(GROUP).contains_key(&filter_name()));
    }

    #[tokio::test]
    async fn an_unparsable_pattern_is_refused_before_aws() {
        let f = Fixture::new();
        f.aws.create_log_group(GROUP);
        apply(&f, "Delete", GROUP, r#"{ $.level = "ERROR" "#);
        f.reconcile().await.unwrap();
        let status = f.policy().unwrap().status.unwrap();
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.reason, "InvalidSpec");
        assert!(
            ready
                .message
                .contains("spec.logAlarms[0].logs.filterPattern")
                && ready.message.contains("column"),
            "{}",
            ready.message
        );
        assert!(f.aws.writes().is_empty(), "{:?}", f.aws.writes());
    }

    #[tokio::test]
    async fn delete_removes_our_filter_and_retain_keeps_it() {
        for (policy, kept) in [("Delete", false), ("Retain", true)] {
            let f = Fixture::new();
            f.aws.insert_metric_filter(foreign_filter());
            apply(&f, policy, GROUP, CHECKOUT);
            f.reconcile().await.unwrap();
            f.delete();
            f.reconcile().await.unwrap();
            assert!(f.policy().is_none());
            let filters = f.aws.metric_filters_of(GROUP);
            assert_eq!(filters.contains_key(&filter_name()), kept, "{policy}");
            assert!(
                filters.contains_key("team-b-errors"),
                "{policy}: never touched"
            );
        }
    }

    #[tokio::test]
    async fn a_log_alarm_moved_to_another_group_leaves_nothing_behind() {
        let f = Fixture::new();
        f.aws.create_log_group(GROUP);
        f.aws.create_log_group("/aws/lambda/payments");
        apply(&f, "Delete", GROUP, CHECKOUT);
        f.reconcile().await.unwrap();
        apply(&f, "Delete", "/aws/lambda/payments", CHECKOUT);
        f.reconcile().await.unwrap();
        assert!(f.aws.metric_filters_of(GROUP).is_empty());
        assert!(
            f.aws
                .metric_filters_of("/aws/lambda/payments")
                .contains_key(&filter_name())
        );
    }
}
