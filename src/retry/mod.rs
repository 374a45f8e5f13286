//! `alertops retry`, the command of the Job the interaction endpoint creates: check the failed
//! EMR cluster again as AWS describes it now ([`check`]: failed, the route's, attempt not yet in
//! AWS, within the cap), rebuild its definition, submit `RunJobFlow` with the attempt and
//! original-cluster tags, and report the outcome to the Slack message.
//!
//! The rebuild ([`rebuild`]) and the rules ([`policy`]) are pure; this module does the I/O.

mod args;
pub(crate) mod policy;
pub(crate) mod rebuild;

use aws_sdk_emr::operation::run_job_flow::RunJobFlowInput;
use aws_sdk_emr::types::{Cluster, InstanceCollectionType};
use serde_json::json;

use crate::alert::Fingerprint;
use crate::aws::{AwsClients, AwsError, emr};
use crate::k8s::{ClusterApi, ClusterError};
use crate::resources::{AlertRoute, Tags};
use crate::slack::{
    PostedMessage, RetryProgress, RetryStatus, RouteRef, SlackClient, SlackMessage,
    mark_retry_progress,
};

pub use args::{RetryArgs, parse_job_args};
pub use policy::{AttemptInfo, ChainCluster, Refusal, attempt_info};
pub use rebuild::{ClusterDefinition, RebuildError, rebuild_run_job_flow};

/// What the retry Job was asked to do (its command-line flags).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryRequest {
    /// The AlertRoute whose policy applies.
    pub route: RouteRef,
    /// The failed cluster to rebuild.
    pub cluster_id: String,
    /// The attempt number the interaction endpoint computed (failed cluster's attempt + 1).
    pub attempt: u32,
    /// Slack user id of who pressed Retry.
    pub user_id: String,
    /// The alert's fingerprint, to update its part of the message.
    pub fingerprint: Option<Fingerprint>,
    /// The interaction's `response_url`, to update the message.
    pub response_url: Option<String>,
    /// The message as the endpoint last set it ("Retry N/M started by ...").
    pub message: Option<SlackMessage>,
    /// Channel and timestamp of the message, for a thread reply with the route's bot token.
    pub posted: Option<PostedMessage>,
}

/// How a retry ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryOutcome {
    /// `RunJobFlow` accepted the new cluster.
    Submitted {
        /// The new cluster's id.
        new_cluster_id: String,
    },
    /// The retry was not allowed (disabled, cluster not failed or not the route's, attempt
    /// already in AWS, attempts used up); nothing was started.
    Refused {
        /// Why, for people.
        reason: String,
    },
    /// Something failed before a cluster started.
    Failed {
        /// Why, for people.
        reason: String,
    },
}

/// Why a step of the retry failed.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// The route could not be read.
    #[error("reading AlertRoute {route}: {source}")]
    Route {
        /// `namespace/name`.
        route: String,
        /// The cluster's answer.
        source: ClusterError,
    },
    /// The route does not exist.
    #[error("AlertRoute {0} does not exist")]
    RouteMissing(String),
    /// An EMR call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// DescribeCluster returned no cluster.
    #[error("EMR did not describe cluster {0}")]
    ClusterMissing(String),
    /// The cluster's attempt tag is unreadable.
    #[error(transparent)]
    BadAttemptTag(#[from] policy::BadAttemptTag),
    /// The Job was asked for another attempt than the cluster's tags give.
    #[error(
        "cluster {cluster_id} is due attempt {expected}, but attempt {requested} was requested"
    )]
    AttemptMismatch {
        /// The failed cluster.
        cluster_id: String,
        /// From its tags.
        expected: u32,
        /// From the command line.
        requested: u32,
    },
    /// The definition could not be rebuilt.
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
    /// More clusters were created since the failed one than the look-up of its retries reads,
    /// so it cannot tell whether the attempt due already runs; nothing was started.
    #[error(
        "more than {pages} pages of EMR clusters were created since {since}: cannot check that \
         no retry of cluster {cluster_id} already runs; nothing was started (start it by hand)"
    )]
    TooManyClusters {
        /// The failed cluster.
        cluster_id: String,
        /// The start of the look-up's window.
        since: String,
        /// The pages read.
        pages: usize,
    },
}

