//! CloudWatch metric alarms in our own terms: an alarm is an [`AlarmDefinition`], normalised so
//! that what we send and what CloudWatch reports compare equal exactly when they mean the same
//! (defaults filled, lists sorted). The SDK's shapes stay in this file.

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    AlarmType, ComparisonOperator, CompositeAlarm, Dimension, Metric, MetricAlarm, MetricDataQuery,
    MetricStat, StandardUnit, StateValue,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::tags::TagChanges;
use super::{AwsApi, AwsClients, AwsError};
use crate::resources::Tags;

/// CloudWatch returns at most 100 alarms per DescribeAlarms page and deletes 100 per call.
pub const ALARM_BATCH: usize = 100;

/// A CloudWatch metric alarm, normalised (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmDefinition {
    /// CloudWatch alarm name.
    pub alarm_name: String,
    /// Description (the spec's description and runbook).
    pub description: Option<String>,
    /// Whether actions run.
    pub actions_enabled: bool,
    /// ALARM actions, sorted.
    pub alarm_actions: Vec<String>,
    /// OK actions, sorted.
    pub ok_actions: Vec<String>,
    /// INSUFFICIENT_DATA actions, sorted.
    pub insufficient_data_actions: Vec<String>,
    /// What is measured.
    pub metric: AlarmMetric,
    /// Evaluation periods.
    pub evaluation_periods: i32,
    /// Datapoints to alarm (defaults to evaluation periods).
    pub datapoints_to_alarm: i32,
    /// Threshold (0 when the alarm compares with a band: [`AlarmDefinition::threshold_metric_id`]).
    pub threshold: f64,
    /// Id of the metric-math query whose band the alarm compares with (anomaly detection); no
    /// threshold is sent then.
    pub threshold_metric_id: Option<String>,
    /// Comparison operator name.
    pub comparison: String,
    /// Missing-data treatment name.
    pub treat_missing_data: String,
}

/// The metric side of an alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AlarmMetric {
    /// One metric with a statistic or extended statistic.
    Single {
        /// Namespace.
        namespace: String,
        /// Metric name.
        name: String,
        /// Dimensions, sorted by name.
        dimensions: Vec<(String, String)>,
        /// Standard statistic.
        statistic: Option<String>,
        /// Extended statistic (percentile).
        extended_statistic: Option<String>,
        /// Period in seconds.
        period: i32,
        /// Unit.
        unit: Option<String>,
    },
    /// Metric math.
    Math(Vec<MathQuery>),
}

/// One metric-math query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MathQuery {
    /// Query id.
    pub id: String,
    /// Expression, for expression queries.
    pub expression: Option<String>,
    /// Metric, for metric queries.
    pub metric: Option<MathMetric>,
    /// Label.
    pub label: Option<String>,
    /// Whether this query's result is evaluated.
    pub return_data: bool,
    /// Period, for metric queries.
    pub period: Option<i32>,
}

/// The metric of a metric-math query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MathMetric {
    /// Namespace.
    pub namespace: String,
    /// Metric name.
    pub name: String,
    /// Dimensions, sorted by name.
    pub dimensions: Vec<(String, String)>,
    /// Statistic.
    pub stat: String,
    /// Unit.
    pub unit: Option<String>,
}

/// An alarm as CloudWatch reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservedAlarm {
    /// Its ARN (CloudWatch always reports one; `None` only from a malformed answer).
    pub arn: Option<String>,
    /// Its normalised definition.
    pub definition: AlarmDefinition,
    /// Its state: `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: Option<String>,
    /// Why it is in that state, in CloudWatch's words.
    pub state_reason: Option<String>,
    /// When it entered that state, to the second (a status compares equal across resyncs only if
    /// the time survives its round trip through Kubernetes, which keeps whole seconds).
    pub state_changed_at: Option<DateTime<Utc>>,
}

