//! Pure builders of the Kubernetes workloads alertops owns: the consumer Deployment (and its
//! ServiceAccount) of an AlertRoute, and the CronJob (and its ServiceAccount) of a
//! DigestSchedule. They run the operator's own image with another subcommand. The pod and
//! container security settings here are the ones every alertops workload runs with, the retry
//! Jobs `interact` creates included.
//!
//! Every object carries the `app.kubernetes.io/*` labels and a controller owner reference to its
//! resource, so Kubernetes garbage-collects it with the resource and the controller hears of its
//! status changes. Applying them is idempotent (server-side apply), so a spec change is an apply.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ResourceRequirements, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

#[cfg(test)]
use crate::names::{MAX_LABEL_VALUE, MAX_WORKLOAD_NAME};
use crate::names::{action_key_name, consumer_name, digest_name, instance_label};
use crate::resources::{AlertRoute, DigestSchedule};

/// `app.kubernetes.io/name` of consumer Deployments.
pub const CONSUMER_APP: &str = "alertops-consumer";
/// `app.kubernetes.io/name` of digest CronJobs.
pub const DIGEST_APP: &str = "alertops-digest";
/// `app.kubernetes.io/managed-by` of everything alertops creates.
pub const MANAGED_BY: &str = "alertops";
/// Port of the consumer's health endpoints (`/healthz`, `/readyz`).
pub const HEALTH_PORT: i32 = 8080;
/// Container name of the consumer.
pub const CONSUMER_CONTAINER: &str = "consumer";
/// Container name of the digest job.
pub const DIGEST_CONTAINER: &str = "digest";
/// Data key of a route's button-key Secret.
pub const ACTION_KEY_DATA_KEY: &str = "key";
/// The variable the consumer reads its button key from (`alertops consume`).
pub const ACTION_TOKEN_KEY_ENV: &str = "ALERTOPS_ACTION_TOKEN_KEY";
/// Seconds a digest run may take before Kubernetes stops it; kept below the digest queue's
/// visibility timeout so that messages a stopped run received are not seen twice by one run.
pub const DIGEST_ACTIVE_DEADLINE_SECONDS: i64 = 1500;

/// Non-root user of the distroless image.
const RUN_AS_USER: i64 = 65532;

/// Why a workload could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The owner lacks metadata the owner reference needs (it has not been stored yet).
    #[error("{kind} {name} has no {field}; cannot reference it as the owner of its workloads")]
    MissingOwnerMetadata {
        /// Kind of the owner.
        kind: String,
        /// Name of the owner.
        name: String,
        /// The missing field, e.g. `metadata.uid`.
        field: &'static str,
    },
    /// The built object does not fit its Kubernetes type (a bug in a builder).
    #[error("building {kind}: {source}")]
    Build {
        /// Kind being built.
        kind: &'static str,
        /// What did not fit.
        source: serde_json::Error,
    },
}

/// What every workload takes from the operator's settings and environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadParams {
    /// Container image (the alertops binary).
    pub image: String,
    /// Annotations of the service accounts (IRSA role ARN).
    pub service_account_annotations: BTreeMap<String, String>,
    /// The controller's AWS region, passed on so workloads talk to the same region.
    pub aws_region: Option<String>,
    /// The operator's cluster id, from which AWS names are derived.
    pub cluster_id: String,
    /// One ServiceAccount for every workload of a namespace (the chart's RoleBindings name
    /// it); `None` gives each workload its own, owned by its resource.
    pub shared_service_account: Option<String>,
    /// `imagePullPolicy` of the containers.
    pub image_pull_policy: Option<String>,
    /// Whether consumers sign buttons: the operator has a master key, and each consumer gets
    /// its route's derived key from the route's own Secret ([`consumer_action_key_secret`]).
    pub buttons_signed: bool,
    /// Base URL of Slack's Web API for consumers and digests.
    pub slack_api_base: Option<String>,
    /// `AWS_ENDPOINT_URL` of the workloads.
    pub aws_endpoint_url: Option<String>,
    /// Per-service endpoints of the workloads, by variable name (`AWS_ENDPOINT_URL_CLOUDWATCH`,
    /// `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`, …): see [`aws_service_endpoints`].
    pub aws_service_endpoints: BTreeMap<String, String>,
    /// How long consumers hold alerts through a Slack outage, in seconds.
    pub slack_outage_tolerance_seconds: u64,
    /// `ALERTOPS_AWS_RATE_LIMITS` of the workloads.
    pub aws_rate_limits: Option<String>,
}

