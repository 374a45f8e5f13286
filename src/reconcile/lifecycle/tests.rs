//! The deletion path of the skeleton for all three kinds, over the in-memory cluster and AWS: a
//! cleanup that AWS refuses leaves the object with a condition and an Event naming the missing
//! permission and the way out, and `deletionPolicy: Retain` then lets the deletion finish.

use serde_json::{Value, json};

use super::{Reconciled, reconcile};
use crate::aws::AwsErrorKind;
use crate::aws::fake::FakeAws;
use crate::k8s::{EventType, MemoryCluster, NamespacedResource};
use crate::reconcile::{Context, OperatorSettings};
use crate::resources::{AlarmPolicy, AlertRoute, CONDITION_READY, DigestSchedule};

const NAMESPACE: &str = "team-a";

struct Fixture {
    cluster: MemoryCluster,
    aws: FakeAws,
    ctx: Context<MemoryCluster>,
}

fn fixture() -> Fixture {
    let cluster = MemoryCluster::new();
    let aws = FakeAws::new();
    let ctx = Context::new(cluster.clone(), aws.clone(), OperatorSettings::new("test"));
    Fixture { cluster, aws, ctx }
}

fn manifest(kind: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "alertops.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "subject", "namespace": NAMESPACE},
        "spec": spec,
    })
}

fn alarm_policy_spec(deletion_policy: &str) -> Value {
    json!({
        "deletionPolicy": deletion_policy,
        "alarms": [{
            "name": "errors",
            "metric": {"namespace": "AWS/ELB", "name": "BackendConnectionErrors", "statistic": "Sum"},
            "period": 60, "evaluationPeriods": 5, "threshold": 100,
            "comparison": "GreaterThanThreshold"
        }]
    })
}

fn route_spec(topic: &str, deletion_policy: &str) -> Value {
    json!({
        "deletionPolicy": deletion_policy,
        "sources": [{"topicArn": topic}],
        "email": {"from": "alerts@example.com", "to": ["oncall@example.com"]},
    })
}

fn digest_spec(topic: &str, deletion_policy: &str) -> Value {
    json!({
        "deletionPolicy": deletion_policy,
        "schedule": "0 8 * * *",
        "timeZone": "UTC",
        "sources": [{"topicArn": topic}],
        "email": {"from": "alerts@example.com", "to": ["oncall@example.com"]},
    })
}

/// Creates the resource, denies `operation`, deletes the resource, and checks what the object
/// and its Events say; then switches to `Retain` and checks that the deletion finishes.
async fn denied_deletion_is_reported_then_retain_releases<K>(
    f: Fixture,
    kind: &str,
    spec: impl Fn(&str) -> Value,
    operation: &str,
    permission: &str,
) where
    K: NamespacedResource + Reconciled,
{
    let read = || -> K {
        f.cluster
            .object(NAMESPACE, "subject")
            .unwrap()
            .expect("object exists")
    };
    f.cluster
        .apply_manifest(manifest(kind, spec("Delete")))
        .unwrap();
    reconcile(std::sync::Arc::new(read()), &f.ctx)
        .await
        .expect("created");

    f.aws.fail(operation, AwsErrorKind::AccessDenied);
    f.cluster
        .request_delete("alertops.dev/v1alpha1", kind, NAMESPACE, "subject")
        .unwrap();
    let error = reconcile(std::sync::Arc::new(read()), &f.ctx)
        .await
        .expect_err("the cleanup is refused");
    assert_eq!(error.category(), "access_denied");

    let status = serde_json::to_value(read().current_status()).unwrap();
    let ready = status["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == CONDITION_READY)
        .expect("Ready")
        .clone();
    assert_eq!(ready["status"], "False", "{ready}");
    assert_eq!(ready["reason"], "DeletionAccessDenied", "{ready}");
    let message = ready["message"].as_str().unwrap();
    assert!(message.contains(permission), "{message}");
    assert!(message.contains("deletionPolicy: Retain"), "{message}");

    let events = f.cluster.events();
    let event = events
        .iter()
        .find(|e| e.reason == "DeletionAccessDenied")
        .unwrap_or_else(|| panic!("no DeletionAccessDenied Event in {events:?}"));
    let note = event.note.as_deref().unwrap_or_default();
    assert_eq!(event.type_, EventType::Warning, "{event:?}");
    assert!(note.contains(permission), "{note}");
    assert!(note.contains("deletionPolicy: Retain"), "{note}");

    // The way out the message names: Retain, and the deletion finishes without AWS.
    f.cluster
        .apply_manifest(manifest(kind, spec("Retain")))
        .unwrap();
    reconcile(std::sync::Arc::new(read()), &f.ctx)
        .await
        .expect("retained");
    assert!(
        f.cluster
            .object::<K>(NAMESPACE, "subject")
            .unwrap()
            .is_none(),
        "the finalizer went, and the object with it"
    );
}

#[tokio::test]
async fn a_denied_alarm_policy_deletion_names_the_permission_and_the_way_out() {
    denied_deletion_is_reported_then_retain_releases::<AlarmPolicy>(
        fixture(),
        "AlarmPolicy",
        alarm_policy_spec,
        "DeleteAlarms",
        "cloudwatch:DeleteAlarms",
    )
    .await;
}

#[tokio::test]
async fn a_denied_route_deletion_names_the_permission_and_the_way_out() {
    let f = fixture();
    let topic = f.aws.insert_topic("alerts", Default::default());
    denied_deletion_is_reported_then_retain_releases::<AlertRoute>(
        f,
        "AlertRoute",
        |policy| route_spec(&topic, policy),
        "DeleteQueue",
        "sqs:DeleteQueue",
    )
    .await;
}

#[tokio::test]
async fn a_denied_digest_deletion_names_the_permission_and_the_way_out() {
    let f = fixture();
    let topic = f.aws.insert_topic("alerts", Default::default());
    denied_deletion_is_reported_then_retain_releases::<DigestSchedule>(
        f,
        "DigestSchedule",
        |policy| digest_spec(&topic, policy),
        "Unsubscribe",
        "sns:Unsubscribe",
    )
    .await;
}

#[tokio::test]
async fn a_transient_failure_of_the_cleanup_is_on_the_object_too() {
    let f = fixture();
    f.cluster
        .apply_manifest(manifest("AlarmPolicy", alarm_policy_spec("Delete")))
        .unwrap();
    let read = || -> AlarmPolicy { f.cluster.object(NAMESPACE, "subject").unwrap().unwrap() };
    reconcile(std::sync::Arc::new(read()), &f.ctx)
        .await
        .unwrap();
    f.aws.fail("DeleteAlarms", AwsErrorKind::Throttled);
    f.cluster
        .request_delete("alertops.dev/v1alpha1", "AlarmPolicy", NAMESPACE, "subject")
        .unwrap();
    reconcile(std::sync::Arc::new(read()), &f.ctx)
        .await
        .expect_err("throttled");
    let ready = read()
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == CONDITION_READY)
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "DeletionFailed")
    );
    assert!(ready.message.contains("DeleteAlarms"), "{}", ready.message);
}
