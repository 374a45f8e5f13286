//! The route consumer end to end: an SNS publish to the emulator, the route's SQS queue (with a
//! dead-letter queue), the consumer, and what the recording Slack stand-in receives.
//!
//! The AlertRoute reconciler is not involved: each test creates the topic, the queues and the
//! subscription with the SDK and puts the AlertRoute into a MemoryCluster with its
//! `status.queueUrl` set, as the controller would.

use std::sync::Arc;
use std::time::Duration;

use alertops::alert::Enricher;
use alertops::aws::{AwsClients, AwsSettings};
use alertops::consume::{BatchReport, Consumer, ConsumerMetrics, ConsumerOptions, config_map_name};
use alertops::k8s::{ClusterApi, MemoryCluster};
use alertops::resources::AlertRoute;
use alertops::slack::{
    ActionSigner, ButtonAction, DEFAULT_MAX_AGE, RETRY_ACTION_PREFIX, RouteRef, SlackClient,
    SlackSettings,
};
use aws_sdk_sqs::types::QueueAttributeName;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::harness::slack::{RecordedRequest, Scripted, SlackRecorder, spacing};
use crate::harness::{self, REGION};

const ACCOUNT: &str = "123456789012";
const SIGNING_KEY: &[u8] = b"a test key that is long enough for hmac-sha256 signing";

/// One route's AWS plumbing: topic → queue (→ dead-letter queue).
pub(crate) struct Plumbing {
    pub(crate) topic_arn: String,
    pub(crate) queue_url: String,
    pub(crate) dlq_url: String,
}

pub(crate) async fn topic(aws: &AwsClients) -> String {
    aws.sns
        .create_topic()
        .name(harness::unique("consume-topic"))
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .expect("topic ARN")
        .to_string()
}

async fn queue_arn(aws: &AwsClients, url: &str) -> String {
    aws.sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue ARN")
}

/// A queue with a dead-letter queue, subscribed to `topic_arn` (SNS envelopes, no raw delivery).
pub(crate) async fn subscribed_queue(
    aws: &AwsClients,
    topic_arn: &str,
    visibility_seconds: u32,
    max_receive_count: u32,
) -> Plumbing {
    let dlq_url = aws
        .sqs
        .create_queue()
        .queue_name(harness::unique("consume-dlq"))
        .send()
        .await
        .expect("CreateQueue (DLQ)")
        .queue_url()
        .expect("DLQ URL")
        .to_string();
    let dlq_arn = queue_arn(aws, &dlq_url).await;
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count});
    let queue_url = aws
        .sqs
        .create_queue()
        .queue_name(harness::unique("consume-queue"))
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_seconds.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("queue URL")
        .to_string();
    let arn = queue_arn(aws, &queue_url).await;
    aws.sns
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .expect("Subscribe");
    Plumbing {
        topic_arn: topic_arn.to_string(),
        queue_url,
        dlq_url,
    }
}

pub(crate) async fn publish(
    aws: &AwsClients,
    topic_arn: &str,
    subject: Option<&str>,
    message: &str,
) {
    aws.sns
        .publish()
        .topic_arn(topic_arn)
        .set_subject(subject.map(str::to_string))
        .message(message)
        .send()
        .await
        .expect("Publish");
}

/// (visible, in flight) messages of a queue.
pub(crate) async fn queue_counts(aws: &AwsClients, url: &str) -> (u64, u64) {
    let output = aws
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let read = |name: QueueAttributeName| {
        output
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        read(QueueAttributeName::ApproximateNumberOfMessages),
        read(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Polls the queue's counts until `predicate` holds, or panics after `timeout`.
pub(crate) async fn await_queue(
    aws: &AwsClients,
    url: &str,
    timeout: Duration,
    predicate: impl Fn((u64, u64)) -> bool,
) -> (u64, u64) {
    let deadline = Instant::now() + timeout;
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    loop {
        poll.tick().await;
        let counts = queue_counts(aws, url).await;
        if predicate(counts) {
            return counts;
        }
        assert!(
            Instant::now() < deadline,
            "queue {url} did not reach the expected state within {timeout:?}: (visible, in flight) = {counts:?}"
        );
    }
}

/// The Kubernetes side of a route, in memory.
pub(crate) struct Route {
    pub(crate) cluster: MemoryCluster,
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl Route {
    /// Applies the AlertRoute (with `spec`) and a Secret `slack` holding `secret_data`, and
    /// records the queue in the route's status as the controller would.
    pub(crate) async fn new(spec: Value, secret_data: Value, plumbing: &Plumbing) -> Route {
        Route::new_in(MemoryCluster::new(), spec, secret_data, plumbing).await
    }

    /// [`Route::new`] in `cluster`.
    async fn new_in(
        cluster: MemoryCluster,
        spec: Value,
        secret_data: Value,
        plumbing: &Plumbing,
    ) -> Route {
        let namespace = harness::unique("team").to_lowercase();
        let name = harness::unique("route").to_lowercase();
        cluster
            .apply_manifest(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "slack", "namespace": namespace},
                "stringData": secret_data,
            }))
            .expect("Secret applies");
        cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
                "metadata": {"name": name, "namespace": namespace},
                "spec": spec,
            }))
            .expect("AlertRoute applies");
        let route: AlertRoute = cluster
            .get(&namespace, &name)
            .await
            .expect("get")
            .expect("route exists");
        cluster
            .patch_status(
                &route,
                json!({
                    "queueUrl": plumbing.queue_url,
                    "deadLetterQueueUrl": plumbing.dlq_url,
                    "subscriptions": [{"topicArn": plumbing.topic_arn, "subscriptionArn": "arn:aws:sns:us-east-1:123456789012:x:1"}],
                    "subscribedSources": 1,
                }),
            )
            .await
            .expect("status patch");
        Route {
            cluster,
            namespace,
            name,
        }
    }

    pub(crate) fn reference(&self) -> RouteRef {
        RouteRef {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// The route's consumer with [`test_options`] and the test signer.
    pub(crate) fn consumer(
        &self,
        aws: &AwsClients,
        slack: Arc<SlackClient>,
    ) -> Consumer<MemoryCluster> {
        self.consumer_with(aws, slack, test_options())
    }

    /// The route's consumer with these options and the test signer.
    pub(crate) fn consumer_with(
        &self,
        aws: &AwsClients,
        slack: Arc<SlackClient>,
        options: ConsumerOptions,
    ) -> Consumer<MemoryCluster> {
        Consumer::new(
            self.cluster.clone(),
            aws.clone(),
            slack,
            self.reference(),
            options,
        )
        .with_signer(signer())
    }
}

/// A consumer running in a task, as the `consume` command runs it, until [`Running::stop`].
pub(crate) struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub(crate) fn spawn(mut consumer: Consumer<MemoryCluster>) -> Running {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            consumer
                .run(async {
                    let _ = stopped.await;
                })
                .await
        });
        Running { stop, task }
    }

    /// Signals shutdown and waits for the consumer to stop (it must, and without a panic).
    pub(crate) async fn stop(self) {
        self.stop.send(()).expect("consumer still running");
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("stops on shutdown")
            .expect("no panic");
    }
}

/// Consumer metrics in a registry of their own, read as `/metrics` serves them.
pub(crate) struct RegisteredMetrics {
    pub(crate) metrics: ConsumerMetrics,
    registry: prometheus_client::registry::Registry,
}

impl RegisteredMetrics {
    pub(crate) fn new() -> RegisteredMetrics {
        let metrics = ConsumerMetrics::new();
        let mut registry = prometheus_client::registry::Registry::default();
        metrics.register(&mut registry);
        RegisteredMetrics { metrics, registry }
    }

    /// The registry in Prometheus' text format.
    pub(crate) fn text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("metrics encode");
        text
    }
}

pub(crate) fn signer() -> ActionSigner {
    ActionSigner::new(SIGNING_KEY).expect("key is long enough")
}

/// Short long-polls and backoffs, so tests take seconds.
pub(crate) fn test_options() -> ConsumerOptions {
    ConsumerOptions {
        wait_time: Duration::from_secs(1),
        retry_initial: Duration::from_secs(1),
        retry_max: Duration::from_secs(4),
        ..ConsumerOptions::default()
    }
}

/// Slack's production pacing (one post per second per channel) with short retry backoffs.
pub(crate) fn slack_client(recorder: &SlackRecorder) -> Arc<SlackClient> {
    Arc::new(SlackClient::new(SlackSettings {
        api_base: recorder.api_base(),
        initial_backoff: Duration::from_millis(100),
        request_timeout: Duration::from_secs(5),
        ..SlackSettings::default()
    }))
}

pub(crate) fn webhook_spec(
    recorder: &SlackRecorder,
    topic_arn: &str,
    hook: &str,
) -> (Value, Value) {
    (
        json!({
            "sources": [{"topicArn": topic_arn}],
            "slack": {"webhookSecretRef": {"name": "slack", "key": "webhook"}},
        }),
        json!({"webhook": recorder.webhook_url(hook)}),
    )
}

