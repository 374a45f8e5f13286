//! The narrow interface through which reconcilers reach Kubernetes.
//!
//! [`ClusterApi`] is everything a reconciler may do to the cluster. Two implementations:
//! - [`KubeCluster`] over a `kube::Client`, in a real cluster;
//! - [`MemoryCluster`], an in-memory store that behaves like an API server where it matters
//!   (generations, finalizers, deletion, garbage collection), for the local mode and for tests.
//!
//! [`leader`] runs the controller only while this replica holds a `Lease`.

pub(crate) mod kube_cluster;
pub(crate) mod leader;
pub(crate) mod memory;

use std::fmt::Debug;
use std::future::Future;

use k8s_openapi::NamespaceResourceScope;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use kube_cluster::KubeCluster;
pub use memory::MemoryCluster;

/// The field manager of the controller (server-side apply of objects and of status), so that
/// ownership of fields stays stable across restarts and replicas.
pub const FIELD_MANAGER: &str = "alertops";

/// Who writes a status. Each writer applies only its own fields under its own field manager, so
/// that server-side apply keeps what the others wrote: a digest run records `status.lastRun`,
/// the controller everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusWriter {
    /// The controller's reconcilers.
    Controller,
    /// A digest run, recording itself on its DigestSchedule.
    Digest,
}

impl StatusWriter {
    /// Every writer.
    pub const ALL: [StatusWriter; 2] = [StatusWriter::Controller, StatusWriter::Digest];

    /// The field manager of its server-side applies.
    pub fn field_manager(self) -> &'static str {
        match self {
            StatusWriter::Controller => FIELD_MANAGER,
            StatusWriter::Digest => "alertops-digest",
        }
    }

    /// The top-level status fields of a `kind` that this writer alone writes. The controller
    /// computes a whole status, possibly from a stale cached copy; its writes leave these out so
    /// that it can neither revert nor erase them.
    pub fn owned_fields(self, kind: &str) -> &'static [&'static str] {
        match (self, kind) {
            (StatusWriter::Digest, "DigestSchedule") => &["lastRun"],
            _ => &[],
        }
    }

    /// What `self` applies of `status` on an object of `kind`: everything but the fields another
    /// writer owns.
    pub fn own_part(self, kind: &str, mut status: serde_json::Value) -> serde_json::Value {
        if let serde_json::Value::Object(fields) = &mut status {
            for other in StatusWriter::ALL.into_iter().filter(|w| *w != self) {
                for field in other.owned_fields(kind) {
                    fields.remove(*field);
                }
            }
        }
        status
    }
}

/// A namespaced Kubernetes resource type with a static API version and kind: the custom resources
/// and the built-in workloads alertops owns (Deployment, CronJob, Job, ServiceAccount, Secret...).
pub trait NamespacedResource:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> NamespacedResource for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// Result of a [`ClusterApi`] call.
pub type Result<T, E = ClusterError> = std::result::Result<T, E>;

/// Why a call to the cluster failed, classified the way reconcilers act on it.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The object does not exist (HTTP 404).
    #[error("not found: {0}")]
    NotFound(String),
    /// A concurrent change won: a resourceVersion conflict, an object that already exists, or a
    /// finalizer patch whose `test` guard failed. Retrying after a fresh read is the answer.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The API server rejected the object or the request as invalid (HTTP 400 or 422).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The service account may not do this (HTTP 401 or 403), or the server forbids the change.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Any other answer of the API server (429, 5xx...).
    #[error("API server answered {code} {reason}: {message}")]
    Api {
        /// HTTP status code.
        code: u16,
        /// Machine-readable reason from the `Status` object.
        reason: String,
        /// Human-readable message from the `Status` object.
        message: String,
    },
    /// The API server could not be reached or the connection failed.
    #[error("transport: {0}")]
    Transport(String),
    /// An object could not be converted between its Rust type and JSON.
    #[error("serialization: {0}")]
    Serialization(String),
}

impl ClusterError {
    /// A concurrent change won; re-read and retry.
    pub fn is_conflict(&self) -> bool {
        matches!(self, ClusterError::Conflict(_))
    }

