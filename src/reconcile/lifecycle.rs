//! The one reconcile skeleton every resource runs through:
//!
//! 1. a resource being deleted runs its cleanup (deletion policy `Delete`) or leaves AWS alone
//!    (`Retain`), then releases its finalizer;
//! 2. otherwise the finalizer goes on first, so a deletion always passes through the cleanup;
//! 3. the resource's own [`Reconciled::apply`] validates, plans and executes, and says what the
//!    status is, which conditions hold, what to tell people and when to look again;
//! 4. notices become Events, conditions are merged (`observedGeneration` on each), the status is
//!    written only when it changed, and the requeue follows.
//!
//! An AWS or Kubernetes error during apply still writes the conditions (so `kubectl get` shows
//! why), keeps the previously recorded fields, and is returned for backoff.
//! So does an error of the cleanup: a deletion that cannot finish says why on the object
//! (`Ready=False`, reason [`REASON_DELETION_ACCESS_DENIED`] with the missing IAM action and the
//! way out, `deletionPolicy: Retain`, also as a Warning Event; [`REASON_DELETION_FAILED`] for
//! transient trouble), because otherwise the object, and its namespace, hang with nothing to
//! read.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use tracing::info;

use crate::k8s::{ClusterApi, EventInfo, EventType, NamespacedResource};
use crate::names::OwnerIdentity;
use crate::resources::{CONDITION_READY, DeletionPolicy};

use super::conditions::{self, ConditionUpdate};
use super::outcome::{Blocker, Notice};
use super::{Context, FINALIZER, ReconcileError, aws_reason, write_status};

/// How long to wait before looking again at a resource blocked by someone else's AWS resource.
pub const BLOCKED_RECHECK: Duration = Duration::from_secs(120);

/// The status fields the skeleton manages on every resource.
pub trait StatusFields: serde::Serialize + Clone + Default + PartialEq + Send + Sync {
    /// The conditions.
    fn conditions(&self) -> &[Condition];
    /// Sets conditions and the generation they describe.
    fn set_observed(&mut self, conditions: Vec<Condition>, generation: Option<i64>);
}

/// When to look at the resource again after a successful apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// At the resync interval, to repair drift.
    Resync,
    /// At the resync interval or after this long, whichever is sooner.
    ResyncWithin(Duration),
    /// Someone else's resource blocks this one: it may go away, so look again, but not often.
    Blocked,
    /// Waiting for something that will come (a source's topic): look again with backoff.
    Waiting,
    /// Only a change of the spec can help.
    AwaitChange,
}

/// What a resource's apply produced.
#[derive(Debug)]
pub struct Applied<S> {
    /// The new status (conditions and generation are set by the skeleton); `None` keeps the
    /// previous one (e.g. after an AWS error: what was recorded still exists as far as we know).
    pub status: Option<S>,
    /// Conditions to set.
    pub conditions: Vec<ConditionUpdate>,
    /// Events to publish.
    pub notices: Vec<Notice>,
    /// When to look again.
    pub requeue: Requeue,
    /// The error that interrupted the apply, returned for backoff after the status is written.
    pub error: Option<ReconcileError>,
}

impl<S> Applied<S> {
    /// An apply interrupted by `error`: `Ready=False` with the kind of trouble, plus `conditions`.
    pub fn failed(error: impl Into<ReconcileError>, mut conditions: Vec<ConditionUpdate>) -> Self {
        let error = error.into();
        let reason = match &error {
            ReconcileError::Aws(e) => aws_reason(e),
            _ => "ReconcileFailed",
        };
        conditions.insert(
            0,
            ConditionUpdate::falsy(CONDITION_READY, reason, error.to_string()),
        );
        Applied {
            status: None,
            conditions,
            notices: Vec::new(),
            requeue: Requeue::Resync,
            error: Some(error),
        }
    }