/// Runs batches until `done` holds for their sum, or panics after `timeout`.
pub(crate) async fn run_until(
    consumer: &mut Consumer<MemoryCluster>,
    timeout: Duration,
    done: impl Fn(&BatchReport) -> bool,
) -> BatchReport {
    let deadline = Instant::now() + timeout;
    let mut total = BatchReport::default();
    loop {
        total += consumer.run_once().await.expect("batch runs");
        if done(&total) {
            return total;
        }
        assert!(
            Instant::now() < deadline,
            "the consumer did not get there within {timeout:?}: {total:?}"
        );
    }
}

pub(crate) fn all_text(requests: &[RecordedRequest]) -> String {
    requests
        .iter()
        .map(RecordedRequest::all_text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every button element of a message body.
fn buttons(body: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for block in body["blocks"].as_array().into_iter().flatten() {
        if let Some(elements) = block["elements"].as_array() {
            out.extend(elements.iter().filter(|e| e["type"] == "button").cloned());
        }
        if block["accessory"]["type"] == "button" {
            out.push(block["accessory"].clone());
        }
    }
    out
}

/// The EventBridge event EMR emits for a cluster that terminated with errors, as EventBridge
/// publishes it to an SNS target (the event JSON is the SNS message).
fn emr_failure_event(cluster_id: &str, cluster_name: &str, reason: &str) -> String {
    json!({
        "version": "0",
        "id": "9a5c2b8e-1f0d-4e6b-b3a1-5d2c0e7f8a91",
        "detail-type": "EMR Cluster State Change",
        "source": "aws.emr",
        "account": ACCOUNT,
        "time": "2024-05-01T10:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "severity": "CRITICAL",
            "stateChangeReason": json!({"code": "BOOTSTRAP_FAILURE", "message": reason}).to_string(),
            "name": cluster_name,
            "clusterId": cluster_id,
            "state": "TERMINATED_WITH_ERRORS",
            "message": format!("Amazon EMR Cluster {cluster_id} ({cluster_name}) has terminated with errors at 2024-05-01 10:00 UTC with a reason of BOOTSTRAP_FAILURE."),
        }
    })
    .to_string()
}

/// The JSON CloudWatch publishes to SNS when an alarm changes state.
pub(crate) fn alarm_notification(
    alarm: &str,
    arn: &str,
    new_state: &str,
    old_state: &str,
    reason: &str,
    at: &str,
) -> String {
    json!({
        "AlarmName": alarm,
        "AlarmDescription": "CPU of the payments API",
        "AWSAccountId": ACCOUNT,
        "AlarmConfigurationUpdatedTimestamp": "2024-05-01T09:00:00.000+0000",
        "NewStateValue": new_state,
        "NewStateReason": reason,
        "StateChangeTime": at,
        "Region": "US East (N. Virginia)",
        "AlarmArn": arn,
        "OldStateValue": old_state,
        "OKActions": [],
        "AlarmActions": [],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": "CPUUtilization",
            "Namespace": "AWS/EC2",
            "StatisticType": "Statistic",
            "Statistic": "AVERAGE",
            "Unit": null,
            "Dimensions": [{"value": "i-0payments", "name": "InstanceId"}],
            "Period": 60,
            "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 80.0,
            "TreatMissingData": "missing",
            "EvaluateLowSampleCountPercentile": ""
        }
    })
    .to_string()
}

#[tokio::test]
async fn emr_failure_reaches_the_owning_team_with_retry_and_not_the_other_team() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let slack = slack_client(&recorder);
    let topic_arn = topic(&aws).await;

    let cluster_name = harness::unique("nightly-etl");
    let cluster_id = aws
        .emr
        .run_job_flow()
        .name(&cluster_name)
        .release_label("emr-6.15.0")
        .service_role("EMR_DefaultRole")
        .job_flow_role("EMR_EC2_DefaultRole")
        .instances(
            aws_sdk_emr::types::JobFlowInstancesConfig::builder()
                .master_instance_type("m5.xlarge")
                .slave_instance_type("m5.xlarge")
                .instance_count(3)
                .keep_job_flow_alive_when_no_steps(true)
                .build(),
        )
        .tags(
            aws_sdk_emr::types::Tag::builder()
                .key("Team")
                .value("data-eng")
                .build(),
        )
        .tags(
            aws_sdk_emr::types::Tag::builder()
                .key("Feature")
                .value("x")
                .build(),
        )
        .send()
        .await
        .expect("RunJobFlow")
        .job_flow_id()
        .expect("cluster id")
        .to_string();

    let data_queue = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let web_queue = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let route_spec = |team: &str| {
        json!({
            "sources": [{"topicArn": topic_arn}],
            "match": {
                "kinds": ["EmrClusterStateChange"],
                "tags": [{"key": "Team", "operator": "In", "values": [team]}],
            },
            "slack": {"webhookSecretRef": {"name": "slack", "key": "webhook"}},
            "actions": {"acknowledge": true, "retry": {"enabled": true, "maxAttempts": 3, "allowedUsers": ["U0DATA"]}},
        })
    };
    let data_route = Route::new(
        route_spec("data-eng"),
        json!({"webhook": recorder.webhook_url("data-eng")}),
        &data_queue,
    )
    .await;
    let web_route = Route::new(
        route_spec("web"),
        json!({"webhook": recorder.webhook_url("web")}),
        &web_queue,
    )
    .await;

    let reason =
        "Master instance (i-0f00) failed attempting to download bootstrap action 1 file from S3";
    publish(
        &aws,
        &topic_arn,
        None,
        &emr_failure_event(&cluster_id, &cluster_name, reason),
    )
    .await;

    let mut data = data_route.consumer(&aws, slack.clone());
    let report = run_until(&mut data, Duration::from_secs(30), |r| r.delivered >= 1).await;
    assert_eq!(
        (report.delivered, report.filtered, report.failed),
        (1, 0, 0)
    );
    let mut web = web_route.consumer(&aws, slack.clone());
    let report = run_until(&mut web, Duration::from_secs(30), |r| r.received >= 1).await;
    assert_eq!(
        (report.filtered, report.delivered),
        (1, 0),
        "the web team's route filters the data team's cluster out"
    );

    let posts = recorder.delivered("/webhook/data-eng");
    assert_eq!(posts.len(), 1, "one message for one failure");
    let text = posts[0].all_text();
    assert!(text.contains(&cluster_name), "cluster name: {text}");
    assert!(text.contains(&cluster_id), "cluster id: {text}");
    assert!(text.contains(reason), "failure reason: {text}");
    let retry = buttons(&posts[0].body)
        .into_iter()
        .find(|b| {
            b["action_id"]
                .as_str()
                .is_some_and(|id| id.starts_with(RETRY_ACTION_PREFIX))
        })
        .expect("a Retry button on the failed cluster");
    let payload = signer()
        .verify(
            retry["value"].as_str().expect("button value"),
            chrono::Utc::now(),
            DEFAULT_MAX_AGE,
        )
        .expect("the button value is signed with the shared key");
    assert_eq!(payload.action, ButtonAction::Retry);
    assert_eq!(payload.cluster_id.as_deref(), Some(cluster_id.as_str()));
    assert_eq!(payload.route, data_route.reference());
    assert!(
        buttons(&posts[0].body).len() >= 2,
        "Acknowledge and Retry buttons"
    );

    assert!(
        recorder.requests().iter().all(|r| r.path != "/webhook/web"),
        "nothing reaches the other team's channel"
    );
    assert_eq!(queue_counts(&aws, &data_queue.queue_url).await, (0, 0));
    assert_eq!(
        queue_counts(&aws, &web_queue.queue_url).await,
        (0, 0),
        "a filtered message is deleted on purpose"
    );
}

