//! The digest workload against the AWS emulator: a DigestSchedule's queue (made here with the SDK,
//! as the controller would) is drained into one email read back from the emulator's sent mail.

use std::time::Duration;

use alertops::aws::{AwsClients, AwsResultExt};
use alertops::digest::{DigestError, SlackSummaryOutcome, run_digest};
use alertops::k8s::{ClusterApi, MemoryCluster};
use alertops::resources::DigestSchedule;
use alertops::slack::{SlackClient, SlackSettings};
use aws_sdk_emr::types::{JobFlowInstancesConfig, Tag};
use aws_sdk_sqs::types::QueueAttributeName;
use base64::Engine;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use crate::harness::slack::SlackRecorder;
use crate::harness::{aws_clients, sent_emails, unique};

const NAMESPACE: &str = "data";
const ACCOUNT: &str = "123456789012";
const BOOTSTRAP: &str = "BOOTSTRAP_FAILURE";
const VALIDATION: &str = "VALIDATION_ERROR";

/// A schedule's queue subscribed to a topic, a sender, and the DigestSchedule in a MemoryCluster
/// with `status.queueUrl` set.
struct Fixture {
    aws: AwsClients,
    cluster: MemoryCluster,
    slack: SlackClient,
    name: String,
    topic_arn: String,
    queue_url: String,
    sender: String,
    prefix: String,
}

struct Options {
    verified: bool,
    send_empty: bool,
    max_alerts: i32,
    extra_spec: Value,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            verified: true,
            send_empty: false,
            max_alerts: 10_000,
            extra_spec: json!({}),
        }
    }
}

async fn fixture(options: Options) -> Fixture {
    let aws = aws_clients().await;
    let name = unique("digest");
    let queue_url = aws
        .sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .aws("CreateQueue")
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let queue_arn = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .aws("GetQueueAttributes")
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap();
    let topic_arn = aws
        .sns
        .create_topic()
        .name(&name)
        .send()
        .await
        .aws("CreateTopic")
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    aws.sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .aws("Subscribe")
        .unwrap();
    let sender = format!("{}@example.com", unique("digest-sender"));
    if options.verified {
        verify(&aws, &sender).await;
    }
    let prefix = format!("[{}]", unique("digest-test"));
    let mut spec = json!({
        "schedule": "0 8,20 * * *",
        "timeZone": "America/Los_Angeles",
        "sources": [{"topicArn": topic_arn}],
        "email": {"from": sender, "to": ["oncall@example.com"], "subjectPrefix": prefix},
        "sendEmpty": options.send_empty,
        "maxAlertsPerRun": options.max_alerts,
    });
    if let (Value::Object(spec), Value::Object(extra)) = (&mut spec, options.extra_spec) {
        spec.extend(extra);
    }
    let cluster = MemoryCluster::new();
    cluster
        .apply_manifest(json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "DigestSchedule",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }))
        .unwrap();
    let schedule: DigestSchedule = cluster.object(NAMESPACE, &name).unwrap().unwrap();
    // What the controller writes; the run must carry it forward untouched.
    cluster
        .patch_status(
            &schedule,
            json!({"observedGeneration": 1, "queueUrl": queue_url, "queueArn": queue_arn,
                   "cronJob": format!("digest-{name}")}),
        )
        .await
        .unwrap();
    Fixture {
        aws,
        cluster,
        slack: SlackClient::new(SlackSettings::default()),
        name,
        topic_arn,
        queue_url,
        sender,
        prefix,
    }
}

async fn verify(aws: &AwsClients, sender: &str) {
    aws.ses
        .create_email_identity()
        .email_identity(sender)
        .send()
        .await
        .aws("CreateEmailIdentity")
        .unwrap();
}

