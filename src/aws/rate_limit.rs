//! Client-side rate limits per AWS API, at AWS's published default quotas (per account and
//! region), shared by everything in the process that holds the same [`AwsClients`]
//! (every reconciler; in the local mode every workload too), and adaptive: a throttled attempt
//! halves that API's rate and it then climbs back linearly (AIMD), so alertops backs off when
//! something else in the account uses the same quota and returns to the quota when it stops.
//!
//! SDK interceptor hooks are synchronous and cannot wait, so callers `acquire` a permit before
//! each call; the call recorder reports throttled attempts back ([`RateLimits::throttled`]). The
//! clock is injectable: [`RateClock::fake`] makes waiting advance a fake clock instead of
//! sleeping, so spacing and adaptation are tested without wall-clock waits.
//!
//! [`AwsClients`]: super::AwsClients

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, FakeRelativeClock, Reference};
use governor::nanos::Nanos;

use super::error::{AwsError, AwsErrorKind};

/// The rate-limited AWS APIs: one per operation where AWS publishes its own quota for it, one
/// per service otherwise. Default rates, per account and region (AWS's published defaults):
///
/// | key | operations | default | source |
/// | --- | --- | --- | --- |
/// | `cloudwatch:DescribeAlarms` | DescribeAlarms | 9/s | CloudWatch service quotas |
/// | `cloudwatch:PutMetricAlarm` | PutMetricAlarm | 3/s | CloudWatch service quotas |
/// | `cloudwatch:DeleteAlarms` | DeleteAlarms | 3/s | CloudWatch service quotas |
/// | `cloudwatch:ListTagsForResource` | ListTagsForResource | 10/s | CloudWatch service quotas |
/// | `cloudwatch:TagResource` | TagResource, UntagResource | 20/s | CloudWatch service quotas |
/// | `sns` | every other SNS call | 20/s | below SNS's control-plane quotas (ListTopics, ListSubscriptions 30/s; CreateTopic, Subscribe 100/s) |
/// | `sns:TagResource` | TagResource, UntagResource, ListTagsForResource | 10/s | SNS API reference: tagging is limited to 10 TPS per account and region |
/// | `sqs` | every SQS call | 50/s | SQS publishes no per-API control-plane quota; messaging quotas are far higher |
/// | `events` | every EventBridge call | 20/s | EventBridge: every API but PutEvents 50/s; we keep under half |
/// | `emr` | every EMR call | 5/s | EMR throttles its describe/list APIs per account; conservative |
/// | `ses` | every SES v2 call | 1/s | SES sandbox sending rate (raise it for a production account) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AwsApi {
    /// CloudWatch DescribeAlarms.
    DescribeAlarms,
    /// CloudWatch PutMetricAlarm.
    PutMetricAlarm,
    /// CloudWatch DeleteAlarms.
    DeleteAlarms,
    /// CloudWatch ListTagsForResource.
    AlarmTagReads,
    /// CloudWatch TagResource and UntagResource.
    AlarmTagWrites,
    /// SNS (topics, subscriptions, publish), tagging excepted.
    Sns,
    /// SNS TagResource, UntagResource and ListTagsForResource.
    SnsTagging,
    /// SQS (queues, messages).
    Sqs,
    /// EventBridge (rules, targets).
    EventBridge,
    /// EMR (cluster descriptions, RunJobFlow).
    Emr,
    /// SES v2 (email).
    Ses,
    /// CloudWatch Logs PutMetricFilter, DescribeMetricFilters and DeleteMetricFilter (5/s each
    /// by default; one budget keeps all three under the smallest).
    LogMetricFilters,
    /// CloudWatch Logs FilterLogEvents (5/s), the log lines shown with a firing log alarm.
    LogEventReads,
}

/// How many [`AwsApi`] keys there are.
const API_COUNT: usize = 13;

impl AwsApi {
    /// Every API, in a stable order.
    pub const ALL: [AwsApi; API_COUNT] = [
        AwsApi::DescribeAlarms,
        AwsApi::PutMetricAlarm,
        AwsApi::DeleteAlarms,
        AwsApi::AlarmTagReads,
        AwsApi::AlarmTagWrites,
        AwsApi::Sns,
        AwsApi::SnsTagging,
        AwsApi::Sqs,
        AwsApi::EventBridge,
        AwsApi::Emr,
        AwsApi::Ses,
        AwsApi::LogMetricFilters,
        AwsApi::LogEventReads,
    ];

