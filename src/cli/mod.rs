//! The `alertops` command line: one binary, one subcommand per workload.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::reconcile::OperatorSettings;

/// alertops: AWS alerting declared as Kubernetes resources.
#[derive(Parser, Debug)]
#[command(name = "alertops", version, about)]
pub struct Cli {
    /// Log format: `json` for clusters (one object per line), `text` for people.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "ALERTOPS_LOG_FORMAT", global = true)]
    pub log_format: LogFormat,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON objects with the resource and alert fingerprint as fields.
    Json,
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
    /// Run a DigestSchedule once: drain its queue, email the summary, delete what was sent.
    Digest(DigestArgs),
}

/// Flags shared by every workload that reconciles or names AWS resources.
#[derive(Args, Debug, Clone)]
pub struct OperatorArgs {
    /// Identifies this Kubernetes cluster in AWS names and ownership tags; two clusters sharing an
    /// AWS account must use different ids.
    #[arg(long, env = "ALERTOPS_CLUSTER_ID")]
    pub cluster_id: String,
    /// Seconds between two comparisons of a Ready resource with AWS.
    #[arg(long, env = "ALERTOPS_RESYNC_SECONDS", default_value_t = 600)]
    pub resync_seconds: u64,
}

impl OperatorArgs {
    /// The reconcilers' settings.
    pub fn settings(&self) -> Result<OperatorSettings, String> {
        let settings = OperatorSettings {
            cluster_id: self.cluster_id.clone(),
            resync_interval: Duration::from_secs(self.resync_seconds.max(10)),
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// `alertops controller`.
#[derive(Args, Debug)]
pub struct ControllerArgs {
    /// Operator settings.
    #[command(flatten)]
    pub operator: OperatorArgs,
    /// Namespace of the leader-election Lease (the controller's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "alertops-system")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "alertops-controller")]
    pub lease_name: String,
    /// Identity of this replica in the Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
}

/// `alertops crds`.
#[derive(Args, Debug)]
pub struct CrdsArgs {
    /// Write one file per CRD into this folder instead of printing them.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

/// `alertops lint`.
#[derive(Args, Debug)]
pub struct LintArgs {
    /// A manifest file or a folder of manifests.
    #[arg(short = 'f', long = "filename")]
    pub path: PathBuf,
}

/// `alertops digest`.
#[derive(Args, Debug)]
pub struct DigestArgs {
    /// The DigestSchedule to run, as `NAMESPACE/NAME`.
    #[arg(long, value_parser = parse_namespaced_name)]
    pub schedule: (String, String),
    /// Base URL of the Slack Web API (the Slack summary, when the schedule has one).
    #[arg(
        long,
        env = "ALERTOPS_SLACK_API_BASE",
        default_value = "https://slack.com/api/"
    )]
    pub slack_api_base: String,
}

/// Parses `NAMESPACE/NAME`.
fn parse_namespaced_name(value: &str) -> Result<(String, String), String> {
    match value.split_once('/') {
        Some((namespace, name))
            if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
        {
            Ok((namespace.to_string(), name.to_string()))
        }
        _ => Err(format!("expected NAMESPACE/NAME, got {value:?}")),
    }
}

/// Sets up logging.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,aws_smithy_runtime=warn,aws_config=warn,kube=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

/// Runs the command line.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Crds(args) => crds(args),
        Command::Lint(args) => lint(args),
        Command::Digest(args) => {
            init_logging(cli.log_format);
            digest(args).await
        }
        Command::Controller(args) => {
            init_logging(cli.log_format);
            match crate::controller::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "controller stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Runs one digest; a failed run exits non-zero so that the CronJob's Job shows it.
async fn digest(args: DigestArgs) -> ExitCode {
    let (namespace, name) = args.schedule;
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot reach the Kubernetes API");
            return ExitCode::FAILURE;
        }
    };
    let cluster = crate::k8s::KubeCluster::new(client);
    let aws = crate::aws::AwsClients::from_env(crate::aws::AwsSettings::default()).await;
    let slack = crate::slack::SlackClient::new(crate::slack::SlackSettings {
        api_base: args.slack_api_base,
        ..Default::default()
    });
    match crate::digest::run_digest(
        &cluster,
        &aws,
        &slack,
        &namespace,
        &name,
        chrono::Utc::now(),
    )
    .await
    {
        Ok(report) => {
            tracing::info!(
                schedule = %report.schedule,
                alerts = report.run.alert_count,
                sent = report.run.sent,
                "digest done"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "digest run failed");
            ExitCode::FAILURE
        }
    }
}

fn crds(args: CrdsArgs) -> ExitCode {
    use crate::resources::crd;
    match args.output_dir {
        None => {
            print!("{}", crd::all_yaml());
            ExitCode::SUCCESS
        }
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("cannot create {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
            for c in crd::all() {
                let path = dir.join(crd::file_name(&c));
                if let Err(e) = std::fs::write(&path, crd::to_yaml(&c)) {
                    eprintln!("cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
    }
}

fn lint(args: LintArgs) -> ExitCode {
    match crate::lint::lint_path(&args.path) {
        Ok(report) => {
            print!("{}", report.render());
            if report.has_errors() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("alertops lint: {e}");
            ExitCode::from(2)
        }
    }
}
