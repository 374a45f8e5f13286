//! The reads an AlarmPolicy's plan needs: the topic, the alarms and rules under the policy's
//! prefixes (one paged listing each; rules only when the spec or the status has some), and only
//! the tags and targets the plan asks for. In the controller these read through the cluster-wide
//! [`crate::aws::Inventory`], so a resync lists each kind once for every policy; a one-shot run
//! may pass the gateway itself.

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt, stream};

use crate::aws::eventbridge::RuleTarget;
use crate::aws::{AwsError, ControllerAws};
use crate::names::OwnerIdentity;
use crate::resources::Tags;

use crate::aws::log_filters::FilterListing;

use super::desired::{DesiredAlarm, DesiredComposite, DesiredFilter, DesiredRule, DesiredTopic};
use super::plan::{Observed, ObservedTopic, Recorded, TagReads, tag_reads};

/// A rule's name and its targets.
type RuleTargets = (String, Vec<RuleTarget>);

/// How many tag or target reads run at once; the per-API rate limit still applies.
const CONCURRENCY: usize = 8;

/// The topic: a referenced one is checked to exist; our own is looked up by the ARN the status
/// recorded (a recorded ARN that still exists saves CreateTopic, a write, on every resync).
pub async fn topic(
    aws: &dyn ControllerAws,
    desired: &DesiredTopic,
    recorded: &Recorded,
) -> Result<ObservedTopic, AwsError> {
    match desired {
        DesiredTopic::Existing { arn } => Ok(ObservedTopic::Referenced {
            arn: arn.clone(),
            exists: aws.topic_exists(arn).await?,
        }),
        DesiredTopic::Owned { .. } => match &recorded.topic_arn {
            Some(arn) => present_topic(aws, arn).await,
            None => Ok(ObservedTopic::Absent),
        },
    }
}

/// The topic at `arn` with its attributes and tags, or [`ObservedTopic::Absent`] when gone.
pub async fn present_topic(aws: &dyn ControllerAws, arn: &str) -> Result<ObservedTopic, AwsError> {
    let attributes = match aws.topic_attributes(arn).await {
        Ok(attributes) => attributes,
        Err(e) if e.is_not_found() => return Ok(ObservedTopic::Absent),
        Err(e) => return Err(e),
    };
    Ok(ObservedTopic::Present {
        arn: arn.to_string(),
        tags: aws.topic_tags(arn).await?,
        attributes,
    })
}

/// Alarms and rules under the policy's prefixes, with the tags [`tag_reads`] names and the
/// targets of the desired rules that exist.
pub async fn alarms_and_rules(
    aws: &dyn ControllerAws,
    owner: &OwnerIdentity,
    alarms: &[DesiredAlarm],
    composites: &[DesiredComposite],
    rules: &[DesiredRule],
    filters: &[DesiredFilter],
    recorded: &Recorded,
) -> Result<Observed, AwsError> {
    // A policy without rules, in its spec or its status, has none to keep or delete: most
    // policies are alarms only, and this saves a listing per resync.
    let with_rules = !rules.is_empty() || !recorded.rules.is_empty();
    let mut observed = listings(aws, owner, with_rules).await?;
    let reads = tag_reads(alarms, composites, rules, &observed, recorded);
    read_tags(aws, &reads, &mut observed).await?;
    let existing: Vec<&str> = rules
        .iter()
        .map(|r| r.definition.rule_name.as_str())
        .filter(|name| observed.rules.contains_key(*name))
        .collect();
    let reads: Vec<BoxFuture<'_, Result<RuleTargets, AwsError>>> = existing
        .into_iter()
        .map(|name| {
            Box::pin(async move {
                let targets = aws.rule_targets(name).await?.unwrap_or_default();
                Ok((name.to_string(), targets))
            }) as BoxFuture<'_, _>
        })
        .collect();
    let targets: Vec<RuleTargets> = stream::iter(reads)
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    observed.rule_targets.extend(targets);
    let groups = Observed::log_groups_to_list(filters, recorded);
    observed.log_groups = log_groups(aws, owner, &groups).await?;
    Ok(observed)
}

