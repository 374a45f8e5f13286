//! The reads of `alertops plan` and the controller's own planning over them: for each resource of
//! the manifests, the same desired state, the same observation and the same plan functions the
//! reconcilers run, minus the writes. Where the controller would write before planning further
//! (create the policy's topic, create a queue), the rest is planned against the resource as AWS
//! would report it right after that creation.
//!
//! Only reads go through the gateway here; `super::plan_with` checks the call log afterwards.

use std::collections::{BTreeSet, HashMap};

use crate::aws::sns::{RAW_MESSAGE_DELIVERY, topic_name};
use crate::aws::{AwsError, ControllerAws};
use crate::names::OwnerIdentity;
use crate::reconcile::OperatorSettings;
use crate::reconcile::alarm_policy::desired::{self, DesiredTopic};
use crate::reconcile::alarm_policy::plan::{
    self as policy_plan, ADOPT_ANNOTATION, Action, ObservedTopic, Recorded, TopicAction, TopicPlan,
};
use crate::reconcile::alarm_policy::{self, observe};
use crate::reconcile::outcome::Blocker;
use crate::reconcile::queues::execute::observe_queue;
use crate::reconcile::queues::plan::{self as queue_plan, Creation, Observed as QueuesObserved};
use crate::reconcile::queues::{
    self, DEAD_LETTER_SUFFIX, QUEUE_SUFFIX, QueueConfig, REASON_SOURCE_NOT_READY, arn_matches,
    dead_letter_attributes, queue_attributes,
};
use crate::reconcile::{REASON_NAMESPACE_NOT_ALLOWED, alert_route, digest_schedule};
use crate::resources::{AlarmPolicy, AlertRoute, DigestSchedule, SourceRef, SubscriptionStatus};

use super::changes::{
    NEW_QUEUE_PREFIX, new_topic_arn, policy_changes, queue_after_creation, queue_changes,
    queue_created, queue_kept, subscription_name, topic_change,
};
use super::report::{Blocked, ChangeAction, PlanReport, ResourceChange, ResourceType};

/// The alertops resources of the manifests, namespaces filled in, already validated.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    /// AlarmPolicies.
    pub policies: Vec<AlarmPolicy>,
    /// AlertRoutes.
    pub routes: Vec<AlertRoute>,
    /// DigestSchedules with the queue settings their schedule gives.
    pub digests: Vec<(DigestSchedule, QueueConfig)>,
}

