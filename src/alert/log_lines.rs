//! The log lines of a firing log alarm: the most recent lines its metric filter matched in the
//! alarm's evaluation window, shown with the Slack post and the email, with a link to CloudWatch
//! Logs Insights for the window.
//!
//! Rules:
//! - Only a firing CloudWatch alarm on one metric (the notification's `Trigger.MetricName` and
//!   `Namespace`) is looked at; the metric's producers come from DescribeMetricFilters. A metric
//!   no filter produces (an ordinary alarm) fetches nothing more, and that answer is cached per
//!   metric like a positive one, so ordinary alarms cost at most one call per metric per TTL.
//! - The window is `[StateChangeTime − Period × EvaluationPeriods, StateChangeTime]`.
//! - FilterLogEvents returns the oldest first, so the window is read in slices from the newest
//!   (one period each, the last slice the rest of the window), and reading stops once enough
//!   lines are known, after [`MAX_PAGES`] pages, or after the time budget: this runs on the
//!   message path.
//! - At most [`MAX_LINES`] lines, newest first, each cut to [`MAX_LINE_CHARS`] characters. They
//!   stay plain text here; every renderer escapes them for its medium.
//! - A failure (refused, throttled, timed out) never holds the alert: the excerpt says
//!   "unavailable" and why, and the post goes out without lines.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{AwsError, AwsErrorKind, LogEvent, LogEventQuery, LogEvents, MetricFilterSource};
use crate::resources::{AlertKind, AlertState};

use super::model::Alert;

/// Lines shown at most.
pub const MAX_LINES: usize = 5;
/// Characters kept of one line.
pub const MAX_LINE_CHARS: usize = 300;
/// FilterLogEvents pages read at most for one alarm.
pub const MAX_PAGES: usize = 4;
/// Events asked for per FilterLogEvents page.
const PAGE_LIMIT: i32 = 500;
/// Log groups read at most for one metric (a metric is normally produced by one filter).
const MAX_GROUPS: usize = 2;
/// How long one excerpt may take, all calls included, by default.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(2);
/// What marks a cut line.
const CUT_MARK: char = '…';

/// One matching log line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When it was logged.
    pub time: DateTime<Utc>,
    /// The line, cut to [`MAX_LINE_CHARS`], untrusted plain text (renderers escape it).
    pub message: String,
}

/// The log lines shown with a firing log alarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogExcerpt {
    /// The log groups read (empty when the metric's filters could not be read).
    pub log_groups: Vec<String>,
    /// Start of the evaluation window.
    pub window_start: DateTime<Utc>,
    /// End of the evaluation window (the alarm's state change).
    pub window_end: DateTime<Utc>,
    /// The most recent matching lines, newest first.
    pub lines: Vec<LogLine>,
    /// Whether more lines matched than are shown (or than could be read within the budget).
    pub more: bool,
    /// CloudWatch Logs Insights for the window and groups.
    pub insights_url: Option<String>,
    /// Why the lines could not be read, when they could not: short, for the post.
    pub unavailable: Option<String>,
}

/// What a firing alarm's notification says about its metric and window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmWindow {
    /// `Trigger.MetricName`.
    pub metric_name: String,
    /// `Trigger.Namespace`.
    pub namespace: String,
    /// `Trigger.Period`, seconds.
    pub period_seconds: i64,
    /// Start of the evaluation window.
    pub start: DateTime<Utc>,
    /// End of it: `StateChangeTime`.
    pub end: DateTime<Utc>,
    /// The alarm's region code, for the console link.
    pub region: Option<String>,
}

impl AlarmWindow {
    /// The window of a firing CloudWatch alarm on one metric, from the notification it was
    /// decoded from; `None` for anything else (other kinds and states, metric-math alarms,
    /// notifications without period or time).
    pub fn of(alert: &Alert) -> Option<AlarmWindow> {
        if alert.kind != AlertKind::CloudWatchAlarm || alert.state != AlertState::Firing {
            return None;
        }
        let value: Value = serde_json::from_str(&alert.raw).ok()?;
        let trigger = value.get("Trigger")?;
        let text = |v: &Value, key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let number = |key: &str| match trigger.get(key)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        let metric_name = text(trigger, "MetricName")?;
        let namespace = text(trigger, "Namespace")?;
        let period_seconds = number("Period").filter(|p| *p > 0)?;
        let evaluation_periods = number("EvaluationPeriods").filter(|e| *e > 0).unwrap_or(1);
        let end = alert.time?;
        let start =
            end - chrono::Duration::seconds(period_seconds.saturating_mul(evaluation_periods));
        Some(AlarmWindow {
            metric_name,
            namespace,
            period_seconds,
            start,
            end,
            region: alert.region.clone().filter(|r| is_region_code(r)),
        })
    }

