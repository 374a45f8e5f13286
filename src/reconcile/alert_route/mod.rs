//! The AlertRoute reconciler: resolve the sources → the queue pair and subscriptions in AWS →
//! the consumer ServiceAccount, the route's own button-key Secret and the consumer Deployment →
//! status (Ready follows the consumer's readiness).

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::Action;

use crate::k8s::{ClusterApi, SecretLocation};
use crate::names::OwnerIdentity;
use crate::reconcile::conditions::ConditionUpdate;
use crate::reconcile::lifecycle::{self, Applied, Reconciled, Requeue, StatusFields};
use crate::reconcile::outcome::Notice;
use crate::reconcile::queues::execute::QueueOutcome;
use crate::reconcile::queues::{
    self, QueueConfig, REASON_SOURCE_NOT_READY, ResolvedSources, resolve_sources,
};
use crate::reconcile::{Context, REASON_NAMESPACE_NOT_ALLOWED, ReconcileError};
use crate::resources::alert_route::{AlertRoute, AlertRouteSpec, AlertRouteStatus};
use crate::resources::{CONDITION_READY, DeletionPolicy};
use crate::slack::{RouteRef, route_key_text};
use crate::workloads;

/// Kind name used in ownership tags and events.
pub const KIND: &str = "AlertRoute";
/// Condition type telling whether every source is subscribed.
pub const CONDITION_SOURCES_READY: &str = "SourcesReady";
/// Condition type telling whether messages wait in the dead-letter queue.
pub const CONDITION_DEAD_LETTERS: &str = "DeadLetters";
/// Reason of `DeadLetters=True`, and of its Event.
pub const REASON_MESSAGES_DEAD_LETTERED: &str = "MessagesDeadLettered";

/// Margin of the queue's retention over the Slack outage tolerance.
const RETENTION_MARGIN_SECONDS: i32 = 3600;

/// The queue settings of a route's spec. While Slack is down the consumer receives nothing new
/// for up to `outage_tolerance`, so the queue keeps messages at least that long plus an hour,
/// whatever `retentionSeconds` says: an alert must not expire while it waits out the outage.
/// (`maxReceiveCount` needs no such floor: an outage costs a message at most one receive per
/// consumer restart, because the consumer holds what it received instead of receiving again.)
pub fn queue_config(spec: &AlertRouteSpec, outage_tolerance: std::time::Duration) -> QueueConfig {
    let tolerance = i32::try_from(outage_tolerance.as_secs()).unwrap_or(i32::MAX);
    QueueConfig {
        max_receive_count: spec.queue.max_receive_count,
        visibility_timeout_seconds: spec.queue.visibility_timeout_seconds,
        retention_seconds: spec
            .queue
            .retention_seconds
            .max(tolerance.saturating_add(RETENTION_MARGIN_SECONDS))
            .min(queues::MAX_RETENTION_SECONDS),
    }
}

/// Reconciles one AlertRoute: cleanup when it is being deleted (queues and subscriptions with
/// deletion policy Delete; the consumer goes with the route by garbage collection), otherwise
/// the queue pair, subscriptions, consumer workload and status. A source without a topic yet
/// is reported (`SourceNotReady`) and looked at again with backoff, never a hard failure.
pub async fn reconcile<C: ClusterApi>(
    route: Arc<AlertRoute>,
    ctx: &Context<C>,
) -> Result<Action, ReconcileError> {
    lifecycle::reconcile(route, ctx).await
}

impl StatusFields for AlertRouteStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    fn set_observed(&mut self, conditions: Vec<Condition>, generation: Option<i64>) {
        self.conditions = conditions;
        self.observed_generation = generation;
    }
}

impl Reconciled for AlertRoute {
    const KIND: &'static str = KIND;
    type Status = AlertRouteStatus;

