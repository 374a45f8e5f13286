//! Everything `alertops local` runs in one process: the reconcilers over a [`MemoryCluster`],
//! one consumer task per AlertRoute, the Slack interaction endpoint, retry Jobs run in-process
//! when the endpoint creates them, and digests on their schedule (or on demand).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::Utc;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use prometheus_client::registry::Registry;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::alert::Enricher;
use crate::aws::AwsClients;
use crate::consume::{Consumer, ConsumerMetrics, ConsumerOptions};
use crate::interact::{InteractState, RetryJobSettings, SlackRequestVerifier};
use crate::k8s::{ClusterApi, MemoryCluster};
use crate::reconcile::{Context, OperatorSettings};
use crate::resources::{AlertRoute, DigestSchedule};
use crate::secret::Secret;
use crate::slack::{ActionSigner, ButtonVerifier, RouteRef, SlackClient, SlackSettings};
use crate::telemetry::{self, Readiness, ReconcileMetrics};

use super::driver::{LoadError, LocalDriver};

/// What the local mode needs.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// File or folder of manifests.
    pub manifests: PathBuf,
    /// Cluster id used in AWS names.
    pub cluster_id: String,
    /// Address of the interaction endpoint, `/metrics` and the local admin routes.
    pub listen: SocketAddr,
    /// Slack Web API base.
    pub slack_api_base: String,
    /// Where incoming webhooks go instead of hooks.slack.com (a stand-in), if anywhere.
    pub slack_webhook_base: Option<String>,
    /// Slack signing secret the interaction endpoint verifies.
    pub signing_secret: String,
    /// Key of the button tokens (at least 32 bytes).
    pub action_key: String,
    /// Long-poll wait of the consumers.
    pub consumer_wait: Duration,
    /// How often everything is compared with AWS again.
    pub resync: Duration,
    /// How long the consumers hold alerts through a Slack outage.
    pub slack_outage_tolerance: Duration,
    /// How long the oldest message of a batch may have waited before it is a backlog.
    pub backlog_age: Duration,
}

/// Why the local mode stopped.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Bad settings.
    #[error("invalid settings: {0}")]
    Settings(String),
    /// The manifests could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// Address.
        address: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

struct Shared {
    cluster: MemoryCluster,
    aws: AwsClients,
    slack: Arc<SlackClient>,
    config: LocalConfig,
    digest_lock: Mutex<()>,
}

/// Runs the local mode until `shutdown` completes.
pub async fn run(
    config: LocalConfig,
    aws: AwsClients,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LocalError> {
    let mut settings = OperatorSettings::new(config.cluster_id.clone());
    settings.slack_outage_tolerance = config.slack_outage_tolerance;
    settings.validate().map_err(LocalError::Settings)?;
    // The master key, as in a cluster: interact verifies with it, each consumer signs with its
    // route's derived key.
    let buttons = ButtonVerifier::new(config.action_key.as_bytes())
        .map_err(|e| LocalError::Settings(format!("action key: {e}")))?;

    let reconcile_metrics = ReconcileMetrics::default();
    let consumer_metrics = ConsumerMetrics::new();
    let mut registry = Registry::with_prefix("alertops");
    reconcile_metrics.register(&mut registry);
    aws.metrics().register(&mut registry);
    consumer_metrics.register(&mut registry);
    let interact_metrics = crate::interact::InteractMetrics::default();
    interact_metrics.register(&mut registry);

    let cluster = MemoryCluster::new();
    let ctx = Arc::new(
        Context::new(cluster.clone(), aws.clone(), settings).with_metrics(reconcile_metrics),
    );
    let driver = Arc::new(LocalDriver::new(ctx));
    let loaded = driver.load(&config.manifests)?;
    info!(manifests = loaded, path = %config.manifests.display(), "manifests loaded");

    let slack = Arc::new(SlackClient::new(SlackSettings {
        api_base: config.slack_api_base.clone(),
        webhook_base: config.slack_webhook_base.clone(),
        ..Default::default()
    }));
    let shared = Arc::new(Shared {
        cluster: cluster.clone(),
        aws: aws.clone(),
        slack: slack.clone(),
        config: config.clone(),
        digest_lock: Mutex::new(()),
    });

    let interact = Arc::new(InteractState {
        cluster: cluster.clone(),
        aws: aws.clone(),
        slack: SlackClient::new(SlackSettings {
            api_base: config.slack_api_base.clone(),
            webhook_base: config.slack_webhook_base.clone(),
            ..Default::default()
        }),
        verifier: SlackRequestVerifier::new(config.signing_secret.as_bytes()),
        buttons,
        button_max_age: chrono::Duration::days(7),
        metrics: interact_metrics,
        jobs: RetryJobSettings {
            image: crate::reconcile::default_workload_image(),
            slack_api_base: config.slack_api_base.clone(),
            aws_region: aws.region(),
            ttl_seconds_after_finished: 7 * 24 * 3600,
            service_account: None,
            image_pull_policy: None,
        },
    });
    let readiness = Readiness::default();
    let app = Router::new()
        .merge(crate::interact::router(interact))
        .merge(telemetry::metrics_router(
            Arc::new(registry),
            readiness.clone(),
        ))
        .merge(
            Router::new()
                .route("/local/digests/{namespace}/{name}", post(run_digest_now))
                .with_state(shared.clone()),
        );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| LocalError::Listen {
            address: config.listen,
            source,
        })?;
    info!(address = %config.listen, "interactions at /slack/interactions, metrics at /metrics");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn({
        let stop = stop_rx.clone();
        async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped(stop))
                .await
            {
                warn!(error = %e, "local HTTP server stopped");
            }
        }
    });

    // Reconcile until the first pass settles, so consumers find their queues.
    let first = driver.settle(10).await;
    for (key, error) in &first.failed {
        warn!(resource = %key, error = %error, "not reconciled yet");
    }
    readiness.set(true);

    let reconciler = tokio::spawn({
        let driver = driver.clone();
        let stop = stop_rx.clone();
        let resync = config.resync;
        async move { driver.run(resync, stopped(stop)).await }
    });
    let supervisor = tokio::spawn(supervise(shared.clone(), consumer_metrics, stop_rx));

    shutdown.await;
    info!("stopping");
    let _ = stop_tx.send(true);
    let _ = tokio::join!(server, reconciler, supervisor);
    Ok(())
}

