//! Long Slack outages (issue 11, item 1): alerts survive them and arrive afterwards as one storm
//! summary; what still reaches the dead-letter queue shows on the route and can be redriven.
//!
//! Time is scaled down with the consumer's settings (probe delays, tolerance) and the queue's
//! (visibility timeout, `maxReceiveCount`), so that an outage several times longer than
//! `maxReceiveCount` backoffs takes seconds; every wait is for a condition.

use std::sync::Arc;
use std::time::Duration;

use alertops::consume::ConsumerOptions;
use alertops::slack::{SlackClient, SlackSettings};
use tokio::time::Instant;

use crate::consume::{
    RegisteredMetrics, Route, Running, all_text, publish, queue_counts, subscribed_queue,
    test_options, topic, webhook_spec,
};
use crate::harness;
use crate::harness::slack::{RecordedRequest, SlackRecorder, spacing};

/// Fails fast per attempt, so that the consumer's circuit, not the client's retries, decides.
fn failing_fast_slack(recorder: &SlackRecorder) -> Arc<SlackClient> {
    Arc::new(SlackClient::new(SlackSettings {
        api_base: recorder.api_base(),
        max_attempts: 2,
        initial_backoff: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
        ..SlackSettings::default()
    }))
}

/// Probes Slack every 200 ms at first, at most every second, so that outages take seconds.
fn probing_options() -> ConsumerOptions {
    ConsumerOptions {
        probe_initial: Duration::from_millis(200),
        probe_max: Duration::from_secs(1),
        ..test_options()
    }
}

/// Posts the stand-in answered with this status.
fn answered(requests: &[RecordedRequest], path: &str, status: u16) -> Vec<RecordedRequest> {
    requests
        .iter()
        .filter(|r| r.path == path && r.status == status)
        .cloned()
        .collect()
}

/// An outage of 10 s against a queue whose `maxReceiveCount` (2) and backoffs (1 s, 2 s) would
/// dead-letter every alert within about 4 s if the consumer kept receiving: nothing reaches the
/// dead-letter queue, the consumer stays ready, and afterwards the held alerts are posted as
/// usual and the 41 alerts that arrived meanwhile come as one storm summary, paced.
#[tokio::test]
async fn a_slack_outage_longer_than_the_receive_budget_loses_nothing_and_ends_in_one_summary() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 4, 2).await;
    let (spec, secret) = webhook_spec(&recorder, &topic_arn, "outage");
    let route = Route::new(spec, secret, &plumbing).await;
    recorder.start_outage(503);

    for token in ["held-a", "held-b", "held-c"] {
        publish(&aws, &topic_arn, None, &format!("{token}: checkout errors")).await;
    }
    let metrics = RegisteredMetrics::new();
    let consumer = route
        .consumer_with(
            &aws,
            failing_fast_slack(&recorder),
            ConsumerOptions {
                slack_outage_tolerance: Duration::from_secs(120),
                ..probing_options()
            },
        )
        .with_metrics(metrics.metrics.clone());
    let readiness = consumer.readiness().clone();
    let task = Running::spawn(consumer);

    // Slack fails the first delivery: the circuit opens. Alerts keep arriving meanwhile.
    recorder
        .wait_until(Duration::from_secs(30), |r| {
            !answered(r, "/webhook/outage", 503).is_empty()
        })
        .await;
    for i in 0..30 {
        publish(
            &aws,
            &topic_arn,
            None,
            &format!("outage-alert-{i:02}: disk almost full"),
        )
        .await;
    }
    for _ in 0..11 {
        publish(&aws, &topic_arn, None, "orders-db replica lag above 30 s").await;
    }

    // The outage lasts until Slack has been failing for 10 s: five times what the queue's
    // receive budget (2 receives, 1 s and 2 s backoffs) survives without the circuit.
    let outage = Duration::from_secs(10);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    loop {
        poll.tick().await;
        let dead = queue_counts(&aws, &plumbing.dlq_url).await;
        assert_eq!(
            dead,
            (0, 0),
            "alerts reached the dead-letter queue during a Slack outage"
        );
        assert!(
            readiness.is_ready(),
            "the consumer stays ready while Slack is down"
        );
        let failed = answered(&recorder.requests(), "/webhook/outage", 503);
        if failed.last().unwrap().at.duration_since(failed[0].at) >= outage {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the consumer stopped probing Slack"
        );
    }
    let text = metrics.text();
    let label = format!("route=\"{}/{}\"", route.namespace, route.name);
    assert!(
        text.contains(&format!("consumer_slack_circuit_open{{{label}}} 1")),
        "{text}"
    );
    assert_eq!(
        queue_counts(&aws, &plumbing.queue_url).await.0,
        41,
        "what arrived during the outage waits in the queue, not received"
    );

    recorder.end_outage();
    recorder
        .wait_until(Duration::from_secs(60), |r| {
            all_text(&answered(r, "/webhook/outage", 200)).contains("Slack was unreachable")
        })
        .await;
    super::consume::await_queue(&aws, &plumbing.queue_url, Duration::from_secs(30), |c| {
        c == (0, 0)
    })
    .await;
    task.stop().await;

    assert_eq!(
        queue_counts(&aws, &plumbing.dlq_url).await,
        (0, 0),
        "nothing dead-lettered"
    );
    let posts = answered(&recorder.requests(), "/webhook/outage", 200);
    assert_eq!(
        posts.len(),
        2,
        "the held alerts in one grouped post, then one storm summary: {:#?}",
        posts
            .iter()
            .map(RecordedRequest::all_text)
            .collect::<Vec<_>>()
    );
    let held = posts[0].all_text();
    for token in ["held-a", "held-b", "held-c"] {
        assert!(held.contains(token), "{token} missing from {held}");
    }
    let summary = posts[1].all_text();
    assert!(summary.contains("41 alerts arrived meanwhile"), "{summary}");
    assert!(summary.contains("31 problems"), "{summary}");
    assert!(
        summary.contains("orders-db replica lag above 30 s — firing ×11"),
        "the repeated alert is counted, first: {summary}"
    );
    for gap in spacing(&posts) {
        assert!(gap >= Duration::from_millis(950), "two posts {gap:?} apart");
    }
    let text = metrics.text();
    assert!(
        text.contains(&format!("consumer_slack_circuit_open{{{label}}} 0")),
        "{text}"
    );
}

