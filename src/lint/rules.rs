//! The alarm lint rules: mistakes a CRD schema cannot see, because they depend on what a metric
//! means. Pure functions of an [`AlarmPolicySpec`]; the controller writes their findings to the
//! policy's status, and `alertops lint` prints them.
//!
//! Rule ids are stable: people silence and search for them. Each constant documents why its rule
//! exists. A rule is an `Error` when the alarm cannot do its job (it can never fire, is always
//! firing, or CloudWatch would reject it) and a `Warning` when it works but badly.

use std::collections::{BTreeMap, BTreeSet};

use crate::digest::schedule::{Schedule, ScheduleError};
use crate::resources::alarm_policy::{
    AlarmPolicySpec, AlarmSpec, ComparisonOperator, LogAlarmSpec, MetricQuery, Statistic,
    TreatMissingData,
};
use crate::resources::alarm_policy::{LintFinding, LintLevel};
use crate::resources::{AlertKind, AlertRouteSpec, DigestScheduleSpec, Severity};

/// `Maximum`, `Minimum`, `Average` or a percentile of a metric that counts events.
///
/// Why: CloudWatch stores count metrics such as ELB `BackendConnectionErrors`, the `HTTPCode_*`
/// families or Lambda `Errors` as one sample per event, each of value 1, so every statistic but
/// `Sum` (and `SampleCount`) is at most 1 per datapoint. An alarm on `Maximum > 100` can never
/// fire: exactly the mistake that hid a broken Logstash broker for two days in the source
/// documents (the graph of the maximum was a flat line at 1). API Gateway's `4XXError` and
/// `5XXError` are the documented exception: their `Average` is the error rate (0 to 1).
pub const COUNT_METRIC_NEEDS_SUM: &str = "count-metric-needs-sum";

/// The period is shorter than the interval at which the metric is published.
///
/// Why: AWS namespaces publish every 60 s (EC2 basic monitoring every 300 s, S3 storage metrics
/// daily, billing every few hours). A shorter period leaves most datapoints empty, so the alarm
/// flips between states or sits in INSUFFICIENT_DATA.
pub const PERIOD_BELOW_RESOLUTION: &str = "period-below-resolution";

/// A gauge read over a window shorter than three minutes.
///
/// Why: one noisy datapoint of a CPU, latency or queue-depth reading then decides the alarm, which
/// pages people for spikes nobody can act on; a longer window or "M out of N" datapoints does not.
/// Sums (error counts) are exempt: one minute of errors is a meaningful signal.
pub const EVALUATION_WINDOW_TOO_SHORT: &str = "evaluation-window-too-short";

/// A High or Critical alarm with `okNotifications: false`.
///
/// Why: without the OK notification nobody learns that the outage is over, and the Slack message
/// of the alarm can never be marked resolved.
pub const PAGING_ALARM_WITHOUT_OK: &str = "paging-alarm-without-ok-notifications";

/// A High or Critical alarm without `runbookUrl`.
///
/// Why: the person paged at night needs the first step ("restart the broker instances") in the
/// message, not in someone's head.
pub const PAGING_ALARM_WITHOUT_RUNBOOK: &str = "paging-alarm-without-runbook";

/// A sparse error count with `treatMissingData` other than `notBreaching`.
///
/// Why: load balancers and Lambda publish error counts only while there is traffic or errors.
/// With `missing`, quiet periods turn the alarm INSUFFICIENT_DATA instead of OK, so it never
/// resolves; with `ignore` it stays in ALARM after the errors stop; with `breaching` it fires
/// whenever nothing is wrong.
pub const SPARSE_METRIC_MISSING_DATA: &str = "sparse-metric-missing-data";

/// A threshold the statistic can never cross, or always crosses.
///
/// Why: a `Sum` or `SampleCount` is never negative and a utilisation never exceeds 100 %, so
/// `Sum < 0` never fires and `SampleCount >= 0` always does. A fractional threshold on
/// `SampleCount` (a whole number of datapoints) usually means a rate was intended.
pub const THRESHOLD_IMPOSSIBLE: &str = "threshold-impossible-for-statistic";

/// Metric math where not exactly one query has `returnData: true`.
///
/// Why: CloudWatch rejects such an alarm (PutMetricAlarm fails), so the policy would never become
/// Ready; the schema cannot count booleans across a list.
pub const METRIC_MATH_RETURN_DATA: &str = "metric-math-return-data";

/// Two metric-math queries with the same id.
///
/// Why: CloudWatch rejects duplicate ids.
pub const METRIC_MATH_DUPLICATE_ID: &str = "metric-math-duplicate-id";

/// A metric-math expression that refers to an id no query defines, or to itself in a cycle.
///
/// Why: CloudWatch rejects the alarm; a typo in `errors / requsts` is found here, offline.
pub const METRIC_MATH_UNKNOWN_ID: &str = "metric-math-unknown-id";

/// A metric-math query whose `stat` is no CloudWatch statistic.
///
/// Why: `stat` is free text in the schema (it takes percentiles and trimmed means), so `Max` or
/// `sum` pass the schema and fail in CloudWatch.
pub const METRIC_MATH_INVALID_STAT: &str = "metric-math-invalid-stat";

/// `actionsEnabled: false` on an alarm no composite alarm of the policy combines.
///
/// Why: the alarm changes state but notifies nobody; fine while tuning, a trap when forgotten.
/// An alarm a composite names may be silent on purpose: the composite notifies for it.
pub const ACTIONS_DISABLED: &str = "actions-disabled";

/// A fixed threshold on a gauge that drifts slowly: free disk or storage, free or available
/// memory, used disk or memory.
///
/// Why: the outages nobody noticed in the source documents were slow ones, a disk filling over
/// weeks and a gradual memory leak. A fixed line on such a gauge fires only when little room is
/// left, often at night; the trend (`RATE(m1)` or `DIFF(m1)` in metric math: how fast it moves)
/// or an anomaly detection band (`anomalyDetection`: it left its usual range) fires while there is
/// still time. A warning: keep the fixed line as the last resort, and add the leading indicator.
pub const DRIFTING_GAUGE_STATIC_THRESHOLD: &str = "drifting-gauge-static-threshold";

/// A policy with neither alarms nor event rules.
///
/// Why: it creates a topic nobody publishes to; usually a list was mis-indented or misspelt.
pub const EMPTY_POLICY: &str = "empty-policy";

/// A DigestSchedule whose `schedule` is not a five-field cron expression.
///
/// Why: the schedule becomes a CronJob; Kubernetes takes exactly five fields (no seconds), and a
/// schedule it cannot parse means the summary email silently never goes out.
pub const INVALID_SCHEDULE: &str = "invalid-schedule";

/// A DigestSchedule whose run and the run after next lie more than 14 days apart.
///
/// Why: the queue must keep an alert across one failed run, and SQS keeps messages at most 14
/// days; the controller refuses such a schedule (`ScheduleTooSparse`), so no digest would run.
pub const SCHEDULE_TOO_SPARSE: &str = "schedule-too-sparse";

/// A DigestSchedule whose `timeZone` is not an IANA time zone.
///
/// Why: the CronJob's `timeZone` is rejected by the apiserver (so the digest never runs), and an
/// abbreviation like `PST` would not follow daylight saving time anyway.
pub const INVALID_TIME_ZONE: &str = "invalid-time-zone";

/// An AlertRoute with a Retry button that only takes alerts which never show one.
///
/// Why: Retry appears only on failed EMR clusters; a route whose `match.kinds` leaves out
/// `EmrClusterStateChange` enables a button nobody will ever see.
pub const RETRY_NEVER_SHOWN: &str = "retry-never-shown";

/// A log alarm that cannot work as written: its filter pattern does not parse (the message
/// names the column), it extracts `$` fields a terms pattern has not, it names more than 3
/// dimensions, or the alarm's dimensions are not the filter's.
///
/// Why: CloudWatch Logs refuses the pattern at PutMetricFilter, or accepts a filter whose metric
/// the alarm never sees; the controller refuses such a log alarm (`InvalidSpec`), and lint says
/// so before the manifest is merged.
pub const INVALID_LOG_FILTER: &str = "invalid-log-filter";