/// What a route or digest may subscribe to from an AlarmPolicy of the manifests.
#[derive(Clone, Debug)]
enum PolicyTopic {
    /// The topic exists.
    Exists(String),
    /// The controller would create the topic of this name first.
    Pending(String),
    /// The policy is blocked and would get no topic.
    None,
    /// The policy is not in the manifests and has no topic of its own in AWS (or `--prune`
    /// takes it as deleted), for this reason.
    Missing(&'static str),
}

/// The topic of an AlarmPolicy that the manifests do not declare: found by its derived name and
/// taken only when tagged as that policy's.
async fn undeclared_policy_topic(
    aws: &dyn ControllerAws,
    settings: &OperatorSettings,
    namespace: &str,
    policy: &str,
) -> Result<PolicyTopic, AwsError> {
    let owner = OwnerIdentity::new(&settings.cluster_id, alarm_policy::KIND, namespace, policy);
    let Some(arn) = find_topic(aws, &owner.topic_name()).await? else {
        return Ok(PolicyTopic::Missing(
            "is in none of the manifests and has no SNS topic in AWS",
        ));
    };
    Ok(if owner.owns(&aws.topic_tags(&arn).await?) {
        PolicyTopic::Exists(arn)
    } else {
        PolicyTopic::Missing("is in none of the manifests and no SNS topic in AWS is tagged as its")
    })
}

/// Plans every resource of `manifests`, policies first (routes and digests subscribe to their
/// topics), as the controller would on a fresh reconcile.
///
/// A source AlarmPolicy that is not among the manifests is taken to exist in the cluster (a
/// folder may hold part of a namespace): its topic is looked up by its derived name, as the
/// controller would read it from the policy's status. With `prune` it counts as deleted.
pub async fn plan(
    aws: &dyn ControllerAws,
    settings: &OperatorSettings,
    manifests: &Manifests,
    prune: bool,
) -> Result<PlanReport, AwsError> {
    let mut report = PlanReport {
        cluster_id: settings.cluster_id.clone(),
        ..PlanReport::default()
    };
    let mut topics = HashMap::new();
    let scope = Scope {
        aws,
        settings,
        prune,
    };
    for policy in &manifests.policies {
        let (namespace, name) = identity(policy);
        let topic = plan_policy(aws, settings, policy, &mut report).await?;
        topics.insert((namespace, name), topic);
    }
    for route in &manifests.routes {
        let (namespace, name) = identity(route);
        let owner = OwnerIdentity::new(&settings.cluster_id, alert_route::KIND, &namespace, &name);
        let config = alert_route::queue_config(&route.spec, settings.slack_outage_tolerance);
        plan_queues(
            &scope,
            &owner,
            &route.spec.sources,
            &config,
            &mut topics,
            &mut report,
        )
        .await?;
    }
    for (digest, config) in &manifests.digests {
        let (namespace, name) = identity(digest);
        let owner = OwnerIdentity::new(
            &settings.cluster_id,
            digest_schedule::KIND,
            &namespace,
            &name,
        );
        plan_queues(
            &scope,
            &owner,
            &digest.spec.sources,
            config,
            &mut topics,
            &mut report,
        )
        .await?;
    }
    Ok(report)
}

fn identity<K: kube::Resource>(obj: &K) -> (String, String) {
    (
        obj.meta().namespace.clone().unwrap_or_default(),
        obj.meta().name.clone().unwrap_or_default(),
    )
}

fn blocked(report: &mut PlanReport, owner: &OwnerIdentity, reason: &str, message: String) {
    report.blocked.push(Blocked {
        owner: owner.owner_tag(),
        reason: reason.to_string(),
        message,
    });
}

fn blocker(report: &mut PlanReport, owner: &OwnerIdentity, blocker: &Blocker) {
    blocked(report, owner, blocker.reason, blocker.message.clone());
}

/// Our topic of `name`, found by listing (CreateTopic, which the controller uses to find it, is
/// a write).
async fn find_topic(aws: &dyn ControllerAws, name: &str) -> Result<Option<String>, AwsError> {
    Ok(aws
        .topics_with_prefix(name)
        .await?
        .into_iter()
        .find(|arn| topic_name(arn) == name))
}

async fn plan_policy(
    aws: &dyn ControllerAws,
    settings: &OperatorSettings,
    policy: &AlarmPolicy,
    report: &mut PlanReport,
) -> Result<PolicyTopic, AwsError> {
    let (namespace, name) = identity(policy);
    let owner = OwnerIdentity::new(&settings.cluster_id, alarm_policy::KIND, &namespace, &name);
    let label = owner.owner_tag();
    let adopt = policy
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ADOPT_ANNOTATION))
        .is_some_and(|v| v == "true");
    // No status: as after a lost status, the topic is found by its name and ownership is
    // decided by tags alone.
    let recorded = Recorded::default();
    let (topic, topic_tags) = desired::topic(&policy.spec, &owner);
    let observed_topic = match &topic {
        DesiredTopic::Existing { .. } => observe::topic(aws, &topic, &recorded).await?,
        DesiredTopic::Owned { name, .. } => match find_topic(aws, name).await? {
            Some(arn) => observe::present_topic(aws, &arn).await?,
            None => ObservedTopic::Absent,
        },
    };
    let topic_plan = policy_plan::plan_topic(&topic, &topic_tags, &observed_topic, &owner, adopt);
    let (topic_arn, source, after_creation) = match &topic_plan {
        TopicPlan::Create(TopicAction::Create { name, .. }) => {
            let arn = new_topic_arn(name);
            let created = ObservedTopic::Present {
                arn: arn.clone(),
                tags: topic_tags.clone(),
                attributes: HashMap::new(),
            };
            let after = policy_plan::plan_topic(&topic, &topic_tags, &created, &owner, adopt);
            (arn, PolicyTopic::Pending(name.clone()), Some(after))
        }
        TopicPlan::Create(_) => (String::new(), PolicyTopic::None, None),
        TopicPlan::Ready { arn, .. } => (arn.clone(), PolicyTopic::Exists(arn.clone()), None),
        TopicPlan::Blocked(b) => {
            report
                .resources
                .extend(topic_change(&label, &topic_plan, &observed_topic, None));
            blocker(report, &owner, b);
            return Ok(PolicyTopic::None);
        }
    };
    report.resources.extend(topic_change(
        &label,
        &topic_plan,
        &observed_topic,
        after_creation.as_ref(),
    ));

    let desired = desired::build(&policy.spec, &owner, &topic_arn);
    let observed = observe::alarms_and_rules(
        aws,
        &owner,
        &desired.alarms,
        &desired.composites,
        &desired.rules,
        &desired.filters,
        &recorded,
    )
    .await?;
    let actions = policy_plan::plan(&desired, &topic_arn, &observed, &recorded, &owner, adopt);
    report
        .resources
        .extend(policy_changes(&label, &actions, &observed));
    for b in actions.iter().filter_map(Action::blocker) {
        blocker(report, &owner, &b);
    }
    Ok(source)
}

