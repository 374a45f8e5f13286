//! `alertops plan --prune`: the AWS resources of alertops resources that none of the manifests
//! declares, shown as deletions. Safe by scope and by tags:
//!
//! - only the namespaces the manifests use are looked at (a folder for one team never reports
//!   another team's resources);
//! - only resources carrying this cluster's `alertops.dev/cluster` tag and an
//!   `alertops.dev/owner` tag naming a resource of such a namespace that is missing from the
//!   manifests are reported (names only narrow the listings; tags decide);
//! - they are deleted only when that resource is deleted from the cluster with
//!   `deletionPolicy: Delete` (the default); `Retain` keeps them. The folder cannot tell which,
//!   so the reason says so.
//!
//! Listings: alarms by the namespace's name prefix, topics and queues by theirs, rules by the
//! common `ao.` prefix (rule names carry a hash, not the namespace), then one tag read per
//! resource not declared by the manifests.

use std::collections::BTreeSet;

use crate::aws::sns::topic_name;
use crate::aws::{AwsError, ControllerAws};
use crate::names::{OwnerIdentity, TAG_CLUSTER, TAG_OWNER};
use crate::reconcile::OperatorSettings;
use crate::reconcile::queues::{DEAD_LETTER_SUFFIX, QUEUE_SUFFIX};
use crate::reconcile::{alarm_policy, alert_route, digest_schedule};
use crate::resources::Tags;

use super::collect::Manifests;
use super::report::{ChangeAction, PlanReport, ResourceChange, ResourceType};

/// Queue names are at most 80 characters and shortened before their hash; listing by a prefix
/// this long finds them however long the namespace (tags then decide).
const QUEUE_PREFIX_LENGTH: usize = 60;

/// What the manifests declare, as owner identities.
struct Declared {
    cluster_id: String,
    owners: Vec<OwnerIdentity>,
    namespaces: BTreeSet<String>,
}

impl Declared {
    fn new(settings: &OperatorSettings, manifests: &Manifests) -> Self {
        let mut owners = Vec::new();
        let mut add = |kind: &'static str, meta: &kube::api::ObjectMeta| {
            owners.push(OwnerIdentity::new(
                &settings.cluster_id,
                kind,
                meta.namespace.as_deref().unwrap_or_default(),
                meta.name.as_deref().unwrap_or_default(),
            ))
        };
        for policy in &manifests.policies {
            add(alarm_policy::KIND, &policy.metadata);
        }
        for route in &manifests.routes {
            add(alert_route::KIND, &route.metadata);
        }
        for (digest, _) in &manifests.digests {
            add(digest_schedule::KIND, &digest.metadata);
        }
        let namespaces = owners.iter().map(|o| o.namespace.clone()).collect();
        Declared {
            cluster_id: settings.cluster_id.clone(),
            owners,
            namespaces,
        }
    }

    /// The owner named by `tags` when it is one of `kinds`, of this cluster, in a namespace in
    /// scope, and not declared by the manifests.
    fn missing_owner(&self, tags: &Tags, kinds: &[&str]) -> Option<String> {
        if tags.get(TAG_CLUSTER) != Some(&self.cluster_id) {
            return None;
        }
        let owner = tags.get(TAG_OWNER)?;
        let mut parts = owner.splitn(3, '/');
        let (kind, namespace, _) = (parts.next()?, parts.next()?, parts.next()?);
        let in_scope = kinds.contains(&kind) && self.namespaces.contains(namespace);
        let declared = self.owners.iter().any(|o| &o.owner_tag() == owner);
        (in_scope && !declared).then(|| owner.clone())
    }

    fn policies(&self) -> impl Iterator<Item = &OwnerIdentity> {
        self.owners.iter().filter(|o| o.kind == alarm_policy::KIND)
    }
}

fn deletion(owner: String, resource_type: ResourceType, name: &str) -> ResourceChange {
    let reason = format!(
        "{owner} is in none of the manifests: deleted with it when it is deleted with \
         deletionPolicy Delete (Retain keeps it)"
    );
    ResourceChange {
        owner,
        resource_type,
        name: name.to_string(),
        action: ChangeAction::Delete,
        fields: Vec::new(),
        reason,
    }
}

