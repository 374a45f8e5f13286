//! CloudWatch Logs metric filters in our own terms: the filter of a log alarm as a
//! [`MetricFilterDefinition`] that compares field by field, listed per log group under a name
//! prefix. Metric filters carry no tags: a name under the policy's prefix is the ownership proof,
//! so a filter someone else made (any other name) is never listed, changed or deleted.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::{MetricFilter, MetricTransformation, StandardUnit};

use super::{AwsApi, AwsClients, AwsError, AwsErrorKind};

/// One metric filter, normalised (CloudWatch Logs holds exactly one transformation per filter).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricFilterDefinition {
    /// Filter name.
    pub filter_name: String,
    /// The log group it filters.
    pub log_group: String,
    /// The filter pattern, as written.
    pub pattern: String,
    /// Namespace of the published metric.
    pub metric_namespace: String,
    /// Name of the published metric.
    pub metric_name: String,
    /// Value published per matching event: `1` or a `$` field.
    pub metric_value: String,
    /// Value published for periods without a match.
    pub default_value: Option<f64>,
    /// Dimension name → `$` field.
    pub dimensions: BTreeMap<String, String>,
    /// Unit of the metric (`None` is CloudWatch's `None` unit).
    pub unit: Option<String>,
}

/// The metric filters under a prefix in one log group, or the news that the group is missing.
#[derive(Clone, Debug, PartialEq)]
pub enum FilterListing {
    /// The log group exists; these are its filters under the prefix.
    Filters(Vec<MetricFilterDefinition>),
    /// No log group of that name (or not visible to the operator's role).
    LogGroupNotFound,
}

/// The CloudWatch Logs metric-filter operations alertops makes, each taking its rate permit
/// ([`AwsApi::LogMetricFilters`]) and classifying its errors.
#[async_trait]
pub trait LogMetricFilters: Send + Sync {
    /// Every metric filter of `log_group` whose name starts with `prefix` (all pages).
    async fn metric_filters(
        &self,
        log_group: &str,
        prefix: &str,
    ) -> Result<FilterListing, AwsError>;
    /// Creates or replaces a metric filter (PutMetricFilter is an upsert by name).
    async fn put_metric_filter(&self, filter: &MetricFilterDefinition) -> Result<(), AwsError>;
    /// Deletes a metric filter; success when it (or its log group) is already gone.
    async fn delete_metric_filter(
        &self,
        log_group: &str,
        filter_name: &str,
    ) -> Result<(), AwsError>;
}

#[async_trait]
impl LogMetricFilters for AwsClients {
    async fn metric_filters(
        &self,
        log_group: &str,
        prefix: &str,
    ) -> Result<FilterListing, AwsError> {
        let mut filters = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .call(AwsApi::LogMetricFilters, "DescribeMetricFilters", || {
                    self.logs
                        .describe_metric_filters()
                        .log_group_name(log_group)
                        .filter_name_prefix(prefix)
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await;
            let page = match page {
                Ok(page) => page,
                Err(e) if e.is_not_found() => return Ok(FilterListing::LogGroupNotFound),
                Err(e) => return Err(e),
            };
            filters.extend(page.metric_filters().iter().filter_map(definition));
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(FilterListing::Filters(filters));
            }
        }
    }

    async fn put_metric_filter(&self, filter: &MetricFilterDefinition) -> Result<(), AwsError> {
        let transformation = MetricTransformation::builder()
            .metric_namespace(&filter.metric_namespace)
            .metric_name(&filter.metric_name)
            .metric_value(&filter.metric_value)
            .set_default_value(filter.default_value)
            .set_dimensions(
                (!filter.dimensions.is_empty())
                    .then(|| filter.dimensions.clone().into_iter().collect()),
            )
            .set_unit(filter.unit.as_deref().map(StandardUnit::from))
            .build()
            .map_err(|e| {
                AwsError::new(
                    AwsErrorKind::InvalidRequest,
                    "PutMetricFilter",
                    "InvalidParameterException",
                    e.to_string(),
                )
            })?;
        let request = self
            .logs
            .put_metric_filter()
            .log_group_name(&filter.log_group)
            .filter_name(&filter.filter_name)
            .filter_pattern(&filter.pattern)
            .metric_transformations(transformation);
        self.call(AwsApi::LogMetricFilters, "PutMetricFilter", || {
            request.clone().send()
        })
        .await?;
        Ok(())
    }

    async fn delete_metric_filter(
        &self,
        log_group: &str,
        filter_name: &str,
    ) -> Result<(), AwsError> {
        match self
            .call(AwsApi::LogMetricFilters, "DeleteMetricFilter", || {
                self.logs
                    .delete_metric_filter()
                    .log_group_name(log_group)
                    .filter_name(filter_name)
                    .send()
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A listed filter in our terms; `None` for one without a name or transformation (AWS always
/// has both).
fn definition(filter: &MetricFilter) -> Option<MetricFilterDefinition> {
    let transformation = filter.metric_transformations().first()?;
    Some(MetricFilterDefinition {
        filter_name: filter.filter_name()?.to_string(),
        log_group: filter.log_group_name().unwrap_or_default().to_string(),
        pattern: filter.filter_pattern().unwrap_or_default().to_string(),
        metric_namespace: transformation.metric_namespace().to_string(),
        metric_name: transformation.metric_name().to_string(),
        metric_value: transformation.metric_value().to_string(),
        default_value: transformation.default_value(),
        dimensions: transformation
            .dimensions()
            .map(|d| d.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        // CloudWatch Logs reports the unit it defaults to as `None`; so does a spec without one.
        unit: transformation
            .unit()
            .map(|u| u.as_str().to_string())
            .filter(|u| u != "None"),
    })
}