/// The sources of a route or digest: topics to subscribe to, topics of policies that are still
/// to be created, and what is not ready or not allowed.
#[derive(Default)]
struct Sources {
    topics: BTreeSet<String>,
    pending: Vec<(String, String)>,
    not_ready: Vec<String>,
    not_allowed: Vec<String>,
}

/// As [`queues::resolve_sources`], with the AlarmPolicies of the manifests in place of the
/// cluster's (their topics as the plan found them).
fn resolve(
    namespace: &str,
    sources: &[SourceRef],
    policies: &HashMap<(String, String), PolicyTopic>,
    allowed_topics: Option<&[String]>,
) -> Sources {
    let mut out = Sources::default();
    for source in sources {
        match (&source.alarm_policy, &source.topic_arn) {
            (Some(policy), _) => match policies.get(&(namespace.to_string(), policy.clone())) {
                Some(PolicyTopic::Exists(arn)) => {
                    out.topics.insert(arn.clone());
                }
                Some(PolicyTopic::Pending(topic)) => {
                    out.pending.push((policy.clone(), topic.clone()))
                }
                Some(PolicyTopic::None) => out.not_ready.push(format!(
                    "AlarmPolicy {namespace}/{policy} would have no SNS topic (see its own entry)"
                )),
                Some(PolicyTopic::Missing(why)) => out
                    .not_ready
                    .push(format!("AlarmPolicy {namespace}/{policy} {why}")),
                None => out.not_ready.push(format!(
                    "AlarmPolicy {namespace}/{policy} is not among the manifests planned"
                )),
            },
            (None, Some(arn)) => {
                if allowed_topics
                    .is_none_or(|patterns| patterns.iter().any(|p| arn_matches(p, arn)))
                {
                    out.topics.insert(arn.clone());
                } else {
                    out.not_allowed.push(arn.clone());
                }
            }
            (None, None) => out
                .not_ready
                .push("a source names neither alarmPolicy nor topicArn".to_string()),
        }
    }
    out
}

/// What every resource's plan reads with.
#[derive(Clone, Copy)]
struct Scope<'a> {
    aws: &'a dyn ControllerAws,
    settings: &'a OperatorSettings,
    /// Whether resources missing from the manifests count as deleted.
    prune: bool,
}

