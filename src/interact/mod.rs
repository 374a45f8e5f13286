//! `alertops interact`: the HTTP endpoint behind Slack's interactivity Request URL.
//!
//! `POST /slack/interactions` checks Slack's request signature over the raw body before reading
//! it, answers at once (Slack gives up after 3 seconds) and does the work in a spawned task that
//! answers through the interaction's `response_url`:
//! - Acknowledge: the message is replaced by itself with "Acknowledged by <@U> at ...".
//! - Retry: the route's policy (enabled, allow-list) and the cluster as AWS describes it now
//!   ([`retry::check`]: failed, matched by the route, attempt within the cap and not yet in AWS)
//!   are checked, then one Job per original cluster and attempt is created ([`job`]); a second
//!   click for the same attempt is told that the retry is already running.
//! - Snooze: the route must enable `actions.snooze`; the snooze is recorded as a ConfigMap
//!   ([`crate::slack::snooze::record`]), the message is marked and the note goes into its
//!   thread with the route's bot token.
//!
//! `GET /healthz` answers 200. [`router`] builds the interaction routes over an
//! [`InteractState`], so tests and the local mode run them in-process; [`server_router`] adds
//! `/metrics` and `/readyz` ([`crate::telemetry::router`]) for the `alertops interact` workload.

mod args;
pub mod job;
pub(crate) mod metrics;
pub(crate) mod payload;
pub(crate) mod signature;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::aws::AwsClients;
use crate::k8s::{ClusterApi, Created};
use crate::resources::AlertRoute;
use crate::retry::{self, Refusal, policy};
use crate::slack::{
    ActionPayload, ActionTokenError, ButtonAction, ButtonVerifier, RetryProgress, RetryStatus,
    SlackClient, mark_acknowledged, mark_retry_progress, mark_snoozed, snooze,
};

pub use args::InteractArgs;
pub use job::{RetryJobRequest, RetryJobSettings, retry_job, retry_job_name};
pub use metrics::{InteractMetrics, RequestOutcome, RetryOutcome};
pub use payload::{ButtonPress, Interaction, PressedButton, parse_interaction};
pub use signature::{SIGNATURE_HEADER, SignatureError, SlackRequestVerifier, TIMESTAMP_HEADER};

/// Path of the interactivity Request URL.
pub const INTERACTIONS_PATH: &str = "/slack/interactions";
/// Path of the liveness and readiness probe.
pub const HEALTH_PATH: &str = "/healthz";

/// Everything the endpoint needs, shared by every request.
pub struct InteractState<C> {
    /// The Kubernetes API (routes, secrets, Jobs).
    pub cluster: C,
    /// AWS clients (EMR `DescribeCluster`).
    pub aws: AwsClients,
    /// Slack (response URLs, user groups).
    pub slack: SlackClient,
    /// Checks Slack's request signatures.
    pub verifier: SlackRequestVerifier,
    /// Checks the buttons' signed values, each with its route's key derived from the master.
    pub buttons: ButtonVerifier,
    /// How long a button stays valid.
    pub button_max_age: chrono::Duration,
    /// What retry Jobs are made of.
    pub jobs: RetryJobSettings,
    /// Request, acknowledge and retry counters.
    pub metrics: InteractMetrics,
}

/// The server: `POST /slack/interactions` and `GET /healthz`.
pub fn router<C: ClusterApi>(state: Arc<InteractState<C>>) -> Router {
    Router::new()
        .route(INTERACTIONS_PATH, post(interactions::<C>))
        .route(HEALTH_PATH, get(|| async { "ok" }))
        .with_state(state)
}

