//! `alertops plan -f DIR`: what applying the manifests of a folder would change in AWS, read-only,
//! for pull-request review. Terraform users have `terraform plan`; this is ours.
//!
//! - The manifests are those `alertops lint` reads, validated the same way (schemas, CEL, alarm
//!   lint rules, the reconcilers' own spec validation). An invalid manifest plans nothing: exit 1.
//! - Each resource is planned with the controller's own code: the desired state
//!   ([`crate::reconcile::alarm_policy::desired`]), its observation, and its plan
//!   ([`crate::reconcile::alarm_policy::plan`], [`crate::reconcile::queues::plan`]); only the
//!   executors are left out. What it prints is what the controller will do.
//! - A folder has no `status`, so the plan is that of a **fresh reconcile**, the one the
//!   controller runs when its status is lost: the policy's topic is found by its derived name,
//!   ownership is decided by the `alertops.dev/cluster` and `alertops.dev/owner` tags alone, and
//!   the queue's current subscriptions stand for the recorded ones. A resource the controller
//!   recorded but that lacks our tags (tags removed by hand) is shown as not owned here, while
//!   the controller, trusting its status, would rewrite it.
//! - Deletions: what a policy in the manifests no longer declares (an alarm or rule removed from
//!   its spec, a topic no longer its source) is shown as the controller will delete it. Resources
//!   of alertops resources that are missing from the folder altogether are shown only with
//!   `--prune` (see [`prune`]), since a folder may hold only part of what a cluster runs.
//! - Read-only by construction (only reads are called) and by check: the command fails when the
//!   gateway's call log holds a write ([`crate::aws::is_write_operation`]).
//!
//! Exit codes: 0 no changes, 2 changes, 1 error (invalid manifests, settings, AWS).

pub mod changes;
pub mod collect;
pub mod prune;
pub mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::aws::{AwsClients, AwsError, AwsSettings, CallRecord};
use crate::controller::OperatorArgs;
use crate::lint::LintError;
use crate::lint::manifests::{AlertopsKind, DocumentClass, load_path};
use crate::lint::schema::SchemaValidator;
use crate::reconcile::OperatorSettings;
use crate::reconcile::digest_schedule::{self, schedule::Schedule};
use crate::resources::{AlarmPolicy, AlertRoute, DigestSchedule};

pub use collect::Manifests;
pub use report::{AwsCalls, ChangeAction, PlanReport, ResourceChange, ResourceType};

/// Exit code when applying the manifests would change AWS.
pub const EXIT_CHANGES: u8 = 2;

/// How the plan is printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// For people: changes with old → new per field, then a summary.
    #[default]
    Text,
    /// For CI bots: one JSON document (schema in docs/plan.md).
    Json,
}

