//! One inventory of AWS per resync for the whole cluster, behind the same traits the
//! reconcilers read through ([`ControllerAws`]), so that desired → observe → plan → execute stay
//! as they are and only the number of AWS calls changes.
//!
//! Without it every AlarmPolicy's resync lists its own alarms and rules and reads its topic:
//! 1,000 policies cost some 4,000 calls. With it:
//!
//! - **Alarms** are listed once by the cluster's prefix (`alertops/CLUSTER/`, 100 per page) and
//!   each policy's `alarms_with_prefix` is answered from that listing.
//! - **Rules** are listed once by [`RULE_PREFIX`], and answered the same way.
//! - **Topics** are listed once (ListTopics, 100 per page); a topic's attributes and tags are read
//!   once and kept until alertops writes to the topic, or it disappears from the listing, or the
//!   process restarts. (A topic policy edited by hand is therefore repaired at a spec change or
//!   a restart, not at every resync: reading every topic's attributes and tags every resync is
//!   what made the per-policy cost.)
//! - **Writes invalidate what they touch**: a written alarm or rule makes the next read of a
//!   prefix holding it go to AWS for that prefix alone (one page), a deletion is removed from the
//!   listing, a topic write drops that topic's attributes and tags.
//! - A listing lives for one generation: [`Inventory::invalidate`] (the controller calls it at
//!   every resync tick, then reconciles every policy) or `max_age`, whichever comes first. A
//!   change made behind the controller's back is therefore seen at the next resync.
//! - Everything else (tags of alarms and rules, rule targets, queues, subscriptions) goes to
//!   AWS as before: the plan reads alarm and rule tags only when they may have changed.
//!
//! A one-shot run (`alertops plan`) or a test uses the gateway directly or a fresh inventory.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex as SyncMutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::cloudwatch::{
    AlarmDefinition, AlarmListing, CloudWatchAlarms, CompositeDefinition, ObservedAlarm,
    ObservedComposite,
};
use super::eventbridge::{EventBridgeRules, ObservedRule, RuleDefinition, RuleTarget};
use super::log_filters::{FilterListing, LogMetricFilters, MetricFilterDefinition};
use super::sns::{SnsTopics, Subscription, TopicCreation};
use super::sqs::{QueueAttributes, SqsQueues};
use super::tags::TagChanges;
use super::{AwsError, ControllerAws};
use crate::names::{RULE_PREFIX, cluster_alarm_prefix};
use crate::resources::Tags;

mod listing;

use listing::Listing;

/// A metric or composite alarm of the cluster's listing (both come in the same pages).
// Nearly every entry is a metric alarm: boxing it would add an allocation per alarm and save
// nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize, Deserialize)]
enum ListedAlarm {
    Metric(ObservedAlarm),
    Composite(ObservedComposite),
}

fn listed(listing: AlarmListing) -> impl Iterator<Item = (String, ListedAlarm)> {
    let metric = listing
        .metric
        .into_iter()
        .map(|a| (a.definition.alarm_name.clone(), ListedAlarm::Metric(a)));
    let composite = listing
        .composite
        .into_iter()
        .map(|c| (c.definition.alarm_name.clone(), ListedAlarm::Composite(c)));
    metric.chain(composite)
}

/// What is known of one topic: each part read once, dropped when alertops writes it.
#[derive(Clone, Debug, Default)]
struct TopicDetail {
    attributes: Option<HashMap<String, String>>,
    tags: Option<Tags>,
}

#[derive(Debug)]
struct Shared {
    alarm_prefix: String,
    max_age: Duration,
    // Async mutexes, held while listing: concurrent reconciles wait for one listing instead of
    // each making their own.
    alarms: Mutex<Option<Listing<ListedAlarm>>>,
    rules: Mutex<Option<Listing<ObservedRule>>>,
    topics: Mutex<Option<(Instant, HashSet<String>)>>,
    topic_details: SyncMutex<HashMap<String, TopicDetail>>,
}

/// The controller's AWS: the gateway `A` with a cluster-wide inventory in front of its reads
/// (see the module docs). Clones share the inventory.
#[derive(Clone, Debug)]
pub struct Inventory<A> {
    inner: A,
    shared: Arc<Shared>,
}

