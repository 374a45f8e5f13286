//! The flags of `alertops interact`.

use clap::Args;

use crate::secret::Secret;

/// `alertops interact`.
#[derive(Args, Debug)]
pub struct InteractArgs {
    /// Address to listen on.
    #[arg(long, env = "ALERTOPS_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: std::net::SocketAddr,
    /// Base URL of Slack's Web API (user groups); passed on to the retry Jobs.
    #[arg(
        long,
        env = "ALERTOPS_SLACK_API_BASE",
        default_value = "https://slack.com/api/"
    )]
    pub slack_api_base: String,
    /// The Slack app's signing secret (set it through the environment).
    #[arg(long, env = "ALERTOPS_SLACK_SIGNING_SECRET", hide_env_values = true)]
    pub signing_secret: Secret,
    /// The master key of button values, at least 32 bytes: each button is checked with its
    /// route's key derived from it, as the controller derives the consumers' keys (set it
    /// through the environment).
    #[arg(long, env = "ALERTOPS_ACTION_TOKEN_KEY", hide_env_values = true)]
    pub action_token_key: Secret,
    /// The alertops image the retry Jobs run.
    #[arg(long, env = "ALERTOPS_WORKLOAD_IMAGE")]
    pub workload_image: String,
    /// `imagePullPolicy` of the retry Jobs.
    #[arg(long, env = "ALERTOPS_WORKLOAD_IMAGE_PULL_POLICY")]
    pub workload_image_pull_policy: Option<String>,
    /// ServiceAccount of the retry Jobs when the workloads share one per namespace; unset, a
    /// Job runs as its route's consumer.
    #[arg(long, env = "ALERTOPS_WORKLOAD_SERVICE_ACCOUNT")]
    pub workload_service_account: Option<String>,
    /// Hours a button stays usable after its message was posted; finished retry Jobs are kept as
    /// long, so a replayed click still finds its Job.
    #[arg(long, env = "ALERTOPS_BUTTON_MAX_AGE_HOURS", default_value_t = 168)]
    pub button_max_age_hours: u32,
    /// AWS rate limits.
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}
