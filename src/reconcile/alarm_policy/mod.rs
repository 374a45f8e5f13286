//! The AlarmPolicy reconciler: lint → validate → the topic → build the desired alarms and rules
//! once → observe → plan → execute → status. The steps live in their own files: [`desired`]
//! (pure), [`observe`] (reads), [`plan`] (pure decisions), [`execute`] (writes).

pub mod desired;
pub(crate) mod execute;
pub(crate) mod observe;
pub(crate) mod plan;
pub(crate) mod presets;
pub(crate) mod validate;

use std::sync::Arc;

use kube::runtime::controller::Action;

use crate::aws::AwsError;
use crate::k8s::ClusterApi;
use crate::lint::rules::lint_alarm_policy;
use crate::names::OwnerIdentity;
use crate::reconcile::conditions::ConditionUpdate;
use crate::reconcile::lifecycle::{self, Applied, Reconciled, Requeue, StatusFields};
use crate::reconcile::outcome::{Blocker, Notice};
use crate::reconcile::{Context, ReconcileError};
use crate::resources::alarm_policy::{AlarmPolicy, AlarmPolicyStatus, LintFinding, LintLevel};
use crate::resources::{CONDITION_LINT, CONDITION_READY, DeletionPolicy};

use plan::{ObservedTopic, Recorded, TopicPlan};

/// Kind name used in ownership tags and events.
pub const KIND: &str = "AlarmPolicy";

/// Reconciles one AlarmPolicy (see [`lifecycle::reconcile`] for the shared steps).
pub async fn reconcile<C: ClusterApi>(
    policy: Arc<AlarmPolicy>,
    ctx: &Context<C>,
) -> Result<Action, ReconcileError> {
    lifecycle::reconcile(policy, ctx).await
}

impl StatusFields for AlarmPolicyStatus {
    fn conditions(&self) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
        &self.conditions
    }

    fn set_observed(
        &mut self,
        conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
        generation: Option<i64>,
    ) {
        self.conditions = conditions;
        self.observed_generation = generation;
    }
}

impl Reconciled for AlarmPolicy {
    const KIND: &'static str = KIND;
    type Status = AlarmPolicyStatus;

