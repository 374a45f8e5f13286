//! Accounting of AWS calls: an SDK interceptor records every attempt of every operation into a
//! shared [`CallLog`] (which tests query, e.g. "a second reconcile makes no writes") and into
//! Prometheus counters.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::error::is_throttling_code;
use super::rate_limit::{AwsApi, RateLimits};

/// How one attempt of an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// AWS answered with the operation's output.
    Success,
    /// AWS refused the attempt as throttled (the SDK retries it with backoff).
    Throttled,
    /// Any other failure, with the AWS error code, or `HTTP <status>` when the response had
    /// none, or `DispatchFailure` / `Timeout` when no response came.
    Failed(String),
}

impl CallOutcome {
    fn label(&self) -> &'static str {
        match self {
            CallOutcome::Success => "success",
            CallOutcome::Throttled => "throttled",
            CallOutcome::Failed(_) => "failed",
        }
    }
}

/// One attempt of one AWS operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// Service name as the SDK names it: `CloudWatch`, `SNS`, `SQS`, `EventBridge`, `EMR`, `SESv2`.
    pub service: String,
    /// Operation name, e.g. `PutMetricAlarm`.
    pub operation: String,
    /// How the attempt ended.
    pub outcome: CallOutcome,
}

impl CallRecord {
    /// Whether the operation changes state in AWS (see [`is_write_operation`]).
    pub fn is_write(&self) -> bool {
        is_write_operation(&self.operation)
    }
}

/// Operation-name prefixes that only read. Anything else counts as a write, so that an
/// unfamiliar mutating operation can never hide in a "no writes" assertion.
const READ_PREFIXES: &[&str] = &["Describe", "List", "Get", "BatchGet", "Receive", "Test"];

/// Whether an operation changes state in AWS: `Put*`, `Create*`, `Delete*`, `Tag*`, `Publish`,
/// `RunJobFlow`, `SendEmail`… are writes; `Describe*`, `List*`, `Get*`, `Receive*`, `Test*` are
/// reads. (`ReceiveMessage` changes message visibility but not the configuration alertops owns.)
pub fn is_write_operation(operation: &str) -> bool {
    !READ_PREFIXES.iter().any(|prefix| {
        operation
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.chars().next().is_none_or(|c| c.is_ascii_uppercase()))
    })
}

/// How many records a [`CallLog`] keeps by default; older ones are dropped so that a
/// long-running controller does not grow without bound (the counters keep the totals).
pub const DEFAULT_CALL_LOG_CAPACITY: usize = 10_000;

/// A shared, cheap-to-clone record of AWS call attempts, newest last.
#[derive(Clone)]
pub struct CallLog {
    inner: Arc<Mutex<LogState>>,
    metrics: AwsMetrics,
    /// The limiters told of each throttled attempt, so that the API's rate adapts.
    throttle_sink: Arc<Mutex<Option<RateLimits>>>,
}

struct LogState {
    records: VecDeque<CallRecord>,
    capacity: usize,
}

impl CallLog {
    /// An empty log keeping the last [`DEFAULT_CALL_LOG_CAPACITY`] records.
    pub fn new() -> Self {
        CallLog::with_capacity(DEFAULT_CALL_LOG_CAPACITY)
    }