impl<A: ControllerAws> Inventory<A> {
    /// An inventory of the alarms of `cluster_id` and of alertops' rules and the account's
    /// topics, read through `inner`; a listing is read again after `max_age` at the latest.
    pub fn new(inner: A, cluster_id: &str, max_age: Duration) -> Self {
        Inventory {
            inner,
            shared: Arc::new(Shared {
                alarm_prefix: cluster_alarm_prefix(cluster_id),
                max_age,
                alarms: Mutex::new(None),
                rules: Mutex::new(None),
                topics: Mutex::new(None),
                topic_details: SyncMutex::new(HashMap::new()),
            }),
        }
    }

    /// Starts a new generation: the next read of alarms, rules or topics lists them again.
    /// Topic attributes and tags are kept (see the module docs).
    pub async fn invalidate(&self) {
        *self.shared.alarms.lock().await = None;
        *self.shared.rules.lock().await = None;
        *self.shared.topics.lock().await = None;
    }

    /// The gateway behind the inventory.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    fn fresh(&self, listed_at: Instant) -> bool {
        listed_at.elapsed() < self.shared.max_age
    }

    /// Whether `arn` is in this generation's topic listing.
    async fn topic_listed(&self, arn: &str) -> Result<bool, AwsError> {
        let mut topics = self.shared.topics.lock().await;
        if !topics.as_ref().is_some_and(|(at, _)| self.fresh(*at)) {
            let arns = self.inner.all_topic_arns().await?;
            *topics = Some((Instant::now(), arns.into_iter().collect()));
        }
        Ok(topics.as_ref().is_some_and(|(_, arns)| arns.contains(arn)))
    }

    fn details(&self) -> std::sync::MutexGuard<'_, HashMap<String, TopicDetail>> {
        self.shared
            .topic_details
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn forget_topic_detail(&self, arn: &str) {
        self.details().remove(arn);
    }
}

#[async_trait]
impl<A: ControllerAws> CloudWatchAlarms for Inventory<A> {
    async fn alarms_with_prefix(&self, prefix: &str) -> Result<Vec<ObservedAlarm>, AwsError> {
        Ok(self.alarm_listing(prefix).await?.metric)
    }

    async fn alarm_listing(&self, prefix: &str) -> Result<AlarmListing, AwsError> {
        let cluster = &self.shared.alarm_prefix;
        if !prefix.starts_with(cluster.as_str()) {
            return self.inner.alarm_listing(prefix).await;
        }
        let mut listing = self.shared.alarms.lock().await;
        if !listing.as_ref().is_some_and(|l| self.fresh(l.listed_at)) {
            // Packed page by page: a fleet's alarms are never all held decoded.
            let mut fresh = Listing::new('/', []);
            self.inner
                .alarm_pages(cluster, &mut |page| fresh.add(listed(page)))
                .await?;
            *listing = Some(fresh);
        }
        let listing = listing.as_mut().expect("listed above");
        if listing.has_stale_under(prefix) {
            let fresh = self.inner.alarm_listing(prefix).await?;
            listing.refresh(prefix, listed(fresh));
        }
        let mut out = AlarmListing::default();
        for (_, alarm) in listing.under(prefix) {
            match alarm {
                ListedAlarm::Metric(a) => out.metric.push(a),
                ListedAlarm::Composite(c) => out.composite.push(c),
            }
        }
        Ok(out)
    }

    async fn put_composite(
        &self,
        composite: &CompositeDefinition,
        tags: Option<&Tags>,
    ) -> Result<(), AwsError> {
        let result = self.inner.put_composite(composite, tags).await;
        // Stale even when the call failed: it may have been applied before the error.
        if let Some(listing) = self.shared.alarms.lock().await.as_mut() {
            listing.stale.insert(composite.alarm_name.clone());
        }
        result
    }

    async fn put_alarm(
        &self,
        alarm: &AlarmDefinition,
        tags: Option<&Tags>,
    ) -> Result<(), AwsError> {
        let result = self.inner.put_alarm(alarm, tags).await;
        // Stale even when the call failed: it may have been applied before the error.
        if let Some(listing) = self.shared.alarms.lock().await.as_mut() {
            listing.stale.insert(alarm.alarm_name.clone());
        }
        result
    }

