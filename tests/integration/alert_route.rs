//! The AlertRoute reconciler against the AWS emulator, driven through the in-memory cluster:
//! queue, dead-letter queue, queue policy, subscriptions, delivery, the consumer workload,
//! no-op resync and deletion.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use alertops::aws::AwsClients;
use alertops::k8s::{ClusterApi, MemoryCluster};
use alertops::reconcile::{Context, OperatorSettings, alarm_policy, alert_route};
use alertops::resources::{AlarmPolicy, AlertRoute};
use aws_sdk_sqs::types::QueueAttributeName;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::{Value, json};

use crate::harness;

/// Image configured in the tests' operator settings.
pub(crate) const IMAGE: &str = "registry.example.com/alertops:test";

/// An in-memory cluster, AWS clients on the emulator, and a namespace of its own.
pub(crate) struct Fixture {
    pub(crate) cluster: MemoryCluster,
    pub(crate) ctx: Context<MemoryCluster>,
    pub(crate) aws: AwsClients,
    pub(crate) namespace: String,
}

impl Fixture {
    pub(crate) async fn new() -> Fixture {
        let cluster = MemoryCluster::new();
        let mut settings = OperatorSettings::new(harness::unique("c").to_lowercase());
        settings.workload_image = IMAGE.to_string();
        settings.service_account_annotations.insert(
            "eks.amazonaws.com/role-arn".into(),
            "arn:aws:iam::123456789012:role/alertops-workloads".into(),
        );
        let aws = harness::aws_clients().await;
        let ctx = Context::new(cluster.clone(), aws.clone(), settings);
        Fixture {
            cluster,
            ctx,
            aws,
            namespace: harness::unique("ns").to_lowercase(),
        }
    }

    pub(crate) fn aws(&self) -> &AwsClients {
        &self.aws
    }