impl Fixture {
    async fn run(&self) -> Result<alertops::digest::DigestReport, DigestError> {
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 15, 0, 0).unwrap();
        run_digest(
            &self.cluster,
            &self.aws,
            &self.slack,
            NAMESPACE,
            &self.name,
            now,
        )
        .await
    }

    async fn publish(&self, message: &Value) {
        self.aws
            .sns
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message.to_string())
            .send()
            .await
            .aws("Publish")
            .unwrap();
    }

    /// (visible, in flight) messages of the queue.
    async fn queue_depth(&self) -> (i64, i64) {
        let output = self
            .aws
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .aws("GetQueueAttributes")
            .unwrap();
        let get = |name: QueueAttributeName| {
            output
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        (
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// Waits until SNS has delivered `count` messages to the queue.
    async fn await_queued(&self, count: i64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut poll = tokio::time::interval(Duration::from_millis(100));
        loop {
            poll.tick().await;
            let (visible, _) = self.queue_depth().await;
            if visible == count {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the queue holds {visible} messages, expected {count}"
            );
        }
    }

    /// Emails this fixture sent (its subject prefix is unique).
    async fn emails(&self) -> Vec<Value> {
        sent_emails()
            .await
            .into_iter()
            .filter(|m| {
                m["subject"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(&self.prefix))
            })
            .collect()
    }

    fn last_run(&self) -> Option<alertops::resources::digest_schedule::DigestRun> {
        let schedule: DigestSchedule = self.cluster.object(NAMESPACE, &self.name).unwrap().unwrap();
        schedule.status.and_then(|s| s.last_run)
    }

    /// Starts an EMR cluster in the emulator tagged with `team` and `feature`; returns its id.
    async fn emr_cluster(&self, team: &str, feature: &str) -> String {
        self.aws
            .emr
            .run_job_flow()
            .name(unique("etl"))
            .release_label("emr-6.15.0")
            .instances(
                JobFlowInstancesConfig::builder()
                    // A core node too: the emulator's state dump (`sent_emails`) fails on a
                    // cluster without one.
                    .instance_count(2)
                    .master_instance_type("m5.xlarge")
                    .slave_instance_type("m5.xlarge")
                    .keep_job_flow_alive_when_no_steps(true)
                    .build(),
            )
            .job_flow_role("EMR_EC2_DefaultRole")
            .service_role("EMR_DefaultRole")
            .tags(Tag::builder().key("Team").value(team).build())
            .tags(Tag::builder().key("Feature").value(feature).build())
            .send()
            .await
            .aws("RunJobFlow")
            .unwrap()
            .job_flow_id()
            .unwrap()
            .to_string()
    }
}

/// The EventBridge event EMR sends when a cluster fails.
fn emr_failed_event(cluster_id: &str, code: &str, message: &str, minute: u32) -> Value {
    json!({
        "version": "0", "id": unique("event"),
        "detail-type": "EMR Cluster State Change", "source": "aws.emr",
        "account": ACCOUNT, "time": format!("2024-05-01T10:{minute:02}:00Z"),
        "region": "us-east-1", "resources": [],
        "detail": {
            "severity": "CRITICAL",
            "stateChangeReason": json!({"code": code, "message": message}).to_string(),
            "name": "nightly etl", "clusterId": cluster_id,
            "state": "TERMINATED_WITH_ERRORS",
            "message": format!("Amazon EMR Cluster {cluster_id} (nightly etl) has terminated with errors with a reason of {code}."),
        }
    })
}

/// A CloudWatch alarm notification as CloudWatch publishes it to SNS.
fn alarm_notification(alarm: &str, minute: u32) -> Value {
    json!({
        "AlarmName": alarm, "AlarmDescription": "queue backlog",
        "AWSAccountId": ACCOUNT, "NewStateValue": "ALARM",
        "NewStateReason": format!("Threshold Crossed: 1 out of the last 1 datapoints [{}.0] was greater than the threshold (100.0).", 100 + minute),
        "StateChangeTime": format!("2024-05-01T11:{minute:02}:00.000+0000"),
        "Region": "US East (N. Virginia)",
        "AlarmArn": format!("arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{alarm}"),
        "OldStateValue": "OK",
        "Trigger": {"MetricName": "ApproximateNumberOfMessagesVisible", "Namespace": "AWS/SQS",
            "Statistic": "MAXIMUM", "Dimensions": [{"name": "QueueName", "value": "orders"}],
            "Period": 60, "EvaluationPeriods": 1,
            "ComparisonOperator": "GreaterThanThreshold", "Threshold": 100.0}
    })
}

fn bootstrap_reason(n: usize) -> String {
    format!(
        "On the master instance (i-0{n:016x}), bootstrap action 1 returned a non-zero return code"
    )
}

const VALIDATION_REASON: &str =
    "The requested instance type m5.xlarge is not supported in the requested Availability Zone.";

/// The text nodes of an HTML document, unescaped, in order: what a reader sees, cell by cell.
fn text_cells(html: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut rest = html;
    while let Some(end) = rest.find('<') {
        let text = rest[..end].trim();
        if !text.is_empty() {
            cells.push(
                text.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&#39;", "'")
                    .replace("&amp;", "&"),
            );
        }
        match rest[end..].find('>') {
            Some(close) => rest = &rest[end + close + 1..],
            None => break,
        }
    }
    cells
}

/// The cells that follow `label` in `cells`.
fn after<'a>(cells: &'a [String], label: &str) -> &'a [String] {
    let at = cells
        .iter()
        .position(|c| c == label)
        .unwrap_or_else(|| panic!("no cell {label:?} in {cells:?}"));
    &cells[at + 1..]
}