/// The per-service AWS endpoints among environment variables (`AWS_ENDPOINT_URL_<SERVICE>`, set
/// and not empty), as the SDK reads them: the controller passes on those it was given, so its
/// workloads reach each service where it does (an emulator serving CloudWatch on its own port).
pub fn aws_service_endpoints(
    vars: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    vars.into_iter()
        .filter(|(name, value)| {
            name.strip_prefix("AWS_ENDPOINT_URL_")
                .is_some_and(|service| !service.is_empty())
                && !value.trim().is_empty()
        })
        .collect()
}

impl WorkloadParams {
    /// The ServiceAccount a workload named `own` runs as.
    fn service_account_name(&self, own: String) -> String {
        self.shared_service_account.clone().unwrap_or(own)
    }
}

/// The selector labels of a workload: its app and the resource it serves.
pub fn selector_labels(app: &str, instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), app.to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            instance_label(instance),
        ),
    ])
}

/// Every label of a workload: the selector labels and `managed-by`.
pub fn labels(app: &str, instance: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(app, instance);
    labels.insert(
        "app.kubernetes.io/managed-by".to_string(),
        MANAGED_BY.to_string(),
    );
    labels
}

/// The controller owner reference to `owner` (controller and blockOwnerDeletion set).
pub fn controller_reference<K: Resource<DynamicType = ()>>(
    owner: &K,
) -> Result<OwnerReference, WorkloadError> {
    let missing = |field| WorkloadError::MissingOwnerMetadata {
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        field,
    };
    if owner.meta().name.is_none() {
        return Err(missing("metadata.name"));
    }
    if owner.meta().uid.is_none() {
        return Err(missing("metadata.uid"));
    }
    owner
        .controller_owner_ref(&())
        .ok_or_else(|| missing("metadata.uid"))
}

/// Namespace of `owner`, or the error naming it.
fn namespace_of<K: Resource<DynamicType = ()>>(owner: &K) -> Result<String, WorkloadError> {
    owner
        .meta()
        .namespace
        .clone()
        .ok_or_else(|| WorkloadError::MissingOwnerMetadata {
            kind: K::kind(&()).into_owned(),
            name: owner.meta().name.clone().unwrap_or_default(),
            field: "metadata.namespace",
        })
}

/// The ServiceAccount of a workload, annotated for IRSA. A shared one (see
/// [`WorkloadParams::shared_service_account`]) belongs to no single resource: it has no owner
/// reference and stays when a resource goes.
fn service_account<K: Resource<DynamicType = ()>>(
    owner: &K,
    own_name: String,
    app: &str,
    params: &WorkloadParams,
) -> Result<ServiceAccount, WorkloadError> {
    let namespace = namespace_of(owner)?;
    let owner_reference = controller_reference(owner)?;
    let value = match &params.shared_service_account {
        Some(shared) => json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": shared,
                "namespace": namespace,
                "labels": {
                    "app.kubernetes.io/name": "alertops-workload",
                    "app.kubernetes.io/managed-by": MANAGED_BY,
                },
                "annotations": params.service_account_annotations,
            },
        }),
        None => json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": own_name,
                "namespace": namespace,
                "labels": labels(app, &owner.meta().name.clone().unwrap_or_default()),
                "annotations": params.service_account_annotations,
                "ownerReferences": [owner_reference],
            },
        }),
    };
    build("ServiceAccount", value)
}

/// The ServiceAccount the consumer of `route` runs as.
pub fn consumer_service_account(
    route: &AlertRoute,
    params: &WorkloadParams,
) -> Result<ServiceAccount, WorkloadError> {
    service_account(
        route,
        consumer_name(&route.name_any()),
        CONSUMER_APP,
        params,
    )
}

/// The ServiceAccount the digest jobs of `schedule` run as.
pub fn digest_service_account(
    schedule: &DigestSchedule,
    params: &WorkloadParams,
) -> Result<ServiceAccount, WorkloadError> {
    service_account(
        schedule,
        digest_name(&schedule.name_any()),
        DIGEST_APP,
        params,
    )
}