    /// The key that names this API in `--aws-rate-limits` and the chart's `aws.rateLimits`
    /// (IAM's service prefix, with the operation where the quota is per operation).
    pub fn key(self) -> &'static str {
        match self {
            AwsApi::DescribeAlarms => "cloudwatch:DescribeAlarms",
            AwsApi::PutMetricAlarm => "cloudwatch:PutMetricAlarm",
            AwsApi::DeleteAlarms => "cloudwatch:DeleteAlarms",
            AwsApi::AlarmTagReads => "cloudwatch:ListTagsForResource",
            AwsApi::AlarmTagWrites => "cloudwatch:TagResource",
            AwsApi::Sns => "sns",
            AwsApi::SnsTagging => "sns:TagResource",
            AwsApi::Sqs => "sqs",
            AwsApi::EventBridge => "events",
            AwsApi::Emr => "emr",
            AwsApi::Ses => "ses",
            AwsApi::LogMetricFilters => "logs:PutMetricFilter",
            AwsApi::LogEventReads => "logs:FilterLogEvents",
        }
    }

    /// The API of a key as [`AwsApi::key`] spells it (case-insensitive).
    pub fn from_key(key: &str) -> Option<AwsApi> {
        AwsApi::ALL
            .into_iter()
            .find(|api| api.key().eq_ignore_ascii_case(key.trim()))
    }

    /// The limit an SDK operation counts against, from the service and operation names of the
    /// SDK's operation metadata (`"CloudWatch"`, `"PutMetricAlarm"`); `None` for a service
    /// alertops does not limit.
    pub fn of_operation(service: &str, operation: &str) -> Option<AwsApi> {
        Some(match service {
            "CloudWatch" => match operation {
                "PutMetricAlarm" => AwsApi::PutMetricAlarm,
                "DeleteAlarms" => AwsApi::DeleteAlarms,
                "ListTagsForResource" => AwsApi::AlarmTagReads,
                "TagResource" | "UntagResource" => AwsApi::AlarmTagWrites,
                _ => AwsApi::DescribeAlarms,
            },
            "SNS" => match operation {
                "TagResource" | "UntagResource" | "ListTagsForResource" => AwsApi::SnsTagging,
                _ => AwsApi::Sns,
            },
            "SQS" => AwsApi::Sqs,
            "EventBridge" => AwsApi::EventBridge,
            "EMR" => AwsApi::Emr,
            "SESv2" => AwsApi::Ses,
            "CloudWatch Logs" => match operation {
                "FilterLogEvents" => AwsApi::LogEventReads,
                _ => AwsApi::LogMetricFilters,
            },
            _ => return None,
        })
    }

    /// The default rate (see the table above), with a burst of half a second's calls: AWS's
    /// own bucket then keeps the other half, so requests that arrive bunched by network jitter
    /// are not throttled.
    pub fn default_rate(self) -> ApiRate {
        let rate = ApiRate::per_second(match self {
            AwsApi::DescribeAlarms => 9,
            AwsApi::PutMetricAlarm | AwsApi::DeleteAlarms => 3,
            AwsApi::AlarmTagReads | AwsApi::SnsTagging => 10,
            AwsApi::AlarmTagWrites | AwsApi::Sns | AwsApi::EventBridge => 20,
            AwsApi::Sqs => 50,
            AwsApi::Emr | AwsApi::LogMetricFilters | AwsApi::LogEventReads => 5,
            AwsApi::Ses => 1,
        });
        rate.with_burst(rate.per_second.get().div_ceil(2))
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for AwsApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A sustained request rate and the burst allowed above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiRate {
    /// Requests per second, sustained.
    pub per_second: NonZeroU32,
    /// Requests that may be made at once after a quiet period.
    pub burst: NonZeroU32,
}

impl ApiRate {
    /// `per_second` sustained with a burst of the same size. Zero is raised to one.
    pub fn per_second(per_second: u32) -> Self {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        ApiRate {
            per_second: rate,
            burst: rate,
        }
    }

    /// The same rate with another burst. Zero is raised to one.
    pub fn with_burst(self, burst: u32) -> Self {
        ApiRate {
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
            ..self
        }
    }
}

/// A `--aws-rate-limits` value that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateSpecError {
    /// An entry is not `KEY=RATE` or `KEY=RATE/BURST`.
    #[error(
        "rate limit {0:?} must be KEY=RATE or KEY=RATE/BURST, e.g. cloudwatch:PutMetricAlarm=3"
    )]
    Malformed(String),
    /// The key names no API.
    #[error("unknown AWS API {key:?} in rate limits; known: {known}")]
    UnknownApi {
        /// The key given.
        key: String,
        /// Every known key.
        known: String,
    },
    /// A rate or burst is not a positive whole number.
    #[error("rate limit {0:?}: rate and burst must be whole numbers of at least 1")]
    NotPositive(String),
}