/// Starts a consumer for every route (and stops those whose route went away), runs retry Jobs
/// as they appear, and runs digests when they are due.
async fn supervise(
    shared: Arc<Shared>,
    metrics: ConsumerMetrics,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let enricher = Arc::new(Enricher::new(shared.aws.clone(), Duration::from_secs(300)));
    let mut consumers: HashMap<String, (JoinHandle<()>, tokio::sync::watch::Sender<bool>)> =
        HashMap::new();
    let mut jobs_run: HashSet<String> = HashSet::new();
    let mut digests_due: HashMap<String, chrono::DateTime<Utc>> = HashMap::new();
    let mut changes = shared.cluster.subscribe();
    let mut stop = Box::pin(stopped(stop));
    loop {
        // Consumers: one per route that has a queue.
        let routes = shared.cluster.list_all::<AlertRoute>().unwrap_or_default();
        let mut wanted = HashSet::new();
        for route in routes {
            let namespace = route.namespace().unwrap_or_default();
            let key = format!("{namespace}/{}", route.name_any());
            let has_queue = route
                .status
                .as_ref()
                .and_then(|s| s.queue_url.as_ref())
                .is_some();
            if !has_queue {
                continue;
            }
            wanted.insert(key.clone());
            if consumers.contains_key(&key) {
                continue;
            }
            let (tx, mut rx) = tokio::sync::watch::channel(false);
            let route_ref = RouteRef {
                namespace: namespace.clone(),
                name: route.name_any(),
            };
            // The route's own key, as the controller would put in its Secret in a cluster.
            let signer =
                match ActionSigner::for_route(shared.config.action_key.as_bytes(), &route_ref) {
                    Ok(signer) => signer,
                    Err(e) => {
                        warn!(route = %key, error = %e, "no button key for the route");
                        continue;
                    }
                };
            let mut consumer = Consumer::new(
                shared.cluster.clone(),
                shared.aws.clone(),
                shared.slack.clone(),
                route_ref,
                ConsumerOptions {
                    wait_time: shared.config.consumer_wait,
                    slack_outage_tolerance: shared.config.slack_outage_tolerance,
                    backlog_age: shared.config.backlog_age,
                    ..Default::default()
                },
            )
            .with_signer(signer)
            .with_enricher(enricher.clone())
            .with_metrics(metrics.clone());
            info!(route = %key, "consumer started");
            // There is no kubelet here: the consumer runs in this process, so its Deployment
            // is reported ready for the route's status, as a cluster would once the pod runs.
            let deployment = crate::names::consumer_name(&route.name_any());
            if let Ok(Some(d)) = shared
                .cluster
                .get::<Deployment>(&namespace, &deployment)
                .await
            {
                let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let status = serde_json::json!({
                    "replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                    "updatedReplicas": replicas, "observedGeneration": d.metadata.generation,
                });
                if let Err(e) = shared.cluster.patch_status(&d, status).await {
                    warn!(route = %key, error = %e, "could not mark the consumer ready");
                }
            }
            let handle = tokio::spawn(async move {
                consumer
                    .run(async move {
                        let _ = rx.wait_for(|s| *s).await;
                    })
                    .await;
            });
            consumers.insert(key, (handle, tx));
        }
        let gone: Vec<String> = consumers
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some((handle, tx)) = consumers.remove(&key) {
                let _ = tx.send(true);
                let _ = handle.await;
                info!(route = %key, "consumer stopped");
            }
        }

        // Retry Jobs created by the interaction endpoint: run each once, in-process.
        for job in shared.cluster.list_all::<Job>().unwrap_or_default() {
            let key = format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any());
            if jobs_run.insert(key.clone()) {
                let shared = shared.clone();
                tokio::spawn(async move { run_job(&shared, &job).await });
            }
        }

        // Digests: run each when its next run time passes.
        let now = Utc::now();
        for schedule in shared
            .cluster
            .list_all::<DigestSchedule>()
            .unwrap_or_default()
        {
            let namespace = schedule.namespace().unwrap_or_default();
            let key = format!("{namespace}/{}", schedule.name_any());
            let Some(next) = schedule.status.as_ref().and_then(|s| s.next_run_time) else {
                continue;
            };
            let due = *digests_due.entry(key.clone()).or_insert(next);
            if due <= now {
                digests_due.insert(key.clone(), next.max(now + chrono::Duration::seconds(60)));
                let shared = shared.clone();
                let name = schedule.name_any();
                tokio::spawn(async move {
                    if let Err(e) = digest_now(&shared, &namespace, &name).await {
                        warn!(schedule = %key, error = %e, "digest failed");
                    }
                });
            } else if next > due {
                digests_due.insert(key, next);
            }
        }

        changes.borrow_and_update();
        tokio::select! {
            _ = &mut stop => break,
            _ = changes.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
    for (key, (handle, tx)) in consumers {
        let _ = tx.send(true);
        let _ = handle.await;
        info!(route = %key, "consumer stopped");
    }
}