/// A CloudWatch composite alarm, normalised like [`AlarmDefinition`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompositeDefinition {
    /// CloudWatch alarm name.
    pub alarm_name: String,
    /// Description.
    pub description: Option<String>,
    /// Whether actions run.
    pub actions_enabled: bool,
    /// ALARM actions, sorted.
    pub alarm_actions: Vec<String>,
    /// OK actions, sorted.
    pub ok_actions: Vec<String>,
    /// INSUFFICIENT_DATA actions, sorted.
    pub insufficient_data_actions: Vec<String>,
    /// The `AlarmRule` over AWS alarm names.
    pub rule: String,
}

/// A composite alarm as CloudWatch reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservedComposite {
    /// Its ARN.
    pub arn: Option<String>,
    /// Its normalised definition.
    pub definition: CompositeDefinition,
    /// Its state: `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: Option<String>,
    /// Why it is in that state.
    pub state_reason: Option<String>,
    /// When it entered that state, to the second.
    pub state_changed_at: Option<DateTime<Utc>>,
}

/// Metric and composite alarms under a prefix, from the same DescribeAlarms pages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlarmListing {
    /// Metric alarms.
    pub metric: Vec<ObservedAlarm>,
    /// Composite alarms.
    pub composite: Vec<ObservedComposite>,
}

/// The CloudWatch alarm operations alertops makes, each taking its rate permit and classifying
/// its errors. Implemented by [`AwsClients`] and by [`super::fake::FakeAws`].
#[async_trait]
pub trait CloudWatchAlarms: Send + Sync {
    /// Every metric alarm whose name starts with `prefix`: ceil(N/100) DescribeAlarms calls.
    async fn alarms_with_prefix(&self, prefix: &str) -> Result<Vec<ObservedAlarm>, AwsError>;
    /// Every metric and composite alarm whose name starts with `prefix`, in the same
    /// ceil(N/100) DescribeAlarms pages (composites cost no call of their own).
    async fn alarm_listing(&self, prefix: &str) -> Result<AlarmListing, AwsError>;
    /// The same alarms as [`CloudWatchAlarms::alarm_listing`], handed to `page` one
    /// DescribeAlarms page at a time, so that a caller keeping them in another form (the
    /// inventory) never holds a whole fleet's alarms decoded at once.
    async fn alarm_pages(
        &self,
        prefix: &str,
        page: &mut (dyn FnMut(AlarmListing) + Send),
    ) -> Result<(), AwsError> {
        page(self.alarm_listing(prefix).await?);
        Ok(())
    }
    /// Creates or replaces a composite alarm; `tags` are set only on creation, as for
    /// [`CloudWatchAlarms::put_alarm`].
    async fn put_composite(
        &self,
        composite: &CompositeDefinition,
        tags: Option<&Tags>,
    ) -> Result<(), AwsError>;
    /// Creates or replaces an alarm. `tags` are set only on creation: PutMetricAlarm ignores them
    /// on update, so existing alarms are retagged with [`CloudWatchAlarms::change_alarm_tags`].
    async fn put_alarm(&self, alarm: &AlarmDefinition, tags: Option<&Tags>)
    -> Result<(), AwsError>;
    /// Deletes alarms by name, 100 per call.
    async fn delete_alarms(&self, names: &[String]) -> Result<(), AwsError>;
    /// The tags of an alarm.
    async fn alarm_tags(&self, arn: &str) -> Result<Tags, AwsError>;
    /// Adds and removes tags of an alarm (nothing is called for empty changes).
    async fn change_alarm_tags(&self, arn: &str, changes: &TagChanges) -> Result<(), AwsError>;
}

#[async_trait]
impl CloudWatchAlarms for AwsClients {
    async fn alarms_with_prefix(&self, prefix: &str) -> Result<Vec<ObservedAlarm>, AwsError> {
        Ok(described_alarms(self, prefix, &[AlarmType::MetricAlarm])
            .await?
            .metric)
    }

    async fn alarm_listing(&self, prefix: &str) -> Result<AlarmListing, AwsError> {
        described_alarms(
            self,
            prefix,
            &[AlarmType::MetricAlarm, AlarmType::CompositeAlarm],
        )
        .await
    }