/// A log alarm counting matching lines (metric value a constant such as `1`) with a statistic
/// other than `Sum`.
///
/// Why: every matching line publishes the same value, so the Average, Maximum and Minimum of a
/// period are that value (or the default), whether one line matched or a thousand: the
/// `Maximum of BackendConnectionErrors` story of the source documents, on logs. SampleCount
/// counts lines but ignores the default value. An error when the threshold can then never be
/// crossed (or is always crossed), a warning otherwise.
pub const LOG_COUNT_NEEDS_SUM: &str = "log-count-needs-sum";

/// Every rule: id, the level of its findings (the stronger one when it has two), and a summary.
pub const RULES: &[(&str, LintLevel, &str)] = &[
    (
        INVALID_LOG_FILTER,
        LintLevel::Error,
        "log alarm's filter pattern or metric cannot work",
    ),
    (
        LOG_COUNT_NEEDS_SUM,
        LintLevel::Error,
        "log alarm counting lines without Sum",
    ),
    (
        COUNT_METRIC_NEEDS_SUM,
        LintLevel::Error,
        "count metrics need the Sum statistic",
    ),
    (
        PERIOD_BELOW_RESOLUTION,
        LintLevel::Warning,
        "period shorter than the metric's publishing interval",
    ),
    (
        EVALUATION_WINDOW_TOO_SHORT,
        LintLevel::Warning,
        "gauge evaluated over less than three minutes",
    ),
    (
        PAGING_ALARM_WITHOUT_OK,
        LintLevel::Warning,
        "High/Critical alarm without OK notifications",
    ),
    (
        PAGING_ALARM_WITHOUT_RUNBOOK,
        LintLevel::Warning,
        "High/Critical alarm without a runbook",
    ),
    (
        SPARSE_METRIC_MISSING_DATA,
        LintLevel::Warning,
        "sparse error count without notBreaching",
    ),
    (
        THRESHOLD_IMPOSSIBLE,
        LintLevel::Error,
        "threshold the statistic never or always crosses",
    ),
    (
        METRIC_MATH_RETURN_DATA,
        LintLevel::Error,
        "not exactly one query returns data",
    ),
    (
        METRIC_MATH_DUPLICATE_ID,
        LintLevel::Error,
        "duplicate metric-math query ids",
    ),
    (
        METRIC_MATH_UNKNOWN_ID,
        LintLevel::Error,
        "expression refers to an undefined id or to itself",
    ),
    (
        METRIC_MATH_INVALID_STAT,
        LintLevel::Error,
        "metric-math stat is no CloudWatch statistic",
    ),
    (
        ACTIONS_DISABLED,
        LintLevel::Warning,
        "alarm actions disabled",
    ),
    (
        DRIFTING_GAUGE_STATIC_THRESHOLD,
        LintLevel::Warning,
        "fixed threshold on a slowly drifting gauge: add a trend or anomaly band",
    ),
    (
        EMPTY_POLICY,
        LintLevel::Warning,
        "policy with neither alarms nor event rules",
    ),
    (
        INVALID_SCHEDULE,
        LintLevel::Error,
        "digest schedule is no five-field cron expression",
    ),
    (
        SCHEDULE_TOO_SPARSE,
        LintLevel::Error,
        "digest runs too far apart for the queue to keep alerts across a failed run",
    ),
    (
        INVALID_TIME_ZONE,
        LintLevel::Error,
        "digest time zone is no IANA zone",
    ),
    (
        RETRY_NEVER_SHOWN,
        LintLevel::Warning,
        "retry enabled on a route that takes no EMR alerts",
    ),
];

/// Checks a DigestSchedule's schedule and time zone, which the schema keeps as plain strings,
/// over the year from now.
pub fn lint_digest_schedule(spec: &DigestScheduleSpec) -> Vec<LintFinding> {
    lint_digest_schedule_at(spec, chrono::Utc::now())
}

/// [`lint_digest_schedule`] over the year from `now`.
pub fn lint_digest_schedule_at(
    spec: &DigestScheduleSpec,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<LintFinding> {
    let mut findings = Vec::new();
    let mut error = |rule: &str, message: String| {
        findings.push(LintFinding {
            rule: rule.to_string(),
            level: LintLevel::Error,
            alarm: None,
            message,
        })
    };
    let fields = spec.schedule.split_whitespace().count();
    if fields != 5 {
        error(
            INVALID_SCHEDULE,
            format!(
                "schedule {:?} has {fields} fields; a CronJob takes exactly five (minute hour \
                 day-of-month month day-of-week), for example \"0 8,20 * * *\"",
                spec.schedule
            ),
        );
    } else if let Err(e) = spec.schedule.parse::<croner::Cron>() {
        error(
            INVALID_SCHEDULE,
            format!(
                "schedule {:?} is not a valid cron expression: {e}",
                spec.schedule
            ),
        );
    }
    // The same computation as the controller's, so lint refuses what the controller would.
    if let Ok(parsed) = Schedule::parse(&spec.schedule, &spec.time_zone)
        && let Err(e @ ScheduleError::TooSparse { .. }) = parsed.retention_seconds(now)
    {
        error(SCHEDULE_TOO_SPARSE, e.to_string());
    }
    if spec.time_zone.parse::<chrono_tz::Tz>().is_err() {
        error(
            INVALID_TIME_ZONE,
            format!(
                "timeZone {:?} is not an IANA time zone; use a name such as \
                 America/Los_Angeles, which also follows daylight saving time",
                spec.time_zone
            ),
        );
    }
    findings
}

/// Checks an AlertRoute for settings that are valid but cannot take effect.
pub fn lint_alert_route(spec: &AlertRouteSpec) -> Vec<LintFinding> {
    let mut findings = Vec::new();
    let retry_enabled = spec
        .actions
        .as_ref()
        .and_then(|a| a.retry.as_ref())
        .is_some_and(|r| r.enabled);
    let kinds = &spec.match_.kinds;
    if retry_enabled && !kinds.is_empty() && !kinds.contains(&AlertKind::EmrClusterStateChange) {
        findings.push(LintFinding {
            rule: RETRY_NEVER_SHOWN.to_string(),
            level: LintLevel::Warning,
            alarm: None,
            message: "actions.retry is enabled, but the Retry button appears only on failed EMR \
                      clusters and match.kinds leaves out EmrClusterStateChange"
                .to_string(),
        });
    }
    findings
}

/// Runs every rule on a policy, in alarm order.
pub fn lint_alarm_policy(spec: &AlarmPolicySpec) -> Vec<LintFinding> {
    let mut findings = Vec::new();
    if spec.alarms.is_empty() && spec.log_alarms.is_empty() && spec.event_rules.is_empty() {
        findings.push(LintFinding {
            rule: EMPTY_POLICY.to_string(),
            level: LintLevel::Warning,
            alarm: None,
            message: "the policy has neither alarms nor eventRules, so nothing publishes to its \
                      topic"
                .to_string(),
        });
    }
    // An alarm a composite combines may stay silent on purpose: the composite notifies.
    let combined: BTreeSet<String> = spec
        .composite_alarms
        .iter()
        .filter_map(|c| {
            let known: Vec<&str> = spec.alarms.iter().map(|a| a.name.as_str()).collect();
            crate::resources::composite_rule::referenced_alarms(&c.rule, &known).ok()
        })
        .flatten()
        .collect();
    for alarm in &spec.alarms {
        findings.extend(
            lint_alarm(alarm)
                .into_iter()
                .filter(|f| !(f.rule == ACTIONS_DISABLED && combined.contains(&alarm.name))),
        );
    }
    for log_alarm in &spec.log_alarms {
        findings.extend(lint_log_alarm(log_alarm));
    }
    findings
}

/// The rules of a log alarm: its filter and metric, its statistic, and every alarm rule on the
/// alarm it becomes.
pub fn lint_log_alarm(log_alarm: &LogAlarmSpec) -> Vec<LintFinding> {
    let alarm = log_alarm.alarm();
    let mut out = Findings {
        alarm: &log_alarm.name,
        findings: Vec::new(),
    };
    for problem in crate::resources::filter_pattern::log_alarm_problems(log_alarm) {
        out.error(
            INVALID_LOG_FILTER,
            format!("{}: {}", problem.field, problem.message),
        );
    }
    check_log_count_statistic(log_alarm, &mut out);
    let mut findings = out.findings;
    findings.extend(lint_alarm(&alarm));
    findings
}

fn check_log_count_statistic(log_alarm: &LogAlarmSpec, out: &mut Findings<'_>) {
    let metric = &log_alarm.logs.metric;
    // A `$` value measures something per line (latency, bytes): any statistic can make sense.
    let Ok(value) = metric.value.parse::<f64>() else {
        return;
    };
    if log_alarm.statistic == Statistic::Sum {
        return;
    }
    let stat = log_alarm.statistic.as_str();
    let t = log_alarm.threshold;
    let shown = fmt_number(t);
    let never = match log_alarm.statistic {
        // Every sample is the value (or the default): so is their average, maximum and minimum.
        Statistic::Average | Statistic::Maximum | Statistic::Minimum => {
            let high = value.max(metric.default_value.unwrap_or(value));
            match log_alarm.comparison {
                ComparisonOperator::GreaterThanThreshold if t >= high => {
                    Some(format!("so a threshold of {shown} can never be reached"))
                }
                ComparisonOperator::GreaterThanOrEqualToThreshold if t > high => {
                    Some(format!("so a threshold of {shown} can never be reached"))
                }
                ComparisonOperator::LessThanThreshold if t > high => Some(format!(
                    "so it is always below a threshold of {shown} and the alarm always fires"
                )),
                ComparisonOperator::LessThanOrEqualToThreshold if t >= high => Some(format!(
                    "so it is always below a threshold of {shown} and the alarm always fires"
                )),
                _ => None,
            }
        }
        _ => None,
    };
    let message = format!(
        "{stat} of {} {} counts matching lines (value {}), and every line publishes the same \
         value, {}; use statistic: Sum",
        metric.namespace,
        metric.name,
        metric.value,
        never
            .as_deref()
            .unwrap_or("so one matching line and a thousand look the same")
    );
    if never.is_some() {
        out.error(LOG_COUNT_NEEDS_SUM, message);
    } else {
        out.warn(LOG_COUNT_NEEDS_SUM, message);
    }
}

/// Runs every alarm rule on one alarm.
pub fn lint_alarm(alarm: &AlarmSpec) -> Vec<LintFinding> {
    let mut out = Findings {
        alarm: &alarm.name,
        findings: Vec::new(),
    };
    if let Some(metric) = &alarm.metric {
        let stat = metric
            .statistic
            .map(|s| Stat::parse(s.as_str()))
            .or_else(|| metric.percentile.as_deref().map(Stat::parse));
        if let Some(stat) = stat {
            check_single_metric(alarm, &metric.namespace, &metric.name, &stat, &mut out);
        }
    }
    if let Some(queries) = &alarm.metrics {
        check_metric_math(alarm, queries, &mut out);
    }
    check_drifting_gauge(alarm, &mut out);
    check_paging(alarm, &mut out);
    if !alarm.actions_enabled {
        out.warn(
            ACTIONS_DISABLED,
            "actionsEnabled is false, so the alarm notifies nobody; remove the line once the \
             alarm is tuned"
                .to_string(),
        );
    }
    out.findings
}

struct Findings<'a> {
    alarm: &'a str,
    findings: Vec<LintFinding>,
}

