//! [`ClusterApi`] over a real `kube::Client`.

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType as KubeEventType, Recorder, Reporter};

use super::{
    ClusterApi, ClusterError, Created, EventInfo, EventType, FIELD_MANAGER, NamespacedResource,
    Result, StatusWriter, add_finalizer_patch, namespace_and_name, remove_finalizer_patch,
};

/// Page size of list calls: bounded memory per request, few round trips.
const LIST_PAGE_SIZE: u32 = 500;

/// [`ClusterApi`] over a `kube::Client`: the implementation used inside a cluster.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    recorder: Recorder,
}

impl KubeCluster {
    /// Wraps a client; events are reported by controller `alertops` without an instance name.
    pub fn new(client: Client) -> Self {
        Self::with_reporter(client, None)
    }

    /// Wraps a client; events name `instance` (typically the pod name) as reporting instance.
    pub fn with_reporter(client: Client, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_string(),
            instance,
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Self { client, recorder }
    }

    /// The underlying client, for the controller's watches.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn api<K: NamespacedResource>(&self, namespace: &str) -> Api<K> {
        Api::namespaced(self.client.clone(), namespace)
    }
}

impl From<kube::Error> for ClusterError {
    fn from(err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) => {
                ClusterError::from_status(status.code, &status.reason, &status.message)
            }
            kube::Error::SerdeError(err) => ClusterError::Serialization(err.to_string()),
            kube::Error::BuildRequest(err) => ClusterError::Invalid(err.to_string()),
            other => ClusterError::Transport(other.to_string()),
        }
    }
}

