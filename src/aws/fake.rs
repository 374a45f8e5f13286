//! An in-memory AWS that implements every gateway trait the controller uses, as `MemoryCluster`
//! does for Kubernetes: reconcile decisions are tested against it without the emulator. It keeps
//! what was written, answers reads from that, logs each operation by its AWS name (so tests count
//! calls and writes as they do against the emulator), and can be told to fail an operation.
//! It models AWS's answers, not its quotas or eventual consistency.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::cloudwatch::{
    AlarmDefinition, AlarmListing, CloudWatchAlarms, CompositeDefinition, ObservedAlarm,
    ObservedComposite,
};
use super::eventbridge::{EventBridgeRules, ObservedRule, RuleDefinition, RuleTarget};
use super::log_filters::{FilterListing, LogMetricFilters, MetricFilterDefinition};
use super::sns::{SnsTopics, Subscription, TopicCreation};
use super::sqs::{QueueAttributes, SqsQueues};
use super::tags::TagChanges;
use super::{AwsError, AwsErrorKind, ControllerAws, is_write_operation};
use crate::resources::Tags;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

#[derive(Default)]
struct State {
    alarms: BTreeMap<String, (AlarmDefinition, Tags, String)>,
    /// State, reason and time of change of the alarms whose state was set
    /// ([`FakeAws::set_alarm_state`]); the others are as CloudWatch creates them.
    alarm_states: BTreeMap<String, AlarmStateRecord>,
    /// Composite alarms: definition, tags, ARN.
    composites: BTreeMap<String, (CompositeDefinition, Tags, String)>,
    topics: BTreeMap<String, (HashMap<String, String>, Tags)>,
    rules: BTreeMap<String, (RuleDefinition, Tags, Vec<RuleTarget>)>,
    queues: BTreeMap<String, (QueueAttributes, Tags)>,
    /// Log groups that exist, each with its metric filters by name.
    log_groups: BTreeMap<String, BTreeMap<String, MetricFilterDefinition>>,
    subscriptions: Vec<Subscription>,
    calls: Vec<String>,
    failures: HashMap<String, AwsErrorKind>,
    next_id: u64,
    /// Metric alarms per DescribeAlarms page in [`CloudWatchAlarms::alarm_pages`] (none: one
    /// page, one recorded call).
    alarm_page_size: Option<usize>,
}

/// The in-memory AWS. Clones share state.
#[derive(Clone, Default)]
pub struct FakeAws {
    state: Arc<Mutex<State>>,
}

impl FakeAws {
    /// An empty account.
    pub fn new() -> Self {
        FakeAws::default()
    }

    /// An account whose alarm listings come in pages of `size` metric alarms, one recorded
    /// DescribeAlarms each, as CloudWatch sends them (composites come with the last page).
    pub fn with_alarm_pages(self, size: usize) -> Self {
        self.state().alarm_page_size = Some(size.max(1));
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake AWS state")
    }

