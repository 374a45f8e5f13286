//! The `alertops` command line: one binary, one subcommand per workload. Each subcommand's flags
//! and entry point live with the subcommand; this module only composes them.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::consume::ConsumeArgs;
use crate::controller::ControllerArgs;
use crate::digest::command::DigestArgs;
use crate::interact::InteractArgs;
use crate::lint::LintArgs;
use crate::local::command::LocalArgs;
use crate::plan::PlanArgs;
use crate::redrive::RedriveArgs;
use crate::resources::crd::CrdsArgs;
use crate::retry::RetryArgs;
use crate::telemetry::logging::{LogFormat, init_logging};

/// alertops: AWS alerting declared as Kubernetes resources.
#[derive(Parser, Debug)]
#[command(name = "alertops", version, about)]
pub struct Cli {
    /// Log format: `json` for clusters (one object per line), `text` for people.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = crate::telemetry::logging::LOG_FORMAT_ENV, global = true)]
    pub log_format: LogFormat,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller: reconcile the alertops resources into AWS (leader-elected).
    Controller(ControllerArgs),
    /// Print the CustomResourceDefinitions, or write them to a folder.
    Crds(CrdsArgs),
    /// Validate manifests offline against the CRD schemas and the alarm lint rules.
    Lint(LintArgs),
    /// Show what applying manifests would change in AWS, read-only: exit 0 without changes, 2
    /// with changes, 1 on errors.
    Plan(PlanArgs),
    /// Consume one AlertRoute's queue and deliver its alerts to Slack (the route's Deployment).
    Consume(ConsumeArgs),
    /// Serve Slack's interactivity Request URL: acknowledge alerts, start retry Jobs.
    Interact(InteractArgs),
    /// Retry a failed EMR cluster (the command of the Jobs `interact` creates).
    Retry(RetryArgs),
    /// Run a DigestSchedule once: drain its queue, email the summary, delete what was sent.
    Digest(DigestArgs),
    /// Move an AlertRoute's dead-lettered messages back to its queue, to be delivered again.
    Redrive(RedriveArgs),
    /// Run everything without a cluster: manifests from a folder, AWS from the standard
    /// environment (an emulator for the demo), Slack at a given URL.
    Local(LocalArgs),
}

/// The operator flags `alertops plan` shares with the controller but never reads: they shape the
/// Kubernetes workloads, which a plan of AWS changes does not show. Still accepted (a CI job may
/// pass the controller's flags or environment as they are), but left out of `plan --help`.
const FLAGS_PLAN_IGNORES: &[&str] = &[
    "resync_seconds",
    "workload_image",
    "workload_service_account_annotations",
    "workload_service_account_annotations_json",
    "workload_service_account",
    "workload_image_pull_policy",
    "action_key_secret",
    "slack_api_base",
    "aws_endpoint_url",
];

/// The command line as clap renders and parses it.
pub fn command() -> clap::Command {
    Cli::command().mut_subcommand("plan", |plan| {
        FLAGS_PLAN_IGNORES
            .iter()
            .fold(plan, |plan, id| plan.mut_arg(*id, |arg| arg.hide(true)))
    })
}

/// Parses the process's arguments (exits with clap's message on an error or `--help`).
pub fn parse() -> Cli {
    let mut matches = command().get_matches();
    Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut command()).exit())
}