/// `alertops redrive` moves what the dead-letter queue holds back to the route's queue (send, then
/// delete), and the consumer delivers it.
#[tokio::test]
async fn redrive_moves_dead_letters_back_and_the_consumer_delivers_them() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 2).await;
    let (spec, secret) = webhook_spec(&recorder, &topic_arn, "redrive");
    let route = Route::new(spec, secret, &plumbing).await;
    let tokens = ["redriven-a", "redriven-b", "redriven-c"];
    for token in tokens {
        aws.sqs
            .send_message()
            .queue_url(&plumbing.dlq_url)
            .message_body(format!("{token}: nightly export failed"))
            .send()
            .await
            .expect("SendMessage to the dead-letter queue");
    }

    let report =
        alertops::redrive::redrive_route(&route.cluster, &aws, &route.namespace, &route.name, None)
            .await
            .expect("redrive runs");
    assert_eq!(
        (report.waiting, report.moved, report.refused, report.copied),
        (3, 3, 0, 0)
    );
    assert_eq!(
        queue_counts(&aws, &plumbing.dlq_url).await,
        (0, 0),
        "nothing left behind"
    );
    assert_eq!(
        queue_counts(&aws, &plumbing.queue_url).await,
        (3, 0),
        "nothing lost"
    );

    let mut consumer = route.consumer(&aws, crate::consume::slack_client(&recorder));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut delivered = 0;
    while delivered < 3 {
        delivered += consumer.run_once().await.expect("batch runs").delivered;
        assert!(Instant::now() < deadline, "redriven messages not delivered");
    }
    let text = all_text(&recorder.delivered("/webhook/redrive"));
    for token in tokens {
        assert!(text.contains(token), "{token} missing: {text}");
    }
    assert_eq!(queue_counts(&aws, &plumbing.queue_url).await, (0, 0));

    let again =
        alertops::redrive::redrive_route(&route.cluster, &aws, &route.namespace, &route.name, None)
            .await
            .expect("redrive runs");
    assert_eq!(again.moved, 0, "an empty dead-letter queue moves nothing");
}

