//! The local mode: the examples reconciled from a folder, and the whole process serving.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alertops::k8s::MemoryCluster;
use alertops::local::{LocalConfig, LocalDriver};
use alertops::reconcile::{Context, OperatorSettings};
use alertops::resources::{AlarmPolicy, AlertRoute, DigestSchedule};
use kube::ResourceExt;

use crate::harness;
use crate::harness::slack::SlackRecorder;

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn ready_reason<S>(
    status: Option<&S>,
    conditions: impl Fn(&S) -> &Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
) -> String {
    status
        .and_then(|s| conditions(s).iter().find(|c| c.type_ == "Ready"))
        .map(|c| format!("{} {}", c.status, c.reason))
        .unwrap_or_else(|| "no Ready condition".into())
}

#[tokio::test]
async fn the_examples_load_and_settle() {
    let cluster = MemoryCluster::new();
    let settings = OperatorSettings::new(harness::unique("local").to_lowercase());
    let ctx = Arc::new(Context::new(
        cluster.clone(),
        harness::aws_clients().await,
        settings,
    ));
    let driver = LocalDriver::new(ctx);
    let loaded = driver.load(&examples()).expect("the examples load");
    assert!(loaded >= 13, "{loaded} manifests");

    let summary = driver.settle(10).await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);

    for policy in cluster.list_all::<AlarmPolicy>().unwrap() {
        let reason = ready_reason(policy.status.as_ref(), |s| &s.conditions);
        assert_eq!(
            reason,
            "True Reconciled",
            "AlarmPolicy {}",
            policy.name_any()
        );
    }
    for schedule in cluster.list_all::<DigestSchedule>().unwrap() {
        let status = schedule.status.as_ref();
        assert!(
            status.and_then(|s| s.queue_url.as_ref()).is_some(),
            "{} has a queue",
            schedule.name_any()
        );
        assert!(
            status.and_then(|s| s.next_run_time).is_some(),
            "{} knows its next run",
            schedule.name_any()
        );
    }
    for route in cluster.list_all::<AlertRoute>().unwrap() {
        let reason = ready_reason(route.status.as_ref(), |s| &s.conditions);
        // Routes of policies in the folder get their queue and subscriptions; routes of
        // per-environment topics that do not exist in this account wait for them.
        let from_policies = route.spec.sources.iter().all(|s| s.alarm_policy.is_some());
        if from_policies {
            assert!(
                route
                    .status
                    .as_ref()
                    .and_then(|s| s.queue_url.as_ref())
                    .is_some(),
                "{}",
                route.name_any()
            );
            assert!(
                reason == "False ConsumerNotReady" || reason == "True Reconciled",
                "AlertRoute {}: {reason}",
                route.name_any()
            );
        } else {
            assert_eq!(
                reason,
                "False SourceNotReady",
                "AlertRoute {}",
                route.name_any()
            );
        }
    }

    // A second pass changes nothing: the statuses are stable.
    let revision = cluster.revision();
    driver.reconcile_all().await;
    assert_eq!(
        cluster.revision(),
        revision,
        "a settled cluster stays settled"
    );
}

#[tokio::test]
async fn invalid_manifests_are_refused_whole() {
    let cluster = MemoryCluster::new();
    let ctx = Arc::new(Context::new(
        cluster.clone(),
        harness::aws_clients().await,
        OperatorSettings::new("local-invalid"),
    ));
    let driver = LocalDriver::new(ctx);
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint/schema-error.yaml");
    let error = driver
        .load(&fixture)
        .expect_err("a schema error refuses the folder");
    assert!(error.to_string().contains("spec."), "{error}");
    assert!(cluster.keys().is_empty(), "nothing was loaded");
}

#[tokio::test]
async fn the_local_process_serves_metrics_and_readiness() {
    let slack = SlackRecorder::start().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = listener.local_addr().unwrap();
    drop(listener);
    let config = LocalConfig {
        manifests: examples().join("elb-backend-errors"),
        cluster_id: harness::unique("serve").to_lowercase(),
        listen,
        slack_api_base: slack.api_base(),
        slack_webhook_base: Some(slack.webhook_url("hooks")),
        signing_secret: "local-test-signing-secret".into(),
        action_key: "k".repeat(40),
        consumer_wait: Duration::from_secs(1),
        resync: Duration::from_secs(60),
        slack_outage_tolerance: Duration::from_secs(7200),
        backlog_age: Duration::from_secs(600),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(alertops::local::run(
        config,
        harness::aws_clients().await,
        async {
            let _ = stopped.await;
        },
    ));

    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ready = http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status() == 200);
        if ready.unwrap_or(false) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the local mode never became ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"alertops_reconciles_total{kind="AlarmPolicy"}"#),
        "{metrics}"
    );
    assert!(metrics.contains("aws_calls_total"), "{metrics}");
    // A forged interaction is refused by the same process.
    let forged = http
        .post(format!("{base}/slack/interactions"))
        .header(
            "x-slack-request-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("x-slack-signature", "v0=00")
        .body("payload=%7B%7D")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the local mode stops when asked")
        .unwrap()
        .expect("and stops cleanly");
}