    /// The window in slices to read, newest first: one period each, the last one the rest of
    /// the window, at most `max` slices. As epoch-millisecond pairs, both ends inclusive.
    pub fn slices(&self, max: usize) -> Vec<(i64, i64)> {
        let start = self.start.timestamp_millis();
        let mut end = self.end.timestamp_millis();
        let period = self.period_seconds.saturating_mul(1000);
        let mut slices = Vec::new();
        while end >= start && slices.len() < max.max(1) {
            let one_period = end - period + 1;
            // The last slice allowed, or a remainder shorter than a period, takes the rest.
            let slice_start = if slices.len() + 1 == max.max(1) || one_period - start < period {
                start
            } else {
                one_period
            };
            slices.push((slice_start, end));
            end = slice_start - 1;
        }
        slices
    }
}

fn is_region_code(region: &str) -> bool {
    !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The newest `max` events, newest first, each cut to [`MAX_LINE_CHARS`] characters with
/// trailing whitespace (the newline most loggers end with) removed. Events of equal time keep
/// the order AWS gave, reversed.
pub fn newest_lines(events: &[LogEvent], max: usize) -> Vec<LogLine> {
    let mut ordered: Vec<&LogEvent> = events.iter().collect();
    // Stable: of two events logged in the same millisecond, the later one read comes first.
    ordered.reverse();
    ordered.sort_by_key(|event| std::cmp::Reverse(event.timestamp_ms));
    ordered
        .into_iter()
        .take(max)
        .map(|event| LogLine {
            time: Utc
                .timestamp_millis_opt(event.timestamp_ms)
                .single()
                .unwrap_or_default(),
            message: cut_line(&event.message, MAX_LINE_CHARS),
        })
        .collect()
}

/// `text` without trailing whitespace and control characters other than tab, at most `max`
/// characters, ending in `…` when cut.
pub fn cut_line(text: &str, max: usize) -> String {
    let clean: String = text
        .trim_end()
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .filter(|c| *c == '\t' || !c.is_control())
        .collect();
    if clean.chars().count() <= max {
        return clean;
    }
    let mut kept: String = clean.chars().take(max.saturating_sub(1)).collect();
    kept.push(CUT_MARK);
    kept
}

/// The Logs Insights query for a filter pattern: the matching lines, newest first. Plain and
/// quoted terms become `like` filters (every term must occur, as in the filter pattern); other
/// patterns (JSON or space-delimited selectors, `?` alternatives, exclusions) have no exact
/// Insights translation, so the query shows the whole window of the group instead.
pub fn insights_query(pattern: &str) -> String {
    let mut query = String::from("fields @timestamp, @message, @logStream");
    if let Some(terms) = plain_terms(pattern) {
        let filter = terms
            .iter()
            .map(|term| format!("@message like \"{term}\""))
            .collect::<Vec<_>>()
            .join(" and ");
        query.push_str(&format!("\n| filter {filter}"));
    }
    query.push_str("\n| sort @timestamp desc\n| limit 100");
    query
}

/// The terms of a pattern made only of plain words and double-quoted phrases; `None` otherwise
/// (or for an empty pattern, which matches every line).
fn plain_terms(pattern: &str) -> Option<Vec<String>> {
    let mut terms = Vec::new();
    let mut chars = pattern.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut term = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') | None => return None,
                    Some(c) => term.push(c),
                }
            }
            terms.push(term);
        } else if c.is_alphanumeric() || c == '_' {
            let mut term = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if !(c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-')) {
                    return None;
                }
                term.push(c);
                chars.next();
            }
            terms.push(term);
        } else {
            return None;
        }
    }
    (!terms.is_empty()).then_some(terms)
}

/// The CloudWatch console's Logs Insights page with the query, groups and absolute window set.
///
/// The console keeps the query in the URL fragment as `logs-insights?queryDetail=<object>`,
/// where the object is written `~(key~value~...)`, strings start with `'` and are
/// percent-encoded with `*` in place of `%`, lists are `~(~'a~'b)`, and the whole fragment is
/// percent-encoded again with `$` in place of `%` (so `~` is `$257E`, `(` `$2528`).
pub fn insights_url(
    region: &str,
    log_groups: &[String],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    query: &str,
) -> String {
    let time = |t: DateTime<Utc>| insights_string(&t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
    let sources: String = log_groups
        .iter()
        .map(|g| format!("~{}", insights_string(g)))
        .collect();
    let detail = format!(
        "~(end~{}~start~{}~timeType~'ABSOLUTE~tz~'UTC~editorString~{}~source~({sources}))",
        time(end),
        time(start),
        insights_string(query),
    );
    let fragment = format!("logs-insights?queryDetail={detail}");
    format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:{}",
        console_escape(&fragment)
    )
}