/// The Secret holding `route`'s own button key (`key`, the hex text of
/// [`crate::slack::route_key_text`]), owned by the route so it goes with it. Its consumer reads
/// it as [`ACTION_TOKEN_KEY_ENV`]; the master key it is derived from never leaves the operator's
/// namespace.
pub fn consumer_action_key_secret(route: &AlertRoute, key: &str) -> Result<Secret, WorkloadError> {
    let route_name = route.name_any();
    let value = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": action_key_name(&route_name),
            "namespace": namespace_of(route)?,
            "labels": labels(CONSUMER_APP, &route_name),
            "ownerReferences": [controller_reference(route)?],
        },
        "type": "Opaque",
        "data": {ACTION_KEY_DATA_KEY: BASE64.encode(key.as_bytes())},
    });
    build("Secret", value)
}

/// The consumer Deployment of `route`: `alertops consume --route NS/NAME`, health probes on
/// [`HEALTH_PORT`], replicas and resources from the spec.
pub fn consumer_deployment(
    route: &AlertRoute,
    params: &WorkloadParams,
) -> Result<Deployment, WorkloadError> {
    let route_name = route.name_any();
    let namespace = namespace_of(route)?;
    let name = consumer_name(&route_name);
    let replicas = route.spec.consumer.replicas.unwrap_or(1).max(0);
    let resources = route
        .spec
        .consumer
        .resources
        .clone()
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .unwrap_or_else(|| default_resources("64Mi", "256Mi"));
    let probe = |path: &str, period: i32| {
        json!({
            "httpGet": {"path": path, "port": "health"},
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        })
    };
    let value = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels(CONSUMER_APP, &route_name),
            "ownerReferences": [controller_reference(route)?],
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector_labels(CONSUMER_APP, &route_name)},
            "template": {
                "metadata": {"labels": labels(CONSUMER_APP, &route_name)},
                "spec": pod_spec(
                    &params.service_account_name(name.clone()),
                    container(params, json!({
                        "name": CONSUMER_CONTAINER,
                        "args": ["consume", "--route", format!("{namespace}/{route_name}")],
                        "env": consumer_env(params, &route_name),
                        "ports": [{"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
                        "livenessProbe": probe("/healthz", 10),
                        "readinessProbe": probe("/readyz", 5),
                        "resources": resources,
                        "securityContext": container_security_context(),
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    })),
                    "Always",
                ),
            },
        },
    });
    build("Deployment", value)
}

/// The digest CronJob of `schedule`: `alertops digest --schedule NS/NAME` on the schedule in its
/// time zone, never two runs at once.
pub fn digest_cron_job(
    schedule: &DigestSchedule,
    params: &WorkloadParams,
) -> Result<CronJob, WorkloadError> {
    let schedule_name = schedule.name_any();
    let namespace = namespace_of(schedule)?;
    let name = digest_name(&schedule_name);
    let spec = &schedule.spec;
    let value = json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels(DIGEST_APP, &schedule_name),
            "ownerReferences": [controller_reference(schedule)?],
        },
        "spec": {
            "schedule": spec.schedule.trim(),
            "timeZone": spec.time_zone,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": spec.starting_deadline_seconds,
            "successfulJobsHistoryLimit": spec.history_limit,
            "failedJobsHistoryLimit": spec.history_limit,
            "jobTemplate": {
                "metadata": {"labels": labels(DIGEST_APP, &schedule_name)},
                "spec": {
                    // The digest deletes messages only after sending, so a retry resends nothing.
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": DIGEST_ACTIVE_DEADLINE_SECONDS,
                    "template": {
                        "metadata": {"labels": labels(DIGEST_APP, &schedule_name)},
                        "spec": pod_spec(
                            &params.service_account_name(name.clone()),
                            container(params, json!({
                                "name": DIGEST_CONTAINER,
                                "args": ["digest", "--schedule", format!("{namespace}/{schedule_name}")],
                                "env": env(params),
                                "resources": default_resources("128Mi", "512Mi"),
                                "securityContext": container_security_context(),
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                            })),
                            "Never",
                        ),
                    },
                },
            },
        },
    });
    build("CronJob", value)
}

/// A pod running `container` as `service_account`, non-root, with a writable `/tmp` only.
fn pod_spec(service_account: &str, container: Value, restart_policy: &str) -> Value {
    json!({
        "serviceAccountName": service_account,
        "restartPolicy": restart_policy,
        "terminationGracePeriodSeconds": 60,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    })
}