/// The queue pair and subscriptions of a route or digest.
async fn plan_queues(
    scope: &Scope<'_>,
    owner: &OwnerIdentity,
    sources: &[SourceRef],
    config: &QueueConfig,
    policies: &mut HashMap<(String, String), PolicyTopic>,
    report: &mut PlanReport,
) -> Result<(), AwsError> {
    let Scope {
        aws,
        settings,
        prune,
    } = *scope;
    let label = owner.owner_tag();
    if let Some(message) = settings.namespace_refusal(&owner.namespace) {
        blocked(report, owner, REASON_NAMESPACE_NOT_ALLOWED, message);
        return Ok(());
    }
    for policy in sources.iter().filter_map(|s| s.alarm_policy.as_ref()) {
        let key = (owner.namespace.clone(), policy.clone());
        if policies.contains_key(&key) {
            continue;
        }
        let topic = if prune {
            PolicyTopic::Missing("is in none of the manifests (--prune: taken as deleted)")
        } else {
            undeclared_policy_topic(aws, settings, &owner.namespace, policy).await?
        };
        policies.insert(key, topic);
    }
    let sources = resolve(
        &owner.namespace,
        sources,
        policies,
        settings.allowed_source_topics.as_deref(),
    );
    if !sources.not_allowed.is_empty() {
        let (reason, message) = queues::not_allowed_condition(&sources.not_allowed);
        blocked(report, owner, reason, message);
        return Ok(());
    }
    let tags = owner.ownership_tags();

    let dead_letter_name = owner.queue_name(DEAD_LETTER_SUFFIX);
    let observed = observe_queue(aws, owner, &dead_letter_name).await?;
    let dead_letter = match queue_plan::plan_creation(
        &dead_letter_name,
        &observed,
        dead_letter_attributes(),
        &tags,
    ) {
        Creation::Present => {
            report.resources.push(queue_kept(&label, &dead_letter_name));
            observed
        }
        Creation::Create {
            name, attributes, ..
        } => {
            report
                .resources
                .push(queue_created(&label, &name, &attributes));
            queue_after_creation(&name, &attributes)
        }
        Creation::Blocked(b) => {
            report
                .resources
                .push(not_owned_queue(&label, &dead_letter_name, &b));
            blocker(report, owner, &b);
            return Ok(());
        }
    };
    let dead_letter_arn = dead_letter.arn().unwrap_or_default().to_string();

    let name = owner.queue_name(QUEUE_SUFFIX);
    let observed = observe_queue(aws, owner, &name).await?;
    let queue = match queue_plan::plan_creation(
        &name,
        &observed,
        queue_attributes(config, &dead_letter_arn, None),
        &tags,
    ) {
        Creation::Present => {
            report.resources.push(queue_kept(&label, &name));
            observed
        }
        Creation::Create {
            name, attributes, ..
        } => {
            report
                .resources
                .push(queue_created(&label, &name, &attributes));
            queue_after_creation(&name, &attributes)
        }
        Creation::Blocked(b) => {
            report.resources.push(not_owned_queue(&label, &name, &b));
            blocker(report, owner, &b);
            return Ok(());
        }
    };
    let queue_arn = queue.arn().unwrap_or_default().to_string();

    let mut observed = QueuesObserved {
        dead_letter,
        queue,
        topics: Default::default(),
        raw_delivery: Default::default(),
        recorded_endpoints: Default::default(),
    };
    for topic in &sources.topics {
        let subscriptions = aws.topic_subscriptions(topic).await?;
        observed.topics.insert(topic.clone(), subscriptions);
        if let Some(arn) = observed.our_subscription(topic).map(str::to_string) {
            let raw = aws
                .subscription_attributes(&arn)
                .await?
                .get(RAW_MESSAGE_DELIVERY)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            observed.raw_delivery.insert(arn, raw);
        }
    }
    // No status: the queue's own subscriptions to topics that are no longer sources stand for
    // the ones the controller recorded (only the controller subscribes our queues).
    let mut recorded = Vec::new();
    if !queue_arn.starts_with(NEW_QUEUE_PREFIX) {
        for subscription in aws.subscriptions_to(&queue_arn).await? {
            if subscription.protocol != "sqs" || sources.topics.contains(&subscription.topic_arn) {
                continue;
            }
            let Some(arn) = subscription.arn.filter(|a| a.starts_with("arn:")) else {
                continue;
            };
            observed
                .recorded_endpoints
                .insert(arn.clone(), subscription.endpoint.clone());
            recorded.push(SubscriptionStatus {
                topic_arn: subscription.topic_arn,
                subscription_arn: arn,
            });
        }
    }
    let topic_arns: Vec<String> = sources.topics.iter().cloned().collect();
    let planned = queue_plan::plan(config, &topic_arns, &observed, &recorded);
    queue_changes(&label, &planned.actions, &observed, &mut report.resources);
    for (policy, topic) in &sources.pending {
        let name = subscription_name(topic, &queue_arn);
        report.resources.push(ResourceChange {
            owner: label.clone(),
            resource_type: ResourceType::SnsSubscription,
            name: name.clone(),
            action: ChangeAction::Create,
            fields: Vec::new(),
            reason: format!(
                "subscribe {name} once AlarmPolicy {}/{policy} has created its topic (the \
                 queue policy then admits it too)",
                owner.namespace
            ),
        });
    }
    let mut not_ready = sources.not_ready;
    not_ready.extend(planned.unreachable_topics.iter().map(|topic| {
        format!("SNS topic {topic} does not exist or is not visible to the operator's role")
    }));
    if !not_ready.is_empty() {
        blocked(report, owner, REASON_SOURCE_NOT_READY, not_ready.join("; "));
    }
    Ok(())
}