    /// A spec that cannot be applied: `Ready=False` with `reason`, nothing done, wait for a change.
    pub fn invalid(reason: &str, message: String, conditions: Vec<ConditionUpdate>) -> Self {
        let mut all = vec![ConditionUpdate::falsy(CONDITION_READY, reason, message)];
        all.extend(conditions);
        Applied {
            status: None,
            conditions: all,
            notices: Vec::new(),
            requeue: Requeue::AwaitChange,
            error: None,
        }
    }
}

/// `Ready=False` naming every blocker (the first one's reason), and each blocker as a warning.
pub fn blocked(blockers: &[Blocker]) -> Option<(ConditionUpdate, Vec<Notice>)> {
    let first = blockers.first()?;
    let message = blockers
        .iter()
        .map(|b| b.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let notices = blockers
        .iter()
        .map(|b| Notice {
            warning: true,
            reason: b.reason,
            note: b.message.clone(),
        })
        .collect();
    Some((
        ConditionUpdate::falsy(CONDITION_READY, first.reason, message),
        notices,
    ))
}

/// What each resource's reconciler provides to [`reconcile`].
pub trait Reconciled: NamespacedResource {
    /// Kind name used in ownership tags, events and logs.
    const KIND: &'static str;
    /// The status type.
    type Status: StatusFields + 'static;

    /// The status as stored.
    fn current_status(&self) -> Option<&Self::Status>;

    /// What happens to AWS resources when this resource is deleted.
    fn deletion_policy(&self) -> DeletionPolicy;

    /// Deletes what this resource owns in AWS (deletion policy `Delete`); returns what was done.
    fn cleanup<C: ClusterApi>(
        &self,
        ctx: &Context<C>,
        owner: &OwnerIdentity,
    ) -> impl Future<Output = Result<Vec<Notice>, ReconcileError>> + Send;

    /// Validates, plans and executes; never fails: errors are carried in [`Applied::error`].
    fn apply<C: ClusterApi>(
        &self,
        ctx: &Context<C>,
        owner: &OwnerIdentity,
    ) -> impl Future<Output = Applied<Self::Status>> + Send;
}

/// Reconciles one resource through the skeleton (see the module docs).
pub async fn reconcile<R: Reconciled, C: ClusterApi>(
    obj: Arc<R>,
    ctx: &Context<C>,
) -> Result<Action, ReconcileError> {
    let (namespace, name) = super::namespaced_name(&*obj, R::KIND)?;
    let key = format!("{}/{namespace}/{name}", R::KIND);
    let owner = OwnerIdentity::new(&ctx.settings.cluster_id, R::KIND, &namespace, &name);

    if obj.meta().deletion_timestamp.is_some() {
        if super::has_finalizer(&*obj) {
            match obj.deletion_policy() {
                DeletionPolicy::Delete => match obj.cleanup(ctx, &owner).await {
                    Ok(notices) => publish_notices(&ctx.cluster, &*obj, &notices).await,
                    Err(error) => {
                        report_blocked_deletion(ctx, &*obj, &error).await;
                        return Err(error);
                    }
                },
                DeletionPolicy::Retain => {
                    info!(resource = %key, "deletion policy Retain: AWS resources left in place")
                }
            }
            ctx.cluster.remove_finalizer(&*obj, FINALIZER).await?;
        }
        return Ok(Action::await_change());
    }

    let obj = super::with_finalizer(&ctx.cluster, obj).await?;
    let generation = obj.meta().generation;
    let previous = obj.current_status().cloned().unwrap_or_default();

    let applied = obj.apply(ctx, &owner).await;
    publish_notices(&ctx.cluster, &*obj, &applied.notices).await;
    let mut status = applied.status.unwrap_or_else(|| previous.clone());
    status.set_observed(
        conditions::merge(
            previous.conditions(),
            &applied.conditions,
            generation,
            Timestamp::now(),
        ),
        generation,
    );
    write_status(&ctx.cluster, &*obj, obj.current_status(), &status).await?;
    if let Some(error) = applied.error {
        return Err(error);
    }
    Ok(match applied.requeue {
        Requeue::Resync => {
            ctx.succeeded(&key);
            Action::requeue(ctx.settings.resync_interval)
        }
        Requeue::ResyncWithin(within) => {
            ctx.succeeded(&key);
            Action::requeue(ctx.settings.resync_interval.min(within))
        }
        Requeue::Blocked => Action::requeue(BLOCKED_RECHECK),
        Requeue::Waiting => ctx.backoff(&key),
        Requeue::AwaitChange => Action::await_change(),
    })
}

/// Ready reason of a resource whose deletion AWS refuses (a missing IAM permission).
pub const REASON_DELETION_ACCESS_DENIED: &str = "DeletionAccessDenied";
/// Ready reason of a resource whose deletion failed for a reason that may pass (throttling, 5xx).
pub const REASON_DELETION_FAILED: &str = "DeletionFailed";

/// What a failed cleanup of a `kind` resource puts on it: the Ready condition, and for a
/// refusal (which only a person can lift) a Warning naming the permission and the way out.
fn deletion_failure(kind: &str, error: &ReconcileError) -> (ConditionUpdate, Option<Notice>) {
    let denied = match error {
        ReconcileError::Aws(aws) if aws.kind() == crate::aws::AwsErrorKind::AccessDenied => aws,
        _ => {
            let message = format!(
                "deleting the {kind}'s AWS resources failed, retrying with backoff: {error}"
            );
            return (
                ConditionUpdate::falsy(CONDITION_READY, REASON_DELETION_FAILED, message),
                None,
            );
        }
    };
    let permission = denied
        .iam_action()
        .unwrap_or_else(|| format!("the permission for {}", denied.operation()));
    let message = format!(
        "deletion is blocked: AWS denied {permission} ({}: {}). Grant the controller's IAM role \
         {permission} (see deploy/iam/controller.json), or set spec.deletionPolicy: Retain to \
         leave this {kind}'s AWS resources in place and let the deletion finish",
        denied.code().unwrap_or("no code"),
        denied.message(),
    );
    (
        ConditionUpdate::falsy(
            CONDITION_READY,
            REASON_DELETION_ACCESS_DENIED,
            message.clone(),
        ),
        Some(Notice {
            warning: true,
            reason: REASON_DELETION_ACCESS_DENIED,
            note: message,
        }),
    )
}

/// Puts a failed cleanup on the object (see [`deletion_failure`]); best effort, the cleanup's
/// error is what the caller returns.
async fn report_blocked_deletion<R: Reconciled, C: ClusterApi>(
    ctx: &Context<C>,
    obj: &R,
    error: &ReconcileError,
) {
    let (condition, notice) = deletion_failure(R::KIND, error);
    if let Some(notice) = notice {
        publish_notices(&ctx.cluster, obj, &[notice]).await;
    }
    let mut status = obj.current_status().cloned().unwrap_or_default();
    let generation = obj.meta().generation;
    status.set_observed(
        conditions::merge(
            status.conditions(),
            &[condition],
            generation,
            Timestamp::now(),
        ),
        generation,
    );
    if let Err(e) = write_status(&ctx.cluster, obj, obj.current_status(), &status).await {
        tracing::warn!(error = %e, "could not write why the deletion is blocked");
    }
}

/// Logs notices and publishes them as Events about `obj` (best effort: an Event that cannot be
/// published never fails a reconcile).
pub async fn publish_notices<C: ClusterApi, K: NamespacedResource>(
    cluster: &C,
    obj: &K,
    notices: &[Notice],
) {
    let key = format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    );
    for notice in notices {
        tracing::info!(resource = %key, reason = notice.reason, "{}", notice.note);
        let event = EventInfo {
            type_: if notice.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: notice.reason.into(),
            note: Some(notice.note.clone()),
            action: "Reconcile".into(),
        };
        if let Err(e) = cluster.publish_event(obj, event).await {
            tracing::warn!(error = %e, "could not publish an event");
        }
    }
}

#[cfg(test)]
mod tests;
