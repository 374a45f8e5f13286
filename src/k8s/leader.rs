//! Leader election on a `coordination.k8s.io/v1` Lease, so that only one controller replica
//! reconciles (and writes status) at a time.
//!
//! [`run_while_leader`] waits for the lease, runs the work while it is held, and stops the work
//! with an error as soon as the lease is lost or cannot be renewed: `main` then exits and the
//! Deployment restarts the pod, which queues for the lease again. Stopping on a failed renewal is
//! deliberate: a replica that cannot confirm its lease must assume another one may hold it.
//!
//! Timing, with lease duration `D` and grace `G` (the clock skew tolerated between replicas):
//! the holder renews `2G` before expiry; each request to the Lease times out after `G/2`; and
//! whatever the lease manager is doing, the work stops when no renewal was confirmed for
//! `D - G` (the renewal deadline). A renewal that hangs — an API server that stops answering —
//! therefore stops the work at least `G` before another replica may take the lease.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError, LeaseParams};
use tokio::time::Instant;
use tracing::{info, warn};

/// Seconds a lease stays valid after its last renewal, unless configured otherwise.
pub const DEFAULT_LEASE_DURATION_SECONDS: u64 = 30;
/// Seconds before expiry at which the holder renews, unless configured otherwise.
pub const DEFAULT_LEASE_GRACE_SECONDS: u64 = 5;

/// Longest pause between attempts to reach the lease while waiting for leadership.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Which lease to hold, and as whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Name of the Lease object (for example `alertops-controller`).
    pub lease_name: String,
    /// Namespace of the Lease (the controller's own namespace).
    pub namespace: String,
    /// This replica's identity, unique among replicas: the pod name.
    pub identity: String,
    /// Seconds the lease stays valid after a renewal; another replica may take it afterwards.
    pub duration_seconds: u64,
    /// Seconds before expiry at which the holder renews; also the clock skew tolerated.
    pub grace_seconds: u64,
}

impl LeaseConfig {
    /// A configuration with the default duration (30 s) and grace (5 s).
    pub fn new(
        lease_name: impl Into<String>,
        namespace: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        LeaseConfig {
            lease_name: lease_name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            duration_seconds: DEFAULT_LEASE_DURATION_SECONDS,
            grace_seconds: DEFAULT_LEASE_GRACE_SECONDS,
        }
    }

    fn validate(&self) -> Result<(), LeaderError> {
        let invalid = |why: &str| Err(LeaderError::InvalidConfig(why.to_string()));
        if self.lease_name.is_empty() || self.namespace.is_empty() || self.identity.is_empty() {
            return invalid("lease name, namespace and identity must not be empty");
        }
        // Renewal starts 2G before expiry and the work stops G before it: 2G < D.
        if self.grace_seconds == 0 || self.grace_seconds * 2 >= self.duration_seconds {
            return invalid(
                "the grace period must be at least 1 s and shorter than half the lease duration",
            );
        }
        Ok(())
    }
}

/// Why [`run_while_leader`] stopped without the work finishing.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The configuration cannot work; nothing was sent to the cluster.
    #[error("invalid lease configuration: {0}")]
    InvalidConfig(String),
    /// The Lease could not be read or created at start-up.
    #[error("cannot set up lease {lease}: {source}")]
    Setup {
        /// The lease name.
        lease: String,
        /// What the lease manager reported.
        #[source]
        source: LeaseManagerError,
    },
    /// Another replica holds the lease now.
    #[error("lost lease {0} to another replica")]
    LeadershipLost(String),
    /// The lease could not be renewed; another replica may take it, so the work stopped.
    #[error("cannot renew lease {lease}, stopping rather than risk two leaders: {source}")]
    RenewalFailed {
        /// The lease name.
        lease: String,
        /// What the lease manager reported.
        #[source]
        source: LeaseManagerError,
    },
    /// No renewal was confirmed in time (the API server stopped answering); the work stopped
    /// before the lease could expire and another replica take it.
    #[error(
        "lease {lease} not renewed within {deadline:?} of its last confirmation; stopped before it could expire"
    )]
    RenewalDeadline {
        /// The lease name.
        lease: String,
        /// How long after the last confirmed renewal the work is stopped.
        deadline: Duration,
    },
}