    /// Records a call of `operation` and fails it if told to.
    fn call(&self, operation: &str) -> Result<MutexGuard<'_, State>, AwsError> {
        let mut state = self.state();
        state.calls.push(operation.to_string());
        match state.failures.get(operation) {
            Some(kind) => Err(AwsError::new(
                *kind,
                operation,
                "Injected",
                format!("{operation} fails in this test"),
            )),
            None => Ok(state),
        }
    }

    /// Every operation called so far, in order, by its AWS name.
    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// The write operations called so far.
    pub fn writes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| is_write_operation(c))
            .collect()
    }

    /// Forgets the calls made so far.
    pub fn clear_calls(&self) {
        self.state().calls.clear();
    }

    /// Makes every later call of `operation` fail with an error of `kind`.
    pub fn fail(&self, operation: &str, kind: AwsErrorKind) {
        self.state().failures.insert(operation.to_string(), kind);
    }

    /// Creates a log group (metric filters can be put only into existing groups, as in AWS).
    pub fn create_log_group(&self, name: &str) {
        self.state().log_groups.entry(name.to_string()).or_default();
    }

    /// Puts a metric filter in place as someone else would; creates its log group.
    pub fn insert_metric_filter(&self, filter: MetricFilterDefinition) {
        self.state()
            .log_groups
            .entry(filter.log_group.clone())
            .or_default()
            .insert(filter.filter_name.clone(), filter);
    }

    /// The metric filters of a log group, by name.
    pub fn metric_filters_of(&self, log_group: &str) -> BTreeMap<String, MetricFilterDefinition> {
        self.state()
            .log_groups
            .get(log_group)
            .cloned()
            .unwrap_or_default()
    }

    /// Puts an alarm in place as someone else would (console, Terraform), with these tags.
    pub fn insert_alarm(&self, definition: AlarmDefinition, tags: Tags) {
        let arn = alarm_arn(&definition.alarm_name);
        self.state()
            .alarms
            .insert(definition.alarm_name.clone(), (definition, tags, arn));
    }

    /// Sets an alarm's state as CloudWatch would when it evaluates it (or as SetAlarmState does).
    pub fn set_alarm_state(&self, name: &str, state: &str, reason: &str, since: DateTime<Utc>) {
        self.state()
            .alarm_states
            .insert(name.to_string(), (state.into(), reason.into(), since));
    }

    /// The composite alarm of that name, with its tags.
    pub fn composite(&self, name: &str) -> Option<(CompositeDefinition, Tags)> {
        self.state()
            .composites
            .get(name)
            .map(|(d, t, _)| (d.clone(), t.clone()))
    }

    /// Puts a composite alarm in place as someone else would, with these tags.
    pub fn insert_composite(&self, definition: CompositeDefinition, tags: Tags) {
        let arn = alarm_arn(&definition.alarm_name);
        self.state()
            .composites
            .insert(definition.alarm_name.clone(), (definition, tags, arn));
    }

    /// The alarm of that name, with its tags.
    pub fn alarm(&self, name: &str) -> Option<(AlarmDefinition, Tags)> {
        self.state()
            .alarms
            .get(name)
            .map(|(d, t, _)| (d.clone(), t.clone()))
    }

    /// Names of every alarm.
    pub fn alarm_names(&self) -> Vec<String> {
        self.state().alarms.keys().cloned().collect()
    }

    /// Names of every rule.
    pub fn rule_names(&self) -> Vec<String> {
        self.state().rules.keys().cloned().collect()
    }

    /// The targets of a rule.
    pub fn rule_targets_of(&self, name: &str) -> Vec<RuleTarget> {
        self.state()
            .rules
            .get(name)
            .map(|(_, _, t)| t.clone())
            .unwrap_or_default()
    }

    /// ARNs of every topic.
    pub fn topic_arns(&self) -> Vec<String> {
        self.state().topics.keys().cloned().collect()
    }

    /// Tags of a topic.
    pub fn topic_tags_of(&self, arn: &str) -> Option<Tags> {
        self.state().topics.get(arn).map(|(_, t)| t.clone())
    }

    /// Puts a topic in place as someone else would.
    pub fn insert_topic(&self, name: &str, tags: Tags) -> String {
        let arn = topic_arn(name);
        self.state()
            .topics
            .insert(arn.clone(), (HashMap::new(), tags));
        arn
    }

    /// Names of every queue.
    pub fn queue_names(&self) -> Vec<String> {
        self.state().queues.keys().cloned().collect()
    }

    /// Attributes of a queue, by name.
    pub fn queue_attributes_of(&self, name: &str) -> Option<QueueAttributes> {
        self.state().queues.get(name).map(|(a, _)| a.clone())
    }

    /// Sets how many messages SQS reports waiting in a queue (`ApproximateNumberOfMessages`).
    pub fn set_waiting_messages(&self, name: &str, count: u64) {
        if let Some((attributes, _)) = self.state().queues.get_mut(name) {
            attributes.insert("ApproximateNumberOfMessages".into(), count.to_string());
        }
    }

    /// Every subscription.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.state().subscriptions.clone()
    }

    /// Adds a subscription as someone else would.
    pub fn insert_subscription(&self, topic_arn: &str, protocol: &str, endpoint: &str) -> String {
        let mut state = self.state();
        state.next_id += 1;
        let arn = format!("{topic_arn}:fake-{}", state.next_id);
        state.subscriptions.push(Subscription {
            arn: Some(arn.clone()),
            topic_arn: topic_arn.to_string(),
            protocol: protocol.to_string(),
            endpoint: endpoint.to_string(),
        });
        arn
    }
}