impl Findings<'_> {
    fn push(&mut self, rule: &str, level: LintLevel, message: String) {
        self.findings.push(LintFinding {
            rule: rule.to_string(),
            level,
            alarm: Some(self.alarm.to_string()),
            message: format!("alarm {}: {message}", self.alarm),
        });
    }

    fn error(&mut self, rule: &str, message: String) {
        self.push(rule, LintLevel::Error, message);
    }

    fn warn(&mut self, rule: &str, message: String) {
        self.push(rule, LintLevel::Warning, message);
    }
}

/// A statistic as written in a metric or a metric-math query.
#[derive(Clone, Debug, PartialEq)]
enum Stat {
    Basic(Statistic),
    /// Percentiles and other extended statistics (`p99`, `tm90`).
    Extended(String),
    /// Not a CloudWatch statistic.
    Invalid(String),
}

impl Stat {
    fn parse(text: &str) -> Stat {
        match text {
            "Sum" => Stat::Basic(Statistic::Sum),
            "Average" => Stat::Basic(Statistic::Average),
            "Maximum" => Stat::Basic(Statistic::Maximum),
            "Minimum" => Stat::Basic(Statistic::Minimum),
            "SampleCount" => Stat::Basic(Statistic::SampleCount),
            other if is_extended_statistic(other) => Stat::Extended(other.to_string()),
            other => Stat::Invalid(other.to_string()),
        }
    }

    fn label(&self) -> &str {
        match self {
            Stat::Basic(s) => s.as_str(),
            Stat::Extended(s) | Stat::Invalid(s) => s,
        }
    }

    /// Whether the statistic adds events up (and so is right for counts).
    fn is_counting(&self) -> bool {
        matches!(self, Stat::Basic(Statistic::Sum | Statistic::SampleCount))
    }
}

/// `p99`, `p99.9`, `tm90`, `TM(10%:90%)`-style shorthands as CloudWatch accepts them in `stat`.
fn is_extended_statistic(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let rest = ["tm", "tc", "ts", "wm", "pr", "iqm", "p"]
        .iter()
        .find_map(|prefix| lower.strip_prefix(prefix));
    match rest {
        Some("") => lower == "iqm",
        Some(rest) if rest.starts_with('(') => rest.ends_with(')'),
        Some(rest) => rest
            .parse::<f64>()
            .is_ok_and(|p| (0.0..=100.0).contains(&p)),
        None => false,
    }
}

/// What a metric measures, as far as the rules need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MetricKind {
    /// One sample of value 1 per event: only Sum (or SampleCount) adds up. `rate_average` marks
    /// counts whose Average AWS documents as a rate between 0 and 1 (API Gateway errors).
    /// `sparse` counts are published only while events happen.
    Count { rate_average: bool, sparse: bool },
    /// A percentage between 0 and 100.
    Percent,
    /// Anything else.
    Other,
}

/// Count metrics AWS documents by name, per namespace.
const COUNT_METRICS: &[(&str, &[&str])] = &[
    (
        "AWS/ELB",
        &["BackendConnectionErrors", "RequestCount", "SpilloverCount"],
    ),
    (
        "AWS/ApplicationELB",
        &[
            "RequestCount",
            "NewConnectionCount",
            "RejectedConnectionCount",
            "ELBAuthError",
            "ELBAuthFailure",
            "NonStickyRequestCount",
        ],
    ),
    (
        "AWS/NetworkELB",
        &[
            "NewFlowCount",
            "NewFlowCount_TCP",
            "NewFlowCount_TLS",
            "NewFlowCount_UDP",
        ],
    ),
    (
        "AWS/Lambda",
        &[
            "Errors",
            "Throttles",
            "Invocations",
            "DeadLetterErrors",
            "DestinationDeliveryFailures",
            "RecursiveInvocationsDropped",
        ],
    ),
    ("AWS/ApiGateway", &["4XXError", "5XXError", "Count"]),
    ("AWS/SNS", &["NumberOfNotificationsFailed"]),
    ("AWS/Events", &["FailedInvocations", "ThrottledRules"]),
    (
        "AWS/States",
        &[
            "ExecutionsFailed",
            "ExecutionsTimedOut",
            "ExecutionThrottled",
        ],
    ),
];

/// Gauges whose names look like counts: they must never be asked for a Sum.
const GAUGES_NAMED_LIKE_COUNTS: &[&str] = &[
    "HealthyHostCount",
    "UnHealthyHostCount",
    "RunningTaskCount",
    "PendingTaskCount",
    "DesiredTaskCount",
    "ActiveFlowCount",
    "ActiveFlowCount_TCP",
    "ActiveFlowCount_TLS",
    "ActiveFlowCount_UDP",
    "ActiveConnectionCount",
    "SurgeQueueLength",
];