/// Runs `work` only while this replica holds the lease described by `config`.
///
/// Waits (retrying with back-off on API errors) until the lease is acquired, then runs `work`
/// while renewing the lease. Returns the work's output when it finishes first, after releasing
/// the lease so another replica takes over at once; returns an error, dropping the work, when
/// the lease is lost or cannot be renewed.
pub async fn run_while_leader<F: Future>(
    client: Client,
    config: &LeaseConfig,
    work: F,
) -> Result<F::Output, LeaderError> {
    config.validate()?;
    let duration = Duration::from_secs(config.duration_seconds);
    let grace = Duration::from_secs(config.grace_seconds);
    // The manager renews `grace` (its parameter) before expiry: 2G here, see the module doc.
    let params = LeaseParams::new(
        &config.identity,
        config.duration_seconds,
        config.grace_seconds * 2,
    );
    let confirmations = Confirmations::default();
    let lease_client = watched_client(
        client,
        lease_path(&config.namespace, &config.lease_name),
        (grace / 2).max(Duration::from_millis(500)),
        confirmations.clone(),
    );
    let manager = LeaseManagerBuilder::new(lease_client, &config.lease_name)
        .with_namespace(&config.namespace)
        .with_parameters(params)
        .build()
        .await
        .map_err(|source| LeaderError::Setup {
            lease: config.lease_name.clone(),
            source,
        })?;

    acquire(&manager, config).await;
    info!(lease = %config.lease_name, identity = %config.identity, "acquired the lease; leading");
    let renew_deadline = duration - grace;
    let deadline = || {
        confirmations
            .last()
            .unwrap_or_else(Instant::now)
            .checked_add(renew_deadline)
            .expect("a lease duration fits in an Instant")
    };

    let mut work = std::pin::pin!(work);
    let mut changed = Box::pin(manager.changed());
    loop {
        tokio::select! {
            // Finished work wins over a renewal in progress.
            biased;
            output = &mut work => {
                drop(changed);
                if let Err(err) = manager.release().await {
                    warn!(lease = %config.lease_name, error = %err, "could not release the lease; it will expire");
                }
                return Ok(output);
            }
            result = &mut changed => match result {
                Ok(true) => changed = Box::pin(manager.changed()),
                Ok(false) => return Err(LeaderError::LeadershipLost(config.lease_name.clone())),
                Err(source) => {
                    return Err(LeaderError::RenewalFailed { lease: config.lease_name.clone(), source });
                }
            },
            // Woken at the deadline as it stood; a renewal confirmed meanwhile moved it on.
            () = tokio::time::sleep_until(deadline()) => {
                if deadline() <= Instant::now() {
                    warn!(lease = %config.lease_name, deadline = ?renew_deadline, "no lease renewal confirmed in time; stopping before the lease can expire");
                    return Err(LeaderError::RenewalDeadline {
                        lease: config.lease_name.clone(),
                        deadline: renew_deadline,
                    });
                }
            }
        }
    }
}

/// When this replica last had a write to its Lease accepted: the instant the request was sent,
/// since the renewal time it carries is taken then.
#[derive(Clone, Default)]
struct Confirmations(Arc<Mutex<Option<Instant>>>);

impl Confirmations {
    fn last(&self) -> Option<Instant> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record(&self, sent: Instant) {
        let mut last = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|t| t < sent) {
            *last = Some(sent);
        }
    }
}

fn lease_path(namespace: &str, name: &str) -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}")
}