    fn current_status(&self) -> Option<&AlertRouteStatus> {
        self.status.as_ref()
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    async fn cleanup<C: ClusterApi>(
        &self,
        ctx: &Context<C>,
        owner: &OwnerIdentity,
    ) -> Result<Vec<Notice>, ReconcileError> {
        let recorded = self
            .status
            .as_ref()
            .map(|s| s.subscriptions.clone())
            .unwrap_or_default();
        Ok(queues::execute::delete(&*ctx.aws, owner, &recorded).await?)
    }

    async fn apply<C: ClusterApi>(
        &self,
        ctx: &Context<C>,
        owner: &OwnerIdentity,
    ) -> Applied<AlertRouteStatus> {
        // Before anything else: outside the allowed namespaces nothing is created at all.
        if let Some(message) = ctx.settings.namespace_refusal(&owner.namespace) {
            return Applied::invalid(REASON_NAMESPACE_NOT_ALLOWED, message, Vec::new());
        }
        match self.apply_steps(ctx, owner).await {
            Ok(applied) => applied,
            Err(e) => Applied::failed(e, Vec::new()),
        }
    }
}

impl AlertRoute {
    async fn apply_steps<C: ClusterApi>(
        &self,
        ctx: &Context<C>,
        owner: &OwnerIdentity,
    ) -> Result<Applied<AlertRouteStatus>, ReconcileError> {
        let recorded = self
            .status
            .as_ref()
            .map(|s| s.subscriptions.clone())
            .unwrap_or_default();
        let mut sources = resolve_sources(
            &ctx.cluster,
            &owner.namespace,
            &self.spec.sources,
            ctx.settings.allowed_source_topics.as_deref(),
        )
        .await?;
        if !sources.not_allowed.is_empty() {
            let (reason, message) = queues::not_allowed_condition(&sources.not_allowed);
            return Ok(Applied::invalid(reason, message, Vec::new()));
        }
        let outcome = queues::execute::apply(
            &*ctx.aws,
            owner,
            &queue_config(&self.spec, ctx.settings.slack_outage_tolerance),
            &sources.topic_arns,
            &recorded,
        )
        .await?;
        sources.mark_unreachable(&outcome.unreachable_topics);

        // The consumer reads the queue URL from the status, so it runs only once the queue exists.
        let consumer = if outcome.queue.is_some() {
            let params = ctx.settings.workload_params(ctx.aws.region());
            ctx.cluster
                .apply(&workloads::consumer_service_account(self, &params)?)
                .await?;
            if let Some(location) = &ctx.settings.action_key_secret {
                let key = route_action_key(&ctx.cluster, location, owner).await?;
                ctx.cluster
                    .apply(&workloads::consumer_action_key_secret(self, &key)?)
                    .await?;
            }
            Some(
                ctx.cluster
                    .apply(&workloads::consumer_deployment(self, &params)?)
                    .await?,
            )
        } else {
            None
        };

        let desired_replicas = self.spec.consumer.replicas.unwrap_or(1).max(0);
        let ready_replicas = consumer
            .as_ref()
            .and_then(|d| d.status.as_ref())
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        let mut notices = outcome.notices.clone();
        let mut conditions = route_conditions(
            &outcome,
            &sources,
            consumer.as_ref(),
            desired_replicas,
            ready_replicas,
        );
        if let Some(count) = outcome.dead_letter_messages {
            let previous = self.status.as_ref().and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == CONDITION_DEAD_LETTERS)
            });
            let (condition, notice) = dead_letter_condition(owner, count, previous);
            conditions.push(condition);
            notices.extend(notice);
        }
        let requeue = if let Some((_, warnings)) = lifecycle::blocked(&outcome.blockers) {
            notices.extend(warnings);
            Requeue::Blocked
        } else if !sources.not_ready.is_empty() {
            Requeue::Waiting
        } else {
            Requeue::Resync
        };
        let status = AlertRouteStatus {
            queue_url: outcome.queue.as_ref().map(|q| q.url.clone()),
            queue_arn: outcome.queue.as_ref().map(|q| q.arn.clone()),
            dead_letter_queue_url: outcome.dead_letter.as_ref().map(|q| q.url.clone()),
            dead_letter_queue_arn: outcome.dead_letter.as_ref().map(|q| q.arn.clone()),
            subscribed_sources: outcome.subscriptions.len() as i32,
            subscriptions: outcome.subscriptions.clone(),
            consumer_deployment: consumer.as_ref().and_then(|d| d.metadata.name.clone()),
            consumer_ready_replicas: ready_replicas,
            ..AlertRouteStatus::default()
        };
        Ok(Applied {
            status: Some(status),
            conditions,
            notices,
            requeue,
            error: None,
        })
    }
}