    async fn alarm_pages(
        &self,
        prefix: &str,
        page: &mut (dyn FnMut(AlarmListing) + Send),
    ) -> Result<(), AwsError> {
        described_alarm_pages(
            self,
            prefix,
            &[AlarmType::MetricAlarm, AlarmType::CompositeAlarm],
            page,
        )
        .await
    }

    async fn put_composite(
        &self,
        def: &CompositeDefinition,
        tags: Option<&Tags>,
    ) -> Result<(), AwsError> {
        let mut request = self
            .cloudwatch
            .put_composite_alarm()
            .alarm_name(&def.alarm_name)
            .set_alarm_description(def.description.clone())
            .actions_enabled(def.actions_enabled)
            .set_alarm_actions(Some(def.alarm_actions.clone()))
            .set_ok_actions(Some(def.ok_actions.clone()))
            .set_insufficient_data_actions(Some(def.insufficient_data_actions.clone()))
            .alarm_rule(&def.rule);
        for (k, v) in tags.into_iter().flatten() {
            request = request.tags(sdk_tag(k, v));
        }
        // PutCompositeAlarm shares PutMetricAlarm's budget: both write alarms.
        self.call(AwsApi::PutMetricAlarm, "PutCompositeAlarm", || {
            request.clone().send()
        })
        .await?;
        Ok(())
    }

    async fn put_alarm(&self, def: &AlarmDefinition, tags: Option<&Tags>) -> Result<(), AwsError> {
        let mut request = self
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&def.alarm_name)
            .set_alarm_description(def.description.clone())
            .actions_enabled(def.actions_enabled)
            .set_alarm_actions(Some(def.alarm_actions.clone()))
            .set_ok_actions(Some(def.ok_actions.clone()))
            .set_insufficient_data_actions(Some(def.insufficient_data_actions.clone()))
            .evaluation_periods(def.evaluation_periods)
            .datapoints_to_alarm(def.datapoints_to_alarm)
            .comparison_operator(ComparisonOperator::from(def.comparison.as_str()))
            .treat_missing_data(&def.treat_missing_data);
        request = match &def.threshold_metric_id {
            // CloudWatch refuses a threshold next to a threshold metric.
            Some(id) => request.threshold_metric_id(id),
            None => request.threshold(def.threshold),
        };
        match &def.metric {
            AlarmMetric::Single {
                namespace,
                name,
                dimensions,
                statistic,
                extended_statistic,
                period,
                unit,
            } => {
                request = request
                    .namespace(namespace)
                    .metric_name(name)
                    .set_dimensions(Some(sdk_dimensions(dimensions)))
                    .period(*period)
                    .set_statistic(statistic.as_deref().map(Into::into))
                    .set_extended_statistic(extended_statistic.clone())
                    .set_unit(unit.as_deref().map(StandardUnit::from));
            }
            AlarmMetric::Math(queries) => {
                request = request.set_metrics(Some(queries.iter().map(sdk_query).collect()));
            }
        }
        for (k, v) in tags.into_iter().flatten() {
            request = request.tags(sdk_tag(k, v));
        }
        self.call(AwsApi::PutMetricAlarm, "PutMetricAlarm", || {
            request.clone().send()
        })
        .await?;
        Ok(())
    }

    async fn delete_alarms(&self, names: &[String]) -> Result<(), AwsError> {
        for batch in names.chunks(ALARM_BATCH) {
            self.call(AwsApi::DeleteAlarms, "DeleteAlarms", || {
                self.cloudwatch
                    .delete_alarms()
                    .set_alarm_names(Some(batch.to_vec()))
                    .send()
            })
            .await?;
        }
        Ok(())
    }

    async fn alarm_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        let output = self
            .call(AwsApi::AlarmTagReads, "ListTagsForResource", || {
                self.cloudwatch
                    .list_tags_for_resource()
                    .resource_arn(arn)
                    .send()
            })
            .await?;
        Ok(output
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect())
    }

    async fn change_alarm_tags(&self, arn: &str, changes: &TagChanges) -> Result<(), AwsError> {
        if !changes.add.is_empty() {
            let mut request = self.cloudwatch.tag_resource().resource_arn(arn);
            for (k, v) in &changes.add {
                request = request.tags(sdk_tag(k, v));
            }
            self.call(AwsApi::AlarmTagWrites, "TagResource", || {
                request.clone().send()
            })
            .await?;
        }
        if !changes.remove.is_empty() {
            self.call(AwsApi::AlarmTagWrites, "UntagResource", || {
                self.cloudwatch
                    .untag_resource()
                    .resource_arn(arn)
                    .set_tag_keys(Some(changes.remove.clone()))
                    .send()
            })
            .await?;
        }
        Ok(())
    }
}