/// Publishes 60 EMR failures (teams alpha 30, beta 20, gamma 10; bootstrap 40 across the three
/// teams, validation 20 in alpha and beta)
/// and 5 notifications of one alarm tagged Team=beta.
async fn publish_mixed_failures(f: &Fixture) -> String {
    let alarm = unique("orders-backlog");
    f.aws
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm)
        .namespace("AWS/SQS")
        .metric_name("ApproximateNumberOfMessagesVisible")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Maximum)
        .period(60)
        .evaluation_periods(1)
        .threshold(100.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .tags(
            aws_sdk_cloudwatch::types::Tag::builder()
                .key("Team")
                .value("beta")
                .build(),
        )
        .send()
        .await
        .aws("PutMetricAlarm")
        .unwrap();

    let specs: Vec<(&str, &str, bool)> = (0..60)
        .map(|i| {
            let team = match i % 6 {
                0..=2 => "alpha",
                3 | 4 => "beta",
                _ => "gamma",
            };
            let feature = if i % 2 == 0 { "ingest" } else { "export" };
            (team, feature, i % 3 != 0)
        })
        .collect();
    use futures::StreamExt;
    let events: Vec<Value> = futures::stream::iter(specs.into_iter().enumerate())
        .map(|(i, (team, feature, bootstrap))| async move {
            let id = f.emr_cluster(team, feature).await;
            if bootstrap {
                emr_failed_event(&id, BOOTSTRAP, &bootstrap_reason(i), (i % 60) as u32)
            } else {
                emr_failed_event(&id, VALIDATION, VALIDATION_REASON, (i % 60) as u32)
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    for event in &events {
        f.publish(event).await;
    }
    for minute in 0..5 {
        f.publish(&alarm_notification(&alarm, minute)).await;
    }
    alarm
}

#[tokio::test]
async fn sixty_emr_failures_and_five_alarms_make_one_email_and_empty_the_queue() {
    let f = fixture(Options::default()).await;
    let alarm = publish_mixed_failures(&f).await;
    f.await_queued(65).await;

    let report = f.run().await.expect("the run succeeds");
    assert_eq!(report.received, 65);
    assert_eq!(report.run.alert_count, 65);
    assert!(report.run.sent);
    assert_eq!(report.deleted, 65);
    assert_eq!(report.deferred, 0);
    assert_eq!(report.slack, SlackSummaryOutcome::NotPosted);

    let emails = f.emails().await;
    assert_eq!(emails.len(), 1, "one email: {emails:?}");
    let email = &emails[0];
    assert_eq!(email["source"], f.sender.as_str());
    assert_eq!(
        Some(email["id"].as_str().unwrap()),
        report.run.message_id.as_deref()
    );
    let subject = email["subject"].as_str().unwrap();
    let top_reason = format!(
        "{BOOTSTRAP}: On the master instance (i-…), bootstrap action 1 returned a non-zero return code"
    );
    assert!(
        subject.contains(&format!("Alert digest {}: 65 alerts", f.name)),
        "{subject}"
    );
    assert!(
        subject.contains(&format!("top: {}", &top_reason[..40])),
        "{subject}"
    );

    let cells = text_cells(email["body"].as_str().unwrap());
    // Top reasons, most first, with their counts and teams.
    let reasons = after(&cells, "Top reasons");
    assert_eq!(&reasons[..3], ["Reason", "Alerts", "Teams"]);
    assert_eq!(
        &reasons[3..6],
        [top_reason.as_str(), "40", "alpha, beta, gamma"]
    );
    assert_eq!(
        &reasons[6..9],
        [
            format!("{VALIDATION}: {VALIDATION_REASON}").as_str(),
            "20",
            "alpha, beta"
        ]
    );
    assert_eq!(
        &reasons[9..12],
        [format!("Alarm {alarm} in ALARM").as_str(), "5", "beta"],
        "the alarm's Team tag was read by enrichment"
    );
    // Counts per team, busiest first.
    let teams = after(&cells, "By team");
    assert_eq!(&teams[3..5], ["alpha", "30"]);
    assert_eq!(&teams[6..8], ["beta", "25"]);
    assert_eq!(&teams[9..11], ["gamma", "10"]);
    let sections: Vec<&String> = cells.iter().filter(|c| c.starts_with("Team ")).collect();
    assert_eq!(
        sections,
        [
            "Team alpha: 30 alerts",
            "Team beta: 25 alerts",
            "Team gamma: 10 alerts"
        ]
    );
    // Within a team, groups by feature and reason carry their clusters, capped.
    let alpha = after(&cells, "Team alpha: 30 alerts");
    assert_eq!(
        &alpha[..6],
        [
            "Feature",
            "Reason",
            "Alerts",
            "First seen",
            "Last seen",
            "Clusters / alarms"
        ]
    );
    let alpha_counts: usize = alpha[6..]
        .chunks(6)
        .take_while(|row| !row[0].starts_with("Team "))
        .map(|row| row[2].parse::<usize>().unwrap())
        .sum();
    assert_eq!(alpha_counts, 30);
    assert!(
        alpha[11].ends_with("+5 more"),
        "10 clusters, 5 named: {}",
        alpha[11]
    );

    assert_eq!(
        f.queue_depth().await,
        (0, 0),
        "the queue is empty afterwards"
    );
    let last_run = f.last_run().expect("lastRun recorded");
    assert_eq!(last_run.alert_count, 65);
    assert!(last_run.sent);
    assert_eq!(last_run.message_id, report.run.message_id);
    let schedule: DigestSchedule = f.cluster.object(NAMESPACE, &f.name).unwrap().unwrap();
    let status = schedule.status.unwrap();
    assert_eq!(
        status.queue_url.as_deref(),
        Some(f.queue_url.as_str()),
        "the controller's fields are kept"
    );
    assert_eq!(status.cron_job, Some(format!("digest-{}", f.name)));
}

#[tokio::test]
async fn when_ses_refuses_nothing_is_deleted_and_the_next_run_sends_everything() {
    let f = fixture(Options {
        verified: false,
        ..Default::default()
    })
    .await;
    for i in 0..12 {
        let id = f.emr_cluster("alpha", "ingest").await;
        f.publish(&emr_failed_event(
            &id,
            BOOTSTRAP,
            &bootstrap_reason(i),
            i as u32,
        ))
        .await;
    }
    f.await_queued(12).await;

    let error = f
        .run()
        .await
        .expect_err("an unverified sender fails the run");
    assert!(
        matches!(error, DigestError::Send { received: 12, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("nothing was deleted"), "{error}");
    assert_eq!(
        f.queue_depth().await,
        (12, 0),
        "every message is back in the queue and visible"
    );
    assert!(f.emails().await.is_empty());
    assert_eq!(f.last_run(), None, "a failed run is not recorded as a run");

    verify(&f.aws, &f.sender).await;
    let report = f.run().await.expect("the retry succeeds");
    assert_eq!(report.run.alert_count, 12);
    let emails = f.emails().await;
    assert_eq!(emails.len(), 1);
    assert!(
        emails[0]["subject"]
            .as_str()
            .unwrap()
            .contains(": 12 alerts")
    );
    assert_eq!(f.queue_depth().await, (0, 0));
}

#[tokio::test]
async fn an_empty_queue_sends_nothing_unless_asked() {
    let quiet = fixture(Options::default()).await;
    let report = quiet.run().await.expect("an empty run succeeds");
    assert!(!report.run.sent);
    assert_eq!(report.run.alert_count, 0);
    assert!(quiet.emails().await.is_empty());
    let last_run = quiet.last_run().expect("the skipped run is recorded");
    assert!(!last_run.sent);
    assert_eq!(last_run.message_id, None);

    let asked = fixture(Options {
        send_empty: true,
        ..Default::default()
    })
    .await;
    let report = asked.run().await.expect("an empty digest is sent");
    assert!(report.run.sent);
    let emails = asked.emails().await;
    assert_eq!(emails.len(), 1);
    let subject = emails[0]["subject"].as_str().unwrap();
    assert!(subject.contains(": no alerts, "), "{subject}");
    assert!(
        text_cells(emails[0]["body"].as_str().unwrap())
            .iter()
            .any(|c| c.starts_with("No alerts, "))
    );
}

#[tokio::test]
async fn match_filters_alerts_and_deletes_the_rest_and_the_run_is_bounded() {
    let f = fixture(Options {
        max_alerts: 10,
        extra_spec: json!({"match": {"tags": [{"key": "Team", "operator": "In", "values": ["alpha"]}]}}),
        ..Default::default()
    })
    .await;
    for i in 0..14 {
        let team = if i < 8 { "alpha" } else { "beta" };
        let id = f.emr_cluster(team, "ingest").await;
        f.publish(&emr_failed_event(
            &id,
            VALIDATION,
            VALIDATION_REASON,
            i as u32,
        ))
        .await;
    }
    f.await_queued(14).await;

    let first = f.run().await.expect("first run");
    assert_eq!(first.received, 10, "maxAlertsPerRun bounds the run");
    assert!(first.more_waiting);
    assert_eq!(first.run.alert_count + first.filtered as i32, 10);
    assert_eq!(f.queue_depth().await, (4, 0), "the rest waits, visible");

    let second = f.run().await.expect("second run");
    assert_eq!(second.received, 4);
    assert!(!second.more_waiting);
    assert_eq!(
        first.run.alert_count + second.run.alert_count,
        8,
        "only alpha's alerts"
    );
    assert_eq!(
        first.filtered + second.filtered,
        6,
        "beta's are filtered out"
    );
    assert_eq!(
        f.queue_depth().await,
        (0, 0),
        "filtered messages are deleted too"
    );
    for email in f.emails().await {
        assert!(!email["body"].as_str().unwrap().contains("Team beta"));
    }
}

#[tokio::test]
async fn slack_summary_goes_to_the_webhook_from_the_secret() {
    let recorder = SlackRecorder::start().await;
    let mut f = fixture(Options {
        extra_spec: json!({"slack": {"webhookSecretRef": {"name": "digest-slack", "key": "webhook"}}}),
        ..Default::default()
    })
    .await;
    f.slack = SlackClient::new(SlackSettings {
        api_base: recorder.api_base(),
        ..Default::default()
    });
    let url = recorder.webhook_url("digest");
    f.cluster
        .apply_manifest(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "digest-slack", "namespace": NAMESPACE},
            "data": {"webhook": base64::engine::general_purpose::STANDARD.encode(&url)},
        }))
        .unwrap();
    let id = f.emr_cluster("alpha", "ingest").await;
    f.publish(&emr_failed_event(&id, VALIDATION, VALIDATION_REASON, 1))
        .await;
    f.await_queued(1).await;

    let report = f.run().await.expect("run");
    assert_eq!(report.slack, SlackSummaryOutcome::Posted);
    let posts = recorder.delivered("/webhook/digest");
    assert_eq!(posts.len(), 1);
    let text = posts[0].all_text();
    assert!(
        text.contains(&format!("Alert digest {NAMESPACE}/{}: 1 alert", f.name)),
        "{text}"
    );
    assert!(text.contains("1 × VALIDATION_ERROR"), "{text}");
}

#[tokio::test]
async fn alerts_whose_enrichment_fails_wait_for_the_next_run() {
    let mut f = fixture(Options::default()).await;
    for i in 0..2 {
        let id = f.emr_cluster("alpha", "ingest").await;
        f.publish(&emr_failed_event(&id, VALIDATION, VALIDATION_REASON, i))
            .await;
    }
    f.publish(&alarm_notification(&unique("untracked"), 1))
        .await;
    f.await_queued(3).await;

    // EMR unreachable: DescribeCluster fails with a transient (dispatch) error.
    let working = f.aws.clone();
    let config = crate::harness::sdk_config().await;
    f.aws.emr = aws_sdk_emr::Client::from_conf(
        aws_sdk_emr::config::Builder::from(&config)
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .build(),
    );
    let first = f
        .run()
        .await
        .expect("the run succeeds with what it could enrich");
    assert_eq!(first.deferred, 2);
    assert_eq!(first.run.alert_count, 1, "the alarm is sent");
    assert_eq!(
        f.queue_depth().await,
        (2, 0),
        "the EMR alerts wait, visible again"
    );

    f.aws = working;
    let second = f.run().await.expect("second run");
    assert_eq!(second.run.alert_count, 2);
    assert_eq!(second.deferred, 0);
    assert_eq!(f.queue_depth().await, (0, 0));
    let emails = f.emails().await;
    assert_eq!(emails.len(), 2);
    assert!(
        emails
            .iter()
            .any(|e| e["body"].as_str().unwrap().contains("Team alpha: 2 alerts")),
        "the second email has the enriched EMR alerts"
    );
}

#[test]
fn the_cli_rejects_a_schedule_without_namespace() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_alertops"))
        .args(["digest", "--schedule", "twice-daily"])
        .output()
        .expect("alertops runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("expected NAMESPACE/NAME"), "{stderr}");
}

/// Issue 11 item 7: the controller writes the schedule's status from its cache, which may hold a
/// copy read before the digest run. That write must not revert (or erase) the `lastRun` the run
/// recorded: each writer owns its own fields.
#[tokio::test]
async fn a_controller_status_write_from_a_stale_copy_keeps_the_last_run() {
    let f = fixture(Options {
        send_empty: true,
        ..Default::default()
    })
    .await;
    let stale: DigestSchedule = f.cluster.object(NAMESPACE, &f.name).unwrap().unwrap();
    assert_eq!(stale.status.as_ref().unwrap().last_run, None);
    let report = f.run().await.expect("the run succeeds");
    assert_eq!(f.last_run().as_ref(), Some(&report.run));

    // The controller's next write, computed from the stale copy (its own fields changed).
    let next_run = Utc.with_ymd_and_hms(2024, 5, 2, 3, 0, 0).unwrap();
    let mut status = stale.status.clone().unwrap();
    status.next_run_time = Some(next_run);
    f.cluster
        .patch_status(&stale, serde_json::to_value(&status).unwrap())
        .await
        .unwrap();

    let current: DigestSchedule = f.cluster.object(NAMESPACE, &f.name).unwrap().unwrap();
    let current = current.status.unwrap();
    assert_eq!(
        current.next_run_time,
        Some(next_run),
        "the controller's field"
    );
    assert_eq!(
        current.last_run.as_ref(),
        Some(&report.run),
        "the run's record survives the controller's write"
    );
    assert_eq!(current.queue_url.as_deref(), Some(f.queue_url.as_str()));
}

/// A run that dies after SES accepted its email and before deleting the messages (here: the
/// second step never runs) leaves a record of what the email covered; the next run deletes
/// those messages without emailing them again and reports only what is new.
#[tokio::test]
async fn a_run_that_dies_after_the_email_was_accepted_does_not_email_its_alerts_again() {
    let f = fixture(Options::default()).await;
    for minute in 0..3 {
        f.publish(&alarm_notification("disk-full", minute)).await;
    }
    f.await_queued(3).await;
    let settings = alertops::digest::DigestSettings {
        visibility_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let now = Utc.with_ymd_and_hms(2024, 5, 1, 3, 0, 0).unwrap();
    let accepted =
        alertops::digest::send_digest_with(&f.cluster, &f.aws, NAMESPACE, &f.name, now, &settings)
            .await
            .expect("the email is accepted");
    assert!(accepted.report().run.sent);
    assert_eq!(accepted.report().run.alert_count, 3);
    drop(accepted); // the Job dies here: nothing deleted, no lastRun
    assert_eq!(f.emails().await.len(), 1);
    assert_eq!(f.last_run(), None);

    // The messages come back when their visibility ends; a new alert arrives meanwhile.
    f.await_queued(3).await;
    f.publish(&alarm_notification("cpu-high", 30)).await;
    f.await_queued(4).await;

    let report = f.run().await.expect("the next run succeeds");
    assert_eq!(
        report.already_sent, 3,
        "the crashed run's alerts are skipped"
    );
    assert_eq!(report.run.alert_count, 1, "only the new alert is reported");
    assert_eq!(f.emails().await.len(), 2);
    assert_eq!(
        f.queue_depth().await,
        (0, 0),
        "the skipped messages are deleted too"
    );
}

/// Issue 14: a snooze holds alerts back from Slack only. The digest of the namespace lists the
/// snoozed alarm with the others, marked as snoozed.
#[tokio::test]
async fn snoozed_alerts_are_in_the_digest_marked() {
    use alertops::slack::snooze::{self, SnoozeChoice, SnoozeRequest};
    let f = fixture(Options::default()).await;
    let snoozed = unique("snoozed-backlog");
    let other = unique("other-backlog");
    f.publish(&alarm_notification(&snoozed, 5)).await;
    f.publish(&alarm_notification(&other, 6)).await;
    f.await_queued(2).await;

    // A route of the namespace whose snooze (11:00–12:00) covers the first alarm (11:05).
    f.cluster
        .apply_manifest(json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
            "metadata": {"name": "oncall", "namespace": NAMESPACE},
            "spec": {"sources": [{"topicArn": f.topic_arn}],
                "slack": {"botTokenSecretRef": {"name": "s", "key": "t"}, "channel": "C1"},
                "actions": {"snooze": {}}},
        }))
        .unwrap();
    let route: alertops::resources::AlertRoute =
        f.cluster.get(NAMESPACE, "oncall").await.unwrap().unwrap();
    let fingerprint =
        alertops::alert::decode_sqs_body(&alarm_notification(&snoozed, 5).to_string()).fingerprint;
    let request = SnoozeRequest {
        fingerprint,
        choice: SnoozeChoice::OneHour,
        by: "U0ALICE".into(),
        by_name: None,
        reason: None,
        message: None,
        now: Utc.with_ymd_and_hms(2024, 5, 1, 11, 0, 0).unwrap(),
    };
    snooze::record(&f.cluster, &route, &request, chrono_tz::Tz::UTC)
        .await
        .unwrap();

    let report = f.run().await.expect("the run succeeds");
    assert_eq!(
        report.run.alert_count, 2,
        "the snoozed alarm is in the digest"
    );
    let emails = f.emails().await;
    assert_eq!(emails.len(), 1);
    let body = emails[0]["body"].as_str().unwrap();
    assert_eq!(
        body.matches("snoozed in Slack: 1 alert").count(),
        1,
        "marked once, on the snoozed alarm's group: {body}"
    );
}

/// Issue 13: each row lists the correlation ids (SNS message attributes the schedule names) of
/// its alerts, escaped: a value with markup renders inert.
#[tokio::test]
async fn rows_list_the_schedules_correlation_attributes_escaped() {
    use aws_sdk_sns::types::MessageAttributeValue;
    let f = fixture(Options {
        extra_spec: json!({"correlationAttributes": ["correlation_id"]}),
        ..Default::default()
    })
    .await;
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .unwrap()
    };
    for (id, other) in [("<script>alert(1)</script>", "a"), ("req-7f3e", "b")] {
        f.aws
            .sns
            .publish()
            .topic_arn(&f.topic_arn)
            .message("nightly export failed: upstream unavailable")
            .message_attributes("correlation_id", attribute(id))
            .message_attributes("session_secret", attribute(other))
            .send()
            .await
            .aws("Publish")
            .unwrap();
    }
    f.await_queued(2).await;
    let report = f.run().await.expect("the run succeeds");
    assert_eq!(report.run.alert_count, 2);
    let emails = f.emails().await;
    assert_eq!(emails.len(), 1);
    let body = emails[0]["body"].as_str().unwrap();
    assert!(
        body.contains(
            "Correlation: correlation_id &lt;script&gt;alert(1)&lt;/script&gt;, correlation_id req-7f3e"
        ),
        "one row, both ids: {body}"
    );
    assert!(!body.contains("<script>"), "{body}");
    assert!(
        !body.contains("session_secret"),
        "only the attributes the schedule names: {body}"
    );
}
