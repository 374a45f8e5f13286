//! The SQS queue, its dead-letter queue and the SNS subscriptions that an AlertRoute or a
//! DigestSchedule owns: resolving the sources to topic ARNs, the pure desired attributes, and the
//! AWS I/O that makes them so.
//!
//! Writes happen only where AWS differs after normalisation (numbers as numbers, policies as
//! canonical JSON), so a no-op resync writes nothing. Queues that exist without our ownership tags
//! are never modified or deleted. Source topics are only subscribed to, never modified.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};

use crate::aws::{AwsApi, AwsClients, AwsError};
use crate::k8s::{ClusterApi, ClusterError};
use crate::reconcile::alarm_policy::apply::{Blocker, Notice};
use crate::reconcile::alarm_policy::desired::canonical_policy;
use crate::reconcile::names::OwnerIdentity;
use crate::resources::{AlarmPolicy, SourceRef, SubscriptionStatus, Tags};

/// Suffix of the dead-letter queue's name.
pub const DEAD_LETTER_SUFFIX: &str = "-dlq";
/// Suffix of the main queue's name (none: the main queue carries the plain name).
pub const QUEUE_SUFFIX: &str = "";
/// The longest retention SQS allows: 14 days.
pub const MAX_RETENTION_SECONDS: i32 = 1_209_600;
/// The shortest retention SQS allows: one minute.
pub const MIN_RETENTION_SECONDS: i32 = 60;
/// Reason of the Ready condition while a source has no topic to subscribe to.
pub const REASON_SOURCE_NOT_READY: &str = "SourceNotReady";

/// How the owned queue behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Receives of one message before SQS moves it to the dead-letter queue.
    pub max_receive_count: i32,
    /// Seconds a received message stays invisible to other consumers.
    pub visibility_timeout_seconds: i32,
    /// Seconds an undelivered message is kept.
    pub retention_seconds: i32,
}

/// The sources of a route or schedule, resolved to topic ARNs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedSources {
    /// Topics to subscribe to, sorted and without duplicates.
    pub topic_arns: Vec<String>,
    /// Sources without a topic yet, each described for a person.
    pub not_ready: Vec<String>,
}

impl ResolvedSources {
    /// Adds topics that turned out not to exist to the sources that are not ready.
    pub fn mark_unreachable(&mut self, topics: &[String]) {
        for topic in topics {
            self.topic_arns.retain(|t| t != topic);
            self.not_ready.push(format!(
                "SNS topic {topic} does not exist or is not visible to the operator's role"
            ));
        }
    }
}

/// Resolves each source: an `alarmPolicy` to the `status.topicArn` of that AlarmPolicy in
/// `namespace` (not ready while it does not exist or has no topic yet), a `topicArn` to itself.
pub async fn resolve_sources<C: ClusterApi>(
    cluster: &C,
    namespace: &str,
    sources: &[SourceRef],
) -> Result<ResolvedSources, ClusterError> {
    let mut topics = BTreeSet::new();
    let mut not_ready = Vec::new();
    for source in sources {
        match (&source.alarm_policy, &source.topic_arn) {
            (Some(policy), _) => {
                let found = cluster.get::<AlarmPolicy>(namespace, policy).await?;
                match policy_topic(found.as_ref()) {
                    Ok(arn) => {
                        topics.insert(arn);
                    }
                    Err(why) => not_ready.push(format!("AlarmPolicy {namespace}/{policy} {why}")),
                }
            }
            (None, Some(arn)) => {
                topics.insert(arn.clone());
            }
            // The CRD's CEL rule forbids this; report it rather than ignore it.
            (None, None) => {
                not_ready.push("a source names neither alarmPolicy nor topicArn".to_string())
            }
        }
    }
    Ok(ResolvedSources {
        topic_arns: topics.into_iter().collect(),
        not_ready,
    })
}

/// The topic of an AlarmPolicy, or why there is none yet.
fn policy_topic(policy: Option<&AlarmPolicy>) -> Result<String, &'static str> {
    let policy = policy.ok_or("does not exist")?;
    if policy.metadata.deletion_timestamp.is_some() {
        return Err("is being deleted");
    }
    policy
        .status
        .as_ref()
        .and_then(|s| s.topic_arn.clone())
        .ok_or("has no SNS topic yet (it is not reconciled, or not Ready)")
}