    pub(crate) fn apply(&self, kind: &str, name: &str, spec: Value) {
        self.cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1",
                "kind": kind,
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": spec,
            }))
            .expect("manifest applies");
    }

    /// Applies an AlarmPolicy that only owns a topic, reconciles it, and returns the topic ARN.
    pub(crate) async fn alarm_policy_topic(&self, name: &str) -> String {
        self.apply("AlarmPolicy", name, json!({}));
        let policy = self
            .cluster
            .get::<AlarmPolicy>(&self.namespace, name)
            .await
            .unwrap()
            .unwrap();
        alarm_policy::reconcile(Arc::new(policy), &self.ctx)
            .await
            .expect("policy reconciles");
        self.cluster
            .get::<AlarmPolicy>(&self.namespace, name)
            .await
            .unwrap()
            .unwrap()
            .status
            .unwrap()
            .topic_arn
            .expect("the policy has a topic")
    }

    /// A topic made outside alertops, as an existing per-environment topic would be.
    pub(crate) async fn existing_topic(&self) -> String {
        self.aws()
            .sns
            .create_topic()
            .name(harness::unique("existing"))
            .send()
            .await
            .unwrap()
            .topic_arn()
            .unwrap()
            .to_string()
    }

    async fn route(&self, name: &str) -> Option<AlertRoute> {
        self.cluster
            .get::<AlertRoute>(&self.namespace, name)
            .await
            .unwrap()
    }

    async fn reconcile(&self, name: &str) -> AlertRoute {
        let route = self.route(name).await.expect("route exists");
        alert_route::reconcile(Arc::new(route), &self.ctx)
            .await
            .expect("reconcile succeeds");
        self.route(name).await.expect("route still exists")
    }

    pub(crate) async fn queue_attributes(&self, url: &str) -> HashMap<QueueAttributeName, String> {
        self.aws()
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .expect("GetQueueAttributes")
            .attributes()
            .cloned()
            .unwrap_or_default()
    }

    /// Whether a queue of that URL still exists.
    pub(crate) async fn queue_exists(&self, url: &str) -> bool {
        let name = url.rsplit('/').next().unwrap();
        self.aws()
            .sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .is_ok()
    }

    /// The `sqs` subscriptions of a topic: (subscription ARN, endpoint).
    pub(crate) async fn sqs_subscriptions(&self, topic: &str) -> Vec<(String, String)> {
        self.aws()
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(topic)
            .send()
            .await
            .expect("ListSubscriptionsByTopic")
            .subscriptions()
            .iter()
            .filter(|s| s.protocol() == Some("sqs"))
            .map(|s| {
                (
                    s.subscription_arn().unwrap_or_default().to_string(),
                    s.endpoint().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Publishes to `topic` and waits (long polling, bounded) for the SNS envelope in `queue_url`.
    pub(crate) async fn publish_and_receive(&self, topic: &str, queue_url: &str) -> Value {
        let text = format!("alert {}", harness::unique("m"));
        self.aws()
            .sns
            .publish()
            .topic_arn(topic)
            .subject("test")
            .message(&text)
            .send()
            .await
            .expect("Publish");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let received = self
                .aws()
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("ReceiveMessage");
            for message in received.messages() {
                let body: Value = serde_json::from_str(message.body().unwrap_or_default())
                    .expect("the body is the SNS envelope (JSON), not the raw message");
                if body["Message"] == text.as_str() {
                    return body;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the published message never reached {queue_url}"
            );
        }
    }
}

/// (status, reason, message) of a condition.
pub(crate) fn condition(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> (String, String, String) {
    let c = conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {conditions:?}"));
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn ready(route: &AlertRoute) -> (String, String, String) {
    condition(&route.status.as_ref().expect("status").conditions, "Ready")
}

fn route_spec(sources: Value) -> Value {
    json!({
        "sources": sources,
        "email": {"from": "alerts@example.com", "to": ["oncall@example.com"]},
        "queue": {"maxReceiveCount": 4, "visibilityTimeoutSeconds": 120, "retentionSeconds": 86400},
    })
}

/// Marks the consumer Deployment ready, as the Deployment controller would.
async fn consumer_becomes_ready(f: &Fixture, name: &str, replicas: i32) {
    let deployment = f
        .cluster
        .get::<Deployment>(&f.namespace, name)
        .await
        .unwrap()
        .expect("consumer Deployment exists");
    f.cluster
        .patch_status(
            &deployment,
            json!({"replicas": replicas, "readyReplicas": replicas}),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn creates_queues_policy_subscriptions_and_the_consumer() {
    let f = Fixture::new().await;
    let policy_topic = f.alarm_policy_topic("elb").await;
    let existing = f.existing_topic().await;
    f.apply(
        "AlertRoute",
        "oncall",
        route_spec(json!([{"alarmPolicy": "elb"}, {"topicArn": existing}])),
    );
    let route = f.reconcile("oncall").await;
    let status = route.status.clone().unwrap();
    let (ready_status, reason, message) = ready(&route);
    assert_eq!(
        (ready_status.as_str(), reason.as_str()),
        ("False", "ConsumerNotReady"),
        "{message}"
    );
    assert_eq!(
        condition(&status.conditions, "SourcesReady").0,
        "True",
        "both sources subscribed"
    );

    // Queue and dead-letter queue, with the spec's settings and the redrive policy.
    let queue_url = status.queue_url.clone().expect("queue URL");
    let queue_arn = status.queue_arn.clone().expect("queue ARN");
    let dlq_arn = status.dead_letter_queue_arn.clone().expect("DLQ ARN");
    let dlq_url = status.dead_letter_queue_url.clone().expect("DLQ URL");
    let attributes = f.queue_attributes(&queue_url).await;
    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "120");
    assert_eq!(
        attributes[&QueueAttributeName::MessageRetentionPeriod],
        "86400"
    );
    let redrive: Value =
        serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(redrive["deadLetterTargetArn"], dlq_arn.as_str());
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "4"
    );
    let dlq_attributes = f.queue_attributes(&dlq_url).await;
    assert_eq!(
        dlq_attributes[&QueueAttributeName::MessageRetentionPeriod],
        "1209600"
    );

    // The queue policy admits exactly the two source topics.
    let policy: Value = serde_json::from_str(&attributes[&QueueAttributeName::Policy]).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Principal"]["Service"], "sns.amazonaws.com");
    let mut admitted: Vec<String> =
        serde_json::from_value(statements[0]["Condition"]["ArnEquals"]["aws:SourceArn"].clone())
            .unwrap();
    admitted.sort();
    let mut expected = vec![policy_topic.clone(), existing.clone()];
    expected.sort();
    assert_eq!(admitted, expected);

    // Ownership tags on both queues.
    for url in [&queue_url, &dlq_url] {
        let tags = f
            .aws()
            .sqs
            .list_queue_tags()
            .queue_url(url)
            .send()
            .await
            .unwrap();
        let tags = tags.tags().unwrap();
        assert_eq!(
            tags["alertops.dev/owner"],
            format!("AlertRoute/{}/oncall", f.namespace)
        );
        assert_eq!(tags["alertops.dev/cluster"], f.ctx.settings.cluster_id);
    }

    // One sqs subscription per topic, recorded in status, delivering the SNS envelope.
    assert_eq!(status.subscribed_sources, 2);
    for topic in [&policy_topic, &existing] {
        let subscriptions = f.sqs_subscriptions(topic).await;
        assert_eq!(subscriptions.len(), 1, "{topic}: {subscriptions:?}");
        assert_eq!(subscriptions[0].1, queue_arn);
        let recorded = status
            .subscriptions
            .iter()
            .find(|s| &s.topic_arn == topic)
            .expect("recorded in status");
        assert_eq!(recorded.subscription_arn, subscriptions[0].0);
        let attributes = f
            .aws()
            .sns
            .get_subscription_attributes()
            .subscription_arn(&recorded.subscription_arn)
            .send()
            .await
            .unwrap();
        assert_eq!(
            attributes.attributes().unwrap()["RawMessageDelivery"],
            "false"
        );
    }
    let envelope = f.publish_and_receive(&policy_topic, &queue_url).await;
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["TopicArn"], policy_topic.as_str());
    let envelope = f.publish_and_receive(&existing, &queue_url).await;
    assert_eq!(envelope["TopicArn"], existing.as_str());

    // The consumer: ServiceAccount and Deployment owned by the route.
    let deployment_name = status
        .consumer_deployment
        .clone()
        .expect("deployment named");
    assert_eq!(deployment_name, "oncall-consumer");
    let deployment = f
        .cluster
        .get::<Deployment>(&f.namespace, &deployment_name)
        .await
        .unwrap()
        .unwrap();
    let owner = &deployment.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(owner.kind, "AlertRoute");
    assert_eq!(owner.name, "oncall");
    assert_eq!(Some(&owner.uid), route.metadata.uid.as_ref());
    assert_eq!(owner.controller, Some(true));
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("oncall-consumer"));
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(IMAGE));
    assert_eq!(
        container.args.clone().unwrap(),
        vec![
            "consume".to_string(),
            "--route".into(),
            format!("{}/oncall", f.namespace)
        ]
    );
    let liveness = container.liveness_probe.clone().unwrap().http_get.unwrap();
    let readiness = container.readiness_probe.clone().unwrap().http_get.unwrap();
    assert_eq!(liveness.path.as_deref(), Some("/healthz"));
    assert_eq!(readiness.path.as_deref(), Some("/readyz"));
    assert!(
        container
            .env
            .clone()
            .unwrap()
            .iter()
            .any(|e| e.name == "AWS_REGION" && e.value.as_deref() == Some(harness::REGION))
    );
    let account = f
        .cluster
        .get::<ServiceAccount>(&f.namespace, "oncall-consumer")
        .await
        .unwrap()
        .expect("service account");
    assert_eq!(
        account.metadata.annotations.unwrap()["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/alertops-workloads"
    );

    // Ready follows the consumer's readiness.
    consumer_becomes_ready(&f, &deployment_name, 1).await;
    let route = f.reconcile("oncall").await;
    assert_eq!(ready(&route).0, "True", "{:?}", ready(&route));
    assert_eq!(route.status.unwrap().consumer_ready_replicas, 1);
}

#[tokio::test]
async fn a_source_that_appears_later_is_subscribed_once_it_has_a_topic() {
    let f = Fixture::new().await;
    f.apply(
        "AlertRoute",
        "early",
        route_spec(json!([{"alarmPolicy": "later"}])),
    );
    let route = f.reconcile("early").await;
    let (status, reason, message) = ready(&route);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "SourceNotReady")
    );
    assert!(
        message.contains("later"),
        "names the missing policy: {message}"
    );
    let recorded = route.status.clone().unwrap();
    assert_eq!(recorded.subscribed_sources, 0);
    let queue_url = recorded.queue_url.expect("the queue exists already");
    assert!(
        f.queue_attributes(&queue_url)
            .await
            .get(&QueueAttributeName::Policy)
            .is_none_or(String::is_empty),
        "no topic admitted yet"
    );

    let topic = f.alarm_policy_topic("later").await;
    let route = f.reconcile("early").await;
    assert_eq!(
        condition(&route.status.as_ref().unwrap().conditions, "SourcesReady").0,
        "True"
    );
    let status = route.status.unwrap();
    assert_eq!(status.subscribed_sources, 1);
    assert_eq!(status.subscriptions[0].topic_arn, topic);
    f.publish_and_receive(&topic, &queue_url).await;
}

#[tokio::test]
async fn a_missing_existing_topic_is_reported_not_fatal() {
    let f = Fixture::new().await;
    let missing = format!(
        "arn:aws:sns:{}:123456789012:{}",
        harness::REGION,
        harness::unique("missing")
    );
    f.apply(
        "AlertRoute",
        "ghost",
        route_spec(json!([{"topicArn": missing}])),
    );
    let route = f.reconcile("ghost").await;
    let (status, reason, message) = ready(&route);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "SourceNotReady")
    );
    assert!(message.contains(&missing), "{message}");
}