fn metric_kind(namespace: &str, name: &str) -> MetricKind {
    if !namespace.starts_with("AWS/") || GAUGES_NAMED_LIKE_COUNTS.contains(&name) {
        return MetricKind::Other;
    }
    let listed = COUNT_METRICS
        .iter()
        .any(|(ns, names)| *ns == namespace && names.contains(&name));
    let named_like_a_count = name.starts_with("HTTPCode_")
        || name.ends_with("ErrorCount")
        || name.ends_with("Errors")
        || name.ends_with("Throttles")
        || (namespace.ends_with("ELB") && name.ends_with("_Count"));
    if listed || named_like_a_count {
        let rate_average = namespace == "AWS/ApiGateway" && name.ends_with("XXError");
        // Request totals are published whenever there is traffic; error and code counts only
        // when they happen.
        let sparse = !matches!(name, "RequestCount" | "Invocations" | "Count");
        return MetricKind::Count {
            rate_average,
            sparse,
        };
    }
    if name.ends_with("Utilization") || name.contains("Percent") {
        return MetricKind::Percent;
    }
    MetricKind::Other
}

/// Seconds between two datapoints of a metric as AWS publishes it, when known.
fn resolution(namespace: &str, name: &str) -> Option<(i32, &'static str)> {
    match namespace {
        "AWS/EC2" => Some((
            300,
            "EC2 basic monitoring publishes every 300 s (detailed monitoring, if enabled, every 60 s)",
        )),
        "AWS/S3" if matches!(name, "BucketSizeBytes" | "NumberOfObjects") => {
            Some((86_400, "S3 storage metrics are published once a day"))
        }
        "AWS/Billing" => Some((21_600, "billing metrics are published every few hours")),
        ns if ns.starts_with("AWS/") => Some((60, "AWS namespaces publish every 60 s")),
        _ => None,
    }
}

fn fmt_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn check_single_metric(
    alarm: &AlarmSpec,
    namespace: &str,
    name: &str,
    stat: &Stat,
    out: &mut Findings<'_>,
) {
    let kind = metric_kind(namespace, name);
    // An anomaly detection alarm has no fixed threshold; its band says nothing of the statistic.
    let threshold = alarm.threshold;
    let t = threshold.map(fmt_number).unwrap_or_default();
    let metric = format!("{} of {namespace} {name}", stat.label());

    if let MetricKind::Count { rate_average, .. } = kind
        && !stat.is_counting()
    {
        let is_rate = rate_average && *stat == Stat::Basic(Statistic::Average);
        if is_rate {
            if threshold.is_some_and(|t| t > 1.0) && is_greater(alarm.comparison) {
                out.error(
                    COUNT_METRIC_NEEDS_SUM,
                    format!(
                        "{metric} is the error rate between 0 and 1, so a threshold of {t} can \
                         never be reached; use Sum for a count, or a threshold like 0.05 for 5 %"
                    ),
                );
            }
        } else {
            let reason = match alarm.comparison {
                ComparisonOperator::GreaterThanThreshold if threshold.is_some_and(|t| t >= 1.0) => {
                    format!("so a threshold of {t} can never be reached")
                }
                ComparisonOperator::GreaterThanOrEqualToThreshold
                    if threshold.is_some_and(|t| t > 1.0) =>
                {
                    format!("so a threshold of {t} can never be reached")
                }
                ComparisonOperator::LessThanThreshold if threshold.is_some_and(|t| t > 1.0) => {
                    format!("so it is always below a threshold of {t} and the alarm always fires")
                }
                ComparisonOperator::LessThanOrEqualToThreshold
                    if threshold.is_some_and(|t| t >= 1.0) =>
                {
                    format!("so it is always below a threshold of {t} and the alarm always fires")
                }
                _ => "so one event and a thousand look the same".to_string(),
            };
            out.error(
                COUNT_METRIC_NEEDS_SUM,
                format!("{metric} is at most 1 per datapoint, {reason}; use Sum"),
            );
        }
    }

    if let MetricKind::Count { sparse: true, .. } = kind
        && alarm.treat_missing_data != TreatMissingData::NotBreaching
    {
        let effect = match alarm.treat_missing_data {
            TreatMissingData::Missing => {
                "quiet periods turn the alarm INSUFFICIENT_DATA instead of OK, so it never resolves"
            }
            TreatMissingData::Ignore => "the alarm stays in ALARM after the errors stop",
            TreatMissingData::Breaching => {
                "every quiet period counts as breaching, so the alarm fires when nothing is wrong"
            }
            TreatMissingData::NotBreaching => unreachable!("excluded above"),
        };
        out.warn(
            SPARSE_METRIC_MISSING_DATA,
            format!(
                "{namespace} {name} is published only while events happen; with \
                 treatMissingData {} {effect}; use notBreaching",
                alarm.treat_missing_data.as_str()
            ),
        );
    }

    check_threshold(alarm, kind, stat, &metric, out);
    check_resolution(alarm, namespace, name, out);

    let window = i64::from(alarm.period) * i64::from(alarm.evaluation_periods);
    if !stat.is_counting() && window < 180 {
        out.warn(
            EVALUATION_WINDOW_TOO_SHORT,
            format!(
                "{metric} is judged over {window} s (period × evaluationPeriods), so one noisy \
                 datapoint decides the alarm; evaluate at least 180 s, or set datapointsToAlarm \
                 to M out of N"
            ),
        );
    }
}

fn is_greater(op: ComparisonOperator) -> bool {
    matches!(
        op,
        ComparisonOperator::GreaterThanThreshold
            | ComparisonOperator::GreaterThanOrEqualToThreshold
    )
}

/// Whether `value <op> threshold` holds.
fn holds(value: f64, op: ComparisonOperator, threshold: f64) -> bool {
    match op {
        ComparisonOperator::GreaterThanThreshold => value > threshold,
        ComparisonOperator::GreaterThanOrEqualToThreshold => value >= threshold,
        ComparisonOperator::LessThanThreshold => value < threshold,
        ComparisonOperator::LessThanOrEqualToThreshold => value <= threshold,
        // Bands have no fixed threshold to hold against (`check_threshold` skips them).
        ComparisonOperator::LessThanLowerOrGreaterThanUpperThreshold
        | ComparisonOperator::GreaterThanUpperThreshold
        | ComparisonOperator::LessThanLowerThreshold => false,
    }
}

fn check_threshold(
    alarm: &AlarmSpec,
    kind: MetricKind,
    stat: &Stat,
    metric: &str,
    out: &mut Findings<'_>,
) {
    let (low, high, what) = match (stat, kind) {
        (Stat::Basic(Statistic::SampleCount), _) => (0.0, f64::INFINITY, "never negative"),
        (Stat::Basic(Statistic::Sum), MetricKind::Count { .. }) => {
            (0.0, f64::INFINITY, "never negative")
        }
        (Stat::Basic(Statistic::Sum), _) => return,
        (_, MetricKind::Percent) => (0.0, 100.0, "a percentage between 0 and 100"),
        _ => return,
    };
    let op = alarm.comparison;
    let Some(threshold) = alarm.threshold.filter(|_| !op.is_band()) else {
        return;
    };
    let t = fmt_number(threshold);
    // The condition over [low, high] is monotonic, so its ends tell whether it can ever hold.
    let at_low = holds(low, op, threshold);
    let at_high = if high.is_finite() {
        holds(high, op, threshold)
    } else {
        is_greater(op)
    };
    if !at_low && !at_high {
        out.error(
            THRESHOLD_IMPOSSIBLE,
            format!(
                "{metric} is {what}, so {} {t} can never be true and the alarm never fires",
                op.as_str()
            ),
        );
    } else if at_low && at_high {
        out.error(
            THRESHOLD_IMPOSSIBLE,
            format!(
                "{metric} is {what}, so {} {t} is always true and the alarm always fires",
                op.as_str()
            ),
        );
    } else if *stat == Stat::Basic(Statistic::SampleCount) && threshold.fract() != 0.0 {
        out.warn(
            THRESHOLD_IMPOSSIBLE,
            format!(
                "SampleCount is a whole number of datapoints, so a threshold of {t} reads like a \
                 rate; for an error rate use metric math (errors / requests)"
            ),
        );
    }
}