/// Reads an AlertRoute.
pub async fn load_route<C: ClusterApi>(
    cluster: &C,
    route: &RouteRef,
) -> Result<AlertRoute, RetryError> {
    let label = format!("{}/{}", route.namespace, route.name);
    cluster
        .get::<AlertRoute>(&route.namespace, &route.name)
        .await
        .map_err(|source| RetryError::Route {
            route: label.clone(),
            source,
        })?
        .ok_or(RetryError::RouteMissing(label))
}

/// `DescribeCluster`; a cluster EMR does not report is [`RetryError::ClusterMissing`].
pub async fn describe_cluster(aws: &AwsClients, cluster_id: &str) -> Result<Cluster, RetryError> {
    emr::describe_cluster(aws, cluster_id)
        .await?
        .ok_or_else(|| RetryError::ClusterMissing(cluster_id.to_string()))
}

/// The tags of a described cluster.
pub fn cluster_tags(cluster: &Cluster) -> Tags {
    emr::cluster_tags(cluster)
}

/// A retry that passed [`check`]: the failed cluster as EMR describes it now, and its attempt.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The failed cluster (live).
    pub failed: Cluster,
    /// The attempt it is due.
    pub info: AttemptInfo,
}

/// Why [`check`] let no retry go ahead.
#[derive(Debug)]
pub enum CheckFailure {
    /// A rule says no; the text is for the person who pressed.
    Refused(Refusal),
    /// AWS could not be asked, or answered something unreadable.
    Failed(RetryError),
}

impl From<RetryError> for CheckFailure {
    fn from(error: RetryError) -> Self {
        CheckFailure::Failed(error)
    }
}

impl From<AwsError> for CheckFailure {
    fn from(error: AwsError) -> Self {
        CheckFailure::Failed(error.into())
    }
}

impl From<policy::BadAttemptTag> for CheckFailure {
    fn from(error: policy::BadAttemptTag) -> Self {
        CheckFailure::Failed(error.into())
    }
}

/// The checks both the interaction endpoint (before it creates the Job) and the Job (before
/// RunJobFlow) make, on what AWS says now and never on the Slack message: the cluster is
/// `TERMINATED_WITH_ERRORS`, its tags satisfy the route's tag match, the attempt is within the
/// cap, and no cluster of the same name tagged with the same original cluster holds this attempt
/// or a later one. `requested` is the attempt the Job was asked for (the cap is checked against the
/// larger of it and the one the tags give).
pub async fn check(
    aws: &AwsClients,
    route: &AlertRoute,
    retry_policy: &crate::resources::alert_route::RetryPolicy,
    cluster_id: &str,
    requested: Option<u32>,
) -> Result<Checked, CheckFailure> {
    let failed = describe_cluster(aws, cluster_id).await?;
    let state = failed
        .status()
        .and_then(|s| s.state())
        .map(|s| s.as_str().to_string());
    policy::check_failed(cluster_id, state.as_deref()).map_err(CheckFailure::Refused)?;
    let tags = cluster_tags(&failed);
    policy::check_route_owns(route, cluster_id, &tags).map_err(CheckFailure::Refused)?;
    let info = attempt_info(cluster_id, &tags)?;
    // The cap before anything else about the attempt: a Job replayed by hand after the cap must be
    // refused, whatever it claims.
    policy::check_attempt(
        retry_policy,
        requested.unwrap_or(0).max(info.next_attempt),
        &info.original_cluster_id,
    )
    .map_err(CheckFailure::Refused)?;
    let chain = chain_in_aws(aws, &failed, &info).await?;
    policy::check_chain(retry_policy, &info, &chain).map_err(CheckFailure::Refused)?;
    Ok(Checked { failed, info })
}