/// State, reason and time of change of an alarm.
type AlarmStateRecord = (String, String, DateTime<Utc>);

/// A new alarm's state, as CloudWatch reports it.
/// A metric alarm as DescribeAlarms reports it.
fn observed(state: &State, name: &str, definition: &AlarmDefinition, arn: &str) -> ObservedAlarm {
    let (value, reason, since) = state
        .alarm_states
        .get(name)
        .cloned()
        .unwrap_or_else(initial_alarm_state);
    ObservedAlarm {
        arn: Some(arn.to_string()),
        definition: definition.clone(),
        state: Some(value),
        state_reason: Some(reason),
        state_changed_at: Some(since),
    }
}

/// The composite alarms under `prefix`, as DescribeAlarms reports them.
fn composites_under(state: &State, prefix: &str) -> Vec<ObservedComposite> {
    state
        .composites
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(name, (definition, _, arn))| {
            let (value, reason, since) = state
                .alarm_states
                .get(name)
                .cloned()
                .unwrap_or_else(initial_alarm_state);
            ObservedComposite {
                arn: Some(arn.clone()),
                definition: definition.clone(),
                state: Some(value),
                state_reason: Some(reason),
                state_changed_at: Some(since),
            }
        })
        .collect()
}

fn initial_alarm_state() -> AlarmStateRecord {
    (
        "INSUFFICIENT_DATA".into(),
        "Unchecked: Initial alarm creation".into(),
        DateTime::UNIX_EPOCH,
    )
}

fn alarm_arn(name: &str) -> String {
    format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}")
}

fn topic_arn(name: &str) -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT}:{name}")
}

fn not_found(operation: &str, what: &str) -> AwsError {
    AwsError::new(
        AwsErrorKind::NotFound,
        operation,
        "NotFound",
        format!("{what} does not exist"),
    )
}

fn apply_changes(tags: &mut Tags, changes: &TagChanges) {
    tags.extend(changes.add.clone());
    for key in &changes.remove {
        tags.remove(key);
    }
}

fn queue_url(name: &str) -> String {
    format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}")
}

fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or_default()
}