#[tokio::test]
async fn alarm_renders_details_and_its_ok_updates_the_same_message() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;

    let alarm = harness::unique("payments-api-cpu");
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm)
        .metric_name("CPUUtilization")
        .namespace("AWS/EC2")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
        .period(60)
        .evaluation_periods(1)
        .threshold(80.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .tags(
            aws_sdk_cloudwatch::types::Tag::builder()
                .key("Team")
                .value("payments")
                .build(),
        )
        .send()
        .await
        .expect("PutMetricAlarm");
    let arn = format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}");

    let route = Route::new(
        json!({
            "sources": [{"topicArn": topic_arn}],
            // The Team tag is on the alarm only: matching proves enrichment read it.
            "match": {
                "kinds": ["CloudWatchAlarm"],
                "tags": [{"key": "Team", "operator": "In", "values": ["payments"]}],
            },
            "slack": {"botTokenSecretRef": {"name": "slack", "key": "token"}, "channel": "C0PAYMENTS"},
        }),
        json!({"token": "xoxb-test-token"}),
        &plumbing,
    )
    .await;

    let reason = "Threshold Crossed: 1 out of the last 1 datapoints [93.5 (01/05/24 10:00:00)] was greater than the threshold (80.0) (minimum 1 datapoint for OK -> ALARM transition).";
    publish(
        &aws,
        &topic_arn,
        Some(&format!("ALARM: \"{alarm}\" in US East (N. Virginia)")),
        &alarm_notification(
            &alarm,
            &arn,
            "ALARM",
            "OK",
            reason,
            "2024-05-01T10:00:00.000+0000",
        ),
    )
    .await;
    let mut consumer = route.consumer(&aws, slack_client(&recorder));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.delivered >= 1).await;
    assert_eq!((report.posts, report.updates), (1, 0));

    let posts = recorder.delivered("/api/chat.postMessage");
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(
        post.authorization.as_deref(),
        Some("Bearer xoxb-test-token")
    );
    assert_eq!(post.body["channel"], "C0PAYMENTS");
    let text = post.all_text();
    for expected in ["AWS/EC2 CPUUtilization", "80", "Firing", &alarm, "93.5"] {
        assert!(text.contains(expected), "{expected:?} missing from {text}");
    }
    let first_ts = "1700000000.000001";

    // The (channel, ts) is in the cluster, owned by the route.
    let stored: ConfigMap = route
        .cluster
        .get(&route.namespace, &config_map_name(&route.name))
        .await
        .expect("get")
        .expect("the message index ConfigMap exists");
    let route_uid = route
        .cluster
        .get::<AlertRoute>(&route.namespace, &route.name)
        .await
        .unwrap()
        .unwrap()
        .metadata
        .uid;
    assert_eq!(
        stored.metadata.owner_references.as_ref().unwrap()[0].uid,
        route_uid.unwrap()
    );
    assert!(
        stored
            .data
            .unwrap_or_default()
            .values()
            .any(|v| v.contains(first_ts)),
        "the posted ts is stored"
    );

    // The OK arrives at a new consumer (a restarted pod): it still finds the message.
    publish(
        &aws,
        &topic_arn,
        Some(&format!("OK: \"{alarm}\" in US East (N. Virginia)")),
        &alarm_notification(
            &alarm,
            &arn,
            "OK",
            "ALARM",
            "Threshold Crossed: 1 out of the last 1 datapoints [12.0 (01/05/24 10:10:00)] was not greater than the threshold (80.0).",
            "2024-05-01T10:10:00.000+0000",
        ),
    )
    .await;
    let mut restarted = route.consumer(&aws, slack_client(&recorder));
    let report = run_until(&mut restarted, Duration::from_secs(30), |r| {
        r.delivered >= 1
    })
    .await;
    assert_eq!((report.posts, report.updates), (0, 1));

    let updates = recorder.delivered("/api/chat.update");
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].body["ts"], first_ts);
    assert_eq!(updates[0].body["channel"], "C0PAYMENTS");
    let text = updates[0].all_text();
    assert!(text.contains("Resolved"), "resolved: {text}");
    assert!(
        buttons(&updates[0].body).is_empty(),
        "a resolved alert has no buttons"
    );
    assert_eq!(
        recorder.delivered("/api/chat.postMessage").len(),
        1,
        "no disconnected second message"
    );
    assert_eq!(queue_counts(&aws, &plumbing.queue_url).await, (0, 0));
}

#[tokio::test]
async fn a_storm_of_100_alerts_is_grouped_and_paced_to_one_post_per_second() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 60, 5).await;
    let (mut spec, secret) = webhook_spec(&recorder, &topic_arn, "storm");
    spec["grouping"] = json!({"groupWaitSeconds": 2, "maxAlertsPerMessage": 20});
    let route = Route::new(spec, secret, &plumbing).await;

    let tokens: Vec<String> = (0..100).map(|i| format!("storm-alert-{i:03}")).collect();
    futures::future::join_all(tokens.iter().map(|token| {
        let aws = aws.clone();
        let topic_arn = topic_arn.clone();
        async move {
            publish(
                &aws,
                &topic_arn,
                None,
                &format!("{token}: disk almost full"),
            )
            .await;
        }
    }))
    .await;

    let consumer = route.consumer(&aws, slack_client(&recorder));
    let task = Running::spawn(consumer);
    let requests = recorder
        .wait_until(Duration::from_secs(90), |requests| {
            let text = all_text(requests);
            tokens.iter().all(|t| text.contains(t.as_str()))
        })
        .await;
    await_queue(&aws, &plumbing.queue_url, Duration::from_secs(30), |c| {
        c == (0, 0)
    })
    .await;
    task.stop().await;

    let posts: Vec<RecordedRequest> = requests
        .into_iter()
        .filter(|r| r.path == "/webhook/storm")
        .collect();
    assert!(
        (5..=10).contains(&posts.len()),
        "100 alerts grouped into a few messages of at most 20, got {} posts",
        posts.len()
    );
    for gap in spacing(&posts) {
        // Measured on arrival; 50 ms covers transport jitter between two requests.
        assert!(
            gap >= Duration::from_millis(950),
            "two posts to one channel {gap:?} apart"
        );
    }
    let text = all_text(&posts);
    for token in &tokens {
        assert!(text.contains(token.as_str()), "{token} missing");
    }
}

#[tokio::test]
async fn rate_limit_then_server_error_delivers_once_and_deletes_only_after() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let (spec, secret) = webhook_spec(&recorder, &topic_arn, "ops");
    let route = Route::new(spec, secret, &plumbing).await;
    recorder.script([Scripted::rate_limited(2), Scripted::status(500)]);

    publish(
        &aws,
        &topic_arn,
        None,
        "replica lag above 30 s on orders-db",
    )
    .await;
    let mut consumer = route.consumer(&aws, slack_client(&recorder));
    let batch = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut total = BatchReport::default();
        while total.received == 0 && Instant::now() < deadline {
            total += consumer.run_once().await.expect("batch runs");
        }
        total
    });

    recorder
        .wait_until(Duration::from_secs(30), |r| {
            r.iter().any(|r| r.status == 429)
        })
        .await;
    assert_eq!(
        queue_counts(&aws, &plumbing.queue_url).await,
        (0, 1),
        "while Slack rate-limits, the message is in flight, not deleted"
    );
    let report = batch.await.expect("no panic");
    assert_eq!((report.delivered, report.deleted, report.failed), (1, 1, 0));

    let hook: Vec<RecordedRequest> = recorder
        .requests()
        .into_iter()
        .filter(|r| r.path == "/webhook/ops")
        .collect();
    let statuses: Vec<u16> = hook.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![429, 500, 200],
        "429, then 500, then accepted"
    );
    assert!(
        hook[1].at.duration_since(hook[0].at) >= Duration::from_secs(2),
        "Retry-After: 2 was honoured"
    );
    assert_eq!(
        recorder.delivered("/webhook/ops").len(),
        1,
        "delivered once"
    );
    assert_eq!(queue_counts(&aws, &plumbing.queue_url).await, (0, 0));
}

#[tokio::test]
async fn a_consumer_killed_mid_batch_loses_no_alert() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    // A short visibility timeout: what the killed consumer held comes back in 3 s.
    let plumbing = subscribed_queue(&aws, &topic_arn, 3, 5).await;
    let (spec, secret) = webhook_spec(&recorder, &topic_arn, "oncall");
    let route = Route::new(spec, secret, &plumbing).await;
    // Slack is stuck: the first post waits 30 s on Retry-After.
    recorder.script([Scripted::rate_limited(30)]);

    let tokens = ["kill-test-a", "kill-test-b", "kill-test-c"];
    for token in tokens {
        publish(
            &aws,
            &topic_arn,
            None,
            &format!("{token}: queue backlog growing"),
        )
        .await;
    }
    let mut first = route.consumer(&aws, slack_client(&recorder));
    let killed = tokio::spawn(async move { first.run(std::future::pending()).await });
    recorder
        .wait_until(Duration::from_secs(30), |r| {
            r.iter().any(|r| r.status == 429)
        })
        .await;
    killed.abort();
    assert!(
        killed.await.expect_err("aborted").is_cancelled(),
        "the consumer was killed mid-batch"
    );
    assert!(recorder.delivered("/webhook/oncall").is_empty());

    let second = route.consumer(&aws, slack_client(&recorder));
    let restarted = Running::spawn(second);
    recorder
        .wait_until(Duration::from_secs(30), |requests| {
            let delivered: Vec<RecordedRequest> = requests
                .iter()
                .filter(|r| r.path == "/webhook/oncall" && r.status == 200)
                .cloned()
                .collect();
            let text = all_text(&delivered);
            tokens.iter().all(|t| text.contains(t))
        })
        .await;
    await_queue(&aws, &plumbing.queue_url, Duration::from_secs(15), |c| {
        c == (0, 0)
    })
    .await;
    restarted.stop().await;
    assert_eq!(
        queue_counts(&aws, &plumbing.dlq_url).await,
        (0, 0),
        "nothing dead-lettered"
    );
}

