//! SNS topics and subscriptions in our own terms. A subscription still waiting for confirmation
//! has no ARN (SNS reports `PendingConfirmation`); such entries are reported with `arn: None`.

use std::collections::HashMap;

use async_trait::async_trait;

use super::tags::TagChanges;
use super::{AwsApi, AwsClients, AwsError, AwsErrorKind};
use crate::resources::Tags;

/// The outcome of CreateTopic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopicCreation {
    /// The topic's ARN. CreateTopic is idempotent: an existing topic of that name with the same
    /// tags is returned as if new, so ownership must still be checked by tags.
    Arn(String),
    /// AWS refused because a topic of that name exists with other tags: someone else's.
    NameTaken,
}

/// One SNS subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// Its ARN once confirmed.
    pub arn: Option<String>,
    /// The topic.
    pub topic_arn: String,
    /// Protocol, e.g. `sqs`.
    pub protocol: String,
    /// Endpoint, e.g. a queue ARN.
    pub endpoint: String,
}

/// The SNS operations alertops makes, each taking its rate permit and classifying its errors.
#[async_trait]
pub trait SnsTopics: Send + Sync {
    /// The ARN of every topic of the account and region (ListTopics, 100 per page).
    async fn all_topic_arns(&self) -> Result<Vec<String>, AwsError>;
    /// Whether a topic exists (and is visible to us).
    async fn topic_exists(&self, arn: &str) -> Result<bool, AwsError>;
    /// Creates a topic with tags (see [`TopicCreation`]).
    async fn create_topic(&self, name: &str, tags: &Tags) -> Result<TopicCreation, AwsError>;
    /// ARNs of the topics whose name starts with `name_prefix` (ListTopics, every page). A
    /// read-only way to find our topic by name where CreateTopic would be a write.
    async fn topics_with_prefix(&self, name_prefix: &str) -> Result<Vec<String>, AwsError>;
    /// Every attribute of a topic.
    async fn topic_attributes(&self, arn: &str) -> Result<HashMap<String, String>, AwsError>;
    /// Sets one attribute of a topic.
    async fn set_topic_attribute(&self, arn: &str, name: &str, value: &str)
    -> Result<(), AwsError>;
    /// The tags of a topic.
    async fn topic_tags(&self, arn: &str) -> Result<Tags, AwsError>;
    /// Adds and removes tags of a topic.
    async fn change_topic_tags(&self, arn: &str, changes: &TagChanges) -> Result<(), AwsError>;
    /// Deletes a topic (SNS answers success for one already gone).
    async fn delete_topic(&self, arn: &str) -> Result<(), AwsError>;
    /// Every subscription of a topic, or `None` when the topic does not exist.
    async fn topic_subscriptions(
        &self,
        topic_arn: &str,
    ) -> Result<Option<Vec<Subscription>>, AwsError>;
    /// Every subscription in the account whose endpoint is `endpoint` (all pages).
    async fn subscriptions_to(&self, endpoint: &str) -> Result<Vec<Subscription>, AwsError>;
    /// Subscribes an SQS queue to a topic with the SNS envelope (raw delivery off); returns the
    /// subscription ARN.
    async fn subscribe_queue(&self, topic_arn: &str, queue_arn: &str) -> Result<String, AwsError>;
    /// Every attribute of a subscription.
    async fn subscription_attributes(&self, arn: &str)
    -> Result<HashMap<String, String>, AwsError>;
    /// Sets one attribute of a subscription.
    async fn set_subscription_attribute(
        &self,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), AwsError>;
    /// Removes a subscription; `false` when it was already gone.
    async fn unsubscribe(&self, arn: &str) -> Result<bool, AwsError>;
}

/// SNS subscription attribute that delivers the bare message instead of the SNS envelope.
pub const RAW_MESSAGE_DELIVERY: &str = "RawMessageDelivery";

#[async_trait]
impl SnsTopics for AwsClients {
    async fn all_topic_arns(&self) -> Result<Vec<String>, AwsError> {
        let mut arns = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .call(AwsApi::Sns, "ListTopics", || {
                    self.sns
                        .list_topics()
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await?;
            arns.extend(
                page.topics()
                    .iter()
                    .filter_map(|t| t.topic_arn().map(str::to_string)),
            );
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(arns);
            }
        }
    }