#[tokio::test]
async fn a_second_reconcile_without_change_writes_nothing() {
    let f = Fixture::new().await;
    f.alarm_policy_topic("elb").await;
    let existing = f.existing_topic().await;
    f.apply(
        "AlertRoute",
        "quiet",
        route_spec(json!([{"alarmPolicy": "elb"}, {"topicArn": existing}])),
    );
    f.reconcile("quiet").await;
    consumer_becomes_ready(&f, "quiet-consumer", 1).await;
    f.reconcile("quiet").await;

    f.aws().call_log().reset();
    let revision = f.cluster.revision();
    let route = f.reconcile("quiet").await;
    assert_eq!(ready(&route).0, "True", "{:?}", ready(&route));
    let writes: Vec<String> = f
        .aws()
        .call_log()
        .writes()
        .iter()
        .map(|c| c.operation.clone())
        .collect();
    assert!(writes.is_empty(), "a no-op resync wrote to AWS: {writes:?}");
    assert!(f.aws().call_log().count("GetQueueAttributes") >= 2);
    assert_eq!(
        f.cluster.revision(),
        revision,
        "a no-op resync changed nothing in the cluster"
    );
}

#[tokio::test]
async fn a_dropped_source_is_unsubscribed_and_no_longer_admitted() {
    let f = Fixture::new().await;
    let kept = f.existing_topic().await;
    let dropped = f.existing_topic().await;
    f.apply(
        "AlertRoute",
        "shrink",
        route_spec(json!([{"topicArn": kept}, {"topicArn": dropped}])),
    );
    f.reconcile("shrink").await;
    assert_eq!(f.sqs_subscriptions(&dropped).await.len(), 1);

    let mut spec = route_spec(json!([{"topicArn": kept}]));
    spec["queue"]["visibilityTimeoutSeconds"] = json!(300);
    f.apply("AlertRoute", "shrink", spec);
    let route = f.reconcile("shrink").await;
    let status = route.status.unwrap();
    assert_eq!(status.subscribed_sources, 1);
    assert!(f.sqs_subscriptions(&dropped).await.is_empty());
    assert_eq!(f.sqs_subscriptions(&kept).await.len(), 1);
    let attributes = f.queue_attributes(status.queue_url.as_ref().unwrap()).await;
    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "300");
    let policy: Value = serde_json::from_str(&attributes[&QueueAttributeName::Policy]).unwrap();
    let admitted = &policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"];
    assert!(
        *admitted == json!(kept) || *admitted == json!([kept]),
        "{admitted}"
    );
    assert!(
        f.cluster
            .events()
            .iter()
            .any(|e| e.reason == "Unsubscribed")
    );
}