    /// An empty log keeping the last `capacity` records (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        CallLog {
            inner: Arc::new(Mutex::new(LogState {
                records: VecDeque::new(),
                capacity: capacity.max(1),
            })),
            metrics: AwsMetrics::default(),
            throttle_sink: Arc::default(),
        }
    }

    /// From now on, every throttled attempt recorded here lowers its API's rate in `limits`
    /// (this log and its clones).
    pub fn feed_throttles_to(&self, limits: RateLimits) {
        *self
            .throttle_sink
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(limits);
    }

    /// Adds a record and counts it in the metrics.
    pub fn record(&self, record: CallRecord) {
        self.metrics.observe(&record);
        if record.outcome == CallOutcome::Throttled {
            let sink = self
                .throttle_sink
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let (Some(limits), Some(api)) = (
                sink.as_ref(),
                AwsApi::of_operation(&record.service, &record.operation),
            ) {
                limits.throttled(api);
            }
        }
        let mut state = self.lock();
        if state.records.len() == state.capacity {
            state.records.pop_front();
        }
        state.records.push_back(record);
    }

    /// Every retained record, oldest first.
    pub fn snapshot(&self) -> Vec<CallRecord> {
        self.lock().records.iter().cloned().collect()
    }

    /// How many attempts of `operation` (e.g. `"DescribeAlarms"`) were recorded.
    pub fn count(&self, operation: &str) -> usize {
        self.lock()
            .records
            .iter()
            .filter(|record| record.operation == operation)
            .count()
    }

    /// The recorded attempts of operations that change state in AWS, oldest first.
    pub fn writes(&self) -> Vec<CallRecord> {
        self.lock()
            .records
            .iter()
            .filter(|record| record.is_write())
            .cloned()
            .collect()
    }

    /// Forgets every record (the metrics keep counting).
    pub fn reset(&self) {
        self.lock().records.clear();
    }

    /// The Prometheus counters this log feeds.
    pub fn metrics(&self) -> &AwsMetrics {
        &self.metrics
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock cannot leave the deque inconsistent: keep going.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for CallLog {
    fn default() -> Self {
        CallLog::new()
    }
}

impl fmt::Debug for CallLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("CallLog")
            .field("records", &state.records.len())
            .field("capacity", &state.capacity)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    service: String,
    operation: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ThrottleLabels {
    service: String,
    operation: String,
}

/// Prometheus counters of AWS calls: `aws_calls_total{service,operation,outcome}` (outcome is
/// `success`, `throttled` or `failed`) and `aws_throttles_total{service,operation}`.
#[derive(Clone, Debug, Default)]
pub struct AwsMetrics {
    calls: Family<CallLabels, Counter>,
    throttles: Family<ThrottleLabels, Counter>,
}

impl AwsMetrics {
    /// Registers the counters (clones share the same values).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "aws_calls",
            "AWS operation attempts by service, operation and outcome",
            self.calls.clone(),
        );
        registry.register(
            "aws_throttles",
            "AWS operation attempts refused as throttled",
            self.throttles.clone(),
        );
    }

    fn observe(&self, record: &CallRecord) {
        self.calls
            .get_or_create(&CallLabels {
                service: record.service.clone(),
                operation: record.operation.clone(),
                outcome: record.outcome.label(),
            })
            .inc();
        if record.outcome == CallOutcome::Throttled {
            self.throttles
                .get_or_create(&ThrottleLabels {
                    service: record.service.clone(),
                    operation: record.operation.clone(),
                })
                .inc();
        }
    }
}

/// The SDK interceptor that records each attempt into a [`CallLog`].
#[derive(Clone, Debug)]
pub struct CallRecorder {
    log: CallLog,
}

impl CallRecorder {
    /// An interceptor recording into `log`.
    pub fn new(log: CallLog) -> Self {
        CallRecorder { log }
    }
}

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "alertops::CallRecorder"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = match cfg.load::<Metadata>() {
            Some(metadata) => (metadata.service().to_owned(), metadata.name().to_owned()),
            None => ("unknown".to_owned(), "unknown".to_owned()),
        };
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => CallOutcome::Success,
            Some(Err(error)) => match context.response() {
                Some(response) => outcome_of_error_response(response),
                None if error.is_timeout_error() => CallOutcome::Failed("Timeout".to_owned()),
                None => CallOutcome::Failed("DispatchFailure".to_owned()),
            },
            None => CallOutcome::Failed("NoResponse".to_owned()),
        };
        self.log.record(CallRecord {
            service,
            operation,
            outcome,
        });
        Ok(())
    }
}

