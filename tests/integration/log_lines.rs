//! Log alarms, consumer side, against the emulator: a firing alarm on a metric that a CloudWatch
//! Logs metric filter produces goes to Slack and email with the newest matching lines of its
//! evaluation window and a Logs Insights link; an ordinary alarm reads no lines; a refused read
//! still posts.
//!
//! The emulator matches filter patterns only as plain or quoted terms (JSON and space-delimited
//! selectors match every line there), so these tests use a plain term: the matching is real.

use std::sync::Arc;
use std::time::Duration;

use alertops::alert::LogLineFetcher;
use alertops::aws::AwsClients;
use aws_sdk_cloudwatchlogs::types::{InputLogEvent, MetricTransformation};
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Value, json};

use crate::consume::{
    Route, all_text, denying_aws, emails_with_prefix, publish, queue_counts, run_until,
    slack_client, subscribed_queue, topic, verified_sender, webhook_spec,
};
use crate::harness::slack::SlackRecorder;
use crate::harness::{self, REGION};

const ACCOUNT: &str = "123456789012";
const NAMESPACE: &str = "Alertops/LogAlarms";
const INSIGHTS_PREFIX: &str = "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:logs-insights$3FqueryDetail$3D";

/// A log group with lines around `change` (the alarm's state change; window 3 × 60 s before it):
/// matching lines in the window, matching lines before and after it, other lines in it; and a
/// metric filter on `ERROR` that publishes `metric`. Returns the group's name.
async fn log_group_with_filter(aws: &AwsClients, metric: &str, change: DateTime<Utc>) -> String {
    let group = format!("/alertops/test/{}", harness::unique("checkout"));
    aws.logs
        .create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("CreateLogGroup");
    aws.logs
        .create_log_stream()
        .log_group_name(&group)
        .log_stream_name("api-1")
        .send()
        .await
        .expect("CreateLogStream");
    let lines = [
        (-400, "ERROR before the window"),
        (-170, "ERROR payment declined order=1"),
        (-160, "INFO checkout ok order=2"),
        (-100, "ERROR payment declined order=3"),
        (-50, "WARN slow checkout order=4"),
        (-20, "ERROR <script>alert(1)</script> & <@U123> order=5"),
        (30, "ERROR after the window"),
    ];
    let mut put = aws
        .logs
        .put_log_events()
        .log_group_name(&group)
        .log_stream_name("api-1");
    for (offset, message) in lines {
        put = put.log_events(
            InputLogEvent::builder()
                .timestamp((change + chrono::Duration::seconds(offset)).timestamp_millis())
                .message(message)
                .build()
                .expect("event"),
        );
    }
    put.send().await.expect("PutLogEvents");
    aws.logs
        .put_metric_filter()
        .log_group_name(&group)
        .filter_name("checkout-errors")
        .filter_pattern("ERROR")
        .metric_transformations(
            MetricTransformation::builder()
                .metric_name(metric)
                .metric_namespace(NAMESPACE)
                .metric_value("1")
                .build()
                .expect("transformation"),
        )
        .send()
        .await
        .expect("PutMetricFilter");
    group
}

/// The notification CloudWatch publishes when the alarm on `metric` fires at `change`.
fn log_alarm_notification(
    alarm: &str,
    metric: &str,
    namespace: &str,
    change: DateTime<Utc>,
) -> String {
    json!({
        "AlarmName": alarm,
        "AWSAccountId": ACCOUNT,
        "NewStateValue": "ALARM",
        "NewStateReason": "Threshold Crossed: 1 out of the last 3 datapoints was greater than the threshold (0.0).",
        "StateChangeTime": change.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        "Region": "US East (N. Virginia)",
        "AlarmArn": format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}"),
        "OldStateValue": "OK",
        "Trigger": {
            "MetricName": metric,
            "Namespace": namespace,
            "StatisticType": "Statistic",
            "Statistic": "SUM",
            "Dimensions": [],
            "Period": 60,
            "EvaluationPeriods": 3,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0.0,
            "TreatMissingData": "notBreaching",
        }
    })
    .to_string()
}