/// The retries of the failed cluster's original found in AWS that could hold the attempt due or
/// a later one. A retry keeps the failed cluster's name (the rebuild copies it), and every attempt
/// from the one due on was started after the failed cluster failed, so it is younger than the
/// failed cluster: ListClusters is asked for clusters created since then (a bounded window, see
/// [`retries_listed_since`]), at most [`emr::MAX_CLUSTER_LIST_PAGES`] pages, and only the clusters
/// of that name are described for their tags.
async fn chain_in_aws(
    aws: &AwsClients,
    failed: &Cluster,
    info: &AttemptInfo,
) -> Result<Vec<ChainCluster>, CheckFailure> {
    let name = failed.name().unwrap_or_default();
    let since = retries_listed_since(
        creation_time(failed),
        aws_smithy_types::DateTime::from(std::time::SystemTime::now()),
    );
    let clusters = emr::clusters_named_since(aws, name, since, emr::MAX_CLUSTER_LIST_PAGES)
        .await?
        .ok_or_else(|| RetryError::TooManyClusters {
            cluster_id: failed.id().unwrap_or_default().to_string(),
            since: since.to_string(),
            pages: emr::MAX_CLUSTER_LIST_PAGES,
        })?;
    let tagged: Vec<(String, Tags)> = clusters
        .iter()
        .map(|c| (c.id().unwrap_or_default().to_string(), cluster_tags(c)))
        .collect();
    Ok(policy::chain_of(
        &info.original_cluster_id,
        tagged.iter().map(|(id, tags)| (id.as_str(), tags)),
    )?)
}

/// How far back EMR lists clusters (it keeps them about two months): the look-up's window when
/// the failed cluster has no creation time.
const EMR_LISTING_HORIZON_SECS: i64 = 63 * 24 * 3600;

/// Where the look-up of retries starts: a second before the failed cluster was created (EMR's
/// and the emulator's "created after" differ on equality and sub-second precision; a cluster too
/// many is filtered by its tags anyway), or EMR's listing horizon before `now` when its creation
/// time is unknown, so that the look-up never asks for the whole history.
pub(crate) fn retries_listed_since(
    failed_created: Option<aws_smithy_types::DateTime>,
    now: aws_smithy_types::DateTime,
) -> aws_smithy_types::DateTime {
    let horizon = now.secs().saturating_sub(EMR_LISTING_HORIZON_SECS);
    let since = failed_created.map_or(horizon, |created| created.secs().saturating_sub(1));
    aws_smithy_types::DateTime::from_secs(since.max(horizon))
}

fn creation_time(cluster: &Cluster) -> Option<aws_smithy_types::DateTime> {
    cluster.status()?.timeline()?.creation_date_time().copied()
}

/// Everything the rebuild needs: the description and every page of the instance, step and
/// bootstrap-action lists.
pub async fn read_definition(
    aws: &AwsClients,
    cluster: Cluster,
) -> Result<ClusterDefinition, RetryError> {
    let id = cluster.id().unwrap_or_default().to_string();
    let mut definition = ClusterDefinition::default();
    if matches!(
        cluster.instance_collection_type(),
        Some(InstanceCollectionType::InstanceFleet)
    ) {
        definition.instance_fleets = emr::instance_fleets(aws, &id).await?;
    } else {
        definition.instance_groups = emr::instance_groups(aws, &id).await?;
    }
    definition.steps = emr::steps(aws, &id).await?;
    definition.bootstrap_actions = emr::bootstrap_actions(aws, &id).await?;
    definition.cluster = cluster;
    Ok(definition)
}

/// Submits a rebuilt request; returns the new cluster's id.
pub async fn submit(aws: &AwsClients, input: RunJobFlowInput) -> Result<String, RetryError> {
    Ok(emr::run_job_flow(aws, input).await?)
}

/// Runs one retry: checks the policy and the cap against the live route and cluster tags,
/// rebuilds and submits the cluster, and reports to Slack. Never panics; every outcome is
/// reported where the request says (response URL and/or thread).
pub async fn run<C: ClusterApi>(
    cluster: &C,
    aws: &AwsClients,
    slack: &SlackClient,
    request: &RetryRequest,
) -> RetryOutcome {
    let route = load_route(cluster, &request.route).await;
    let max_attempts = route
        .as_ref()
        .ok()
        .and_then(|r| policy::enabled_policy(r).ok())
        .map(policy::max_attempts)
        .unwrap_or(request.attempt);
    let outcome = match &route {
        Ok(route) => attempt(aws, route, request).await,
        Err(error) => RetryOutcome::Failed {
            reason: error.to_string(),
        },
    };
    match &outcome {
        RetryOutcome::Submitted { new_cluster_id } => tracing::info!(
            route = %format!("{}/{}", request.route.namespace, request.route.name),
            failed_cluster = %request.cluster_id, new_cluster = %new_cluster_id,
            attempt = request.attempt, user = %request.user_id, "retry submitted"),
        RetryOutcome::Refused { reason } => tracing::warn!(
            failed_cluster = %request.cluster_id, attempt = request.attempt,
            user = %request.user_id, reason = %reason, "retry refused"),
        RetryOutcome::Failed { reason } => tracing::error!(
            failed_cluster = %request.cluster_id, attempt = request.attempt,
            user = %request.user_id, reason = %reason, "retry failed"),
    }
    let bot_token = match &route {
        Ok(route) => route_bot_token(cluster, route).await,
        Err(_) => None,
    };
    report(slack, request, max_attempts, &outcome, bot_token.as_deref()).await;
    outcome
}

