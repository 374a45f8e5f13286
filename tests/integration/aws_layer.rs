//! The AWS layer against the emulator: the call log sees every attempt and tells writes from
//! reads, SDK errors are classified, the rate limiter spaces calls, and throttling is retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alertops::aws::{
    ApiRate, AwsApi, AwsClients, AwsErrorKind, AwsResultExt, CallOutcome, RateClock, RateLimits,
};
use aws_config::BehaviorVersion;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
use aws_sdk_sqs::config::{Credentials, Region};
use aws_smithy_types::retry::RetryConfig;
use prometheus_client::registry::Registry;

use crate::harness::{aws_clients, sent_emails, test_settings, unique};

#[tokio::test]
async fn call_log_records_each_operation_and_tells_writes_from_reads() {
    let aws = aws_clients().await;
    let queue = unique("calllog");
    let alarm = unique("calllog-alarm");

    aws.acquire(AwsApi::Sqs).await;
    let url = aws
        .sqs
        .create_queue()
        .queue_name(&queue)
        .send()
        .await
        .aws("CreateQueue")
        .expect("queue created")
        .queue_url
        .expect("queue URL");
    aws.acquire(AwsApi::Sqs).await;
    aws.sqs
        .get_queue_attributes()
        .queue_url(&url)
        .send()
        .await
        .aws("GetQueueAttributes")
        .expect("attributes read");
    aws.acquire(AwsApi::DescribeAlarms).await;
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm)
        .namespace("AWS/SQS")
        .metric_name("ApproximateAgeOfOldestMessage")
        .statistic(Statistic::Maximum)
        .period(60)
        .evaluation_periods(1)
        .threshold(300.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .aws("PutMetricAlarm")
        .expect("alarm created");
    aws.acquire(AwsApi::DescribeAlarms).await;
    let described = aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(&alarm)
        .send()
        .await
        .aws("DescribeAlarms")
        .expect("alarms described");
    assert_eq!(described.metric_alarms().len(), 1);

    let log = aws.call_log();
    let seen: Vec<(String, String, CallOutcome)> = log
        .snapshot()
        .into_iter()
        .map(|r| (r.service, r.operation, r.outcome))
        .collect();
    assert_eq!(
        seen,
        [
            ("SQS".into(), "CreateQueue".into(), CallOutcome::Success),
            (
                "SQS".into(),
                "GetQueueAttributes".into(),
                CallOutcome::Success
            ),
            (
                "CloudWatch".into(),
                "PutMetricAlarm".into(),
                CallOutcome::Success
            ),
            (
                "CloudWatch".into(),
                "DescribeAlarms".into(),
                CallOutcome::Success
            ),
        ]
    );
    let writes: Vec<String> = log.writes().into_iter().map(|r| r.operation).collect();
    assert_eq!(writes, ["CreateQueue", "PutMetricAlarm"]);
    assert_eq!(log.count("DescribeAlarms"), 1);

    // A read-only pass after a reset records reads and no writes.
    log.reset();
    aws.acquire(AwsApi::DescribeAlarms).await;
    aws.cloudwatch
        .describe_alarms()
        .alarm_names(&alarm)
        .send()
        .await
        .aws("DescribeAlarms")
        .expect("alarms described");
    assert_eq!(log.count("DescribeAlarms"), 1);
    assert!(log.writes().is_empty(), "{:?}", log.writes());

    // Clones of the clients share the log.
    let clone = aws.clone();
    clone
        .sqs
        .list_queues()
        .send()
        .await
        .aws("ListQueues")
        .expect("queues listed");
    assert_eq!(log.count("ListQueues"), 1);
}

