//! CloudWatch Logs, reading side: which log groups and filter patterns produce a metric
//! (DescribeMetricFilters by metric name and namespace), and one page of the log events a
//! pattern matches in a time window (FilterLogEvents). The consumer shows those lines with a
//! firing log alarm ([`crate::alert::log_lines`]); the controller's metric filters live in their
//! own module.

use async_trait::async_trait;

use super::{AwsApi, AwsClients, AwsError};

/// Pages of DescribeMetricFilters read at most for one metric. A metric is produced by one filter
/// (two while a filter is being replaced); more pages mean something odd, not more to show.
const MAX_FILTER_PAGES: usize = 3;

/// Where a metric comes from: a metric filter's log group and pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricFilterSource {
    /// The log group the filter reads.
    pub log_group: String,
    /// The filter pattern, as CloudWatch Logs stores it (may be empty: every line).
    pub pattern: String,
}

/// One FilterLogEvents request: a group, a pattern, a window in epoch milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEventQuery {
    /// The log group.
    pub log_group: String,
    /// The filter pattern.
    pub pattern: String,
    /// Start of the window, inclusive, epoch milliseconds.
    pub start_ms: i64,
    /// End of the window, inclusive, epoch milliseconds.
    pub end_ms: i64,
    /// Most events in one page.
    pub limit: i32,
}

/// One matching log event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvent {
    /// When it happened, epoch milliseconds.
    pub timestamp_ms: i64,
    /// The line as logged (untrusted text).
    pub message: String,
}

/// One page of FilterLogEvents: its events (oldest first, as AWS returns them) and the token of
/// the next page, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogEventPage {
    /// The events of this page.
    pub events: Vec<LogEvent>,
    /// Present when more events may follow.
    pub next_token: Option<String>,
}

/// What the consumer asks of CloudWatch Logs, behind a trait so the fetch logic is tested with
/// a fake.
#[async_trait]
pub trait LogEvents: Send + Sync {
    /// The metric filters that publish `metric_name` in `namespace` (empty for a metric no filter
    /// produces: an ordinary alarm).
    async fn metric_filter_sources(
        &self,
        metric_name: &str,
        namespace: &str,
    ) -> Result<Vec<MetricFilterSource>, AwsError>;

    /// One page of the events `query` matches, after `next_token`.
    async fn log_event_page(
        &self,
        query: &LogEventQuery,
        next_token: Option<String>,
    ) -> Result<LogEventPage, AwsError>;
}

#[async_trait]
impl LogEvents for AwsClients {
    async fn metric_filter_sources(
        &self,
        metric_name: &str,
        namespace: &str,
    ) -> Result<Vec<MetricFilterSource>, AwsError> {
        let mut sources = Vec::new();
        let mut next_token = None;
        for _ in 0..MAX_FILTER_PAGES {
            let page = self
                .call(AwsApi::LogMetricFilters, "DescribeMetricFilters", || {
                    self.logs
                        .describe_metric_filters()
                        .metric_name(metric_name)
                        .metric_namespace(namespace)
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await?;
            sources.extend(page.metric_filters().iter().filter_map(|filter| {
                Some(MetricFilterSource {
                    log_group: filter.log_group_name()?.to_string(),
                    pattern: filter.filter_pattern().unwrap_or_default().to_string(),
                })
            }));
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                break;
            }
        }
        sources.dedup();
        Ok(sources)
    }

    async fn log_event_page(
        &self,
        query: &LogEventQuery,
        next_token: Option<String>,
    ) -> Result<LogEventPage, AwsError> {
        let page = self
            .call(AwsApi::LogEventReads, "FilterLogEvents", || {
                self.logs
                    .filter_log_events()
                    .log_group_name(&query.log_group)
                    .filter_pattern(&query.pattern)
                    .start_time(query.start_ms)
                    .end_time(query.end_ms)
                    .limit(query.limit)
                    .set_next_token(next_token.clone())
                    .send()
            })
            .await?;
        Ok(LogEventPage {
            events: page
                .events()
                .iter()
                .filter_map(|event| {
                    Some(LogEvent {
                        timestamp_ms: event.timestamp()?,
                        message: event.message()?.to_string(),
                    })
                })
                .collect(),
            // An empty token means the end too.
            next_token: page
                .next_token()
                .filter(|token| !token.is_empty())
                .map(str::to_string),
        })
    }
}