/// The queue policy that lets SNS deliver from exactly `topic_arns`; `None` when there are none
/// (AWS rejects a policy without statements).
pub fn queue_policy(queue_arn: &str, topic_arns: &[String]) -> Option<Value> {
    if topic_arns.is_empty() {
        return None;
    }
    Some(json!({
        "Version": "2012-10-17",
        "Id": "alertops",
        "Statement": [{
            "Sid": "SourceTopicsSend",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arns}}
        }]
    }))
}

/// The redrive policy that moves a message to the dead-letter queue after `max_receive_count`
/// receives.
pub fn redrive_policy(dead_letter_arn: &str, max_receive_count: i32) -> Value {
    json!({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receive_count})
}

/// Attributes of the main queue, as SQS spells them.
pub fn queue_attributes(
    config: &QueueConfig,
    dead_letter_arn: &str,
    policy: Option<&Value>,
) -> Vec<(QueueAttributeName, String)> {
    vec![
        (
            QueueAttributeName::VisibilityTimeout,
            config.visibility_timeout_seconds.to_string(),
        ),
        (
            QueueAttributeName::MessageRetentionPeriod,
            config.retention_seconds.to_string(),
        ),
        (
            QueueAttributeName::RedrivePolicy,
            redrive_policy(dead_letter_arn, config.max_receive_count).to_string(),
        ),
        (
            QueueAttributeName::Policy,
            policy.map(Value::to_string).unwrap_or_default(),
        ),
    ]
}

/// Attributes of the dead-letter queue: the longest retention, so that failed messages outlive
/// the main queue's (SQS keeps a message's original enqueue time when it moves).
pub fn dead_letter_attributes() -> Vec<(QueueAttributeName, String)> {
    vec![(
        QueueAttributeName::MessageRetentionPeriod,
        MAX_RETENTION_SECONDS.to_string(),
    )]
}

/// Whether the value SQS reports for an attribute means the same as the desired value.
pub fn attribute_matches(name: &QueueAttributeName, desired: &str, current: Option<&str>) -> bool {
    let current = current.unwrap_or("").trim();
    match name {
        QueueAttributeName::Policy => json_or_null(desired) == json_or_null(current),
        QueueAttributeName::RedrivePolicy => redrive_key(desired) == redrive_key(current),
        _ => match (desired.trim().parse::<i64>(), current.parse::<i64>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => desired.trim() == current,
        },
    }
}

/// A policy document in canonical form; empty or invalid text is no policy.
fn json_or_null(text: &str) -> Value {
    serde_json::from_str::<Value>(text)
        .map(|v| canonical_policy(&v))
        .unwrap_or(Value::Null)
}

/// A redrive policy as (target, count), whether SQS reports the count as a number or a string.
fn redrive_key(text: &str) -> Option<(String, i64)> {
    let value: Value = serde_json::from_str(text).ok()?;
    let target = value.get("deadLetterTargetArn")?.as_str()?.to_string();
    let count = match value.get("maxReceiveCount")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some((target, count))
}

/// A queue's URL and ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRef {
    /// Queue URL, for SQS calls.
    pub url: String,
    /// Queue ARN, for policies and subscriptions.
    pub arn: String,
}

/// The outcome of [`QueueApplier::apply`].
#[derive(Clone, Debug, Default)]
pub struct QueueOutcome {
    /// The main queue, when it is ours and in place.
    pub queue: Option<QueueRef>,
    /// The dead-letter queue, when it is ours and in place.
    pub dead_letter: Option<QueueRef>,
    /// Subscriptions of the queue to the topics, sorted by topic.
    pub subscriptions: Vec<SubscriptionStatus>,
    /// Topics that do not exist (or cannot be seen): not subscribed, not admitted by the policy.
    pub unreachable_topics: Vec<String>,
    /// Events to publish.
    pub notices: Vec<Notice>,
    /// Why the queues cannot be made ours, if anything blocks them.
    pub blockers: Vec<Blocker>,
}