/// The outcome of an attempt that got an error response. The operation's error is type-erased
/// here (its metadata is out of reach), so the code is read from the response as the SDK's
/// protocol deserializers do.
fn outcome_of_error_response(response: &HttpResponse) -> CallOutcome {
    let status = response.status().as_u16();
    let code = error_code(
        response.headers().get("x-amzn-query-error"),
        response.headers().get("x-amzn-errortype"),
        response.body().bytes().unwrap_or_default(),
    );
    match code {
        Some(code) if is_throttling_code(&code) => CallOutcome::Throttled,
        _ if status == 429 => CallOutcome::Throttled,
        Some(code) => CallOutcome::Failed(code),
        None => CallOutcome::Failed(format!("HTTP {status}")),
    }
}

/// The AWS error code of an error response: the `x-amzn-query-error` header (awsQuery-compatible
/// JSON services such as SQS), the `x-amzn-errortype` header (restJson), the JSON body's
/// `__type`/`code`, or the XML body's `<Code>` (awsQuery services such as CloudWatch and SNS).
fn error_code(query_error: Option<&str>, error_type: Option<&str>, body: &[u8]) -> Option<String> {
    let from_headers = query_error
        .and_then(|value| value.split(';').next())
        .or_else(|| error_type.and_then(|value| value.split(':').next()));
    if let Some(code) = from_headers.map(str::trim).filter(|code| !code.is_empty()) {
        return Some(code.to_owned());
    }
    let body = std::str::from_utf8(body).ok()?.trim_start();
    let raw = if body.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(body).ok()?;
        ["__type", "code", "Code"]
            .iter()
            .find_map(|key| json.get(key).and_then(|value| value.as_str()))?
            .to_owned()
    } else {
        let start = body.find("<Code>")? + "<Code>".len();
        let end = start + body[start..].find("</Code>")?;
        body[start..end].to_owned()
    };
    // `__type` may be `namespace#Code` or `Code:uri`.
    let code = raw.rsplit('#').next().unwrap_or(&raw);
    let code = code.split(':').next().unwrap_or(code).trim();
    (!code.is_empty()).then(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;
    use prometheus_client::encoding::text::encode;

    fn record(operation: &str, outcome: CallOutcome) -> CallRecord {
        CallRecord {
            service: "CloudWatch".to_owned(),
            operation: operation.to_owned(),
            outcome,
        }
    }

    #[test]
    fn reads_and_writes_are_told_apart() {
        for write in [
            "PutMetricAlarm",
            "DeleteAlarms",
            "TagResource",
            "UntagResource",
            "CreateTopic",
            "SetQueueAttributes",
            "Subscribe",
            "Unsubscribe",
            "RemoveTargets",
            "PutTargets",
            "EnableAlarmActions",
            "DisableRule",
            "RunJobFlow",
            "SendEmail",
            "Publish",
            "AddTags",
            "ModifyInstanceGroups",
            "TerminateJobFlows",
            "ChangeMessageVisibility",
            "PurgeQueue",
            "SendMessage",
            "DeleteMessage",
            // Starts like a read verb but is not one.
            "Listen",
            "Getaway",
        ] {
            assert!(is_write_operation(write), "{write} is a write");
        }
        for read in [
            "DescribeAlarms",
            "ListTagsForResource",
            "GetQueueUrl",
            "GetQueueAttributes",
            "ReceiveMessage",
            "TestEventPattern",
            "DescribeCluster",
            "List",
        ] {
            assert!(!is_write_operation(read), "{read} is a read");
        }
    }

    #[test]
    fn log_counts_filters_and_resets() {
        let log = CallLog::new();
        log.record(record("DescribeAlarms", CallOutcome::Success));
        log.record(record("PutMetricAlarm", CallOutcome::Throttled));
        log.record(record("PutMetricAlarm", CallOutcome::Success));
        let clone = log.clone();
        clone.record(record(
            "DescribeAlarms",
            CallOutcome::Failed("InternalFailure".to_owned()),
        ));
        assert_eq!(log.count("DescribeAlarms"), 2);
        assert_eq!(log.count("PutMetricAlarm"), 2);
        assert_eq!(log.count("DeleteAlarms"), 0);
        let writes: Vec<String> = log.writes().into_iter().map(|r| r.operation).collect();
        assert_eq!(writes, ["PutMetricAlarm", "PutMetricAlarm"]);
        assert_eq!(log.snapshot().len(), 4);
        log.reset();
        assert!(clone.snapshot().is_empty());
    }

    #[test]
    fn log_keeps_only_the_newest_records_up_to_its_capacity() {
        let log = CallLog::with_capacity(2);
        for operation in ["ListQueues", "CreateQueue", "GetQueueUrl"] {
            log.record(record(operation, CallOutcome::Success));
        }
        let kept: Vec<String> = log.snapshot().into_iter().map(|r| r.operation).collect();
        assert_eq!(kept, ["CreateQueue", "GetQueueUrl"]);
    }

    #[test]
    fn metrics_count_calls_by_outcome_and_throttles() {
        let log = CallLog::new();
        let mut registry = Registry::default();
        log.metrics().register(&mut registry);
        log.record(record("PutMetricAlarm", CallOutcome::Throttled));
        log.record(record("PutMetricAlarm", CallOutcome::Throttled));
        log.record(record("PutMetricAlarm", CallOutcome::Success));
        let mut text = String::new();
        encode(&mut text, &registry).expect("encoding to a String cannot fail");
        assert!(
            text.contains(
                r#"aws_calls_total{service="CloudWatch",operation="PutMetricAlarm",outcome="throttled"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"aws_calls_total{service="CloudWatch",operation="PutMetricAlarm",outcome="success"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"aws_throttles_total{service="CloudWatch",operation="PutMetricAlarm"} 2"#
            ),
            "{text}"
        );
    }

    #[test]
    fn throttled_attempts_lower_the_rate_of_their_own_api() {
        use crate::aws::{AwsApi, AwsSettings, RateClock, RateLimits};
        let limits = RateLimits::with_clock(&AwsSettings::default(), RateClock::fake());
        let log = CallLog::new();
        log.feed_throttles_to(limits.clone());
        log.record(record("PutMetricAlarm", CallOutcome::Throttled));
        log.record(record("DescribeAlarms", CallOutcome::Success));
        assert_eq!(limits.current_rate(AwsApi::PutMetricAlarm), 1.5);
        assert_eq!(limits.current_rate(AwsApi::DescribeAlarms), 9.0);
    }

    #[test]
    fn error_codes_are_read_from_each_protocol() {
        let xml = br#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#;
        assert_eq!(error_code(None, None, xml).as_deref(), Some("Throttling"));
        let json = br#"{"__type":"com.amazonaws.events#ResourceNotFoundException","message":"x"}"#;
        assert_eq!(
            error_code(None, None, json).as_deref(),
            Some("ResourceNotFoundException")
        );
        assert_eq!(
            error_code(
                Some("AWS.SimpleQueueService.NonExistentQueue;Sender"),
                None,
                json
            )
            .as_deref(),
            Some("AWS.SimpleQueueService.NonExistentQueue")
        );
        assert_eq!(
            error_code(None, Some("NotFoundException:http://internal/"), b"").as_deref(),
            Some("NotFoundException")
        );
        assert_eq!(error_code(None, None, b"<html>oops</html>"), None);
        assert_eq!(error_code(None, None, b"{not json"), None);
    }

    #[test]
    fn error_responses_become_outcomes() {
        let response = |status: u16, body: &'static str| {
            HttpResponse::new(
                status.try_into().expect("valid status"),
                SdkBody::from(body),
            )
        };
        assert_eq!(
            outcome_of_error_response(&response(
                400,
                "<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>"
            )),
            CallOutcome::Throttled
        );
        assert_eq!(
            outcome_of_error_response(&response(429, "")),
            CallOutcome::Throttled
        );
        assert_eq!(
            outcome_of_error_response(&response(400, r#"{"__type":"ValidationException"}"#)),
            CallOutcome::Failed("ValidationException".to_owned())
        );
        assert_eq!(
            outcome_of_error_response(&response(503, "")),
            CallOutcome::Failed("HTTP 503".to_owned())
        );
    }
}