/// The mrkdwn texts of every block of a Slack message body.
fn block_texts(body: &Value) -> Vec<String> {
    let mut texts = Vec::new();
    for block in body["blocks"].as_array().into_iter().flatten() {
        if let Some(text) = block["text"]["text"].as_str() {
            texts.push(text.to_string());
        }
        for element in block["elements"].as_array().into_iter().flatten() {
            if let Some(text) = element["text"].as_str() {
                texts.push(text.to_string());
            }
        }
    }
    texts
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

#[tokio::test]
async fn a_firing_log_alarm_posts_its_newest_matching_lines_escaped_with_the_insights_link() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let (mut spec, secret) = webhook_spec(&recorder, &topic_arn, "log-alarm");
    spec["grouping"] = json!({"maxAlertsPerMessage": 1});
    let route = Route::new(spec, secret, &plumbing).await;
    let change = now();
    let metric = harness::unique("CheckoutErrors");
    let group = log_group_with_filter(&aws, &metric, change).await;
    let alarm = harness::unique("checkout-errors");

    publish(
        &aws,
        &topic_arn,
        None,
        &log_alarm_notification(&alarm, &metric, NAMESPACE, change),
    )
    .await;
    let mut consumer = route.consumer(&aws, slack_client(&recorder));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.deleted >= 1).await;
    assert_eq!((report.delivered, report.failed), (1, 0));

    let posts = recorder.delivered("/webhook/log-alarm");
    assert_eq!(posts.len(), 1);
    let texts = block_texts(&posts[0].body);
    let lines = texts
        .iter()
        .find(|t| t.starts_with("*Matching log lines*"))
        .unwrap_or_else(|| panic!("no log lines block: {texts:#?}"));
    let code: Vec<&str> = lines
        .split("```")
        .nth(1)
        .expect("a code block")
        .lines()
        .collect();
    let at = |offset: i64| {
        (change + chrono::Duration::seconds(offset))
            .format("%H:%M:%S%.3fZ")
            .to_string()
    };
    assert_eq!(
        code,
        [
            format!(
                "{} ERROR &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;@U123&gt; order=5",
                at(-20)
            ),
            format!("{} ERROR payment declined order=3", at(-100)),
            format!("{} ERROR payment declined order=1", at(-170)),
        ],
        "exactly the matching lines of the window, newest first, escaped"
    );
    assert!(lines.contains(&group), "names the group: {lines}");
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with(&format!("<{INSIGHTS_PREFIX}"))
                && t.contains("Open the window in CloudWatch Logs Insights")),
        "the Insights link: {texts:#?}"
    );
    let sent = all_text(&posts);
    assert!(
        !sent.contains("<script>") && !sent.contains("<@U123>"),
        "{sent}"
    );
    assert_eq!(aws.call_log().count("DescribeMetricFilters"), 1);
    assert!(aws.call_log().count("FilterLogEvents") >= 1);
    assert_eq!(queue_counts(&aws, &plumbing.queue_url).await, (0, 0));
}

#[tokio::test]
async fn an_ordinary_alarm_reads_no_log_lines_and_asks_once_per_metric() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let (mut spec, secret) = webhook_spec(&recorder, &topic_arn, "ordinary");
    spec["grouping"] = json!({"maxAlertsPerMessage": 1});
    let route = Route::new(spec, secret, &plumbing).await;
    let metric = harness::unique("CPUUtilization");
    let mut consumer = route.consumer(&aws, slack_client(&recorder));
    for i in 0..2 {
        let alarm = harness::unique(&format!("cpu-{i}"));
        publish(
            &aws,
            &topic_arn,
            None,
            &log_alarm_notification(&alarm, &metric, "AWS/EC2", now()),
        )
        .await;
        run_until(&mut consumer, Duration::from_secs(30), |r| r.deleted >= 1).await;
    }
    let sent = all_text(&recorder.delivered("/webhook/ordinary"));
    assert!(
        !sent.contains("log lines") && !sent.contains("Log lines"),
        "{sent}"
    );
    assert_eq!(
        aws.call_log().count("DescribeMetricFilters"),
        1,
        "the metric has no filter, and that answer is cached"
    );
    assert_eq!(aws.call_log().count("FilterLogEvents"), 0);
}