/// Applies the queue pair and subscriptions of one owner.
pub struct QueueApplier<'a> {
    /// AWS clients.
    pub aws: &'a AwsClients,
    /// Owner of the queues.
    pub owner: &'a OwnerIdentity,
}

impl QueueApplier<'_> {
    /// Makes the dead-letter queue, the queue (redrive, visibility, retention, a policy admitting
    /// exactly the reachable topics) and one SNS subscription per reachable topic match; removes
    /// `recorded` subscriptions to topics no longer listed.
    pub async fn apply(
        &self,
        config: &QueueConfig,
        topic_arns: &[String],
        recorded: &[SubscriptionStatus],
    ) -> Result<QueueOutcome, AwsError> {
        let mut out = QueueOutcome::default();
        let dead_letter_name = self.owner.queue_name(DEAD_LETTER_SUFFIX);
        let Some(dead_letter) = self
            .ensure_queue(&dead_letter_name, &dead_letter_attributes(), &mut out)
            .await?
        else {
            return Ok(out);
        };
        self.sync_attributes(&dead_letter, &dead_letter_attributes(), &mut out)
            .await?;
        out.dead_letter = Some(dead_letter.queue.clone());

        let name = self.owner.queue_name(QUEUE_SUFFIX);
        let initial = queue_attributes(config, &dead_letter.queue.arn, None);
        let Some(queue) = self.ensure_queue(&name, &initial, &mut out).await? else {
            return Ok(out);
        };

        // Which topics exist, and our subscription to each, before the policy admits them.
        let mut existing = Vec::new();
        let mut reachable = Vec::new();
        for topic in topic_arns {
            match self.our_subscription(topic, &queue.queue.arn).await? {
                None => out.unreachable_topics.push(topic.clone()),
                Some(found) => {
                    reachable.push(topic.clone());
                    existing.push((topic.clone(), found));
                }
            }
        }
        let policy = queue_policy(&queue.queue.arn, &reachable);
        let desired = queue_attributes(config, &dead_letter.queue.arn, policy.as_ref());
        self.sync_attributes(&queue, &desired, &mut out).await?;
        out.queue = Some(queue.queue.clone());

        for (topic, found) in existing {
            let arn = match found {
                Some(arn) => {
                    self.ensure_envelope_delivery(&arn).await?;
                    arn
                }
                None => {
                    let arn = self.subscribe(&topic, &queue.queue.arn).await?;
                    out.notices.push(Notice {
                        warning: false,
                        reason: "Subscribed",
                        note: format!("subscribed queue {} to SNS topic {topic}", queue.queue.arn),
                    });
                    arn
                }
            };
            out.subscriptions.push(SubscriptionStatus {
                topic_arn: topic,
                subscription_arn: arn,
            });
        }

        for stale in recorded
            .iter()
            .filter(|s| !topic_arns.contains(&s.topic_arn))
        {
            if self.unsubscribe(&stale.subscription_arn).await? {
                out.notices.push(Notice {
                    warning: false,
                    reason: "Unsubscribed",
                    note: format!(
                        "unsubscribed from SNS topic {}: no longer a source",
                        stale.topic_arn
                    ),
                });
            }
        }
        Ok(out)
    }

    /// Deletes the subscriptions of the queue (found by endpoint, plus `recorded`), the queue and
    /// the dead-letter queue, each only when it carries this owner's tags.
    pub async fn delete(&self, recorded: &[SubscriptionStatus]) -> Result<Vec<Notice>, AwsError> {
        let mut notices = Vec::new();
        let mut subscriptions: BTreeSet<String> = recorded
            .iter()
            .map(|s| s.subscription_arn.clone())
            .collect();
        let name = self.owner.queue_name(QUEUE_SUFFIX);
        let queue = self.owned_queue_url(&name).await?;
        if let Some(url) = &queue {
            let attributes = self.queue_attributes(url).await?;
            if let Some(arn) = attributes.get(&QueueAttributeName::QueueArn) {
                subscriptions.extend(self.subscriptions_to(arn).await?);
            }
        }
        let mut removed = 0;
        for arn in &subscriptions {
            if self.unsubscribe(arn).await? {
                removed += 1;
            }
        }
        if removed > 0 {
            notices.push(Notice {
                warning: false,
                reason: "Unsubscribed",
                note: format!("removed {removed} SNS subscriptions of the queue"),
            });
        }
        let dead_letter = self
            .owned_queue_url(&self.owner.queue_name(DEAD_LETTER_SUFFIX))
            .await?;
        for url in queue.into_iter().chain(dead_letter) {
            self.aws.acquire(AwsApi::Sqs).await;
            match self.aws.sqs.delete_queue().queue_url(&url).send().await {
                Ok(_) => notices.push(Notice {
                    warning: false,
                    reason: "QueueDeleted",
                    note: format!("deleted SQS queue {url}"),
                }),
                Err(e) => {
                    let e = AwsError::from_sdk("DeleteQueue", e);
                    if !e.is_not_found() {
                        return Err(e);
                    }
                }
            }
        }
        Ok(notices)
    }

    /// The queue's URL when it exists and is ours.
    async fn owned_queue_url(&self, name: &str) -> Result<Option<String>, AwsError> {
        let Some(url) = self.queue_url(name).await? else {
            return Ok(None);
        };
        Ok(self
            .owner
            .owns(&self.queue_tags(&url).await?)
            .then_some(url))
    }

    async fn queue_url(&self, name: &str) -> Result<Option<String>, AwsError> {
        self.aws.acquire(AwsApi::Sqs).await;
        match self.aws.sqs.get_queue_url().queue_name(name).send().await {
            Ok(output) => Ok(output.queue_url().map(str::to_string)),
            Err(e) => {
                let e = AwsError::from_sdk("GetQueueUrl", e);
                if e.is_not_found() { Ok(None) } else { Err(e) }
            }
        }
    }

    async fn queue_tags(&self, url: &str) -> Result<Tags, AwsError> {
        self.aws.acquire(AwsApi::Sqs).await;
        let output = self
            .aws
            .sqs
            .list_queue_tags()
            .queue_url(url)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListQueueTags", e))?;
        Ok(output
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    async fn queue_attributes(
        &self,
        url: &str,
    ) -> Result<HashMap<QueueAttributeName, String>, AwsError> {
        self.aws.acquire(AwsApi::Sqs).await;
        let output = self
            .aws
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetQueueAttributes", e))?;
        Ok(output.attributes().cloned().unwrap_or_default())
    }

    /// Finds or creates the queue; `None` (with a blocker) when a queue of that name is not ours.
    async fn ensure_queue(
        &self,
        name: &str,
        attributes: &[(QueueAttributeName, String)],
        out: &mut QueueOutcome,
    ) -> Result<Option<ObservedQueue>, AwsError> {
        let url = match self.queue_url(name).await? {
            Some(url) => {
                if !self.owner.owns(&self.queue_tags(&url).await?) {
                    out.blockers.push(Blocker {
                        reason: "QueueNotOwned",
                        message: format!(
                            "an SQS queue named {name:?} already exists and is not owned by this \
                             resource (its alertops.dev/owner and alertops.dev/cluster tags do not \
                             name it); it was left untouched. Delete it or rename the resource."
                        ),
                    });
                    return Ok(None);
                }
                url
            }
            None => {
                self.aws.acquire(AwsApi::Sqs).await;
                let mut request = self.aws.sqs.create_queue().queue_name(name);
                for (key, value) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
                    request = request.attributes(key.clone(), value);
                }
                for (key, value) in self.owner.ownership_tags() {
                    request = request.tags(key, value);
                }
                let output = request
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("CreateQueue", e))?;
                let url = output.queue_url().unwrap_or_default().to_string();
                out.notices.push(Notice {
                    warning: false,
                    reason: "QueueCreated",
                    note: format!("created SQS queue {url}"),
                });
                url
            }
        };
        let attributes = self.queue_attributes(&url).await?;
        let arn = attributes
            .get(&QueueAttributeName::QueueArn)
            .cloned()
            .unwrap_or_default();
        Ok(Some(ObservedQueue {
            queue: QueueRef { url, arn },
            attributes,
        }))
    }

    /// Sets the attributes whose value differs from what SQS reports, in one call.
    async fn sync_attributes(
        &self,
        queue: &ObservedQueue,
        desired: &[(QueueAttributeName, String)],
        out: &mut QueueOutcome,
    ) -> Result<(), AwsError> {
        let changes: Vec<&(QueueAttributeName, String)> = desired
            .iter()
            .filter(|(name, value)| {
                !attribute_matches(name, value, queue.attributes.get(name).map(String::as_str))
            })
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        self.aws.acquire(AwsApi::Sqs).await;
        let mut request = self
            .aws
            .sqs
            .set_queue_attributes()
            .queue_url(&queue.queue.url);
        for (name, value) in &changes {
            request = request.attributes(name.clone(), value);
        }
        request
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("SetQueueAttributes", e))?;
        out.notices.push(Notice {
            warning: false,
            reason: "QueueUpdated",
            note: format!(
                "updated SQS queue {}: {}",
                queue.queue.url,
                changes
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
        Ok(())
    }

    /// `None` when the topic does not exist; otherwise our subscription to it, if any.
    async fn our_subscription(
        &self,
        topic_arn: &str,
        queue_arn: &str,
    ) -> Result<Option<Option<String>>, AwsError> {
        let mut next_token = None;
        loop {
            self.aws.acquire(AwsApi::Sns).await;
            let page = match self
                .aws
                .sns
                .list_subscriptions_by_topic()
                .topic_arn(topic_arn)
                .set_next_token(next_token)
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    let e = AwsError::from_sdk("ListSubscriptionsByTopic", e);
                    return if e.is_not_found() { Ok(None) } else { Err(e) };
                }
            };
            let found = page.subscriptions().iter().find(|s| {
                s.protocol() == Some("sqs")
                    && s.endpoint() == Some(queue_arn)
                    && s.subscription_arn().is_some_and(is_confirmed)
            });
            if let Some(found) = found {
                return Ok(Some(found.subscription_arn().map(str::to_string)));
            }
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(Some(None));
            }
        }
    }

    /// Every subscription in the account whose endpoint is `queue_arn` (deletion only: this
    /// lists the whole account, so that a lost status never leaves a subscription behind).
    async fn subscriptions_to(&self, queue_arn: &str) -> Result<Vec<String>, AwsError> {
        let mut found = Vec::new();
        let mut next_token = None;
        loop {
            self.aws.acquire(AwsApi::Sns).await;
            let page = self
                .aws
                .sns
                .list_subscriptions()
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ListSubscriptions", e))?;
            found.extend(
                page.subscriptions()
                    .iter()
                    .filter(|s| s.protocol() == Some("sqs") && s.endpoint() == Some(queue_arn))
                    .filter_map(|s| s.subscription_arn())
                    .filter(|arn| is_confirmed(arn))
                    .map(str::to_string),
            );
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(found);
            }
        }
    }

    async fn subscribe(&self, topic_arn: &str, queue_arn: &str) -> Result<String, AwsError> {
        self.aws.acquire(AwsApi::Sns).await;
        let output = self
            .aws
            .sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            // The consumer decodes the SNS envelope (it tells alarms, events and messages apart).
            .attributes(RAW_MESSAGE_DELIVERY, "false")
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("Subscribe", e))?;
        Ok(output.subscription_arn().unwrap_or_default().to_string())
    }

    /// Turns raw delivery off on a subscription where someone turned it on.
    async fn ensure_envelope_delivery(&self, subscription_arn: &str) -> Result<(), AwsError> {
        self.aws.acquire(AwsApi::Sns).await;
        let output = self
            .aws
            .sns
            .get_subscription_attributes()
            .subscription_arn(subscription_arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetSubscriptionAttributes", e))?;
        let raw = output
            .attributes()
            .and_then(|a| a.get(RAW_MESSAGE_DELIVERY))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if !raw {
            return Ok(());
        }
        self.aws.acquire(AwsApi::Sns).await;
        self.aws
            .sns
            .set_subscription_attributes()
            .subscription_arn(subscription_arn)
            .attribute_name(RAW_MESSAGE_DELIVERY)
            .attribute_value("false")
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("SetSubscriptionAttributes", e))?;
        Ok(())
    }

    /// Removes a subscription; `false` when it was already gone.
    async fn unsubscribe(&self, subscription_arn: &str) -> Result<bool, AwsError> {
        if !is_confirmed(subscription_arn) {
            return Ok(false);
        }
        self.aws.acquire(AwsApi::Sns).await;
        match self
            .aws
            .sns
            .unsubscribe()
            .subscription_arn(subscription_arn)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = AwsError::from_sdk("Unsubscribe", e);
                if e.is_not_found() { Ok(false) } else { Err(e) }
            }
        }
    }
}