    /// The object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClusterError::NotFound(_))
    }

    /// Short, stable label for metrics and events.
    pub fn category(&self) -> &'static str {
        match self {
            ClusterError::NotFound(_) => "not_found",
            ClusterError::Conflict(_) => "conflict",
            ClusterError::Invalid(_) => "invalid",
            ClusterError::Forbidden(_) => "forbidden",
            ClusterError::Api { .. } => "api",
            ClusterError::Transport(_) => "transport",
            ClusterError::Serialization(_) => "serialization",
        }
    }

    /// Classifies an API `Status` answer by its HTTP code.
    pub fn from_status(code: u16, reason: &str, message: &str) -> Self {
        let described = if reason.is_empty() {
            message.to_string()
        } else {
            format!("{reason}: {message}")
        };
        match code {
            404 => ClusterError::NotFound(described),
            409 => ClusterError::Conflict(described),
            400 | 422 => ClusterError::Invalid(described),
            401 | 403 => ClusterError::Forbidden(described),
            _ => ClusterError::Api {
                code,
                reason: reason.to_string(),
                message: message.to_string(),
            },
        }
    }
}

impl From<serde_json::Error> for ClusterError {
    fn from(err: serde_json::Error) -> Self {
        ClusterError::Serialization(err.to_string())
    }
}

/// What [`ClusterApi::create`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Created<T> {
    /// The object did not exist and was created; the server's copy.
    New(T),
    /// An object of that name already existed (409 AlreadyExists); the existing object, read back.
    AlreadyExisted(T),
}

impl<T> Created<T> {
    /// The object, whichever way it came.
    pub fn into_inner(self) -> T {
        match self {
            Created::New(obj) | Created::AlreadyExisted(obj) => obj,
        }
    }

    /// True when this call created the object.
    pub fn is_new(&self) -> bool {
        matches!(self, Created::New(_))
    }
}

/// Severity of a Kubernetes event, as `kubectl describe` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum EventType {
    /// Something happened as it should.
    Normal,
    /// Something is wrong and a person may need to look.
    Warning,
}

impl EventType {
    /// The value of the event's `type` field.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// An event about one object (events.k8s.io/v1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventInfo {
    /// Normal or Warning.
    pub type_: EventType,
    /// Why the action was taken, in PascalCase, at most 128 characters (`TopicCreated`).
    pub reason: String,
    /// What happened, for a person; at most 1 kB.
    pub note: Option<String>,
    /// What was done, in PascalCase, at most 128 characters (`Reconcile`).
    pub action: String,
}