/// Settings of the AWS layer: per-API client-side rates and the SDK's retry attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    /// Rates that differ from [`AwsApi::default_rate`].
    pub rates: BTreeMap<AwsApi, ApiRate>,
    /// Attempts per operation, first one included, made by the SDK's standard retry strategy
    /// (throttling and transient errors are retried with exponential backoff). Default 5.
    pub max_attempts: NonZeroU32,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            rates: BTreeMap::new(),
            max_attempts: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
        }
    }
}

impl AwsSettings {
    /// The rate of one API.
    pub fn rate(&self, api: AwsApi) -> ApiRate {
        self.rates
            .get(&api)
            .copied()
            .unwrap_or_else(|| api.default_rate())
    }

    /// These settings with another rate for one API.
    pub fn with_rate(mut self, api: AwsApi, rate: ApiRate) -> Self {
        self.rates.insert(api, rate);
        self
    }

    /// These settings with the same rate for every API (tests use a generous one).
    pub fn with_all_rates(self, rate: ApiRate) -> Self {
        AwsApi::ALL
            .into_iter()
            .fold(self, |settings, api| settings.with_rate(api, rate))
    }

    /// The rates that differ from the defaults as a `--aws-rate-limits` value (what
    /// [`AwsSettings::with_rate_spec`] reads back).
    pub fn rate_spec(&self) -> String {
        self.rates
            .iter()
            .filter(|(api, rate)| **rate != api.default_rate())
            .map(|(api, rate)| {
                if rate.burst == rate.per_second {
                    format!("{}={}", api.key(), rate.per_second)
                } else {
                    format!("{}={}/{}", api.key(), rate.per_second, rate.burst)
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// These settings with the rates of a `--aws-rate-limits` value: comma-separated
    /// `KEY=RATE` or `KEY=RATE/BURST` (burst defaults to the rate), keys as [`AwsApi::key`].
    /// An empty value changes nothing.
    pub fn with_rate_spec(self, spec: &str) -> Result<Self, RateSpecError> {
        let mut settings = self;
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| RateSpecError::Malformed(entry.to_string()))?;
            let api = AwsApi::from_key(key).ok_or_else(|| RateSpecError::UnknownApi {
                key: key.trim().to_string(),
                known: AwsApi::ALL.map(AwsApi::key).join(", "),
            })?;
            let (rate, burst) = match value.split_once('/') {
                Some((rate, burst)) => (rate, Some(burst)),
                None => (value, None),
            };
            let number = |text: &str| {
                text.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| RateSpecError::NotPositive(entry.to_string()))
            };
            let mut api_rate = ApiRate::per_second(number(rate)?);
            if let Some(burst) = burst {
                api_rate = api_rate.with_burst(number(burst)?);
            }
            settings = settings.with_rate(api, api_rate);
        }
        Ok(settings)
    }
}
/// The clock the rate limiters read and wait on: real time, or a fake that waiting advances.
#[derive(Clone, Debug)]
pub struct RateClock {
    kind: ClockKind,
}

#[derive(Clone, Debug)]
enum ClockKind {
    /// Tokio's clock, so that tests with paused tokio time also work.
    Real {
        origin: tokio::time::Instant,
    },
    Fake(FakeRelativeClock),
}

impl RateClock {
    /// Real time; waiting sleeps.
    pub fn real() -> Self {
        RateClock {
            kind: ClockKind::Real {
                origin: tokio::time::Instant::now(),
            },
        }
    }