/// A string value of the console's object notation: `'` and the text with every byte but
/// letters, digits, `-`, `.` and `_` as `*XX`.
fn insights_string(text: &str) -> String {
    let mut out = String::from("'");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("*{byte:02X}"));
        }
    }
    out
}

/// The outer encoding of the fragment: `?`, `=`, `~`, `(`, `)`, `'` percent-encoded twice with
/// `$` for the outer `%` (what the console writes); `*` and the already-safe rest stay.
fn console_escape(fragment: &str) -> String {
    let mut out = String::with_capacity(fragment.len() * 2);
    for c in fragment.chars() {
        match c {
            '?' => out.push_str("$3F"),
            '=' => out.push_str("$3D"),
            '~' => out.push_str("$257E"),
            '(' => out.push_str("$2528"),
            ')' => out.push_str("$2529"),
            '\'' => out.push_str("$2527"),
            c => out.push(c),
        }
    }
    out
}

/// A short reason for the post: the AWS error code and operation, or what went wrong.
fn unavailable_reason(error: &AwsError) -> String {
    let code = error
        .code()
        .map(str::to_string)
        .unwrap_or_else(|| error.kind().as_str().to_string());
    format!("{} failed with {code}", error.operation())
}

/// A cached answer of DescribeMetricFilters for one metric.
#[derive(Clone, Debug)]
enum Producers {
    /// The filters that produce it (empty: an ordinary metric).
    Filters(Vec<MetricFilterSource>),
    /// AWS refused for good (no permission): cached so a burst does not repeat the refusal.
    Refused(String),
}

/// Entries kept at most; expired ones go first, then the oldest.
const MAX_CACHE_ENTRIES: usize = 4096;

/// Fetches the log lines of firing log alarms, with a per-metric cache of their producers.
pub struct LogLineFetcher {
    source: Arc<dyn LogEvents>,
    ttl: Duration,
    budget: Duration,
    cache: Mutex<HashMap<(String, String), (Instant, Producers)>>,
}