/// The pod security context of every alertops workload: non-root, the runtime's seccomp profile.
pub fn pod_security_context() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// The container security context of every alertops workload: no privilege, no capability, a
/// read-only root file system (`/tmp` is an emptyDir).
pub fn container_security_context() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "privileged": false,
        "capabilities": {"drop": ["ALL"]},
    })
}

fn default_resources(memory_request: &str, memory_limit: &str) -> Value {
    let resources: ResourceRequirements = serde_json::from_value(json!({
        "requests": {"cpu": "50m", "memory": memory_request},
        "limits": {"memory": memory_limit},
    }))
    .unwrap_or_default();
    serde_json::to_value(resources).unwrap_or(Value::Null)
}

/// `container` with the image and its pull policy.
fn container(params: &WorkloadParams, mut container: Value) -> Value {
    container["image"] = json!(params.image);
    if let Some(policy) = &params.image_pull_policy {
        container["imagePullPolicy"] = json!(policy);
    }
    container
}

/// The environment of a workload: only variables its subcommand reads (a test checks them
/// against the command line).
fn env(params: &WorkloadParams) -> Value {
    let mut env = vec![
        json!({"name": "ALERTOPS_LOG_FORMAT", "value": "json"}),
        json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
    ];
    if let Some(base) = params.slack_api_base.as_deref().filter(|b| !b.is_empty()) {
        env.push(json!({"name": "ALERTOPS_SLACK_API_BASE", "value": base}));
    }
    if let Some(region) = &params.aws_region {
        env.push(json!({"name": "AWS_REGION", "value": region}));
    }
    if let Some(endpoint) = params.aws_endpoint_url.as_deref().filter(|e| !e.is_empty()) {
        env.push(json!({"name": "AWS_ENDPOINT_URL", "value": endpoint}));
    }
    for (name, endpoint) in &params.aws_service_endpoints {
        env.push(json!({"name": name, "value": endpoint}));
    }
    if let Some(limits) = params.aws_rate_limits.as_deref().filter(|l| !l.is_empty()) {
        env.push(json!({"name": "ALERTOPS_AWS_RATE_LIMITS", "value": limits}));
    }
    Value::Array(env)
}

/// The consumer's environment: [`env`] and, when buttons are signed, its route's own key from
/// the route's Secret (never the master key, never a value in the pod spec).
fn consumer_env(params: &WorkloadParams, route_name: &str) -> Value {
    let mut env = env(params);
    if let Value::Array(entries) = &mut env {
        entries.push(json!({
            "name": crate::consume::OUTAGE_TOLERANCE_ENV,
            "value": params.slack_outage_tolerance_seconds.to_string(),
        }));
    }
    if params.buttons_signed
        && let Value::Array(entries) = &mut env
    {
        entries.push(json!({
            "name": ACTION_TOKEN_KEY_ENV,
            "valueFrom": {"secretKeyRef": {
                "name": action_key_name(route_name),
                "key": ACTION_KEY_DATA_KEY,
            }},
        }));
    }
    env
}

