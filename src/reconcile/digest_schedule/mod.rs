//! The DigestSchedule reconciler: check the schedule (a queue can keep messages 14 days at most,
//! and must keep them from a run to the run after next) → resolve the sources → the queue pair and
//! subscriptions in AWS → the ServiceAccount and CronJob → status with the next run.

/// The schedule maths live with the digest (the lint shares them); re-exported under their
/// former path.
pub use crate::digest::schedule;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::controller::Action;

use crate::k8s::ClusterApi;
use crate::names::OwnerIdentity;
use crate::reconcile::conditions::ConditionUpdate;
use crate::reconcile::lifecycle::{self, Applied, Reconciled, Requeue, StatusFields};
use crate::reconcile::outcome::Notice;
use crate::reconcile::queues::{self, QueueConfig, REASON_SOURCE_NOT_READY, resolve_sources};
use crate::reconcile::{Context, REASON_NAMESPACE_NOT_ALLOWED, ReconcileError};
use crate::resources::digest_schedule::{DigestSchedule, DigestScheduleStatus};
use crate::resources::{CONDITION_READY, DeletionPolicy};
use crate::workloads::{self, DIGEST_ACTIVE_DEADLINE_SECONDS};

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
    lifecycle::reconcile(digest, ctx).await
}

impl StatusFields for DigestScheduleStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    fn set_observed(&mut self, conditions: Vec<Condition>, generation: Option<i64>) {
        self.conditions = conditions;
        self.observed_generation = generation;
    }
}

impl Reconciled for DigestSchedule {
    const KIND: &'static str = KIND;
    type Status = DigestScheduleStatus;

    fn current_status(&self) -> Option<&DigestScheduleStatus> {
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
    ) -> Applied<DigestScheduleStatus> {
        // Before anything else: outside the allowed namespaces nothing is created at all.
        if let Some(message) = ctx.settings.namespace_refusal(&owner.namespace) {
            return Applied::invalid(REASON_NAMESPACE_NOT_ALLOWED, message, Vec::new());
        }
        let now = Utc::now();
        let checked = Schedule::parse(&self.spec.schedule, &self.spec.time_zone).and_then(|s| {
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
                let mut applied = Applied::invalid(reason, e.to_string(), Vec::new());
                applied.status = Some(DigestScheduleStatus {
                    next_run_time: None,
                    ..self.status.clone().unwrap_or_default()
                });
                return applied;
            }
        };
        match self.apply_steps(ctx, owner, retention, next_run, now).await {
            Ok(applied) => applied,
            Err(e) => Applied::failed(e, Vec::new()),
        }
    }
}

impl DigestSchedule {
    async fn apply_steps<C: ClusterApi>(
        &self,
        ctx: &Context<C>,
        owner: &OwnerIdentity,
        retention: i32,
        next_run: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Applied<DigestScheduleStatus>, ReconcileError> {
        let previous = self.status.clone().unwrap_or_default();
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
            &queue_config(retention),
            &sources.topic_arns,
            &previous.subscriptions,
        )
        .await?;
        sources.mark_unreachable(&outcome.unreachable_topics);

        let cron_job = if outcome.queue.is_some() {
            let params = ctx.settings.workload_params(ctx.aws.region());
            ctx.cluster
                .apply(&workloads::digest_service_account(self, &params)?)
                .await?;
            let applied = ctx
                .cluster
                .apply(&workloads::digest_cron_job(self, &params)?)
                .await?;
            applied.metadata.name
        } else {
            None
        };

        let mut notices = outcome.notices.clone();
        let (ready, requeue) = if let Some((ready, warnings)) =
            lifecycle::blocked(&outcome.blockers)
        {
            notices.extend(warnings);
            (ready, Requeue::Blocked)
        } else if !sources.not_ready.is_empty() {
            (
                ConditionUpdate::falsy(
                    CONDITION_READY,
                    REASON_SOURCE_NOT_READY,
                    format!(
                        "waiting for sources: {}; looking again with backoff",
                        sources.not_ready.join("; ")
                    ),
                ),
                Requeue::Waiting,
            )
        } else {
            // Look again soon after the next run, so that status.nextRunTime moves on.
            let until_next = (next_run - now)
                .to_std()
                .unwrap_or_default()
                .saturating_add(Duration::from_secs(1));
            (
                ConditionUpdate::truthy(
                    CONDITION_READY,
                    "Reconciled",
                    format!(
                        "the queue keeps messages {retention} s and is subscribed to {} sources; next run {}",
                        outcome.subscriptions.len(),
                        next_run.to_rfc3339()
                    ),
                ),
                Requeue::ResyncWithin(until_next),
            )
        };
        let status = DigestScheduleStatus {
            queue_url: outcome.queue.as_ref().map(|q| q.url.clone()),
            queue_arn: outcome.queue.as_ref().map(|q| q.arn.clone()),
            retention_seconds: Some(retention),
            subscriptions: outcome.subscriptions.clone(),
            cron_job,
            next_run_time: Some(next_run),
            // Written by the digest runs; carried over so this write does not erase it.
            last_run: previous.last_run.clone(),
            ..DigestScheduleStatus::default()
        };
        Ok(Applied {
            status: Some(status),
            conditions: vec![ready],
            notices,
            requeue,
            error: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::CronJob;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use serde_json::json;

    use super::*;
    use crate::aws::fake::FakeAws;
    use crate::k8s::MemoryCluster;
    use crate::reconcile::OperatorSettings;

    #[tokio::test]
    async fn a_digest_outside_the_allowed_namespaces_creates_nothing() {
        let cluster = MemoryCluster::new();
        let aws = FakeAws::new();
        let topic = aws.insert_topic("alerts", Default::default());
        aws.clear_calls();
        let mut settings = OperatorSettings::new("test");
        settings.allowed_namespaces = Some(["team-b".to_string()].into());
        let ctx = Context::new(cluster.clone(), aws.clone(), settings);
        cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1",
                "kind": "DigestSchedule",
                "metadata": {"name": "daily", "namespace": "team-a"},
                "spec": {
                    "schedule": "0 8 * * *",
                    "timeZone": "UTC",
                    "sources": [{"topicArn": topic}],
                    "email": {"from": "alerts@example.com", "to": ["oncall@example.com"]},
                },
            }))
            .unwrap();
        let digest: DigestSchedule = cluster.object("team-a", "daily").unwrap().unwrap();
        reconcile(Arc::new(digest), &ctx).await.unwrap();

        let digest: DigestSchedule = cluster.object("team-a", "daily").unwrap().unwrap();
        let ready = digest
            .status
            .unwrap()
            .conditions
            .into_iter()
            .find(|c| c.type_ == CONDITION_READY)
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", REASON_NAMESPACE_NOT_ALLOWED)
        );
        assert!(
            ready.message.contains("team-a") && ready.message.contains("workloads.namespaces"),
            "{}",
            ready.message
        );
        assert!(aws.calls().is_empty(), "{:?}", aws.calls());
        assert!(cluster.list_all::<CronJob>().unwrap().is_empty());
        assert!(cluster.list_all::<ServiceAccount>().unwrap().is_empty());
    }
}
