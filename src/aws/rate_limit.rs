//! Client-side rate limits, one per AWS API, so that alertops stays under the service quotas
//! instead of relying on AWS throttling and SDK retries.
//!
//! SDK interceptor hooks are synchronous and cannot wait, so callers `acquire` a permit before
//! each call. The clock is injectable: [`RateClock::fake`] makes waiting advance a fake clock
//! instead of sleeping, so spacing is tested without wall-clock waits.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, FakeRelativeClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// The AWS APIs alertops calls, each with its own rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AwsApi {
    /// CloudWatch (alarms).
    CloudWatch,
    /// SNS (topics, subscriptions, publish).
    Sns,
    /// SQS (queues, messages).
    Sqs,
    /// EventBridge (rules, targets).
    EventBridge,
    /// EMR (cluster descriptions, RunJobFlow).
    Emr,
    /// SES v2 (email).
    Ses,
}

impl AwsApi {
    /// Every API, in a stable order.
    pub const ALL: [AwsApi; 6] = [
        AwsApi::CloudWatch,
        AwsApi::Sns,
        AwsApi::Sqs,
        AwsApi::EventBridge,
        AwsApi::Emr,
        AwsApi::Ses,
    ];

    /// The service name as the SDK reports it in operation metadata (and in the call log).
    pub fn service_name(self) -> &'static str {
        match self {
            AwsApi::CloudWatch => "CloudWatch",
            AwsApi::Sns => "SNS",
            AwsApi::Sqs => "SQS",
            AwsApi::EventBridge => "EventBridge",
            AwsApi::Emr => "EMR",
            AwsApi::Ses => "SESv2",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for AwsApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.service_name())
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

    fn quota(self) -> Quota {
        Quota::per_second(self.per_second).allow_burst(self.burst)
    }
}

/// Settings of the AWS layer: per-API client-side rates and the SDK's retry attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsSettings {
    /// CloudWatch rate (default 10/s).
    pub cloudwatch: ApiRate,
    /// SNS rate (default 20/s).
    pub sns: ApiRate,
    /// SQS rate (default 50/s).
    pub sqs: ApiRate,
    /// EventBridge rate (default 10/s).
    pub eventbridge: ApiRate,
    /// EMR rate (default 5/s).
    pub emr: ApiRate,
    /// SES rate (default 10/s).
    pub ses: ApiRate,
    /// Attempts per operation, first one included, made by the SDK's standard retry strategy
    /// (throttling and transient errors are retried with exponential backoff). Default 5.
    pub max_attempts: NonZeroU32,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            cloudwatch: ApiRate::per_second(10),
            sns: ApiRate::per_second(20),
            sqs: ApiRate::per_second(50),
            eventbridge: ApiRate::per_second(10),
            emr: ApiRate::per_second(5),
            ses: ApiRate::per_second(10),
            max_attempts: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
        }
    }
}

impl AwsSettings {
    /// The rate of one API.
    pub fn rate(&self, api: AwsApi) -> ApiRate {
        match api {
            AwsApi::CloudWatch => self.cloudwatch,
            AwsApi::Sns => self.sns,
            AwsApi::Sqs => self.sqs,
            AwsApi::EventBridge => self.eventbridge,
            AwsApi::Emr => self.emr,
            AwsApi::Ses => self.ses,
        }
    }

    /// These settings with another rate for one API.
    pub fn with_rate(mut self, api: AwsApi, rate: ApiRate) -> Self {
        let slot = match api {
            AwsApi::CloudWatch => &mut self.cloudwatch,
            AwsApi::Sns => &mut self.sns,
            AwsApi::Sqs => &mut self.sqs,
            AwsApi::EventBridge => &mut self.eventbridge,
            AwsApi::Emr => &mut self.emr,
            AwsApi::Ses => &mut self.ses,
        };
        *slot = rate;
        self
    }

    /// These settings with the same rate for every API (tests use a generous one).
    pub fn with_all_rates(self, rate: ApiRate) -> Self {
        AwsApi::ALL
            .into_iter()
            .fold(self, |settings, api| settings.with_rate(api, rate))
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

type DirectLimiter = RateLimiter<NotKeyed, InMemoryState, RateClock, NoOpMiddleware<Nanos>>;

/// One rate limiter per [`AwsApi`], shared by every clone.
#[derive(Clone)]
pub struct RateLimits {
    limiters: Arc<[DirectLimiter; 6]>,
    rates: [ApiRate; 6],
    clock: RateClock,
}

impl RateLimits {
    /// Limiters for the settings' rates, on real time.
    pub fn new(settings: &AwsSettings) -> Self {
        RateLimits::with_clock(settings, RateClock::real())
    }

    /// Limiters for the settings' rates, on the given clock.
    pub fn with_clock(settings: &AwsSettings, clock: RateClock) -> Self {
        let rates = AwsApi::ALL.map(|api| settings.rate(api));
        let limiters =
            rates.map(|rate| RateLimiter::direct_with_clock(rate.quota(), clock.clone()));
        RateLimits {
            limiters: Arc::new(limiters),
            rates,
            clock,
        }
    }

    /// Waits until a call to `api` is allowed, and takes the permit.
    pub async fn acquire(&self, api: AwsApi) {
        let limiter = &self.limiters[api.index()];
        while let Err(not_until) = limiter.check() {
            self.clock.wait_until(not_until.earliest_possible()).await;
        }
    }

    /// Takes a permit for `api` if one is free now; otherwise says how long until one is.
    pub fn try_acquire(&self, api: AwsApi) -> Result<(), Duration> {
        self.limiters[api.index()]
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// The rate configured for `api`.
    pub fn rate(&self, api: AwsApi) -> ApiRate {
        self.rates[api.index()]
    }

    /// The clock the limiters run on.
    pub fn clock(&self) -> &RateClock {
        &self.clock
    }
}

impl fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimits")
            .field("rates", &self.rates)
            .field("clock", &self.clock)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_rates() {
        let settings = AwsSettings::default();
        let per_second = AwsApi::ALL.map(|api| settings.rate(api).per_second.get());
        assert_eq!(per_second, [10, 20, 50, 10, 5, 10]);
        assert_eq!(settings.max_attempts.get(), 5);
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
        assert_eq!(settings.emr.per_second.get(), 2);
        assert_eq!(settings.cloudwatch, AwsSettings::default().cloudwatch);
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
        assert_eq!(limits.try_acquire(AwsApi::CloudWatch), Ok(()));
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