    async fn delete_alarms(&self, names: &[String]) -> Result<(), AwsError> {
        let result = self.inner.delete_alarms(names).await;
        if let Some(listing) = self.shared.alarms.lock().await.as_mut() {
            match &result {
                Ok(()) => names.iter().for_each(|name| listing.remove(name)),
                Err(_) => listing.stale.extend(names.iter().cloned()),
            }
        }
        result
    }

    async fn alarm_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        self.inner.alarm_tags(arn).await
    }

    async fn change_alarm_tags(&self, arn: &str, changes: &TagChanges) -> Result<(), AwsError> {
        self.inner.change_alarm_tags(arn, changes).await
    }
}

#[async_trait]
impl<A: ControllerAws> EventBridgeRules for Inventory<A> {
    async fn rules_with_prefix(&self, prefix: &str) -> Result<Vec<ObservedRule>, AwsError> {
        if !prefix.starts_with(RULE_PREFIX) {
            return self.inner.rules_with_prefix(prefix).await;
        }
        let mut listing = self.shared.rules.lock().await;
        if !listing.as_ref().is_some_and(|l| self.fresh(l.listed_at)) {
            let rules = self.inner.rules_with_prefix(RULE_PREFIX).await?;
            *listing = Some(Listing::new(
                '.',
                rules
                    .into_iter()
                    .map(|r| (r.definition.rule_name.clone(), r)),
            ));
        }
        let listing = listing.as_mut().expect("listed above");
        if listing.has_stale_under(prefix) {
            let fresh = self.inner.rules_with_prefix(prefix).await?;
            listing.refresh(
                prefix,
                fresh
                    .into_iter()
                    .map(|r| (r.definition.rule_name.clone(), r)),
            );
        }
        Ok(listing.under(prefix).into_iter().map(|(_, r)| r).collect())
    }

    async fn put_rule(
        &self,
        rule: &RuleDefinition,
        tags: Option<&Tags>,
    ) -> Result<String, AwsError> {
        let result = self.inner.put_rule(rule, tags).await;
        if let Some(listing) = self.shared.rules.lock().await.as_mut() {
            listing.stale.insert(rule.rule_name.clone());
        }
        result
    }

    async fn rule_targets(&self, rule_name: &str) -> Result<Option<Vec<RuleTarget>>, AwsError> {
        self.inner.rule_targets(rule_name).await
    }

    async fn put_target(&self, rule_name: &str, target: &RuleTarget) -> Result<(), AwsError> {
        self.inner.put_target(rule_name, target).await
    }

    async fn remove_targets(&self, rule_name: &str, ids: &[String]) -> Result<(), AwsError> {
        self.inner.remove_targets(rule_name, ids).await
    }

    async fn delete_rule(&self, rule_name: &str) -> Result<(), AwsError> {
        let result = self.inner.delete_rule(rule_name).await;
        if let Some(listing) = self.shared.rules.lock().await.as_mut() {
            match &result {
                Ok(()) => listing.remove(rule_name),
                Err(_) => {
                    listing.stale.insert(rule_name.to_string());
                }
            }
        }
        result
    }

    async fn rule_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        self.inner.rule_tags(arn).await
    }

    async fn change_rule_tags(&self, arn: &str, changes: &TagChanges) -> Result<(), AwsError> {
        self.inner.change_rule_tags(arn, changes).await
    }
}

#[async_trait]
impl<A: ControllerAws> SnsTopics for Inventory<A> {
    async fn topics_with_prefix(&self, name_prefix: &str) -> Result<Vec<String>, AwsError> {
        self.inner.topics_with_prefix(name_prefix).await
    }

    async fn all_topic_arns(&self) -> Result<Vec<String>, AwsError> {
        self.inner.all_topic_arns().await
    }

    async fn topic_exists(&self, arn: &str) -> Result<bool, AwsError> {
        // A topic of another account or region is not in our listing: ask SNS.
        if self.topic_listed(arn).await? {
            return Ok(true);
        }
        self.inner.topic_exists(arn).await
    }

    async fn create_topic(&self, name: &str, tags: &Tags) -> Result<TopicCreation, AwsError> {
        let created = self.inner.create_topic(name, tags).await?;
        if let TopicCreation::Arn(arn) = &created {
            if let Some((_, arns)) = self.shared.topics.lock().await.as_mut() {
                arns.insert(arn.clone());
            }
            self.forget_topic_detail(arn);
        }
        Ok(created)
    }