#[tokio::test]
async fn undecodable_and_unknown_messages_arrive_as_generic_alerts() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let (spec, secret) = webhook_spec(&recorder, &topic_arn, "generic");
    let route = Route::new(spec, secret, &plumbing).await;

    publish(
        &aws,
        &topic_arn,
        None,
        "{not json at all: backup-job-7 failed <&> halfway",
    )
    .await;
    publish(
        &aws,
        &topic_arn,
        None,
        &json!({"deployment": {"id": "deploy-4711", "status": "rolled back"}}).to_string(),
    )
    .await;

    let mut consumer = route.consumer(&aws, slack_client(&recorder));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.delivered >= 2).await;
    assert_eq!(
        (report.delivered, report.failed, report.filtered),
        (2, 0, 0)
    );
    let text = all_text(&recorder.delivered("/webhook/generic"));
    assert!(text.contains("backup-job-7 failed"), "{text}");
    assert!(text.contains("deploy-4711"), "{text}");
    assert_eq!(queue_counts(&aws, &plumbing.queue_url).await, (0, 0));
}

/// Beyond the outage tolerance (zero here), failed messages go back with their backoff and reach
/// the dead-letter queue after `maxReceiveCount` receives, as before the circuit breaker.
#[tokio::test]
async fn a_message_slack_keeps_failing_beyond_the_outage_tolerance_ends_in_the_dead_letter_queue() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 2).await;
    let (spec, secret) = webhook_spec(&recorder, &topic_arn, "down");
    let route = Route::new(spec, secret, &plumbing).await;
    recorder.script((0..50).map(|_| Scripted::status(500)));

    publish(&aws, &topic_arn, None, "payments batch stuck").await;
    let slack = Arc::new(SlackClient::new(SlackSettings {
        api_base: recorder.api_base(),
        max_attempts: 2,
        initial_backoff: Duration::from_millis(50),
        ..SlackSettings::default()
    }));
    let metrics = RegisteredMetrics::new();
    let consumer = Consumer::new(
        route.cluster.clone(),
        aws.clone(),
        slack,
        route.reference(),
        ConsumerOptions {
            slack_outage_tolerance: Duration::ZERO,
            ..test_options()
        },
    )
    .with_metrics(metrics.metrics.clone());
    let task = Running::spawn(consumer);

    await_queue(&aws, &plumbing.dlq_url, Duration::from_secs(60), |c| {
        c.0 == 1
    })
    .await;
    task.stop().await;

    assert!(
        recorder.delivered("/webhook/down").is_empty(),
        "Slack never accepted it"
    );
    assert_eq!(queue_counts(&aws, &plumbing.queue_url).await, (0, 0));
    let text = metrics.text();
    let label = format!("route=\"{}/{}\"", route.namespace, route.name);
    assert!(
        text.contains(&format!("consumer_dead_letter_risk_total{{{label}}} 1")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "consumer_alerts_failed_total{{{label},reason=\"slack_transient\"}} 2"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn a_failed_enrichment_keeps_the_message_for_later() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let (spec, secret) = webhook_spec(&recorder, &topic_arn, "emr");
    let route = Route::new(spec, secret, &plumbing).await;

    // EMR unreachable (nothing listens on port 9), SQS fine.
    let unreachable = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_sdk_sqs::config::Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    let broken = AwsClients::from_sdk_config(
        &unreachable,
        AwsSettings {
            max_attempts: std::num::NonZeroU32::new(1).unwrap(),
            ..harness::test_settings()
        },
    );
    publish(
        &aws,
        &topic_arn,
        None,
        &emr_failure_event("j-UNREACHABLE", "etl", "bootstrap failed"),
    )
    .await;
    let mut consumer = route
        .consumer(&aws, slack_client(&recorder))
        .with_enricher(Arc::new(Enricher::new(broken, Duration::from_secs(60))));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.received >= 1).await;
    assert_eq!((report.failed, report.delivered, report.deleted), (1, 0, 0));
    assert!(
        recorder.requests().is_empty(),
        "nothing was sent without tags"
    );
    let (visible, in_flight) = queue_counts(&aws, &plumbing.queue_url).await;
    assert_eq!(visible + in_flight, 1, "the message is still queued");
}

#[tokio::test]
async fn a_slack_refusal_keeps_the_message_and_is_counted() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let (spec, secret) = webhook_spec(&recorder, &topic_arn, "revoked");
    let route = Route::new(spec, secret, &plumbing).await;
    // A revoked webhook answers 404 no_service: retrying cannot fix it.
    recorder.script([Scripted::status(404)]);

    publish(&aws, &topic_arn, None, "certificate expires in 3 days").await;
    let mut consumer = route.consumer(&aws, slack_client(&recorder));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.received >= 1).await;
    assert_eq!(
        (
            report.failed,
            report.rejected,
            report.delivered,
            report.deleted
        ),
        (1, 1, 0, 0)
    );
    assert_eq!(
        recorder.requests().len(),
        1,
        "a refusal is not retried within the batch"
    );
    let (visible, in_flight) = queue_counts(&aws, &plumbing.queue_url).await;
    assert_eq!(
        visible + in_flight,
        1,
        "the message stays queued (for the dead-letter queue eventually)"
    );
}

// ---------------------------------------------------------------------------------------------
// Immediate email (issue 3) and the workload's HTTP endpoints

/// A CloudWatch alarm in the emulator (enrichment reads its tags); returns its ARN.
pub(crate) async fn put_alarm(aws: &AwsClients, alarm: &str) -> String {
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name(alarm)
        .metric_name("CPUUtilization")
        .namespace("AWS/EC2")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
        .period(60)
        .evaluation_periods(1)
        .threshold(80.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("PutMetricAlarm");
    format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}")
}

pub(crate) async fn publish_alarm(aws: &AwsClients, topic_arn: &str, alarm: &str, arn: &str) {
    publish(
        aws,
        topic_arn,
        Some(&format!("ALARM: \"{alarm}\" in US East (N. Virginia)")),
        &alarm_notification(
            alarm,
            arn,
            "ALARM",
            "OK",
            "Threshold Crossed: 1 out of the last 1 datapoints [93.5 (01/05/24 10:00:00)] was greater than the threshold (80.0).",
            "2024-05-01T10:00:00.000+0000",
        ),
    )
    .await;
}

/// A sender SES accepts.
pub(crate) async fn verified_sender(aws: &AwsClients) -> String {
    let sender = format!("{}@alerts.example.com", harness::unique("consume"));
    aws.ses
        .create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .expect("CreateEmailIdentity");
    sender
}

/// Emails the emulator sent whose subject starts with `prefix`.
pub(crate) async fn emails_with_prefix(prefix: &str) -> Vec<Value> {
    harness::sent_emails()
        .await
        .into_iter()
        .filter(|m| m["subject"].as_str().is_some_and(|s| s.starts_with(prefix)))
        .collect()
}

#[tokio::test]
async fn an_email_only_route_delivers_the_alarm_by_email_and_deletes_after_ses_accepted() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let alarm = harness::unique("orders-cpu");
    let arn = put_alarm(&aws, &alarm).await;
    let sender = verified_sender(&aws).await;
    let prefix = format!("[{}]", harness::unique("email-only"));
    let route = Route::new(
        json!({
            "sources": [{"topicArn": topic_arn}],
            "email": {"from": sender, "to": ["oncall@example.com"], "subjectPrefix": prefix},
        }),
        json!({}),
        &plumbing,
    )
    .await;

    publish_alarm(&aws, &topic_arn, &alarm, &arn).await;
    let mut consumer = route.consumer(&aws, slack_client(&recorder));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.delivered >= 1).await;
    assert_eq!(
        (report.emails, report.posts, report.deleted, report.failed),
        (1, 0, 1, 0)
    );
    assert!(
        recorder.requests().is_empty(),
        "no Slack destination, no Slack call"
    );

    let emails = emails_with_prefix(&prefix).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let email = &emails[0];
    let subject = email["subject"].as_str().unwrap();
    assert!(
        subject.contains("FIRING") && subject.contains(&alarm),
        "{subject}"
    );
    assert_eq!(email["source"], sender.as_str());
    assert_eq!(
        email["destinations"]["ToAddresses"],
        json!(["oncall@example.com"])
    );
    let body = email["body"].to_string();
    assert!(body.contains(&alarm), "{body}");
    await_queue(&aws, &plumbing.queue_url, Duration::from_secs(10), |c| {
        c == (0, 0)
    })
    .await;
}

#[tokio::test]
async fn a_slack_and_email_route_delivers_to_both_before_deleting() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let alarm = harness::unique("billing-cpu");
    let arn = put_alarm(&aws, &alarm).await;
    let sender = verified_sender(&aws).await;
    let prefix = format!("[{}]", harness::unique("both"));
    let route = Route::new(
        json!({
            "sources": [{"topicArn": topic_arn}],
            "slack": {"webhookSecretRef": {"name": "slack", "key": "webhook"}},
            "email": {"from": sender, "to": ["billing@example.com"], "subjectPrefix": prefix},
        }),
        json!({"webhook": recorder.webhook_url("both")}),
        &plumbing,
    )
    .await;

    publish_alarm(&aws, &topic_arn, &alarm, &arn).await;
    let mut consumer = route.consumer(&aws, slack_client(&recorder));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.delivered >= 1).await;
    assert_eq!((report.posts, report.emails, report.deleted), (1, 1, 1));
    let posts = recorder.delivered("/webhook/both");
    assert_eq!(posts.len(), 1);
    assert!(posts[0].all_text().contains(&alarm));
    let emails = emails_with_prefix(&prefix).await;
    assert_eq!(emails.len(), 1);
    assert!(emails[0]["subject"].as_str().unwrap().contains(&alarm));
}

