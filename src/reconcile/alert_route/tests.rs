//! The AlertRoute reconciler over the in-memory cluster and the in-memory AWS: queues,
//! subscriptions, the consumer and the conditions. The same behaviours run against the emulator
//! in `tests/integration/alert_route.rs`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::aws::fake::FakeAws;
use crate::k8s::MemoryCluster;
use crate::names::TAG_OWNER;
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
        Fixture::with_settings(OperatorSettings::new("test"))
    }

    fn with_settings(settings: OperatorSettings) -> Fixture {
        let cluster = MemoryCluster::new();
        let aws = FakeAws::new();
        let ctx = Context::new(cluster.clone(), aws.clone(), settings);
        Fixture { cluster, aws, ctx }
    }

    fn apply(&self, sources: Value) {
        self.cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1",
                "kind": "AlertRoute",
                "metadata": {"name": "oncall", "namespace": NAMESPACE},
                "spec": {
                    "sources": sources,
                    "email": {"from": "alerts@example.com", "to": ["oncall@example.com"]},
                },
            }))
            .expect("manifest applies");
    }

    fn route(&self) -> AlertRoute {
        self.cluster.object(NAMESPACE, "oncall").unwrap().unwrap()
    }

    async fn reconcile(&self) -> Action {
        reconcile(Arc::new(self.route()), &self.ctx).await.unwrap()
    }

    fn condition(&self, type_: &str) -> (String, String) {
        let (status, reason, _) = self.condition_with_message(type_);
        (status, reason)
    }

    fn condition_with_message(&self, type_: &str) -> (String, String, String) {
        let status = self.route().status.expect("status");
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap_or_else(|| panic!("no {type_}"));
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    fn queue_arn(&self) -> String {
        self.route().status.unwrap().queue_arn.unwrap()
    }
}

fn topic_tags() -> Tags {
    Tags::from([(TAG_OWNER.into(), "someone".into())])
}

#[tokio::test]
async fn queues_subscriptions_and_the_consumer_then_a_resync_writes_nothing() {
    let f = Fixture::new();
    let topic = f.aws.insert_topic("alerts", topic_tags());
    f.apply(json!([{"topicArn": topic}]));
    f.reconcile().await;
    let owner = OwnerIdentity::new("test", KIND, NAMESPACE, "oncall");
    let mut expected = vec![owner.queue_name(""), owner.queue_name("-dlq")];
    expected.sort();
    assert_eq!(
        f.aws.queue_names(),
        expected,
        "both queues, under the route's names"
    );
    let queue_name = f.queue_arn().rsplit(':').next().unwrap().to_string();
    let attributes = f.aws.queue_attributes_of(&queue_name).unwrap();
    assert!(
        attributes["Policy"].contains(&topic),
        "the policy admits the source"
    );
    assert!(attributes["RedrivePolicy"].contains("-dlq"));
    let subscriptions = f.aws.subscriptions();
    assert_eq!(subscriptions.len(), 1);
    assert_eq!(subscriptions[0].endpoint, f.queue_arn());
    assert!(
        f.cluster
            .object::<k8s_openapi::api::apps::v1::Deployment>(NAMESPACE, "oncall-consumer")
            .unwrap()
            .is_some()
    );
    assert_eq!(
        f.condition("SourcesReady"),
        ("True".into(), "AllSourcesSubscribed".into())
    );
    assert_eq!(
        f.condition("Ready"),
        ("False".into(), "ConsumerNotReady".into())
    );

    f.aws.clear_calls();
    f.reconcile().await;
    assert!(f.aws.writes().is_empty(), "{:?}", f.aws.calls());
}

#[tokio::test]
async fn a_missing_source_topic_waits_with_backoff_and_is_not_admitted() {
    let f = Fixture::new();
    let present = f.aws.insert_topic("present", topic_tags());
    let missing = "arn:aws:sns:us-east-1:123456789012:missing";
    f.apply(json!([{"topicArn": present}, {"topicArn": missing}]));
    let action = f.reconcile().await;
    assert_eq!(
        f.condition("Ready"),
        ("False".into(), REASON_SOURCE_NOT_READY.into())
    );
    assert_eq!(
        action,
        Action::requeue(std::time::Duration::from_secs(5)),
        "backoff"
    );
    let queue_name = f.queue_arn().rsplit(':').next().unwrap().to_string();
    let policy = &f.aws.queue_attributes_of(&queue_name).unwrap()["Policy"];
    assert!(policy.contains(&present) && !policy.contains(missing));
}