/// The route's own button key, derived from the master key in the Secret at `location`
/// (`NAMESPACE/NAME/KEY`, in the operator's namespace). Only the derived key leaves this function.
async fn route_action_key<C: ClusterApi>(
    cluster: &C,
    location: &str,
    owner: &OwnerIdentity,
) -> Result<String, ReconcileError> {
    let problem = |problem: String| ReconcileError::ActionKey {
        location: location.to_string(),
        problem,
    };
    let parsed = SecretLocation::parse(location).map_err(problem)?;
    let master = cluster
        .secret_value(&parsed.namespace, &parsed.name, &parsed.key)
        .await
        .map_err(|e| problem(format!("cannot read it: {e}")))?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| problem("the Secret or its key does not exist, or is empty".into()))?;
    let route = RouteRef {
        namespace: owner.namespace.clone(),
        name: owner.name.clone(),
    };
    route_key_text(master.as_bytes(), &route).map_err(|e| problem(e.to_string()))
}

/// `DeadLetters` from the dead-letter queue's depth, and a warning Event when the count is new
/// (the condition's message, which carries it, changed): one per change, not per resync.
fn dead_letter_condition(
    owner: &OwnerIdentity,
    count: u64,
    previous: Option<&Condition>,
) -> (ConditionUpdate, Option<Notice>) {
    if count == 0 {
        return (
            ConditionUpdate::falsy(
                CONDITION_DEAD_LETTERS,
                "Empty",
                "no message waits in the dead-letter queue",
            ),
            None,
        );
    }
    let message = format!(
        "{count} messages wait in the dead-letter queue: a destination refused them, or Slack \
         was down for longer than the outage tolerance. Fix the cause (kubectl logs \
         deploy/{name}-consumer), then move them back to the route's queue: kubectl -n \
         {namespace} exec deploy/{name}-consumer -- alertops redrive --namespace {namespace} \
         --route {name}",
        name = owner.name,
        namespace = owner.namespace,
    );
    let changed = previous.is_none_or(|p| p.status != "True" || p.message != message);
    let notice = changed.then(|| Notice {
        warning: true,
        reason: REASON_MESSAGES_DEAD_LETTERED,
        note: format!("{count} messages wait in the route's dead-letter queue"),
    });
    (
        ConditionUpdate::truthy(
            CONDITION_DEAD_LETTERS,
            REASON_MESSAGES_DEAD_LETTERED,
            message,
        ),
        notice,
    )
}

/// Ready and SourcesReady from what the apply found, the sources and the consumer.
fn route_conditions(
    outcome: &QueueOutcome,
    sources: &ResolvedSources,
    consumer: Option<&Deployment>,
    desired_replicas: i32,
    ready_replicas: i32,
) -> Vec<ConditionUpdate> {
    let sources_condition = if sources.not_ready.is_empty() {
        ConditionUpdate::truthy(
            CONDITION_SOURCES_READY,
            "AllSourcesSubscribed",
            format!("subscribed to {} topics", outcome.subscriptions.len()),
        )
    } else {
        ConditionUpdate::falsy(
            CONDITION_SOURCES_READY,
            REASON_SOURCE_NOT_READY,
            sources.not_ready.join("; "),
        )
    };
    let ready = if let Some(blocker) = outcome.blockers.first() {
        ConditionUpdate::falsy(
            CONDITION_READY,
            blocker.reason,
            outcome
                .blockers
                .iter()
                .map(|b| b.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        )
    } else if !sources.not_ready.is_empty() {
        ConditionUpdate::falsy(
            CONDITION_READY,
            REASON_SOURCE_NOT_READY,
            format!(
                "waiting for sources: {}; looking again with backoff",
                sources.not_ready.join("; ")
            ),
        )
    } else if ready_replicas < desired_replicas {
        ConditionUpdate::falsy(
            CONDITION_READY,
            "ConsumerNotReady",
            format!(
                "consumer Deployment {} has {ready_replicas} of {desired_replicas} replicas ready",
                consumer
                    .and_then(|d| d.metadata.name.as_deref())
                    .unwrap_or("?")
            ),
        )
    } else {
        ConditionUpdate::truthy(
            CONDITION_READY,
            "Reconciled",
            format!(
                "the queue is subscribed to {} sources and the consumer has {ready_replicas} ready replicas",
                outcome.subscriptions.len()
            ),
        )
    };
    vec![ready, sources_condition]
}

#[cfg(test)]
mod tests;