/// Completes once `stop` turns true.
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The value of an environment variable the container takes from a Secret, once the Secret
/// exists (its creator writes it right after the Job); `None` when it does not appear in time.
async fn job_secret_env(
    shared: &Shared,
    job: &Job,
    container: &k8s_openapi::api::core::v1::Container,
    variable: &str,
) -> Option<String> {
    use crate::k8s::ClusterApi;
    let reference = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == variable)?
        .value_from
        .as_ref()?
        .secret_key_ref
        .clone()?;
    let namespace = job.metadata.namespace.clone().unwrap_or_default();
    let mut changes = shared.cluster.subscribe();
    let wait = async {
        loop {
            changes.borrow_and_update();
            match shared
                .cluster
                .secret_value(&namespace, &reference.name, &reference.key)
                .await
            {
                Ok(Some(value)) => return Some(value),
                Ok(None) => {}
                Err(error) => {
                    warn!(job = %job.name_any(), error = %error, "cannot read the Job's Secret");
                    return None;
                }
            }
            if changes.changed().await.is_err() {
                return None;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .ok()
        .flatten()
}

/// Runs a retry Job's command in-process, as the Job's pod would.
async fn run_job(shared: &Shared, job: &Job) {
    let name = job.name_any();
    let Some(container) = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
    else {
        warn!(job = %name, "a Job without a container");
        return;
    };
    let args = container.args.clone().unwrap_or_default();
    let env: HashMap<String, String> = container
        .env
        .iter()
        .flatten()
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect();
    let Ok(mut args) = crate::retry::parse_job_args(args) else {
        warn!(job = %name, "not a retry Job; the local mode runs only those");
        return;
    };
    // In a pod these come from the Job's environment; here from the Job spec, and the response
    // URL from the Secret the spec references (waited for, as the kubelet waits).
    if args.response_url.is_none() {
        args.response_url = env
            .get("ALERTOPS_RESPONSE_URL")
            .cloned()
            .or(job_secret_env(shared, job, container, "ALERTOPS_RESPONSE_URL").await)
            .map(Secret);
    }
    if args.message_json.is_none() {
        args.message_json = env.get("ALERTOPS_SLACK_MESSAGE").cloned();
    }
    let request = match args.request() {
        Ok(r) => r,
        Err(e) => {
            warn!(job = %name, error = %e, "invalid retry Job");
            return;
        }
    };
    info!(job = %name, cluster = %request.cluster_id, attempt = request.attempt, "running retry Job");
    let outcome = crate::retry::run(&shared.cluster, &shared.aws, &shared.slack, &request).await;
    info!(job = %name, outcome = ?outcome, "retry Job finished");
}

async fn digest_now(
    shared: &Shared,
    namespace: &str,
    name: &str,
) -> Result<crate::digest::DigestReport, crate::digest::DigestError> {
    // One digest at a time: runs of one schedule must not interleave on its queue.
    let _guard = shared.digest_lock.lock().await;
    let report = crate::digest::run_digest(
        &shared.cluster,
        &shared.aws,
        &shared.slack,
        namespace,
        name,
        Utc::now(),
    )
    .await?;
    info!(
        schedule = %format!("{namespace}/{name}"),
        alerts = report.run.alert_count,
        sent = report.run.sent,
        "digest run"
    );
    Ok(report)
}

async fn run_digest_now(
    State(shared): State<Arc<Shared>>,
    UrlPath((namespace, name)): UrlPath<(String, String)>,
) -> impl IntoResponse {
    match digest_now(&shared, &namespace, &name).await {
        Ok(report) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "schedule": report.schedule,
                "alerts": report.run.alert_count,
                "sent": report.run.sent,
                "messageId": report.run.message_id,
                "subject": report.subject,
            })),
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({"error": e.to_string()})),
        ),
    }
}
