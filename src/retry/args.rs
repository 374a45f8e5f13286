//! The flags of `alertops retry`: the retry Job's command line, written by `interact`.

use clap::{Args, Parser, Subcommand};

use crate::secret::Secret;

/// `alertops retry` (the retry Job's command line, written by `interact`).
#[derive(Args, Debug)]
pub struct RetryArgs {
    /// The AlertRoute whose retry policy applies, `namespace/name`.
    #[arg(long)]
    pub route: String,
    /// The failed EMR cluster to rebuild.
    #[arg(long)]
    pub cluster: String,
    /// This attempt's number (the failed cluster's attempt tag + 1).
    #[arg(long)]
    pub attempt: u32,
    /// Slack user id of who pressed Retry.
    #[arg(long)]
    pub user: String,
    /// Fingerprint of the alert, to update its part of the message.
    #[arg(long)]
    pub fingerprint: Option<String>,
    /// The interaction's response URL.
    #[arg(long, env = "ALERTOPS_RESPONSE_URL", hide_env_values = true)]
    pub response_url: Option<Secret>,
    /// The Slack message to update, as JSON `{"text", "blocks"}`.
    #[arg(long, env = "ALERTOPS_SLACK_MESSAGE", hide_env_values = true)]
    pub message_json: Option<String>,
    /// Channel of the message, for a thread reply with the route's bot token.
    #[arg(long, requires = "message_ts")]
    pub channel: Option<String>,
    /// Timestamp of the message, for a thread reply.
    #[arg(long, requires = "channel")]
    pub message_ts: Option<String>,
    /// Base URL of Slack's Web API.
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

impl RetryArgs {
    /// The request these flags describe, or what is wrong with them.
    pub fn request(&self) -> Result<super::RetryRequest, String> {
        let (namespace, name) = self
            .route
            .split_once('/')
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
            .ok_or_else(|| format!("--route must be namespace/name, not {:?}", self.route))?;
        if self.attempt == 0 {
            return Err("--attempt counts from 1".into());
        }
        let message = match &self.message_json {
            Some(json) if !json.trim().is_empty() => {
                Some(serde_json::from_str(json).map_err(|e| {
                    format!("the Slack message is not {{\"text\", \"blocks\"}} JSON: {e}")
                })?)
            }
            _ => None,
        };
        Ok(super::RetryRequest {
            route: crate::slack::RouteRef {
                namespace: namespace.to_string(),
                name: name.to_string(),
            },
            cluster_id: self.cluster.clone(),
            attempt: self.attempt,
            user_id: self.user.clone(),
            fingerprint: self
                .fingerprint
                .clone()
                .map(crate::alert::Fingerprint::from_raw),
            response_url: self
                .response_url
                .clone()
                .map(|s| s.0)
                .filter(|u| !u.is_empty()),
            message,
            posted: self
                .channel
                .clone()
                .zip(self.message_ts.clone())
                .map(|(channel, ts)| crate::slack::PostedMessage { channel, ts }),
        })
    }
}

/// Parses the arguments of a retry Job's container (`retry --route ... --cluster ...`), as the
/// local mode does to run the Jobs `interact` creates.
pub fn parse_job_args(args: impl IntoIterator<Item = String>) -> Result<RetryArgs, clap::Error> {
    #[derive(Parser)]
    #[command(name = "alertops")]
    struct JobCommandLine {
        #[command(subcommand)]
        command: JobCommand,
    }
    #[derive(Subcommand)]
    enum JobCommand {
        Retry(RetryArgs),
    }
    let JobCommandLine {
        command: JobCommand::Retry(args),
    } = JobCommandLine::try_parse_from(std::iter::once("alertops".to_string()).chain(args))?;
    Ok(args)
}