    fn current_status(&self) -> Option<&AlarmPolicyStatus> {
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
        let aws = &*ctx.aws;
        let recorded = Recorded::from_status(&self.status.clone().unwrap_or_default());
        let observed = observe::leftovers(aws, owner, &recorded).await?;
        let topic_tags = match &recorded.topic_arn {
            Some(arn) => match aws.topic_tags(arn).await {
                Ok(tags) => Some(tags),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let actions = plan::plan_deletion(&observed, &recorded, topic_tags.as_ref(), owner);
        let applied = execute::execute(aws, &owner.alarm_prefix(), &actions).await?;
        Ok(applied.notices)
    }

    async fn apply<C: ClusterApi>(
        &self,
        ctx: &Context<C>,
        owner: &OwnerIdentity,
    ) -> Applied<AlarmPolicyStatus> {
        let previous = self.status.clone().unwrap_or_default();

        // Lint first: findings are reported whatever happens next.
        let lint = lint_alarm_policy(&self.spec);
        let lint_condition = lint_condition(&lint);
        let lint_notices: Vec<Notice> = lint
            .iter()
            .filter(|f| !previous.lint.contains(f))
            .map(lint_notice)
            .collect();

        let violations = validate::validate(&self.spec);
        if !violations.is_empty() {
            let message = violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            let mut applied = Applied::invalid(
                "InvalidSpec",
                format!("the spec cannot be applied: {message}"),
                vec![lint_condition],
            );
            applied.status = Some(AlarmPolicyStatus { lint, ..previous });
            applied.notices = lint_notices;
            return applied;
        }

        let adopt = self
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(plan::ADOPT_ANNOTATION))
            .is_some_and(|v| v == "true");
        let mut applied = match apply_to_aws(&self.spec, &*ctx.aws, owner, &previous, adopt).await {
            Ok(outcome) => outcome.into_applied(lint.clone(), lint_condition),
            Err(e) => {
                let mut failed = Applied::failed(e, vec![lint_condition]);
                failed.status = Some(AlarmPolicyStatus {
                    lint: lint.clone(),
                    ..previous
                });
                failed
            }
        };
        let mut notices = lint_notices;
        notices.append(&mut applied.notices);
        applied.notices = notices;
        applied
    }
}

/// The result of a successful pass over AWS.
struct PolicyOutcome {
    topic_arn: Option<String>,
    topic_owned: bool,
    applied: execute::Applied,
    notices: Vec<Notice>,
    blockers: Vec<Blocker>,
}

impl PolicyOutcome {
    fn into_applied(
        self,
        lint: Vec<LintFinding>,
        lint_condition: ConditionUpdate,
    ) -> Applied<AlarmPolicyStatus> {
        let mut notices = self.notices;
        notices.extend(self.applied.notices);
        let (ready, requeue) = match lifecycle::blocked(&self.blockers) {
            Some((ready, warnings)) => {
                notices.extend(warnings);
                (ready, Requeue::Blocked)
            }
            None => (
                ConditionUpdate::truthy(
                    CONDITION_READY,
                    "Reconciled",
                    format!(
                        "the topic, {} alarms, {} event rules and {} metric filters match the spec",
                        self.applied.alarms.len(),
                        self.applied.rules.len(),
                        self.applied.filters.len()
                    ),
                ),
                Requeue::Resync,
            ),
        };
        let status = AlarmPolicyStatus {
            topic_arn: self.topic_arn.clone(),
            topic_owned: self.topic_arn.as_ref().map(|_| self.topic_owned),
            alarm_count: self.applied.alarms.len() as i32,
            firing: plan::firing(&self.applied.alarms) + plan::firing(&self.applied.composites),
            rule_count: self.applied.rules.len() as i32,
            alarms: self.applied.alarms,
            composite_alarms: self.applied.composites,
            event_rules: self.applied.rules,
            metric_filters: self.applied.filters,
            lint,
            ..AlarmPolicyStatus::default()
        };
        Applied {
            status: Some(status),
            conditions: vec![ready, lint_condition],
            notices,
            requeue,
            error: None,
        }
    }
}

/// The topic first (its ARN goes into the alarm actions), then the alarms and rules, built once.
async fn apply_to_aws(
    spec: &crate::resources::alarm_policy::AlarmPolicySpec,
    aws: &dyn crate::aws::ControllerAws,
    owner: &OwnerIdentity,
    previous: &AlarmPolicyStatus,
    adopt: bool,
) -> Result<PolicyOutcome, AwsError> {
    let recorded = Recorded::from_status(previous);
    let (topic, topic_tags) = desired::topic(spec, owner);
    let mut observed_topic = observe::topic(aws, &topic, &recorded).await?;
    let mut topic_plan = plan::plan_topic(&topic, &topic_tags, &observed_topic, owner, adopt);
    let mut notices = Vec::new();
    if let TopicPlan::Create(create) = &topic_plan {
        observed_topic = execute::create_topic(aws, create).await?;
        if observed_topic == ObservedTopic::NameTaken && adopt {
            // CreateTopic without tags returns the existing topic of that name: read it back and
            // plan its adoption.
            observed_topic = execute::find_topic(aws, create).await?;
        }
        topic_plan = plan::plan_topic(&topic, &topic_tags, &observed_topic, owner, adopt);
        if let TopicPlan::Ready {
            arn,
            adopted: false,
            ..
        } = &topic_plan
        {
            notices.push(Notice::normal(
                "TopicCreated",
                format!("created SNS topic {arn}"),
            ));
        }
    }
    let (topic_arn, topic_owned) = match topic_plan {
        TopicPlan::Ready {
            arn,
            owned,
            adopted,
            actions,
        } => {
            execute::topic(aws, &actions).await?;
            if adopted {
                notices.push(Notice::normal(
                    "Adopted",
                    format!(
                        "adopted SNS topic {arn}: it carried no alertops ownership tags and the \
                         policy opted in ({}); it is now managed (and deleted) with the policy",
                        plan::ADOPT_ANNOTATION
                    ),
                ));
            }
            (arn, owned)
        }
        TopicPlan::Blocked(blocker) => {
            return Ok(PolicyOutcome {
                topic_arn: None,
                topic_owned: false,
                applied: execute::Applied::default(),
                notices,
                blockers: vec![blocker],
            });
        }
        // Created but not readable yet (SNS is eventually consistent): look again soon.
        TopicPlan::Create(_) => {
            return Err(AwsError::new(
                crate::aws::AwsErrorKind::NotFound,
                "GetTopicAttributes",
                "NotFound",
                "the topic was created but cannot be read back yet",
            ));
        }
    };

    let desired = desired::build(spec, owner, &topic_arn);
    let observed = observe::alarms_and_rules(
        aws,
        owner,
        &desired.alarms,
        &desired.composites,
        &desired.rules,
        &desired.filters,
        &recorded,
    )
    .await?;
    let actions = plan::plan(&desired, &topic_arn, &observed, &recorded, owner, adopt);
    let blockers = actions.iter().filter_map(plan::Action::blocker).collect();
    let applied = execute::execute(aws, &owner.alarm_prefix(), &actions).await?;
    notices.extend(plan::state_transitions(&recorded, &applied.alarms));
    notices.extend(plan::state_transitions(&recorded, &applied.composites));
    Ok(PolicyOutcome {
        topic_arn: Some(topic_arn),
        topic_owned,
        applied,
        notices,
        blockers,
    })
}

fn lint_notice(finding: &LintFinding) -> Notice {
    Notice {
        warning: finding.level == LintLevel::Error,
        reason: "LintFinding",
        note: format!("[{}] {}", finding.rule, finding.message),
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

#[cfg(test)]
mod fleet_tests;
#[cfg(test)]
mod tests;