#[tokio::test]
async fn deletion_with_delete_removes_queues_and_subscriptions() {
    let f = Fixture::new().await;
    let topic = f.existing_topic().await;
    f.apply(
        "AlertRoute",
        "gone",
        route_spec(json!([{"topicArn": topic}])),
    );
    let route = f.reconcile("gone").await;
    let status = route.status.unwrap();

    f.cluster
        .request_delete("alertops.dev/v1alpha1", "AlertRoute", &f.namespace, "gone")
        .unwrap();
    let deleting = f
        .route("gone")
        .await
        .expect("kept while the finalizer is there");
    alert_route::reconcile(Arc::new(deleting), &f.ctx)
        .await
        .unwrap();
    assert!(
        f.route("gone").await.is_none(),
        "finalizer removed, route gone"
    );
    assert!(!f.queue_exists(status.queue_url.as_ref().unwrap()).await);
    assert!(
        !f.queue_exists(status.dead_letter_queue_url.as_ref().unwrap())
            .await
    );
    assert!(f.sqs_subscriptions(&topic).await.is_empty());
    assert!(
        f.aws()
            .sns
            .get_topic_attributes()
            .topic_arn(&topic)
            .send()
            .await
            .is_ok(),
        "the referenced topic is never deleted"
    );
    assert!(
        f.cluster
            .get::<Deployment>(&f.namespace, "gone-consumer")
            .await
            .unwrap()
            .is_none(),
        "the consumer is garbage-collected with the route"
    );
}