/// `alertops plan`.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// A manifest file or a folder of manifests (as for `alertops lint`).
    #[arg(short = 'f', long = "filename")]
    pub path: PathBuf,
    /// `text` for people, `json` for CI bots.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Namespace of manifests that name none (as `kubectl apply -n`).
    #[arg(short = 'n', long = "namespace", default_value = "default")]
    pub default_namespace: String,
    /// Also show, as deletions, the AWS resources of alertops resources that are in none of the
    /// manifests, within the namespaces the manifests use: pass it only when the folder holds
    /// everything those namespaces run (as Argo CD with pruning).
    #[arg(long)]
    pub prune: bool,
    /// The controller's identity: the same cluster id (and allow-lists) as the controller, or
    /// the derived names and ownership differ.
    #[command(flatten)]
    pub operator: OperatorArgs,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The manifests could not be read.
    #[error(transparent)]
    Read(#[from] LintError),
    /// A manifest is invalid; nothing was planned.
    #[error("invalid manifests, nothing was planned:\n{0}")]
    Invalid(String),
    /// The operator flags are invalid.
    #[error("settings: {0}")]
    Settings(String),
    /// AWS refused or failed a read.
    #[error("AWS: {0}")]
    Aws(#[from] AwsError),
    /// The plan called a writing operation (a bug: the plan must never write).
    #[error("the plan made write calls to AWS ({0}); it must never write, please report this")]
    Wrote(String),
}

/// Loads and validates the alertops resources of `path`: all or nothing, like the local mode.
/// `now` dates the digests' schedules (their queue retention follows the longest gap from now).
pub fn load(
    path: &Path,
    default_namespace: &str,
    now: DateTime<Utc>,
) -> Result<Manifests, PlanError> {
    let loaded = load_path(path)?;
    let validator = SchemaValidator::new()?;
    let report = crate::lint::lint_manifests(&loaded, &validator);
    if report.has_errors() {
        return Err(PlanError::Invalid(report.render()));
    }
    let mut manifests = Manifests::default();
    let mut problems = Vec::new();
    for document in &loaded.documents {
        let DocumentClass::Alertops(kind) = document.class else {
            continue;
        };
        let mut value = document.value.clone();
        if document.namespace().is_none() {
            value["metadata"]["namespace"] = default_namespace.into();
        }
        let origin = &document.origin;
        let invalid = |e: &dyn std::fmt::Display| format!("{origin}: {kind}: {e}");
        match kind {
            AlertopsKind::AlarmPolicy => match serde_json::from_value::<AlarmPolicy>(value) {
                Ok(policy) => {
                    let violations =
                        crate::reconcile::alarm_policy::validate::validate(&policy.spec);
                    if violations.is_empty() {
                        manifests.policies.push(policy);
                    } else {
                        problems.extend(violations.iter().map(|v| invalid(v)));
                    }
                }
                Err(e) => problems.push(invalid(&e)),
            },
            AlertopsKind::AlertRoute => match serde_json::from_value::<AlertRoute>(value) {
                Ok(route) => manifests.routes.push(route),
                Err(e) => problems.push(invalid(&e)),
            },
            AlertopsKind::DigestSchedule => match serde_json::from_value::<DigestSchedule>(value) {
                Ok(digest) => {
                    match Schedule::parse(&digest.spec.schedule, &digest.spec.time_zone)
                        .and_then(|s| s.retention_seconds(now))
                    {
                        Ok(retention) => manifests
                            .digests
                            .push((digest, digest_schedule::queue_config(retention))),
                        Err(e) => problems.push(invalid(&e)),
                    }
                }
                Err(e) => problems.push(invalid(&e)),
            },
        }
    }
    if problems.is_empty() {
        Ok(manifests)
    } else {
        Err(PlanError::Invalid(problems.join("\n")))
    }
}

/// Plans `manifests` against AWS through `aws`, and checks that nothing was written.
pub async fn plan_with(
    aws: &AwsClients,
    settings: &OperatorSettings,
    manifests: &Manifests,
    prune: bool,
) -> Result<PlanReport, PlanError> {
    let before = aws.call_log().snapshot().len();
    let mut report = collect::plan(aws, settings, manifests, prune).await?;
    if prune {
        prune::plan(aws, settings, manifests, &mut report).await?;
    }
    let calls: Vec<CallRecord> = aws.call_log().snapshot().into_iter().skip(before).collect();
    report.aws_calls = read_only(&calls)?;
    Ok(report)
}

/// The count of `calls`, or the error naming the writes among them.
pub fn read_only(calls: &[CallRecord]) -> Result<AwsCalls, PlanError> {
    let writes: Vec<&str> = calls
        .iter()
        .filter(|c| c.is_write())
        .map(|c| c.operation.as_str())
        .collect();
    if !writes.is_empty() {
        return Err(PlanError::Wrote(writes.join(", ")));
    }
    Ok(AwsCalls {
        reads: calls.len(),
        writes: 0,
    })
}

/// Runs `alertops plan` and returns the report.
pub async fn run(args: &PlanArgs) -> Result<PlanReport, PlanError> {
    let settings = args.operator.settings().map_err(PlanError::Settings)?;
    let manifests = load(&args.path, &args.default_namespace, Utc::now())?;
    let aws = AwsClients::from_env(AwsSettings::default()).await;
    plan_with(&aws, &settings, &manifests, args.prune).await
}

/// `alertops plan`: prints the plan; exit 0 without changes, 2 with changes, 1 on errors.
pub async fn run_command(args: PlanArgs) -> ExitCode {
    match run(&args).await {
        Ok(report) => {
            match args.output {
                OutputFormat::Text => print!("{}", report.render_text()),
                OutputFormat::Json => println!("{:#}", report.to_json()),
            }
            if report.has_changes() {
                ExitCode::from(EXIT_CHANGES)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("alertops plan: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::CallOutcome;

    fn call(operation: &str) -> CallRecord {
        CallRecord {
            service: "CloudWatch".into(),
            operation: operation.into(),
            outcome: CallOutcome::Success,
        }
    }

    #[test]
    fn a_write_in_the_call_log_fails_the_plan() {
        let reads = [call("DescribeAlarms"), call("ListTagsForResource")];
        assert_eq!(
            read_only(&reads).unwrap(),
            AwsCalls {
                reads: 2,
                writes: 0
            }
        );
        let error = read_only(&[call("DescribeAlarms"), call("PutMetricAlarm")]).unwrap_err();
        assert!(error.to_string().contains("PutMetricAlarm"), "{error}");
    }

    #[test]
    fn manifests_without_a_namespace_take_the_default_and_bad_schedules_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("m.yaml"),
            "apiVersion: alertops.dev/v1alpha1\nkind: AlarmPolicy\nmetadata: {name: p}\nspec: {}\n",
        )
        .unwrap();
        let manifests = load(dir.path(), "team-a", Utc::now()).unwrap();
        assert_eq!(
            manifests.policies[0].metadata.namespace.as_deref(),
            Some("team-a")
        );
        std::fs::write(
            dir.path().join("d.yaml"),
            "apiVersion: alertops.dev/v1alpha1\nkind: DigestSchedule\nmetadata: {name: d}\n\
             spec:\n  schedule: '0 8 1 1 *'\n  timeZone: UTC\n  sources: [{alarmPolicy: p}]\n  \
             email: {from: a@example.com, to: [b@example.com]}\n",
        )
        .unwrap();
        let error = load(dir.path(), "team-a", Utc::now()).unwrap_err();
        assert!(
            matches!(&error, PlanError::Invalid(m) if m.contains("DigestSchedule") && m.contains("14 days")),
            "a yearly digest cannot keep its messages: {error}"
        );
    }
}
