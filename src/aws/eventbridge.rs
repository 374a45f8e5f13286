//! EventBridge rules and their targets in our own terms. A rule is a [`RuleDefinition`] whose
//! event pattern compares as a JSON value, so key order never causes a write.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::{Rule, RuleState, Target};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::tags::TagChanges;
use super::{AwsApi, AwsClients, AwsError, AwsErrorKind};
use crate::resources::Tags;

/// An EventBridge rule, normalised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleDefinition {
    /// Rule name.
    pub rule_name: String,
    /// Description.
    pub description: Option<String>,
    /// Whether the rule is enabled.
    pub enabled: bool,
    /// Event pattern, compared as JSON values (key order never matters).
    pub event_pattern: Value,
}

/// A rule as EventBridge reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObservedRule {
    /// Its ARN.
    pub arn: String,
    /// Its normalised definition.
    pub definition: RuleDefinition,
}

/// One target of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleTarget {
    /// Target id, unique within the rule.
    pub id: String,
    /// Where matching events go.
    pub arn: String,
}

/// The EventBridge operations alertops makes, each taking its rate permit and classifying its
/// errors.
#[async_trait]
pub trait EventBridgeRules: Send + Sync {
    /// Every rule on the default bus whose name starts with `prefix` (all pages).
    async fn rules_with_prefix(&self, prefix: &str) -> Result<Vec<ObservedRule>, AwsError>;
    /// Creates or replaces a rule; `tags` only on creation. Returns its ARN.
    async fn put_rule(
        &self,
        rule: &RuleDefinition,
        tags: Option<&Tags>,
    ) -> Result<String, AwsError>;
    /// The targets of a rule, or `None` when the rule does not exist.
    async fn rule_targets(&self, rule_name: &str) -> Result<Option<Vec<RuleTarget>>, AwsError>;
    /// Adds or replaces one target of a rule.
    async fn put_target(&self, rule_name: &str, target: &RuleTarget) -> Result<(), AwsError>;
    /// Removes targets of a rule by id.
    async fn remove_targets(&self, rule_name: &str, ids: &[String]) -> Result<(), AwsError>;
    /// Deletes a rule (which must have no targets); success when it is already gone.
    async fn delete_rule(&self, rule_name: &str) -> Result<(), AwsError>;
    /// The tags of a rule.
    async fn rule_tags(&self, arn: &str) -> Result<Tags, AwsError>;
    /// Adds and removes tags of a rule.
    async fn change_rule_tags(&self, arn: &str, changes: &TagChanges) -> Result<(), AwsError>;
}

#[async_trait]
impl EventBridgeRules for AwsClients {
    async fn rules_with_prefix(&self, prefix: &str) -> Result<Vec<ObservedRule>, AwsError> {
        let mut rules = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .call(AwsApi::EventBridge, "ListRules", || {
                    self.eventbridge
                        .list_rules()
                        .name_prefix(prefix)
                        .set_next_token(next_token.clone())
                        .send()
                })
                .await?;
            rules.extend(page.rules().iter().map(observed_rule));
            next_token = page.next_token().map(str::to_string);
            if next_token.is_none() {
                return Ok(rules);
            }
        }
    }

    async fn put_rule(
        &self,
        def: &RuleDefinition,
        tags: Option<&Tags>,
    ) -> Result<String, AwsError> {
        let mut request = self
            .eventbridge
            .put_rule()
            .name(&def.rule_name)
            .event_pattern(def.event_pattern.to_string())
            .set_description(def.description.clone())
            .state(if def.enabled {
                RuleState::Enabled
            } else {
                RuleState::Disabled
            });
        for (k, v) in tags.into_iter().flatten() {
            request = request.tags(sdk_tag(k, v));
        }
        let output = self
            .call(AwsApi::EventBridge, "PutRule", || request.clone().send())
            .await?;
        Ok(output.rule_arn().unwrap_or_default().to_string())
    }

    async fn rule_targets(&self, rule_name: &str) -> Result<Option<Vec<RuleTarget>>, AwsError> {
        match self
            .call(AwsApi::EventBridge, "ListTargetsByRule", || {
                self.eventbridge
                    .list_targets_by_rule()
                    .rule(rule_name)
                    .send()
            })
            .await
        {
            Ok(output) => Ok(Some(
                output
                    .targets()
                    .iter()
                    .map(|t| RuleTarget {
                        id: t.id().to_string(),
                        arn: t.arn().to_string(),
                    })
                    .collect(),
            )),
            Err(e) => {
                if e.is_not_found() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn put_target(&self, rule_name: &str, target: &RuleTarget) -> Result<(), AwsError> {
        let target = Target::builder()
            .id(&target.id)
            .arn(&target.arn)
            .build()
            .expect("id and arn are set");
        let output = self
            .call(AwsApi::EventBridge, "PutTargets", || {
                self.eventbridge
                    .put_targets()
                    .rule(rule_name)
                    .targets(target.clone())
                    .send()
            })
            .await?;
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

    async fn remove_targets(&self, rule_name: &str, ids: &[String]) -> Result<(), AwsError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.call(AwsApi::EventBridge, "RemoveTargets", || {
            self.eventbridge
                .remove_targets()
                .rule(rule_name)
                .set_ids(Some(ids.to_vec()))
                .send()
        })
        .await?;
        Ok(())
    }

    async fn delete_rule(&self, rule_name: &str) -> Result<(), AwsError> {
        match self
            .call(AwsApi::EventBridge, "DeleteRule", || {
                self.eventbridge.delete_rule().name(rule_name).send()
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn rule_tags(&self, arn: &str) -> Result<Tags, AwsError> {
        let output = self
            .call(AwsApi::EventBridge, "ListTagsForResource", || {
                self.eventbridge
                    .list_tags_for_resource()
                    .resource_arn(arn)
                    .send()
            })
            .await?;
        Ok(output
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }

    async fn change_rule_tags(&self, arn: &str, changes: &TagChanges) -> Result<(), AwsError> {
        if !changes.add.is_empty() {
            let mut request = self.eventbridge.tag_resource().resource_arn(arn);
            for (k, v) in &changes.add {
                request = request.tags(sdk_tag(k, v));
            }
            self.call(AwsApi::EventBridge, "TagResource", || {
                request.clone().send()
            })
            .await?;
        }
        if !changes.remove.is_empty() {
            self.call(AwsApi::EventBridge, "UntagResource", || {
                self.eventbridge
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

/// A pattern that is not JSON (never written by alertops) compares unequal to anything we want,
/// so it gets rewritten.
fn observed_rule(rule: &Rule) -> ObservedRule {
    ObservedRule {
        arn: rule.arn().unwrap_or_default().to_string(),
        definition: RuleDefinition {
            rule_name: rule.name().unwrap_or_default().to_string(),
            description: rule
                .description()
                .filter(|d| !d.is_empty())
                .map(str::to_string),
            enabled: rule.state().is_some_and(|s| *s == RuleState::Enabled),
            event_pattern: rule
                .event_pattern()
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or(Value::Null),
        },
    }
}

fn sdk_tag(k: &str, v: &str) -> aws_sdk_eventbridge::types::Tag {
    aws_sdk_eventbridge::types::Tag::builder()
        .key(k)
        .value(v)
        .build()
        .expect("key and value are set")
}
