//! [`MemoryCluster`]: an in-memory store that behaves like an API server where reconcilers can
//! tell the difference. It backs the local mode (manifests from a folder) and the end-to-end tests
//! that drive the real reconcilers.
//!
//! What it reproduces: uid, creationTimestamp, resourceVersion and generation on create; a
//! generation bump only when something outside metadata and status changes; status writes that
//! never touch spec or generation; finalizers patched with the same guarded JSON patches the kube
//! client sends; deletion that waits for finalizers; garbage collection of dependents through
//! `ownerReferences`; `stringData` folded into base64 `data` for Secrets. Every change bumps a
//! revision that [`MemoryCluster::subscribe`] and [`MemoryCluster::wait_until`] observe.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::{
    ClusterApi, ClusterError, Created, EventInfo, EventType, NamespacedResource, Result,
    StatusWriter, add_finalizer_patch, namespace_and_name, remove_finalizer_patch,
};

/// Kinds without a namespace that a folder of manifests may still contain.
const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "PriorityClass",
    "StorageClass",
    "PersistentVolume",
];

/// Namespace used by `kubectl apply` when a manifest names none.
const DEFAULT_NAMESPACE: &str = "default";

/// Where an object lives: its API version, kind, namespace (empty for cluster-scoped kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// `apiVersion`, for example `alertops.dev/v1alpha1` or `batch/v1`.
    pub api_version: String,
    /// `kind`, for example `AlarmPolicy`.
    pub kind: String,
    /// `metadata.namespace`; empty for cluster-scoped kinds.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectKey {
    /// The key of a namespaced object of type `K`.
    pub fn of<K: NamespacedResource>(namespace: &str, name: &str) -> Self {
        ObjectKey {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// An event published through [`ClusterApi::publish_event`], as recorded by the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The object the event is about.
    pub regarding: ObjectKey,
    /// That object's uid, when it had one.
    pub regarding_uid: Option<String>,
    /// Normal or Warning.
    pub type_: EventType,
    /// Why the action was taken.
    pub reason: String,
    /// What happened, for a person.
    pub note: Option<String>,
    /// What was done.
    pub action: String,
}

/// [`MemoryCluster::wait_until`] gave up.
#[derive(Debug, thiserror::Error)]
#[error("the cluster did not reach the awaited condition within {0:?}")]
pub struct WaitTimeout(pub Duration);

/// An in-memory API server. Clones share the same store.
#[derive(Clone)]
pub struct MemoryCluster {
    inner: Arc<Inner>,
}

struct Inner {
    store: Mutex<Store>,
    /// Carries the store's revision; bumped on every change.
    changes: watch::Sender<u64>,
    /// Whether every API call yields to other tasks first (see [`MemoryCluster::interleaving`]).
    yields: bool,
}

#[derive(Default)]
struct Store {
    objects: BTreeMap<ObjectKey, Value>,
    events: Vec<RecordedEvent>,
    /// Like etcd's revision: one counter for the whole store, also used as resourceVersion.
    revision: u64,
    uids_issued: u64,
    /// Which writer owns which top-level status fields of an object, as server-side apply's
    /// managed fields record it.
    status_owners: BTreeMap<ObjectKey, BTreeMap<StatusWriter, BTreeSet<String>>>,
}

impl Default for MemoryCluster {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCluster {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::with_yields(false)
    }

    /// An empty cluster whose every API call first yields to other tasks, as the round trip to
    /// a real API server does: concurrent writers (two consumer replicas) interleave between a
    /// read and the write that follows it, so that lost updates show in tests.
    pub fn interleaving() -> Self {
        Self::with_yields(true)
    }

    fn with_yields(yields: bool) -> Self {
        let (changes, _) = watch::channel(0);
        MemoryCluster {
            inner: Arc::new(Inner {
                store: Mutex::new(Store::default()),
                changes,
                yields,
            }),
        }
    }

    /// The round trip of an API call (see [`MemoryCluster::interleaving`]).
    async fn round_trip(&self) {
        if self.inner.yields {
            tokio::task::yield_now().await;
        }
    }

    /// What `kubectl apply` does with one manifest: creates the object (uid, creationTimestamp,
    /// resourceVersion, generation 1) or updates it, bumping the generation only when something
    /// outside metadata and status changed. Status and finalizers already stored are kept; a
    /// manifest without a namespace lands in `default`. Returns the stored object.
    pub fn apply_manifest(&self, manifest: Value) -> Result<Value> {
        self.mutate(|store| {
            store
                .upsert(manifest, Some(DEFAULT_NAMESPACE))
                .map(|(_, value)| value)
        })
    }

    /// Applies every document of a (multi-document) YAML text, in order; empty documents are
    /// skipped. Returns the stored objects.
    pub fn apply_yaml(&self, text: &str) -> Result<Vec<Value>> {
        let mut manifests = Vec::new();
        for document in serde_yaml_ng::Deserializer::from_str(text) {
            let manifest = Value::deserialize(document).map_err(|err| {
                ClusterError::Serialization(format!("invalid YAML manifest: {err}"))
            })?;
            if !manifest.is_null() {
                manifests.push(manifest);
            }
        }
        manifests
            .into_iter()
            .map(|m| self.apply_manifest(m))
            .collect()
    }

    /// What `kubectl delete` does: an object with finalizers gets a deletionTimestamp and stays
    /// until they are removed; one without goes at once, and its dependents (objects whose
    /// `ownerReferences` point only at removed owners) are garbage-collected. Returns `false` when
    /// the object did not exist.
    pub fn request_delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<bool> {
        let key = ObjectKey {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        Ok(self.mutate(|store| store.request_delete(&key)))
    }

    /// The stored JSON of one object.
    pub fn value(&self, key: &ObjectKey) -> Option<Value> {
        self.lock().objects.get(key).cloned()
    }

    /// One object of type `K`, read synchronously (for [`MemoryCluster::wait_until`] predicates).
    pub fn object<K: NamespacedResource>(&self, namespace: &str, name: &str) -> Result<Option<K>> {
        self.value(&ObjectKey::of::<K>(namespace, name))
            .map(decode)
            .transpose()
    }

    /// Every object of type `K` in every namespace, ordered by namespace and name.
    pub fn list_all<K: NamespacedResource>(&self) -> Result<Vec<K>> {
        let (api_version, kind) = (K::api_version(&()), K::kind(&()));
        let values: Vec<Value> = self
            .lock()
            .objects
            .iter()
            .filter(|(key, _)| key.api_version == api_version && key.kind == kind)
            .map(|(_, value)| value.clone())
            .collect();
        values.into_iter().map(decode).collect()
    }

    /// The keys of every stored object, ordered.
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.lock().objects.keys().cloned().collect()
    }

    /// Every event published so far, oldest first.
    pub fn events(&self) -> Vec<RecordedEvent> {
        self.lock().events.clone()
    }

    /// The store's revision; it grows on every change (objects and events).
    pub fn revision(&self) -> u64 {
        *self.inner.changes.borrow()
    }

    /// A receiver that is notified with the new revision on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Waits until `predicate` holds, checking it now and after every change, for at most
    /// `timeout` (so a test that waits for something that never happens fails instead of hanging).
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut predicate: impl FnMut(&MemoryCluster) -> bool,
    ) -> Result<(), WaitTimeout> {
        let mut changes = self.subscribe();
        let wait = async {
            loop {
                changes.borrow_and_update();
                if predicate(self) {
                    return;
                }
                // The sender lives in `self`, so this only fails if the store is gone.
                if changes.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| WaitTimeout(timeout))
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic in another test thread must not make the store unreadable.
        self.inner
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `change` on the store and notifies subscribers when the revision moved.
    fn mutate<R>(&self, change: impl FnOnce(&mut Store) -> R) -> R {
        let (result, before, after) = {
            let mut store = self.lock();
            let before = store.revision;
            let result = change(&mut store);
            (result, before, store.revision)
        };
        if after != before {
            self.inner.changes.send_replace(after);
        }
        result
    }
}

fn decode<K: NamespacedResource>(value: Value) -> Result<K> {
    serde_json::from_value(value).map_err(|err| {
        ClusterError::Serialization(format!(
            "stored object does not decode as {}: {err}",
            K::kind(&())
        ))
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn string_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn finalizers_of(value: &Value) -> Vec<String> {
    value
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn owner_uids(value: &Value) -> Vec<String> {
    value
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|owners| {
            owners
                .iter()
                .filter_map(|o| o.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The part of an object whose change bumps `metadata.generation`: all but metadata and status.
fn generation_content(value: &Value) -> Map<String, Value> {
    let mut content = value.as_object().cloned().unwrap_or_default();
    content.remove("metadata");
    content.remove("status");
    content
}

/// The API server stores a Secret's `stringData` as base64 `data`.
fn fold_string_data(object: &mut Map<String, Value>) {
    let Some(Value::Object(string_data)) = object.remove("stringData") else {
        return;
    };
    let data = object
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Value::Object(data) = data {
        for (key, value) in string_data {
            let text = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            data.insert(key, Value::String(BASE64.encode(text)));
        }
    }
}

impl Store {
    fn next_revision(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    fn new_uid(&mut self) -> String {
        self.uids_issued += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.uids_issued)
    }

    /// Checks the shape of an incoming object, strips what only the server may set, and works out
    /// its key.
    fn admit(
        &self,
        incoming: Value,
        default_namespace: Option<&str>,
    ) -> Result<(ObjectKey, Map<String, Value>)> {
        let Value::Object(mut object) = incoming else {
            return Err(ClusterError::Invalid(
                "a manifest must be a JSON/YAML object".into(),
            ));
        };
        let field = |object: &Map<String, Value>, name: &str| {
            object
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| ClusterError::Invalid(format!("manifest has no {name}")))
        };
        let api_version = field(&object, "apiVersion")?;
        let kind = field(&object, "kind")?;
        let metadata = match object.get_mut("metadata") {
            Some(Value::Object(metadata)) => metadata,
            _ => {
                return Err(ClusterError::Invalid(format!(
                    "{kind} manifest has no metadata"
                )));
            }
        };
        let name = metadata
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                ClusterError::Invalid(format!("{kind} manifest has no metadata.name"))
            })?;
        let namespace = if CLUSTER_SCOPED_KINDS.contains(&kind.as_str()) {
            metadata.remove("namespace");
            String::new()
        } else {
            match metadata
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                Some(namespace) => namespace.to_string(),
                None => default_namespace
                    .ok_or_else(|| {
                        ClusterError::Invalid(format!("{kind} {name} has no metadata.namespace"))
                    })?
                    .to_string(),
            }
        };
        for server_owned in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "managedFields",
        ] {
            metadata.remove(server_owned);
        }
        if !namespace.is_empty() {
            metadata.insert("namespace".into(), Value::String(namespace.clone()));
        }
        // Writes to the main resource never change status (it is a subresource).
        object.remove("status");
        if api_version == "v1" && kind == "Secret" {
            fold_string_data(&mut object);
        }
        let key = ObjectKey {
            api_version,
            kind,
            namespace,
            name,
        };
        Ok((key, object))
    }

    fn insert_new(&mut self, key: ObjectKey, mut object: Map<String, Value>) -> Value {
        // A new object of an old name starts without managed fields.
        self.status_owners.remove(&key);
        let uid = self.new_uid();
        let revision = self.next_revision();
        if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
            metadata.insert("uid".into(), Value::String(uid));
            metadata.insert("creationTimestamp".into(), Value::String(now()));
            metadata.insert(
                "resourceVersion".into(),
                Value::String(revision.to_string()),
            );
            metadata.insert("generation".into(), Value::from(1));
        }
        let value = Value::Object(object);
        self.objects.insert(key, value.clone());
        value
    }

    /// Server-side apply / `kubectl apply`: create or update.
    fn upsert(
        &mut self,
        incoming: Value,
        default_namespace: Option<&str>,
    ) -> Result<(ObjectKey, Value)> {
        let (key, mut object) = self.admit(incoming, default_namespace)?;
        let Some(old) = self.objects.get(&key).cloned() else {
            let value = self.insert_new(key.clone(), object);
            return Ok((key, value));
        };
        let generation_changed = generation_content(&old) != {
            let mut content = object.clone();
            content.remove("metadata");
            content
        };
        let old_generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let mut finalizers = finalizers_of(&old);
        if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
            for kept in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "resourceVersion",
            ] {
                if let Some(value) = old.pointer(&format!("/metadata/{kept}")) {
                    metadata.insert(kept.into(), value.clone());
                }
            }
            // Finalizers others added survive an apply that does not list them.
            for listed in finalizers_of(&Value::Object(metadata.clone())) {
                if !finalizers.contains(&listed) {
                    finalizers.push(listed);
                }
            }
            if finalizers.is_empty() {
                metadata.remove("finalizers");
            } else {
                metadata.insert("finalizers".into(), Value::from(finalizers));
            }
            let generation = if generation_changed {
                old_generation + 1
            } else {
                old_generation
            };
            metadata.insert("generation".into(), Value::from(generation));
        }
        if let Some(status) = old.get("status") {
            object.insert("status".into(), status.clone());
        }
        let mut value = Value::Object(object);
        if value != old {
            let revision = self.next_revision();
            value["metadata"]["resourceVersion"] = Value::String(revision.to_string());
            self.objects.insert(key.clone(), value.clone());
        }
        Ok((key, value))
    }

    fn stored(&self, key: &ObjectKey) -> Result<&Value> {
        self.objects
            .get(key)
            .ok_or_else(|| ClusterError::NotFound(key.to_string()))
    }

    /// Replaces a stored object after a metadata or status change, with a new resourceVersion.
    fn replace(&mut self, key: &ObjectKey, mut value: Value) -> Value {
        let revision = self.next_revision();
        value["metadata"]["resourceVersion"] = Value::String(revision.to_string());
        self.objects.insert(key.clone(), value.clone());
        value
    }

    /// Server-side apply of `writer`'s status fields, with the API server's ownership rules
    /// over top-level fields: the applied fields become the writer's (forced), fields it applied
    /// before and leaves out now are removed unless another writer owns them too, and fields of
    /// other writers stay.
    fn patch_status(&mut self, key: &ObjectKey, writer: StatusWriter, status: Value) -> Result<()> {
        let mut value = self.stored(key)?.clone();
        let applied = match status {
            Value::Object(fields) => fields,
            Value::Null => Map::new(),
            other => {
                return Err(ClusterError::Invalid(format!(
                    "status of {key} must be an object, not {other}"
                )));
            }
        };
        let mut current = match value.get("status") {
            Some(Value::Object(fields)) => fields.clone(),
            _ => Map::new(),
        };
        let owners = self.status_owners.entry(key.clone()).or_default();
        let previously = owners.remove(&writer).unwrap_or_default();
        for field in previously {
            let still_owned = owners.values().any(|fields| fields.contains(&field));
            if !applied.contains_key(&field) && !still_owned {
                current.remove(&field);
            }
        }
        for fields in owners.values_mut() {
            fields.retain(|field| !applied.contains_key(field));
        }
        owners.insert(writer, applied.keys().cloned().collect());
        current.extend(applied);
        let status = Value::Object(current);
        if value.get("status") == Some(&status) {
            return Ok(());
        }
        value["status"] = status;
        self.replace(key, value);
        Ok(())
    }

    /// Applies a guarded finalizer patch with the semantics the API server gives it.
    fn patch_finalizers(&mut self, key: &ObjectKey, patch: &json_patch::Patch) -> Result<Value> {
        let mut value = self.stored(key)?.clone();
        // The API server's JSON patch treats a missing member as null for `test`.
        if value.pointer("/metadata/finalizers").is_none() {
            value["metadata"]["finalizers"] = Value::Null;
        }
        json_patch::patch(&mut value, patch).map_err(|err| {
            ClusterError::Conflict(format!("finalizers of {key} changed concurrently: {err}"))
        })?;
        if finalizers_of(&value).is_empty()
            && let Some(Value::Object(metadata)) = value.get_mut("metadata")
        {
            metadata.remove("finalizers");
        }
        let deleting = value.pointer("/metadata/deletionTimestamp").is_some();
        if deleting && finalizers_of(&value).is_empty() {
            self.remove_and_collect(key);
            return Ok(value);
        }
        Ok(self.replace(key, value))
    }

    fn request_delete(&mut self, key: &ObjectKey) -> bool {
        let Some(value) = self.objects.get(key).cloned() else {
            return false;
        };
        if finalizers_of(&value).is_empty() {
            self.remove_and_collect(key);
        } else if value.pointer("/metadata/deletionTimestamp").is_none() {
            let mut value = value;
            value["metadata"]["deletionTimestamp"] = Value::String(now());
            self.replace(key, value);
        }
        true
    }

    /// Removes an object, then deletes every dependent whose owners are all gone, cascading, as
    /// the garbage collector does with background propagation. Only dependents of removed objects
    /// are considered, so an object pointing at an owner that never existed here stays.
    fn remove_and_collect(&mut self, key: &ObjectKey) {
        let Some(removed) = self.objects.remove(key) else {
            return;
        };
        self.next_revision();
        let mut removed_uids: BTreeSet<String> = string_at(&removed, "/metadata/uid")
            .map(str::to_string)
            .into_iter()
            .collect();
        loop {
            let live_uids: BTreeSet<&str> = self
                .objects
                .values()
                .filter_map(|v| string_at(v, "/metadata/uid"))
                .collect();
            let orphans: Vec<ObjectKey> = self
                .objects
                .iter()
                .filter(|(_, value)| {
                    let owners = owner_uids(value);
                    value.pointer("/metadata/deletionTimestamp").is_none()
                        && owners.iter().any(|uid| removed_uids.contains(uid))
                        && owners.iter().all(|uid| !live_uids.contains(uid.as_str()))
                })
                .map(|(key, _)| key.clone())
                .collect();
            if orphans.is_empty() {
                return;
            }
            for orphan in orphans {
                let Some(mut value) = self.objects.get(&orphan).cloned() else {
                    continue;
                };
                if finalizers_of(&value).is_empty() {
                    self.objects.remove(&orphan);
                    self.next_revision();
                    if let Some(uid) = string_at(&value, "/metadata/uid") {
                        removed_uids.insert(uid.to_string());
                    }
                } else {
                    value["metadata"]["deletionTimestamp"] = Value::String(now());
                    self.replace(&orphan, value);
                }
            }
        }
    }
}

fn key_of<K: NamespacedResource>(obj: &K) -> Result<ObjectKey> {
    let (namespace, name) = namespace_and_name(obj)?;
    Ok(ObjectKey::of::<K>(&namespace, &name))
}

impl ClusterApi for MemoryCluster {
    async fn get<K: NamespacedResource>(&self, namespace: &str, name: &str) -> Result<Option<K>> {
        self.round_trip().await;
        self.object(namespace, name)
    }

    async fn list<K: NamespacedResource>(&self, namespace: &str) -> Result<Vec<K>> {
        self.round_trip().await;
        let (api_version, kind) = (K::api_version(&()), K::kind(&()));
        let values: Vec<Value> = self
            .lock()
            .objects
            .iter()
            .filter(|(key, _)| {
                key.api_version == api_version && key.kind == kind && key.namespace == namespace
            })
            .map(|(_, value)| value.clone())
            .collect();
        values.into_iter().map(decode).collect()
    }

    async fn apply_status<K: NamespacedResource>(
        &self,
        obj: &K,
        writer: StatusWriter,
        status: Value,
    ) -> Result<()> {
        self.round_trip().await;
        let key = key_of(obj)?;
        let status = writer.own_part(&key.kind, status);
        self.mutate(|store| store.patch_status(&key, writer, status))
    }

    async fn add_finalizer<K: NamespacedResource>(&self, obj: &K, finalizer: &str) -> Result<K> {
        self.round_trip().await;
        let current = obj.meta().finalizers.clone().unwrap_or_default();
        if current.iter().any(|f| f == finalizer) {
            return Ok(obj.clone());
        }
        let key = key_of(obj)?;
        let patch = add_finalizer_patch(&current, finalizer);
        let value = self.mutate(|store| {
            if store
                .stored(&key)?
                .pointer("/metadata/deletionTimestamp")
                .is_some()
            {
                return Err(ClusterError::Forbidden(format!(
                    "no new finalizers can be added to {key}: it is being deleted"
                )));
            }
            store.patch_finalizers(&key, &patch)
        })?;
        decode(value)
    }

    async fn remove_finalizer<K: NamespacedResource>(
        &self,
        obj: &K,
        finalizer: &str,
    ) -> Result<()> {
        self.round_trip().await;
        let current = obj.meta().finalizers.clone().unwrap_or_default();
        let Some(patch) = remove_finalizer_patch(&current, finalizer) else {
            return Ok(());
        };
        let key = key_of(obj)?;
        self.mutate(|store| store.patch_finalizers(&key, &patch))
            .map(|_| ())
    }

    async fn apply<T: NamespacedResource>(&self, obj: &T) -> Result<T> {
        self.round_trip().await;
        let value = serde_json::to_value(obj)?;
        let (_, stored) = self.mutate(|store| store.upsert(value, None))?;
        decode(stored)
    }

    async fn merge_patch<T: NamespacedResource>(
        &self,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Option<T>> {
        self.round_trip().await;
        let key = ObjectKey::of::<T>(namespace, name);
        let patched = self.mutate(|store| {
            let Some(old) = store.objects.get(&key).cloned() else {
                return Ok(None);
            };
            // A patch naming a resourceVersion is a precondition, as on the API server: it
            // applies only to that version (optimistic concurrency for merge patches).
            if let Some(expected) = string_at(patch, "/metadata/resourceVersion")
                && string_at(&old, "/metadata/resourceVersion") != Some(expected)
            {
                return Err(ClusterError::Conflict(format!(
                    "{key} changed since resourceVersion {expected}"
                )));
            }
            let mut merged = old.clone();
            json_patch::merge(&mut merged, patch);
            // Writes to the main resource never change status (it is a subresource).
            match old.get("status") {
                Some(status) => merged["status"] = status.clone(),
                None => {
                    if let Value::Object(fields) = &mut merged {
                        fields.remove("status");
                    }
                }
            }
            store.upsert(merged, None).map(|(_, value)| Some(value))
        })?;
        patched.map(decode).transpose()
    }

    async fn create<T: NamespacedResource>(&self, obj: &T) -> Result<Created<T>> {
        self.round_trip().await;
        let value = serde_json::to_value(obj)?;
        let (is_new, stored) = self.mutate(|store| {
            let (key, object) = store.admit(value, None)?;
            Ok::<_, ClusterError>(match store.objects.get(&key) {
                Some(existing) => (false, existing.clone()),
                None => (true, store.insert_new(key, object)),
            })
        })?;
        let stored = decode(stored)?;
        Ok(if is_new {
            Created::New(stored)
        } else {
            Created::AlreadyExisted(stored)
        })
    }

    async fn delete<T: NamespacedResource>(&self, namespace: &str, name: &str) -> Result<bool> {
        self.round_trip().await;
        let key = ObjectKey::of::<T>(namespace, name);
        Ok(self.mutate(|store| store.request_delete(&key)))
    }

    async fn secret_value(&self, namespace: &str, name: &str, key: &str) -> Result<Option<String>> {
        self.round_trip().await;
        let secret_key = ObjectKey {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        let Some(secret) = self.value(&secret_key) else {
            return Ok(None);
        };
        if let Some(encoded) = secret.get("data").and_then(|data| data.get(key)) {
            let bytes = encoded
                .as_str()
                .and_then(|text| BASE64.decode(text).ok())
                .ok_or_else(|| {
                    ClusterError::Serialization(format!("key {key} of {secret_key} is not base64"))
                })?;
            return String::from_utf8(bytes).map(Some).map_err(|_| {
                ClusterError::Serialization(format!("key {key} of {secret_key} is not UTF-8 text"))
            });
        }
        Ok(string_at(&secret, &format!("/stringData/{key}")).map(str::to_string))
    }

    async fn publish_event<K: NamespacedResource>(&self, obj: &K, event: EventInfo) -> Result<()> {
        self.round_trip().await;
        let regarding = key_of(obj)?;
        let recorded = RecordedEvent {
            regarding,
            regarding_uid: obj.meta().uid.clone(),
            type_: event.type_,
            reason: event.reason,
            note: event.note,
            action: event.action,
        };
        self.mutate(|store| {
            store.events.push(recorded);
            store.next_revision();
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::AlarmPolicy;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::batch::v1::Job;
    use serde_json::json;

    const FINALIZER: &str = "alertops.dev/cleanup";
    const WAIT: Duration = Duration::from_secs(5);

    fn policy_manifest(revision: u32) -> Value {
        json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlarmPolicy",
            "metadata": { "name": "orders", "namespace": "team-a", "labels": { "team": "a" } },
            "spec": { "tags": { "Team": "a", "Revision": revision.to_string() } },
        })
    }

    fn policy_key() -> ObjectKey {
        ObjectKey::of::<AlarmPolicy>("team-a", "orders")
    }

    fn stored_policy(cluster: &MemoryCluster) -> Value {
        cluster.value(&policy_key()).expect("policy stored")
    }

    fn deployment(name: &str, owner_uid: &str) -> Deployment {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": name, "namespace": "team-a", "ownerReferences": [{
                "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute", "name": "route",
                "uid": owner_uid, "controller": true }] },
            "spec": { "selector": { "matchLabels": { "app": name } }, "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "consume", "image": "alertops:1" }] } } },
        }))
        .unwrap()
    }

    fn job(name: &str) -> Job {
        serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": { "name": name, "namespace": "team-a" },
            "spec": { "template": { "spec": { "restartPolicy": "Never",
                "containers": [{ "name": "retry", "image": "alertops:1" }] } } },
        }))
        .unwrap()
    }

    #[test]
    fn apply_manifest_creates_with_server_fields() {
        let cluster = MemoryCluster::new();
        let stored = cluster.apply_manifest(policy_manifest(5)).unwrap();
        let meta = &stored["metadata"];
        assert!(meta["uid"].as_str().is_some_and(|uid| !uid.is_empty()));
        assert!(meta["creationTimestamp"].as_str().is_some());
        assert!(meta["resourceVersion"].as_str().is_some());
        assert_eq!(meta["generation"], 1);
        assert_eq!(stored_policy(&cluster), stored);
    }

    #[test]
    fn apply_manifest_defaults_the_namespace() {
        let cluster = MemoryCluster::new();
        let mut manifest = policy_manifest(5);
        manifest["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("namespace");
        cluster.apply_manifest(manifest).unwrap();
        assert!(
            cluster
                .object::<AlarmPolicy>("default", "orders")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn apply_manifest_rejects_incomplete_manifests() {
        let cluster = MemoryCluster::new();
        for bad in [
            json!("text"),
            json!({ "kind": "AlarmPolicy", "metadata": { "name": "x" } }),
            json!({ "apiVersion": "v1", "metadata": { "name": "x" } }),
            json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": {} }),
            json!({ "apiVersion": "v1", "kind": "ConfigMap" }),
        ] {
            let err = cluster.apply_manifest(bad.clone()).unwrap_err();
            assert!(matches!(err, ClusterError::Invalid(_)), "{bad}: {err:?}");
        }
        assert!(cluster.keys().is_empty());
    }

    #[test]
    fn apply_manifest_bumps_generation_on_spec_change_only() {
        let cluster = MemoryCluster::new();
        let first = cluster.apply_manifest(policy_manifest(5)).unwrap();
        let same = cluster.apply_manifest(policy_manifest(5)).unwrap();
        assert_eq!(same, first, "re-applying the same manifest changes nothing");

        let mut relabelled = policy_manifest(5);
        relabelled["metadata"]["labels"]["team"] = json!("b");
        let relabelled = cluster.apply_manifest(relabelled).unwrap();
        assert_eq!(
            relabelled["metadata"]["generation"], 1,
            "metadata is not spec"
        );
        assert_ne!(
            relabelled["metadata"]["resourceVersion"],
            first["metadata"]["resourceVersion"]
        );

        let changed = cluster.apply_manifest(policy_manifest(9)).unwrap();
        assert_eq!(changed["metadata"]["generation"], 2);
        assert_eq!(changed["metadata"]["uid"], first["metadata"]["uid"]);
        assert_eq!(
            changed["metadata"]["creationTimestamp"],
            first["metadata"]["creationTimestamp"]
        );
        assert_eq!(changed["spec"]["tags"]["Revision"], "9");
    }

    #[tokio::test]
    async fn apply_manifest_keeps_status_and_finalizers() {
        let cluster = MemoryCluster::new();
        cluster.apply_manifest(policy_manifest(5)).unwrap();
        let policy: AlarmPolicy = cluster.get("team-a", "orders").await.unwrap().unwrap();
        let policy = cluster.add_finalizer(&policy, FINALIZER).await.unwrap();
        cluster
            .patch_status(&policy, json!({ "observedGeneration": 1 }))
            .await
            .unwrap();

        let mut with_status = policy_manifest(9);
        with_status["status"] = json!({ "observedGeneration": 42 });
        let stored = cluster.apply_manifest(with_status).unwrap();
        assert_eq!(
            stored["status"],
            json!({ "observedGeneration": 1 }),
            "manifest status is ignored"
        );
        assert_eq!(stored["metadata"]["finalizers"], json!([FINALIZER]));
        assert_eq!(stored["metadata"]["generation"], 2);
    }

    #[test]
    fn apply_yaml_applies_every_document() {
        let cluster = MemoryCluster::new();
        let applied = cluster
            .apply_yaml(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n---\n---\n\
                 apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: team-a\ndata:\n  k: v\n",
            )
            .unwrap();
        assert_eq!(applied.len(), 2);
        let keys: Vec<String> = cluster.keys().iter().map(ToString::to_string).collect();
        assert_eq!(keys, ["ConfigMap team-a/c", "Namespace /team-a"]);
        let err = cluster.apply_yaml("kind: [unclosed").unwrap_err();
        assert!(matches!(err, ClusterError::Serialization(_)), "{err:?}");
    }

    /// Server-side apply's ownership of status fields, per writer (issue 11 item 7).
    #[tokio::test]
    async fn status_writers_keep_each_others_fields() {
        use crate::resources::DigestSchedule;
        let cluster = MemoryCluster::new();
        cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1", "kind": "DigestSchedule",
                "metadata": { "name": "nightly", "namespace": "team-a" },
                "spec": { "schedule": "0 8 * * *", "sources": [],
                    "email": { "from": "a@example.com", "to": ["b@example.com"] } },
            }))
            .unwrap();
        let schedule: DigestSchedule = cluster.get("team-a", "nightly").await.unwrap().unwrap();
        let status = |cluster: &MemoryCluster| {
            cluster
                .value(&ObjectKey::of::<DigestSchedule>("team-a", "nightly"))
                .unwrap()["status"]
                .clone()
        };
        cluster
            .patch_status(
                &schedule,
                json!({ "observedGeneration": 1, "cronJob": "c" }),
            )
            .await
            .unwrap();
        let run = json!({ "time": "2024-05-01T15:00:00Z", "alertCount": 3, "sent": true });
        cluster
            .apply_status(&schedule, StatusWriter::Digest, json!({ "lastRun": run }))
            .await
            .unwrap();
        // The controller drops a field of its own, and offers an older lastRun from a stale copy.
        cluster
            .patch_status(
                &schedule,
                json!({ "observedGeneration": 2,
                    "lastRun": { "time": "2024-04-30T15:00:00Z", "alertCount": 1, "sent": true } }),
            )
            .await
            .unwrap();
        assert_eq!(
            status(&cluster),
            json!({ "observedGeneration": 2, "lastRun": run }),
            "the controller's dropped field goes; the digest's field stays as the digest wrote it"
        );
        // A writer's own field goes when it stops applying it.
        cluster
            .apply_status(&schedule, StatusWriter::Digest, json!({}))
            .await
            .unwrap();
        assert_eq!(status(&cluster), json!({ "observedGeneration": 2 }));
    }

    #[tokio::test]
    async fn patch_status_touches_neither_spec_nor_generation() {
        let cluster = MemoryCluster::new();
        let before = cluster.apply_manifest(policy_manifest(5)).unwrap();
        let policy: AlarmPolicy = cluster.object("team-a", "orders").unwrap().unwrap();
        cluster
            .patch_status(&policy, json!({ "observedGeneration": 1, "topicArn": "arn:aws:sns:eu-west-1:123456789012:t" }))
            .await
            .unwrap();
        let after = stored_policy(&cluster);
        assert_eq!(after["spec"], before["spec"]);
        assert_eq!(after["metadata"]["generation"], 1);
        assert_ne!(
            after["metadata"]["resourceVersion"],
            before["metadata"]["resourceVersion"]
        );
        assert_eq!(
            after["status"]["topicArn"],
            "arn:aws:sns:eu-west-1:123456789012:t"
        );
    }

    #[tokio::test]
    async fn patch_status_of_a_missing_object_is_not_found() {
        let cluster = MemoryCluster::new();
        let policy: AlarmPolicy = serde_json::from_value(policy_manifest(5)).unwrap();
        let err = cluster.patch_status(&policy, json!({})).await.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
    }

    #[tokio::test]
    async fn add_finalizer_honours_the_guard() {
        let cluster = MemoryCluster::new();
        cluster.apply_manifest(policy_manifest(5)).unwrap();
        let seen: AlarmPolicy = cluster.object("team-a", "orders").unwrap().unwrap();

        let updated = cluster.add_finalizer(&seen, FINALIZER).await.unwrap();
        assert_eq!(
            updated.metadata.finalizers.as_deref(),
            Some(&[FINALIZER.to_string()][..])
        );
        assert_eq!(
            updated.metadata.generation,
            Some(1),
            "finalizers are metadata"
        );

        // A second writer working from the stale copy must not add a duplicate or clobber.
        let err = cluster
            .add_finalizer(&seen, "other.dev/x")
            .await
            .unwrap_err();
        assert!(err.is_conflict(), "{err:?}");
        assert_eq!(
            stored_policy(&cluster)["metadata"]["finalizers"],
            json!([FINALIZER])
        );

        let both = cluster
            .add_finalizer(&updated, "other.dev/x")
            .await
            .unwrap();
        assert_eq!(
            both.metadata.finalizers.unwrap(),
            [FINALIZER, "other.dev/x"]
        );
    }

    #[tokio::test]
    async fn add_finalizer_is_forbidden_while_deleting() {
        let cluster = MemoryCluster::new();
        cluster.apply_manifest(policy_manifest(5)).unwrap();
        let policy: AlarmPolicy = cluster.object("team-a", "orders").unwrap().unwrap();
        let policy = cluster.add_finalizer(&policy, FINALIZER).await.unwrap();
        cluster
            .request_delete("alertops.dev/v1alpha1", "AlarmPolicy", "team-a", "orders")
            .unwrap();
        let err = cluster
            .add_finalizer(&policy, "other.dev/x")
            .await
            .unwrap_err();
        assert!(matches!(err, ClusterError::Forbidden(_)), "{err:?}");
    }

    #[tokio::test]
    async fn deletion_waits_for_the_last_finalizer() {
        let cluster = MemoryCluster::new();
        cluster.apply_manifest(policy_manifest(5)).unwrap();
        let policy: AlarmPolicy = cluster.object("team-a", "orders").unwrap().unwrap();
        let policy = cluster.add_finalizer(&policy, FINALIZER).await.unwrap();
        let policy = cluster.add_finalizer(&policy, "other.dev/x").await.unwrap();

        assert!(
            cluster
                .request_delete("alertops.dev/v1alpha1", "AlarmPolicy", "team-a", "orders")
                .unwrap()
        );
        let deleting: AlarmPolicy = cluster
            .object("team-a", "orders")
            .unwrap()
            .expect("still there");
        assert!(deleting.metadata.deletion_timestamp.is_some());

        cluster
            .remove_finalizer(&deleting, FINALIZER)
            .await
            .unwrap();
        let one_left: AlarmPolicy = cluster
            .object("team-a", "orders")
            .unwrap()
            .expect("one finalizer left");
        assert_eq!(
            one_left.metadata.finalizers.clone().unwrap(),
            ["other.dev/x"]
        );

        // The stale copy's index no longer matches: the guard refuses.
        let err = cluster
            .remove_finalizer(&policy, "other.dev/x")
            .await
            .unwrap_err();
        assert!(err.is_conflict(), "{err:?}");

        cluster
            .remove_finalizer(&one_left, "other.dev/x")
            .await
            .unwrap();
        assert!(
            cluster
                .object::<AlarmPolicy>("team-a", "orders")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn deleting_a_missing_object_reports_false() {
        let cluster = MemoryCluster::new();
        assert!(
            !cluster
                .request_delete("v1", "Secret", "team-a", "absent")
                .unwrap()
        );
    }

    #[tokio::test]
    async fn dependents_are_garbage_collected() {
        let cluster = MemoryCluster::new();
        let route = cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
                "metadata": { "name": "route", "namespace": "team-a" }, "spec": {},
            }))
            .unwrap();
        let route_uid = route["metadata"]["uid"].as_str().unwrap();
        let consumer = cluster
            .apply(&deployment("route-consumer", route_uid))
            .await
            .unwrap();
        // A dependent of the dependent, to check the collection cascades.
        let consumer_uid = consumer.metadata.uid.clone().unwrap();
        cluster
            .apply(&deployment("grandchild", &consumer_uid))
            .await
            .unwrap();
        cluster
            .apply(&deployment("unrelated", "someone-else"))
            .await
            .unwrap();

        cluster
            .request_delete("alertops.dev/v1alpha1", "AlertRoute", "team-a", "route")
            .unwrap();
        let left: Vec<String> = cluster.keys().into_iter().map(|k| k.name).collect();
        assert_eq!(left, ["unrelated"]);
    }

    #[tokio::test]
    async fn a_collected_dependent_with_a_finalizer_waits_for_it() {
        let cluster = MemoryCluster::new();
        let route = cluster
            .apply_manifest(json!({
                "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
                "metadata": { "name": "route", "namespace": "team-a" }, "spec": {},
            }))
            .unwrap();
        let mut consumer = deployment("route-consumer", route["metadata"]["uid"].as_str().unwrap());
        consumer.metadata.finalizers = Some(vec![FINALIZER.into()]);
        cluster.apply(&consumer).await.unwrap();

        cluster
            .request_delete("alertops.dev/v1alpha1", "AlertRoute", "team-a", "route")
            .unwrap();
        let waiting: Deployment = cluster
            .object("team-a", "route-consumer")
            .unwrap()
            .expect("kept by its finalizer");
        assert!(waiting.metadata.deletion_timestamp.is_some());
        cluster.remove_finalizer(&waiting, FINALIZER).await.unwrap();
        assert!(cluster.keys().is_empty());
    }

    #[tokio::test]
    async fn apply_of_an_owned_object_creates_then_updates() {
        let cluster = MemoryCluster::new();
        let created = cluster.apply(&deployment("consumer", "u")).await.unwrap();
        assert_eq!(created.metadata.generation, Some(1));
        assert!(created.metadata.uid.is_some());

        let mut changed = deployment("consumer", "u");
        changed
            .spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some("alertops:2".into());
        let updated = cluster.apply(&changed).await.unwrap();
        assert_eq!(updated.metadata.generation, Some(2));
        assert_eq!(updated.metadata.uid, created.metadata.uid);
        let image = updated.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .clone();
        assert_eq!(image.as_deref(), Some("alertops:2"));
    }

    #[tokio::test]
    async fn apply_without_namespace_is_invalid() {
        let cluster = MemoryCluster::new();
        let mut orphan = job("x");
        orphan.metadata.namespace = None;
        let err = cluster.apply(&orphan).await.unwrap_err();
        assert!(matches!(err, ClusterError::Invalid(_)), "{err:?}");
    }

    #[tokio::test]
    async fn create_twice_returns_the_first_object() {
        let cluster = MemoryCluster::new();
        let first = cluster.create(&job("retry-j-1-attempt-2")).await.unwrap();
        assert!(first.is_new());
        let first_uid = first.into_inner().metadata.uid;

        let mut second_click = job("retry-j-1-attempt-2");
        second_click.metadata.labels = Some([("click".to_string(), "2".to_string())].into());
        match cluster.create(&second_click).await.unwrap() {
            Created::AlreadyExisted(existing) => {
                assert_eq!(existing.metadata.uid, first_uid);
                assert!(
                    existing.metadata.labels.is_none(),
                    "the existing object is not modified"
                );
            }
            Created::New(_) => panic!("a second create must not make a second Job"),
        }
        assert_eq!(cluster.list::<Job>("team-a").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn get_list_and_delete_by_type() {
        let cluster = MemoryCluster::new();
        cluster.create(&job("a")).await.unwrap();
        cluster.create(&job("b")).await.unwrap();
        let mut elsewhere = job("c");
        elsewhere.metadata.namespace = Some("team-b".into());
        cluster.create(&elsewhere).await.unwrap();

        let names: Vec<String> = cluster
            .list::<Job>("team-a")
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.metadata.name.unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(cluster.list_all::<Job>().unwrap().len(), 3);
        assert!(cluster.get::<Job>("team-a", "a").await.unwrap().is_some());
        assert!(cluster.get::<Job>("team-b", "a").await.unwrap().is_none());

        assert!(cluster.delete::<Job>("team-a", "a").await.unwrap());
        assert!(!cluster.delete::<Job>("team-a", "a").await.unwrap());
        assert!(cluster.get::<Job>("team-a", "a").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn get_of_an_undecodable_object_is_a_serialization_error() {
        let cluster = MemoryCluster::new();
        let mut manifest = policy_manifest(5);
        manifest["spec"]["alarms"] = json!("not a list");
        cluster.apply_manifest(manifest).unwrap();
        let err = cluster
            .get::<AlarmPolicy>("team-a", "orders")
            .await
            .unwrap_err();
        assert!(matches!(err, ClusterError::Serialization(_)), "{err:?}");
    }

    #[tokio::test]
    async fn secrets_are_readable_from_string_data_and_data() {
        let cluster = MemoryCluster::new();
        let stored = cluster
            .apply_manifest(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": { "name": "slack", "namespace": "team-a" },
                "stringData": { "webhook": "https://hooks.slack.test/T1" },
                "data": { "token": BASE64.encode("xoxb-1"), "binary": BASE64.encode([0xff, 0xfe]) },
            }))
            .unwrap();
        assert!(
            stored.get("stringData").is_none(),
            "stringData is folded into data"
        );
        assert_eq!(
            stored["data"]["webhook"],
            BASE64.encode("https://hooks.slack.test/T1")
        );

        let value = |key: &'static str| {
            let cluster = cluster.clone();
            async move { cluster.secret_value("team-a", "slack", key).await }
        };
        assert_eq!(
            value("webhook").await.unwrap().as_deref(),
            Some("https://hooks.slack.test/T1")
        );
        assert_eq!(value("token").await.unwrap().as_deref(), Some("xoxb-1"));
        assert_eq!(value("absent").await.unwrap(), None);
        assert!(matches!(
            value("binary").await.unwrap_err(),
            ClusterError::Serialization(_)
        ));
        assert_eq!(
            cluster
                .secret_value("team-a", "nope", "webhook")
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn events_are_recorded_in_order() {
        let cluster = MemoryCluster::new();
        cluster.apply_manifest(policy_manifest(5)).unwrap();
        let policy: AlarmPolicy = cluster.object("team-a", "orders").unwrap().unwrap();
        for (type_, reason) in [
            (EventType::Normal, "TopicCreated"),
            (EventType::Warning, "AlarmRejected"),
        ] {
            let event = EventInfo {
                type_,
                reason: reason.into(),
                note: Some(format!("{reason} note")),
                action: "Reconcile".into(),
            };
            cluster.publish_event(&policy, event).await.unwrap();
        }
        let events = cluster.events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].regarding, policy_key());
        assert_eq!(events[0].regarding_uid, policy.metadata.uid);
        assert_eq!(events[1].type_, EventType::Warning);
        assert_eq!(events[1].reason, "AlarmRejected");
        assert_eq!(events[1].note.as_deref(), Some("AlarmRejected note"));
    }

    #[tokio::test]
    async fn wait_until_wakes_on_a_change_made_elsewhere() {
        let cluster = MemoryCluster::new();
        let mut changes = cluster.subscribe();
        let writer = cluster.clone();
        let waiter = tokio::spawn(async move {
            cluster
                .wait_until(WAIT, |c| {
                    matches!(c.object::<Job>("team-a", "late"), Ok(Some(_)))
                })
                .await
        });
        // Let the waiter observe the empty store first, then make the change it waits for.
        tokio::task::yield_now().await;
        writer.create(&job("late")).await.unwrap();
        waiter.await.unwrap().expect("the waiter sees the Job");
        assert!(changes.has_changed().unwrap());
        assert_eq!(*changes.borrow_and_update(), writer.revision());
    }

    #[tokio::test(start_paused = true)]
    async fn wait_until_times_out_when_the_condition_never_holds() {
        let cluster = MemoryCluster::new();
        let err = cluster
            .wait_until(Duration::from_secs(30), |c| !c.events().is_empty())
            .await
            .unwrap_err();
        assert_eq!(err.0, Duration::from_secs(30));
    }

    #[test]
    fn unchanged_writes_do_not_notify() {
        let cluster = MemoryCluster::new();
        cluster.apply_manifest(policy_manifest(5)).unwrap();
        let revision = cluster.revision();
        cluster.apply_manifest(policy_manifest(5)).unwrap();
        assert_eq!(cluster.revision(), revision);
    }

    /// As on the API server, a merge patch naming a resourceVersion applies only to that
    /// version: two writers that read the same version cannot both win.
    #[tokio::test]
    async fn a_merge_patch_with_a_resource_version_is_a_precondition() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let cluster = MemoryCluster::new();
        cluster
            .apply_manifest(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "team-a"}, "data": {"k": "0"}}))
            .unwrap();
        let read: ConfigMap = cluster.object("team-a", "c").unwrap().unwrap();
        let version = read.metadata.resource_version.clone().unwrap();
        let patch =
            |value: &str| json!({"metadata": {"resourceVersion": version}, "data": {"k": value}});
        let first: ConfigMap = cluster
            .merge_patch("team-a", "c", &patch("1"))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(first.metadata.resource_version, Some(version.clone()));
        let second = cluster
            .merge_patch::<ConfigMap>("team-a", "c", &patch("2"))
            .await
            .unwrap_err();
        assert!(second.is_conflict(), "{second}");
        let stored: ConfigMap = cluster.object("team-a", "c").unwrap().unwrap();
        assert_eq!(stored.data.unwrap()["k"], "1");
    }
}