/// Our metric filters in each of `groups` (`None` for a group that does not exist): one
/// DescribeMetricFilters listing per log group, under the policy's prefix, so filters of any
/// other name are never seen. There is no account-wide listing of metric filters by name prefix
/// to share across policies, so this is per policy and per group.
async fn log_groups(
    aws: &dyn ControllerAws,
    owner: &OwnerIdentity,
    groups: &[String],
) -> Result<super::plan::ObservedLogGroups, AwsError> {
    let prefix = owner.alarm_prefix();
    let mut out = super::plan::ObservedLogGroups::new();
    for group in groups {
        let listed = match aws.metric_filters(group, &prefix).await? {
            // Keyed by name: AWS lists a name once (the emulator may list a replaced filter
            // twice, oldest first; the newest wins).
            FilterListing::Filters(filters) => Some(
                filters
                    .into_iter()
                    .map(|f| (f.filter_name.clone(), f))
                    .collect(),
            ),
            FilterListing::LogGroupNotFound => None,
        };
        out.insert(group.clone(), listed);
    }
    Ok(out)
}

/// What a deletion needs: the listings and the tags of what the status did not record.
pub async fn leftovers(
    aws: &dyn ControllerAws,
    owner: &OwnerIdentity,
    recorded: &Recorded,
) -> Result<Observed, AwsError> {
    let mut observed = listings(aws, owner, true).await?;
    let reads = super::plan::deletion_tag_reads(&observed, recorded);
    read_tags(aws, &reads, &mut observed).await?;
    let groups = Observed::log_groups_to_list(&[], recorded);
    observed.log_groups = log_groups(aws, owner, &groups).await?;
    Ok(observed)
}

async fn listings(
    aws: &dyn ControllerAws,
    owner: &OwnerIdentity,
    with_rules: bool,
) -> Result<Observed, AwsError> {
    // Composite alarms come in the same DescribeAlarms pages as the metric alarms.
    let listing = aws.alarm_listing(&owner.alarm_prefix()).await?;
    let rules = if with_rules {
        aws.rules_with_prefix(&owner.rule_prefix()).await?
    } else {
        Vec::new()
    };
    Ok(Observed {
        alarms: listing
            .metric
            .into_iter()
            .map(|a| (a.definition.alarm_name.clone(), a))
            .collect(),
        composites: listing
            .composite
            .into_iter()
            .map(|c| (c.definition.alarm_name.clone(), c))
            .collect(),
        rules: rules
            .into_iter()
            .map(|r| (r.definition.rule_name.clone(), r))
            .collect(),
        ..Observed::default()
    })
}

async fn read_tags(
    aws: &dyn ControllerAws,
    reads: &TagReads,
    observed: &mut Observed,
) -> Result<(), AwsError> {
    // Boxed so the stream's item type names no closure lifetime (kube-runtime needs Send futures,
    // and a borrowing closure in a stream trips the compiler's lifetime inference).
    let alarm_reads: Vec<BoxFuture<'_, Result<(String, Tags), AwsError>>> = reads
        .alarms
        .iter()
        .map(|(name, arn)| {
            Box::pin(async move { Ok((name.clone(), aws.alarm_tags(arn).await?)) })
                as BoxFuture<'_, _>
        })
        .collect();
    let alarm_tags: Vec<(String, Tags)> = stream::iter(alarm_reads)
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    observed.alarm_tags.extend(alarm_tags);
    let rule_reads: Vec<BoxFuture<'_, Result<(String, Tags), AwsError>>> = reads
        .rules
        .iter()
        .map(|(name, arn)| {
            Box::pin(async move { Ok((name.clone(), aws.rule_tags(arn).await?)) })
                as BoxFuture<'_, _>
        })
        .collect();
    let rule_tags: Vec<(String, Tags)> = stream::iter(rule_reads)
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    observed.rule_tags.extend(rule_tags);
    Ok(())
}