#[tokio::test]
async fn an_unverified_sender_keeps_the_message_in_the_queue() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let alarm = harness::unique("unverified-cpu");
    let arn = put_alarm(&aws, &alarm).await;
    let prefix = format!("[{}]", harness::unique("unverified"));
    let route = Route::new(
        json!({
            "sources": [{"topicArn": topic_arn}],
            "email": {
                "from": format!("{}@nobody.example.com", harness::unique("never-verified")),
                "to": ["oncall@example.com"],
                "subjectPrefix": prefix,
            },
        }),
        json!({}),
        &plumbing,
    )
    .await;

    publish_alarm(&aws, &topic_arn, &alarm, &arn).await;
    let mut consumer = route.consumer(&aws, slack_client(&recorder));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.received >= 1).await;
    assert_eq!(
        (
            report.emails,
            report.delivered,
            report.deleted,
            report.failed,
            report.rejected
        ),
        (0, 0, 0, 1, 1),
        "SES refused: nothing deleted, the refusal is counted"
    );
    assert!(emails_with_prefix(&prefix).await.is_empty());
    let (visible, in_flight) = queue_counts(&aws, &plumbing.queue_url).await;
    assert_eq!(visible + in_flight, 1, "the message stays queued");
}

#[tokio::test]
async fn the_consumer_serves_health_readiness_and_metrics() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let (spec, secret) = webhook_spec(&recorder, &topic_arn, "http");
    let route = Route::new(spec, secret, &plumbing).await;
    // As before the controller made the queue: the route exists, its status has no queue URL.
    let current: AlertRoute = route
        .cluster
        .get(&route.namespace, &route.name)
        .await
        .unwrap()
        .unwrap();
    route
        .cluster
        .patch_status(&current, json!({"queueUrl": null}))
        .await
        .expect("status patch");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let consumer = Consumer::new(
        route.cluster.clone(),
        aws.clone(),
        slack_client(&recorder),
        route.reference(),
        ConsumerOptions {
            error_backoff_max: Duration::from_secs(1),
            ..test_options()
        },
    )
    .with_signer(signer());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(alertops::consume::run_with_telemetry(
        consumer,
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::new();
    let status = |path: &'static str| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move { http.get(url).send().await.map(|r| r.status().as_u16()) }
    };
    // The server comes up with the task; wait for it, then it must say "not ready".
    let deadline = Instant::now() + Duration::from_secs(10);
    while status("/healthz").await.ok() != Some(200) {
        assert!(Instant::now() < deadline, "/healthz never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status("/readyz").await.unwrap(),
        503,
        "no queue yet: not ready"
    );

    // The controller records the queue: the consumer reaches it and becomes ready.
    route
        .cluster
        .patch_status(&current, json!({"queueUrl": plumbing.queue_url}))
        .await
        .expect("status patch");
    let deadline = Instant::now() + Duration::from_secs(15);
    while status("/readyz").await.unwrap() != 200 {
        assert!(Instant::now() < deadline, "/readyz never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    publish(&aws, &topic_arn, None, "disk almost full").await;
    recorder
        .wait_until(Duration::from_secs(20), |r| !r.is_empty())
        .await;
    let route_label = format!("route=\"{}/{}\"", route.namespace, route.name);
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let body = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if body.contains(&format!(
            "alertops_consumer_alerts_delivered_total{{{route_label}}} 1"
        )) {
            break body;
        }
        assert!(Instant::now() < deadline, "delivery never counted: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        body.contains(&format!(
            "alertops_consumer_batch_errors_total{{{route_label},category=\"queue_not_ready\"}}"
        )),
        "{body}"
    );
    assert!(
        body.contains("alertops_aws_calls_total{service=\"SQS\",operation=\"ReceiveMessage\",outcome=\"success\"}"),
        "{body}"
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops on shutdown")
        .expect("no panic")
        .expect("no error");
}

// ---------------------------------------------------------------------------------------------
// Never lose, never double (issue 11)

/// Item 2: Slack accepted the alert and SES refused the email. The retry sends the email only;
/// Slack, which already has the alert, is not posted again.
#[tokio::test]
async fn slack_accepted_and_email_failed_retries_only_the_email() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 10).await;
    let alarm = harness::unique("partial-cpu");
    let arn = put_alarm(&aws, &alarm).await;
    // Not verified yet: SES refuses until the test verifies it.
    let sender = format!("{}@alerts.example.com", harness::unique("late"));
    let prefix = format!("[{}]", harness::unique("partial"));
    let route = Route::new(
        json!({
            "sources": [{"topicArn": topic_arn}],
            "slack": {"webhookSecretRef": {"name": "slack", "key": "webhook"}},
            "email": {"from": sender, "to": ["oncall@example.com"], "subjectPrefix": prefix},
        }),
        json!({"webhook": recorder.webhook_url("partial")}),
        &plumbing,
    )
    .await;

    publish_alarm(&aws, &topic_arn, &alarm, &arn).await;
    let mut consumer = route.consumer(&aws, slack_client(&recorder));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.received >= 3).await;
    assert_eq!(
        (report.emails, report.deleted),
        (0, 0),
        "SES refused every time"
    );
    assert_eq!(
        recorder.delivered("/webhook/partial").len(),
        1,
        "Slack accepted the alert on the first receive and is not posted on the retries"
    );

    aws.ses
        .create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .expect("CreateEmailIdentity");
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.deleted >= 1).await;
    assert_eq!((report.emails, report.posts, report.delivered), (1, 0, 1));
    assert_eq!(recorder.delivered("/webhook/partial").len(), 1);
    assert_eq!(emails_with_prefix(&prefix).await.len(), 1);
    await_queue(&aws, &plumbing.queue_url, Duration::from_secs(10), |c| {
        c == (0, 0)
    })
    .await;
}

/// Item 3: one delivery outlasts the queue's visibility timeout (Slack asks to wait longer than
/// it). A second replica polling the same queue must not receive the message meanwhile.
#[tokio::test]
async fn a_delivery_longer_than_the_visibility_timeout_stays_with_its_replica() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 2, 5).await;
    let (spec, secret) = webhook_spec(&recorder, &topic_arn, "slow");
    let route = Route::new(spec, secret, &plumbing).await;
    // Three times the visibility timeout.
    recorder.script([Scripted::rate_limited(6)]);

    publish(&aws, &topic_arn, None, "slow-delivery: replication stalled").await;
    let replicas: Vec<Running> = (0..2)
        .map(|_| Running::spawn(route.consumer(&aws, slack_client(&recorder))))
        .collect();
    recorder
        .wait_until(Duration::from_secs(30), |r| {
            r.iter()
                .any(|r| r.path == "/webhook/slow" && r.status == 200)
        })
        .await;
    await_queue(&aws, &plumbing.queue_url, Duration::from_secs(15), |c| {
        c == (0, 0)
    })
    .await;
    for replica in replicas {
        replica.stop().await;
    }
    let statuses: Vec<u16> = recorder
        .requests()
        .iter()
        .filter(|r| r.path == "/webhook/slow")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![429, 200], "one replica, one delivery");
}

