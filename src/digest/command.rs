//! `alertops digest`: one run of a DigestSchedule, as its CronJob's Job.

use std::process::ExitCode;

use clap::Args;

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
    /// AWS rate limits.
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
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

/// Runs one digest; a failed run exits non-zero so that the CronJob's Job shows it.
pub async fn run_command(args: DigestArgs) -> ExitCode {
    let (namespace, name) = args.schedule;
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot reach the Kubernetes API");
            return ExitCode::FAILURE;
        }
    };
    let cluster = crate::k8s::KubeCluster::new(client);
    let aws = crate::aws::AwsClients::from_env(args.aws.settings()).await;
    let slack = crate::slack::SlackClient::new(crate::slack::SlackSettings {
        api_base: args.slack_api_base,
        ..Default::default()
    });
    match super::run_digest(
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