/// With a bot token the summary becomes the message of the problems it summarises: an alarm
/// that fired during the outage and resolves later is answered in the summary's thread, not
/// posted anew.
#[tokio::test]
async fn a_problem_summarised_after_an_outage_resolves_in_the_summarys_thread() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 4, 2).await;
    let route = Route::new(
        serde_json::json!({
            "sources": [{"topicArn": topic_arn}],
            "slack": {"botTokenSecretRef": {"name": "slack", "key": "token"}, "channel": "C0OPS"},
        }),
        serde_json::json!({"token": "xoxb-test-token"}),
        &plumbing,
    )
    .await;
    recorder.start_outage(500);
    publish(&aws, &topic_arn, None, "held: checkout errors").await;
    let task =
        Running::spawn(route.consumer_with(&aws, failing_fast_slack(&recorder), probing_options()));
    let post = "/api/chat.postMessage";
    recorder
        .wait_until(Duration::from_secs(30), |r| {
            !answered(r, post, 500).is_empty()
        })
        .await;
    let mut alarms = Vec::new();
    for i in 0..25 {
        let alarm = harness::unique(&format!("storm-cpu-{i:02}"));
        let arn = crate::consume::put_alarm(&aws, &alarm).await;
        crate::consume::publish_alarm(&aws, &topic_arn, &alarm, &arn).await;
        alarms.push((alarm, arn));
    }
    super::consume::await_queue(&aws, &plumbing.queue_url, Duration::from_secs(30), |c| {
        c.0 == 25
    })
    .await;
    recorder.end_outage();
    let requests = recorder
        .wait_until(Duration::from_secs(60), |r| {
            all_text(&answered(r, post, 200)).contains("Slack was unreachable")
        })
        .await;
    let accepted = answered(&requests, post, 200);
    let summary_number = accepted
        .iter()
        .position(|r| r.all_text().contains("Slack was unreachable"))
        .expect("the summary")
        + 1;
    // The stand-in numbers the messages it accepts: 1700000000.000001, .000002, …
    let summary_ts = format!("1700000000.{summary_number:06}");

    let (alarm, arn) = &alarms[7];
    publish(
        &aws,
        &topic_arn,
        Some(&format!("OK: \"{alarm}\" in US East (N. Virginia)")),
        &crate::consume::alarm_notification(
            alarm,
            arn,
            "OK",
            "ALARM",
            "Threshold Crossed: back below the threshold.",
            "2024-05-01T12:00:00.000+0000",
        ),
    )
    .await;
    let requests = recorder
        .wait_until(Duration::from_secs(30), |r| {
            answered(r, post, 200)
                .iter()
                .any(|p| p.body["thread_ts"] == summary_ts.as_str())
        })
        .await;
    task.stop().await;
    let reply = answered(&requests, post, 200)
        .into_iter()
        .find(|p| p.body["thread_ts"] == summary_ts.as_str())
        .unwrap();
    assert!(
        reply.all_text().contains(alarm.as_str()),
        "{}",
        reply.all_text()
    );
    assert_eq!(
        answered(&requests, post, 200).len(),
        summary_number + 1,
        "nothing but the reply after the summary"
    );
    assert_eq!(queue_counts(&aws, &plumbing.dlq_url).await, (0, 0));
}

/// A consumer that finds a backlog older than `backlog_age` (it restarted while Slack was down,
/// so the outage it saw died with the old process; or it was down itself) drains it into one
/// storm summary instead of a flood of posts — found by `make soak`, where a kill during an
/// outage made the new process post every held alert on its own.
#[tokio::test]
async fn a_backlog_found_after_a_restart_arrives_as_one_summary_not_a_flood() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 4, 30).await;
    let (spec, secret) = webhook_spec(&recorder, &topic_arn, "backlog");
    let route = Route::new(spec, secret, &plumbing).await;
    for i in 0..30 {
        publish(
            &aws,
            &topic_arn,
            None,
            &format!("backlog-{i:02}: disk almost full"),
        )
        .await;
    }
    for _ in 0..11 {
        publish(&aws, &topic_arn, None, "orders-db replica lag above 30 s").await;
    }
    super::consume::await_queue(&aws, &plumbing.queue_url, Duration::from_secs(30), |c| {
        c.0 == 41
    })
    .await;

    // The consumer's clock says these alerts waited 20 minutes (backlog_age is 10 by default).
    let later = chrono::Utc::now() + chrono::Duration::minutes(20);
    let mut consumer = route
        .consumer(&aws, super::consume::slack_client(&recorder))
        .with_clock(Arc::new(move || later));
    let deadline = Instant::now() + Duration::from_secs(60);
    while queue_counts(&aws, &plumbing.queue_url).await != (0, 0) {
        consumer.run_once().await.expect("a batch runs");
        assert!(Instant::now() < deadline, "the backlog was not drained");
    }

    let posts = answered(&recorder.requests(), "/webhook/backlog", 200);
    assert_eq!(
        posts.len(),
        1,
        "one storm summary, not a post per alert: {:#?}",
        posts
            .iter()
            .map(RecordedRequest::all_text)
            .collect::<Vec<_>>()
    );
    let summary = posts[0].all_text();
    assert!(summary.contains("41 alerts were waiting"), "{summary}");
    assert!(
        summary.contains("orders-db replica lag above 30 s — firing ×11"),
        "{summary}"
    );
    assert_eq!(queue_counts(&aws, &plumbing.dlq_url).await, (0, 0));
}