/// Every alarm of the given types whose name starts with `prefix`: the DescribeAlarms pages of
/// 100, metric and composite alarms of the same pages kept apart.
async fn described_alarms(
    aws: &AwsClients,
    prefix: &str,
    types: &[AlarmType],
) -> Result<AlarmListing, AwsError> {
    let mut listing = AlarmListing::default();
    described_alarm_pages(aws, prefix, types, &mut |page| {
        listing.metric.extend(page.metric);
        listing.composite.extend(page.composite);
    })
    .await?;
    Ok(listing)
}

/// The one DescribeAlarms paging loop: each page, decoded, to `on_page`.
async fn described_alarm_pages(
    aws: &AwsClients,
    prefix: &str,
    types: &[AlarmType],
    on_page: &mut (dyn FnMut(AlarmListing) + Send),
) -> Result<(), AwsError> {
    let mut next_token = None;
    loop {
        let page = aws
            .call(AwsApi::DescribeAlarms, "DescribeAlarms", || {
                aws.cloudwatch
                    .describe_alarms()
                    .alarm_name_prefix(prefix)
                    .set_alarm_types(Some(types.to_vec()))
                    .max_records(ALARM_BATCH as i32)
                    .set_next_token(next_token.clone())
                    .send()
            })
            .await?;
        on_page(AlarmListing {
            metric: page.metric_alarms().iter().map(observed_alarm).collect(),
            composite: page
                .composite_alarms()
                .iter()
                .map(observed_composite)
                .collect(),
        });
        next_token = page.next_token().map(str::to_string);
        if next_token.is_none() {
            return Ok(());
        }
    }
}

fn observed_alarm(alarm: &MetricAlarm) -> ObservedAlarm {
    ObservedAlarm {
        arn: alarm.alarm_arn().map(str::to_string),
        definition: alarm_definition(alarm),
        state: alarm
            .state_value()
            .map(StateValue::as_str)
            .map(str::to_string),
        state_reason: non_empty(alarm.state_reason()),
        state_changed_at: alarm
            .state_updated_timestamp()
            .and_then(|t| DateTime::from_timestamp(t.secs(), 0)),
    }
}

fn observed_composite(alarm: &CompositeAlarm) -> ObservedComposite {
    ObservedComposite {
        arn: alarm.alarm_arn().map(str::to_string),
        definition: CompositeDefinition {
            alarm_name: alarm.alarm_name().unwrap_or_default().to_string(),
            description: non_empty(alarm.alarm_description()),
            actions_enabled: alarm.actions_enabled().unwrap_or(true),
            alarm_actions: sorted(alarm.alarm_actions()),
            ok_actions: sorted(alarm.ok_actions()),
            insufficient_data_actions: sorted(alarm.insufficient_data_actions()),
            rule: alarm.alarm_rule().unwrap_or_default().to_string(),
        },
        state: alarm
            .state_value()
            .map(StateValue::as_str)
            .map(str::to_string),
        state_reason: non_empty(alarm.state_reason()),
        state_changed_at: alarm
            .state_updated_timestamp()
            .and_then(|t| DateTime::from_timestamp(t.secs(), 0)),
    }
}