/// A failed `test` operation comes back as 422 Invalid; for a guarded finalizer patch that means
/// somebody else changed the finalizers first, which is a conflict.
fn guard_failure_is_conflict(err: kube::Error) -> ClusterError {
    match ClusterError::from(err) {
        ClusterError::Invalid(message) => ClusterError::Conflict(message),
        other => other,
    }
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

impl ClusterApi for KubeCluster {
    async fn get<K: NamespacedResource>(&self, namespace: &str, name: &str) -> Result<Option<K>> {
        Ok(self.api::<K>(namespace).get_opt(name).await?)
    }

    async fn list<K: NamespacedResource>(&self, namespace: &str) -> Result<Vec<K>> {
        let api = self.api::<K>(namespace);
        let mut items = Vec::new();
        let mut params = ListParams::default().limit(LIST_PAGE_SIZE);
        loop {
            let page = api.list(&params).await?;
            items.extend(page.items);
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(items),
            }
        }
    }

    async fn list_labelled<K: NamespacedResource>(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Vec<K>> {
        let api = self.api::<K>(namespace);
        let mut items = Vec::new();
        let mut params = ListParams::default().labels(key).limit(LIST_PAGE_SIZE);
        loop {
            let page = api.list(&params).await?;
            items.extend(page.items);
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(items),
            }
        }
    }

    async fn apply_status<K: NamespacedResource>(
        &self,
        obj: &K,
        writer: StatusWriter,
        status: serde_json::Value,
    ) -> Result<()> {
        let (namespace, name) = namespace_and_name(obj)?;
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": writer.own_part(&K::kind(&()), status),
        });
        let params = PatchParams::apply(writer.field_manager()).force();
        self.api::<K>(&namespace)
            .patch_status(&name, &params, &Patch::Apply(&patch))
            .await?;
        Ok(())
    }

    async fn add_finalizer<K: NamespacedResource>(&self, obj: &K, finalizer: &str) -> Result<K> {
        let current = obj.meta().finalizers.clone().unwrap_or_default();
        if current.iter().any(|f| f == finalizer) {
            return Ok(obj.clone());
        }
        let (namespace, name) = namespace_and_name(obj)?;
        let patch = add_finalizer_patch(&current, finalizer);
        self.api::<K>(&namespace)
            .patch(&name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
            .map_err(guard_failure_is_conflict)
    }

    async fn remove_finalizer<K: NamespacedResource>(
        &self,
        obj: &K,
        finalizer: &str,
    ) -> Result<()> {
        let current = obj.meta().finalizers.clone().unwrap_or_default();
        let Some(patch) = remove_finalizer_patch(&current, finalizer) else {
            return Ok(());
        };
        let (namespace, name) = namespace_and_name(obj)?;
        self.api::<K>(&namespace)
            .patch(&name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
            .map_err(guard_failure_is_conflict)?;
        Ok(())
    }

    async fn apply<T: NamespacedResource>(&self, obj: &T) -> Result<T> {
        let (namespace, name) = namespace_and_name(obj)?;
        // Server-side apply rejects managedFields and would turn a resourceVersion into a
        // precondition; an applied object states intent, not a read-back.
        let mut desired = obj.clone();
        desired.meta_mut().managed_fields = None;
        desired.meta_mut().resource_version = None;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        Ok(self
            .api::<T>(&namespace)
            .patch(&name, &params, &Patch::Apply(&desired))
            .await?)
    }

    async fn merge_patch<T: NamespacedResource>(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<Option<T>> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        match self
            .api::<T>(namespace)
            .patch(name, &params, &Patch::Merge(patch))
            .await
        {
            Ok(patched) => Ok(Some(patched)),
            Err(err) if is_status(&err, 404) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn create<T: NamespacedResource>(&self, obj: &T) -> Result<Created<T>> {
        let (namespace, name) = namespace_and_name(obj)?;
        let api = self.api::<T>(&namespace);
        match api.create(&PostParams::default(), obj).await {
            Ok(created) => Ok(Created::New(created)),
            Err(err) if is_status(&err, 409) => match api.get_opt(&name).await? {
                Some(existing) => Ok(Created::AlreadyExisted(existing)),
                // Deleted between our create and our read: let the caller retry.
                None => Err(ClusterError::Conflict(format!(
                    "{} {namespace}/{name} already existed and then disappeared",
                    T::kind(&())
                ))),
            },
            Err(err) => Err(err.into()),
        }
    }

    async fn delete<T: NamespacedResource>(&self, namespace: &str, name: &str) -> Result<bool> {
        // Background propagation: the API's default for Jobs is to orphan their pods.
        match self
            .api::<T>(namespace)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if is_status(&err, 404) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    async fn secret_value(&self, namespace: &str, name: &str, key: &str) -> Result<Option<String>> {
        let Some(secret) = self.api::<Secret>(namespace).get_opt(name).await? else {
            return Ok(None);
        };
        let Some(bytes) = secret.data.and_then(|mut data| data.remove(key)) else {
            return Ok(None);
        };
        String::from_utf8(bytes.0).map(Some).map_err(|_| {
            ClusterError::Serialization(format!(
                "key {key} of Secret {namespace}/{name} is not UTF-8 text"
            ))
        })
    }

    async fn publish_event<K: NamespacedResource>(&self, obj: &K, event: EventInfo) -> Result<()> {
        self.publish_event_regarding(&obj.object_ref(&()), event)
            .await
    }
}

impl KubeCluster {
    /// Publishes an Event about the object `reference` names, for objects that are known only by
    /// reference (e.g. a stored object that no longer deserializes into its type).
    pub async fn publish_event_regarding(
        &self,
        reference: &k8s_openapi::api::core::v1::ObjectReference,
        event: EventInfo,
    ) -> Result<()> {
        let event = Event {
            type_: match event.type_ {
                EventType::Normal => KubeEventType::Normal,
                EventType::Warning => KubeEventType::Warning,
            },
            reason: event.reason,
            note: event.note,
            action: event.action,
            secondary: None,
        };
        Ok(self.recorder.publish(&event, reference).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{AlarmPolicy, AlarmPolicySpec};
    use http::{Method, Request, Response};
    use k8s_openapi::api::batch::v1::Job;
    use kube::client::Body;
    use serde_json::{Value, json};
    use tower_test::mock::{Handle, SendResponse};

    type ApiServerHandle = Handle<Request<Body>, Response<Body>>;

    fn mock_cluster() -> (KubeCluster, ApiServerHandle) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        (
            KubeCluster::with_reporter(client, Some("alertops-0".into())),
            handle,
        )
    }

    /// What the verifier saw of one request.
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
            .expect("the client sent no request");
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_string());
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

    fn status(code: u16, reason: &str) -> Value {
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": format!("{reason} from the test"), "reason": reason, "code": code,
        })
    }

    fn policy(finalizers: &[&str]) -> AlarmPolicy {
        let mut policy: AlarmPolicy = AlarmPolicy::new(
            "orders",
            serde_json::from_value::<AlarmPolicySpec>(json!({})).unwrap(),
        );
        policy.metadata.namespace = Some("team-a".into());
        policy.metadata.uid = Some("uid-1".into());
        if !finalizers.is_empty() {
            policy.metadata.finalizers = Some(finalizers.iter().map(|f| f.to_string()).collect());
        }
        policy
    }

    fn policy_json(finalizers: &[&str]) -> Value {
        serde_json::to_value(policy(finalizers)).unwrap()
    }

    fn job(name: &str) -> Job {
        serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": { "name": name, "namespace": "team-a" },
            "spec": { "template": { "spec": { "restartPolicy": "Never",
                "containers": [{ "name": "retry", "image": "alertops:test" }] } } },
        }))
        .unwrap()
    }

    const POLICIES: &str = "/apis/alertops.dev/v1alpha1/namespaces/team-a/alarmpolicies";

    #[tokio::test]
    async fn get_reads_the_object() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::GET);
            assert_eq!(seen.path, format!("{POLICIES}/orders"));
            respond(send, 200, policy_json(&[]));
        });
        let found: Option<AlarmPolicy> = cluster.get("team-a", "orders").await.unwrap();
        assert_eq!(found.unwrap().metadata.uid.as_deref(), Some("uid-1"));
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn get_of_a_missing_object_is_none() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.path, format!("{POLICIES}/absent"));
            respond(send, 404, status(404, "NotFound"));
        });
        let found: Option<AlarmPolicy> = cluster.get("team-a", "absent").await.unwrap();
        assert!(found.is_none());
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn get_maps_forbidden() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (_, send) = next_request(&mut handle).await;
            respond(send, 403, status(403, "Forbidden"));
        });
        let err = cluster
            .get::<AlarmPolicy>("team-a", "orders")
            .await
            .unwrap_err();
        assert!(matches!(err, ClusterError::Forbidden(_)), "{err:?}");
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn list_follows_continue_tokens() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::GET);
            assert_eq!(seen.path, POLICIES);
            assert_eq!(seen.query, "&limit=500");
            respond(
                send,
                200,
                json!({ "apiVersion": "alertops.dev/v1alpha1", "kind": "AlarmPolicyList",
                    "metadata": { "continue": "page-2" }, "items": [policy_json(&[])] }),
            );
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.query, "&limit=500&continue=page-2");
            let mut second = policy_json(&[]);
            second["metadata"]["name"] = json!("payments");
            respond(
                send,
                200,
                json!({ "apiVersion": "alertops.dev/v1alpha1", "kind": "AlarmPolicyList",
                    "metadata": {}, "items": [second] }),
            );
        });
        let all: Vec<AlarmPolicy> = cluster.list("team-a").await.unwrap();
        let names: Vec<_> = all
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["orders", "payments"]);
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn list_labelled_asks_the_server_for_the_label_only() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::GET);
            assert_eq!(seen.path, "/api/v1/namespaces/team-a/configmaps");
            assert_eq!(seen.query, "&labelSelector=alertops.dev%2Fsnooze&limit=500");
            respond(
                send,
                200,
                json!({ "apiVersion": "v1", "kind": "ConfigMapList", "metadata": {},
                    "items": [{ "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": { "name": "s", "namespace": "team-a",
                            "labels": { "alertops.dev/snooze": "r" } } }] }),
            );
        });
        let found: Vec<ConfigMap> = cluster
            .list_labelled("team-a", "alertops.dev/snooze")
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn patch_status_applies_to_the_status_subresource() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::PATCH);
            assert_eq!(seen.path, format!("{POLICIES}/orders/status"));
            assert_eq!(seen.query, "&force=true&fieldManager=alertops");
            assert_eq!(
                seen.content_type.as_deref(),
                Some("application/apply-patch+yaml")
            );
            assert_eq!(
                seen.body,
                json!({ "apiVersion": "alertops.dev/v1alpha1", "kind": "AlarmPolicy",
                    "status": { "observedGeneration": 3 } })
            );
            respond(send, 200, policy_json(&[]));
        });
        cluster
            .patch_status(&policy(&[]), json!({ "observedGeneration": 3 }))
            .await
            .unwrap();
        verifier.await.unwrap();
    }

    /// Issue 11 item 7: a digest run applies `lastRun` alone under its own field manager; the
    /// controller's write, under its manager, leaves `lastRun` out even when the status it
    /// computed (from a stale copy) carries one.
    #[tokio::test]
    async fn each_status_writer_applies_its_own_fields_under_its_own_manager() {
        use crate::resources::DigestSchedule;
        let schedule: DigestSchedule = serde_json::from_value(json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "DigestSchedule",
            "metadata": { "name": "nightly", "namespace": "team-a" },
            "spec": { "schedule": "0 8 * * *", "sources": [],
                "email": { "from": "a@example.com", "to": ["b@example.com"] } },
        }))
        .unwrap();
        let path = "/apis/alertops.dev/v1alpha1/namespaces/team-a/digestschedules/nightly/status";
        let (cluster, mut handle) = mock_cluster();
        let answer = serde_json::to_value(&schedule).unwrap();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!((seen.method, seen.path.as_str()), (Method::PATCH, path));
            assert_eq!(seen.query, "&force=true&fieldManager=alertops-digest");
            assert_eq!(
                seen.content_type.as_deref(),
                Some("application/apply-patch+yaml")
            );
            assert_eq!(
                seen.body["status"],
                json!({ "lastRun": { "time": "2024-05-01T15:00:00Z", "alertCount": 3, "sent": true } })
            );
            respond(send, 200, answer.clone());

            let (seen, send) = next_request(&mut handle).await;
            assert_eq!((seen.method, seen.path.as_str()), (Method::PATCH, path));
            assert_eq!(seen.query, "&force=true&fieldManager=alertops");
            assert_eq!(
                seen.body["status"],
                json!({ "observedGeneration": 2 }),
                "the controller leaves lastRun to the digest"
            );
            respond(send, 200, answer);
        });
        cluster
            .apply_status(
                &schedule,
                StatusWriter::Digest,
                json!({ "lastRun": { "time": "2024-05-01T15:00:00Z", "alertCount": 3, "sent": true } }),
            )
            .await
            .unwrap();
        cluster
            .patch_status(
                &schedule,
                json!({ "observedGeneration": 2,
                    "lastRun": { "time": "2024-04-30T15:00:00Z", "alertCount": 1, "sent": true } }),
            )
            .await
            .unwrap();
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn add_finalizer_sends_a_guarded_json_patch() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::PATCH);
            assert_eq!(seen.path, format!("{POLICIES}/orders"));
            assert_eq!(seen.query, "");
            assert_eq!(
                seen.content_type.as_deref(),
                Some("application/json-patch+json")
            );
            assert_eq!(
                seen.body,
                json!([
                    { "op": "test", "path": "/metadata/finalizers", "value": null },
                    { "op": "add", "path": "/metadata/finalizers", "value": ["alertops.dev/cleanup"] },
                ])
            );
            respond(send, 200, policy_json(&["alertops.dev/cleanup"]));
        });
        let updated = cluster
            .add_finalizer(&policy(&[]), "alertops.dev/cleanup")
            .await
            .unwrap();
        assert_eq!(
            updated.metadata.finalizers.unwrap(),
            ["alertops.dev/cleanup"]
        );
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn add_finalizer_turns_a_failed_guard_into_a_conflict() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(
                seen.body,
                json!([
                    { "op": "test", "path": "/metadata/finalizers", "value": ["other"] },
                    { "op": "add", "path": "/metadata/finalizers/-", "value": "mine" },
                ])
            );
            respond(send, 422, status(422, "Invalid"));
        });
        let err = cluster
            .add_finalizer(&policy(&["other"]), "mine")
            .await
            .unwrap_err();
        assert!(err.is_conflict(), "{err:?}");
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn add_finalizer_already_present_sends_nothing() {
        let (cluster, mut handle) = mock_cluster();
        let obj = policy(&["mine"]);
        let same = cluster.add_finalizer(&obj, "mine").await.unwrap();
        assert_eq!(
            serde_json::to_value(same).unwrap(),
            serde_json::to_value(obj).unwrap()
        );
        drop(cluster);
        assert!(handle.next_request().await.is_none(), "no request expected");
    }

    #[tokio::test]
    async fn remove_finalizer_tests_its_index() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::PATCH);
            assert_eq!(seen.path, format!("{POLICIES}/orders"));
            assert_eq!(
                seen.content_type.as_deref(),
                Some("application/json-patch+json")
            );
            assert_eq!(
                seen.body,
                json!([
                    { "op": "test", "path": "/metadata/finalizers/1", "value": "mine" },
                    { "op": "remove", "path": "/metadata/finalizers/1" },
                ])
            );
            respond(send, 200, policy_json(&["other"]));
        });
        cluster
            .remove_finalizer(&policy(&["other", "mine"]), "mine")
            .await
            .unwrap();
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn apply_is_forced_server_side_apply() {
        let (cluster, mut handle) = mock_cluster();
        let mut desired = job("retry-j-1");
        desired.metadata.resource_version = Some("17".into());
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::PATCH);
            assert_eq!(seen.path, "/apis/batch/v1/namespaces/team-a/jobs/retry-j-1");
            assert_eq!(seen.query, "&force=true&fieldManager=alertops");
            assert_eq!(
                seen.content_type.as_deref(),
                Some("application/apply-patch+yaml")
            );
            assert_eq!(seen.body["kind"], "Job");
            assert_eq!(seen.body["apiVersion"], "batch/v1");
            assert_eq!(
                seen.body["spec"]["template"]["spec"]["containers"][0]["image"],
                "alertops:test"
            );
            assert!(
                seen.body["metadata"].get("resourceVersion").is_none(),
                "{}",
                seen.body
            );
            let mut answer = seen.body.clone();
            answer["metadata"]["uid"] = json!("job-uid");
            respond(send, 200, answer);
        });
        let applied = cluster.apply(&desired).await.unwrap();
        assert_eq!(applied.metadata.uid.as_deref(), Some("job-uid"));
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn apply_without_namespace_is_invalid_and_sends_nothing() {
        let (cluster, _handle) = mock_cluster();
        let mut desired = job("retry-j-1");
        desired.metadata.namespace = None;
        let err = cluster.apply(&desired).await.unwrap_err();
        assert!(matches!(err, ClusterError::Invalid(_)), "{err:?}");
    }

    #[tokio::test]
    async fn merge_patch_sends_only_the_named_members() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::PATCH);
            assert_eq!(seen.path, "/api/v1/namespaces/team-a/configmaps/messages");
            assert_eq!(seen.query, "&fieldManager=alertops");
            assert_eq!(
                seen.content_type.as_deref(),
                Some("application/merge-patch+json")
            );
            assert_eq!(seen.body, json!({ "data": { "a": "1", "gone": null } }));
            respond(
                send,
                200,
                json!({ "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": { "name": "messages", "namespace": "team-a" },
                    "data": { "a": "1", "b": "2" } }),
            );
            let (_, send) = next_request(&mut handle).await;
            respond(send, 404, status(404, "NotFound"));
        });
        let patch = json!({ "data": { "a": "1", "gone": null } });
        let patched: ConfigMap = cluster
            .merge_patch("team-a", "messages", &patch)
            .await
            .unwrap()
            .expect("exists");
        assert_eq!(patched.data.unwrap().len(), 2);
        let absent: Option<ConfigMap> = cluster
            .merge_patch("team-a", "absent", &patch)
            .await
            .unwrap();
        assert!(absent.is_none());
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn create_posts_the_object() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::POST);
            assert_eq!(seen.path, "/apis/batch/v1/namespaces/team-a/jobs");
            assert_eq!(seen.query, "");
            assert_eq!(seen.content_type.as_deref(), Some("application/json"));
            assert_eq!(seen.body["metadata"]["name"], "retry-j-1");
            respond(send, 201, seen.body.clone());
        });
        let created = cluster.create(&job("retry-j-1")).await.unwrap();
        assert!(created.is_new());
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn create_of_an_existing_object_reads_it_back() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::POST);
            respond(send, 409, status(409, "AlreadyExists"));
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::GET);
            assert_eq!(seen.path, "/apis/batch/v1/namespaces/team-a/jobs/retry-j-1");
            let mut existing = serde_json::to_value(job("retry-j-1")).unwrap();
            existing["metadata"]["uid"] = json!("first-click");
            respond(send, 200, existing);
        });
        let created = cluster.create(&job("retry-j-1")).await.unwrap();
        match created {
            Created::AlreadyExisted(existing) => {
                assert_eq!(existing.metadata.uid.as_deref(), Some("first-click"))
            }
            Created::New(_) => panic!("expected AlreadyExisted"),
        }
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn delete_propagates_in_the_background_and_tolerates_absence() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::DELETE);
            assert_eq!(seen.path, "/apis/batch/v1/namespaces/team-a/jobs/retry-j-1");
            assert_eq!(seen.body, json!({ "propagationPolicy": "Background" }));
            respond(send, 200, serde_json::to_value(job("retry-j-1")).unwrap());
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.path, "/apis/batch/v1/namespaces/team-a/jobs/gone");
            respond(send, 404, status(404, "NotFound"));
        });
        assert!(cluster.delete::<Job>("team-a", "retry-j-1").await.unwrap());
        assert!(!cluster.delete::<Job>("team-a", "gone").await.unwrap());
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn secret_value_decodes_data() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::GET);
            assert_eq!(seen.path, "/api/v1/namespaces/team-a/secrets/slack");
            // "https://hooks.slack.test/T1" in base64
            respond(
                send,
                200,
                json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "slack" },
                    "data": { "webhook": "aHR0cHM6Ly9ob29rcy5zbGFjay50ZXN0L1Qx" } }),
            );
            let (_, send) = next_request(&mut handle).await;
            respond(send, 404, status(404, "NotFound"));
        });
        let value = cluster
            .secret_value("team-a", "slack", "webhook")
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some("https://hooks.slack.test/T1"));
        assert_eq!(
            cluster
                .secret_value("team-a", "absent", "webhook")
                .await
                .unwrap(),
            None
        );
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn secret_value_of_a_missing_key_is_none() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (_, send) = next_request(&mut handle).await;
            respond(
                send,
                200,
                json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "slack" },
                    "data": { "other": "eA==" } }),
            );
        });
        assert_eq!(
            cluster
                .secret_value("team-a", "slack", "webhook")
                .await
                .unwrap(),
            None
        );
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn publish_event_creates_an_events_v1_event() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (seen, send) = next_request(&mut handle).await;
            assert_eq!(seen.method, Method::POST);
            assert_eq!(seen.path, "/apis/events.k8s.io/v1/namespaces/team-a/events");
            let body = &seen.body;
            assert_eq!(body["type"], "Warning");
            assert_eq!(body["reason"], "TopicCreateFailed");
            assert_eq!(body["note"], "AccessDenied on sns:CreateTopic");
            assert_eq!(body["action"], "Reconcile");
            assert_eq!(body["reportingController"], "alertops");
            assert_eq!(body["reportingInstance"], "alertops-0");
            assert_eq!(body["regarding"]["kind"], "AlarmPolicy");
            assert_eq!(body["regarding"]["name"], "orders");
            assert_eq!(body["regarding"]["uid"], "uid-1");
            respond(send, 201, seen.body.clone());
        });
        let event = EventInfo {
            type_: EventType::Warning,
            reason: "TopicCreateFailed".into(),
            note: Some("AccessDenied on sns:CreateTopic".into()),
            action: "Reconcile".into(),
        };
        cluster.publish_event(&policy(&[]), event).await.unwrap();
        verifier.await.unwrap();
    }

    #[tokio::test]
    async fn server_errors_keep_their_code() {
        let (cluster, mut handle) = mock_cluster();
        let verifier = tokio::spawn(async move {
            let (_, send) = next_request(&mut handle).await;
            respond(send, 503, status(503, "ServiceUnavailable"));
        });
        let err = cluster.list::<AlarmPolicy>("team-a").await.unwrap_err();
        assert!(
            matches!(err, ClusterError::Api { code: 503, .. }),
            "{err:?}"
        );
        verifier.await.unwrap();
    }
}