    async fn topic_attributes(&self, arn: &str) -> Result<HashMap<String, String>, AwsError> {
        if !self.topic_listed(arn).await? {
            self.forget_topic_detail(arn);
            return self.inner.topic_attributes(arn).await;
        }
        if let Some(attributes) = self.details().get(arn).and_then(|d| d.attributes.clone()) {
            return Ok(attributes);
        }
        let attributes = self.inner.topic_attributes(arn).await?;
        self.details()
            .entry(arn.to_string())
            .or_default()
            .attributes = Some(attributes.clone());
        Ok(attributes)
    }

    async fn set_topic_attribute(
        &self,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), AwsError> {
        let result = self.inner.set_topic_attribute(arn, name, value).await;
        self.forget_topic_detail(arn);
        result
    }

    async fn topic_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        if !self.topic_listed(arn).await? {
            self.forget_topic_detail(arn);
            return self.inner.topic_tags(arn).await;
        }
        if let Some(tags) = self.details().get(arn).and_then(|d| d.tags.clone()) {
            return Ok(tags);
        }
        let tags = self.inner.topic_tags(arn).await?;
        self.details().entry(arn.to_string()).or_default().tags = Some(tags.clone());
        Ok(tags)
    }

    async fn change_topic_tags(&self, arn: &str, changes: &TagChanges) -> Result<(), AwsError> {
        let result = self.inner.change_topic_tags(arn, changes).await;
        self.forget_topic_detail(arn);
        result
    }

    async fn delete_topic(&self, arn: &str) -> Result<(), AwsError> {
        let result = self.inner.delete_topic(arn).await;
        if let Some((_, arns)) = self.shared.topics.lock().await.as_mut() {
            arns.remove(arn);
        }
        self.forget_topic_detail(arn);
        result
    }

    async fn topic_subscriptions(
        &self,
        topic_arn: &str,
    ) -> Result<Option<Vec<Subscription>>, AwsError> {
        self.inner.topic_subscriptions(topic_arn).await
    }

    async fn subscriptions_to(&self, endpoint: &str) -> Result<Vec<Subscription>, AwsError> {
        self.inner.subscriptions_to(endpoint).await
    }

    async fn subscribe_queue(&self, topic_arn: &str, queue_arn: &str) -> Result<String, AwsError> {
        self.inner.subscribe_queue(topic_arn, queue_arn).await
    }

    async fn subscription_attributes(
        &self,
        arn: &str,
    ) -> Result<HashMap<String, String>, AwsError> {
        self.inner.subscription_attributes(arn).await
    }

    async fn set_subscription_attribute(
        &self,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), AwsError> {
        self.inner
            .set_subscription_attribute(arn, name, value)
            .await
    }

    async fn unsubscribe(&self, arn: &str) -> Result<bool, AwsError> {
        self.inner.unsubscribe(arn).await
    }
}

#[async_trait]
impl<A: ControllerAws> SqsQueues for Inventory<A> {
    async fn queues_with_prefix(&self, prefix: &str) -> Result<Vec<String>, AwsError> {
        self.inner.queues_with_prefix(prefix).await
    }

    async fn queue_url(&self, name: &str) -> Result<Option<String>, AwsError> {
        self.inner.queue_url(name).await
    }

    async fn queue_tags(&self, url: &str) -> Result<Tags, AwsError> {
        self.inner.queue_tags(url).await
    }

    async fn queue_attributes(&self, url: &str) -> Result<QueueAttributes, AwsError> {
        self.inner.queue_attributes(url).await
    }

    async fn create_queue(
        &self,
        name: &str,
        attributes: &[(String, String)],
        tags: &Tags,
    ) -> Result<String, AwsError> {
        self.inner.create_queue(name, attributes, tags).await
    }

    async fn set_queue_attributes(
        &self,
        url: &str,
        attributes: &[(String, String)],
    ) -> Result<(), AwsError> {
        self.inner.set_queue_attributes(url, attributes).await
    }

    async fn delete_queue(&self, url: &str) -> Result<bool, AwsError> {
        self.inner.delete_queue(url).await
    }
}