/// The normalised definition of an alarm as CloudWatch reports it (defaults filled in the same
/// way the desired state fills them).
fn alarm_definition(alarm: &MetricAlarm) -> AlarmDefinition {
    let evaluation_periods = alarm.evaluation_periods().unwrap_or(1);
    let metric = if alarm.metrics().is_empty() {
        AlarmMetric::Single {
            namespace: alarm.namespace().unwrap_or_default().to_string(),
            name: alarm.metric_name().unwrap_or_default().to_string(),
            dimensions: dimensions(alarm.dimensions()),
            statistic: alarm.statistic().map(|s| s.as_str().to_string()),
            extended_statistic: non_empty(alarm.extended_statistic()),
            period: alarm.period().unwrap_or_default(),
            unit: alarm
                .unit()
                .map(|u| u.as_str().to_string())
                .filter(|u| u != "None"),
        }
    } else {
        AlarmMetric::Math(alarm.metrics().iter().map(math_query).collect())
    };
    AlarmDefinition {
        alarm_name: alarm.alarm_name().unwrap_or_default().to_string(),
        description: non_empty(alarm.alarm_description()),
        actions_enabled: alarm.actions_enabled().unwrap_or(true),
        alarm_actions: sorted(alarm.alarm_actions()),
        ok_actions: sorted(alarm.ok_actions()),
        insufficient_data_actions: sorted(alarm.insufficient_data_actions()),
        metric,
        evaluation_periods,
        datapoints_to_alarm: alarm.datapoints_to_alarm().unwrap_or(evaluation_periods),
        threshold: alarm.threshold().unwrap_or_default(),
        threshold_metric_id: non_empty(alarm.threshold_metric_id()),
        comparison: alarm
            .comparison_operator()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        treat_missing_data: non_empty(alarm.treat_missing_data())
            .unwrap_or_else(|| "missing".to_string()),
    }
}

fn math_query(q: &MetricDataQuery) -> MathQuery {
    let stat = q.metric_stat();
    MathQuery {
        id: q.id().unwrap_or_default().to_string(),
        expression: non_empty(q.expression()),
        metric: stat.map(|s| {
            let m = s.metric();
            MathMetric {
                namespace: m
                    .and_then(|m| m.namespace())
                    .unwrap_or_default()
                    .to_string(),
                name: m
                    .and_then(|m| m.metric_name())
                    .unwrap_or_default()
                    .to_string(),
                dimensions: dimensions(m.map(|m| m.dimensions()).unwrap_or_default()),
                stat: s.stat().unwrap_or_default().to_string(),
                unit: s
                    .unit()
                    .map(|u| u.as_str().to_string())
                    .filter(|u| u != "None"),
            }
        }),
        label: non_empty(q.label()),
        return_data: q.return_data().unwrap_or(false),
        period: stat.and_then(|s| s.period()).or(q.period()),
    }
}

fn sdk_query(q: &MathQuery) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(&q.id)
        .set_expression(q.expression.clone())
        .set_label(q.label.clone())
        .return_data(q.return_data)
        .set_metric_stat(q.metric.as_ref().map(|m| {
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace(&m.namespace)
                        .metric_name(&m.name)
                        .set_dimensions(Some(sdk_dimensions(&m.dimensions)))
                        .build(),
                )
                .set_period(q.period)
                .stat(&m.stat)
                .set_unit(m.unit.as_deref().map(StandardUnit::from))
                .build()
        }))
        .build()
}

fn dimensions(dims: &[Dimension]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = dims
        .iter()
        .map(|d| {
            (
                d.name().unwrap_or_default().to_string(),
                d.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn sdk_dimensions(dims: &[(String, String)]) -> Vec<Dimension> {
    dims.iter()
        .map(|(k, v)| Dimension::builder().name(k).value(v).build())
        .collect()
}

fn sdk_tag(k: &str, v: &str) -> aws_sdk_cloudwatch::types::Tag {
    aws_sdk_cloudwatch::types::Tag::builder()
        .key(k)
        .value(v)
        .build()
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut v = items.to_vec();
    v.sort();
    v.dedup();
    v
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}
