//! Making AWS match the desired state of an AlarmPolicy: the only part of the reconciler that
//! talks to AWS. Reads are batched and compared after normalisation; writes happen only where AWS
//! differs; resources that carry no ownership tags of this policy are never modified or deleted.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat, StandardUnit,
    Statistic,
};
use futures::{StreamExt, TryStreamExt, stream};

use crate::aws::{AwsApi, AwsClients, AwsError, AwsErrorKind};
use crate::reconcile::names::{OwnerIdentity, tags_digest};
use crate::resources::Tags;
use crate::resources::alarm_policy::{AlarmStatus, EventRuleStatus};

use super::desired::{
    AlarmDefinition, AlarmMetric, DesiredAlarm, DesiredRule, DesiredTopic, RULE_TARGET_ID,
    alarm_differences, canonical_policy, rule_differences, topic_access_policy,
};
use super::observed;

/// How many AWS calls of one kind run at once; the per-API rate limit still applies.
const CONCURRENCY: usize = 8;
/// CloudWatch returns at most 100 alarms per DescribeAlarms page and deletes 100 per call.
const ALARM_BATCH: usize = 100;

/// Something a person should know about, reported as a Kubernetes Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Whether it is a warning.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// What happened.
    pub note: String,
}

/// A reason the policy is not Ready although AWS answered, e.g. a name taken by someone else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    /// CamelCase reason for the Ready condition.
    pub reason: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

/// The outcome of one apply.
#[derive(Clone, Debug, Default)]
pub struct ApplyOutcome {
    /// Topic ARN.
    pub topic_arn: Option<String>,
    /// Whether alertops owns the topic.
    pub topic_owned: bool,
    /// Alarms that match the spec.
    pub alarms: Vec<AlarmStatus>,
    /// Rules that match the spec.
    pub rules: Vec<EventRuleStatus>,
    /// Events to publish.
    pub notices: Vec<Notice>,
    /// Why the policy is not Ready, if anything blocks it.
    pub blockers: Vec<Blocker>,
}

/// Previously recorded state, used to skip ownership and tag reads that were already verified.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    /// Alarm statuses by CloudWatch alarm name.
    pub alarms: HashMap<String, AlarmStatus>,
    /// Rule statuses by EventBridge rule name.
    pub rules: HashMap<String, EventRuleStatus>,
    /// Topic ARN recorded earlier.
    pub topic_arn: Option<String>,
}

/// Applies the desired state.
pub struct Applier<'a> {
    /// AWS clients.
    pub aws: &'a AwsClients,
    /// Owner of everything applied.
    pub owner: &'a OwnerIdentity,
}