    async fn topic_exists(&self, arn: &str) -> Result<bool, AwsError> {
        match self.topic_attributes(arn).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn create_topic(&self, name: &str, tags: &Tags) -> Result<TopicCreation, AwsError> {
        let mut request = self.sns.create_topic().name(name);
        for (k, v) in tags {
            request = request.tags(sdk_tag(k, v));
        }
        match self
            .call(AwsApi::Sns, "CreateTopic", || request.clone().send())
            .await
        {
            Ok(output) => Ok(TopicCreation::Arn(
                output.topic_arn().unwrap_or_default().to_string(),
            )),
            Err(e) => {
                if e.kind() == AwsErrorKind::InvalidRequest {
                    Ok(TopicCreation::NameTaken)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn topics_with_prefix(&self, name_prefix: &str) -> Result<Vec<String>, AwsError> {
        // ListTopics has no name filter: the same listing, filtered here.
        let mut found = self.all_topic_arns().await?;
        found.retain(|arn| topic_name(arn).starts_with(name_prefix));
        Ok(found)
    }

    async fn topic_attributes(&self, arn: &str) -> Result<HashMap<String, String>, AwsError> {
        let output = self
            .call(AwsApi::Sns, "GetTopicAttributes", || {
                self.sns.get_topic_attributes().topic_arn(arn).send()
            })
            .await?;
        Ok(output.attributes().cloned().unwrap_or_default())
    }

    async fn set_topic_attribute(
        &self,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), AwsError> {
        self.call(AwsApi::Sns, "SetTopicAttributes", || {
            self.sns
                .set_topic_attributes()
                .topic_arn(arn)
                .attribute_name(name)
                .attribute_value(value)
                .send()
        })
        .await?;
        Ok(())
    }

    async fn topic_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        let output = self
            .call(AwsApi::SnsTagging, "ListTagsForResource", || {
                self.sns.list_tags_for_resource().resource_arn(arn).send()
            })
            .await?;
        Ok(output
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }

    async fn change_topic_tags(&self, arn: &str, changes: &TagChanges) -> Result<(), AwsError> {
        if !changes.add.is_empty() {
            let mut request = self.sns.tag_resource().resource_arn(arn);
            for (k, v) in &changes.add {
                request = request.tags(sdk_tag(k, v));
            }
            self.call(AwsApi::SnsTagging, "TagResource", || request.clone().send())
                .await?;
        }
        if !changes.remove.is_empty() {
            self.call(AwsApi::SnsTagging, "UntagResource", || {
                self.sns
                    .untag_resource()
                    .resource_arn(arn)
                    .set_tag_keys(Some(changes.remove.clone()))
                    .send()
            })
            .await?;
        }
        Ok(())
    }

    async fn delete_topic(&self, arn: &str) -> Result<(), AwsError> {
        self.call(AwsApi::Sns, "DeleteTopic", || {
            self.sns.delete_topic().topic_arn(arn).send()
        })
        .await?;
        Ok(())
    }

    async fn topic_subscriptions(
        &self,
        topic_arn: &str,
    ) -> Result<Option<Vec<Subscription>>, AwsError> {
        let mut found = Vec::new();
        let mut next_token = None;
        loop {
            let page = match self
                .call(AwsApi::Sns, "ListSubscriptionsByTopic", || {
                    self.sns
                        .list_subscriptions_by_topic()
                        .topic_arn(topic_arn)
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    return if e.is_not_found() { Ok(None) } else { Err(e) };
                }
            };
            found.extend(page.subscriptions().iter().map(subscription));
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(Some(found));
            }
        }
    }

    async fn subscriptions_to(&self, endpoint: &str) -> Result<Vec<Subscription>, AwsError> {
        let mut found = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .call(AwsApi::Sns, "ListSubscriptions", || {
                    self.sns
                        .list_subscriptions()
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await?;
            found.extend(
                page.subscriptions()
                    .iter()
                    .map(subscription)
                    .filter(|s| s.endpoint == endpoint),
            );
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(found);
            }
        }
    }

    async fn subscribe_queue(&self, topic_arn: &str, queue_arn: &str) -> Result<String, AwsError> {
        let output = self
            .call(AwsApi::Sns, "Subscribe", || {
                self.sns
                    .subscribe()
                    .topic_arn(topic_arn)
                    .protocol("sqs")
                    .endpoint(queue_arn)
                    // The consumer decodes the SNS envelope (it tells alarms, events and
                    // messages apart).
                    .attributes(RAW_MESSAGE_DELIVERY, "false")
                    .return_subscription_arn(true)
                    .send()
            })
            .await?;
        Ok(output.subscription_arn().unwrap_or_default().to_string())
    }

    async fn subscription_attributes(
        &self,
        arn: &str,
    ) -> Result<HashMap<String, String>, AwsError> {
        let output = self
            .call(AwsApi::Sns, "GetSubscriptionAttributes", || {
                self.sns
                    .get_subscription_attributes()
                    .subscription_arn(arn)
                    .send()
            })
            .await?;
        Ok(output.attributes().cloned().unwrap_or_default())
    }

    async fn set_subscription_attribute(
        &self,
        arn: &str,
        name: &str,
        value: &str,
    ) -> Result<(), AwsError> {
        self.call(AwsApi::Sns, "SetSubscriptionAttributes", || {
            self.sns
                .set_subscription_attributes()
                .subscription_arn(arn)
                .attribute_name(name)
                .attribute_value(value)
                .send()
        })
        .await?;
        Ok(())
    }

    async fn unsubscribe(&self, arn: &str) -> Result<bool, AwsError> {
        match self
            .call(AwsApi::Sns, "Unsubscribe", || {
                self.sns.unsubscribe().subscription_arn(arn).send()
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                if e.is_not_found() {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// SNS reports `PendingConfirmation` (or `Deleted`) instead of an ARN for unconfirmed ones.
/// The name of a topic: the last part of its ARN (`arn:aws:sns:REGION:ACCOUNT:NAME`).
pub fn topic_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

fn subscription(s: &aws_sdk_sns::types::Subscription) -> Subscription {
    Subscription {
        arn: s
            .subscription_arn()
            .filter(|arn| arn.starts_with("arn:"))
            .map(str::to_string),
        topic_arn: s.topic_arn().unwrap_or_default().to_string(),
        protocol: s.protocol().unwrap_or_default().to_string(),
        endpoint: s.endpoint().unwrap_or_default().to_string(),
    }
}

fn sdk_tag(k: &str, v: &str) -> aws_sdk_sns::types::Tag {
    aws_sdk_sns::types::Tag::builder()
        .key(k)
        .value(v)
        .build()
        .expect("key and value are set")
}