async fn attempt(aws: &AwsClients, route: &AlertRoute, request: &RetryRequest) -> RetryOutcome {
    let policy = match policy::enabled_policy(route) {
        Ok(policy) => policy,
        Err(refusal) => {
            return RetryOutcome::Refused {
                reason: refusal.to_string(),
            };
        }
    };
    let result: Result<RetryOutcome, RetryError> = async {
        let Checked { failed, info } = match check(
            aws,
            route,
            policy,
            &request.cluster_id,
            Some(request.attempt),
        )
        .await
        {
            Ok(checked) => checked,
            Err(CheckFailure::Refused(refusal)) => {
                return Ok(RetryOutcome::Refused {
                    reason: refusal.to_string(),
                });
            }
            Err(CheckFailure::Failed(error)) => return Err(error),
        };
        if info.next_attempt != request.attempt {
            return Err(RetryError::AttemptMismatch {
                cluster_id: request.cluster_id.clone(),
                expected: info.next_attempt,
                requested: request.attempt,
            });
        }
        let definition = read_definition(aws, failed).await?;
        let input =
            rebuild_run_job_flow(&definition, &info.original_cluster_id, info.next_attempt)?;
        let new_cluster_id = submit(aws, input).await?;
        Ok(RetryOutcome::Submitted { new_cluster_id })
    }
    .await;
    result.unwrap_or_else(|error| RetryOutcome::Failed {
        reason: error.to_string(),
    })
}

/// The route's bot token, when it has one and it can be read.
pub async fn route_bot_token<C: ClusterApi>(cluster: &C, route: &AlertRoute) -> Option<String> {
    let secret = route.spec.slack.as_ref()?.bot_token_secret_ref.as_ref()?;
    let namespace = route.metadata.namespace.as_deref()?;
    match cluster
        .secret_value(namespace, &secret.name, &secret.key)
        .await
    {
        Ok(token) => token.filter(|t| !t.trim().is_empty()),
        Err(error) => {
            tracing::warn!(secret = %secret.name, error = %error, "cannot read the route's bot token");
            None
        }
    }
}

/// Updates the message through the response URL, and replies in its thread with the bot token.
/// Failures are logged: the cluster (if any) is already running and must not be started again.
async fn report(
    slack: &SlackClient,
    request: &RetryRequest,
    max_attempts: u32,
    outcome: &RetryOutcome,
    bot_token: Option<&str>,
) {
    let status = match outcome {
        RetryOutcome::Submitted { new_cluster_id } => RetryStatus::Submitted {
            new_cluster_id: new_cluster_id.clone(),
        },
        RetryOutcome::Refused { reason } => RetryStatus::Refused {
            reason: reason.clone(),
        },
        RetryOutcome::Failed { reason } => RetryStatus::Failed {
            reason: reason.clone(),
        },
    };
    let progress = RetryProgress {
        attempt: request.attempt,
        max_attempts,
        user_id: request.user_id.clone(),
        status,
    };
    if let Some(url) = &request.response_url {
        let body = match (&request.message, &request.fingerprint) {
            (Some(message), Some(fingerprint)) => {
                let updated = mark_retry_progress(message, fingerprint, &progress);
                json!({"replace_original": true, "text": updated.text, "blocks": updated.blocks})
            }
            _ => {
                json!({"response_type": "ephemeral", "replace_original": false, "text": summary(request, &progress)})
            }
        };
        if let Err(error) = slack.respond(url, &body).await {
            tracing::warn!(error = %error, "cannot update the Slack message through its response URL");
        }
    }
    if let (Some(token), Some(posted)) = (bot_token, &request.posted)
        && let Err(error) = slack
            .reply_in_thread(token, posted, &summary(request, &progress))
            .await
    {
        tracing::warn!(error = %error, "cannot reply in the Slack thread");
    }
}

