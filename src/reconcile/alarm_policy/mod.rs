//! The AlarmPolicy reconciler.

pub mod apply;
pub mod desired;
pub mod observed;
pub mod presets;
pub mod validate;

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use tracing::{info, warn};

use crate::k8s::{ClusterApi, EventInfo, EventType};
use crate::lint::rules::lint_alarm_policy;
use crate::reconcile::conditions::{self, ConditionUpdate};
use crate::reconcile::names::OwnerIdentity;
use crate::reconcile::{
    Context, FINALIZER, ReconcileError, aws_reason, has_finalizer, namespaced_name,
    publish_notices, with_finalizer, write_status,
};
use crate::resources::alarm_policy::{AlarmPolicy, AlarmPolicyStatus, LintFinding, LintLevel};
use crate::resources::{CONDITION_LINT, CONDITION_READY, DeletionPolicy};

use apply::{Applier, ApplyOutcome, Recorded};

/// Kind name used in ownership tags and events.
pub const KIND: &str = "AlarmPolicy";

/// Reconciles one AlarmPolicy: cleanup when it is being deleted, otherwise validate, lint, apply
/// to AWS and write status. Errors from AWS or Kubernetes are returned for backoff; problems a
/// person must fix (invalid spec, names taken) become conditions and are not retried quickly.
pub async fn reconcile<C: ClusterApi>(
    policy: Arc<AlarmPolicy>,
    ctx: &Context<C>,
) -> Result<Action, ReconcileError> {
    let (namespace, name) = namespaced_name(&*policy, KIND)?;
    let owner = OwnerIdentity::new(&ctx.settings.cluster_id, KIND, &namespace, &name);
    let previous = policy.status.clone().unwrap_or_default();
    let recorded = recorded(&previous);
    let applier = Applier {
        aws: &ctx.aws,
        owner: &owner,
    };

    if policy.metadata.deletion_timestamp.is_some() {
        if has_finalizer(&*policy) {
            if policy.spec.deletion_policy == DeletionPolicy::Delete {
                let notices = applier.delete_everything(&recorded).await?;
                publish_notices(&ctx.cluster, &*policy, &notices).await;
            } else {
                info!(policy = %format!("{namespace}/{name}"), "deletion policy Retain: AWS resources left in place");
            }
            ctx.cluster.remove_finalizer(&*policy, FINALIZER).await?;
        }
        return Ok(Action::await_change());
    }

    let policy = with_finalizer(&ctx.cluster, policy).await?;
    let generation = policy.metadata.generation;

    // Lint first: findings are reported whatever happens next.
    let lint = lint_alarm_policy(&policy.spec);
    let lint_condition = lint_condition(&lint);
    let new_findings: Vec<&LintFinding> =
        lint.iter().filter(|f| !previous.lint.contains(f)).collect();
    for finding in new_findings {
        let event = EventInfo {
            type_: if finding.level == LintLevel::Error {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: "LintFinding".into(),
            note: Some(format!("[{}] {}", finding.rule, finding.message)),
            action: "Lint".into(),
        };
        if let Err(e) = ctx.cluster.publish_event(&*policy, event).await {
            warn!(error = %e, "could not publish a lint event");
        }
    }

    let violations = validate::validate(&policy.spec);
    if !violations.is_empty() {
        let message = violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let status = AlarmPolicyStatus {
            lint,
            conditions: conditions::merge(
                &previous.conditions,
                &[
                    ConditionUpdate::falsy(
                        CONDITION_READY,
                        "InvalidSpec",
                        format!("the spec cannot be applied: {message}"),
                    ),
                    lint_condition,
                ],
                generation,
                Timestamp::now(),
            ),
            observed_generation: generation,
            ..previous.clone()
        };
        write_status(&ctx.cluster, &*policy, policy.status.as_ref(), &status).await?;
        return Ok(Action::await_change());
    }

    let mut outcome = ApplyOutcome::default();
    let result = apply_all(&applier, &policy, &recorded, &mut outcome).await;
    publish_notices(&ctx.cluster, &*policy, &outcome.notices).await;

    let ready = match &result {
        Err(e) => ConditionUpdate::falsy(CONDITION_READY, aws_reason(e), e.to_string()),
        Ok(()) if !outcome.blockers.is_empty() => {
            let first = &outcome.blockers[0];
            let message = outcome
                .blockers
                .iter()
                .map(|b| b.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            for blocker in &outcome.blockers {
                let event = EventInfo {
                    type_: EventType::Warning,
                    reason: blocker.reason.into(),
                    note: Some(blocker.message.clone()),
                    action: "Reconcile".into(),
                };
                if let Err(e) = ctx.cluster.publish_event(&*policy, event).await {
                    warn!(error = %e, "could not publish an event");
                }
            }
            ConditionUpdate::falsy(CONDITION_READY, first.reason, message)
        }
        Ok(()) => ConditionUpdate::truthy(
            CONDITION_READY,
            "Reconciled",
            format!(
                "the topic, {} alarms and {} event rules match the spec",
                outcome.alarms.len(),
                outcome.rules.len()
            ),
        ),
    };

    // On an AWS error, keep what was recorded: it is still what exists as far as we know.
    let status = if result.is_ok() {
        AlarmPolicyStatus {
            observed_generation: generation,
            conditions: conditions::merge(
                &previous.conditions,
                &[ready, lint_condition],
                generation,
                Timestamp::now(),
            ),
            topic_arn: outcome.topic_arn.clone(),
            topic_owned: outcome.topic_arn.as_ref().map(|_| outcome.topic_owned),
            alarm_count: outcome.alarms.len() as i32,
            rule_count: outcome.rules.len() as i32,
            alarms: outcome.alarms,
            event_rules: outcome.rules,
            lint,
        }
    } else {
        AlarmPolicyStatus {
            observed_generation: generation,
            conditions: conditions::merge(
                &previous.conditions,
                &[ready, lint_condition],
                generation,
                Timestamp::now(),
            ),
            lint,
            ..previous.clone()
        }
    };
    write_status(&ctx.cluster, &*policy, policy.status.as_ref(), &status).await?;
    result?;
    ctx.succeeded(&format!("{KIND}/{namespace}/{name}"));
    if outcome.blockers.is_empty() {
        Ok(Action::requeue(ctx.settings.resync_interval))
    } else {
        // Someone else's resource may go away; look again, but not often.
        Ok(Action::requeue(std::time::Duration::from_secs(120)))
    }
}

async fn apply_all(
    applier: &Applier<'_>,
    policy: &AlarmPolicy,
    recorded: &Recorded,
    out: &mut ApplyOutcome,
) -> Result<(), crate::aws::AwsError> {
    let preliminary = desired::build(&policy.spec, applier.owner, "");
    let Some(topic_arn) = applier
        .ensure_topic(
            &preliminary.topic,
            &preliminary.topic_tags,
            recorded.topic_arn.as_deref(),
            out,
        )
        .await?
    else {
        return Ok(());
    };
    let desired = desired::build(&policy.spec, applier.owner, &topic_arn);
    applier.sync_alarms(&desired.alarms, recorded, out).await?;
    applier
        .sync_rules(&desired.rules, &topic_arn, recorded, out)
        .await?;
    Ok(())
}

fn recorded(status: &AlarmPolicyStatus) -> Recorded {
    Recorded {
        alarms: status
            .alarms
            .iter()
            .map(|a| (a.alarm_name.clone(), a.clone()))
            .collect(),
        rules: status
            .event_rules
            .iter()
            .map(|r| (r.rule_name.clone(), r.clone()))
            .collect(),
        // Only a topic we created is ours to look up again by ARN (and to delete).
        topic_arn: status
            .topic_arn
            .clone()
            .filter(|_| status.topic_owned == Some(true)),
    }
}

fn lint_condition(findings: &[LintFinding]) -> ConditionUpdate {
    let errors = findings
        .iter()
        .filter(|f| f.level == LintLevel::Error)
        .count();
    let warnings = findings.len() - errors;
    let summary = findings
        .iter()
        .map(|f| format!("[{}] {}", f.rule, f.message))
        .collect::<Vec<_>>()
        .join("; ");
    if errors > 0 {
        ConditionUpdate::falsy(
            CONDITION_LINT,
            "Errors",
            format!("{errors} errors, {warnings} warnings: {summary}"),
        )
    } else if warnings > 0 {
        ConditionUpdate::truthy(
            CONDITION_LINT,
            "Warnings",
            format!("{warnings} warnings: {summary}"),
        )
    } else {
        ConditionUpdate::truthy(CONDITION_LINT, "Clean", "no lint findings")
    }
}