/// An AWS endpoint that denies every call, as AWS does for a role without the permission:
/// JSON-protocol services (EMR) get `AccessDeniedException`, query-protocol ones (CloudWatch)
/// `AccessDenied`.
pub(crate) async fn denying_aws() -> AwsClients {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(|headers: HeaderMap| async move {
        if headers.contains_key("x-amz-target") {
            (
                StatusCode::BAD_REQUEST,
                [
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amzn-errortype", "AccessDeniedException"),
                ],
                r#"{"__type":"AccessDeniedException","message":"not authorized to perform: elasticmapreduce:DescribeCluster"}"#,
            )
                .into_response()
        } else {
            (
                StatusCode::FORBIDDEN,
                [("content-type", "text/xml")],
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform: cloudwatch:ListTagsForResource</Message></Error><RequestId>r-1</RequestId></ErrorResponse>",
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://{address}"))
        .region(aws_sdk_sqs::config::Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    AwsClients::from_sdk_config(&config, harness::test_settings())
}

/// Item 4: enrichment denied for good (the role lacks the permission) does not hold the alert
/// back: it is delivered without the facts, and the post says which are missing and why.
#[tokio::test]
async fn a_denied_enrichment_delivers_without_the_facts_and_says_so() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let (mut spec, secret) = webhook_spec(&recorder, &topic_arn, "denied");
    // One alert per message: a single-alert message shows the alert's details.
    spec["grouping"] = json!({"maxAlertsPerMessage": 1});
    let route = Route::new(spec, secret, &plumbing).await;

    publish(
        &aws,
        &topic_arn,
        None,
        &emr_failure_event("j-DENIED", "etl", "bootstrap failed"),
    )
    .await;
    let alarm = harness::unique("denied-cpu");
    let arn = format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}");
    publish_alarm(&aws, &topic_arn, &alarm, &arn).await;
    let mut consumer = route
        .consumer(&aws, slack_client(&recorder))
        .with_enricher(Arc::new(Enricher::new(
            denying_aws().await,
            Duration::from_secs(60),
        )));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.deleted >= 2).await;
    assert_eq!((report.delivered, report.failed), (2, 0));
    let text = all_text(&recorder.delivered("/webhook/denied"));
    assert!(text.contains("j-DENIED") && text.contains(&alarm), "{text}");
    assert!(
        text.contains("DescribeCluster") && text.contains("ListTagsForResource"),
        "the post names what could not be read: {text}"
    );
    assert!(text.contains("AccessDenied"), "and why: {text}");
    assert_eq!(queue_counts(&aws, &plumbing.queue_url).await, (0, 0));
}

/// Item 6: two replicas share a bot-token route's queue (and its message index, through an API
/// server whose round trips let them interleave). 200 alarms fire, then all resolve: every OK
/// updates the message that shows its own alarm, whichever replica posted it.
#[tokio::test]
async fn two_replicas_and_200_alarms_every_ok_updates_its_own_message() {
    const ALARMS: usize = 200;
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let route = Route::new_in(
        MemoryCluster::interleaving(),
        json!({
            "sources": [{"topicArn": topic_arn}],
            "slack": {"botTokenSecretRef": {"name": "slack", "key": "token"}, "channel": "C0REPLICAS"},
            "grouping": {"maxAlertsPerMessage": 1, "groupWaitSeconds": 0},
        }),
        json!({"token": "xoxb-test-token"}),
        &plumbing,
    )
    .await;
    let prefix = harness::unique("replica-alarm");
    let alarms: Vec<String> = (0..ALARMS).map(|i| format!("{prefix}-{i:03}")).collect();
    let notify = |alarm: &str, state: &str, old: &str| {
        let arn = format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}");
        alarm_notification(
            alarm,
            &arn,
            state,
            old,
            "threshold crossed",
            "2024-05-01T10:00:00.000+0000",
        )
    };

    // Slack's pacing is not what this test measures.
    let fast_slack = || {
        Arc::new(SlackClient::new(SlackSettings {
            api_base: recorder.api_base(),
            min_post_interval: Duration::ZERO,
            initial_backoff: Duration::from_millis(100),
            ..SlackSettings::default()
        }))
    };
    let replicas: Vec<Running> = (0..2)
        .map(|_| Running::spawn(route.consumer(&aws, fast_slack())))
        .collect();
    let calls = |method: &str| {
        recorder
            .requests()
            .into_iter()
            .filter(|r| r.method() == Some(method))
            .collect::<Vec<_>>()
    };

    for alarm in &alarms {
        publish(&aws, &topic_arn, None, &notify(alarm, "ALARM", "OK")).await;
    }
    recorder
        .wait_until(Duration::from_secs(120), |r| {
            r.iter()
                .filter(|r| r.method() == Some("chat.postMessage"))
                .count()
                >= ALARMS
        })
        .await;
    let map_name = config_map_name(&route.name);
    route
        .cluster
        .wait_until(Duration::from_secs(30), |c| {
            c.object::<ConfigMap>(&route.namespace, &map_name)
                .ok()
                .flatten()
                .and_then(|m| m.data)
                .is_some_and(|d| d.len() == ALARMS)
        })
        .await
        .expect("every post is recorded in the message index");

    for alarm in &alarms {
        publish(&aws, &topic_arn, None, &notify(alarm, "OK", "ALARM")).await;
    }
    recorder
        .wait_until(Duration::from_secs(120), |r| {
            r.iter()
                .filter(|r| r.method() == Some("chat.update"))
                .count()
                >= ALARMS
        })
        .await;
    await_queue(&aws, &plumbing.queue_url, Duration::from_secs(30), |c| {
        c == (0, 0)
    })
    .await;
    for replica in replicas {
        replica.stop().await;
    }

    // The stand-in numbers posts in arrival order: the n-th post got ts 1700000000.n.
    let posts = calls("chat.postMessage");
    assert_eq!(posts.len(), ALARMS, "one post per alarm, none for an OK");
    let posted_ts = |alarm: &str| {
        let n = posts
            .iter()
            .position(|p| p.all_text().contains(alarm))
            .unwrap_or_else(|| panic!("{alarm} was never posted"));
        format!("1700000000.{:06}", n + 1)
    };
    let updates = calls("chat.update");
    assert_eq!(updates.len(), ALARMS, "one update per OK");
    for alarm in &alarms {
        let update = updates
            .iter()
            .find(|u| u.all_text().contains(alarm.as_str()))
            .unwrap_or_else(|| panic!("the OK of {alarm} updated no message"));
        assert_eq!(
            update.body["ts"].as_str(),
            Some(posted_ts(alarm).as_str()),
            "the OK of {alarm} updated another alarm's message"
        );
    }
}

/// The consumer reports how many messages wait in its queue and its dead-letter queue, so the
/// operator's alerts see a dead-letter queue filling up.
#[tokio::test]
async fn the_consumer_reports_the_depth_of_its_queue_and_dead_letter_queue() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 2).await;
    for body in ["dead 1", "dead 2", "dead 3"] {
        aws.sqs
            .send_message()
            .queue_url(&plumbing.dlq_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let (spec, secret) = webhook_spec(&recorder, &topic_arn, "depth");
    let route = Route::new(spec, secret, &plumbing).await;
    let slack = Arc::new(SlackClient::new(SlackSettings {
        api_base: recorder.api_base(),
        ..SlackSettings::default()
    }));
    let metrics = RegisteredMetrics::new();
    let consumer = route
        .consumer(&aws, slack)
        .with_metrics(metrics.metrics.clone());
    let task = Running::spawn(consumer);
    let label = format!("route=\"{}/{}\"", route.namespace, route.name);
    let dead_letter = format!("consumer_queue_messages{{{label},queue=\"dead_letter\"}} 3");
    let main = format!("consumer_queue_messages{{{label},queue=\"main\"}} 0");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = metrics.text();
        let lines: Vec<&str> = text.lines().collect();
        if lines.contains(&dead_letter.as_str()) && lines.contains(&main.as_str()) {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no depth gauges after 30 s:\n{text}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    task.stop().await;
    assert!(
        text.contains("# TYPE consumer_queue_messages gauge"),
        "{text}"
    );
}

#[tokio::test]
async fn mentions_injected_through_aws_text_go_out_escaped() {
    use alertops::slack::text::{INJECTIONS, live_injections};
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let (spec, secret) = webhook_spec(&recorder, &topic_arn, "injected");
    let route = Route::new(spec, secret, &plumbing).await;
    let evil = INJECTIONS.join(" ");
    publish(
        &aws,
        &topic_arn,
        Some(&format!("Deploy {evil}")),
        &format!("failed {evil}"),
    )
    .await;

    let mut consumer = route.consumer(&aws, slack_client(&recorder));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.delivered >= 1).await;
    assert_eq!(report.delivered, 1);
    let posts = recorder.delivered("/webhook/injected");
    let body = serde_json::to_string(&posts[0].body).unwrap();
    assert!(
        body.contains("&lt;!channel&gt;"),
        "the text arrived: {body}"
    );
    assert_eq!(live_injections(&body), Vec::<&str>::new(), "{body}");
}

/// A clock the test moves by hand.
fn manual_clock(
    start: chrono::DateTime<chrono::Utc>,
) -> (
    alertops::consume::Clock,
    Arc<std::sync::Mutex<chrono::DateTime<chrono::Utc>>>,
) {
    let now = Arc::new(std::sync::Mutex::new(start));
    let read = now.clone();
    (Arc::new(move || *read.lock().unwrap()), now)
}

/// Reminders of the posts the stand-in received: thread replies also sent to the channel.
fn reminders(recorder: &SlackRecorder) -> Vec<RecordedRequest> {
    recorder
        .delivered("/api/chat.postMessage")
        .into_iter()
        .filter(|r| r.body["reply_broadcast"] == true)
        .collect()
}

/// Issue 14, reminders: an alarm that stays in ALARM gets a reminder every repeat interval, a
/// thread reply (also in the channel) that links to the first post and says how long it has
/// been firing; exactly one per interval with two replicas and after a restart; none once the
/// OK event resolved it.
#[tokio::test]
async fn a_firing_alarm_is_reminded_once_per_interval_until_it_resolves() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let route = Route::new_in(
        MemoryCluster::interleaving(),
        json!({
            "sources": [{"topicArn": topic_arn}],
            "slack": {"botTokenSecretRef": {"name": "slack", "key": "token"}, "channel": "C0PAYMENTS"},
            "grouping": {"repeatIntervalMinutes": 60},
        }),
        json!({"token": "xoxb-test-token"}),
        &plumbing,
    )
    .await;
    let alarm = harness::unique("payments-api-cpu");
    let arn = format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}");
    let fired_at = chrono::DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
        .unwrap()
        .to_utc();
    let (clock, now) = manual_clock(fired_at);
    let set_minutes =
        |minutes: i64| *now.lock().unwrap() = fired_at + chrono::Duration::minutes(minutes);
    let slack = slack_client(&recorder);
    let mut a = route
        .consumer(&aws, slack.clone())
        .with_clock(clock.clone());
    let mut b = route
        .consumer(&aws, slack.clone())
        .with_clock(clock.clone());

    publish(
        &aws,
        &topic_arn,
        None,
        &alarm_notification(
            &alarm,
            &arn,
            "ALARM",
            "OK",
            "Threshold Crossed",
            "2024-05-01T10:00:00.000+0000",
        ),
    )
    .await;
    run_until(&mut a, Duration::from_secs(30), |r| r.delivered >= 1).await;
    let first = recorder.delivered("/api/chat.postMessage");
    assert_eq!(first.len(), 1);
    let first_ts = first[0].body["ts"].as_str().map(str::to_string);
    assert!(first_ts.is_none(), "the first post is no reply");

    set_minutes(59);
    let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
    assert_eq!(
        ra.unwrap().reminders + rb.unwrap().reminders,
        0,
        "not due yet"
    );

    set_minutes(61);
    let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
    assert_eq!(
        ra.unwrap().reminders + rb.unwrap().reminders,
        1,
        "two replicas, one reminder"
    );
    let sent = reminders(&recorder);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].body["thread_ts"], "1700000000.000001",
        "in the first post's thread"
    );
    let text = sent[0].body["text"].as_str().unwrap();
    assert!(text.contains("Still firing* after 1 h 1 min"), "{text}");
    assert!(
        text.contains(
            "<https://stand-in.slack.com/archives/C0PAYMENTS/p1700000000000001|first post>"
        ),
        "links back to the first post: {text}"
    );
    assert!(text.contains(&alarm), "{text}");

    // A restarted replica knows the reminder was sent: the next one is an interval later.
    drop(a);
    let mut restarted = route
        .consumer(&aws, slack.clone())
        .with_clock(clock.clone());
    set_minutes(100);
    assert_eq!(restarted.run_once().await.unwrap().reminders, 0);
    set_minutes(122);
    let (ra, rb) = tokio::join!(restarted.run_once(), b.run_once());
    assert_eq!(ra.unwrap().reminders + rb.unwrap().reminders, 1);
    assert_eq!(reminders(&recorder).len(), 2);

    // The OK event resolves it: its message is updated and reminders stop.
    publish(
        &aws,
        &topic_arn,
        None,
        &alarm_notification(
            &alarm,
            &arn,
            "OK",
            "ALARM",
            "Threshold no longer crossed",
            "2024-05-01T12:05:00.000+0000",
        ),
    )
    .await;
    set_minutes(125);
    run_until(&mut restarted, Duration::from_secs(30), |r| {
        r.delivered >= 1
    })
    .await;
    assert_eq!(recorder.delivered("/api/chat.update").len(), 1);
    set_minutes(600);
    let (ra, rb) = tokio::join!(restarted.run_once(), b.run_once());
    assert_eq!(
        ra.unwrap().reminders + rb.unwrap().reminders,
        0,
        "resolved: no reminder"
    );
    assert_eq!(reminders(&recorder).len(), 2);
}

