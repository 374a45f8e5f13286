use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::alert::{SnsEnvelope, decode_message};
use crate::aws::LogEventPage;

/// A CloudWatch alarm notification on `metric`, `state`, at 10:00:00 with 60 s × 3 periods.
fn alarm(metric: &str, state: &str) -> Alert {
    let message = json!({
        "AlarmName": "checkout-errors",
        "AWSAccountId": "123456789012",
        "NewStateValue": state,
        "NewStateReason": "Threshold Crossed",
        "StateChangeTime": "2024-05-01T10:00:00.000+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-errors",
        "OldStateValue": "OK",
        "Trigger": {
            "MetricName": metric,
            "Namespace": "Checkout",
            "Statistic": "SUM",
            "Period": 60,
            "EvaluationPeriods": 3,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0.0,
        }
    });
    decode_message(&message.to_string(), &SnsEnvelope::default())
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn ms(text: &str) -> i64 {
    at(text).timestamp_millis()
}

fn event(time: &str, message: &str) -> LogEvent {
    LogEvent {
        timestamp_ms: ms(time),
        message: message.to_string(),
    }
}

#[test]
fn the_window_is_the_evaluation_periods_before_the_state_change() {
    let window = AlarmWindow::of(&alarm("CheckoutErrors", "ALARM")).expect("a firing alarm");
    assert_eq!(window.metric_name, "CheckoutErrors");
    assert_eq!(window.namespace, "Checkout");
    assert_eq!(window.start, at("2024-05-01T09:57:00Z"));
    assert_eq!(window.end, at("2024-05-01T10:00:00Z"));
    assert_eq!(window.region.as_deref(), Some("us-east-1"));
}

#[test]
fn only_firing_alarms_on_one_metric_have_a_window() {
    assert_eq!(AlarmWindow::of(&alarm("CheckoutErrors", "OK")), None);
    let mut math = alarm("CheckoutErrors", "ALARM");
    math.raw = math.raw.replace("\"MetricName\"", "\"Other\"");
    assert_eq!(AlarmWindow::of(&math), None, "no MetricName: metric math");
    let message = Alert::new(
        AlertKind::Message,
        AlertState::Firing,
        crate::alert::Fingerprint::from_raw("m"),
        "t".into(),
    );
    assert_eq!(AlarmWindow::of(&message), None);
}

#[test]
fn slices_go_from_the_newest_period_back_and_the_last_takes_the_rest() {
    let window = AlarmWindow::of(&alarm("CheckoutErrors", "ALARM")).unwrap();
    let end = ms("2024-05-01T10:00:00Z");
    assert_eq!(
        window.slices(2),
        vec![
            (end - 59_999, end),
            (ms("2024-05-01T09:57:00Z"), end - 60_000)
        ]
    );
    let all = window.slices(10);
    assert_eq!(all.len(), 3, "three periods: {all:?}");
    assert_eq!(all[2].0, ms("2024-05-01T09:57:00Z"));
    for pair in all.windows(2) {
        assert_eq!(pair[1].1 + 1, pair[0].0, "contiguous, no overlap");
    }
}

#[test]
fn newest_lines_come_first_cut_and_without_control_characters() {
    let long = "x".repeat(MAX_LINE_CHARS + 50);
    let events = vec![
        event("2024-05-01T09:58:00Z", "oldest\n"),
        event("2024-05-01T09:59:30Z", &long),
        event("2024-05-01T09:59:00Z", "middle\u{7}bell\r\n"),
    ];
    let lines = newest_lines(&events, 2);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].time, at("2024-05-01T09:59:30Z"));
    assert_eq!(lines[0].message.chars().count(), MAX_LINE_CHARS);
    assert!(lines[0].message.ends_with('…'));
    assert_eq!(lines[1].message, "middlebell");
}

#[test]
fn plain_term_patterns_become_insights_filters_and_selectors_do_not() {
    assert_eq!(
        insights_query("ERROR \"payment declined\""),
        "fields @timestamp, @message, @logStream\n| filter @message like \"ERROR\" and @message like \"payment declined\"\n| sort @timestamp desc\n| limit 100"
    );
    for pattern in [
        "{ $.level = \"ERROR\" }",
        "[ip, user, status=5*]",
        "?ERROR ?FATAL",
        "ERROR -DEBUG",
        "",
    ] {
        assert!(
            !insights_query(pattern).contains("filter"),
            "{pattern:?}: {}",
            insights_query(pattern)
        );
    }
}

