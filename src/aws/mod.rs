//! The AWS gateway: the only place that calls the AWS SDK. One module per service exposes typed
//! operations in our own terms ("alarms with this prefix", "put this alarm definition", "sync these
//! tags", "describe this cluster", "receive / delete / extend visibility"); each takes its own rate
//! permit ([`RateLimits`]) and classifies its own errors ([`AwsError`]). What the controller needs
//! is behind traits ([`ControllerAws`]), implemented by [`AwsClients`] (the SDK) and by
//! [`fake::FakeAws`] (in memory), so reconcile decisions are tested without the emulator.
//!
//! Inside this folder every call goes through `clients.call(AwsApi::X, "Operation", || …)`: it
//! takes the permit, sends, classifies a failure with [`AwsError::from_sdk`], and makes a call
//! that AWS still throttled after the SDK's retries again after the limiter's wait.

mod args;
mod call_log;
pub(crate) mod cloudwatch;
pub(crate) mod emr;
mod error;
pub(crate) mod eventbridge;
/// The in-memory AWS of the unit tests, public for the benchmarks (the inventory row).
#[doc(hidden)]
pub mod fake;
mod inventory;
pub(crate) mod log_events;
pub(crate) mod log_filters;
mod rate_limit;
pub(crate) mod ses;
pub(crate) mod sns;
pub(crate) mod sqs;
pub(crate) mod tags;
#[cfg(test)]
mod throttling_endpoint;

pub use args::AwsArgs;
pub use call_log::{
    AwsMetrics, CallLog, CallOutcome, CallRecord, CallRecorder, DEFAULT_CALL_LOG_CAPACITY,
    is_write_operation,
};
pub use error::{AwsError, AwsErrorKind, AwsResultExt, is_throttling_code};
pub use inventory::Inventory;
pub use rate_limit::{ApiRate, AwsApi, AwsSettings, RateClock, RateLimits, RateSpecError};

use std::error::Error as StdError;
use std::fmt;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;

pub use cloudwatch::{AlarmDefinition, AlarmListing, AlarmMetric, CloudWatchAlarms, ObservedAlarm};
pub use eventbridge::EventBridgeRules;
pub use log_events::{LogEvent, LogEventPage, LogEventQuery, LogEvents, MetricFilterSource};
pub use log_filters::LogMetricFilters;
pub use sns::SnsTopics;
pub use sqs::SqsQueues;

/// Everything the controller's reconcilers ask of AWS: alarms, topics and subscriptions, rules,
/// queues, the metric filters of log alarms, and the region their workloads run in.
pub trait ControllerAws:
    CloudWatchAlarms + SnsTopics + EventBridgeRules + SqsQueues + LogMetricFilters
{
    /// The region of the clients, passed on to the workloads the controller creates.
    fn region(&self) -> Option<String>;
}

impl ControllerAws for AwsClients {
    fn region(&self) -> Option<String> {
        AwsClients::region(self)
    }
}

/// One SDK client per AWS service alertops talks to, sharing configuration, rate limits and call
/// log.
#[derive(Clone, Debug)]
pub struct AwsClients {
    /// CloudWatch. The raw clients are public for test fixtures and tools; alertops itself
    /// calls AWS only through this folder's operations (a test checks there is no `.send()`
    /// elsewhere in `src/`).
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// EventBridge.
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// EMR.
    pub emr: aws_sdk_emr::Client,
    /// SES v2.
    pub ses: aws_sdk_sesv2::Client,
    /// CloudWatch Logs (metric filters of log alarms, log lines of firing ones).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    rate_limits: RateLimits,
    call_log: CallLog,
    settings: AwsSettings,
}

impl AwsClients {
    /// Clients for the given SDK configuration with default [`AwsSettings`].
    pub fn new(config: &SdkConfig) -> Self {
        AwsClients::from_sdk_config(config, AwsSettings::default())
    }