#[tokio::test]
async fn a_dropped_source_is_unsubscribed() {
    let f = Fixture::new();
    let a = f.aws.insert_topic("a", topic_tags());
    let b = f.aws.insert_topic("b", topic_tags());
    f.apply(json!([{"topicArn": a}, {"topicArn": b}]));
    f.reconcile().await;
    assert_eq!(f.aws.subscriptions().len(), 2);
    f.apply(json!([{"topicArn": a}]));
    f.reconcile().await;
    let left: Vec<String> = f
        .aws
        .subscriptions()
        .into_iter()
        .map(|s| s.topic_arn)
        .collect();
    assert_eq!(left, vec![a]);
    assert!(
        f.cluster
            .events()
            .iter()
            .any(|e| e.reason == "Unsubscribed")
    );
}

#[tokio::test]
async fn deletion_removes_the_queues_and_every_subscription_to_them() {
    let f = Fixture::new();
    let topic = f.aws.insert_topic("alerts", topic_tags());
    f.apply(json!([{"topicArn": topic}]));
    f.reconcile().await;
    // A subscription the status does not know (a lost status) is found by its endpoint.
    f.aws.insert_subscription(&topic, "sqs", &f.queue_arn());
    f.cluster
        .request_delete("alertops.dev/v1alpha1", "AlertRoute", NAMESPACE, "oncall")
        .unwrap();
    f.reconcile().await;
    assert!(f.aws.queue_names().is_empty());
    assert!(f.aws.subscriptions().is_empty());
    assert!(
        f.cluster
            .object::<AlertRoute>(NAMESPACE, "oncall")
            .unwrap()
            .is_none()
    );
}

/// `status.subscriptions` is writable by whoever can write the status: a recorded subscription
/// is removed only once AWS confirms its endpoint is this route's own queue.
#[tokio::test]
async fn a_recorded_subscription_to_someone_elses_queue_is_never_removed() {
    let f = Fixture::new();
    let ours = f.aws.insert_topic("ours", topic_tags());
    let theirs = f.aws.insert_topic("theirs", topic_tags());
    f.apply(json!([{"topicArn": ours}]));
    f.reconcile().await;
    let foreign = f.aws.insert_subscription(
        &theirs,
        "sqs",
        "arn:aws:sqs:us-east-1:123456789012:another-teams-queue",
    );
    // Someone records the other team's subscription in this route's status.
    let route = f.route();
    let mut status = route.status.clone().unwrap();
    status
        .subscriptions
        .push(crate::resources::SubscriptionStatus {
            topic_arn: theirs.clone(),
            subscription_arn: foreign.clone(),
        });
    f.cluster
        .patch_status(&route, serde_json::to_value(&status).unwrap())
        .await
        .unwrap();

    f.reconcile().await;
    assert!(
        f.aws
            .subscriptions()
            .iter()
            .any(|s| s.arn.as_deref() == Some(&foreign)),
        "another queue's subscription survives a resync"
    );
    assert!(
        f.cluster
            .events()
            .iter()
            .any(|e| e.reason == "SubscriptionNotOwned"),
        "and the refusal is visible: {:?}",
        f.cluster.events()
    );

    f.cluster
        .request_delete("alertops.dev/v1alpha1", "AlertRoute", NAMESPACE, "oncall")
        .unwrap();
    f.reconcile().await;
    assert!(
        f.aws
            .subscriptions()
            .iter()
            .any(|s| s.arn.as_deref() == Some(&foreign)),
        "and the route's deletion"
    );
}