fn check_resolution(alarm: &AlarmSpec, namespace: &str, name: &str, out: &mut Findings<'_>) {
    if let Some((published, why)) = resolution(namespace, name)
        && alarm.period < published
    {
        out.warn(
            PERIOD_BELOW_RESOLUTION,
            format!(
                "period {} s is shorter than the {published} s at which {namespace} {name} is \
                 published ({why}), so most datapoints are empty; use a period of at least \
                 {published}",
                alarm.period
            ),
        );
    }
}

/// Name fragments of gauges that drift slowly (compared lowercase, without `_`, `-` and `.`):
/// RDS `FreeStorageSpace` and `FreeableMemory`, Aurora `FreeLocalStorage`, the CloudWatch agent's
/// `disk_free`, `disk_used_percent`, `mem_available`, `mem_used_percent`, and similar names.
const DRIFTING_GAUGE_FRAGMENTS: &[&str] = &[
    "freestorage",
    "freelocalstorage",
    "freeablememory",
    "freememory",
    "freespace",
    "freedisk",
    "diskfree",
    "diskavailable",
    "diskused",
    "diskspace",
    "memavailable",
    "memoryavailable",
    "memused",
    "memoryused",
    "swapused",
    "swapusage",
];

fn is_drifting_gauge(name: &str) -> bool {
    let key: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    DRIFTING_GAUGE_FRAGMENTS.iter().any(|f| key.contains(f))
}

/// The name of the drifting gauge a fixed threshold is evaluated against, if any: the single
/// metric, or the metric-math query that returns data when it is a plain metric (an expression
/// over it, such as `RATE(m1)`, is already a trend).
fn drifting_gauge_evaluated(alarm: &AlarmSpec) -> Option<&str> {
    // A band alarm (no fixed threshold) is what the rule asks for.
    alarm.threshold?;
    if let Some(metric) = &alarm.metric {
        return is_drifting_gauge(&metric.name).then_some(metric.name.as_str());
    }
    let returned = alarm.metrics.iter().flatten().find(|q| q.return_data)?;
    let metric = returned.metric.as_ref()?;
    is_drifting_gauge(&metric.name).then_some(metric.name.as_str())
}

fn check_drifting_gauge(alarm: &AlarmSpec, out: &mut Findings<'_>) {
    if let Some(name) = drifting_gauge_evaluated(alarm) {
        out.warn(
            DRIFTING_GAUGE_STATIC_THRESHOLD,
            format!(
                "{name} drifts slowly (a disk filling, a memory leak), and a fixed threshold \
                 fires only when little room is left; add an alarm on its trend (metric math \
                 RATE(m1) or DIFF(m1) over it) or set anomalyDetection instead of threshold"
            ),
        );
    }
}

fn check_paging(alarm: &AlarmSpec, out: &mut Findings<'_>) {
    if alarm.severity < Severity::High {
        return;
    }
    let severity = alarm.severity.as_str();
    if !alarm.ok_notifications {
        out.warn(
            PAGING_ALARM_WITHOUT_OK,
            format!(
                "a {severity} alarm without okNotifications never tells anyone the problem is \
                 over, and its Slack message is never resolved; set okNotifications: true"
            ),
        );
    }
    if alarm.runbook_url.is_none() {
        out.warn(
            PAGING_ALARM_WITHOUT_RUNBOOK,
            format!(
                "a {severity} alarm pages someone; give them a runbookUrl with the first steps"
            ),
        );
    }
}