fn not_owned_queue(owner: &str, name: &str, blocker: &Blocker) -> ResourceChange {
    ResourceChange {
        owner: owner.to_string(),
        resource_type: ResourceType::SqsQueue,
        name: name.to_string(),
        action: ChangeAction::NotOwned,
        fields: Vec::new(),
        reason: blocker.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::aws::CloudWatchAlarms;
    use crate::aws::fake::FakeAws;
    use crate::resources::Tags;

    fn policy(annotations: serde_json::Value) -> AlarmPolicy {
        serde_json::from_value(json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlarmPolicy",
            "metadata": {"name": "elb", "namespace": "team-a", "annotations": annotations},
            "spec": {"alarms": [{
                "name": "errors",
                "metric": {"namespace": "AWS/ELB", "name": "BackendConnectionErrors",
                           "statistic": "Sum"},
                "period": 60, "evaluationPeriods": 5, "threshold": 1,
                "comparison": "GreaterThanThreshold", "treatMissingData": "notBreaching"
            }]}
        }))
        .unwrap()
    }

    fn route(namespace: &str, source: serde_json::Value) -> AlertRoute {
        serde_json::from_value(json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
            "metadata": {"name": "r", "namespace": namespace},
            "spec": {"sources": [source],
                     "slack": {"webhookSecretRef": {"name": "slack", "key": "url"}}}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn refused_routes_plan_nothing_in_aws_and_say_why() {
        let aws = FakeAws::new();
        let mut settings = OperatorSettings::new("prod");
        settings.allowed_namespaces = Some(["team-a".to_string()].into());
        settings.allowed_source_topics = Some(Vec::new());
        let manifests = Manifests {
            routes: vec![
                route("team-b", json!({"alarmPolicy": "elb"})),
                route(
                    "team-a",
                    json!({"topicArn": "arn:aws:sns:us-east-1:123456789012:shared"}),
                ),
            ],
            ..Manifests::default()
        };
        let report = plan(&aws, &settings, &manifests, false).await.unwrap();
        assert!(report.resources.is_empty(), "{report:#?}");
        let reasons: Vec<&str> = report.blocked.iter().map(|b| b.reason.as_str()).collect();
        assert_eq!(reasons, vec!["NamespaceNotAllowed", "SourceNotAllowed"]);
        assert!(aws.calls().is_empty(), "{:?}", aws.calls());
    }

    #[tokio::test]
    async fn an_alarm_without_our_tags_is_adopted_only_when_the_policy_opts_in() {
        let aws = FakeAws::new();
        let settings = OperatorSettings::new("prod");
        let owner = OwnerIdentity::new("prod", alarm_policy::KIND, "team-a", "elb");
        let desired = desired::build(&policy(json!({})).spec, &owner, "arn:t");
        aws.put_alarm(
            &desired.alarms[0].definition,
            Some(&Tags::from([("Team".into(), "web".into())])),
        )
        .await
        .unwrap();
        let alarm = owner.alarm_name("errors");
        let planned = |annotations| {
            let manifests = Manifests {
                policies: vec![policy(annotations)],
                ..Manifests::default()
            };
            let (aws, settings) = (aws.clone(), settings.clone());
            async move { plan(&aws, &settings, &manifests, false).await.unwrap() }
        };

        let report = planned(json!({})).await;
        let found = report.resources.iter().find(|r| r.name == alarm).unwrap();
        assert_eq!(found.action, ChangeAction::NotOwned);
        assert_eq!(report.blocked[0].reason, "AlarmNotOwned");

        let report = planned(json!({ADOPT_ANNOTATION: "true"})).await;
        let found = report.resources.iter().find(|r| r.name == alarm).unwrap();
        assert_eq!(found.action, ChangeAction::Adopt, "{found:#?}");
        let owner_tag = found
            .fields
            .iter()
            .find(|f| f.field == "tags.alertops.dev/owner")
            .expect("our ownership tag is added");
        assert_eq!(owner_tag.old, serde_json::Value::Null);
        assert_eq!(owner_tag.new, json!("AlarmPolicy/team-a/elb"));
        let team = found
            .fields
            .iter()
            .find(|f| f.field == "tags.Team")
            .unwrap();
        assert_eq!(
            (team.old.clone(), team.new.clone()),
            (json!("web"), json!(null))
        );
        assert!(report.blocked.is_empty(), "{:?}", report.blocked);
    }
}