#[tokio::test]
async fn a_refused_log_read_still_posts_and_says_why() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let (mut spec, secret) = webhook_spec(&recorder, &topic_arn, "log-denied");
    spec["grouping"] = json!({"maxAlertsPerMessage": 1});
    let route = Route::new(spec, secret, &plumbing).await;
    let alarm = harness::unique("checkout-errors");
    publish(
        &aws,
        &topic_arn,
        None,
        &log_alarm_notification(&alarm, "CheckoutErrors", NAMESPACE, now()),
    )
    .await;
    let denied: Arc<AwsClients> = Arc::new(denying_aws().await);
    let mut consumer = route
        .consumer(&aws, slack_client(&recorder))
        .with_log_lines(Arc::new(LogLineFetcher::new(
            denied,
            Duration::from_secs(60),
        )));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.deleted >= 1).await;
    assert_eq!((report.delivered, report.failed), (1, 0));
    let texts = block_texts(&recorder.delivered("/webhook/log-denied")[0].body);
    assert!(
        texts.iter().any(|t| t
            == "*Log lines unavailable:* DescribeMetricFilters failed with AccessDeniedException"),
        "{texts:#?}"
    );
    assert_eq!(queue_counts(&aws, &plumbing.queue_url).await, (0, 0));
}

#[tokio::test]
async fn the_email_of_a_firing_log_alarm_shows_its_lines_escaped_in_a_pre_block() {
    let aws = harness::aws_clients().await;
    let recorder = SlackRecorder::start().await;
    let topic_arn = topic(&aws).await;
    let plumbing = subscribed_queue(&aws, &topic_arn, 30, 5).await;
    let sender = verified_sender(&aws).await;
    let prefix = format!("[{}]", harness::unique("log-email"));
    let route = Route::new(
        json!({
            "sources": [{"topicArn": topic_arn}],
            "email": {"from": sender, "to": ["oncall@example.com"], "subjectPrefix": prefix},
        }),
        json!({}),
        &plumbing,
    )
    .await;
    let change = now();
    let metric = harness::unique("CheckoutErrors");
    log_group_with_filter(&aws, &metric, change).await;
    let alarm = harness::unique("checkout-errors");
    publish(
        &aws,
        &topic_arn,
        None,
        &log_alarm_notification(&alarm, &metric, NAMESPACE, change),
    )
    .await;
    let mut consumer = route.consumer(&aws, slack_client(&recorder));
    let report = run_until(&mut consumer, Duration::from_secs(30), |r| r.deleted >= 1).await;
    assert_eq!(report.emails, 1);

    let emails = emails_with_prefix(&prefix).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let html = emails[0]["body"].as_str().unwrap_or_default().to_string();
    let body = if html.is_empty() {
        emails[0]["body"].to_string()
    } else {
        html
    };
    let pre = body
        .split("<pre ")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("no <pre> block: {body}"));
    let pre = pre.split_once('>').expect("tag end").1;
    let lines: Vec<&str> = pre.lines().collect();
    assert_eq!(lines.len(), 3, "{pre}");
    assert!(
        lines[0]
            .ends_with("ERROR &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;@U123&gt; order=5"),
        "{pre}"
    );
    assert!(
        lines[2].ends_with("ERROR payment declined order=1"),
        "{pre}"
    );
    assert!(!body.contains("<script>"), "{body}");
    assert!(
        body.contains("logs-insights$3FqueryDetail$3D"),
        "the link: {body}"
    );
}