/// Issue 14, snooze through the consumer: while a snooze runs, the alarm firing again is
/// counted on the snooze and deleted from the queue without a post (its resolution still
/// updates the message); when the snooze ends, exactly one of two replicas posts the count in
/// the alert's thread.
#[tokio::test]
async fn a_snoozed_alarm_is_counted_not_posted_and_the_end_reports_the_count_once() {
    use alertops::slack::snooze::{self, SnoozeChoice, SnoozeRequest};
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let route = Route::new_in(
        MemoryCluster::interleaving(),
        json!({
            "sources": [{"topicArn": topic_arn}],
            "slack": {"botTokenSecretRef": {"name": "slack", "key": "token"}, "channel": "C0PAYMENTS"},
            "actions": {"snooze": {}},
        }),
        json!({"token": "xoxb-test-token"}),
        &plumbing,
    )
    .await;
    let alarm = harness::unique("flapping-cpu");
    let arn = format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}");
    let start = chrono::DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
        .unwrap()
        .to_utc();
    let (clock, now) = manual_clock(start);
    let slack = slack_client(&recorder);
    let mut a = route
        .consumer(&aws, slack.clone())
        .with_clock(clock.clone());
    let mut b = route
        .consumer(&aws, slack.clone())
        .with_clock(clock.clone());
    let notify = |state: &str, old: &str, at: &str| {
        alarm_notification(&alarm, &arn, state, old, "Threshold Crossed", at)
    };

    publish(
        &aws,
        &topic_arn,
        None,
        &notify("ALARM", "OK", "2024-05-01T10:00:00.000+0000"),
    )
    .await;
    run_until(&mut a, Duration::from_secs(30), |r| r.delivered >= 1).await;
    let first = recorder.delivered("/api/chat.postMessage");
    assert_eq!(first.len(), 1);
    let buttons = buttons(&first[0].body);
    assert!(
        buttons.iter().any(|b| b["action_id"]
            .as_str()
            .unwrap()
            .starts_with("alertops_snooze:4h:")),
        "the post offers Snooze: {buttons:?}"
    );

    // Someone snoozes it for an hour from the first post (as the interaction server records it).
    let route_object: AlertRoute = route
        .cluster
        .get(&route.namespace, &route.name)
        .await
        .unwrap()
        .unwrap();
    let fingerprint =
        alertops::alert::decode_sqs_body(&notify("ALARM", "OK", "2024-05-01T10:00:00.000+0000"))
            .fingerprint;
    let request = SnoozeRequest {
        fingerprint,
        choice: SnoozeChoice::OneHour,
        by: "U0ALICE".into(),
        by_name: Some("alice".into()),
        reason: Some(first[0].body["text"].as_str().unwrap().to_string()),
        message: Some(alertops::slack::PostedMessage {
            channel: "C0PAYMENTS".into(),
            ts: "1700000000.000001".into(),
        }),
        now: start + chrono::Duration::minutes(5),
    };
    snooze::record(&route.cluster, &route_object, &request, chrono_tz::Tz::UTC)
        .await
        .unwrap();

    // It flaps: OK (updates the message), then ALARM again (would be a new post).
    *now.lock().unwrap() = start + chrono::Duration::minutes(10);
    publish(
        &aws,
        &topic_arn,
        None,
        &notify("OK", "ALARM", "2024-05-01T10:10:00.000+0000"),
    )
    .await;
    let report = run_until(&mut a, Duration::from_secs(30), |r| r.delivered >= 1).await;
    assert_eq!(
        (report.updates, report.suppressed),
        (1, 0),
        "a resolution is not held back"
    );
    *now.lock().unwrap() = start + chrono::Duration::minutes(20);
    publish(
        &aws,
        &topic_arn,
        None,
        &notify("ALARM", "OK", "2024-05-01T10:20:00.000+0000"),
    )
    .await;
    let report = run_until(&mut b, Duration::from_secs(30), |r| r.delivered >= 1).await;
    assert_eq!(
        (report.posts, report.suppressed, report.deleted),
        (0, 1, 1),
        "{report:?}"
    );
    assert_eq!(
        recorder.delivered("/api/chat.postMessage").len(),
        1,
        "nothing posted"
    );
    await_queue(&aws, &plumbing.queue_url, Duration::from_secs(10), |c| {
        c == (0, 0)
    })
    .await;
    let recorded = snooze::list(&route.cluster, &route.namespace, &route.name)
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].suppressed, recorded[0].by.as_str()),
        (1, "U0ALICE")
    );

    // The hour is up: of two replicas, one announces the end with the count, once.
    *now.lock().unwrap() = start + chrono::Duration::minutes(66);
    let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
    assert_eq!(ra.unwrap().snoozes_ended + rb.unwrap().snoozes_ended, 1);
    let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
    assert_eq!(ra.unwrap().snoozes_ended + rb.unwrap().snoozes_ended, 0);
    let ends: Vec<RecordedRequest> = recorder
        .delivered("/api/chat.postMessage")
        .into_iter()
        .filter(|r| r.body["thread_ts"] == "1700000000.000001")
        .collect();
    assert_eq!(ends.len(), 1);
    assert_eq!(
        ends[0].body["text"],
        ":alarm_clock: The snooze by <@U0ALICE> ended: 1 alert was suppressed."
    );

    // Past the snooze, the alarm firing again is posted.
    publish(
        &aws,
        &topic_arn,
        None,
        &notify("OK", "ALARM", "2024-05-01T11:10:00.000+0000"),
    )
    .await;
    run_until(&mut a, Duration::from_secs(30), |r| r.delivered >= 1).await;
    publish(
        &aws,
        &topic_arn,
        None,
        &notify("ALARM", "OK", "2024-05-01T11:20:00.000+0000"),
    )
    .await;
    let report = run_until(&mut a, Duration::from_secs(30), |r| r.delivered >= 1).await;
    assert_eq!((report.posts, report.suppressed), (1, 0));
}