/// The console's own encoding (see [`insights_url`]): checked against a URL of its shape.
#[test]
fn the_insights_link_encodes_window_query_and_group_as_the_console_does() {
    let url = insights_url(
        "eu-west-1",
        &["/aws/lambda/checkout".to_string()],
        at("2021-07-15T21:00:00Z"),
        at("2021-07-18T20:59:59Z"),
        "fields @timestamp, @message",
    );
    assert_eq!(
        url,
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:logs-insights\
         $3FqueryDetail$3D$257E$2528end$257E$25272021-07-18T20*3A59*3A59.000Z\
         $257Estart$257E$25272021-07-15T21*3A00*3A00.000Z$257EtimeType$257E$2527ABSOLUTE\
         $257Etz$257E$2527UTC$257EeditorString$257E$2527fields*20*40timestamp*2C*20*40message\
         $257Esource$257E$2528$257E$2527*2Faws*2Flambda*2Fcheckout$2529$2529"
    );
    assert!(
        !url.contains(['<', '>', '|', ' ', '"']),
        "safe in mrkdwn and HTML"
    );
}

/// A fake CloudWatch Logs: the filters of one metric, events by group, calls counted.
#[derive(Default)]
struct FakeLogs {
    filters: Vec<MetricFilterSource>,
    events: Vec<LogEvent>,
    page_size: usize,
    describe_error: Option<AwsErrorKind>,
    filter_error: Option<AwsErrorKind>,
    hang: bool,
    describes: AtomicUsize,
    pages: AtomicUsize,
}

fn refusal(kind: AwsErrorKind, operation: &str) -> AwsError {
    let code = match kind {
        AwsErrorKind::AccessDenied => "AccessDeniedException",
        AwsErrorKind::Throttled => "ThrottlingException",
        _ => "ServiceUnavailableException",
    };
    AwsError::new(kind, operation, code, "no")
}

#[async_trait]
impl LogEvents for FakeLogs {
    async fn metric_filter_sources(
        &self,
        metric_name: &str,
        _namespace: &str,
    ) -> Result<Vec<MetricFilterSource>, AwsError> {
        self.describes.fetch_add(1, Ordering::SeqCst);
        if let Some(kind) = self.describe_error {
            return Err(refusal(kind, "DescribeMetricFilters"));
        }
        Ok(if metric_name == "CheckoutErrors" {
            self.filters.clone()
        } else {
            Vec::new()
        })
    }

    async fn log_event_page(
        &self,
        query: &LogEventQuery,
        next_token: Option<String>,
    ) -> Result<LogEventPage, AwsError> {
        self.pages.fetch_add(1, Ordering::SeqCst);
        if self.hang {
            std::future::pending::<()>().await;
        }
        if let Some(kind) = self.filter_error {
            return Err(refusal(kind, "FilterLogEvents"));
        }
        let mut matching: Vec<LogEvent> = self
            .events
            .iter()
            .filter(|e| e.timestamp_ms >= query.start_ms && e.timestamp_ms <= query.end_ms)
            .cloned()
            .collect();
        matching.sort_by_key(|e| e.timestamp_ms);
        let from: usize = next_token.map_or(0, |t| t.parse().unwrap());
        let size = if self.page_size == 0 {
            usize::MAX
        } else {
            self.page_size
        };
        let to = from.saturating_add(size).min(matching.len());
        Ok(LogEventPage {
            events: matching[from..to].to_vec(),
            next_token: (to < matching.len()).then(|| to.to_string()),
        })
    }
}

fn checkout_filter() -> Vec<MetricFilterSource> {
    vec![MetricFilterSource {
        log_group: "/app/checkout".into(),
        pattern: "ERROR".into(),
    }]
}

fn fetcher(fake: &Arc<FakeLogs>) -> LogLineFetcher {
    LogLineFetcher::new(fake.clone(), Duration::from_secs(300))
}

#[tokio::test]
async fn an_ordinary_alarm_costs_one_describe_per_metric_and_shows_nothing() {
    let fake = Arc::new(FakeLogs::default());
    let fetcher = fetcher(&fake);
    for _ in 0..3 {
        assert_eq!(
            fetcher.excerpt(&alarm("CPUUtilization", "ALARM")).await,
            None
        );
    }
    assert_eq!(
        fake.describes.load(Ordering::SeqCst),
        1,
        "the negative answer is cached"
    );
    assert_eq!(fake.pages.load(Ordering::SeqCst), 0);
    assert_eq!(fetcher.excerpt(&alarm("CPUUtilization", "OK")).await, None);
    assert_eq!(
        fake.describes.load(Ordering::SeqCst),
        1,
        "resolved: not looked at"
    );
}

