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
    /// Consume one AlertRoute's queue and deliver its alerts to Slack (the route's Deployment).
    Consume(ConsumeArgs),
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
    /// Image of the workloads alertops runs per resource (consumers, digest jobs); defaults to
    /// this release's image.
    #[arg(long, env = "ALERTOPS_WORKLOAD_IMAGE")]
    pub workload_image: Option<String>,
    /// `KEY=VALUE` annotation for the workloads' service accounts (repeatable), e.g.
    /// `eks.amazonaws.com/role-arn=arn:aws:iam::123456789012:role/alertops-consumer` for IRSA.
    #[arg(long = "workload-service-account-annotation", value_name = "KEY=VALUE")]
    pub workload_service_account_annotations: Vec<String>,
}

impl OperatorArgs {
    /// The reconcilers' settings.
    pub fn settings(&self) -> Result<OperatorSettings, String> {
        let mut settings = OperatorSettings::new(self.cluster_id.clone());
        settings.resync_interval = Duration::from_secs(self.resync_seconds.max(10));
        if let Some(image) = self.workload_image.clone().filter(|i| !i.is_empty()) {
            settings.workload_image = image;
        }
        for annotation in &self.workload_service_account_annotations {
            let (key, value) = annotation.split_once('=').ok_or_else(|| {
                format!("service-account annotation {annotation:?} must be KEY=VALUE")
            })?;
            settings
                .service_account_annotations
                .insert(key.to_string(), value.to_string());
        }
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
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "ALERTOPS_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub http_listen: std::net::SocketAddr,
    /// Watch only this namespace (the chart then grants a namespaced Role); all when unset.
    #[arg(long, env = "ALERTOPS_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
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

/// `alertops consume`.
#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// The AlertRoute to serve, as `NAMESPACE/NAME`.
    #[arg(long, env = "ALERTOPS_ROUTE")]
    pub route: String,
    /// Base URL of Slack's Web API.
    #[arg(
        long,
        env = "ALERTOPS_SLACK_API_BASE",
        default_value = "https://slack.com/api/"
    )]
    pub slack_api_base: String,
    /// Long-poll wait of each ReceiveMessage, in seconds (0 to 20).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub wait_seconds: u64,
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
        Command::Consume(args) => {
            init_logging(cli.log_format);
            let command = crate::consume::ConsumeCommand {
                route: args.route,
                slack_api_base: args.slack_api_base,
                wait_seconds: args.wait_seconds,
            };
            match crate::consume::run_command(command).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "consumer stopped");
                    ExitCode::FAILURE
                }
            }
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