/// One line for a thread reply or an ephemeral answer. Cluster ids and reasons come from AWS and
/// from the Job's flags: escaped, so the line carries no mention but the presser's.
fn summary(request: &RetryRequest, progress: &RetryProgress) -> String {
    use crate::slack::text::escape;
    let cluster = escape(&request.cluster_id);
    let key = format!(
        "Retry {}/{} of `{cluster}`",
        progress.attempt, progress.max_attempts
    );
    let who = crate::slack::text::user_mention(&progress.user_id);
    match &progress.status {
        RetryStatus::Started => format!("{key} started by {who}"),
        RetryStatus::Submitted { new_cluster_id } => format!(
            "{key} by {who}: new cluster `{}` submitted",
            escape(new_cluster_id)
        ),
        RetryStatus::Failed { reason } => format!("{key} by {who} failed: {}", escape(reason)),
        RetryStatus::Refused { reason } => {
            format!("Retry of `{cluster}` refused for {who}: {}", escape(reason))
        }
    }
}

/// `alertops retry`: runs one retry in a cluster; exit code 0 when a cluster was submitted, 2
/// when the retry was refused, 1 when it failed, 64 for invalid flags.
pub async fn run_command(args: RetryArgs) -> std::process::ExitCode {
    use std::process::ExitCode;
    let request = match args.request() {
        Ok(request) => request,
        Err(error) => {
            tracing::error!(error = %error, "invalid retry flags");
            // EX_USAGE: told apart from a refusal.
            return ExitCode::from(64);
        }
    };
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "cannot configure the Kubernetes client");
            return ExitCode::FAILURE;
        }
    };
    let cluster = crate::k8s::KubeCluster::new(client);
    let aws = AwsClients::from_env(args.aws.settings()).await;
    let slack = SlackClient::new(crate::slack::SlackSettings {
        api_base: args.slack_api_base.clone(),
        ..Default::default()
    });
    exit_code(&run(&cluster, &aws, &slack, &request).await)
}

/// The process exit code of an outcome.
pub fn exit_code(outcome: &RetryOutcome) -> std::process::ExitCode {
    match outcome {
        RetryOutcome::Submitted { .. } => std::process::ExitCode::SUCCESS,
        RetryOutcome::Failed { .. } => std::process::ExitCode::FAILURE,
        RetryOutcome::Refused { .. } => std::process::ExitCode::from(2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::text::{INJECTIONS, live_injections};

    #[test]
    fn the_retry_look_up_starts_at_the_failed_cluster_within_emrs_horizon() {
        use aws_smithy_types::DateTime;
        let now = DateTime::from_secs(100 * 24 * 3600);
        let created = DateTime::from_secs(now.secs() - 3600);
        assert_eq!(
            retries_listed_since(Some(created), now),
            DateTime::from_secs(created.secs() - 1)
        );
        // Unknown or older than EMR lists: the horizon, never the whole history.
        let horizon = DateTime::from_secs(now.secs() - EMR_LISTING_HORIZON_SECS);
        assert_eq!(retries_listed_since(None, now), horizon);
        assert_eq!(
            retries_listed_since(Some(DateTime::from_secs(0)), now),
            horizon
        );
    }

    #[test]
    fn thread_and_ephemeral_summaries_escape_aws_text() {
        let evil = INJECTIONS.join(" ");
        let request = RetryRequest {
            route: RouteRef {
                namespace: "data".into(),
                name: "emr".into(),
            },
            cluster_id: format!("j-1 {evil}"),
            attempt: 1,
            user_id: "U1".into(),
            fingerprint: None,
            response_url: None,
            message: None,
            posted: None,
        };
        let statuses = [
            RetryStatus::Started,
            RetryStatus::Submitted {
                new_cluster_id: evil.clone(),
            },
            RetryStatus::Failed {
                reason: evil.clone(),
            },
            RetryStatus::Refused {
                reason: evil.clone(),
            },
        ];
        for status in statuses {
            let progress = RetryProgress {
                attempt: 1,
                max_attempts: 2,
                user_id: "U1".into(),
                status,
            };
            let line = summary(&request, &progress);
            assert_eq!(live_injections(&line), Vec::<&str>::new(), "{line}");
            assert!(
                line.contains("<@U1>"),
                "the presser stays a mention: {line}"
            );
        }
    }
}