    /// A fake clock starting at zero; waiting advances it at once instead of sleeping.
    /// Clones share the same time.
    pub fn fake() -> Self {
        RateClock {
            kind: ClockKind::Fake(FakeRelativeClock::default()),
        }
    }

    /// Time since this clock was made (for a fake clock: the total time waited on it).
    pub fn elapsed(&self) -> Duration {
        self.now().into()
    }

    /// Advances a fake clock; no effect on the real one.
    pub fn advance(&self, by: Duration) {
        if let ClockKind::Fake(fake) = &self.kind {
            fake.advance(by);
        }
    }

    /// Waits until `deadline` (a reading of [`Clock::now`]).
    async fn wait_until(&self, deadline: Nanos) {
        match &self.kind {
            ClockKind::Real { origin } => {
                tokio::time::sleep_until(*origin + Duration::from(deadline)).await;
            }
            // Advance to the deadline rather than by the wait, so that concurrent waiters for the
            // same slot do not push the fake time further than real time would have gone.
            ClockKind::Fake(fake) => {
                let now = fake.now();
                if deadline > now {
                    fake.advance(deadline.duration_since(now).into());
                }
            }
        }
    }
}

impl Default for RateClock {
    fn default() -> Self {
        RateClock::real()
    }
}

impl Clock for RateClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        match &self.kind {
            ClockKind::Real { origin } => Nanos::from(origin.elapsed()),
            ClockKind::Fake(fake) => fake.now(),
        }
    }
}

/// How many times [`RateLimits::call`] makes a call that AWS keeps throttling before it gives
/// the throttling error back: each round waits for a permit of a rate halved again, so the
/// last of eight rounds waits for a sixteenth of the quota (seconds, not a failed reconcile).
pub const THROTTLED_ROUNDS: u32 = 8;

/// After a throttle the rate is multiplied by this (the "multiplicative decrease").
const DECREASE_FACTOR: f64 = 0.5;
/// The rate never adapts below the configured one divided by this.
const FLOOR_DIVISOR: f64 = 16.0;
/// Seconds a rate takes to climb back linearly from zero to the configured one (the "additive
/// increase"): from half, after one throttle, it is back in half of this.
const RECOVERY_SECONDS: f64 = 60.0;

/// One API's limiter: GCRA (a token bucket by its theoretical arrival time) at a rate that
/// adapts to throttling.
#[derive(Debug)]
struct Bucket {
    configured: ApiRate,
    /// The rate in force, per second: the configured one, or less after throttling.
    rate: f64,
    /// When the next permit would be granted with an empty bucket (nanoseconds on the clock).
    tat: u64,
    /// When `rate` was last recovered.
    updated: u64,
    /// Permit decisions made (granted or deferred): a waiter should cost one.
    #[cfg(test)]
    decisions: u64,
}

impl Bucket {
    fn new(configured: ApiRate) -> Self {
        Bucket {
            configured,
            rate: f64::from(configured.per_second.get()),
            tat: 0,
            updated: 0,
            #[cfg(test)]
            decisions: 0,
        }
    }

    fn max_rate(&self) -> f64 {
        f64::from(self.configured.per_second.get())
    }

    fn interval_nanos(&self) -> u64 {
        (1e9 / self.rate).ceil() as u64
    }

    /// The full burst only at the configured rate: a throttled API sends one call at a time.
    fn burst(&self) -> u64 {
        if self.rate >= self.max_rate() {
            u64::from(self.configured.burst.get())
        } else {
            1
        }
    }