#[tokio::test]
async fn deletion_with_retain_leaves_queues_and_subscriptions() {
    let f = Fixture::new().await;
    let topic = f.existing_topic().await;
    let mut spec = route_spec(json!([{"topicArn": topic}]));
    spec["deletionPolicy"] = json!("Retain");
    f.apply("AlertRoute", "kept", spec);
    let route = f.reconcile("kept").await;
    let status = route.status.unwrap();

    f.cluster
        .request_delete("alertops.dev/v1alpha1", "AlertRoute", &f.namespace, "kept")
        .unwrap();
    f.aws().call_log().reset();
    alert_route::reconcile(Arc::new(f.route("kept").await.unwrap()), &f.ctx)
        .await
        .unwrap();
    assert!(f.route("kept").await.is_none());
    assert!(
        f.aws().call_log().snapshot().is_empty(),
        "Retain does not even look at AWS"
    );
    assert!(f.queue_exists(status.queue_url.as_ref().unwrap()).await);
    assert!(
        f.queue_exists(status.dead_letter_queue_url.as_ref().unwrap())
            .await
    );
    assert_eq!(f.sqs_subscriptions(&topic).await.len(), 1);
}

#[tokio::test]
async fn a_queue_owned_by_someone_else_is_left_untouched() {
    let f = Fixture::new().await;
    let topic = f.existing_topic().await;
    f.apply(
        "AlertRoute",
        "clash",
        route_spec(json!([{"topicArn": topic}])),
    );
    // Reconcile once to learn the queue name, delete the route's queue, and put a stranger's
    // queue with exactly that name in its place.
    let route = f.reconcile("clash").await;
    let url = route.status.unwrap().queue_url.unwrap();
    let name = url.rsplit('/').next().unwrap().to_string();
    f.aws()
        .sqs
        .delete_queue()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    f.aws()
        .sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, "7")
        .send()
        .await
        .unwrap();

    let route = f.reconcile("clash").await;
    let (status, reason, message) = ready(&route);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "QueueNotOwned")
    );
    assert!(message.contains(&name), "{message}");
    let url = f
        .aws()
        .sqs
        .get_queue_url()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    assert_eq!(
        f.queue_attributes(&url).await[&QueueAttributeName::VisibilityTimeout],
        "7",
        "left untouched"
    );
}