#[async_trait]
impl CloudWatchAlarms for FakeAws {
    async fn alarms_with_prefix(&self, prefix: &str) -> Result<Vec<ObservedAlarm>, AwsError> {
        let state = self.call("DescribeAlarms")?;
        Ok(state
            .alarms
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, (definition, _, arn))| observed(&state, name, definition, arn))
            .collect())
    }

    async fn alarm_pages(
        &self,
        prefix: &str,
        page: &mut (dyn FnMut(AlarmListing) + Send),
    ) -> Result<(), AwsError> {
        let Some(size) = self.state().alarm_page_size else {
            page(self.alarm_listing(prefix).await?);
            return Ok(());
        };
        let names: Vec<String> = self
            .state()
            .alarms
            .range(prefix.to_string()..)
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(name, _)| name.clone())
            .collect();
        let mut chunks = names.chunks(size).peekable();
        if chunks.peek().is_none() {
            page(self.alarm_listing(prefix).await?);
            return Ok(());
        }
        while let Some(chunk) = chunks.next() {
            let state = self.call("DescribeAlarms")?;
            let metric = chunk
                .iter()
                .filter_map(|name| Some((name, state.alarms.get(name)?)))
                .map(|(name, (definition, _, arn))| observed(&state, name, definition, arn))
                .collect();
            let composite = if chunks.peek().is_none() {
                composites_under(&state, prefix)
            } else {
                Vec::new()
            };
            drop(state);
            page(AlarmListing { metric, composite });
        }
        Ok(())
    }

    async fn alarm_listing(&self, prefix: &str) -> Result<AlarmListing, AwsError> {
        let metric = self.alarms_with_prefix(prefix).await?;
        let composite = composites_under(&self.state(), prefix);
        Ok(AlarmListing { metric, composite })
    }

    async fn put_composite(
        &self,
        composite: &CompositeDefinition,
        tags: Option<&Tags>,
    ) -> Result<(), AwsError> {
        let mut state = self.call("PutCompositeAlarm")?;
        // Like CloudWatch: every alarm the rule names must exist.
        let missing = composite
            .rule
            .split('"')
            .skip(1)
            .step_by(2)
            .find(|name| !state.alarms.contains_key(*name) && !state.composites.contains_key(*name))
            .map(str::to_string);
        if let Some(name) = missing {
            return Err(AwsError::new(
                AwsErrorKind::InvalidRequest,
                "PutCompositeAlarm",
                "ValidationError",
                format!(
                    "Could not save the composite alarm as alarms [{name}] in the alarm rule do not exist"
                ),
            ));
        }
        let arn = alarm_arn(&composite.alarm_name);
        let entry = state
            .composites
            .entry(composite.alarm_name.clone())
            .or_insert_with(|| (composite.clone(), tags.cloned().unwrap_or_default(), arn));
        entry.0 = composite.clone();
        Ok(())
    }

    async fn put_alarm(
        &self,
        alarm: &AlarmDefinition,
        tags: Option<&Tags>,
    ) -> Result<(), AwsError> {
        let mut state = self.call("PutMetricAlarm")?;
        let arn = alarm_arn(&alarm.alarm_name);
        let entry = state
            .alarms
            .entry(alarm.alarm_name.clone())
            .or_insert_with(|| (alarm.clone(), tags.cloned().unwrap_or_default(), arn));
        // Like CloudWatch: the definition is replaced, tags are ignored on update.
        entry.0 = alarm.clone();
        Ok(())
    }

    async fn delete_alarms(&self, names: &[String]) -> Result<(), AwsError> {
        for batch in names.chunks(super::cloudwatch::ALARM_BATCH) {
            let mut state = self.call("DeleteAlarms")?;
            for name in batch {
                state.alarms.remove(name);
                state.composites.remove(name);
                state.alarm_states.remove(name);
            }
        }
        Ok(())
    }

    async fn alarm_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        let state = self.call("ListTagsForResource")?;
        let alarm = state.alarms.values().find(|(_, _, a)| a == arn);
        alarm
            .map(|(_, tags, _)| tags.clone())
            .or_else(|| {
                let composite = state.composites.values().find(|(_, _, a)| a == arn);
                composite.map(|(_, tags, _)| tags.clone())
            })
            .ok_or_else(|| not_found("ListTagsForResource", arn))
    }

    async fn change_alarm_tags(&self, arn: &str, changes: &TagChanges) -> Result<(), AwsError> {
        for (operation, needed) in [
            ("TagResource", !changes.add.is_empty()),
            ("UntagResource", !changes.remove.is_empty()),
        ] {
            if !needed {
                continue;
            }
            let mut state = self.call(operation)?;
            let state = &mut *state;
            let tags = match state.alarms.values_mut().find(|(_, _, a)| a == arn) {
                Some((_, tags, _)) => tags,
                None => state
                    .composites
                    .values_mut()
                    .find(|(_, _, a)| a == arn)
                    .map(|(_, tags, _)| tags)
                    .ok_or_else(|| not_found(operation, arn))?,
            };
            apply_changes(tags, changes);
        }
        Ok(())
    }
}

#[async_trait]
impl SnsTopics for FakeAws {
    async fn all_topic_arns(&self) -> Result<Vec<String>, AwsError> {
        let state = self.call("ListTopics")?;
        Ok(state.topics.keys().cloned().collect())
    }

    async fn topic_exists(&self, arn: &str) -> Result<bool, AwsError> {
        let state = self.call("GetTopicAttributes")?;
        Ok(state.topics.contains_key(arn))
    }

    async fn create_topic(&self, name: &str, tags: &Tags) -> Result<TopicCreation, AwsError> {
        let mut state = self.call("CreateTopic")?;
        let arn = topic_arn(name);
        match state.topics.get(&arn) {
            // Like SNS: the same name with other tags is refused.
            Some((_, existing)) if !tags.is_empty() && existing != tags => {
                Ok(TopicCreation::NameTaken)
            }
            Some(_) => Ok(TopicCreation::Arn(arn)),
            None => {
                let mut attributes = HashMap::new();
                attributes.insert("TopicArn".to_string(), arn.clone());
                state.topics.insert(arn.clone(), (attributes, tags.clone()));
                Ok(TopicCreation::Arn(arn))
            }
        }
    }