    fn recover(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.updated) as f64 / 1e9;
        self.updated = self.updated.max(now);
        let max = self.max_rate();
        if self.rate < max {
            self.rate = (self.rate + max * elapsed / RECOVERY_SECONDS).min(max);
        }
    }

    /// Takes a permit at `now`, or says when one will be free.
    fn check(&mut self, now: u64) -> Result<(), u64> {
        #[cfg(test)]
        {
            self.decisions += 1;
        }
        self.recover(now);
        let interval = self.interval_nanos();
        let tolerance = interval * (self.burst() - 1);
        let tat = self.tat.max(now);
        if tat - now > tolerance {
            return Err(tat - tolerance);
        }
        self.tat = tat + interval;
        Ok(())
    }

    /// Reserves the next permit at `now` and says when it is granted (at `now` or later). Each
    /// waiter is given its own slot and wakes once, at its turn: with a check-and-retry, every
    /// waiter woke at every permit (hundreds of reconciles queued behind PutMetricAlarm made
    /// tens of thousands of wake-ups a second and delayed the permits themselves).
    fn reserve(&mut self, now: u64) -> u64 {
        #[cfg(test)]
        {
            self.decisions += 1;
        }
        self.recover(now);
        let interval = self.interval_nanos();
        let tolerance = interval * (self.burst() - 1);
        let tat = self.tat.max(now);
        self.tat = tat + interval;
        tat.saturating_sub(tolerance).max(now)
    }

    fn throttled(&mut self, now: u64) {
        self.recover(now);
        let max = self.max_rate();
        self.rate = (self.rate * DECREASE_FACTOR).max(max / FLOOR_DIVISOR);
        // The next permit waits at least one interval of the lowered rate.
        self.tat = self.tat.max(now) + self.interval_nanos();
    }
}

/// One adaptive limiter per [`AwsApi`], shared by every clone.
#[derive(Clone)]
pub struct RateLimits {
    buckets: Arc<[Mutex<Bucket>; API_COUNT]>,
    clock: RateClock,
}

impl RateLimits {
    /// Limiters for the settings' rates, on real time.
    pub fn new(settings: &AwsSettings) -> Self {
        RateLimits::with_clock(settings, RateClock::real())
    }

    /// Limiters for the settings' rates, on the given clock.
    pub fn with_clock(settings: &AwsSettings, clock: RateClock) -> Self {
        RateLimits {
            buckets: Arc::new(AwsApi::ALL.map(|api| Mutex::new(Bucket::new(settings.rate(api))))),
            clock,
        }
    }

    fn bucket(&self, api: AwsApi) -> MutexGuard<'_, Bucket> {
        // The bucket holds plain numbers: a panic elsewhere cannot leave it inconsistent.
        self.buckets[api.index()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn now_nanos(&self) -> u64 {
        self.clock.now().as_u64()
    }

    /// Waits until a call to `api` is allowed, and takes the permit. The permit is reserved at
    /// once, so a caller that gives up waiting (a cancelled reconcile) leaves its slot unused.
    pub async fn acquire(&self, api: AwsApi) {
        let now = self.now_nanos();
        let granted = self.bucket(api).reserve(now);
        if granted > now {
            self.clock.wait_until(Nanos::from(granted)).await;
        }
    }

    /// Makes a call with `api`'s permit; a call that AWS throttled is made again after the
    /// next permit, up to [`THROTTLED_ROUNDS`] times (see [`super::AwsClients::call`]).
    pub async fn call<T, F, Fut>(&self, api: AwsApi, mut attempt: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let mut round = 1;
        loop {
            self.acquire(api).await;
            match attempt().await {
                Err(e) if e.kind() == AwsErrorKind::Throttled && round < THROTTLED_ROUNDS => {
                    tracing::debug!(api = %api, round, "throttled by AWS; calling again");
                    round += 1;
                }
                result => return result,
            }
        }
    }

    /// Takes a permit for `api` if one is free now; otherwise says how long until one is.
    pub fn try_acquire(&self, api: AwsApi) -> Result<(), Duration> {
        let now = self.now_nanos();
        self.bucket(api)
            .check(now)
            .map_err(|not_before| Duration::from_nanos(not_before - now))
    }

    /// AWS throttled a call to `api`: halve its rate (down to a sixteenth of the configured
    /// one); it recovers linearly, to the configured rate in at most a minute.
    pub fn throttled(&self, api: AwsApi) {
        let now = self.now_nanos();
        self.bucket(api).throttled(now);
    }

    /// The configured rate of `api`.
    pub fn rate(&self, api: AwsApi) -> ApiRate {
        self.bucket(api).configured
    }

    /// The rate in force for `api` now, per second: the configured one unless AWS throttled it
    /// lately.
    pub fn current_rate(&self, api: AwsApi) -> f64 {
        let now = self.now_nanos();
        let mut bucket = self.bucket(api);
        bucket.recover(now);
        bucket.rate
    }

    /// The clock the limiters run on.
    pub fn clock(&self) -> &RateClock {
        &self.clock
    }
}

impl fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rates: Vec<(AwsApi, f64)> = AwsApi::ALL
            .into_iter()
            .map(|api| (api, self.bucket(api).rate))
            .collect();
        f.debug_struct("RateLimits")
            .field("rates", &rates)
            .field("clock", &self.clock)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_aws_published_quotas() {
        let settings = AwsSettings::default();
        let per_second = |api: AwsApi| settings.rate(api).per_second.get();
        assert_eq!(per_second(AwsApi::PutMetricAlarm), 3);
        assert_eq!(per_second(AwsApi::DeleteAlarms), 3);
        assert_eq!(per_second(AwsApi::DescribeAlarms), 9);
        assert_eq!(per_second(AwsApi::AlarmTagReads), 10);
        assert_eq!(per_second(AwsApi::AlarmTagWrites), 20);
        assert_eq!(per_second(AwsApi::Ses), 1);
        assert_eq!(settings.max_attempts.get(), 5);
    }