#[tokio::test]
async fn a_log_alarm_shows_the_newest_lines_of_its_window_and_the_link() {
    let fake = Arc::new(FakeLogs {
        filters: checkout_filter(),
        events: vec![
            event("2024-05-01T09:50:00Z", "ERROR before the window"),
            event("2024-05-01T09:57:10Z", "ERROR one"),
            event("2024-05-01T09:58:10Z", "ERROR two"),
            event("2024-05-01T09:58:20Z", "ERROR two-b"),
            event("2024-05-01T09:59:10Z", "ERROR three"),
            event("2024-05-01T09:59:20Z", "ERROR four"),
            event("2024-05-01T09:59:30Z", "ERROR five"),
            event("2024-05-01T09:59:40Z", "ERROR six"),
            event("2024-05-01T10:00:30Z", "ERROR after the window"),
        ],
        ..FakeLogs::default()
    });
    let excerpt = fetcher(&fake)
        .excerpt(&alarm("CheckoutErrors", "ALARM"))
        .await
        .expect("a log alarm");
    let lines: Vec<&str> = excerpt.lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(
        lines,
        [
            "ERROR six",
            "ERROR five",
            "ERROR four",
            "ERROR three",
            "ERROR two-b"
        ]
    );
    assert!(excerpt.more, "six were read, five are shown");
    assert_eq!(excerpt.unavailable, None);
    assert_eq!(excerpt.log_groups, ["/app/checkout"]);
    let url = excerpt.insights_url.expect("a link");
    assert!(
        url.contains("*2Fapp*2Fcheckout") && url.contains("ERROR"),
        "{url}"
    );
    assert_eq!(
        fake.pages.load(Ordering::SeqCst),
        2,
        "the newest slice held 4 lines, the next one enough: the oldest slice is not read"
    );
}

#[tokio::test]
async fn paging_stops_after_the_page_budget() {
    let events: Vec<LogEvent> = (0..40)
        .map(|i| LogEvent {
            timestamp_ms: ms("2024-05-01T09:59:30Z") + i,
            message: format!("ERROR {i}"),
        })
        .collect();
    let fake = Arc::new(FakeLogs {
        filters: checkout_filter(),
        events,
        page_size: 2,
        ..FakeLogs::default()
    });
    let excerpt = fetcher(&fake)
        .excerpt(&alarm("CheckoutErrors", "ALARM"))
        .await
        .unwrap();
    assert_eq!(fake.pages.load(Ordering::SeqCst), MAX_PAGES);
    assert!(excerpt.more, "matches were left unread");
    assert_eq!(excerpt.lines.len(), MAX_LINES);
    assert_eq!(
        excerpt.lines[0].message, "ERROR 7",
        "the newest of what was read"
    );
}

#[tokio::test]
async fn a_denied_describe_says_so_once_and_is_not_repeated() {
    let fake = Arc::new(FakeLogs {
        describe_error: Some(AwsErrorKind::AccessDenied),
        ..FakeLogs::default()
    });
    let fetcher = fetcher(&fake);
    for _ in 0..2 {
        let excerpt = fetcher
            .excerpt(&alarm("CheckoutErrors", "ALARM"))
            .await
            .expect("unknown whether a log alarm: said so");
        assert_eq!(
            excerpt.unavailable.as_deref(),
            Some("DescribeMetricFilters failed with AccessDeniedException")
        );
        assert!(excerpt.lines.is_empty() && excerpt.insights_url.is_none());
    }
    assert_eq!(fake.describes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_throttled_read_keeps_the_link_and_says_why() {
    let fake = Arc::new(FakeLogs {
        filters: checkout_filter(),
        filter_error: Some(AwsErrorKind::Throttled),
        ..FakeLogs::default()
    });
    let excerpt = fetcher(&fake)
        .excerpt(&alarm("CheckoutErrors", "ALARM"))
        .await
        .unwrap();
    assert_eq!(
        excerpt.unavailable.as_deref(),
        Some("FilterLogEvents failed with ThrottlingException")
    );
    assert!(excerpt.insights_url.is_some(), "the link still helps");
}

#[tokio::test]
async fn a_read_that_does_not_answer_ends_at_the_budget() {
    let fake = Arc::new(FakeLogs {
        filters: checkout_filter(),
        hang: true,
        ..FakeLogs::default()
    });
    let excerpt = fetcher(&fake)
        .with_budget(Duration::from_millis(50))
        .excerpt(&alarm("CheckoutErrors", "ALARM"))
        .await
        .unwrap();
    assert_eq!(
        excerpt.unavailable.as_deref(),
        Some("timed out after 50 ms")
    );
    assert_eq!(
        excerpt.log_groups,
        ["/app/checkout"],
        "the filters were read"
    );
    assert!(excerpt.insights_url.is_some());
}