/// Why a request to the Lease failed before the API server answered.
#[derive(Debug, thiserror::Error)]
enum LeaseRequestError {
    #[error("no answer from the API server within {0:?}")]
    TimedOut(Duration),
    #[error(transparent)]
    Client(#[from] kube::Error),
}

/// A client for the lease manager alone: each request times out after `timeout` (a renewal
/// must not hang past the deadline), and every accepted PATCH of the Lease is recorded in
/// `confirmations`.
fn watched_client(
    client: Client,
    lease_path: String,
    timeout: Duration,
    confirmations: Confirmations,
) -> Client {
    let namespace = client.default_namespace().to_string();
    let service = tower::service_fn(move |request: Request<Body>| {
        let client = client.clone();
        let confirmations = confirmations.clone();
        let writes_lease = request.method() == Method::PATCH && request.uri().path() == lease_path;
        async move {
            let sent = Instant::now();
            let response: Response<Body> = tokio::time::timeout(timeout, client.send(request))
                .await
                .map_err(|_| LeaseRequestError::TimedOut(timeout))??;
            if writes_lease && response.status().is_success() {
                confirmations.record(sent);
            }
            Ok::<_, LeaseRequestError>(response)
        }
    });
    Client::new(service, namespace)
}

/// Waits until `manager` holds the lease, retrying API errors with exponential back-off.
async fn acquire(manager: &LeaseManager, config: &LeaseConfig) {
    let mut delay = Duration::from_secs(1);
    loop {
        match manager.changed().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(err) => {
                warn!(lease = %config.lease_name, error = %err, retry_in = ?delay, "cannot reach the lease");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use tower_test::mock::{Handle, SendResponse};

    type ApiServerHandle = Handle<Request<Body>, Response<Body>>;

    const LEASE: &str =
        "/apis/coordination.k8s.io/v1/namespaces/alertops/leases/alertops-controller";
    const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/alertops/leases";

    fn config() -> LeaseConfig {
        LeaseConfig::new("alertops-controller", "alertops", "replica-a")
    }

    fn mock_client() -> (Client, ApiServerHandle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        (Client::new(service, "default"), handle)
    }

    struct Seen {
        method: Method,
        path: String,
        query: String,
        content_type: Option<String>,
        body: Value,
    }

    async fn next_request(handle: &mut ApiServerHandle) -> (Seen, SendResponse<Response<Body>>) {
        let (request, send) = handle
            .next_request()
            .await
            .expect("the lease manager sent no request");
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_string());
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        let seen = Seen {
            method,
            path,
            query,
            content_type,
            body,
        };
        (seen, send)
    }

    fn respond(send: SendResponse<Response<Body>>, code: u16, body: Value) {
        let response = Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        send.send_response(response);
    }

    fn lease(spec: Value) -> Value {
        json!({ "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": { "name": "alertops-controller", "namespace": "alertops", "resourceVersion": "1" },
            "spec": spec })
    }

    fn held_by(identity: &str) -> Value {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        lease(
            json!({ "holderIdentity": identity, "acquireTime": now, "renewTime": now,
            "leaseDurationSeconds": 30, "leaseTransitions": 1 }),
        )
    }

    fn not_found() -> Value {
        json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
            "message": "leases.coordination.k8s.io \"alertops-controller\" not found" })
    }

    /// Plays the API server from a missing Lease to this replica holding it, asserting the
    /// requests that matter: creation, then the server-side apply that takes the lock.
    async fn serve_acquisition(handle: &mut ApiServerHandle) {
        let (seen, send) = next_request(handle).await;
        assert_eq!((seen.method, seen.path.as_str()), (Method::GET, LEASE));
        respond(send, 404, not_found());

        let (seen, send) = next_request(handle).await;
        assert_eq!((seen.method, seen.path.as_str()), (Method::POST, LEASES));
        assert_eq!(seen.body["metadata"]["name"], "alertops-controller");
        respond(send, 201, lease(json!({})));

        // The manager reads the (free) lease before trying to lock it, and again inside the lock.
        for _ in 0..2 {
            let (seen, send) = next_request(handle).await;
            assert_eq!((seen.method, seen.path.as_str()), (Method::GET, LEASE));
            respond(send, 200, lease(json!({})));
        }

        let (seen, send) = next_request(handle).await;
        assert_eq!((seen.method, seen.path.as_str()), (Method::PATCH, LEASE));
        assert_eq!(seen.query, "&fieldManager=kube-lease-manager-replica-a");
        assert_eq!(
            seen.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        assert_eq!(seen.body["spec"]["holderIdentity"], "replica-a");
        assert_eq!(seen.body["spec"]["leaseDurationSeconds"], 30);
        respond(send, 200, held_by("replica-a"));

        let (seen, send) = next_request(handle).await;
        assert_eq!(seen.method, Method::PATCH);
        assert_eq!(
            seen.content_type.as_deref(),
            Some("application/strategic-merge-patch+json")
        );
        assert_eq!(seen.body["spec"]["leaseTransitions"], 1);
        respond(send, 200, held_by("replica-a"));

        let (seen, send) = next_request(handle).await;
        assert_eq!((seen.method, seen.path.as_str()), (Method::GET, LEASE));
        respond(send, 200, held_by("replica-a"));
    }

    #[tokio::test]
    async fn work_runs_once_the_lease_is_acquired_and_the_lease_is_released_after() {
        let (client, mut handle) = mock_client();
        let (acquired_tx, acquired_rx) = tokio::sync::oneshot::channel();
        let verifier = tokio::spawn(async move {
            serve_acquisition(&mut handle).await;
            acquired_tx.send(()).unwrap();

            let (seen, send) = next_request(&mut handle).await;
            assert_eq!((seen.method, seen.path.as_str()), (Method::PATCH, LEASE));
            assert_eq!(
                seen.content_type.as_deref(),
                Some("application/strategic-merge-patch+json")
            );
            assert_eq!(
                seen.body["spec"]["holderIdentity"],
                Value::Null,
                "release clears the holder"
            );
            respond(send, 200, lease(json!({})));
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::GET);
            respond(send, 200, lease(json!({})));
        });
        let mut acquired_rx = acquired_rx;
        let work = async move {
            // The verifier signals right after answering the read that confirms the lock, before
            // it yields; work polled any earlier would find no signal.
            acquired_rx
                .try_recv()
                .expect("work started before the lease was acquired");
            "reconciled"
        };
        let output = run_while_leader(client, &config(), work).await.unwrap();
        assert_eq!(output, "reconciled");
        verifier.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn work_stops_when_another_replica_takes_the_lease() {
        let (client, mut handle) = mock_client();
        let verifier = tokio::spawn(async move {
            serve_acquisition(&mut handle).await;
            // Renewal, a grace period before expiry (the paused clock jumps there).
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!((seen.method, seen.path.as_str()), (Method::PATCH, LEASE));
            assert!(seen.body["spec"]["renewTime"].is_string());
            respond(send, 200, held_by("replica-b"));
            let (_, send) = next_request(&mut handle).await;
            respond(send, 200, held_by("replica-b"));
        });
        let err = run_while_leader(client, &config(), std::future::pending::<()>())
            .await
            .unwrap_err();
        assert!(
            matches!(err, LeaderError::LeadershipLost(ref lease) if lease == "alertops-controller"),
            "{err:?}"
        );
        verifier.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn work_stops_when_the_lease_cannot_be_renewed() {
        let (client, mut handle) = mock_client();
        let verifier = tokio::spawn(async move {
            serve_acquisition(&mut handle).await;
            let (_, send) = next_request(&mut handle).await;
            respond(
                send,
                500,
                json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "InternalError",
                    "code": 500, "message": "etcd unavailable" }),
            );
        });
        let err = run_while_leader(client, &config(), std::future::pending::<()>())
            .await
            .unwrap_err();
        assert!(matches!(err, LeaderError::RenewalFailed { .. }), "{err:?}");
        verifier.await.unwrap();
    }