    /// Clients from the SDK's standard environment (`AWS_REGION`, `AWS_ENDPOINT_URL` and the
    /// per-service `AWS_ENDPOINT_URL_<SERVICE>` such as `AWS_ENDPOINT_URL_CLOUDWATCH`, the
    /// credentials chain, profiles), with the standard retry strategy: throttling and transient
    /// errors retried with exponential backoff up to `settings.max_attempts` attempts.
    pub async fn from_env(settings: AwsSettings) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry_config(&settings))
            .load()
            .await;
        AwsClients::from_sdk_config(&config, settings)
    }

    /// Clients for the given SDK configuration. Its retry configuration (standard if it has
    /// none) is kept with `settings.max_attempts` applied, and every client records its calls
    /// into one shared [`CallLog`].
    pub fn from_sdk_config(config: &SdkConfig, settings: AwsSettings) -> Self {
        let call_log = CallLog::new();
        let rate_limits = RateLimits::new(&settings);
        // Throttled attempts (the SDK's own retries included) lower that API's rate.
        call_log.feed_throttles_to(rate_limits.clone());
        let recorder = CallRecorder::new(call_log.clone());
        let retry = config
            .retry_config()
            .cloned()
            .unwrap_or_else(RetryConfig::standard)
            .with_max_attempts(settings.max_attempts.get());
        // One builder call per service: the builders are distinct types with no common trait.
        let cloudwatch = aws_sdk_cloudwatch::config::Builder::from(config)
            .retry_config(retry.clone())
            .interceptor(recorder.clone())
            .build();
        let sns = aws_sdk_sns::config::Builder::from(config)
            .retry_config(retry.clone())
            .interceptor(recorder.clone())
            .build();
        let sqs = aws_sdk_sqs::config::Builder::from(config)
            .retry_config(retry.clone())
            .interceptor(recorder.clone())
            .build();
        let eventbridge = aws_sdk_eventbridge::config::Builder::from(config)
            .retry_config(retry.clone())
            .interceptor(recorder.clone())
            .build();
        let emr = aws_sdk_emr::config::Builder::from(config)
            .retry_config(retry.clone())
            .interceptor(recorder.clone())
            .build();
        let ses = aws_sdk_sesv2::config::Builder::from(config)
            .retry_config(retry.clone())
            .interceptor(recorder.clone())
            .build();
        let logs = aws_sdk_cloudwatchlogs::config::Builder::from(config)
            .retry_config(retry)
            .interceptor(recorder)
            .build();
        AwsClients {
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(cloudwatch),
            sns: aws_sdk_sns::Client::from_conf(sns),
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
            eventbridge: aws_sdk_eventbridge::Client::from_conf(eventbridge),
            emr: aws_sdk_emr::Client::from_conf(emr),
            ses: aws_sdk_sesv2::Client::from_conf(ses),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs),
            rate_limits,
            call_log,
            settings,
        }
    }

    /// The same clients with CloudWatch at its own endpoint (the other services keep theirs).
    /// In code this is what `AWS_ENDPOINT_URL_CLOUDWATCH` is in the environment: the SDK honours
    /// that variable only when the global endpoint also comes from the environment, not when
    /// code sets it, as the tests and benchmarks do (their emulator serves CloudWatch on its own
    /// port, see the README's testing notes). Interceptors, retries and the call log are kept.
    pub fn with_cloudwatch_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        let config = self
            .cloudwatch
            .config()
            .to_builder()
            .endpoint_url(endpoint)
            .build();
        self.cloudwatch = aws_sdk_cloudwatch::Client::from_conf(config);
        self
    }

    /// The same clients with other rate limiters (e.g. on a [`RateClock::fake`] in tests).
    /// Throttled attempts of these clients (and of clones sharing their call log) now lower the
    /// new limiters' rates.
    pub fn with_rate_limits(mut self, rate_limits: RateLimits) -> Self {
        self.call_log.feed_throttles_to(rate_limits.clone());
        self.rate_limits = rate_limits;
        self
    }

    /// One operation through the gateway: takes `api`'s permit, sends, classifies the error.
    /// When AWS still throttles after the SDK's retries, the call is made again after the
    /// limiter's wait (the throttles already lowered its rate), up to
    /// [`rate_limit::THROTTLED_ROUNDS`] times, so a throttle slows a reconcile down instead of failing it.
    pub(crate) async fn call<T, E, R, F, Fut>(
        &self,
        api: AwsApi,
        operation: &str,
        mut send: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: fmt::Debug + 'static,
    {
        self.rate_limits
            .call(api, || {
                let sent = send();
                // On the heap: an SDK future is tens of kilobytes in a debug build, and callers
                // such as a consumer batch nest several calls; two batches joined on one test
                // thread overflowed its stack once the message calls came here.
                Box::pin(async move { sent.await.map_err(|e| AwsError::from_sdk(operation, e)) })
            })
            .await
    }

    /// Waits until the client-side rate limit of `api` allows one more call, without making
    /// one. The gateway's own calls take their permit in [`AwsClients::call`]; this is for code
    /// that paces itself against the shared limiter (the tests of its timing).
    pub async fn acquire(&self, api: AwsApi) {
        self.rate_limits.acquire(api).await;
    }

    /// The rate limiters, shared by every clone of these clients.
    pub fn rate_limits(&self) -> &RateLimits {
        &self.rate_limits
    }

    /// Every attempt of every operation made through these clients (and their clones).
    pub fn call_log(&self) -> &CallLog {
        &self.call_log
    }

    /// The Prometheus counters of these clients' calls; register them once at startup.
    pub fn metrics(&self) -> &AwsMetrics {
        self.call_log.metrics()
    }

    /// The region the clients call, passed on to the workloads alertops starts.
    pub fn region(&self) -> Option<String> {
        self.sqs.config().region().map(ToString::to_string)
    }

    /// The settings these clients were built with.
    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }
}

fn retry_config(settings: &AwsSettings) -> RetryConfig {
    RetryConfig::standard().with_max_attempts(settings.max_attempts.get())
}