    async fn topics_with_prefix(&self, name_prefix: &str) -> Result<Vec<String>, AwsError> {
        let state = self.call("ListTopics")?;
        Ok(state
            .topics
            .keys()
            .filter(|arn| super::sns::topic_name(arn).starts_with(name_prefix))
            .cloned()
            .collect())
    }

    async fn topic_attributes(&self, arn: &str) -> Result<HashMap<String, String>, AwsError> {
        let state = self.call("GetTopicAttributes")?;
        state
            .topics
            .get(arn)
            .map(|(a, _)| a.clone())
            .ok_or_else(|| not_found("GetTopicAttributes", arn))
    }

    async fn set_topic_attribute(
        &self,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), AwsError> {
        let mut state = self.call("SetTopicAttributes")?;
        let (attributes, _) = state
            .topics
            .get_mut(arn)
            .ok_or_else(|| not_found("SetTopicAttributes", arn))?;
        attributes.insert(name.to_string(), value.to_string());
        Ok(())
    }

    async fn topic_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        let state = self.call("ListTagsForResource")?;
        state
            .topics
            .get(arn)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| not_found("ListTagsForResource", arn))
    }

    async fn change_topic_tags(&self, arn: &str, changes: &TagChanges) -> Result<(), AwsError> {
        for (operation, needed) in [
            ("TagResource", !changes.add.is_empty()),
            ("UntagResource", !changes.remove.is_empty()),
        ] {
            if !needed {
                continue;
            }
            let mut state = self.call(operation)?;
            let (_, tags) = state
                .topics
                .get_mut(arn)
                .ok_or_else(|| not_found(operation, arn))?;
            apply_changes(tags, changes);
        }
        Ok(())
    }

    async fn delete_topic(&self, arn: &str) -> Result<(), AwsError> {
        let mut state = self.call("DeleteTopic")?;
        state.topics.remove(arn);
        state.subscriptions.retain(|s| s.topic_arn != arn);
        Ok(())
    }

    async fn topic_subscriptions(
        &self,
        topic_arn: &str,
    ) -> Result<Option<Vec<Subscription>>, AwsError> {
        let state = self.call("ListSubscriptionsByTopic")?;
        if !state.topics.contains_key(topic_arn) {
            return Ok(None);
        }
        Ok(Some(
            state
                .subscriptions
                .iter()
                .filter(|s| s.topic_arn == topic_arn)
                .cloned()
                .collect(),
        ))
    }

    async fn subscriptions_to(&self, endpoint: &str) -> Result<Vec<Subscription>, AwsError> {
        let state = self.call("ListSubscriptions")?;
        Ok(state
            .subscriptions
            .iter()
            .filter(|s| s.endpoint == endpoint)
            .cloned()
            .collect())
    }

    async fn subscribe_queue(&self, topic_arn: &str, queue_arn: &str) -> Result<String, AwsError> {
        let mut state = self.call("Subscribe")?;
        if !state.topics.contains_key(topic_arn) {
            return Err(not_found("Subscribe", topic_arn));
        }
        if let Some(existing) = state
            .subscriptions
            .iter()
            .find(|s| s.topic_arn == topic_arn && s.endpoint == queue_arn)
        {
            return Ok(existing.arn.clone().unwrap_or_default());
        }
        state.next_id += 1;
        let arn = format!("{topic_arn}:fake-{}", state.next_id);
        state.subscriptions.push(Subscription {
            arn: Some(arn.clone()),
            topic_arn: topic_arn.to_string(),
            protocol: "sqs".into(),
            endpoint: queue_arn.to_string(),
        });
        Ok(arn)
    }

    async fn subscription_attributes(
        &self,
        arn: &str,
    ) -> Result<HashMap<String, String>, AwsError> {
        let state = self.call("GetSubscriptionAttributes")?;
        let subscription = state
            .subscriptions
            .iter()
            .find(|s| s.arn.as_deref() == Some(arn))
            .ok_or_else(|| not_found("GetSubscriptionAttributes", arn))?;
        Ok(HashMap::from([
            ("Endpoint".to_string(), subscription.endpoint.clone()),
            ("Protocol".to_string(), subscription.protocol.clone()),
            ("TopicArn".to_string(), subscription.topic_arn.clone()),
            (super::sns::RAW_MESSAGE_DELIVERY.to_string(), "false".into()),
        ]))
    }

    async fn set_subscription_attribute(
        &self,
        arn: &str,
        _name: &str,
        _value: &str,
    ) -> Result<(), AwsError> {
        let state = self.call("SetSubscriptionAttributes")?;
        if state
            .subscriptions
            .iter()
            .any(|s| s.arn.as_deref() == Some(arn))
        {
            Ok(())
        } else {
            Err(not_found("SetSubscriptionAttributes", arn))
        }
    }

    async fn unsubscribe(&self, arn: &str) -> Result<bool, AwsError> {
        let mut state = self.call("Unsubscribe")?;
        let before = state.subscriptions.len();
        state
            .subscriptions
            .retain(|s| s.arn.as_deref() != Some(arn));
        Ok(state.subscriptions.len() < before)
    }
}