/// The workload's server: `POST /slack/interactions` next to `/metrics`, `/healthz` and
/// `/readyz` of [`crate::telemetry::router`].
pub fn server_router<C: ClusterApi>(
    state: Arc<InteractState<C>>,
    registry: Arc<prometheus_client::registry::Registry>,
    readiness: crate::telemetry::Readiness,
) -> Router {
    Router::new()
        .route(INTERACTIONS_PATH, post(interactions::<C>))
        .with_state(state)
        .merge(crate::telemetry::router(registry, readiness))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn interactions<C: ClusterApi>(
    State(state): State<Arc<InteractState<C>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let now = Utc::now();
    if let Err(error) = state.verifier.verify(
        header(&headers, TIMESTAMP_HEADER),
        header(&headers, SIGNATURE_HEADER),
        &body,
        now,
    ) {
        let outcome = match error {
            SignatureError::Stale { .. } => RequestOutcome::Stale,
            _ => RequestOutcome::BadSignature,
        };
        state.metrics.request(outcome);
        tracing::warn!(error = %error, "refused a Slack interaction: bad request signature");
        return (StatusCode::UNAUTHORIZED, "invalid signature");
    }
    let press = match parse_interaction(&body) {
        Ok(Interaction::ButtonPress(press)) => press,
        Ok(Interaction::Ignored { kind }) => {
            state.metrics.request(RequestOutcome::Ignored);
            tracing::debug!(kind = %kind, "ignored a Slack interaction");
            return (StatusCode::OK, "");
        }
        Err(error) => {
            state.metrics.request(RequestOutcome::Malformed);
            tracing::warn!(error = %error, "refused a Slack interaction: malformed payload");
            return (StatusCode::BAD_REQUEST, "malformed payload");
        }
    };
    let token = match state
        .buttons
        .verify(&press.value, now, state.button_max_age)
    {
        Ok(token) => token,
        Err(error @ ActionTokenError::Expired { .. }) => {
            state.metrics.request(RequestOutcome::Expired);
            tracing::info!(user = %press.user_id, error = %error, "expired button pressed");
            let state = state.clone();
            tokio::spawn(async move {
                ephemeral(
                    &state.slack,
                    &press.response_url,
                    "This button has expired; it no longer does anything.",
                )
                .await;
            });
            return (StatusCode::OK, "");
        }
        Err(error) => {
            state.metrics.request(RequestOutcome::InvalidButton);
            tracing::warn!(user = %press.user_id, error = %error, "refused a Slack interaction: forged button value");
            return (StatusCode::BAD_REQUEST, "invalid button");
        }
    };
    let expected = match press.button {
        PressedButton::Acknowledge => Some(ButtonAction::Acknowledge),
        PressedButton::Retry => Some(ButtonAction::Retry),
        PressedButton::Snooze => Some(ButtonAction::Snooze),
        PressedButton::Other => None,
    };
    if expected != Some(token.action) {
        state.metrics.request(RequestOutcome::InvalidButton);
        tracing::warn!(user = %press.user_id, "refused a Slack interaction: button value does not match the button");
        return (StatusCode::BAD_REQUEST, "invalid button");
    }
    state.metrics.request(RequestOutcome::Accepted);
    // Answer Slack now; the work talks back through the response URL.
    tokio::spawn(async move {
        match token.action {
            ButtonAction::Acknowledge => acknowledge(&state, &press, &token, now).await,
            ButtonAction::Retry => retry_click(&state, &press, &token).await,
            ButtonAction::Snooze => snooze_click(&state, &press, &token, now).await,
        }
    });
    (StatusCode::OK, "")
}

/// An answer only the presser sees. The texts quote errors and refusals that can carry AWS and
/// Kubernetes text, and none means to mention or link: all of it is escaped.
async fn ephemeral(slack: &SlackClient, response_url: &str, text: &str) {
    let body = ephemeral_body(text);
    if let Err(error) = slack.respond(response_url, &body).await {
        tracing::warn!(error = %error, "cannot answer through the response URL");
    }
}

fn ephemeral_body(text: &str) -> Value {
    json!({"response_type": "ephemeral", "replace_original": false, "text": crate::slack::text::escape(text)})
}

async fn replace(slack: &SlackClient, response_url: &str, message: &crate::slack::SlackMessage) {
    let body: Value =
        json!({"replace_original": true, "text": message.text, "blocks": message.blocks});
    if let Err(error) = slack.respond(response_url, &body).await {
        tracing::warn!(error = %error, "cannot update the message through the response URL");
    }
}

async fn acknowledge<C: ClusterApi>(
    state: &InteractState<C>,
    press: &ButtonPress,
    token: &ActionPayload,
    at: DateTime<Utc>,
) {
    state.metrics.acknowledged();
    tracing::info!(user = %press.user_id, fingerprint = %token.fingerprint, "alert acknowledged");
    match &press.message {
        Some(message) => {
            let updated = mark_acknowledged(message, &token.fingerprint, &press.user_id, at);
            replace(&state.slack, &press.response_url, &updated).await;
        }
        None => ephemeral(&state.slack, &press.response_url, "Acknowledged.").await,
    }
}

/// A Snooze press: records the snooze in Kubernetes (see [`crate::slack::snooze`]), marks the
/// message and posts the note in its thread with the route's bot token.
async fn snooze_click<C: ClusterApi>(
    state: &InteractState<C>,
    press: &ButtonPress,
    token: &ActionPayload,
    now: DateTime<Utc>,
) {
    let refuse = |text: String| async move {
        tracing::warn!(user = %press.user_id, fingerprint = %token.fingerprint, reason = %text, "snooze not recorded");
        ephemeral(&state.slack, &press.response_url, &text).await;
    };
    let route = match retry::load_route(&state.cluster, &token.route).await {
        Ok(route) => route,
        Err(error) => return refuse(format!("Snooze is not possible: {error}")).await,
    };
    if !snooze::route_snoozes(&route) {
        return refuse("⛔ Snooze is not enabled on this route.".to_string()).await;
    }
    let Some(choice) = token.snooze else {
        return refuse("⛔ This Snooze button names no duration.".to_string()).await;
    };
    let request = snooze::SnoozeRequest {
        fingerprint: token.fingerprint.clone(),
        choice,
        by: press.user_id.clone(),
        by_name: press.user_name.clone(),
        reason: press.message.as_ref().map(|m| m.text.clone()),
        message: press.posted.clone(),
        now,
    };
    let recorded = match snooze::record(
        &state.cluster,
        &route,
        &request,
        snooze::route_time_zone(&route),
    )
    .await
    {
        Ok(recorded) => recorded,
        Err(error) => {
            return refuse(format!("⚠️ The snooze could not be recorded: {error}")).await;
        }
    };
    tracing::info!(user = %press.user_id, fingerprint = %token.fingerprint, until = %recorded.until, snooze = %recorded.name, "alert snoozed");
    if let Some(message) = &press.message {
        let updated = mark_snoozed(message, &token.fingerprint, &press.user_id, recorded.until);
        replace(&state.slack, &press.response_url, &updated).await;
    }
    let note = crate::slack::render_snoozed(&press.user_id, choice.label(), recorded.until);
    let bot_token = retry::route_bot_token(&state.cluster, &route).await;
    match (bot_token, &press.posted) {
        (Some(bot_token), Some(posted)) => {
            if let Err(error) = state.slack.reply_in_thread(&bot_token, posted, &note).await {
                tracing::warn!(error = %error, "cannot post the snooze note in the thread");
            }
        }
        // Without a bot token or a known message, only the presser learns it worked.
        _ => {
            let body =
                json!({"response_type": "ephemeral", "replace_original": false, "text": note});
            if let Err(error) = state.slack.respond(&press.response_url, &body).await {
                tracing::warn!(error = %error, "cannot answer through the response URL");
            }
        }
    }
}

/// Why a click did not create a Job, when it is not a refusal.
#[derive(Debug, thiserror::Error)]
enum ClickError {
    #[error("the Retry button names no cluster")]
    NoCluster,
    #[error(transparent)]
    Retry(#[from] retry::RetryError),
    #[error("creating the retry Job: {0}")]
    Job(String),
}

async fn retry_click<C: ClusterApi>(
    state: &InteractState<C>,
    press: &ButtonPress,
    token: &ActionPayload,
) {
    let route = match retry::load_route(&state.cluster, &token.route).await {
        Ok(route) => route,
        Err(error) => {
            state.metrics.retry(RetryOutcome::Failed);
            tracing::warn!(error = %error, "retry refused: route unavailable");
            ephemeral(
                &state.slack,
                &press.response_url,
                &format!("Retry is not possible: {error}"),
            )
            .await;
            return;
        }
    };
    match authorize_and_start(state, press, token, &route).await {
        Ok(()) => state.metrics.retry(RetryOutcome::Started),
        Err(Outcome::Refused(refusal)) => {
            state.metrics.retry(RetryOutcome::Refused);
            tracing::warn!(user = %press.user_id, reason = %refusal, "retry refused");
            ephemeral(
                &state.slack,
                &press.response_url,
                &format!("⛔ Retry refused: {refusal}."),
            )
            .await;
        }
        Err(Outcome::AlreadyRunning { attempt, job }) => {
            state.metrics.retry(RetryOutcome::AlreadyRunning);
            tracing::info!(user = %press.user_id, job = %job, "retry already running");
            ephemeral(
                &state.slack,
                &press.response_url,
                &format!(
                    "🔁 Retry {attempt} is already running (Job {job}); nothing more was started."
                ),
            )
            .await;
        }
        Err(Outcome::Failed(error)) => {
            state.metrics.retry(RetryOutcome::Failed);
            tracing::error!(user = %press.user_id, error = %error, "retry could not start");
            ephemeral(
                &state.slack,
                &press.response_url,
                &format!("⚠️ Retry could not start: {error}"),
            )
            .await;
        }
    }
}

enum Outcome {
    Refused(Refusal),
    AlreadyRunning { attempt: u32, job: String },
    Failed(ClickError),
}

impl From<ClickError> for Outcome {
    fn from(error: ClickError) -> Self {
        Outcome::Failed(error)
    }
}

impl From<retry::RetryError> for Outcome {
    fn from(error: retry::RetryError) -> Self {
        Outcome::Failed(error.into())
    }
}

async fn authorize_and_start<C: ClusterApi>(
    state: &InteractState<C>,
    press: &ButtonPress,
    token: &ActionPayload,
    route: &AlertRoute,
) -> Result<(), Outcome> {
    let policy = policy::enabled_policy(route).map_err(Outcome::Refused)?;
    if !user_allowed(state, route, policy, &press.user_id).await {
        return Err(Outcome::Refused(Refusal::NotAllowed {
            route: policy::route_label(route),
        }));
    }
    let cluster_id = token.cluster_id.as_deref().ok_or(ClickError::NoCluster)?;
    // The cluster as AWS describes it now, not as the message says: failed, the route's, and no
    // cluster for this attempt in AWS yet (the Job checks again before RunJobFlow).
    let info = match retry::check(&state.aws, route, policy, cluster_id, None).await {
        Ok(checked) => checked.info,
        Err(retry::CheckFailure::Refused(refusal)) => return Err(Outcome::Refused(refusal)),
        Err(retry::CheckFailure::Failed(error)) => return Err(error.into()),
    };
    let max_attempts = policy::max_attempts(policy);

    let progress = RetryProgress {
        attempt: info.next_attempt,
        max_attempts,
        user_id: press.user_id.clone(),
        status: RetryStatus::Started,
    };
    let started = press
        .message
        .as_ref()
        .map(|m| mark_retry_progress(m, &token.fingerprint, &progress));
    let request = RetryJobRequest {
        route,
        cluster_id,
        original_cluster_id: &info.original_cluster_id,
        attempt: info.next_attempt,
        user_id: &press.user_id,
        fingerprint: &token.fingerprint,
        response_url: &press.response_url,
        message: started.as_ref(),
        posted: press.posted.as_ref(),
    };
    let job = retry_job(&request, &state.jobs).map_err(|e| ClickError::Job(e.to_string()))?;
    let name = job.metadata.name.clone().unwrap_or_default();
    match state.cluster.create(&job).await {
        Ok(Created::New(created)) => {
            // The Job's pod waits for this Secret; without it the retry cannot run, so the Job
            // goes and the click can be repeated.
            let secret = job::response_url_secret(&created, &press.response_url)
                .map_err(|e| ClickError::Job(e.to_string()))?;
            if let Err(error) = state.cluster.create(&secret).await {
                let namespace = created.metadata.namespace.clone().unwrap_or_default();
                if let Err(cleanup) = state
                    .cluster
                    .delete::<k8s_openapi::api::batch::v1::Job>(&namespace, &name)
                    .await
                {
                    tracing::error!(job = %name, error = %cleanup, "cannot delete the retry Job whose response-URL Secret failed; it stays pending until its deadline");
                }
                return Err(ClickError::Job(format!("storing the response URL: {error}")).into());
            }
            tracing::info!(user = %press.user_id, job = %name, cluster = %cluster_id, attempt = info.next_attempt, "retry Job created");
            match &started {
                Some(message) => replace(&state.slack, &press.response_url, message).await,
                None => {
                    ephemeral(
                        &state.slack,
                        &press.response_url,
                        &format!("🔁 Retry {}/{max_attempts} started.", info.next_attempt),
                    )
                    .await
                }
            }
            Ok(())
        }
        Ok(Created::AlreadyExisted(_)) => Err(Outcome::AlreadyRunning {
            attempt: info.next_attempt,
            job: name,
        }),
        Err(error) => Err(ClickError::Job(error.to_string()).into()),
    }
}

/// Listed by id, or a member of a listed user group (looked up with the route's bot token).
async fn user_allowed<C: ClusterApi>(
    state: &InteractState<C>,
    route: &AlertRoute,
    policy: &crate::resources::alert_route::RetryPolicy,
    user_id: &str,
) -> bool {
    if policy::user_listed(policy, user_id) {
        return true;
    }
    if policy.allowed_user_groups.is_empty() {
        return false;
    }
    let Some(token) = retry::route_bot_token(&state.cluster, route).await else {
        tracing::warn!(route = %policy::route_label(route), "user groups are allowed but the route has no readable bot token to look them up");
        return false;
    };
    for group in &policy.allowed_user_groups {
        match state.slack.user_group_members(&token, group).await {
            Ok(members) if members.iter().any(|m| m == user_id) => return true,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(group = %group, error = %error, "cannot list a Slack user group")
            }
        }
    }
    false
}

/// Serves the router on `listener` until Ctrl-C or SIGTERM.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::telemetry::shutdown::shutdown_signal())
        .await
}

