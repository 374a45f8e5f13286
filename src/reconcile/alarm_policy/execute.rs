//! Applies an AlarmPolicy's plan through the AWS gateway and returns what was applied: the
//! records the status keeps and the notices to publish. Nothing is decided here.

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt, stream};

use crate::aws::sns::TopicCreation;
use crate::aws::{AwsError, ControllerAws};
use crate::reconcile::outcome::Notice;
use crate::resources::alarm_policy::{AlarmStatus, EventRuleStatus, MetricFilterStatus};

use super::observe;
use super::plan::{Action, ObservedTopic, TopicAction};

/// How many alarm or rule writes run at once; the per-API rate limit still applies.
const CONCURRENCY: usize = 8;

/// What an execution applied.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    /// Alarms of the policy as they now are, in spec order.
    pub alarms: Vec<AlarmStatus>,
    /// Composite alarms of the policy as they now are, in spec order.
    pub composites: Vec<AlarmStatus>,
    /// Rules of the policy as they now are, in spec order.
    pub rules: Vec<EventRuleStatus>,
    /// Metric filters of the policy's log alarms as they now are, in spec order.
    pub filters: Vec<MetricFilterStatus>,
    /// What happened, for Events.
    pub notices: Vec<Notice>,
}

/// Creates the topic and reads it back: CreateTopic returns an existing topic of the same name as
/// if it were new, so ownership is decided on the tags read back.
pub async fn create_topic(
    aws: &dyn ControllerAws,
    action: &TopicAction,
) -> Result<ObservedTopic, AwsError> {
    let TopicAction::Create { name, tags } = action else {
        return Ok(ObservedTopic::Absent);
    };
    match aws.create_topic(name, tags).await? {
        TopicCreation::Arn(arn) => observe::present_topic(aws, &arn).await,
        TopicCreation::NameTaken => Ok(ObservedTopic::NameTaken),
    }
}

/// The existing topic of the name `action` would create, found by CreateTopic without tags (which
/// returns the ARN of an existing topic of that name), with its attributes and tags.
pub async fn find_topic(
    aws: &dyn ControllerAws,
    action: &TopicAction,
) -> Result<ObservedTopic, AwsError> {
    let TopicAction::Create { name, .. } = action else {
        return Ok(ObservedTopic::Absent);
    };
    match aws.create_topic(name, &Default::default()).await? {
        TopicCreation::Arn(arn) => observe::present_topic(aws, &arn).await,
        TopicCreation::NameTaken => Ok(ObservedTopic::NameTaken),
    }
}

/// Sets the topic's attributes and tags.
pub async fn topic(aws: &dyn ControllerAws, actions: &[TopicAction]) -> Result<(), AwsError> {
    for action in actions {
        match action {
            TopicAction::Create { .. } => {}
            TopicAction::SetAttribute { arn, name, value } => {
                aws.set_topic_attribute(arn, name, value).await?
            }
            TopicAction::Retag { arn, changes } => aws.change_topic_tags(arn, changes).await?,
        }
    }
    Ok(())
}