    #[test]
    fn operations_map_to_their_own_limits() {
        let of = AwsApi::of_operation;
        assert_eq!(
            of("CloudWatch", "PutMetricAlarm"),
            Some(AwsApi::PutMetricAlarm)
        );
        assert_eq!(
            of("CloudWatch", "DescribeAlarms"),
            Some(AwsApi::DescribeAlarms)
        );
        assert_eq!(
            of("CloudWatch", "UntagResource"),
            Some(AwsApi::AlarmTagWrites)
        );
        assert_eq!(
            of("CloudWatch", "ListTagsForResource"),
            Some(AwsApi::AlarmTagReads)
        );
        assert_eq!(of("SNS", "ListTagsForResource"), Some(AwsApi::SnsTagging));
        assert_eq!(of("SNS", "GetTopicAttributes"), Some(AwsApi::Sns));
        assert_eq!(of("SESv2", "SendEmail"), Some(AwsApi::Ses));
        assert_eq!(of("STS", "AssumeRoleWithWebIdentity"), None);
    }

    #[test]
    fn zero_rates_are_raised_to_one() {
        let rate = ApiRate::per_second(0).with_burst(0);
        assert_eq!(rate.per_second.get(), 1);
        assert_eq!(rate.burst.get(), 1);
    }

    #[test]
    fn with_rate_changes_only_that_api() {
        let settings = AwsSettings::default().with_rate(AwsApi::Emr, ApiRate::per_second(2));
        assert_eq!(settings.rate(AwsApi::Emr).per_second.get(), 2);
        assert_eq!(
            settings.rate(AwsApi::PutMetricAlarm),
            AwsSettings::default().rate(AwsApi::PutMetricAlarm)
        );
    }

    #[test]
    fn rate_spec_sets_rates_and_bursts_by_key() {
        let settings = AwsSettings::default()
            .with_rate_spec(" cloudwatch:PutMetricAlarm=10, SES=14/28 ,")
            .unwrap();
        assert_eq!(
            settings.rate(AwsApi::PutMetricAlarm),
            ApiRate::per_second(10)
        );
        assert_eq!(
            settings.rate(AwsApi::Ses),
            ApiRate::per_second(14).with_burst(28)
        );
        assert_eq!(settings.rate(AwsApi::DescribeAlarms).per_second.get(), 9);
        assert_eq!(
            AwsSettings::default().with_rate_spec("").unwrap(),
            AwsSettings::default()
        );
        // Written back for the workloads, as read.
        assert_eq!(
            settings.rate_spec(),
            "cloudwatch:PutMetricAlarm=10,ses=14/28"
        );
    }

    #[test]
    fn rate_spec_refuses_what_it_cannot_read() {
        let spec = |s: &str| AwsSettings::default().with_rate_spec(s);
        assert!(matches!(spec("ses"), Err(RateSpecError::Malformed(_))));
        assert!(matches!(
            spec("s3=5"),
            Err(RateSpecError::UnknownApi { .. })
        ));
        assert!(matches!(spec("ses=0"), Err(RateSpecError::NotPositive(_))));
        assert!(matches!(
            spec("ses=1/x"),
            Err(RateSpecError::NotPositive(_))
        ));
    }