fn build<T: DeserializeOwned>(kind: &'static str, value: Value) -> Result<T, WorkloadError> {
    serde_json::from_value(value).map_err(|source| WorkloadError::Build { kind, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{AlertRouteSpec, DigestScheduleSpec};

    fn params() -> WorkloadParams {
        WorkloadParams {
            image: "ghcr.io/alertops/alertops:9.9.9".into(),
            service_account_annotations: BTreeMap::from([(
                "eks.amazonaws.com/role-arn".to_string(),
                "arn:aws:iam::123456789012:role/consumer".to_string(),
            )]),
            aws_region: Some("eu-west-1".into()),
            cluster_id: "prod".into(),
            shared_service_account: None,
            image_pull_policy: None,
            buttons_signed: false,
            slack_api_base: None,
            aws_endpoint_url: None,
            aws_service_endpoints: BTreeMap::new(),
            slack_outage_tolerance_seconds: 7200,
            aws_rate_limits: None,
        }
    }

    /// The pod spec of a digest CronJob's runs.
    fn digest_pod(
        job: k8s_openapi::api::batch::v1::CronJob,
    ) -> k8s_openapi::api::core::v1::PodSpec {
        job.spec
            .unwrap()
            .job_template
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
    }

    fn env_of(c: &k8s_openapi::api::core::v1::Container) -> BTreeMap<String, String> {
        c.env
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| Some((e.name, e.value?)))
            .collect()
    }

    /// Every `ALERTOPS_*` variable a workload gets is declared by its subcommand, so none is
    /// silently ignored.
    fn declared_env(subcommand: &str) -> Vec<String> {
        use clap::Args;
        let command = match subcommand {
            "consume" => crate::consume::ConsumeArgs::augment_args(clap::Command::new("consume")),
            "digest" => {
                crate::digest::command::DigestArgs::augment_args(clap::Command::new("digest"))
            }
            other => panic!("no workload runs {other}"),
        };
        command
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .chain([crate::telemetry::logging::LOG_FORMAT_ENV.to_string()])
            .collect()
    }

    #[test]
    fn per_service_endpoints_the_controller_was_given_reach_every_workload() {
        let endpoints = aws_service_endpoints([
            ("AWS_ENDPOINT_URL".into(), "http://moto:5000".into()),
            (
                "AWS_ENDPOINT_URL_CLOUDWATCH".into(),
                "http://cloudwatch:5001".into(),
            ),
            (
                "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS".into(),
                "http://logs:5002".into(),
            ),
            ("AWS_ENDPOINT_URL_SQS".into(), " ".into()),
            ("AWS_ENDPOINT_URL_".into(), "http://nothing".into()),
            ("HOME".into(), "/root".into()),
        ]);
        assert_eq!(
            endpoints.keys().collect::<Vec<_>>(),
            [
                "AWS_ENDPOINT_URL_CLOUDWATCH",
                "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"
            ],
            "only set per-service endpoints; the global one has its own flag"
        );
        let params = WorkloadParams {
            aws_endpoint_url: Some("http://moto:5000".into()),
            aws_service_endpoints: endpoints,
            ..params()
        };
        let consumer = consumer_deployment(&route("slack", json!({})), &params).unwrap();
        let consumer = env_of(&consumer.spec.unwrap().template.spec.unwrap().containers[0]);
        let digest = digest_pod(digest_cron_job(&schedule(), &params).unwrap());
        let digest = env_of(&digest.containers[0]);
        for env in [consumer, digest] {
            assert_eq!(env["AWS_ENDPOINT_URL"], "http://moto:5000");
            assert_eq!(env["AWS_ENDPOINT_URL_CLOUDWATCH"], "http://cloudwatch:5001");
            assert_eq!(env["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"], "http://logs:5002");
            assert!(!env.contains_key("AWS_ENDPOINT_URL_SQS"));
        }
    }

    #[test]
    fn settings_reach_the_workloads_and_only_what_their_subcommand_reads() {
        let params = WorkloadParams {
            shared_service_account: Some("alertops-workload".into()),
            image_pull_policy: Some("Always".into()),
            buttons_signed: true,
            slack_api_base: Some("https://slack.example/api/".into()),
            aws_endpoint_url: Some("http://moto.aws:5000".into()),
            aws_rate_limits: Some("ses=14".into()),
            ..params()
        };
        let route = route("slack", json!({}));
        let d = consumer_deployment(&route, &params).unwrap();
        let pod = d.spec.unwrap().template.spec.unwrap();
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("alertops-workload")
        );
        let c = &pod.containers[0];
        assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
        let env = env_of(c);
        assert!(
            !env.contains_key("ALERTOPS_ACTION_KEY_SECRET"),
            "the consumer is not told where the master key is"
        );
        let key_from = c
            .env
            .iter()
            .flatten()
            .find(|e| e.name == ACTION_TOKEN_KEY_ENV)
            .expect("the route's key");
        assert_eq!(key_from.value, None, "never a value in the pod spec");
        let secret_ref = key_from
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .expect("from a Secret");
        assert_eq!(
            (secret_ref.name.as_str(), secret_ref.key.as_str()),
            (crate::names::action_key_name("slack").as_str(), "key")
        );
        assert_eq!(env["ALERTOPS_SLACK_API_BASE"], "https://slack.example/api/");
        assert_eq!(env["AWS_ENDPOINT_URL"], "http://moto.aws:5000");
        assert_eq!(env["ALERTOPS_SLACK_OUTAGE_TOLERANCE_SECONDS"], "7200");
        assert_eq!(env["ALERTOPS_AWS_RATE_LIMITS"], "ses=14");
        let declared = declared_env("consume");
        let names = c.env.iter().flatten().map(|e| &e.name);
        for name in names.filter(|n| n.starts_with("ALERTOPS_")) {
            assert!(declared.contains(name), "consume does not read {name}");
        }

        let pod = digest_pod(digest_cron_job(&schedule(), &params).unwrap());
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("alertops-workload")
        );
        let env = env_of(&pod.containers[0]);
        assert_eq!(env["ALERTOPS_SLACK_API_BASE"], "https://slack.example/api/");
        assert!(
            !env.contains_key("ALERTOPS_ACTION_KEY_SECRET")
                && !pod.containers[0]
                    .env
                    .iter()
                    .flatten()
                    .any(|e| e.name == ACTION_TOKEN_KEY_ENV),
            "only the consumer signs buttons"
        );
        let declared = declared_env("digest");
        for name in env.keys().filter(|n| n.starts_with("ALERTOPS_")) {
            assert!(declared.contains(name), "digest does not read {name}");
        }

        let sa = consumer_service_account(&route, &params).unwrap();
        assert_eq!(sa.metadata.name.as_deref(), Some("alertops-workload"));
        assert!(
            sa.metadata.owner_references.is_none(),
            "a shared ServiceAccount belongs to no single route"
        );
        assert!(
            sa.metadata
                .annotations
                .unwrap()
                .contains_key("eks.amazonaws.com/role-arn")
        );
    }

    fn route(name: &str, extra: Value) -> AlertRoute {
        let mut spec = json!({
            "sources": [{"alarmPolicy": "elb"}],
            "email": {"from": "a@example.com", "to": ["b@example.com"]},
        });
        if let (Value::Object(spec), Value::Object(extra)) = (&mut spec, extra) {
            spec.extend(extra);
        }
        let spec: AlertRouteSpec = serde_json::from_value(spec).unwrap();
        let mut route = AlertRoute::new(name, spec);
        route.metadata.namespace = Some("team-a".into());
        route.metadata.uid = Some("uid-1".into());
        route
    }

    fn schedule() -> DigestSchedule {
        let spec: DigestScheduleSpec = serde_json::from_value(json!({
            "schedule": "0 8,20 * * *",
            "timeZone": "America/Los_Angeles",
            "sources": [{"alarmPolicy": "emr"}],
            "email": {"from": "a@example.com", "to": ["b@example.com"]},
            "startingDeadlineSeconds": 300,
            "historyLimit": 5,
        }))
        .unwrap();
        let mut schedule = DigestSchedule::new("twice-daily", spec);
        schedule.metadata.namespace = Some("team-a".into());
        schedule.metadata.uid = Some("uid-2".into());
        schedule
    }

    #[test]
    fn consumer_deployment_runs_the_route_with_probes_and_owner() {
        let d = consumer_deployment(&route("slack", json!({})), &params()).unwrap();
        assert_eq!(d.metadata.name.as_deref(), Some("slack-consumer"));
        assert_eq!(d.metadata.namespace.as_deref(), Some("team-a"));
        let labels = d.metadata.labels.clone().unwrap();
        assert_eq!(labels["app.kubernetes.io/name"], "alertops-consumer");
        assert_eq!(labels["app.kubernetes.io/instance"], "slack");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "alertops");
        let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("AlertRoute", "slack", "uid-1")
        );
        assert_eq!(owner.controller, Some(true));
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        let selector = spec.selector.match_labels.unwrap();
        let template_labels = spec.template.metadata.unwrap().labels.unwrap();
        assert!(
            selector
                .iter()
                .all(|(k, v)| template_labels.get(k) == Some(v))
        );
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("slack-consumer"));
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("ghcr.io/alertops/alertops:9.9.9"));
        assert_eq!(
            c.args.clone().unwrap(),
            vec!["consume", "--route", "team-a/slack"]
        );
        let liveness = c.liveness_probe.clone().unwrap().http_get.unwrap();
        assert_eq!(liveness.path.as_deref(), Some("/healthz"));
        let readiness = c.readiness_probe.clone().unwrap().http_get.unwrap();
        assert_eq!(readiness.path.as_deref(), Some("/readyz"));
        assert_eq!(c.ports.clone().unwrap()[0].container_port, HEALTH_PORT);
        let security = c.security_context.clone().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.run_as_non_root, Some(true));
        let env = c.env.clone().unwrap();
        assert!(
            env.iter()
                .any(|e| e.name == "AWS_REGION" && e.value.as_deref() == Some("eu-west-1"))
        );
        let requests = c.resources.clone().unwrap().requests.unwrap();
        assert_eq!(requests["memory"].0, "64Mi");
    }

    #[test]
    fn consumer_replicas_and_resources_come_from_the_spec() {
        let r = route(
            "big",
            json!({"consumer": {"replicas": 3, "resources": {"requests": {"cpu": "1"}}}}),
        );
        let d = consumer_deployment(&r, &params()).unwrap();
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(3));
        let resources = spec.template.spec.unwrap().containers[0]
            .resources
            .clone()
            .unwrap();
        assert_eq!(resources.requests.unwrap()["cpu"].0, "1");
        assert!(resources.limits.is_none(), "the spec's resources, not ours");
    }

    #[test]
    fn the_route_key_secret_is_owned_by_the_route_in_its_namespace() {
        let route = route("slack", json!({}));
        let secret = consumer_action_key_secret(&route, "abc123").unwrap();
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("slack-consumer-action-key")
        );
        assert_eq!(
            secret.metadata.namespace.as_deref(),
            route.metadata.namespace.as_deref()
        );
        let owner = &secret.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("AlertRoute", "slack", Some(true))
        );
        assert_eq!(
            secret.data.unwrap()[ACTION_KEY_DATA_KEY].0,
            b"abc123".to_vec()
        );
    }

    #[test]
    fn service_accounts_carry_the_irsa_annotation_and_owner() {
        let sa = consumer_service_account(&route("slack", json!({})), &params()).unwrap();
        assert_eq!(sa.metadata.name.as_deref(), Some("slack-consumer"));
        assert_eq!(
            sa.metadata.annotations.unwrap()["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::123456789012:role/consumer"
        );
        assert_eq!(sa.metadata.owner_references.unwrap()[0].kind, "AlertRoute");
        let sa = digest_service_account(&schedule(), &params()).unwrap();
        assert_eq!(sa.metadata.name.as_deref(), Some("twice-daily-digest"));
    }

    #[test]
    fn digest_cron_job_has_schedule_zone_and_forbids_overlap() {
        let job = digest_cron_job(&schedule(), &params()).unwrap();
        assert_eq!(job.metadata.name.as_deref(), Some("twice-daily-digest"));
        assert_eq!(
            job.metadata.owner_references.unwrap()[0].kind,
            "DigestSchedule"
        );
        let spec = job.spec.unwrap();
        assert_eq!(spec.schedule, "0 8,20 * * *");
        assert_eq!(spec.time_zone.as_deref(), Some("America/Los_Angeles"));
        assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
        assert_eq!(spec.starting_deadline_seconds, Some(300));
        assert_eq!(spec.successful_jobs_history_limit, Some(5));
        assert_eq!(spec.failed_jobs_history_limit, Some(5));
        let pod = spec.job_template.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("twice-daily-digest")
        );
        let c = &pod.containers[0];
        assert_eq!(
            c.args.clone().unwrap(),
            vec!["digest", "--schedule", "team-a/twice-daily"]
        );
        assert_eq!(
            c.security_context
                .clone()
                .unwrap()
                .read_only_root_filesystem,
            Some(true)
        );
    }

    #[test]
    fn long_names_fit_and_stay_distinct() {
        let a = "r".repeat(253);
        let b = format!("{}s", "r".repeat(252));
        assert!(consumer_name(&a).len() <= MAX_WORKLOAD_NAME);
        assert_ne!(consumer_name(&a), consumer_name(&b));
        assert!(consumer_name(&a).ends_with("-consumer"));
        assert!(digest_name(&a).len() <= MAX_WORKLOAD_NAME);
        assert!(instance_label(&a).len() <= MAX_LABEL_VALUE);
        assert_ne!(instance_label(&a), instance_label(&b));
        let d = consumer_deployment(&route(&a, json!({})), &params()).unwrap();
        assert!(d.metadata.labels.unwrap()["app.kubernetes.io/instance"].len() <= MAX_LABEL_VALUE);
    }

    #[test]
    fn an_owner_without_uid_is_an_error_not_a_panic() {
        let mut r = route("new", json!({}));
        r.metadata.uid = None;
        let err = consumer_deployment(&r, &params()).unwrap_err();
        assert!(err.to_string().contains("metadata.uid"), "{err}");
    }
}