impl Applier<'_> {
    /// Ensures the topic exists, is ours (or is the referenced existing topic), and has our
    /// attributes and tags. Returns the ARN, or a blocker when the name is taken.
    pub async fn ensure_topic(
        &self,
        topic: &DesiredTopic,
        tags: &Tags,
        recorded_arn: Option<&str>,
        out: &mut ApplyOutcome,
    ) -> Result<Option<String>, AwsError> {
        let (name, display_name) = match topic {
            DesiredTopic::Existing { arn } => {
                // Referenced, never modified: only check that it exists.
                self.aws.acquire(AwsApi::Sns).await;
                match self
                    .aws
                    .sns
                    .get_topic_attributes()
                    .topic_arn(arn)
                    .send()
                    .await
                {
                    Ok(_) => {
                        out.topic_arn = Some(arn.clone());
                        out.topic_owned = false;
                        return Ok(Some(arn.clone()));
                    }
                    Err(e) => {
                        let e = AwsError::from_sdk("GetTopicAttributes", e);
                        if e.is_not_found() {
                            out.blockers.push(Blocker {
                                reason: "TopicNotFound",
                                message: format!(
                                    "the existing topic {arn} does not exist or is not visible to the operator's role"
                                ),
                            });
                            return Ok(None);
                        }
                        return Err(e);
                    }
                }
            }
            DesiredTopic::Owned { name, display_name } => (name, display_name),
        };

        // A recorded ARN that still exists avoids CreateTopic (a write) on every resync.
        let mut arn = None;
        if let Some(recorded) = recorded_arn {
            self.aws.acquire(AwsApi::Sns).await;
            match self
                .aws
                .sns
                .get_topic_attributes()
                .topic_arn(recorded)
                .send()
                .await
            {
                Ok(_) => arn = Some(recorded.to_string()),
                Err(e) => {
                    let e = AwsError::from_sdk("GetTopicAttributes", e);
                    if !e.is_not_found() {
                        return Err(e);
                    }
                }
            }
        }
        let created = arn.is_none();
        let arn = match arn {
            Some(arn) => arn,
            None => {
                self.aws.acquire(AwsApi::Sns).await;
                let mut request = self.aws.sns.create_topic().name(name);
                for (k, v) in tags {
                    request = request.tags(sns_tag(k, v));
                }
                match request.send().await {
                    Ok(output) => output.topic_arn().unwrap_or_default().to_string(),
                    Err(e) => {
                        let e = AwsError::from_sdk("CreateTopic", e);
                        if e.kind() == AwsErrorKind::InvalidRequest {
                            // AWS refuses CreateTopic when a topic of that name exists with other
                            // tags: it belongs to someone else.
                            out.blockers.push(not_owned_topic(name));
                            return Ok(None);
                        }
                        return Err(e);
                    }
                }
            }
        };

        // Ownership: CreateTopic returns an existing topic of the same name as if it were new.
        let current_tags = self.sns_tags(&arn).await?;
        if !self.owner.owns(&current_tags) {
            out.blockers.push(not_owned_topic(name));
            return Ok(None);
        }
        if created {
            out.notices.push(Notice {
                warning: false,
                reason: "TopicCreated",
                note: format!("created SNS topic {arn}"),
            });
        }

        self.aws.acquire(AwsApi::Sns).await;
        let attributes = self
            .aws
            .sns
            .get_topic_attributes()
            .topic_arn(&arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetTopicAttributes", e))?;
        let attributes = attributes.attributes().cloned().unwrap_or_default();
        let desired_policy = topic_access_policy(&arn);
        let current_policy = attributes
            .get("Policy")
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(serde_json::Value::Null);
        if canonical_policy(&current_policy) != canonical_policy(&desired_policy) {
            self.set_topic_attribute(&arn, "Policy", &desired_policy.to_string())
                .await?;
        }
        let current_display = attributes
            .get("DisplayName")
            .map(String::as_str)
            .unwrap_or("");
        let desired_display = display_name.as_deref().unwrap_or("");
        if current_display != desired_display {
            self.set_topic_attribute(&arn, "DisplayName", desired_display)
                .await?;
        }
        self.sync_sns_tags(&arn, tags, &current_tags).await?;

        out.topic_arn = Some(arn.clone());
        out.topic_owned = true;
        Ok(Some(arn))
    }

    async fn set_topic_attribute(
        &self,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), AwsError> {
        self.aws.acquire(AwsApi::Sns).await;
        self.aws
            .sns
            .set_topic_attributes()
            .topic_arn(arn)
            .attribute_name(name)
            .attribute_value(value)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("SetTopicAttributes", e))?;
        Ok(())
    }

    async fn sns_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        self.aws.acquire(AwsApi::Sns).await;
        let output = self
            .aws
            .sns
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListTagsForResource", e))?;
        Ok(output
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }

    async fn sync_sns_tags(
        &self,
        arn: &str,
        desired: &Tags,
        current: &Tags,
    ) -> Result<(), AwsError> {
        let (add, remove) = tag_changes(desired, current);
        if !add.is_empty() {
            self.aws.acquire(AwsApi::Sns).await;
            let mut request = self.aws.sns.tag_resource().resource_arn(arn);
            for (k, v) in &add {
                request = request.tags(sns_tag(k, v));
            }
            request
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("TagResource", e))?;
        }
        if !remove.is_empty() {
            self.aws.acquire(AwsApi::Sns).await;
            self.aws
                .sns
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("UntagResource", e))?;
        }
        Ok(())
    }

    /// Lists every CloudWatch alarm under the policy's prefix: ceil(N/100) DescribeAlarms calls.
    pub async fn observed_alarms(&self) -> Result<Vec<MetricAlarm>, AwsError> {
        let mut alarms = Vec::new();
        let mut next_token = None;
        loop {
            self.aws.acquire(AwsApi::CloudWatch).await;
            let page = self
                .aws
                .cloudwatch
                .describe_alarms()
                .alarm_name_prefix(self.owner.alarm_prefix())
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
                .max_records(ALARM_BATCH as i32)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DescribeAlarms", e))?;
            alarms.extend(page.metric_alarms().iter().cloned());
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(alarms);
            }
        }
    }

    /// Makes the alarms match: creates, updates, retags, and deletes alarms dropped from the spec.
    pub async fn sync_alarms(
        &self,
        desired: &[DesiredAlarm],
        recorded: &Recorded,
        out: &mut ApplyOutcome,
    ) -> Result<(), AwsError> {
        let observed: HashMap<String, MetricAlarm> = self
            .observed_alarms()
            .await?
            .into_iter()
            .filter_map(|a| a.alarm_name().map(str::to_string).map(|n| (n, a)))
            .collect();

        // Boxed so the stream's item type names no closure lifetime (kube-runtime needs Send
        // futures, and a borrowing closure in a stream trips the compiler's lifetime inference).
        let mut pending: Vec<futures::future::BoxFuture<'_, Result<AlarmResult, AwsError>>> =
            Vec::new();
        for alarm in desired {
            let observed = observed.get(&alarm.definition.alarm_name);
            let recorded = recorded.alarms.get(&alarm.definition.alarm_name);
            pending.push(Box::pin(self.sync_alarm(alarm, observed, recorded)));
        }
        let results: Vec<AlarmResult> = stream::iter(pending)
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut statuses = Vec::new();
        for result in results {
            match result {
                AlarmResult::InSync(status, notice) => {
                    statuses.push(status);
                    out.notices.extend(notice);
                }
                AlarmResult::NotOwned(name) => out.blockers.push(Blocker {
                    reason: "AlarmNotOwned",
                    message: format!(
                        "CloudWatch alarm {name:?} exists but is not owned by this policy (its \
                         alertops.dev/owner and alertops.dev/cluster tags do not name it); it was \
                         left untouched. Delete or rename that alarm, or rename the alarm in the spec."
                    ),
                }),
            }
        }

        if statuses.iter().any(|s| s.arn.is_none()) {
            let arns: HashMap<String, String> = self
                .observed_alarms()
                .await?
                .into_iter()
                .filter_map(|a| Some((a.alarm_name()?.to_string(), a.alarm_arn()?.to_string())))
                .collect();
            for status in statuses.iter_mut().filter(|s| s.arn.is_none()) {
                status.arn = arns.get(&status.alarm_name).cloned();
            }
        }
        out.alarms.extend(statuses);

        // Alarms under our prefix that the spec no longer has.
        let wanted: std::collections::HashSet<&str> = desired
            .iter()
            .map(|a| a.definition.alarm_name.as_str())
            .collect();
        let mut stale = Vec::new();
        for (name, alarm) in &observed {
            if wanted.contains(name.as_str()) {
                continue;
            }
            if recorded.alarms.contains_key(name) || self.alarm_owned(alarm).await? {
                stale.push(name.clone());
            }
        }
        stale.sort();
        self.delete_alarms(&stale).await?;
        for name in stale {
            out.notices.push(Notice {
                warning: false,
                reason: "AlarmDeleted",
                note: format!("deleted CloudWatch alarm {name}: no longer in the spec"),
            });
        }
        Ok(())
    }

    async fn alarm_owned(&self, alarm: &MetricAlarm) -> Result<bool, AwsError> {
        match alarm.alarm_arn() {
            Some(arn) => Ok(self.owner.owns(&self.cloudwatch_tags(arn).await?)),
            None => Ok(false),
        }
    }

    async fn sync_alarm(
        &self,
        alarm: &DesiredAlarm,
        observed: Option<&MetricAlarm>,
        recorded: Option<&AlarmStatus>,
    ) -> Result<AlarmResult, AwsError> {
        let name = &alarm.definition.alarm_name;
        let desired_digest = tags_digest(&alarm.tags);
        let Some(observed) = observed else {
            self.put_alarm(&alarm.definition, Some(&alarm.tags)).await?;
            // PutMetricAlarm returns no ARN: the caller reads the new ARNs in one batch.
            return Ok(AlarmResult::InSync(
                AlarmStatus {
                    name: alarm.spec_name.clone(),
                    alarm_name: name.clone(),
                    arn: None,
                    tags_digest: Some(desired_digest),
                },
                Some(Notice {
                    warning: false,
                    reason: "AlarmCreated",
                    note: format!("created CloudWatch alarm {name}"),
                }),
            ));
        };
        let arn = observed.alarm_arn().map(str::to_string);

        // Ownership and tags are read only when not verified before with the same tags.
        let verified =
            recorded.is_some_and(|r| r.tags_digest.as_deref() == Some(desired_digest.as_str()));
        if !verified {
            let current = match &arn {
                Some(arn) => self.cloudwatch_tags(arn).await?,
                None => Tags::new(),
            };
            let previously_ours = recorded.is_some();
            if !previously_ours && !self.owner.owns(&current) {
                return Ok(AlarmResult::NotOwned(name.clone()));
            }
            if let Some(arn) = &arn {
                self.sync_cloudwatch_tags(arn, &alarm.tags, &current)
                    .await?;
            }
        }

        let differences =
            alarm_differences(&alarm.definition, &observed::alarm_definition(observed));
        let notice = if differences.is_empty() {
            None
        } else {
            // PutMetricAlarm replaces the whole definition; tags are left to TagResource
            // because PutMetricAlarm ignores them on update.
            self.put_alarm(&alarm.definition, None).await?;
            Some(Notice {
                warning: false,
                reason: "AlarmUpdated",
                note: format!(
                    "updated CloudWatch alarm {name}: {}",
                    differences.join(", ")
                ),
            })
        };
        Ok(AlarmResult::InSync(
            AlarmStatus {
                name: alarm.spec_name.clone(),
                alarm_name: name.clone(),
                arn,
                tags_digest: Some(desired_digest),
            },
            notice,
        ))
    }

    async fn put_alarm(&self, def: &AlarmDefinition, tags: Option<&Tags>) -> Result<(), AwsError> {
        self.aws.acquire(AwsApi::CloudWatch).await;
        let mut request = self
            .aws
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
            .threshold(def.threshold)
            .comparison_operator(ComparisonOperator::from(def.comparison.as_str()))
            .treat_missing_data(&def.treat_missing_data);
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
                    .set_dimensions(Some(cw_dimensions(dimensions)))
                    .set_statistic(statistic.as_deref().map(Statistic::from))
                    .set_extended_statistic(extended_statistic.clone())
                    .period(*period)
                    .set_unit(unit.as_deref().map(StandardUnit::from));
            }
            AlarmMetric::Math(queries) => {
                let queries = queries
                    .iter()
                    .map(|q| {
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
                                            .set_dimensions(Some(cw_dimensions(&m.dimensions)))
                                            .build(),
                                    )
                                    .set_period(q.period)
                                    .stat(&m.stat)
                                    .set_unit(m.unit.as_deref().map(StandardUnit::from))
                                    .build()
                            }))
                            .build()
                    })
                    .collect();
                request = request.set_metrics(Some(queries));
            }
        }
        if let Some(tags) = tags {
            for (k, v) in tags {
                request = request.tags(cw_tag(k, v));
            }
        }
        request
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("PutMetricAlarm", e))?;
        Ok(())
    }

    async fn cloudwatch_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        self.aws.acquire(AwsApi::CloudWatch).await;
        let output = self
            .aws
            .cloudwatch
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListTagsForResource", e))?;
        Ok(output
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    async fn sync_cloudwatch_tags(
        &self,
        arn: &str,
        desired: &Tags,
        current: &Tags,
    ) -> Result<(), AwsError> {
        let (add, remove) = tag_changes(desired, current);
        if !add.is_empty() {
            self.aws.acquire(AwsApi::CloudWatch).await;
            let mut request = self.aws.cloudwatch.tag_resource().resource_arn(arn);
            for (k, v) in &add {
                request = request.tags(cw_tag(k, v));
            }
            request
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("TagResource", e))?;
        }
        if !remove.is_empty() {
            self.aws.acquire(AwsApi::CloudWatch).await;
            self.aws
                .cloudwatch
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("UntagResource", e))?;
        }
        Ok(())
    }

    /// Deletes alarms in batches of 100 (the caller has established ownership).
    pub async fn delete_alarms(&self, names: &[String]) -> Result<(), AwsError> {
        for batch in names.chunks(ALARM_BATCH) {
            self.aws.acquire(AwsApi::CloudWatch).await;
            self.aws
                .cloudwatch
                .delete_alarms()
                .set_alarm_names(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("DeleteAlarms", e))?;
        }
        Ok(())
    }

    /// Lists the EventBridge rules under the policy's prefix.
    pub async fn observed_rules(&self) -> Result<Vec<aws_sdk_eventbridge::types::Rule>, AwsError> {
        let mut rules = Vec::new();
        let mut next_token = None;
        loop {
            self.aws.acquire(AwsApi::EventBridge).await;
            let page = self
                .aws
                .eventbridge
                .list_rules()
                .name_prefix(self.owner.rule_prefix())
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ListRules", e))?;
            rules.extend(page.rules().iter().cloned());
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(rules);
            }
        }
    }

    /// Makes the rules match and point at the topic; deletes rules dropped from the spec.
    pub async fn sync_rules(
        &self,
        desired: &[DesiredRule],
        topic_arn: &str,
        recorded: &Recorded,
        out: &mut ApplyOutcome,
    ) -> Result<(), AwsError> {
        let observed: HashMap<String, aws_sdk_eventbridge::types::Rule> = self
            .observed_rules()
            .await?
            .into_iter()
            .filter_map(|r| r.name().map(str::to_string).map(|n| (n, r)))
            .collect();
        for rule in desired {
            let name = &rule.definition.rule_name;
            let digest = tags_digest(&rule.tags);
            let mut notice = None;
            let arn = match observed.get(name) {
                None => {
                    let arn = self.put_rule(rule, true).await?;
                    notice = Some(Notice {
                        warning: false,
                        reason: "RuleCreated",
                        note: format!("created EventBridge rule {name}"),
                    });
                    arn
                }
                Some(current) => {
                    let arn = current.arn().unwrap_or_default().to_string();
                    let recorded_rule = recorded.rules.get(name);
                    let verified = recorded_rule
                        .is_some_and(|r| r.tags_digest.as_deref() == Some(digest.as_str()));
                    if !verified {
                        let tags = self.eventbridge_tags(&arn).await?;
                        if recorded_rule.is_none() && !self.owner.owns(&tags) {
                            out.blockers.push(Blocker {
                                reason: "RuleNotOwned",
                                message: format!(
                                    "EventBridge rule {name:?} exists but is not owned by this policy; it was left untouched"
                                ),
                            });
                            continue;
                        }
                        self.sync_eventbridge_tags(&arn, &rule.tags, &tags).await?;
                    }
                    let differences =
                        rule_differences(&rule.definition, &observed::rule_definition(current));
                    if !differences.is_empty() {
                        self.put_rule(rule, false).await?;
                        notice = Some(Notice {
                            warning: false,
                            reason: "RuleUpdated",
                            note: format!(
                                "updated EventBridge rule {name}: {}",
                                differences.join(", ")
                            ),
                        });
                    }
                    arn
                }
            };
            self.ensure_target(name, topic_arn).await?;
            out.notices.extend(notice);
            out.rules.push(EventRuleStatus {
                name: rule.spec_name.clone(),
                rule_name: name.clone(),
                arn: Some(arn),
                tags_digest: Some(digest),
            });
        }

        let wanted: std::collections::HashSet<&str> = desired
            .iter()
            .map(|r| r.definition.rule_name.as_str())
            .collect();
        let mut stale: Vec<(&String, &aws_sdk_eventbridge::types::Rule)> = observed
            .iter()
            .filter(|(n, _)| !wanted.contains(n.as_str()))
            .collect();
        stale.sort_by_key(|(n, _)| n.as_str());
        for (name, rule) in stale {
            let owned = recorded.rules.contains_key(name)
                || self.owner.owns(
                    &self
                        .eventbridge_tags(rule.arn().unwrap_or_default())
                        .await?,
                );
            if owned {
                self.delete_rule(name).await?;
                out.notices.push(Notice {
                    warning: false,
                    reason: "RuleDeleted",
                    note: format!("deleted EventBridge rule {name}: no longer in the spec"),
                });
            }
        }
        Ok(())
    }

    async fn put_rule(&self, rule: &DesiredRule, create: bool) -> Result<String, AwsError> {
        self.aws.acquire(AwsApi::EventBridge).await;
        let def = &rule.definition;
        let mut request = self
            .aws
            .eventbridge
            .put_rule()
            .name(&def.rule_name)
            .event_pattern(def.event_pattern.to_string())
            .set_description(def.description.clone())
            .state(if def.enabled {
                aws_sdk_eventbridge::types::RuleState::Enabled
            } else {
                aws_sdk_eventbridge::types::RuleState::Disabled
            });
        if create {
            for (k, v) in &rule.tags {
                request = request.tags(eb_tag(k, v));
            }
        }
        let output = request
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("PutRule", e))?;
        Ok(output.rule_arn().unwrap_or_default().to_string())
    }

    async fn ensure_target(&self, rule_name: &str, topic_arn: &str) -> Result<(), AwsError> {
        self.aws.acquire(AwsApi::EventBridge).await;
        let targets = self
            .aws
            .eventbridge
            .list_targets_by_rule()
            .rule(rule_name)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListTargetsByRule", e))?;
        let in_place = targets
            .targets()
            .iter()
            .any(|t| t.id() == RULE_TARGET_ID && t.arn() == topic_arn);
        if in_place {
            return Ok(());
        }
        self.aws.acquire(AwsApi::EventBridge).await;
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id(RULE_TARGET_ID)
            .arn(topic_arn)
            .build()
            .expect("id and arn are set");
        let output = self
            .aws
            .eventbridge
            .put_targets()
            .rule(rule_name)
            .targets(target)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("PutTargets", e))?;
        if output.failed_entry_count() > 0 {
            let reason = output
                .failed_entries()
                .first()
                .and_then(|f| f.error_message())
                .unwrap_or("unknown reason")
                .to_string();
            return Err(AwsError::new(
                AwsErrorKind::InvalidRequest,
                "PutTargets",
                "FailedEntry",
                reason,
            ));
        }
        Ok(())
    }

    /// Removes our target and deletes the rule (the caller has established ownership).
    pub async fn delete_rule(&self, rule_name: &str) -> Result<(), AwsError> {
        self.aws.acquire(AwsApi::EventBridge).await;
        let targets = self
            .aws
            .eventbridge
            .list_targets_by_rule()
            .rule(rule_name)
            .send()
            .await;
        let ids: Vec<String> = match targets {
            Ok(t) => t.targets().iter().map(|t| t.id().to_string()).collect(),
            Err(e) => {
                let e = AwsError::from_sdk("ListTargetsByRule", e);
                if e.is_not_found() {
                    return Ok(());
                }
                return Err(e);
            }
        };
        if !ids.is_empty() {
            self.aws.acquire(AwsApi::EventBridge).await;
            self.aws
                .eventbridge
                .remove_targets()
                .rule(rule_name)
                .set_ids(Some(ids))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("RemoveTargets", e))?;
        }
        self.aws.acquire(AwsApi::EventBridge).await;
        match self
            .aws
            .eventbridge
            .delete_rule()
            .name(rule_name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = AwsError::from_sdk("DeleteRule", e);
                if e.is_not_found() { Ok(()) } else { Err(e) }
            }
        }
    }

    async fn eventbridge_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        self.aws.acquire(AwsApi::EventBridge).await;
        let output = self
            .aws
            .eventbridge
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListTagsForResource", e))?;
        Ok(output
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }

    async fn sync_eventbridge_tags(
        &self,
        arn: &str,
        desired: &Tags,
        current: &Tags,
    ) -> Result<(), AwsError> {
        let (add, remove) = tag_changes(desired, current);
        if !add.is_empty() {
            self.aws.acquire(AwsApi::EventBridge).await;
            let mut request = self.aws.eventbridge.tag_resource().resource_arn(arn);
            for (k, v) in &add {
                request = request.tags(eb_tag(k, v));
            }
            request
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("TagResource", e))?;
        }
        if !remove.is_empty() {
            self.aws.acquire(AwsApi::EventBridge).await;
            self.aws
                .eventbridge
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("UntagResource", e))?;
        }
        Ok(())
    }

    /// Deletes everything this policy owns in AWS: alarms and rules under its prefixes that carry
    /// its ownership tags, and its topic if it created it. Returns what was deleted.
    pub async fn delete_everything(&self, recorded: &Recorded) -> Result<Vec<Notice>, AwsError> {
        let mut notices = Vec::new();
        let mut owned_alarms = Vec::new();
        for alarm in self.observed_alarms().await? {
            let name = alarm.alarm_name().unwrap_or_default().to_string();
            if recorded.alarms.contains_key(&name) || self.alarm_owned(&alarm).await? {
                owned_alarms.push(name);
            }
        }
        self.delete_alarms(&owned_alarms).await?;
        if !owned_alarms.is_empty() {
            notices.push(Notice {
                warning: false,
                reason: "AlarmsDeleted",
                note: format!("deleted {} CloudWatch alarms", owned_alarms.len()),
            });
        }
        for rule in self.observed_rules().await? {
            let name = rule.name().unwrap_or_default().to_string();
            let owned = recorded.rules.contains_key(&name)
                || self.owner.owns(
                    &self
                        .eventbridge_tags(rule.arn().unwrap_or_default())
                        .await?,
                );
            if owned {
                self.delete_rule(&name).await?;
                notices.push(Notice {
                    warning: false,
                    reason: "RuleDeleted",
                    note: format!("deleted EventBridge rule {name}"),
                });
            }
        }
        if let Some(arn) = &recorded.topic_arn {
            match self.sns_tags(arn).await {
                Ok(tags) if self.owner.owns(&tags) => {
                    self.aws.acquire(AwsApi::Sns).await;
                    self.aws
                        .sns
                        .delete_topic()
                        .topic_arn(arn)
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk("DeleteTopic", e))?;
                    notices.push(Notice {
                        warning: false,
                        reason: "TopicDeleted",
                        note: format!("deleted SNS topic {arn}"),
                    });
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(notices)
    }
}

enum AlarmResult {
    InSync(AlarmStatus, Option<Notice>),
    NotOwned(String),
}

fn not_owned_topic(name: &str) -> Blocker {
    Blocker {
        reason: "TopicNotOwned",
        message: format!(
            "an SNS topic named {name:?} already exists and is not owned by this policy; it was \
             left untouched. Reference it with spec.topic.existingArn, or delete it."
        ),
    }
}

/// Tags to add or change, and keys to remove. Ownership tags are part of `desired`, so they are
/// restored if someone removed them; `aws:` tags belong to AWS and are never touched.
fn tag_changes(desired: &Tags, current: &Tags) -> (BTreeMap<String, String>, Vec<String>) {
    let add = desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = current
        .keys()
        .filter(|k| !desired.contains_key(*k) && !k.starts_with("aws:"))
        .cloned()
        .collect();
    (add, remove)
}

fn cw_dimensions(dims: &[(String, String)]) -> Vec<Dimension> {
    dims.iter()
        .map(|(k, v)| Dimension::builder().name(k).value(v).build())
        .collect()
}

fn cw_tag(k: &str, v: &str) -> aws_sdk_cloudwatch::types::Tag {
    aws_sdk_cloudwatch::types::Tag::builder()
        .key(k)
        .value(v)
        .build()
}

fn sns_tag(k: &str, v: &str) -> aws_sdk_sns::types::Tag {
    aws_sdk_sns::types::Tag::builder()
        .key(k)
        .value(v)
        .build()
        .expect("key and value are set")
}

fn eb_tag(k: &str, v: &str) -> aws_sdk_eventbridge::types::Tag {
    aws_sdk_eventbridge::types::Tag::builder()
        .key(k)
        .value(v)
        .build()
        .expect("key and value are set")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_changes_add_changed_and_remove_unwanted_but_never_aws_tags() {
        let desired = Tags::from([("Team".into(), "a".into()), ("Feature".into(), "x".into())]);
        let current = Tags::from([
            ("Team".into(), "b".into()),
            ("Old".into(), "1".into()),
            ("aws:cloudformation:stack-name".into(), "s".into()),
        ]);
        let (add, remove) = tag_changes(&desired, &current);
        assert_eq!(
            add,
            BTreeMap::from([("Feature".into(), "x".into()), ("Team".into(), "a".into())])
        );
        assert_eq!(remove, vec!["Old".to_string()]);
        let (add, remove) = tag_changes(&desired, &desired);
        assert!(add.is_empty() && remove.is_empty());
    }
}