impl LogLineFetcher {
    /// A fetcher reading through `source`, caching producers for `ttl`, spending at most
    /// [`DEFAULT_BUDGET`] per alarm.
    pub fn new(source: Arc<dyn LogEvents>, ttl: Duration) -> Self {
        LogLineFetcher {
            source,
            ttl,
            budget: DEFAULT_BUDGET,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The same fetcher with another time budget per alarm.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The excerpt for `alert`: `None` when it is not a firing alarm on a metric that a metric
    /// filter produces; otherwise the lines, or why they are unavailable. Never fails and never
    /// takes longer than the budget.
    pub async fn excerpt(&self, alert: &Alert) -> Option<LogExcerpt> {
        let window = AlarmWindow::of(alert)?;
        match tokio::time::timeout(self.budget, self.read(&window)).await {
            Ok(excerpt) => excerpt,
            Err(_) => {
                let reason = format!("timed out after {} ms", self.budget.as_millis());
                tracing::warn!(alarm = alert.resource.as_deref().unwrap_or_default(), metric = %window.metric_name, %reason, "log lines of the alarm could not be read; posting without them");
                // The filters may have been read before time ran out: keep the link then.
                let key = (window.namespace.clone(), window.metric_name.clone());
                match self.cached(&key) {
                    Some(Producers::Filters(sources)) if sources.is_empty() => None,
                    Some(Producers::Filters(sources)) => {
                        let sources: Vec<_> = sources.into_iter().take(MAX_GROUPS).collect();
                        Some(LogExcerpt {
                            unavailable: Some(reason),
                            ..empty_excerpt(&window, &sources)
                        })
                    }
                    _ => Some(unavailable(&window, reason)),
                }
            }
        }
    }

    async fn read(&self, window: &AlarmWindow) -> Option<LogExcerpt> {
        let sources = match self.producers(window).await {
            Producers::Filters(sources) if sources.is_empty() => return None,
            Producers::Filters(sources) => sources,
            Producers::Refused(reason) => return Some(unavailable(window, reason)),
        };
        let sources: Vec<MetricFilterSource> = sources.into_iter().take(MAX_GROUPS).collect();
        let mut excerpt = empty_excerpt(window, &sources);
        match self.read_lines(window, &sources).await {
            Ok((events, cut)) => {
                excerpt.more = cut || events.len() > MAX_LINES;
                excerpt.lines = newest_lines(&events, MAX_LINES);
            }
            Err(error) => {
                let reason = unavailable_reason(&error);
                tracing::warn!(metric = %window.metric_name, %error, "log lines of the alarm could not be read; posting without them");
                excerpt.unavailable = Some(reason);
            }
        }
        Some(excerpt)
    }

    /// The metric's filters, from the cache or DescribeMetricFilters. Transient errors are not
    /// cached: the next alarm of the metric tries again.
    async fn producers(&self, window: &AlarmWindow) -> Producers {
        let key = (window.namespace.clone(), window.metric_name.clone());
        if let Some(found) = self.cached(&key) {
            return found;
        }
        match self
            .source
            .metric_filter_sources(&window.metric_name, &window.namespace)
            .await
        {
            Ok(sources) => {
                let found = Producers::Filters(sources);
                self.store(key, found.clone());
                found
            }
            Err(error) => {
                tracing::warn!(metric = %window.metric_name, namespace = %window.namespace, %error, "cannot tell whether the alarm's metric comes from a log metric filter; posting without log lines");
                let reason = unavailable_reason(&error);
                if matches!(
                    error.kind(),
                    AwsErrorKind::AccessDenied | AwsErrorKind::InvalidRequest
                ) {
                    self.store(key, Producers::Refused(reason.clone()));
                }
                Producers::Refused(reason)
            }
        }
    }

    /// The events of the window, newest slices first, until enough are known or the pages are
    /// used up; and whether reading stopped with matches left unread.
    async fn read_lines(
        &self,
        window: &AlarmWindow,
        sources: &[MetricFilterSource],
    ) -> Result<(Vec<LogEvent>, bool), AwsError> {
        let mut events = Vec::new();
        let mut pages_left = MAX_PAGES;
        for (start_ms, end_ms) in window.slices(MAX_PAGES) {
            for source in sources {
                let query = LogEventQuery {
                    log_group: source.log_group.clone(),
                    pattern: source.pattern.clone(),
                    start_ms,
                    end_ms,
                    limit: PAGE_LIMIT,
                };
                let mut token = None;
                loop {
                    if pages_left == 0 {
                        return Ok((events, true));
                    }
                    pages_left -= 1;
                    let page = self.source.log_event_page(&query, token).await?;
                    events.extend(page.events);
                    token = page.next_token;
                    if token.is_none() {
                        break;
                    }
                }
            }
            // Every later slice is older than what this one found.
            if events.len() >= MAX_LINES {
                return Ok((events, false));
            }
        }
        Ok((events, false))
    }

    fn cached(&self, key: &(String, String)) -> Option<Producers> {
        let cache = self.cache.lock().expect("log filter cache");
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, found)| found.clone())
    }

    fn store(&self, key: (String, String), found: Producers) {
        let mut cache = self.cache.lock().expect("log filter cache");
        if cache.len() >= MAX_CACHE_ENTRIES {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= MAX_CACHE_ENTRIES
                && let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(key, (Instant::now(), found));
    }
}

/// An excerpt without lines, for `sources`: the window, the groups and the Insights link (with
/// the filter pattern when every group uses the same one).
fn empty_excerpt(window: &AlarmWindow, sources: &[MetricFilterSource]) -> LogExcerpt {
    let log_groups: Vec<String> = sources.iter().map(|s| s.log_group.clone()).collect();
    let pattern = match sources {
        [first, rest @ ..] if rest.iter().all(|s| s.pattern == first.pattern) => {
            first.pattern.as_str()
        }
        _ => "",
    };
    let insights_url = window
        .region
        .as_deref()
        .filter(|_| !log_groups.is_empty())
        .map(|region| {
            insights_url(
                region,
                &log_groups,
                window.start,
                window.end,
                &insights_query(pattern),
            )
        });
    LogExcerpt {
        log_groups,
        window_start: window.start,
        window_end: window.end,
        lines: Vec::new(),
        more: false,
        insights_url,
        unavailable: None,
    }
}

/// An excerpt that says why there are no lines.
fn unavailable(window: &AlarmWindow, reason: String) -> LogExcerpt {
    LogExcerpt {
        unavailable: Some(reason),
        ..empty_excerpt(window, &[])
    }
}

#[cfg(test)]
mod tests;