    #[test]
    fn burst_is_allowed_then_the_next_permit_waits_one_interval() {
        let settings =
            AwsSettings::default().with_rate(AwsApi::Emr, ApiRate::per_second(5).with_burst(3));
        let limits = RateLimits::with_clock(&settings, RateClock::fake());
        for _ in 0..3 {
            assert_eq!(limits.try_acquire(AwsApi::Emr), Ok(()));
        }
        assert_eq!(
            limits.try_acquire(AwsApi::Emr),
            Err(Duration::from_millis(200))
        );
        // Other APIs have their own budget.
        assert_eq!(limits.try_acquire(AwsApi::PutMetricAlarm), Ok(()));
        limits.clock().advance(Duration::from_millis(200));
        assert_eq!(limits.try_acquire(AwsApi::Emr), Ok(()));
    }

    #[tokio::test]
    async fn acquire_spaces_calls_at_the_configured_rate_on_a_fake_clock() {
        let settings =
            AwsSettings::default().with_rate(AwsApi::Sns, ApiRate::per_second(4).with_burst(1));
        let clock = RateClock::fake();
        let limits = RateLimits::with_clock(&settings, clock.clone());
        let mut granted = Vec::new();
        for _ in 0..9 {
            limits.acquire(AwsApi::Sns).await;
            granted.push(clock.elapsed());
        }
        let gaps: Vec<Duration> = granted.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|gap| *gap == Duration::from_millis(250)),
            "{gaps:?}"
        );
        assert_eq!(clock.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn put_metric_alarm_runs_at_three_per_second_by_default() {
        let clock = RateClock::fake();
        let limits = RateLimits::with_clock(&AwsSettings::default(), clock.clone());
        for _ in 0..30 {
            limits.acquire(AwsApi::PutMetricAlarm).await;
        }
        // A burst of 2 (half a second's), then 28 more at 3/s (intervals rounded up to the
        // nanosecond).
        let elapsed = clock.elapsed();
        let expected = Duration::from_secs(28) / 3;
        assert!(
            elapsed >= expected && elapsed < expected + Duration::from_micros(1),
            "{elapsed:?}"
        );
    }

    #[tokio::test]
    async fn a_throttle_halves_the_rate_which_recovers_linearly() {
        let settings = AwsSettings::default()
            .with_rate(AwsApi::PutMetricAlarm, ApiRate::per_second(4).with_burst(1));
        let clock = RateClock::fake();
        let limits = RateLimits::with_clock(&settings, clock.clone());
        limits.acquire(AwsApi::PutMetricAlarm).await;
        limits.throttled(AwsApi::PutMetricAlarm);
        assert_eq!(limits.current_rate(AwsApi::PutMetricAlarm), 2.0);

        // The next permits come at the lowered rate: 500 ms apart instead of 250.
        let start = clock.elapsed();
        limits.acquire(AwsApi::PutMetricAlarm).await;
        let first = clock.elapsed() - start;
        limits.acquire(AwsApi::PutMetricAlarm).await;
        let second = clock.elapsed() - start - first;
        assert!(first >= Duration::from_millis(490), "{first:?}");
        assert!(
            second >= Duration::from_millis(480) && second <= Duration::from_millis(500),
            "{second:?}"
        );

        // A second throttle halves again (what the rate regained during the ~1 s of waiting
        // included); then the rate climbs back by a sixtieth of the configured rate per second.
        limits.throttled(AwsApi::PutMetricAlarm);
        let lowered = limits.current_rate(AwsApi::PutMetricAlarm);
        assert!((1.0..1.1).contains(&lowered), "{lowered}");
        clock.advance(Duration::from_secs(15));
        let climbing = limits.current_rate(AwsApi::PutMetricAlarm) - lowered;
        assert!((0.99..1.01).contains(&climbing), "{climbing}");
        clock.advance(Duration::from_secs(60));
        assert_eq!(limits.current_rate(AwsApi::PutMetricAlarm), 4.0);
        // Back at the configured rate, the burst is allowed again.
        assert_eq!(limits.try_acquire(AwsApi::PutMetricAlarm), Ok(()));
    }

    #[test]
    fn repeated_throttles_stop_at_a_sixteenth_of_the_configured_rate() {
        let settings =
            AwsSettings::default().with_rate(AwsApi::DescribeAlarms, ApiRate::per_second(8));
        let limits = RateLimits::with_clock(&settings, RateClock::fake());
        for _ in 0..20 {
            limits.throttled(AwsApi::DescribeAlarms);
        }
        assert_eq!(limits.current_rate(AwsApi::DescribeAlarms), 0.5);
        // Other APIs keep their rate.
        assert_eq!(limits.current_rate(AwsApi::DeleteAlarms), 3.0);
    }

    fn throttling() -> AwsError {
        AwsError::new(
            AwsErrorKind::Throttled,
            "PutMetricAlarm",
            "Throttling",
            "Rate exceeded",
        )
    }

    #[tokio::test]
    async fn a_throttled_call_is_made_again_after_the_limiters_wait() {
        let settings = AwsSettings::default()
            .with_rate(AwsApi::PutMetricAlarm, ApiRate::per_second(2).with_burst(1));
        let clock = RateClock::fake();
        let limits = RateLimits::with_clock(&settings, clock.clone());
        let mut attempts_at = Vec::new();
        let result = limits
            .call(AwsApi::PutMetricAlarm, || {
                attempts_at.push(clock.elapsed());
                // What the call recorder does for each throttled attempt.
                let throttled = attempts_at.len() <= 2;
                if throttled {
                    limits.throttled(AwsApi::PutMetricAlarm);
                }
                async move {
                    if throttled {
                        Err(throttling())
                    } else {
                        Ok("done")
                    }
                }
            })
            .await;
        assert_eq!(result.unwrap(), "done");
        assert_eq!(attempts_at.len(), 3);
        // 500 ms at 2/s would be the unthrottled gap; each throttle halved the rate first.
        let gaps: Vec<u128> = attempts_at
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        assert!(gaps[0] >= 1_000 && gaps[1] >= 2_000, "{gaps:?}");
    }

    #[tokio::test]
    async fn a_call_throttled_every_time_gives_up_after_the_last_round() {
        let limits = RateLimits::with_clock(&AwsSettings::default(), RateClock::fake());
        let mut attempts = 0;
        let result: Result<(), AwsError> = limits
            .call(AwsApi::DescribeAlarms, || {
                attempts += 1;
                async { Err(throttling()) }
            })
            .await;
        assert_eq!(result.unwrap_err().kind(), AwsErrorKind::Throttled);
        assert_eq!(attempts, THROTTLED_ROUNDS);
    }

    #[tokio::test]
    async fn other_errors_are_not_made_again() {
        let limits = RateLimits::with_clock(&AwsSettings::default(), RateClock::fake());
        let mut attempts = 0;
        let result: Result<(), AwsError> = limits
            .call(AwsApi::DescribeAlarms, || {
                attempts += 1;
                async {
                    Err(AwsError::new(
                        AwsErrorKind::AccessDenied,
                        "DescribeAlarms",
                        "AccessDenied",
                        "no",
                    ))
                }
            })
            .await;
        assert_eq!(result.unwrap_err().kind(), AwsErrorKind::AccessDenied);
        assert_eq!(attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn queued_waiters_each_wake_once_at_their_own_turn() {
        let settings =
            AwsSettings::default().with_rate(AwsApi::Sns, ApiRate::per_second(10).with_burst(1));
        let limits = RateLimits::new(&settings);
        let start = tokio::time::Instant::now();
        let granted = futures::future::join_all((0..50).map(|_| {
            let limits = limits.clone();
            async move {
                limits.acquire(AwsApi::Sns).await;
                start.elapsed()
            }
        }))
        .await;
        // One decision per waiter (a check-and-retry made one per waiter per permit granted).
        assert_eq!(limits.bucket(AwsApi::Sns).decisions, 50);
        let mut granted = granted;
        granted.sort();
        let gaps: Vec<Duration> = granted.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter()
                .all(|gap| gap.abs_diff(Duration::from_millis(100)) < Duration::from_millis(2)),
            "{gaps:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn real_clock_waits_in_tokio_time() {
        let settings =
            AwsSettings::default().with_rate(AwsApi::Ses, ApiRate::per_second(2).with_burst(1));
        let limits = RateLimits::new(&settings);
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            limits.acquire(AwsApi::Ses).await;
        }
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(1) && waited < Duration::from_millis(1100),
            "{waited:?}"
        );
    }
}