/// Everything a reconciler may do to the cluster. Every method returns a `Send` future, as the
/// kube-runtime controller requires.
///
/// Objects are addressed by namespace and name; the type parameter gives the API version and kind.
pub trait ClusterApi: Clone + Send + Sync + 'static {
    /// Reads one object; `None` when it does not exist.
    fn get<K: NamespacedResource>(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<K>>> + Send;

    /// Lists every object of type `K` in a namespace.
    fn list<K: NamespacedResource>(
        &self,
        namespace: &str,
    ) -> impl Future<Output = Result<Vec<K>>> + Send;

    /// Lists the objects of type `K` in a namespace that carry the label `key` (any value):
    /// in a cluster a label selector, so that only those travel (snoozes among every ConfigMap
    /// of a namespace).
    fn list_labelled<K: NamespacedResource>(
        &self,
        namespace: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<K>>> + Send {
        let key = key.to_string();
        let listing = self.list::<K>(namespace);
        async move {
            Ok(listing
                .await?
                .into_iter()
                .filter(|obj| {
                    obj.meta()
                        .labels
                        .as_ref()
                        .is_some_and(|labels| labels.contains_key(&key))
                })
                .collect())
        }
    }

    /// The controller's status write: [`ClusterApi::apply_status`] as
    /// [`StatusWriter::Controller`]. `status` is the whole status the controller computed; fields
    /// other writers own are left out of it.
    fn patch_status<K: NamespacedResource>(
        &self,
        obj: &K,
        status: serde_json::Value,
    ) -> impl Future<Output = Result<()>> + Send {
        self.apply_status(obj, StatusWriter::Controller, status)
    }

    /// Server-side apply of `writer`'s part of the status of `obj` to the status subresource
    /// (its own field manager, forced): the fields it applied before and leaves out now are
    /// removed, fields of other writers are kept. The spec and `metadata.generation` are never
    /// touched.
    fn apply_status<K: NamespacedResource>(
        &self,
        obj: &K,
        writer: StatusWriter,
        status: serde_json::Value,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Adds `finalizer` to `obj` with a JSON patch guarded by a `test` of the finalizers `obj`
    /// carries, so that a concurrent change fails with [`ClusterError::Conflict`] instead of being
    /// overwritten. Returns the updated object (or `obj` itself when the finalizer is already there).
    fn add_finalizer<K: NamespacedResource>(
        &self,
        obj: &K,
        finalizer: &str,
    ) -> impl Future<Output = Result<K>> + Send;

    /// Removes `finalizer` from `obj` with a JSON patch guarded by a `test` of its index, so that a
    /// concurrent change fails with [`ClusterError::Conflict`]. Does nothing when `obj` does not
    /// carry it. When the last finalizer of a deleted object goes, the object goes.
    fn remove_finalizer<K: NamespacedResource>(
        &self,
        obj: &K,
        finalizer: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Server-side apply of an owned object (field manager [`FIELD_MANAGER`], forced): created when
    /// missing, updated to `obj` otherwise (its status is ignored: status is a subresource). `obj` must
    /// name its namespace. Returns the server's copy.
    fn apply<T: NamespacedResource>(&self, obj: &T) -> impl Future<Output = Result<T>> + Send;

    /// JSON merge patch (RFC 7386) of the object `namespace/name`: only the members `patch`
    /// names change (`null` removes one), so that writers of different members never overwrite
    /// each other. Not a status write (status is a subresource). `None` when the object does
    /// not exist; otherwise the server's copy.
    fn merge_patch<T: NamespacedResource>(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> impl Future<Output = Result<Option<T>>> + Send;

    /// Creates `obj`; an existing object of that name is a normal outcome, read back as
    /// [`Created::AlreadyExisted`]. This makes creation idempotent (one retry Job per click).
    fn create<T: NamespacedResource>(
        &self,
        obj: &T,
    ) -> impl Future<Output = Result<Created<T>>> + Send;

    /// Requests deletion (dependents are garbage-collected in the background). Returns `false`
    /// when the object did not exist.
    fn delete<T: NamespacedResource>(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// The decoded value of `key` in a Secret; `None` when the Secret or the key is missing.
    fn secret_value(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Publishes an event about `obj`, shown by `kubectl describe`.
    fn publish_event<K: NamespacedResource>(
        &self,
        obj: &K,
        event: EventInfo,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Namespace and name of an object, or an [`ClusterError::Invalid`] naming what is missing.
pub(crate) fn namespace_and_name<K: Resource>(obj: &K) -> Result<(String, String)> {
    let meta = obj.meta();
    let name = meta
        .name
        .clone()
        .ok_or_else(|| ClusterError::Invalid("object has no metadata.name".into()))?;
    let namespace = meta
        .namespace
        .clone()
        .ok_or_else(|| ClusterError::Invalid(format!("object {name} has no metadata.namespace")))?;
    Ok((namespace, name))
}

/// The JSON patch that appends `finalizer`, guarded by a `test` of the finalizers the caller saw
/// (as kube-runtime's finalizer helper does: Kubernetes does not deduplicate finalizers).
pub(crate) fn add_finalizer_patch(current: &[String], finalizer: &str) -> json_patch::Patch {
    use json_patch::{AddOperation, PatchOperation, TestOperation};
    let finalizers = pointer(&["metadata", "finalizers"]);
    json_patch::Patch(if current.is_empty() {
        vec![
            PatchOperation::Test(TestOperation {
                path: finalizers.clone(),
                value: serde_json::Value::Null,
            }),
            PatchOperation::Add(AddOperation {
                path: finalizers,
                value: serde_json::json!([finalizer]),
            }),
        ]
    } else {
        vec![
            PatchOperation::Test(TestOperation {
                path: finalizers,
                value: serde_json::json!(current),
            }),
            PatchOperation::Add(AddOperation {
                path: pointer(&["metadata", "finalizers", "-"]),
                value: serde_json::json!(finalizer),
            }),
        ]
    })
}

/// The JSON patch that removes `finalizer` at its index, guarded by a `test` of that index, or
/// `None` when the caller's object does not carry it.
pub(crate) fn remove_finalizer_patch(
    current: &[String],
    finalizer: &str,
) -> Option<json_patch::Patch> {
    use json_patch::{PatchOperation, RemoveOperation, TestOperation};
    let index = current.iter().position(|f| f == finalizer)?.to_string();
    let path = pointer(&["metadata", "finalizers", &index]);
    Some(json_patch::Patch(vec![
        PatchOperation::Test(TestOperation {
            path: path.clone(),
            value: serde_json::json!(finalizer),
        }),
        PatchOperation::Remove(RemoveOperation { path }),
    ]))
}

fn pointer(tokens: &[&str]) -> json_patch::jsonptr::PointerBuf {
    json_patch::jsonptr::PointerBuf::from_tokens(tokens.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reconciler generic over the cluster, as the lead writes them: its future must be `Send`
    /// to be spawned (the kube-runtime controller spawns reconcilers the same way).
    async fn generic_reconcile<C: ClusterApi>(cluster: C) -> Result<bool> {
        use k8s_openapi::api::batch::v1::Job;
        let job: Job = serde_json::from_value(serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": { "name": "retry", "namespace": "team-a" },
        }))?;
        let created = cluster.create(&job).await?;
        let found = cluster.get::<Job>("team-a", "retry").await?;
        Ok(created.is_new() && found.is_some())
    }

    #[tokio::test]
    async fn cluster_futures_are_send() {
        let spawned = tokio::spawn(generic_reconcile(MemoryCluster::new()));
        assert!(spawned.await.unwrap().unwrap());
    }

    #[test]
    fn status_codes_are_classified() {
        assert!(ClusterError::from_status(409, "AlreadyExists", "x").is_conflict());
        assert!(ClusterError::from_status(404, "NotFound", "x").is_not_found());
        assert!(matches!(
            ClusterError::from_status(422, "Invalid", "x"),
            ClusterError::Invalid(_)
        ));
        assert!(matches!(
            ClusterError::from_status(403, "Forbidden", "x"),
            ClusterError::Forbidden(_)
        ));
        let other = ClusterError::from_status(503, "ServiceUnavailable", "down");
        assert_eq!(other.category(), "api");
        assert_eq!(
            other.to_string(),
            "API server answered 503 ServiceUnavailable: down"
        );
    }

    #[test]
    fn add_patch_tests_null_when_no_finalizers() {
        let patch = serde_json::to_value(add_finalizer_patch(&[], "alertops.dev/cleanup")).unwrap();
        assert_eq!(
            patch,
            serde_json::json!([
                { "op": "test", "path": "/metadata/finalizers", "value": null },
                { "op": "add", "path": "/metadata/finalizers", "value": ["alertops.dev/cleanup"] },
            ])
        );
    }

    #[test]
    fn add_patch_tests_current_list_and_appends() {
        let current = vec!["other".to_string()];
        let patch = serde_json::to_value(add_finalizer_patch(&current, "mine")).unwrap();
        assert_eq!(
            patch,
            serde_json::json!([
                { "op": "test", "path": "/metadata/finalizers", "value": ["other"] },
                { "op": "add", "path": "/metadata/finalizers/-", "value": "mine" },
            ])
        );
    }

    #[test]
    fn remove_patch_tests_the_index() {
        let current = vec!["other".to_string(), "mine".to_string()];
        let patch =
            serde_json::to_value(remove_finalizer_patch(&current, "mine").unwrap()).unwrap();
        assert_eq!(
            patch,
            serde_json::json!([
                { "op": "test", "path": "/metadata/finalizers/1", "value": "mine" },
                { "op": "remove", "path": "/metadata/finalizers/1" },
            ])
        );
        assert!(remove_finalizer_patch(&current, "absent").is_none());
    }
}

/// A key of a Secret: `NAMESPACE/NAME/KEY`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretLocation {
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
    /// Key in its data.
    pub key: String,
}

impl SecretLocation {
    /// Parses `NAMESPACE/NAME/KEY`.
    pub fn parse(value: &str) -> Result<SecretLocation, String> {
        let parts: Vec<&str> = value.trim().split('/').collect();
        match parts.as_slice() {
            [namespace, name, key]
                if !namespace.is_empty() && !name.is_empty() && !key.is_empty() =>
            {
                Ok(SecretLocation {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    key: key.to_string(),
                })
            }
            _ => Err(format!(
                "secret location {value:?} must be NAMESPACE/NAME/KEY"
            )),
        }
    }
}

impl std::fmt::Display for SecretLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.name, self.key)
    }
}