#[tokio::test]
async fn a_topic_source_off_the_allow_list_is_refused_and_nothing_is_made() {
    let mut f = Fixture::new();
    f.ctx.settings.allowed_source_topics =
        Some(vec!["arn:aws:sns:us-east-1:123456789012:shared-*".into()]);
    let shared = f.aws.insert_topic("shared-alerts", topic_tags());
    let private = f.aws.insert_topic("another-teams-alerts", topic_tags());
    f.apply(json!([{"topicArn": shared}, {"topicArn": private}]));
    f.aws.clear_calls();
    let action = f.reconcile().await;
    assert_eq!(action, Action::await_change());
    let (status, reason) = f.condition("Ready");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "SourceNotAllowed")
    );
    assert!(f.aws.calls().is_empty(), "{:?}", f.aws.calls());
    assert!(f.aws.queue_names().is_empty());

    f.apply(json!([{"topicArn": shared}]));
    f.reconcile().await;
    assert_eq!(
        f.aws.subscriptions().len(),
        1,
        "an allowed topic is subscribed"
    );
}

#[tokio::test]
async fn a_route_outside_the_allowed_namespaces_creates_nothing() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Secret, ServiceAccount};

    for allowed in [vec!["team-b"], vec![]] {
        let mut settings = OperatorSettings::new("test");
        settings.allowed_namespaces = Some(allowed.iter().map(|n| n.to_string()).collect());
        let f = Fixture::with_settings(settings);
        let topic = f.aws.insert_topic("alerts", topic_tags());
        f.aws.clear_calls();
        f.apply(json!([{"topicArn": topic}]));
        f.reconcile().await;

        let (status, reason, message) = f.condition_with_message("Ready");
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "NamespaceNotAllowed"),
            "allowed {allowed:?}"
        );
        assert!(
            message.contains(NAMESPACE) && message.contains("workloads.namespaces"),
            "{message}"
        );
        assert!(f.aws.calls().is_empty(), "{:?}", f.aws.calls());
        assert!(f.cluster.list_all::<Deployment>().unwrap().is_empty());
        assert!(f.cluster.list_all::<ServiceAccount>().unwrap().is_empty());
        assert!(f.cluster.list_all::<Secret>().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_route_in_an_allowed_namespace_is_reconciled() {
    let mut settings = OperatorSettings::new("test");
    settings.allowed_namespaces = Some([NAMESPACE.to_string()].into());
    let f = Fixture::with_settings(settings);
    let topic = f.aws.insert_topic("alerts", topic_tags());
    f.apply(json!([{"topicArn": topic}]));
    f.reconcile().await;
    assert_eq!(f.aws.subscriptions().len(), 1);
    assert_eq!(
        f.condition("Ready"),
        ("False".into(), "ConsumerNotReady".into())
    );
}

const MASTER_LOCATION: &str = "alertops-system/alertops-action-key/key";
const MASTER: &str = "master-key-that-is-long-enough-0123456789";

fn with_master_key_setting() -> Fixture {
    let mut settings = OperatorSettings::new("test");
    settings.action_key_secret = Some(MASTER_LOCATION.into());
    Fixture::with_settings(settings)
}

#[tokio::test]
async fn the_consumer_gets_its_routes_derived_key_never_the_master() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Secret;

    let f = with_master_key_setting();
    f.cluster
        .apply_manifest(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "alertops-action-key", "namespace": "alertops-system"},
            "stringData": {"key": MASTER},
        }))
        .unwrap();
    let topic = f.aws.insert_topic("alerts", topic_tags());
    f.apply(json!([{"topicArn": topic}]));
    f.reconcile().await;

    let route = crate::slack::RouteRef {
        namespace: NAMESPACE.into(),
        name: "oncall".into(),
    };
    let expected = crate::slack::route_key_text(MASTER.as_bytes(), &route).unwrap();
    let secret: Secret = f
        .cluster
        .object(NAMESPACE, &crate::names::action_key_name("oncall"))
        .unwrap()
        .expect("the route's key Secret");
    let stored = secret.data.unwrap()["key"].0.clone();
    assert_eq!(String::from_utf8(stored).unwrap(), expected);
    assert_ne!(expected, MASTER);
    let owner = &secret.metadata.owner_references.unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), (KIND, "oncall"));

    let deployment: Deployment = f
        .cluster
        .object(NAMESPACE, "oncall-consumer")
        .unwrap()
        .unwrap();
    let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
    let env = container.env.clone().unwrap_or_default();
    assert!(env.iter().all(|e| e.name != "ALERTOPS_ACTION_KEY_SECRET"));
    assert!(
        env.iter()
            .all(|e| e.value.as_deref().is_none_or(|v| !v.contains(MASTER))),
        "no key in the pod spec"
    );
    let key_ref = env
        .iter()
        .find(|e| e.name == "ALERTOPS_ACTION_TOKEN_KEY")
        .and_then(|e| e.value_from.clone())
        .and_then(|v| v.secret_key_ref)
        .expect("the key from the route's Secret");
    assert_eq!(key_ref.name, crate::names::action_key_name("oncall"));
    assert_eq!(key_ref.key, "key");
}