/// Why `alertops interact` could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum InteractError {
    /// A setting is invalid.
    #[error("invalid setting: {0}")]
    Settings(String),
    /// The Kubernetes client could not be configured.
    #[error("Kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// The listener failed.
    #[error("serving {address}: {source}")]
    Serve {
        /// The listen address.
        address: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// `alertops interact`: serves Slack's interactions until SIGTERM; a failure exits non-zero.
pub async fn run_command(args: InteractArgs) -> std::process::ExitCode {
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "interact stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Builds the state from the flags and the environment, and serves until SIGTERM.
pub async fn run(args: InteractArgs) -> Result<(), InteractError> {
    let state = state_from_args(
        &args,
        crate::k8s::KubeCluster::new(kube::Client::try_default().await?),
        crate::aws::AwsClients::from_env(args.aws.settings()).await,
    )?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| InteractError::Serve {
            address: args.listen,
            source,
        })?;
    let mut registry = prometheus_client::registry::Registry::with_prefix("alertops");
    state.metrics.register(&mut registry);
    state.aws.metrics().register(&mut registry);
    let readiness = crate::telemetry::Readiness::default();
    // Ready once the settings were valid and the port is bound: requests can be answered.
    readiness.set(true);
    tracing::info!(address = %args.listen, "serving Slack interactions, /metrics and /readyz");
    serve(
        listener,
        server_router(Arc::new(state), Arc::new(registry), readiness),
    )
    .await
    .map_err(|source| InteractError::Serve {
        address: args.listen,
        source,
    })
}

/// The state `interact` runs with, from its flags, over the given cluster and AWS clients.
pub fn state_from_args<C: ClusterApi>(
    args: &InteractArgs,
    cluster: C,
    aws: AwsClients,
) -> Result<InteractState<C>, InteractError> {
    if args.signing_secret.0.trim().is_empty() {
        return Err(InteractError::Settings(
            "ALERTOPS_SLACK_SIGNING_SECRET is empty".into(),
        ));
    }
    // The master key: each button is checked with its route's key, derived from it.
    let buttons = ButtonVerifier::new(args.action_token_key.0.as_bytes())
        .map_err(|e| InteractError::Settings(format!("ALERTOPS_ACTION_TOKEN_KEY: {e}")))?;
    if args.workload_image.trim().is_empty() {
        return Err(InteractError::Settings("--workload-image is empty".into()));
    }
    let max_age_hours = args.button_max_age_hours.clamp(1, 24 * 30);
    let aws_region = aws.region();
    Ok(InteractState {
        cluster,
        aws,
        slack: SlackClient::new(crate::slack::SlackSettings {
            api_base: args.slack_api_base.clone(),
            ..Default::default()
        }),
        verifier: SlackRequestVerifier::new(args.signing_secret.0.as_bytes()),
        buttons,
        button_max_age: chrono::Duration::hours(i64::from(max_age_hours)),
        jobs: RetryJobSettings {
            image: args.workload_image.clone(),
            slack_api_base: args.slack_api_base.clone(),
            aws_region,
            ttl_seconds_after_finished: i32::try_from(max_age_hours * 3600).unwrap_or(i32::MAX),
            service_account: args
                .workload_service_account
                .clone()
                .filter(|n| !n.trim().is_empty()),
            image_pull_policy: args
                .workload_image_pull_policy
                .clone()
                .filter(|p| !p.trim().is_empty()),
        },
        metrics: InteractMetrics::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::text::{INJECTIONS, live_injections};

    #[test]
    fn ephemeral_answers_escape_quoted_errors() {
        let body = ephemeral_body(&format!(
            "⚠️ Retry could not start: {}",
            INJECTIONS.join(" ")
        ));
        let text = body["text"].as_str().unwrap();
        assert_eq!(live_injections(text), Vec::<&str>::new(), "{text}");
        assert!(text.starts_with("⚠️ Retry could not start: &lt;!channel&gt;"));
    }
}
