//! The DigestSchedule reconciler: check the schedule (a queue can keep messages 14 days at most,
//! so the longest gap between two runs must fit) → resolve the sources → the queue pair and
//! subscriptions in AWS → the ServiceAccount and CronJob → status with the next run.

pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use tracing::info;

use crate::k8s::ClusterApi;
use crate::reconcile::conditions::{self, ConditionUpdate};
use crate::reconcile::names::OwnerIdentity;
use crate::reconcile::queues::{
    QueueApplier, QueueConfig, REASON_SOURCE_NOT_READY, resolve_sources,
};
use crate::reconcile::workloads::{self, DIGEST_ACTIVE_DEADLINE_SECONDS, WorkloadParams};
use crate::reconcile::{
    Context, FINALIZER, ReconcileError, aws_reason, has_finalizer, namespaced_name,
    publish_notices, with_finalizer, write_status,
};
use crate::resources::digest_schedule::{DigestSchedule, DigestScheduleStatus};
use crate::resources::{CONDITION_READY, DeletionPolicy};

use schedule::{Schedule, ScheduleError};

/// Kind name used in ownership tags and events.
pub const KIND: &str = "DigestSchedule";
/// Receives of one message by digest runs before it moves to the dead-letter queue.
pub const DIGEST_MAX_RECEIVE_COUNT: i32 = 5;
/// Seconds a message received by a run stays invisible: longer than a run may last, so one run
/// never sees a message twice.
pub const DIGEST_VISIBILITY_TIMEOUT_SECONDS: i32 = DIGEST_ACTIVE_DEADLINE_SECONDS as i32 + 300;

/// The queue settings of a digest whose runs lie at most `retention_seconds` apart (margin
/// included).
pub fn queue_config(retention_seconds: i32) -> QueueConfig {
    QueueConfig {
        max_receive_count: DIGEST_MAX_RECEIVE_COUNT,
        visibility_timeout_seconds: DIGEST_VISIBILITY_TIMEOUT_SECONDS,
        retention_seconds,
    }
}

/// Reconciles one DigestSchedule: cleanup when it is being deleted, otherwise validate the
/// schedule, then the queue pair, subscriptions, CronJob and status.
pub async fn reconcile<C: ClusterApi>(
    digest: Arc<DigestSchedule>,
    ctx: &Context<C>,
) -> Result<Action, ReconcileError> {
    let (namespace, name) = namespaced_name(&*digest, KIND)?;
    let key = format!("{KIND}/{namespace}/{name}");
    let owner = OwnerIdentity::new(&ctx.settings.cluster_id, KIND, &namespace, &name);
    let applier = QueueApplier {
        aws: &ctx.aws,
        owner: &owner,
    };
    let previous = digest.status.clone().unwrap_or_default();

    if digest.metadata.deletion_timestamp.is_some() {
        if has_finalizer(&*digest) {
            if digest.spec.deletion_policy == DeletionPolicy::Delete {
                let notices = applier.delete(&previous.subscriptions).await?;
                publish_notices(&ctx.cluster, &*digest, &notices).await;
            } else {
                info!(schedule = %key, "deletion policy Retain: queues and subscriptions left in place");
            }
            ctx.cluster.remove_finalizer(&*digest, FINALIZER).await?;
        }
        return Ok(Action::await_change());
    }

    let digest = with_finalizer(&ctx.cluster, digest).await?;
    let generation = digest.metadata.generation;
    let now = Utc::now();

    let checked = Schedule::parse(&digest.spec.schedule, &digest.spec.time_zone).and_then(|s| {
        let retention = s.retention_seconds(now)?;
        let next = s.next_run(now)?;
        Ok((retention, next))
    });
    let (retention, next_run) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            let reason = match e {
                ScheduleError::TooSparse { .. } => "ScheduleTooSparse",
                _ => "InvalidSchedule",
            };
            let status = DigestScheduleStatus {
                observed_generation: generation,
                conditions: conditions::merge(
                    &previous.conditions,
                    &[ConditionUpdate::falsy(
                        CONDITION_READY,
                        reason,
                        e.to_string(),
                    )],
                    generation,
                    Timestamp::now(),
                ),
                next_run_time: None,
                ..previous.clone()
            };
            write_status(&ctx.cluster, &*digest, digest.status.as_ref(), &status).await?;
            // Only a spec change can help.
            return Ok(Action::await_change());
        }
    };

    let mut sources = resolve_sources(&ctx.cluster, &namespace, &digest.spec.sources).await?;
    let outcome = match applier
        .apply(
            &queue_config(retention),
            &sources.topic_arns,
            &previous.subscriptions,
        )
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => {
            let status = DigestScheduleStatus {
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
            write_status(&ctx.cluster, &*digest, digest.status.as_ref(), &status).await?;
            return Err(e.into());
        }
    };
    publish_notices(&ctx.cluster, &*digest, &outcome.notices).await;
    sources.mark_unreachable(&outcome.unreachable_topics);

    let cron_job = if outcome.queue.is_some() {
        let params = WorkloadParams::new(
            &ctx.settings,
            ctx.aws.sqs.config().region().map(ToString::to_string),
        );
        ctx.cluster
            .apply(&workloads::digest_service_account(&digest, &params)?)
            .await?;
        let applied = ctx
            .cluster
            .apply(&workloads::digest_cron_job(&digest, &params)?)
            .await?;
        applied.metadata.name
    } else {
        None
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
    } else {
        ConditionUpdate::truthy(
            CONDITION_READY,
            "Reconciled",
            format!(
                "the queue keeps messages {retention} s and is subscribed to {} sources; next run {}",
                outcome.subscriptions.len(),
                next_run.to_rfc3339()
            ),
        )
    };
    let status = DigestScheduleStatus {
        observed_generation: generation,
        conditions: conditions::merge(&previous.conditions, &[ready], generation, Timestamp::now()),
        queue_url: outcome.queue.as_ref().map(|q| q.url.clone()),
        queue_arn: outcome.queue.as_ref().map(|q| q.arn.clone()),
        retention_seconds: Some(retention),
        subscriptions: outcome.subscriptions.clone(),
        cron_job,
        next_run_time: Some(next_run),
        // Written by the digest runs; carried over so this write does not erase it.
        last_run: previous.last_run.clone(),
    };
    write_status(&ctx.cluster, &*digest, digest.status.as_ref(), &status).await?;

    if !outcome.blockers.is_empty() {
        return Ok(Action::requeue(Duration::from_secs(120)));
    }
    if !sources.not_ready.is_empty() {
        return Ok(ctx.backoff(&key));
    }
    ctx.succeeded(&key);
    // Look again soon after the next run, so that status.nextRunTime moves on.
    let until_next = (next_run - now)
        .to_std()
        .unwrap_or_default()
        .saturating_add(Duration::from_secs(1));
    Ok(Action::requeue(
        ctx.settings.resync_interval.min(until_next),
    ))
}