/// Adds the deletions of undeclared owners' resources to `report`.
pub async fn plan(
    aws: &dyn ControllerAws,
    settings: &OperatorSettings,
    manifests: &Manifests,
    report: &mut PlanReport,
) -> Result<(), AwsError> {
    let declared = Declared::new(settings, manifests);
    let policy_kind = [alarm_policy::KIND];
    for namespace in &declared.namespaces {
        let prefix = format!("alertops/{}/{namespace}/", settings.cluster_id);
        for alarm in aws.alarms_with_prefix(&prefix).await? {
            let name = &alarm.definition.alarm_name;
            let planned = declared
                .policies()
                .any(|p| name.starts_with(&p.alarm_prefix()));
            let Some(arn) = alarm.arn.as_deref().filter(|_| !planned) else {
                continue;
            };
            if let Some(owner) = declared.missing_owner(&aws.alarm_tags(arn).await?, &policy_kind) {
                report
                    .resources
                    .push(deletion(owner, ResourceType::CloudWatchAlarm, name));
            }
        }

        let prefix = format!("alertops_{}_{namespace}_", settings.cluster_id);
        for arn in aws.topics_with_prefix(&prefix).await? {
            let name = topic_name(&arn);
            if declared.policies().any(|p| p.topic_name() == name) {
                continue;
            }
            if let Some(owner) = declared.missing_owner(&aws.topic_tags(&arn).await?, &policy_kind)
            {
                report
                    .resources
                    .push(deletion(owner, ResourceType::SnsTopic, name));
            }
        }

        let queue_prefix: String = prefix.chars().take(QUEUE_PREFIX_LENGTH).collect();
        for url in aws.queues_with_prefix(&queue_prefix).await? {
            let name = url.rsplit('/').next().unwrap_or(&url);
            let planned = declared.owners.iter().any(|o| {
                o.queue_name(QUEUE_SUFFIX) == name || o.queue_name(DEAD_LETTER_SUFFIX) == name
            });
            if planned {
                continue;
            }
            let kinds = [alert_route::KIND, digest_schedule::KIND];
            if let Some(owner) = declared.missing_owner(&aws.queue_tags(&url).await?, &kinds) {
                report.resources.push(deletion(
                    owner,
                    ResourceType::SqsQueue,
                    &format!("{name} (and its subscriptions)"),
                ));
            }
        }
    }

    if declared.namespaces.is_empty() {
        return Ok(());
    }
    for rule in aws.rules_with_prefix("ao.").await? {
        let name = &rule.definition.rule_name;
        if declared
            .policies()
            .any(|p| name.starts_with(&p.rule_prefix()))
        {
            continue;
        }
        if let Some(owner) = declared.missing_owner(&aws.rule_tags(&rule.arn).await?, &policy_kind)
        {
            report
                .resources
                .push(deletion(owner, ResourceType::EventBridgeRule, name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::aws::fake::FakeAws;
    use crate::resources::AlarmPolicy;

    fn policy(namespace: &str, name: &str) -> AlarmPolicy {
        serde_json::from_value(json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlarmPolicy",
            "metadata": {"name": name, "namespace": namespace},
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

    async fn reconciled(aws: &FakeAws, settings: &OperatorSettings, policy: AlarmPolicy) {
        let cluster = crate::k8s::MemoryCluster::new();
        let ctx = crate::reconcile::Context::new(cluster.clone(), aws.clone(), settings.clone());
        let (namespace, name) = (
            policy.metadata.namespace.clone(),
            policy.metadata.name.clone(),
        );
        cluster
            .apply_manifest(serde_json::to_value(&policy).unwrap())
            .unwrap();
        let stored: AlarmPolicy = cluster
            .object(namespace.as_deref().unwrap(), name.as_deref().unwrap())
            .unwrap()
            .unwrap();
        alarm_policy::reconcile(std::sync::Arc::new(stored), &ctx)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn only_undeclared_owners_of_the_namespaces_in_scope_are_deleted() {
        let aws = FakeAws::new();
        let settings = OperatorSettings::new("prod");
        reconciled(&aws, &settings, policy("team-a", "kept")).await;
        reconciled(&aws, &settings, policy("team-a", "gone")).await;
        reconciled(&aws, &settings, policy("team-b", "other-team")).await;
        let other_cluster = OperatorSettings::new("staging");
        reconciled(&aws, &other_cluster, policy("team-a", "gone")).await;

        let manifests = Manifests {
            policies: vec![policy("team-a", "kept")],
            ..Manifests::default()
        };
        let setup_calls = aws.calls().len();
        let mut report = PlanReport::default();
        plan(&aws, &settings, &manifests, &mut report)
            .await
            .unwrap();
        let deleted: Vec<(&str, ResourceType)> = report
            .resources
            .iter()
            .map(|r| (r.owner.as_str(), r.resource_type))
            .collect();
        assert_eq!(
            deleted,
            vec![
                ("AlarmPolicy/team-a/gone", ResourceType::CloudWatchAlarm),
                ("AlarmPolicy/team-a/gone", ResourceType::SnsTopic),
            ],
            "{report:#?}"
        );
        assert!(
            report
                .resources
                .iter()
                .all(|r| r.action == ChangeAction::Delete)
        );
        assert!(report.resources[0].reason.contains("deletionPolicy Delete"));
        let writes: Vec<String> = aws.calls()[setup_calls..]
            .iter()
            .filter(|c| crate::aws::is_write_operation(c))
            .cloned()
            .collect();
        assert!(writes.is_empty(), "{writes:?}");
    }
}