/// Applies the alarm and rule actions: alarm writes first (several at once), then composite
/// alarms in order (dropped ones deleted), then deletions of alarms, then rules in order. Created alarms get their ARN (and first state) from one more
/// listing, since PutMetricAlarm returns none.
pub async fn execute(
    aws: &dyn ControllerAws,
    alarm_prefix: &str,
    actions: &[Action],
) -> Result<Applied, AwsError> {
    let mut applied = Applied::default();
    let alarm_writes: Vec<&Action> = actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::CreateAlarm { .. }
                    | Action::UpdateAlarm { .. }
                    | Action::AdoptAlarm { .. }
                    | Action::KeepAlarm { .. }
            )
        })
        .collect();
    // Boxed so the stream's item type names no closure lifetime (see `observe`).
    let alarm_writes: Vec<BoxFuture<'_, Result<AlarmStatus, AwsError>>> = alarm_writes
        .into_iter()
        .map(|action| Box::pin(apply_alarm(aws, action)) as BoxFuture<'_, _>)
        .collect();
    let mut alarms: Vec<AlarmStatus> = stream::iter(alarm_writes)
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    // Composites after the alarms their rules name (CloudWatch checks they exist), and dropped
    // composites before dropped alarms.
    let mut composites = Vec::new();
    for action in actions {
        match action {
            Action::CreateComposite {
                record,
                definition,
                tags,
            } => {
                aws.put_composite(definition, Some(tags)).await?;
                composites.push(record.clone());
            }
            Action::UpdateComposite {
                record,
                definition,
                tags,
                ..
            } => {
                if let (Some(arn), false) = (&record.arn, tags.is_empty()) {
                    aws.change_alarm_tags(arn, tags).await?;
                }
                if let Some((definition, _)) = definition {
                    aws.put_composite(definition, None).await?;
                }
                composites.push(record.clone());
            }
            Action::KeepComposite { record } => composites.push(record.clone()),
            Action::DeleteComposites { names } => aws.delete_alarms(names).await?,
            _ => {}
        }
    }
    if alarms.iter().chain(&composites).any(|a| a.arn.is_none()) {
        let listed = aws.alarm_listing(alarm_prefix).await?;
        for alarm in alarms.iter_mut().filter(|a| a.arn.is_none()) {
            if let Some(listed) = listed
                .metric
                .iter()
                .find(|l| l.definition.alarm_name == alarm.alarm_name)
            {
                alarm.arn = listed.arn.clone();
                super::plan::record_state(alarm, listed);
            }
        }
        for composite in composites.iter_mut().filter(|a| a.arn.is_none()) {
            if let Some(listed) = listed
                .composite
                .iter()
                .find(|l| l.definition.alarm_name == composite.alarm_name)
            {
                composite.arn = listed.arn.clone();
                super::plan::record_state_of(
                    composite,
                    &listed.state,
                    &listed.state_reason,
                    listed.state_changed_at,
                );
            }
        }
    }
    applied.alarms = alarms;
    applied.composites = composites;

    for action in actions {
        match action {
            Action::DeleteAlarms { names } => aws.delete_alarms(names).await?,
            Action::CreateRule {
                record,
                definition,
                tags,
                target,
            } => {
                let arn = aws.put_rule(definition, Some(tags)).await?;
                aws.put_target(&definition.rule_name, target).await?;
                applied.rules.push(EventRuleStatus {
                    arn: Some(arn),
                    ..record.clone()
                });
            }
            Action::UpdateRule {
                record,
                definition,
                tags,
                target,
            }
            | Action::AdoptRule {
                record,
                definition,
                tags,
                target,
            } => {
                if let (Some(arn), false) = (&record.arn, tags.is_empty()) {
                    aws.change_rule_tags(arn, tags).await?;
                }
                if let Some((definition, _)) = definition {
                    aws.put_rule(definition, None).await?;
                }
                if let Some(target) = target {
                    aws.put_target(&record.rule_name, target).await?;
                }
                applied.rules.push(record.clone());
            }
            Action::KeepRule { record } => applied.rules.push(record.clone()),
            Action::DeleteRule { name, target_ids } => delete_rule(aws, name, target_ids).await?,
            Action::CreateFilter { record, definition }
            | Action::UpdateFilter {
                record, definition, ..
            } => {
                aws.put_metric_filter(definition).await?;
                applied.filters.push(record.clone());
            }
            Action::KeepFilter { record } => applied.filters.push(record.clone()),
            Action::DeleteFilter { log_group, name } => {
                aws.delete_metric_filter(log_group, name).await?
            }
            Action::DeleteTopic { arn } => aws.delete_topic(arn).await?,
            _ => continue,
        }
    }
    applied.notices = actions.iter().filter_map(Action::notice).collect();
    tracing::debug!(
        writes = actions.iter().filter(|a| a.is_write()).count(),
        "applied the alarm policy's plan"
    );
    Ok(applied)
}

async fn apply_alarm(aws: &dyn ControllerAws, action: &Action) -> Result<AlarmStatus, AwsError> {
    match action {
        Action::CreateAlarm {
            record,
            definition,
            tags,
        } => {
            aws.put_alarm(definition, Some(tags)).await?;
            Ok(record.clone())
        }
        Action::UpdateAlarm {
            record,
            definition,
            tags,
        }
        | Action::AdoptAlarm {
            record,
            definition,
            tags,
        } => {
            if let (Some(arn), false) = (&record.arn, tags.is_empty()) {
                aws.change_alarm_tags(arn, tags).await?;
            }
            if let Some((definition, _)) = definition {
                // PutMetricAlarm replaces the whole definition; tags went through TagResource.
                aws.put_alarm(definition, None).await?;
            }
            Ok(record.clone())
        }
        Action::KeepAlarm { record } => Ok(record.clone()),
        _ => unreachable!("only alarm writes are passed here"),
    }
}

/// Removes the rule's targets (listed when not given), then the rule.
async fn delete_rule(
    aws: &dyn ControllerAws,
    name: &str,
    target_ids: &[String],
) -> Result<(), AwsError> {
    let ids = if target_ids.is_empty() {
        match aws.rule_targets(name).await? {
            Some(targets) => targets.into_iter().map(|t| t.id).collect(),
            None => return Ok(()),
        }
    } else {
        target_ids.to_vec()
    };
    aws.remove_targets(name, &ids).await?;
    aws.delete_rule(name).await
}
