//! The AlertRoute reconciler: resolve the sources → the queue pair and subscriptions in AWS →
//! the consumer ServiceAccount and Deployment → status (Ready follows the consumer's readiness).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use tracing::info;

use crate::k8s::ClusterApi;
use crate::reconcile::conditions::{self, ConditionUpdate};
use crate::reconcile::names::OwnerIdentity;
use crate::reconcile::queues::{
    QueueApplier, QueueConfig, QueueOutcome, REASON_SOURCE_NOT_READY, ResolvedSources,
    resolve_sources,
};
use crate::reconcile::workloads::{self, WorkloadParams};
use crate::reconcile::{
    Context, FINALIZER, ReconcileError, aws_reason, has_finalizer, namespaced_name,
    publish_notices, with_finalizer, write_status,
};
use crate::resources::alert_route::{AlertRoute, AlertRouteSpec, AlertRouteStatus};
use crate::resources::{CONDITION_READY, DeletionPolicy};

/// Kind name used in ownership tags and events.
pub const KIND: &str = "AlertRoute";
/// Condition type telling whether every source is subscribed.
pub const CONDITION_SOURCES_READY: &str = "SourcesReady";

/// The queue settings of a route's spec.
pub fn queue_config(spec: &AlertRouteSpec) -> QueueConfig {
    QueueConfig {
        max_receive_count: spec.queue.max_receive_count,
        visibility_timeout_seconds: spec.queue.visibility_timeout_seconds,
        retention_seconds: spec.queue.retention_seconds,
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
    let (namespace, name) = namespaced_name(&*route, KIND)?;
    let key = format!("{KIND}/{namespace}/{name}");
    let owner = OwnerIdentity::new(&ctx.settings.cluster_id, KIND, &namespace, &name);
    let applier = QueueApplier {
        aws: &ctx.aws,
        owner: &owner,
    };
    let previous = route.status.clone().unwrap_or_default();

    if route.metadata.deletion_timestamp.is_some() {
        if has_finalizer(&*route) {
            if route.spec.deletion_policy == DeletionPolicy::Delete {
                let notices = applier.delete(&previous.subscriptions).await?;
                publish_notices(&ctx.cluster, &*route, &notices).await;
            } else {
                info!(route = %key, "deletion policy Retain: queues and subscriptions left in place");
            }
            ctx.cluster.remove_finalizer(&*route, FINALIZER).await?;
        }
        return Ok(Action::await_change());
    }

    let route = with_finalizer(&ctx.cluster, route).await?;
    let generation = route.metadata.generation;

    let mut sources = resolve_sources(&ctx.cluster, &namespace, &route.spec.sources).await?;
    let outcome = match applier
        .apply(
            &queue_config(&route.spec),
            &sources.topic_arns,
            &previous.subscriptions,
        )
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => {
            // Keep what was recorded: it is still what exists as far as we know.
            let status = AlertRouteStatus {
                observed_generation: generation,
                conditions: conditions::merge(
                    &previous.conditions,
                    &[ConditionUpdate::falsy(
                        CONDITION_READY,
                        aws_reason(&e),
                        e.to_string(),
                    )],
                    generation,
                    Timestamp::now(),
                ),
                ..previous.clone()
            };
            write_status(&ctx.cluster, &*route, route.status.as_ref(), &status).await?;
            return Err(e.into());
        }
    };
    publish_notices(&ctx.cluster, &*route, &outcome.notices).await;
    sources.mark_unreachable(&outcome.unreachable_topics);

    // The consumer reads the queue URL from the status, so it runs only once the queue exists.
    let consumer = if outcome.queue.is_some() {
        let params = WorkloadParams::new(
            &ctx.settings,
            ctx.aws.sqs.config().region().map(ToString::to_string),
        );
        ctx.cluster
            .apply(&workloads::consumer_service_account(&route, &params)?)
            .await?;
        Some(
            ctx.cluster
                .apply(&workloads::consumer_deployment(&route, &params)?)
                .await?,
        )
    } else {
        None
    };

    let desired_replicas = route.spec.consumer.replicas.unwrap_or(1).max(0);
    let ready_replicas = consumer
        .as_ref()
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let updates = route_conditions(
        &outcome,
        &sources,
        consumer.as_ref(),
        desired_replicas,
        ready_replicas,
    );
    let status = AlertRouteStatus {
        observed_generation: generation,
        conditions: conditions::merge(&previous.conditions, &updates, generation, Timestamp::now()),
        queue_url: outcome.queue.as_ref().map(|q| q.url.clone()),
        queue_arn: outcome.queue.as_ref().map(|q| q.arn.clone()),
        dead_letter_queue_url: outcome.dead_letter.as_ref().map(|q| q.url.clone()),
        dead_letter_queue_arn: outcome.dead_letter.as_ref().map(|q| q.arn.clone()),
        subscribed_sources: outcome.subscriptions.len() as i32,
        subscriptions: outcome.subscriptions.clone(),
        consumer_deployment: consumer.as_ref().and_then(|d| d.metadata.name.clone()),
        consumer_ready_replicas: ready_replicas,
    };
    write_status(&ctx.cluster, &*route, route.status.as_ref(), &status).await?;

    if !outcome.blockers.is_empty() {
        // Someone else's queue may go away; look again, but not often.
        return Ok(Action::requeue(Duration::from_secs(120)));
    }
    if !sources.not_ready.is_empty() {
        return Ok(ctx.backoff(&key));
    }
    ctx.succeeded(&key);
    Ok(Action::requeue(ctx.settings.resync_interval))
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