#[tokio::test]
async fn a_missing_master_key_is_reported_and_no_consumer_runs_without_its_key() {
    use k8s_openapi::api::apps::v1::Deployment;

    let f = with_master_key_setting();
    let topic = f.aws.insert_topic("alerts", topic_tags());
    f.apply(json!([{"topicArn": topic}]));
    let result = reconcile(Arc::new(f.route()), &f.ctx).await;
    assert!(
        matches!(result, Err(ReconcileError::ActionKey { .. })),
        "{result:?}"
    );
    let (status, _, message) = f.condition_with_message("Ready");
    assert_eq!(status, "False");
    assert!(message.contains(MASTER_LOCATION), "{message}");
    assert!(f.cluster.list_all::<Deployment>().unwrap().is_empty());
}

#[tokio::test]
async fn dead_letters_show_as_a_condition_and_one_event_per_new_count() {
    let f = Fixture::new();
    let topic = f.aws.insert_topic("alerts", topic_tags());
    f.apply(json!([{"topicArn": topic}]));
    f.reconcile().await;
    assert_eq!(f.condition("DeadLetters"), ("False".into(), "Empty".into()));
    let owner = OwnerIdentity::new("test", KIND, NAMESPACE, "oncall");
    let dead_letter = owner.queue_name("-dlq");
    let dead_letter_events = |f: &Fixture| {
        f.cluster
            .events()
            .into_iter()
            .filter(|e| e.reason == REASON_MESSAGES_DEAD_LETTERED)
            .map(|e| e.note.unwrap_or_default())
            .collect::<Vec<_>>()
    };

    f.aws.set_waiting_messages(&dead_letter, 3);
    f.aws.clear_calls();
    f.reconcile().await;
    let reads = f
        .aws
        .calls()
        .iter()
        .filter(|c| c.as_str() == "GetQueueAttributes")
        .count();
    assert_eq!(
        reads,
        2,
        "one read per queue, as before: {:?}",
        f.aws.calls()
    );
    let (status, reason, message) = f.condition_with_message("DeadLetters");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "MessagesDeadLettered")
    );
    assert!(message.starts_with("3 messages wait"), "{message}");
    assert!(
        message.contains("alertops redrive --namespace team-a --route oncall"),
        "{message}"
    );
    assert_eq!(
        dead_letter_events(&f),
        vec!["3 messages wait in the route's dead-letter queue".to_string()]
    );

    f.reconcile().await;
    assert_eq!(
        dead_letter_events(&f).len(),
        1,
        "the same count is not told again"
    );
    f.aws.set_waiting_messages(&dead_letter, 5);
    f.reconcile().await;
    assert_eq!(dead_letter_events(&f).len(), 2, "a new count is");

    f.aws.set_waiting_messages(&dead_letter, 0);
    f.reconcile().await;
    assert_eq!(f.condition("DeadLetters"), ("False".into(), "Empty".into()));
}

#[test]
fn the_queue_keeps_messages_longer_than_the_outage_tolerance() {
    let mut spec: AlertRouteSpec = serde_json::from_value(json!({
        "sources": [{"topicArn": "arn:aws:sns:us-east-1:123456789012:t"}],
        "email": {"from": "a@example.com", "to": ["b@example.com"]},
        "queue": {"retentionSeconds": 600},
    }))
    .unwrap();
    let two_hours = std::time::Duration::from_secs(7200);
    assert_eq!(
        queue_config(&spec, two_hours).retention_seconds,
        7200 + 3600
    );
    spec.queue.retention_seconds = 345_600;
    assert_eq!(
        queue_config(&spec, two_hours).retention_seconds,
        345_600,
        "a longer retention stays"
    );
}
