//! The DigestSchedule reconciler against the AWS emulator, driven through the in-memory cluster:
//! the queue's retention from the schedule, subscriptions and delivery, the CronJob, the rejection
//! of schedules too sparse for SQS, no-op resync and deletion.

use std::sync::Arc;

use alertops::k8s::ClusterApi;
use alertops::reconcile::digest_schedule::{self, schedule::Schedule};
use alertops::resources::DigestSchedule;
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{Timelike, Utc};
use k8s_openapi::api::batch::v1::CronJob;
use serde_json::{Value, json};

use crate::alert_route::{Fixture, IMAGE, condition};

fn digest_spec(schedule: &str, sources: Value) -> Value {
    json!({
        "schedule": schedule,
        "timeZone": "America/Los_Angeles",
        "sources": sources,
        "email": {"from": "digest@example.com", "to": ["team@example.com"]},
        "startingDeadlineSeconds": 900,
        "historyLimit": 2,
    })
}

async fn get(f: &Fixture, name: &str) -> Option<DigestSchedule> {
    f.cluster
        .get::<DigestSchedule>(&f.namespace, name)
        .await
        .unwrap()
}

async fn reconcile(f: &Fixture, name: &str) -> DigestSchedule {
    let digest = get(f, name).await.expect("schedule exists");
    digest_schedule::reconcile(Arc::new(digest), &f.ctx)
        .await
        .expect("reconcile succeeds");
    get(f, name).await.expect("schedule still exists")
}

fn ready(digest: &DigestSchedule) -> (String, String, String) {
    condition(&digest.status.as_ref().expect("status").conditions, "Ready")
}

#[tokio::test]
async fn twice_daily_pacific_gets_a_queue_kept_long_enough_and_a_cron_job() {
    let f = Fixture::new().await;
    let topic = f.alarm_policy_topic("emr").await;
    f.apply(
        "DigestSchedule",
        "twice-daily",
        digest_spec("0 8,20 * * *", json!([{"alarmPolicy": "emr"}])),
    );
    let before = Utc::now();
    let digest = reconcile(&f, "twice-daily").await;
    assert_eq!(ready(&digest).0, "True", "{:?}", ready(&digest));
    let status = digest.status.clone().unwrap();

    // Within any coming year, Los Angeles has a fall-back night: 20:00 → 08:00 is 13 hours; the
    // queue keeps alerts for two such gaps (one failed run loses nothing) plus a tenth of one.
    assert_eq!(status.retention_seconds, Some(2 * 13 * 3600 + 13 * 360));
    let queue_url = status.queue_url.clone().expect("queue URL");
    let attributes = f.queue_attributes(&queue_url).await;
    assert_eq!(
        attributes[&QueueAttributeName::MessageRetentionPeriod],
        (2 * 13 * 3600 + 13 * 360).to_string()
    );
    let redrive: Value =
        serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert!(
        redrive["deadLetterTargetArn"]
            .as_str()
            .unwrap()
            .ends_with("-dlq")
    );

    // The next run: the schedule's next 08:00 or 20:00 in Los Angeles.
    let next = status.next_run_time.expect("next run time");
    let expected = Schedule::parse("0 8,20 * * *", "America/Los_Angeles")
        .unwrap()
        .next_run(before)
        .unwrap();
    assert_eq!(next, expected);
    let local = next.with_timezone(&chrono_tz::America::Los_Angeles);
    assert!(
        [8, 20].contains(&local.hour()) && local.minute() == 0,
        "{local}"
    );

    // Subscribed, and a publish arrives as an SNS envelope.
    assert_eq!(status.subscriptions.len(), 1);
    assert_eq!(status.subscriptions[0].topic_arn, topic);
    let envelope = f.publish_and_receive(&topic, &queue_url).await;
    assert_eq!(envelope["Type"], "Notification");

    // The CronJob.
    let name = status.cron_job.clone().expect("cron job named");
    assert_eq!(name, "twice-daily-digest");
    let job = f
        .cluster
        .get::<CronJob>(&f.namespace, &name)
        .await
        .unwrap()
        .expect("cron job exists");
    let owner = &job.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("DigestSchedule", "twice-daily")
    );
    assert_eq!(Some(&owner.uid), digest.metadata.uid.as_ref());
    assert_eq!(owner.controller, Some(true));
    let spec = job.spec.unwrap();
    assert_eq!(spec.schedule, "0 8,20 * * *");
    assert_eq!(spec.time_zone.as_deref(), Some("America/Los_Angeles"));
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    assert_eq!(spec.starting_deadline_seconds, Some(900));
    assert_eq!(spec.successful_jobs_history_limit, Some(2));
    let pod = spec.job_template.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(name.as_str()));
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(IMAGE));
    assert_eq!(
        container.args.clone().unwrap(),
        vec![
            "digest".to_string(),
            "--schedule".into(),
            format!("{}/twice-daily", f.namespace)
        ]
    );
}