#[async_trait]
impl EventBridgeRules for FakeAws {
    async fn rules_with_prefix(&self, prefix: &str) -> Result<Vec<ObservedRule>, AwsError> {
        let state = self.call("ListRules")?;
        Ok(state
            .rules
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, (definition, _, _))| ObservedRule {
                arn: rule_arn(name),
                definition: definition.clone(),
            })
            .collect())
    }

    async fn put_rule(
        &self,
        rule: &RuleDefinition,
        tags: Option<&Tags>,
    ) -> Result<String, AwsError> {
        let mut state = self.call("PutRule")?;
        let entry = state
            .rules
            .entry(rule.rule_name.clone())
            .or_insert_with(|| (rule.clone(), tags.cloned().unwrap_or_default(), Vec::new()));
        entry.0 = rule.clone();
        Ok(rule_arn(&rule.rule_name))
    }

    async fn rule_targets(&self, rule_name: &str) -> Result<Option<Vec<RuleTarget>>, AwsError> {
        let state = self.call("ListTargetsByRule")?;
        Ok(state.rules.get(rule_name).map(|(_, _, t)| t.clone()))
    }

    async fn put_target(&self, rule_name: &str, target: &RuleTarget) -> Result<(), AwsError> {
        let mut state = self.call("PutTargets")?;
        let (_, _, targets) = state
            .rules
            .get_mut(rule_name)
            .ok_or_else(|| not_found("PutTargets", rule_name))?;
        targets.retain(|t| t.id != target.id);
        targets.push(target.clone());
        Ok(())
    }

    async fn remove_targets(&self, rule_name: &str, ids: &[String]) -> Result<(), AwsError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut state = self.call("RemoveTargets")?;
        if let Some((_, _, targets)) = state.rules.get_mut(rule_name) {
            targets.retain(|t| !ids.contains(&t.id));
        }
        Ok(())
    }

    async fn delete_rule(&self, rule_name: &str) -> Result<(), AwsError> {
        let mut state = self.call("DeleteRule")?;
        state.rules.remove(rule_name);
        Ok(())
    }

    async fn rule_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        let state = self.call("ListTagsForResource")?;
        state
            .rules
            .iter()
            .find(|(name, _)| rule_arn(name) == arn)
            .map(|(_, (_, tags, _))| tags.clone())
            .ok_or_else(|| not_found("ListTagsForResource", arn))
    }

    async fn change_rule_tags(&self, arn: &str, changes: &TagChanges) -> Result<(), AwsError> {
        for (operation, needed) in [
            ("TagResource", !changes.add.is_empty()),
            ("UntagResource", !changes.remove.is_empty()),
        ] {
            if !needed {
                continue;
            }
            let mut state = self.call(operation)?;
            let (_, (_, tags, _)) = state
                .rules
                .iter_mut()
                .find(|(name, _)| rule_arn(name) == arn)
                .ok_or_else(|| not_found(operation, arn))?;
            apply_changes(tags, changes);
        }
        Ok(())
    }
}