#[tokio::test]
async fn missing_resources_are_classified_as_not_found_and_logged_as_failed() {
    let aws = aws_clients().await;

    let sqs = aws
        .sqs
        .get_queue_url()
        .queue_name(unique("absent"))
        .send()
        .await
        .aws("GetQueueUrl")
        .expect_err("the queue does not exist");
    assert_eq!(sqs.kind(), AwsErrorKind::NotFound, "{sqs}");
    assert_eq!(sqs.operation(), "GetQueueUrl");
    assert!(!sqs.is_terminal());

    let topic_arn = format!("arn:aws:sns:us-east-1:123456789012:{}", unique("absent"));
    let sns = aws
        .sns
        .get_topic_attributes()
        .topic_arn(topic_arn)
        .send()
        .await
        .aws("GetTopicAttributes")
        .expect_err("the topic does not exist");
    assert_eq!(sns.kind(), AwsErrorKind::NotFound, "{sns}");

    let events = aws
        .eventbridge
        .describe_rule()
        .name(unique("absent"))
        .send()
        .await
        .aws("DescribeRule")
        .expect_err("the rule does not exist");
    assert_eq!(events.kind(), AwsErrorKind::NotFound, "{events}");
    assert_eq!(events.code(), Some("ResourceNotFoundException"));

    // The interceptor read the same codes from the wire.
    let failed: Vec<(String, CallOutcome)> = aws
        .call_log()
        .snapshot()
        .into_iter()
        .map(|r| (r.operation, r.outcome))
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    for ((operation, outcome), error) in failed.iter().zip([&sqs, &sns, &events]) {
        assert_eq!(operation, error.operation());
        assert_eq!(
            outcome,
            &CallOutcome::Failed(error.code().expect("AWS answered").to_owned()),
        );
    }
}