/// `status.subscriptions` is writable by others: a recorded subscription is removed only when
/// SNS reports this route's queue as its endpoint, at resync and at deletion.
#[tokio::test]
async fn a_recorded_subscription_of_another_queue_is_never_removed() {
    let f = Fixture::new().await;
    let kept = f.existing_topic().await;
    let theirs = f.existing_topic().await;
    f.apply(
        "AlertRoute",
        "guarded",
        route_spec(json!([{"topicArn": kept}])),
    );
    f.reconcile("guarded").await;

    let other_queue = f
        .aws()
        .sqs
        .create_queue()
        .queue_name(harness::unique("another-team"))
        .send()
        .await
        .unwrap();
    let other_arn = f.queue_attributes(other_queue.queue_url().unwrap()).await
        [&QueueAttributeName::QueueArn]
        .clone();
    let foreign = f
        .aws()
        .sns
        .subscribe()
        .topic_arn(&theirs)
        .protocol("sqs")
        .endpoint(&other_arn)
        .return_subscription_arn(true)
        .send()
        .await
        .unwrap()
        .subscription_arn()
        .unwrap()
        .to_string();
    let route = f.route("guarded").await.unwrap();
    let mut status = route.status.clone().unwrap();
    status
        .subscriptions
        .push(alertops::resources::SubscriptionStatus {
            topic_arn: theirs.clone(),
            subscription_arn: foreign.clone(),
        });
    f.cluster
        .patch_status(&route, serde_json::to_value(&status).unwrap())
        .await
        .unwrap();

    f.reconcile("guarded").await;
    assert_eq!(
        f.sqs_subscriptions(&theirs).await,
        vec![(foreign.clone(), other_arn.clone())]
    );
    assert!(
        f.cluster
            .events()
            .iter()
            .any(|e| e.reason == "SubscriptionNotOwned")
    );

    f.cluster
        .request_delete(
            "alertops.dev/v1alpha1",
            "AlertRoute",
            &f.namespace,
            "guarded",
        )
        .unwrap();
    let route = f.route("guarded").await.unwrap();
    alert_route::reconcile(Arc::new(route), &f.ctx)
        .await
        .expect("deletion succeeds");
    assert_eq!(
        f.sqs_subscriptions(&theirs).await,
        vec![(foreign, other_arn)],
        "the route's deletion leaves it too"
    );
    assert!(f.sqs_subscriptions(&kept).await.is_empty());
}

/// Dead-lettered messages show on the route, read from the dead-letter queue's attributes the
/// resync reads anyway (issue 11 item 1).
#[tokio::test]
async fn dead_letters_show_on_the_route_with_their_count() {
    let f = Fixture::new().await;
    let existing = f.existing_topic().await;
    f.apply(
        "AlertRoute",
        "dlq",
        route_spec(json!([{"topicArn": existing}])),
    );
    let route = f.reconcile("dlq").await;
    let status = route.status.expect("status");
    assert_eq!(
        condition(&status.conditions, "DeadLetters").1,
        "Empty",
        "{:?}",
        status.conditions
    );
    let dead_letter_url = status.dead_letter_queue_url.expect("dead-letter queue");
    for body in ["refused 1", "refused 2"] {
        f.aws()
            .sqs
            .send_message()
            .queue_url(&dead_letter_url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage");
    }
    f.aws().call_log().reset();
    let route = f.reconcile("dlq").await;
    let (status, reason, message) = condition(&route.status.unwrap().conditions, "DeadLetters");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "MessagesDeadLettered")
    );
    assert!(message.starts_with("2 messages wait"), "{message}");
    assert_eq!(
        f.aws().call_log().count("GetQueueAttributes"),
        2,
        "one read per queue, no extra call for the count"
    );
    let events: Vec<String> = f
        .cluster
        .events()
        .into_iter()
        .filter(|e| e.reason == "MessagesDeadLettered")
        .filter_map(|e| e.note)
        .collect();
    assert_eq!(
        events,
        vec!["2 messages wait in the route's dead-letter queue".to_string()]
    );
}