fn rule_arn(name: &str) -> String {
    format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}")
}

#[async_trait]
impl SqsQueues for FakeAws {
    async fn queue_url(&self, name: &str) -> Result<Option<String>, AwsError> {
        let state = self.call("GetQueueUrl")?;
        Ok(state.queues.contains_key(name).then(|| queue_url(name)))
    }

    async fn queues_with_prefix(&self, prefix: &str) -> Result<Vec<String>, AwsError> {
        let state = self.call("ListQueues")?;
        Ok(state
            .queues
            .keys()
            .filter(|name| name.starts_with(prefix))
            .map(|name| queue_url(name))
            .collect())
    }

    async fn queue_tags(&self, url: &str) -> Result<Tags, AwsError> {
        let state = self.call("ListQueueTags")?;
        state
            .queues
            .get(queue_name(url))
            .map(|(_, t)| t.clone())
            .ok_or_else(|| not_found("ListQueueTags", url))
    }

    async fn queue_attributes(&self, url: &str) -> Result<QueueAttributes, AwsError> {
        let state = self.call("GetQueueAttributes")?;
        state
            .queues
            .get(queue_name(url))
            .map(|(a, _)| a.clone())
            .ok_or_else(|| not_found("GetQueueAttributes", url))
    }

    async fn create_queue(
        &self,
        name: &str,
        attributes: &[(String, String)],
        tags: &Tags,
    ) -> Result<String, AwsError> {
        let mut state = self.call("CreateQueue")?;
        let mut all: QueueAttributes = attributes
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .cloned()
            .collect();
        all.insert(
            "QueueArn".into(),
            format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"),
        );
        // As SQS: a new queue reports its (empty) depth.
        all.insert("ApproximateNumberOfMessages".into(), "0".into());
        state
            .queues
            .entry(name.to_string())
            .or_insert((all, tags.clone()));
        Ok(queue_url(name))
    }

    async fn set_queue_attributes(
        &self,
        url: &str,
        attributes: &[(String, String)],
    ) -> Result<(), AwsError> {
        let mut state = self.call("SetQueueAttributes")?;
        let (current, _) = state
            .queues
            .get_mut(queue_name(url))
            .ok_or_else(|| not_found("SetQueueAttributes", url))?;
        for (name, value) in attributes {
            if value.is_empty() {
                current.remove(name);
            } else {
                current.insert(name.clone(), value.clone());
            }
        }
        Ok(())
    }

    async fn delete_queue(&self, url: &str) -> Result<bool, AwsError> {
        let mut state = self.call("DeleteQueue")?;
        Ok(state.queues.remove(queue_name(url)).is_some())
    }
}

#[async_trait]
impl LogMetricFilters for FakeAws {
    async fn metric_filters(
        &self,
        log_group: &str,
        prefix: &str,
    ) -> Result<FilterListing, AwsError> {
        let state = self.call("DescribeMetricFilters")?;
        Ok(match state.log_groups.get(log_group) {
            Some(filters) => FilterListing::Filters(
                filters
                    .values()
                    .filter(|f| f.filter_name.starts_with(prefix))
                    .cloned()
                    .collect(),
            ),
            None => FilterListing::LogGroupNotFound,
        })
    }

    async fn put_metric_filter(&self, filter: &MetricFilterDefinition) -> Result<(), AwsError> {
        let mut state = self.call("PutMetricFilter")?;
        let filters = state
            .log_groups
            .get_mut(&filter.log_group)
            .ok_or_else(|| not_found("PutMetricFilter", &filter.log_group))?;
        filters.insert(filter.filter_name.clone(), filter.clone());
        Ok(())
    }

    async fn delete_metric_filter(
        &self,
        log_group: &str,
        filter_name: &str,
    ) -> Result<(), AwsError> {
        let mut state = self.call("DeleteMetricFilter")?;
        if let Some(filters) = state.log_groups.get_mut(log_group) {
            filters.remove(filter_name);
        }
        Ok(())
    }
}

impl ControllerAws for FakeAws {
    fn region(&self) -> Option<String> {
        Some(REGION.to_string())
    }
}