    /// The API server stops answering after the lease was taken: the renewal hangs. The work
    /// must stop before the lease can expire (`duration` after the last confirmed renewal, less
    /// the clock skew tolerated), or another replica would lead while this one still reconciles.
    #[tokio::test(start_paused = true)]
    async fn work_stops_before_the_lease_expires_when_the_api_stops_answering() {
        let (client, mut handle) = mock_client();
        let (acquired_tx, acquired_rx) = tokio::sync::oneshot::channel();
        let verifier = tokio::spawn(async move {
            serve_acquisition(&mut handle).await;
            acquired_tx.send(Instant::now()).unwrap();
            // Every later request is received and never answered; the handles are kept so that
            // the connection stays open, as with an API server that hangs.
            let mut unanswered = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                unanswered.push((request, send));
            }
            unanswered.len()
        });
        let config = config();
        let outcome = tokio::time::timeout(
            Duration::from_secs(config.duration_seconds * 4),
            run_while_leader(client, &config, std::future::pending::<()>()),
        )
        .await;
        let stopped_at = Instant::now();
        let acquired_at = acquired_rx.await.expect("the lease was acquired");
        let err = outcome
            .expect("the work kept running after the API stopped answering")
            .unwrap_err();
        assert!(
            matches!(
                err,
                LeaderError::RenewalDeadline { .. } | LeaderError::RenewalFailed { .. }
            ),
            "{err:?}"
        );
        let latest_stop = Duration::from_secs(config.duration_seconds - config.grace_seconds);
        assert!(
            stopped_at - acquired_at <= latest_stop,
            "stopped {:?} after the last confirmation; the lease is only safe for {latest_stop:?}",
            stopped_at - acquired_at
        );
        verifier.abort();
    }

    #[tokio::test]
    async fn invalid_configuration_is_rejected_before_any_request() {
        let (client, mut handle) = mock_client();
        let mut bad = config();
        bad.grace_seconds = bad.duration_seconds;
        let err = run_while_leader(client.clone(), &bad, async {})
            .await
            .unwrap_err();
        assert!(matches!(err, LeaderError::InvalidConfig(_)), "{err:?}");
        let mut nameless = config();
        nameless.identity.clear();
        let err = run_while_leader(client, &nameless, async {})
            .await
            .unwrap_err();
        assert!(matches!(err, LeaderError::InvalidConfig(_)), "{err:?}");
        assert!(handle.next_request().await.is_none(), "no request expected");
    }
}