/// SNS subscription attribute that delivers the bare message instead of the SNS envelope.
const RAW_MESSAGE_DELIVERY: &str = "RawMessageDelivery";

/// A queue as found: URL, ARN and every attribute.
struct ObservedQueue {
    queue: QueueRef,
    attributes: HashMap<QueueAttributeName, String>,
}

/// SNS reports `PendingConfirmation` (or `Deleted`) instead of an ARN for unconfirmed ones.
fn is_confirmed(subscription_arn: &str) -> bool {
    subscription_arn.starts_with("arn:")
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:q";

    #[test]
    fn the_policy_admits_exactly_the_topics() {
        let topics = vec![
            "arn:aws:sns:us-east-1:123456789012:a".to_string(),
            "arn:aws:sns:us-east-1:123456789012:b".to_string(),
        ];
        let policy = queue_policy(QUEUE, &topics).unwrap();
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Principal"]["Service"], "sns.amazonaws.com");
        assert_eq!(statement["Action"], "sqs:SendMessage");
        assert_eq!(statement["Resource"], QUEUE);
        assert_eq!(
            statement["Condition"]["ArnEquals"]["aws:SourceArn"],
            json!(topics)
        );
        assert!(queue_policy(QUEUE, &[]).is_none());
    }

    #[test]
    fn attributes_compare_after_normalisation() {
        let retention = QueueAttributeName::MessageRetentionPeriod;
        assert!(attribute_matches(&retention, "345600", Some("345600")));
        assert!(!attribute_matches(&retention, "345600", Some("86400")));
        assert!(!attribute_matches(&retention, "345600", None));

        let redrive = QueueAttributeName::RedrivePolicy;
        let desired = redrive_policy("arn:dlq", 5).to_string();
        assert!(attribute_matches(
            &redrive,
            &desired,
            Some(r#"{"maxReceiveCount":"5", "deadLetterTargetArn":"arn:dlq"}"#)
        ));
        assert!(!attribute_matches(
            &redrive,
            &desired,
            Some(r#"{"deadLetterTargetArn":"arn:dlq","maxReceiveCount":4}"#)
        ));

        let policy = QueueAttributeName::Policy;
        let topics = vec!["arn:t1".to_string(), "arn:t2".to_string()];
        let desired = queue_policy(QUEUE, &topics).unwrap().to_string();
        let reordered = queue_policy(QUEUE, &["arn:t2".to_string(), "arn:t1".to_string()])
            .unwrap()
            .to_string();
        assert!(attribute_matches(&policy, &desired, Some(&reordered)));
        assert!(!attribute_matches(
            &policy,
            &desired,
            Some(&queue_policy(QUEUE, &topics[..1]).unwrap().to_string())
        ));
        assert!(
            attribute_matches(&policy, "", None),
            "no policy is no policy"
        );
        assert!(!attribute_matches(&policy, "", Some(&desired)));
    }

    #[test]
    fn unreachable_topics_become_not_ready_sources() {
        let mut sources = ResolvedSources {
            topic_arns: vec!["arn:a".into(), "arn:b".into()],
            not_ready: vec![],
        };
        sources.mark_unreachable(&["arn:b".to_string()]);
        assert_eq!(sources.topic_arns, vec!["arn:a".to_string()]);
        assert!(sources.not_ready[0].contains("arn:b"));
    }
}