/// Runs the command line.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Crds(args) => crate::resources::crd::run_command(args),
        Command::Lint(args) => crate::lint::run_command(args),
        Command::Plan(args) => crate::plan::run_command(args).await,
        Command::Consume(args) => {
            init_logging(cli.log_format);
            crate::consume::run_command(args).await
        }
        Command::Interact(args) => {
            init_logging(cli.log_format);
            crate::interact::run_command(args).await
        }
        Command::Digest(args) => {
            init_logging(cli.log_format);
            crate::digest::command::run_command(args).await
        }
        Command::Local(args) => {
            init_logging(cli.log_format);
            crate::local::command::run_command(args).await
        }
        Command::Redrive(args) => {
            init_logging(cli.log_format);
            crate::redrive::run_command(args).await
        }
        Command::Retry(args) => {
            init_logging(cli.log_format);
            crate::retry::run_command(args).await
        }
        Command::Controller(args) => {
            init_logging(cli.log_format);
            crate::controller::run_command(args).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator(args: &[&str]) -> Result<crate::reconcile::OperatorSettings, String> {
        let mut argv = vec!["alertops", "controller", "--cluster-id", "prod"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        let Command::Controller(args) = cli.command else {
            panic!("not the controller");
        };
        args.operator.settings()
    }

    #[test]
    fn annotations_come_as_json_and_as_key_value_pairs() {
        let settings = operator(&[
            "--workload-service-account-annotations",
            r#"{"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/a", "x": "1"}"#,
            "--workload-service-account-annotation",
            "x=2",
        ])
        .unwrap();
        assert_eq!(
            settings.service_account_annotations["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::1:role/a"
        );
        assert_eq!(settings.service_account_annotations["x"], "2", "pairs win");
        let error = operator(&["--workload-service-account-annotations", "[1]"]).unwrap_err();
        assert!(error.contains("JSON object"), "{error}");
        assert!(operator(&["--workload-service-account-annotations", ""]).is_ok());
    }

    #[test]
    fn plan_takes_the_folder_the_output_and_the_controllers_identity() {
        let cli = Cli::try_parse_from([
            "alertops",
            "plan",
            "-f",
            "alerting/",
            "--cluster-id",
            "prod",
            "-o",
            "json",
            "--prune",
        ])
        .unwrap();
        let Command::Plan(args) = cli.command else {
            panic!("not the plan");
        };
        assert_eq!(args.path, std::path::PathBuf::from("alerting/"));
        assert_eq!(args.output, crate::plan::OutputFormat::Json);
        assert!(args.prune);
        assert_eq!(args.default_namespace, "default");
        assert_eq!(args.operator.settings().unwrap().cluster_id, "prod");
        assert!(
            Cli::try_parse_from(["alertops", "plan", "--cluster-id", "prod"]).is_err(),
            "the folder is required"
        );
    }

    #[test]
    fn plan_help_shows_only_the_flags_plan_uses() {
        let help = |name: &str| {
            command()
                .find_subcommand_mut(name)
                .expect("the subcommand")
                .render_long_help()
                .to_string()
        };
        let plan = help("plan");
        for used in [
            "--filename",
            "--prune",
            "--cluster-id",
            "--allowed-namespaces",
            "--allowed-source-topics",
            "--slack-outage-tolerance-seconds",
        ] {
            assert!(plan.contains(used), "{used} missing from:\n{plan}");
        }
        let controller = help("controller");
        for unused in [
            "--resync-seconds",
            "--workload-image",
            "--workload-service-account",
            "--workload-image-pull-policy",
            "--action-key-secret",
            "--slack-api-base",
            "--aws-endpoint-url",
        ] {
            assert!(!plan.contains(unused), "{unused} in:\n{plan}");
            assert!(
                controller.contains(unused),
                "{unused} missing from:\n{controller}"
            );
        }
        // Hidden, not refused: the controller's flags still parse.
        let mut matches = command()
            .try_get_matches_from([
                "alertops",
                "plan",
                "-f",
                "alerting/",
                "--cluster-id",
                "prod",
                "--workload-image",
                "alertops:dev",
            ])
            .expect("parses");
        assert!(matches!(
            Cli::from_arg_matches_mut(&mut matches).unwrap().command,
            Command::Plan(_)
        ));
    }

    #[test]
    fn controller_passes_workload_settings_on() {
        let settings = operator(&[
            "--action-key-secret",
            "alertops-system/alertops-action-key/key",
            "--slack-api-base",
            "https://slack.example/api/",
            "--workload-service-account",
            "alertops-workload",
            "--workload-image-pull-policy",
            "Always",
        ])
        .unwrap();
        assert_eq!(
            settings.action_key_secret.as_deref(),
            Some("alertops-system/alertops-action-key/key")
        );
        assert_eq!(
            settings.slack_api_base.as_deref(),
            Some("https://slack.example/api/")
        );
        assert_eq!(
            settings.workload_service_account.as_deref(),
            Some("alertops-workload")
        );
        assert_eq!(
            settings.workload_image_pull_policy.as_deref(),
            Some("Always")
        );
        assert!(operator(&["--action-key-secret", "only/two"]).is_err());
    }

    #[test]
    fn the_outage_tolerance_is_two_hours_unless_set_and_at_most_eleven() {
        let hours = |h: u64| std::time::Duration::from_secs(h * 3600);
        assert_eq!(operator(&[]).unwrap().slack_outage_tolerance, hours(2));
        let settings = operator(&["--slack-outage-tolerance-seconds", "14400"]).unwrap();
        assert_eq!(settings.slack_outage_tolerance, hours(4));
        assert_eq!(
            settings
                .workload_params(None)
                .slack_outage_tolerance_seconds,
            14400,
            "passed on to the consumers"
        );
        assert!(operator(&["--slack-outage-tolerance-seconds", "39600"]).is_ok());
        assert!(
            operator(&["--slack-outage-tolerance-seconds", "39601"]).is_err(),
            "SQS keeps a received message invisible for at most 12 hours"
        );
    }
}