#[tokio::test]
async fn a_monthly_schedule_is_rejected_and_touches_nothing() {
    let f = Fixture::new().await;
    let topic = f.existing_topic().await;
    f.apply(
        "DigestSchedule",
        "monthly",
        digest_spec("0 8 1 * *", json!([{"topicArn": topic}])),
    );
    f.aws().call_log().reset();
    let digest = reconcile(&f, "monthly").await;
    let (status, reason, message) = ready(&digest);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ScheduleTooSparse")
    );
    assert!(
        message.contains("62d"),
        "names the span of two runs: {message}"
    );
    assert!(message.contains("14 days"), "{message}");
    assert!(f.aws().call_log().snapshot().is_empty(), "no AWS call");
    assert!(
        f.cluster
            .get::<CronJob>(&f.namespace, "monthly-digest")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_invalid_schedule_or_zone_is_a_condition() {
    let f = Fixture::new().await;
    let topic = f.existing_topic().await;
    let mut spec = digest_spec("0 8 * * *", json!([{"topicArn": topic}]));
    spec["timeZone"] = json!("Pacific/Nowhere");
    f.apply("DigestSchedule", "nowhere", spec);
    let (status, reason, message) = ready(&reconcile(&f, "nowhere").await);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InvalidSchedule")
    );
    assert!(message.contains("Pacific/Nowhere"), "{message}");
}

#[tokio::test]
async fn a_second_reconcile_without_change_writes_nothing() {
    let f = Fixture::new().await;
    let topic = f.existing_topic().await;
    f.apply(
        "DigestSchedule",
        "quiet",
        digest_spec("0 8,20 * * *", json!([{"topicArn": topic}])),
    );
    reconcile(&f, "quiet").await;
    f.aws().call_log().reset();
    let revision = f.cluster.revision();
    let digest = reconcile(&f, "quiet").await;
    assert_eq!(ready(&digest).0, "True");
    let writes: Vec<String> = f
        .aws()
        .call_log()
        .writes()
        .iter()
        .map(|c| c.operation.clone())
        .collect();
    assert!(writes.is_empty(), "a no-op resync wrote to AWS: {writes:?}");
    assert_eq!(
        f.cluster.revision(),
        revision,
        "nothing changed in the cluster"
    );
}

#[tokio::test]
async fn deletion_with_delete_and_with_retain() {
    let f = Fixture::new().await;
    let topic = f.existing_topic().await;
    f.apply(
        "DigestSchedule",
        "gone",
        digest_spec("0 8,20 * * *", json!([{"topicArn": topic}])),
    );
    let mut retained = digest_spec("0 9 * * MON-FRI", json!([{"topicArn": topic}]));
    retained["deletionPolicy"] = json!("Retain");
    f.apply("DigestSchedule", "kept", retained);
    let gone = reconcile(&f, "gone").await.status.unwrap();
    let kept = reconcile(&f, "kept").await.status.unwrap();
    assert_eq!(f.sqs_subscriptions(&topic).await.len(), 2);
    assert_eq!(
        kept.retention_seconds,
        Some(2 * (3 * 86_400 + 3600) + (3 * 86_400 + 3600) / 10),
        "twice Friday to Monday over the fall-back weekend, plus a tenth"
    );

    for name in ["gone", "kept"] {
        f.cluster
            .request_delete(
                "alertops.dev/v1alpha1",
                "DigestSchedule",
                &f.namespace,
                name,
            )
            .unwrap();
        let deleting = get(&f, name)
            .await
            .expect("kept while the finalizer is there");
        digest_schedule::reconcile(Arc::new(deleting), &f.ctx)
            .await
            .unwrap();
        assert!(get(&f, name).await.is_none(), "{name} gone");
        assert!(
            f.cluster
                .get::<CronJob>(&f.namespace, &format!("{name}-digest"))
                .await
                .unwrap()
                .is_none(),
            "the CronJob of {name} is garbage-collected"
        );
    }
    assert!(!f.queue_exists(gone.queue_url.as_ref().unwrap()).await);
    assert!(f.queue_exists(kept.queue_url.as_ref().unwrap()).await);
    let remaining = f.sqs_subscriptions(&topic).await;
    assert_eq!(
        remaining.len(),
        1,
        "only the retained subscription: {remaining:?}"
    );
    assert_eq!(Some(&remaining[0].1), kept.queue_arn.as_ref());
}