fn check_metric_math(alarm: &AlarmSpec, queries: &[MetricQuery], out: &mut Findings<'_>) {
    let returning: Vec<&str> = queries
        .iter()
        .filter(|q| q.return_data)
        .map(|q| q.id.as_str())
        .collect();
    if returning.len() != 1 {
        let got = if returning.is_empty() {
            "none does".to_string()
        } else {
            format!("{} do ({})", returning.len(), returning.join(", "))
        };
        out.error(
            METRIC_MATH_RETURN_DATA,
            format!(
                "exactly one query must set returnData: true (the one the alarm evaluates), but \
                 {got}"
            ),
        );
    }

    let mut seen = BTreeSet::new();
    for query in queries {
        if !seen.insert(query.id.as_str()) {
            out.error(
                METRIC_MATH_DUPLICATE_ID,
                format!("query id {} is used more than once", query.id),
            );
        }
    }

    let mut references: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for query in queries {
        if let Some(expression) = &query.expression {
            let refs = expression_references(expression);
            for id in &refs {
                if !seen.contains(id.as_str()) {
                    out.error(
                        METRIC_MATH_UNKNOWN_ID,
                        format!(
                            "query {} refers to {id}, which no query defines (ids: {})",
                            query.id,
                            seen.iter().copied().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
            references.insert(query.id.as_str(), refs);
        }
        if let Some(metric) = &query.metric {
            let stat = Stat::parse(&metric.stat);
            match &stat {
                Stat::Invalid(text) => out.error(
                    METRIC_MATH_INVALID_STAT,
                    format!(
                        "query {}: stat {text:?} is no CloudWatch statistic; use Sum, Average, \
                         Maximum, Minimum, SampleCount or a percentile such as p99",
                        query.id
                    ),
                ),
                _ if matches!(
                    metric_kind(&metric.namespace, &metric.name),
                    MetricKind::Count {
                        rate_average: false,
                        ..
                    }
                ) && !stat.is_counting() =>
                {
                    out.error(
                        COUNT_METRIC_NEEDS_SUM,
                        format!(
                            "query {} takes {} of {} {}, which is at most 1 per datapoint; use Sum",
                            query.id,
                            stat.label(),
                            metric.namespace,
                            metric.name
                        ),
                    )
                }
                _ => {}
            }
            check_resolution(alarm, &metric.namespace, &metric.name, out);
        }
    }
    if let Some(cycle) = find_cycle(&references) {
        out.error(
            METRIC_MATH_UNKNOWN_ID,
            format!(
                "expressions refer to each other in a cycle: {}",
                cycle.join(" → ")
            ),
        );
    }
}

/// Query ids an expression refers to: lowercase-initial identifiers that are not function calls,
/// outside string literals. Metrics Insights queries (`SELECT ...`) name metrics, not ids, and are
/// skipped.
fn expression_references(expression: &str) -> Vec<String> {
    if expression
        .trim_start()
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("select"))
    {
        return Vec::new();
    }
    let chars: Vec<char> = expression.chars().collect();
    let mut refs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if c.is_ascii_lowercase() && next != Some(&'(') && !refs.contains(&word) {
                refs.push(word);
            }
        } else {
            i += 1;
        }
    }
    refs
}

/// A cycle among expression references, as the ids along it, if there is one.
fn find_cycle(references: &BTreeMap<&str, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        id: &str,
        references: &BTreeMap<&str, Vec<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|s| s == id) {
            let mut cycle = stack[pos..].to_vec();
            cycle.push(id.to_string());
            return Some(cycle);
        }
        if done.contains(id) {
            return None;
        }
        stack.push(id.to_string());
        for next in references.get(id).into_iter().flatten() {
            if let Some(cycle) = visit(next, references, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(id.to_string());
        None
    }
    let mut done = BTreeSet::new();
    references
        .keys()
        .find_map(|id| visit(id, references, &mut Vec::new(), &mut done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::SpecMap;
    use crate::resources::alarm_policy::{MetricSpec, QueryMetric};

    fn metric_alarm(namespace: &str, name: &str, statistic: Statistic) -> AlarmSpec {
        AlarmSpec {
            name: "elb-backend-errors".to_string(),
            description: None,
            severity: Severity::Warning,
            runbook_url: None,
            metric: Some(MetricSpec {
                namespace: namespace.to_string(),
                name: name.to_string(),
                dimensions: SpecMap::default(),
                statistic: Some(statistic),
                percentile: None,
                unit: None,
            }),
            metrics: None,
            period: 60,
            evaluation_periods: 5,
            datapoints_to_alarm: None,
            threshold: Some(100.0),
            anomaly_detection: None,
            comparison: ComparisonOperator::GreaterThanThreshold,
            treat_missing_data: TreatMissingData::NotBreaching,
            ok_notifications: true,
            insufficient_data_notifications: false,
            actions_enabled: true,
            additional_actions: Vec::new(),
            tags: SpecMap::default(),
        }
    }

    fn elb(statistic: Statistic) -> AlarmSpec {
        metric_alarm("AWS/ELB", "BackendConnectionErrors", statistic)
    }

    fn rules(alarm: &AlarmSpec) -> Vec<(String, LintLevel)> {
        lint_alarm(alarm)
            .into_iter()
            .map(|f| (f.rule, f.level))
            .collect()
    }

    fn only(alarm: &AlarmSpec) -> LintFinding {
        let findings = lint_alarm(alarm);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        findings.into_iter().next().unwrap()
    }

    fn query(
        id: &str,
        expression: Option<&str>,
        stat: Option<&str>,
        return_data: bool,
    ) -> MetricQuery {
        MetricQuery {
            id: id.to_string(),
            expression: expression.map(str::to_string),
            metric: stat.map(|stat| QueryMetric {
                namespace: "AWS/ApplicationELB".to_string(),
                name: if id.starts_with('e') {
                    "HTTPCode_Target_5XX_Count"
                } else {
                    "RequestCount"
                }
                .to_string(),
                dimensions: SpecMap::default(),
                stat: stat.to_string(),
                unit: None,
            }),
            label: None,
            return_data,
        }
    }

    fn math_alarm(queries: Vec<MetricQuery>) -> AlarmSpec {
        AlarmSpec {
            metric: None,
            metrics: Some(queries),
            threshold: Some(5.0),
            anomaly_detection: None,
            ..elb(Statistic::Sum)
        }
    }

    #[test]
    fn the_alarm_done_right_has_no_findings() {
        assert_eq!(lint_alarm(&elb(Statistic::Sum)), vec![]);
    }

    #[test]
    fn maximum_of_backend_connection_errors_can_never_reach_100() {
        let finding = only(&elb(Statistic::Maximum));
        assert_eq!(finding.rule, COUNT_METRIC_NEEDS_SUM);
        assert_eq!(finding.level, LintLevel::Error);
        assert_eq!(finding.alarm.as_deref(), Some("elb-backend-errors"));
        assert_eq!(
            finding.message,
            "alarm elb-backend-errors: Maximum of AWS/ELB BackendConnectionErrors is at most 1 \
             per datapoint, so a threshold of 100 can never be reached; use Sum"
        );
    }

    #[test]
    fn average_minimum_and_percentiles_of_counts_are_errors_too() {
        for stat in [Statistic::Average, Statistic::Minimum] {
            assert_eq!(
                rules(&elb(stat)),
                vec![(COUNT_METRIC_NEEDS_SUM.to_string(), LintLevel::Error)]
            );
        }
        let mut p99 = metric_alarm("AWS/Lambda", "Errors", Statistic::Sum);
        let metric = p99.metric.as_mut().unwrap();
        metric.statistic = None;
        metric.percentile = Some("p99".to_string());
        p99.threshold = Some(0.0);
        let finding = only(&p99);
        assert_eq!(finding.rule, COUNT_METRIC_NEEDS_SUM);
        assert!(
            finding.message.contains("p99 of AWS/Lambda Errors"),
            "{}",
            finding.message
        );
        assert!(
            finding
                .message
                .contains("one event and a thousand look the same")
        );
    }

    #[test]
    fn count_families_are_recognised_and_gauges_named_like_counts_are_not() {
        for (ns, name) in [
            ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
            ("AWS/ApplicationELB", "TargetConnectionErrorCount"),
            ("AWS/ELB", "HTTPCode_Backend_5XX"),
            ("AWS/Lambda", "Throttles"),
            ("AWS/ApiGateway", "5XXError"),
            ("AWS/DynamoDB", "SystemErrors"),
            ("AWS/NetworkELB", "TCP_Target_Reset_Count"),
        ] {
            assert!(
                rules(&metric_alarm(ns, name, Statistic::Maximum))
                    .contains(&(COUNT_METRIC_NEEDS_SUM.to_string(), LintLevel::Error)),
                "{ns} {name}"
            );
        }
        let mut unhealthy = metric_alarm("AWS/ELB", "UnHealthyHostCount", Statistic::Maximum);
        unhealthy.threshold = Some(0.0);
        assert_eq!(rules(&unhealthy), vec![]);
        // Custom namespaces publish whatever their authors chose.
        assert_eq!(
            rules(&metric_alarm("Logstash", "Errors", Statistic::Maximum)),
            vec![]
        );
    }

    #[test]
    fn lower_than_comparisons_on_counts_always_fire() {
        let mut alarm = metric_alarm("AWS/ELB", "RequestCount", Statistic::Maximum);
        alarm.comparison = ComparisonOperator::LessThanThreshold;
        alarm.threshold = Some(10.0);
        let finding = only(&alarm);
        assert!(
            finding.message.contains("always below a threshold of 10"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn api_gateway_error_average_is_a_rate() {
        let mut rate = metric_alarm("AWS/ApiGateway", "5XXError", Statistic::Average);
        rate.threshold = Some(0.05);
        assert_eq!(rules(&rate), vec![]);
        rate.threshold = Some(5.0);
        let finding = only(&rate);
        assert_eq!(finding.rule, COUNT_METRIC_NEEDS_SUM);
        assert!(finding.message.contains("error rate between 0 and 1"));
    }

    #[test]
    fn sparse_error_counts_need_not_breaching() {
        for (treatment, effect) in [
            (TreatMissingData::Missing, "never resolves"),
            (TreatMissingData::Ignore, "stays in ALARM"),
            (TreatMissingData::Breaching, "fires when nothing is wrong"),
        ] {
            let mut alarm = elb(Statistic::Sum);
            alarm.treat_missing_data = treatment;
            let finding = only(&alarm);
            assert_eq!(finding.rule, SPARSE_METRIC_MISSING_DATA);
            assert_eq!(finding.level, LintLevel::Warning);
            assert!(finding.message.contains(effect), "{}", finding.message);
        }
        // Request totals flow whenever there is traffic.
        let mut requests = metric_alarm("AWS/ELB", "RequestCount", Statistic::Sum);
        requests.treat_missing_data = TreatMissingData::Missing;
        assert_eq!(rules(&requests), vec![]);
    }

    #[test]
    fn period_below_resolution() {
        let mut alarm = elb(Statistic::Sum);
        alarm.period = 10;
        alarm.evaluation_periods = 30;
        let finding = only(&alarm);
        assert_eq!(finding.rule, PERIOD_BELOW_RESOLUTION);
        assert!(finding.message.contains("at least 60"));

        let mut cpu = metric_alarm("AWS/EC2", "CPUUtilization", Statistic::Average);
        cpu.threshold = Some(80.0);
        assert_eq!(
            rules(&cpu),
            vec![(PERIOD_BELOW_RESOLUTION.to_string(), LintLevel::Warning)]
        );
        cpu.period = 300;
        cpu.evaluation_periods = 2;
        assert_eq!(rules(&cpu), vec![]);
        assert_eq!(
            rules(&metric_alarm("MyApp", "QueueDepth", Statistic::Maximum)),
            vec![]
        );
    }

    #[test]
    fn gauges_over_a_short_window_warn_but_sums_do_not() {
        let mut latency = metric_alarm(
            "AWS/ApplicationELB",
            "TargetResponseTime",
            Statistic::Average,
        );
        latency.threshold = Some(1.0);
        latency.evaluation_periods = 1;
        let finding = only(&latency);
        assert_eq!(finding.rule, EVALUATION_WINDOW_TOO_SHORT);
        assert!(finding.message.contains("judged over 60 s"));
        let mut errors = elb(Statistic::Sum);
        errors.evaluation_periods = 1;
        assert_eq!(rules(&errors), vec![]);
    }

    #[test]
    fn paging_alarms_need_ok_notifications_and_a_runbook() {
        let mut alarm = elb(Statistic::Sum);
        alarm.severity = Severity::Critical;
        alarm.ok_notifications = false;
        assert_eq!(
            rules(&alarm),
            vec![
                (PAGING_ALARM_WITHOUT_OK.to_string(), LintLevel::Warning),
                (PAGING_ALARM_WITHOUT_RUNBOOK.to_string(), LintLevel::Warning),
            ]
        );
        alarm.ok_notifications = true;
        alarm.runbook_url = Some("https://runbooks.example.com/elb".to_string());
        assert_eq!(rules(&alarm), vec![]);
        alarm.severity = Severity::Warning;
        alarm.ok_notifications = false;
        alarm.runbook_url = None;
        assert_eq!(rules(&alarm), vec![]);
    }

    #[test]
    fn thresholds_the_statistic_cannot_cross() {
        let mut never = elb(Statistic::Sum);
        never.comparison = ComparisonOperator::LessThanThreshold;
        never.threshold = Some(0.0);
        let finding = only(&never);
        assert_eq!(
            (finding.rule.as_str(), finding.level),
            (THRESHOLD_IMPOSSIBLE, LintLevel::Error)
        );
        assert!(finding.message.contains("never fires"));

        let mut always = metric_alarm("MyApp", "Jobs", Statistic::SampleCount);
        always.comparison = ComparisonOperator::GreaterThanOrEqualToThreshold;
        always.threshold = Some(0.0);
        assert!(only(&always).message.contains("always fires"));

        let mut fraction = metric_alarm("MyApp", "Jobs", Statistic::SampleCount);
        fraction.threshold = Some(0.05);
        let finding = only(&fraction);
        assert_eq!(
            (finding.rule.as_str(), finding.level),
            (THRESHOLD_IMPOSSIBLE, LintLevel::Warning)
        );
        assert!(finding.message.contains("reads like a rate"));

        let mut cpu = metric_alarm("AWS/ECS", "CPUUtilization", Statistic::Maximum);
        cpu.threshold = Some(120.0);
        let finding = only(&cpu);
        assert!(
            finding.message.contains("percentage between 0 and 100"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn metric_math_needs_exactly_one_return_data() {
        let none = math_alarm(vec![
            query("errors", None, Some("Sum"), false),
            query("requests", None, Some("Sum"), false),
        ]);
        let finding = only(&none);
        assert_eq!(finding.rule, METRIC_MATH_RETURN_DATA);
        assert!(finding.message.ends_with("but none does"));
        let two = math_alarm(vec![
            query("errors", None, Some("Sum"), true),
            query("rate", Some("errors * 100"), None, true),
        ]);
        assert!(only(&two).message.ends_with("but 2 do (errors, rate)"));
    }

    #[test]
    fn metric_math_expressions_refer_only_to_defined_ids() {
        let good = math_alarm(vec![
            query("errors", None, Some("Sum"), false),
            query("requests", None, Some("Sum"), false),
            query(
                "rate",
                Some("100 * FILL(errors, 0) / IF(requests > 0, requests, 1)"),
                None,
                true,
            ),
        ]);
        assert_eq!(lint_alarm(&good), vec![]);
        let typo = math_alarm(vec![
            query("errors", None, Some("Sum"), false),
            query("requests", None, Some("Sum"), false),
            query("rate", Some("100 * errors / requsts"), None, true),
        ]);
        let finding = only(&typo);
        assert_eq!(finding.rule, METRIC_MATH_UNKNOWN_ID);
        assert!(
            finding.message.contains("refers to requsts"),
            "{}",
            finding.message
        );
        let cycle = math_alarm(vec![
            query("a", Some("b + 1"), None, true),
            query("b", Some("a * 2"), None, false),
        ]);
        let finding = only(&cycle);
        assert!(finding.message.contains("a → b → a"), "{}", finding.message);
    }

    #[test]
    fn metric_math_ids_are_unique_and_stats_valid() {
        let alarm = math_alarm(vec![
            query("errors", None, Some("Max"), false),
            query("errors", Some("errors"), None, true),
        ]);
        let found = rules(&alarm);
        assert!(found.contains(&(METRIC_MATH_DUPLICATE_ID.to_string(), LintLevel::Error)));
        assert!(found.contains(&(METRIC_MATH_INVALID_STAT.to_string(), LintLevel::Error)));
        let maximum = math_alarm(vec![
            query("errors", None, Some("Maximum"), false),
            query("rate", Some("errors"), None, true),
        ]);
        let finding = only(&maximum);
        assert_eq!(finding.rule, COUNT_METRIC_NEEDS_SUM);
        assert!(finding.message.contains(
            "query errors takes Maximum of AWS/ApplicationELB HTTPCode_Target_5XX_Count"
        ));
    }

    #[test]
    fn expression_references_skip_functions_strings_numbers_and_insights() {
        assert_eq!(
            expression_references(r#"SUM(METRICS("m")) + m1 * 1e3 + RATE(m2) / m1"#),
            vec!["m1", "m2"]
        );
        assert_eq!(
            expression_references("SELECT AVG(latency) FROM app"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn extended_statistics() {
        for ok in ["p99", "p99.9", "tm90", "TM(10%:90%)", "IQM", "wm99"] {
            assert!(is_extended_statistic(ok), "{ok}");
        }
        for bad in ["Max", "sum", "p", "p101", "x99"] {
            assert!(!is_extended_statistic(bad), "{bad}");
        }
    }

    #[test]
    fn disabled_actions_and_empty_policies_warn() {
        let mut alarm = elb(Statistic::Sum);
        alarm.actions_enabled = false;
        assert_eq!(
            rules(&alarm),
            vec![(ACTIONS_DISABLED.to_string(), LintLevel::Warning)]
        );
        let empty = AlarmPolicySpec {
            topic: Default::default(),
            deletion_policy: Default::default(),
            tags: SpecMap::default(),
            alarms: Vec::new(),
            composite_alarms: Vec::new(),
            log_alarms: Vec::new(),
            event_rules: Vec::new(),
        };
        let findings = lint_alarm_policy(&empty);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule, EMPTY_POLICY);
    }

    #[test]
    fn a_fixed_threshold_on_free_disk_or_memory_suggests_a_trend_or_a_band() {
        for (namespace, name) in [
            ("AWS/RDS", "FreeStorageSpace"),
            ("AWS/RDS", "FreeableMemory"),
            ("CWAgent", "disk_free"),
            ("CWAgent", "mem_available"),
            ("CWAgent", "disk_used_percent"),
        ] {
            let mut alarm = metric_alarm(namespace, name, Statistic::Minimum);
            alarm.comparison = ComparisonOperator::LessThanThreshold;
            alarm.threshold = Some(10_000_000_000.0);
            alarm.period = 300;
            let finding = only(&alarm);
            assert_eq!(finding.rule, DRIFTING_GAUGE_STATIC_THRESHOLD, "{name}");
            assert_eq!(finding.level, LintLevel::Warning);
            assert!(finding.message.contains("RATE(m1)"), "{}", finding.message);
            assert!(finding.message.contains("anomalyDetection"));
        }
        // Other gauges are not drifting ones.
        let mut cpu = metric_alarm("AWS/EC2", "CPUUtilization", Statistic::Average);
        cpu.threshold = Some(80.0);
        cpu.period = 300;
        assert!(rules(&cpu).is_empty(), "{:?}", rules(&cpu));
    }

    #[test]
    fn a_trend_or_a_band_on_a_drifting_gauge_is_what_the_rule_asks_for() {
        let mut band = metric_alarm("AWS/RDS", "FreeStorageSpace", Statistic::Minimum);
        band.period = 300;
        band.threshold = None;
        band.anomaly_detection =
            Some(crate::resources::alarm_policy::AnomalyDetectionSpec { band_width: 2.0 });
        band.comparison = ComparisonOperator::LessThanLowerThreshold;
        assert!(rules(&band).is_empty(), "{:?}", rules(&band));

        let disk = |id: &str, return_data: bool| MetricQuery {
            id: id.to_string(),
            expression: None,
            metric: Some(QueryMetric {
                namespace: "CWAgent".to_string(),
                name: "disk_used_percent".to_string(),
                dimensions: SpecMap::default(),
                stat: "Maximum".to_string(),
                unit: None,
            }),
            label: None,
            return_data,
        };
        let mut trend = math_alarm(vec![
            disk("m1", false),
            MetricQuery {
                id: "growth".to_string(),
                expression: Some("RATE(m1) * 3600".to_string()),
                metric: None,
                label: Some("percent per hour".to_string()),
                return_data: true,
            },
        ]);
        trend.period = 300;
        assert!(rules(&trend).is_empty(), "{:?}", rules(&trend));

        // The same gauge returned directly by metric math is still a fixed line on it.
        let mut direct = math_alarm(vec![disk("m1", true)]);
        direct.period = 300;
        assert_eq!(
            rules(&direct),
            vec![(
                DRIFTING_GAUGE_STATIC_THRESHOLD.to_string(),
                LintLevel::Warning
            )]
        );
    }

    fn log_alarm(statistic: &str, threshold: f64, pattern: &str) -> LogAlarmSpec {
        serde_json::from_value(serde_json::json!({
            "name": "checkout-errors",
            "logs": {
                "logGroup": "/aws/lambda/checkout",
                "filterPattern": pattern,
                "metric": {"namespace": "ServerlessApi/Logs", "name": "CheckoutErrors"}
            },
            "statistic": statistic,
            "period": 60, "evaluationPeriods": 5, "threshold": threshold,
            "comparison": "GreaterThanThreshold", "treatMissingData": "notBreaching"
        }))
        .unwrap()
    }

    fn log_rules(log_alarm: &LogAlarmSpec) -> Vec<(String, LintLevel)> {
        lint_log_alarm(log_alarm)
            .into_iter()
            .map(|f| (f.rule, f.level))
            .collect()
    }

    const CHECKOUT: &str = r#"{ $.level = "ERROR" && $.service = "checkout" }"#;

    #[test]
    fn a_log_alarm_counting_lines_with_sum_is_clean() {
        assert_eq!(log_rules(&log_alarm("Sum", 10.0, CHECKOUT)), Vec::new());
    }

    #[test]
    fn maximum_of_a_line_count_over_its_value_can_never_fire() {
        let findings = lint_log_alarm(&log_alarm("Maximum", 10.0, CHECKOUT));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            (findings[0].rule.as_str(), findings[0].level),
            (LOG_COUNT_NEEDS_SUM, LintLevel::Error)
        );
        assert!(
            findings[0].message.contains("can never be reached"),
            "{}",
            findings[0].message
        );
    }

    #[test]
    fn other_statistics_of_a_line_count_are_a_warning() {
        for stat in ["Average", "Minimum", "SampleCount"] {
            assert_eq!(
                log_rules(&log_alarm(stat, 0.0, CHECKOUT)),
                vec![(LOG_COUNT_NEEDS_SUM.to_string(), LintLevel::Warning)],
                "{stat}"
            );
        }
        let mut latency = log_alarm("Average", 2000.0, CHECKOUT);
        latency.logs.metric.value = "$.latency".into();
        assert_eq!(
            log_rules(&latency),
            Vec::new(),
            "a measured value may be averaged"
        );
    }

    #[test]
    fn an_unparsable_filter_pattern_is_an_error_naming_the_column() {
        let findings = lint_log_alarm(&log_alarm("Sum", 10.0, r#"{ $.level == "ERROR" }"#));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(
            (findings[0].rule.as_str(), findings[0].level),
            (INVALID_LOG_FILTER, LintLevel::Error)
        );
        assert!(
            findings[0].message.contains("logs.filterPattern")
                && findings[0].message.contains("column 11"),
            "{}",
            findings[0].message
        );
    }

    #[test]
    fn an_alarm_a_composite_combines_may_be_silent() {
        let mut silent = elb(Statistic::Sum);
        silent.actions_enabled = false;
        let mut spec = AlarmPolicySpec {
            topic: Default::default(),
            deletion_policy: Default::default(),
            tags: SpecMap::default(),
            alarms: vec![silent],
            composite_alarms: Vec::new(),
            log_alarms: Vec::new(),
            event_rules: Vec::new(),
        };
        let rules_of = |spec: &AlarmPolicySpec| -> Vec<String> {
            lint_alarm_policy(spec)
                .into_iter()
                .map(|f| f.rule)
                .collect()
        };
        assert_eq!(rules_of(&spec), vec![ACTIONS_DISABLED.to_string()]);
        spec.composite_alarms = vec![
            serde_json::from_value(serde_json::json!({
                "name": "combined", "rule": "ALARM(elb-backend-errors) AND TRUE"
            }))
            .unwrap(),
        ];
        assert!(rules_of(&spec).is_empty(), "{:?}", rules_of(&spec));
    }

    #[test]
    fn rule_ids_are_unique() {
        let ids: BTreeSet<_> = RULES.iter().map(|(id, _, _)| *id).collect();
        assert_eq!(ids.len(), RULES.len());
    }

    fn schedule(cron: &str, zone: &str) -> DigestScheduleSpec {
        serde_json::from_value(serde_json::json!({
            "schedule": cron,
            "timeZone": zone,
            "sources": [{"alarmPolicy": "emr"}],
            "email": {"from": "alerts@example.com", "to": ["team@example.com"]}
        }))
        .unwrap()
    }

    #[test]
    fn digest_schedules_need_five_field_cron_and_an_iana_zone() {
        assert_eq!(
            lint_digest_schedule(&schedule("0 8,20 * * *", "America/Los_Angeles")),
            vec![]
        );
        let rules_of = |s: &DigestScheduleSpec| {
            lint_digest_schedule(s)
                .into_iter()
                .map(|f| f.rule)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            rules_of(&schedule("0 0 8,20 * * *", "UTC")),
            vec![INVALID_SCHEDULE]
        );
        assert_eq!(
            rules_of(&schedule("0 25 * * *", "UTC")),
            vec![INVALID_SCHEDULE]
        );
        assert_eq!(
            rules_of(&schedule("0 8 * * *", "PST")),
            vec![INVALID_TIME_ZONE]
        );
    }

    #[test]
    fn digest_runs_must_keep_alerts_across_a_failed_run() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-15T00:00:00Z")
            .unwrap()
            .to_utc();
        let findings = |cron: &str, zone: &str| lint_digest_schedule_at(&schedule(cron, zone), now);
        let monthly = findings("0 8 1 * *", "UTC");
        assert_eq!(monthly.len(), 1, "{monthly:?}");
        assert_eq!(monthly[0].rule, SCHEDULE_TOO_SPARSE);
        assert_eq!(monthly[0].level, LintLevel::Error);
        assert!(
            monthly[0].message.contains("14 days"),
            "{}",
            monthly[0].message
        );
        assert_eq!(
            findings("0 8 * * 1", "UTC"),
            vec![],
            "weekly in UTC: 14 days"
        );
        assert_eq!(
            findings("0 8 * * 1", "America/Los_Angeles")[0].rule,
            SCHEDULE_TOO_SPARSE,
            "weekly across the fall-back week: 14 days and an hour"
        );
    }

    #[test]
    fn retry_on_a_route_without_emr_alerts_warns() {
        let route = |kinds: serde_json::Value| -> AlertRouteSpec {
            serde_json::from_value(serde_json::json!({
                "sources": [{"alarmPolicy": "emr"}],
                "match": {"kinds": kinds},
                "slack": {"webhookSecretRef": {"name": "s", "key": "url"}},
                "actions": {"retry": {"maxAttempts": 3, "allowedUsers": ["U1"]}}
            }))
            .unwrap()
        };
        assert_eq!(
            lint_alert_route(&route(serde_json::json!(["EmrClusterStateChange"]))),
            vec![]
        );
        assert_eq!(lint_alert_route(&route(serde_json::json!([]))), vec![]);
        let findings = lint_alert_route(&route(serde_json::json!(["CloudWatchAlarm"])));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule, RETRY_NEVER_SHOWN);
    }
}