#[tokio::test]
async fn rejected_requests_are_terminal_invalid_requests() {
    let aws = aws_clients().await;

    // An event pattern's values must be arrays.
    let pattern = aws
        .eventbridge
        .put_rule()
        .name(unique("badpattern"))
        .event_pattern(r#"{"source": "aws.emr"}"#)
        .send()
        .await
        .aws("PutRule")
        .expect_err("the pattern is invalid");
    assert_eq!(pattern.kind(), AwsErrorKind::InvalidRequest, "{pattern}");
    assert!(pattern.is_terminal());
    assert_eq!(pattern.code(), Some("InvalidEventPatternException"));
    assert!(pattern.to_string().contains("fix the resource's spec"));

    let queue = aws
        .sqs
        .create_queue()
        .queue_name("not a valid queue name!")
        .send()
        .await
        .aws("CreateQueue")
        .expect_err("the name is invalid");
    assert!(queue.is_terminal(), "{queue}");
}

#[tokio::test]
async fn sent_email_is_readable_from_the_emulator() {
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
    let aws = aws_clients().await;
    let sender = format!("{}@example.com", unique("alerts"));
    let subject = unique("subject");
    aws.ses
        .create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .aws("CreateEmailIdentity")
        .expect("identity created");
    let text = Content::builder()
        .data("alarm fired")
        .build()
        .expect("content");
    let title = Content::builder().data(&subject).build().expect("content");
    aws.ses
        .send_email()
        .from_email_address(&sender)
        .destination(
            Destination::builder()
                .to_addresses("oncall@example.com")
                .build(),
        )
        .content(
            EmailContent::builder()
                .simple(
                    Message::builder()
                        .subject(title)
                        .body(Body::builder().text(text).build())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .aws("SendEmail")
        .expect("email sent");

    let mine: Vec<serde_json::Value> = sent_emails()
        .await
        .into_iter()
        .filter(|message| message["subject"] == subject.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["source"], sender.as_str());
    assert_eq!(mine[0]["body"], "alarm fired");
    assert_eq!(
        mine[0]["destinations"]["ToAddresses"],
        serde_json::json!(["oncall@example.com"])
    );
    let writes: Vec<String> = aws
        .call_log()
        .writes()
        .into_iter()
        .map(|r| r.operation)
        .collect();
    assert_eq!(writes, ["CreateEmailIdentity", "SendEmail"]);
}

#[tokio::test]
async fn rate_limiter_spaces_calls_on_a_fake_clock() {
    let settings = test_settings().with_rate(AwsApi::Sqs, ApiRate::per_second(5).with_burst(2));
    let clock = RateClock::fake();
    let aws = aws_clients()
        .await
        .with_rate_limits(RateLimits::with_clock(&settings, clock.clone()));

    let mut granted_at = Vec::new();
    for _ in 0..7 {
        aws.acquire(AwsApi::Sqs).await;
        granted_at.push(clock.elapsed());
        aws.sqs
            .list_queues()
            .send()
            .await
            .aws("ListQueues")
            .expect("queues listed");
    }
    let ms: Vec<u128> = granted_at.iter().map(Duration::as_millis).collect();
    // A burst of two at once, then one every 200 ms.
    assert_eq!(ms, [0, 0, 200, 400, 600, 800, 1000]);
    assert_eq!(aws.call_log().count("ListQueues"), 7);
    // The other APIs kept their own (generous) budget.
    aws.acquire(AwsApi::DescribeAlarms).await;
    assert_eq!(clock.elapsed(), Duration::from_millis(1000));
}

/// A stand-in CloudWatch endpoint that throttles the first `throttled` requests, because the
/// emulator never throttles. It answers as CloudWatch does over RPC-v2 CBOR: the error code in
/// `x-amzn-query-error` and `__type`, an empty DescribeAlarms answer as an empty map. Returns its
/// URL and the count of requests served.
async fn throttling_cloudwatch(throttled: usize) -> (String, Arc<AtomicUsize>) {
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let app = axum::Router::new().fallback(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            let cbor = http::Response::builder()
                .header("content-type", "application/cbor")
                .header("smithy-protocol", "rpc-v2-cbor");
            let response = if n < throttled {
                let mut body = vec![0xa2]; // a map of two entries
                for text in [
                    "__type",
                    "com.amazonaws.cloudwatch#Throttling",
                    "message",
                    "Rate exceeded",
                ] {
                    body.extend(cbor_text(text));
                }
                cbor.status(400)
                    .header("x-amzn-query-error", "Throttling;Sender")
                    .body(axum::body::Body::from(body))
            } else {
                // An empty map: no alarms, no NextToken.
                cbor.status(200).body(axum::body::Body::from(vec![0xa0]))
            };
            response.expect("a valid response")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, served)
}

/// `text` as a CBOR text string (major type 3) shorter than 256 bytes.
fn cbor_text(text: &str) -> Vec<u8> {
    let length = u8::try_from(text.len()).expect("shorter than 256 bytes");
    let mut encoded = if length < 24 {
        vec![0x60 | length]
    } else {
        vec![0x78, length]
    };
    encoded.extend(text.as_bytes());
    encoded
}

async fn clients_for(endpoint: &str, max_attempts: u32) -> AwsClients {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        // Keep the SDK's backoff short so the test does not wait on it.
        .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(1)))
        .load()
        .await;
    let mut settings = test_settings();
    settings.max_attempts = max_attempts.try_into().expect("non-zero");
    AwsClients::from_sdk_config(&config, settings)
}

#[tokio::test]
async fn throttled_attempts_are_retried_by_the_sdk_and_counted() {
    let (endpoint, served) = throttling_cloudwatch(2).await;
    let aws = clients_for(&endpoint, 5).await;
    let mut registry = Registry::default();
    aws.metrics().register(&mut registry);

    aws.cloudwatch
        .describe_alarms()
        .send()
        .await
        .aws("DescribeAlarms")
        .expect("succeeds after two throttled attempts");

    assert_eq!(served.load(Ordering::SeqCst), 3);
    let outcomes: Vec<CallOutcome> = aws
        .call_log()
        .snapshot()
        .into_iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            CallOutcome::Throttled,
            CallOutcome::Throttled,
            CallOutcome::Success
        ]
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode metrics");
    assert!(
        text.contains(r#"aws_throttles_total{service="CloudWatch",operation="DescribeAlarms"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn throttling_past_max_attempts_is_a_throttled_error() {
    let (endpoint, served) = throttling_cloudwatch(usize::MAX).await;
    let aws = clients_for(&endpoint, 2).await;

    let error = aws
        .cloudwatch
        .describe_alarms()
        .send()
        .await
        .aws("DescribeAlarms")
        .expect_err("always throttled");

    assert!(error.is_throttled(), "{error}");
    assert!(!error.is_terminal());
    assert_eq!(error.code(), Some("Throttling"));
    assert_eq!(served.load(Ordering::SeqCst), 2, "max_attempts is applied");
    assert_eq!(aws.call_log().count("DescribeAlarms"), 2);
}