/// Metric filters are listed per log group, so there is no cluster-wide listing to share: each
/// policy lists the groups its log alarms name (one call per group per reconcile).
#[async_trait]
impl<A: ControllerAws> LogMetricFilters for Inventory<A> {
    async fn metric_filters(
        &self,
        log_group: &str,
        prefix: &str,
    ) -> Result<FilterListing, AwsError> {
        self.inner.metric_filters(log_group, prefix).await
    }

    async fn put_metric_filter(&self, filter: &MetricFilterDefinition) -> Result<(), AwsError> {
        self.inner.put_metric_filter(filter).await
    }

    async fn delete_metric_filter(
        &self,
        log_group: &str,
        filter_name: &str,
    ) -> Result<(), AwsError> {
        self.inner
            .delete_metric_filter(log_group, filter_name)
            .await
    }
}

impl<A: ControllerAws> ControllerAws for Inventory<A> {
    fn region(&self) -> Option<String> {
        self.inner.region()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;

    const CLUSTER: &str = "test";

    fn count(aws: &FakeAws, operation: &str) -> usize {
        aws.calls().iter().filter(|c| *c == operation).count()
    }

    fn alarm(name: &str) -> AlarmDefinition {
        AlarmDefinition {
            alarm_name: name.to_string(),
            description: None,
            actions_enabled: true,
            alarm_actions: Vec::new(),
            ok_actions: Vec::new(),
            insufficient_data_actions: Vec::new(),
            metric: crate::aws::cloudwatch::AlarmMetric::Single {
                namespace: "AWS/ELB".into(),
                name: "Errors".into(),
                dimensions: Vec::new(),
                statistic: Some("Sum".into()),
                extended_statistic: None,
                period: 60,
                unit: None,
            },
            evaluation_periods: 1,
            datapoints_to_alarm: 1,
            threshold_metric_id: None,
            threshold: 1.0,
            comparison: "GreaterThanThreshold".into(),
            treat_missing_data: "missing".into(),
        }
    }

    #[tokio::test]
    async fn a_write_makes_the_next_read_of_its_prefix_go_to_aws() {
        let aws = FakeAws::new();
        let inventory = Inventory::new(aws.clone(), CLUSTER, Duration::from_secs(600));
        let prefix = format!("{}ns/p/", cluster_alarm_prefix(CLUSTER));
        assert!(
            inventory
                .alarms_with_prefix(&prefix)
                .await
                .unwrap()
                .is_empty()
        );
        let mut definition = alarm(&format!("{prefix}x"));
        inventory.put_alarm(&definition, None).await.unwrap();
        aws.clear_calls();

        let listed = inventory.alarms_with_prefix(&prefix).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(aws.calls(), ["DescribeAlarms"]);
        aws.clear_calls();
        // Read again: from the listing.
        assert_eq!(
            inventory.alarms_with_prefix(&prefix).await.unwrap().len(),
            1
        );
        assert!(aws.calls().is_empty());

        definition.threshold += 1.0;
        inventory
            .delete_alarms(&[definition.alarm_name.clone()])
            .await
            .unwrap();
        aws.clear_calls();
        assert!(
            inventory
                .alarms_with_prefix(&prefix)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            aws.calls().is_empty(),
            "a deletion is applied to the listing"
        );
    }

    #[tokio::test]
    async fn a_fleet_listing_is_packed_page_by_page_and_every_policy_reads_its_own() {
        // Pages of 3: policy p's four alarms span two pages.
        let aws = FakeAws::new().with_alarm_pages(3);
        let root = cluster_alarm_prefix(CLUSTER);
        for name in ["ns/o/a", "ns/p/a", "ns/p/b", "ns/p/c", "ns/p/d", "ns/q/a"] {
            aws.put_alarm(&alarm(&format!("{root}{name}")), None)
                .await
                .unwrap();
        }
        aws.clear_calls();
        let inventory = Inventory::new(aws.clone(), CLUSTER, Duration::from_secs(600));
        let names = |listed: Vec<ObservedAlarm>| -> Vec<String> {
            listed
                .into_iter()
                .map(|a| a.definition.alarm_name[root.len()..].to_string())
                .collect()
        };
        let p = inventory
            .alarms_with_prefix(&format!("{root}ns/p/"))
            .await
            .unwrap();
        assert_eq!(names(p), ["ns/p/a", "ns/p/b", "ns/p/c", "ns/p/d"]);
        assert_eq!(count(&aws, "DescribeAlarms"), 2, "two pages of three");
        let o = inventory
            .alarms_with_prefix(&format!("{root}ns/o/"))
            .await
            .unwrap();
        assert_eq!(names(o), ["ns/o/a"]);
        let q = inventory
            .alarms_with_prefix(&format!("{root}ns/q/"))
            .await
            .unwrap();
        assert_eq!(q[0].definition, alarm(&format!("{root}ns/q/a")));
        assert_eq!(
            count(&aws, "DescribeAlarms"),
            2,
            "later reads are answered from the listing"
        );
    }

    #[tokio::test]
    async fn composites_come_from_the_same_listing_and_a_written_one_is_read_again() {
        let aws = FakeAws::new();
        let inventory = Inventory::new(aws.clone(), CLUSTER, Duration::from_secs(600));
        let prefix = format!("{}ns/p/", cluster_alarm_prefix(CLUSTER));
        let other = format!("{}ns/q/", cluster_alarm_prefix(CLUSTER));
        aws.insert_alarm(alarm(&format!("{prefix}m")), Tags::new());
        let composite = CompositeDefinition {
            alarm_name: format!("{prefix}both"),
            description: None,
            actions_enabled: true,
            alarm_actions: Vec::new(),
            ok_actions: Vec::new(),
            insufficient_data_actions: Vec::new(),
            rule: format!("ALARM(\"{prefix}m\")"),
        };
        aws.insert_composite(composite.clone(), Tags::new());

        let listing = inventory.alarm_listing(&prefix).await.unwrap();
        assert_eq!((listing.metric.len(), listing.composite.len()), (1, 1));
        assert!(
            inventory
                .alarm_listing(&other)
                .await
                .unwrap()
                .metric
                .is_empty()
        );
        assert_eq!(
            count(&aws, "DescribeAlarms"),
            1,
            "one cluster-wide listing serves every policy"
        );
        assert_eq!(
            inventory.alarms_with_prefix(&prefix).await.unwrap().len(),
            1,
            "metric alarms only"
        );

        let mut changed = composite.clone();
        changed.rule = "TRUE".into();
        inventory.put_composite(&changed, None).await.unwrap();
        aws.clear_calls();
        let listing = inventory.alarm_listing(&prefix).await.unwrap();
        assert_eq!(listing.composite[0].definition.rule, "TRUE");
        assert_eq!(aws.calls(), ["DescribeAlarms"], "only the written prefix");
    }

    #[tokio::test]
    async fn a_listing_older_than_max_age_is_read_again() {
        let aws = FakeAws::new();
        let inventory = Inventory::new(aws.clone(), CLUSTER, Duration::ZERO);
        let prefix = cluster_alarm_prefix(CLUSTER);
        inventory.alarms_with_prefix(&prefix).await.unwrap();
        inventory.alarms_with_prefix(&prefix).await.unwrap();
        assert_eq!(count(&aws, "DescribeAlarms"), 2);
    }

    #[tokio::test]
    async fn a_topic_gone_from_the_listing_is_absent_and_one_written_is_read_again() {
        let aws = FakeAws::new();
        let inventory = Inventory::new(aws.clone(), CLUSTER, Duration::from_secs(600));
        let arn = aws.insert_topic("t", Tags::new());
        assert!(inventory.topic_attributes(&arn).await.is_ok());
        inventory.topic_tags(&arn).await.unwrap();
        aws.clear_calls();
        inventory.topic_attributes(&arn).await.unwrap();
        inventory.topic_tags(&arn).await.unwrap();
        assert!(aws.calls().is_empty(), "{:?}", aws.calls());

        let changes = TagChanges {
            add: [("Team".to_string(), "web".to_string())].into(),
            remove: Vec::new(),
        };
        inventory.change_topic_tags(&arn, &changes).await.unwrap();
        aws.clear_calls();
        assert_eq!(
            inventory
                .topic_tags(&arn)
                .await
                .unwrap()
                .get("Team")
                .unwrap(),
            "web"
        );
        assert_eq!(aws.calls(), ["ListTagsForResource"]);

        // Deleted behind our back: the next generation's listing no longer has it.
        aws.delete_topic(&arn).await.unwrap();
        inventory.invalidate().await;
        let gone = inventory.topic_attributes(&arn).await.unwrap_err();
        assert!(gone.is_not_found());
    }
}