/// A MemoryCluster whose writes to snooze ConfigMaps fail while `failing` is set, as an API
/// server that is down would.
#[derive(Clone)]
struct SnoozeWritesFail {
    inner: MemoryCluster,
    failing: Arc<std::sync::atomic::AtomicBool>,
}

impl ClusterApi for SnoozeWritesFail {
    async fn get<K: alertops::k8s::NamespacedResource>(
        &self,
        namespace: &str,
        name: &str,
    ) -> alertops::k8s::Result<Option<K>> {
        self.inner.get(namespace, name).await
    }
    async fn list<K: alertops::k8s::NamespacedResource>(
        &self,
        namespace: &str,
    ) -> alertops::k8s::Result<Vec<K>> {
        self.inner.list(namespace).await
    }
    async fn apply_status<K: alertops::k8s::NamespacedResource>(
        &self,
        obj: &K,
        writer: alertops::k8s::StatusWriter,
        status: Value,
    ) -> alertops::k8s::Result<()> {
        self.inner.apply_status(obj, writer, status).await
    }
    async fn add_finalizer<K: alertops::k8s::NamespacedResource>(
        &self,
        obj: &K,
        finalizer: &str,
    ) -> alertops::k8s::Result<K> {
        self.inner.add_finalizer(obj, finalizer).await
    }
    async fn remove_finalizer<K: alertops::k8s::NamespacedResource>(
        &self,
        obj: &K,
        finalizer: &str,
    ) -> alertops::k8s::Result<()> {
        self.inner.remove_finalizer(obj, finalizer).await
    }
    async fn apply<T: alertops::k8s::NamespacedResource>(
        &self,
        obj: &T,
    ) -> alertops::k8s::Result<T> {
        self.inner.apply(obj).await
    }
    async fn merge_patch<T: alertops::k8s::NamespacedResource>(
        &self,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> alertops::k8s::Result<Option<T>> {
        if name.starts_with("alertops-snooze-")
            && self.failing.load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(alertops::k8s::ClusterError::Api {
                code: 503,
                reason: "ServiceUnavailable".into(),
                message: "the API server is down".into(),
            });
        }
        self.inner.merge_patch(namespace, name, patch).await
    }
    async fn create<T: alertops::k8s::NamespacedResource>(
        &self,
        obj: &T,
    ) -> alertops::k8s::Result<alertops::k8s::Created<T>> {
        self.inner.create(obj).await
    }
    async fn delete<T: alertops::k8s::NamespacedResource>(
        &self,
        namespace: &str,
        name: &str,
    ) -> alertops::k8s::Result<bool> {
        self.inner.delete::<T>(namespace, name).await
    }
    async fn secret_value(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> alertops::k8s::Result<Option<String>> {
        self.inner.secret_value(namespace, name, key).await
    }
    async fn publish_event<K: alertops::k8s::NamespacedResource>(
        &self,
        obj: &K,
        event: alertops::k8s::EventInfo,
    ) -> alertops::k8s::Result<()> {
        self.inner.publish_event(obj, event).await
    }
}

/// Issue 14: a snooze never drops an alert silently. While its count cannot be written, the
/// snoozed alert's SQS message stays in the queue (failed, `snooze_record`), neither posted nor
/// deleted; once the write works, it is counted and only then deleted.
#[tokio::test]
async fn a_snoozed_alert_whose_count_cannot_be_written_stays_in_the_queue() {
    use alertops::slack::snooze::{self, SnoozeChoice, SnoozeRequest};
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let route = Route::new(
        json!({
            "sources": [{"topicArn": topic_arn}],
            "slack": {"botTokenSecretRef": {"name": "slack", "key": "token"}, "channel": "C0PAYMENTS"},
            "actions": {"snooze": {}},
        }),
        json!({"token": "xoxb-test-token"}),
        &plumbing,
    )
    .await;
    let alarm = harness::unique("unrecordable");
    let arn = format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}");
    let notification = alarm_notification(
        &alarm,
        &arn,
        "ALARM",
        "OK",
        "Threshold Crossed",
        "2024-05-01T10:00:00.000+0000",
    );
    let route_object: AlertRoute = route
        .cluster
        .get(&route.namespace, &route.name)
        .await
        .unwrap()
        .unwrap();
    let request = SnoozeRequest {
        fingerprint: alertops::alert::decode_sqs_body(&notification).fingerprint,
        choice: SnoozeChoice::FourHours,
        by: "U0ALICE".into(),
        by_name: None,
        reason: None,
        message: None,
        now: chrono::Utc::now(),
    };
    snooze::record(&route.cluster, &route_object, &request, chrono_tz::Tz::UTC)
        .await
        .unwrap();
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let cluster = SnoozeWritesFail {
        inner: route.cluster.clone(),
        failing: failing.clone(),
    };
    let mut consumer = Consumer::new(
        cluster,
        aws.clone(),
        slack_client(&recorder),
        route.reference(),
        test_options(),
    );

    publish(&aws, &topic_arn, None, &notification).await;
    let mut total = BatchReport::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while total.received == 0 {
        total += consumer.run_once().await.expect("batch runs");
        assert!(Instant::now() < deadline, "nothing received");
    }
    assert_eq!(
        (total.failed, total.suppressed, total.deleted, total.posts),
        (1, 0, 0, 0),
        "{total:?}"
    );
    let (visible, in_flight) = queue_counts(&aws, &plumbing.queue_url).await;
    assert_eq!(visible + in_flight, 1, "still queued");

    failing.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut total = BatchReport::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while total.delivered == 0 {
        total += consumer.run_once().await.expect("batch runs");
        assert!(
            Instant::now() < deadline,
            "not delivered after the write works: {total:?}"
        );
    }
    assert_eq!(
        (total.suppressed, total.deleted, total.posts),
        (1, 1, 0),
        "{total:?}"
    );
    let recorded = snooze::list(&route.cluster, &route.namespace, &route.name)
        .await
        .unwrap();
    assert_eq!(recorded[0].suppressed, 1);
    assert!(
        recorder.delivered("/api/chat.postMessage").is_empty(),
        "never posted"
    );
}

/// Publishes `message` with the SNS message attribute `correlation_id`.
async fn publish_correlated(
    aws: &AwsClients,
    topic_arn: &str,
    correlation_id: &str,
    message: &str,
) {
    use aws_sdk_sns::types::MessageAttributeValue;
    let value = MessageAttributeValue::builder()
        .data_type("String")
        .string_value(correlation_id)
        .build()
        .expect("attribute value");
    aws.sns
        .publish()
        .topic_arn(topic_arn)
        .message(message)
        .message_attributes("correlation_id", value)
        .send()
        .await
        .expect("Publish with attributes");
}

#[tokio::test]
async fn alerts_are_posted_together_per_correlation_id_and_apart_across_ids() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 60, 5).await;
    let (mut spec, secret) = webhook_spec(&recorder, &topic_arn, "correlated");
    spec["grouping"] = json!({"groupWaitSeconds": 2, "byAttributes": ["correlation_id"]});
    let route = Route::new(spec, secret, &plumbing).await;

    // Two alerts of one request (its id carries markup), one of another.
    let shared = "req-<script>alert(1)</script>";
    publish_correlated(&aws, &topic_arn, shared, "checkout-timeout: upstream slow").await;
    publish_correlated(&aws, &topic_arn, shared, "payment-retry: card service 503").await;
    publish_correlated(&aws, &topic_arn, "req-other", "search-error: index missing").await;

    let mut consumer = route.consumer(&aws, slack_client(&recorder));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.delivered >= 3).await;
    assert_eq!(report.delivered, 3);
    assert_eq!(
        report.posts, 2,
        "one message per correlation id: {report:?}"
    );
    await_queue(&aws, &plumbing.queue_url, Duration::from_secs(10), |c| {
        c == (0, 0)
    })
    .await;

    let posts = recorder.delivered("/webhook/correlated");
    assert_eq!(posts.len(), 2);
    let (together, apart): (Vec<_>, Vec<_>) = posts
        .iter()
        .partition(|p| p.all_text().contains("checkout-timeout"));
    let together = serde_json::to_string(&together[0].body).unwrap();
    let apart = serde_json::to_string(&apart[0].body).unwrap();
    assert!(
        together.contains("payment-retry"),
        "same id, same message: {together}"
    );
    assert!(
        together.contains("*Grouped by* correlation_id req-&lt;script&gt;alert(1)&lt;/script&gt;"),
        "headed by the escaped id: {together}"
    );
    assert!(!together.contains("<script>"), "{together}");
    assert!(!together.contains("search-error"), "{together}");
    assert!(
        apart.contains("search-error") && apart.contains("req-other"),
        "{apart}"
    );
}
