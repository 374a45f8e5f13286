//! Where a bot-token route remembers which Slack message shows which alert: a ConfigMap per
//! route, owned by the AlertRoute, so that a consumer pod that restarts (or another replica)
//! still updates the message the first notification posted.
//!
//! One data key per alert fingerprint (hex, a valid ConfigMap key), whose value is the JSON of a
//! [`StoredMessage`]. The map is bounded to about the newest [`MAX_STORED_MESSAGES`] entries,
//! which keeps it far below the 1 MiB object limit (an entry is about 150 bytes). Entries are
//! written by JSON merge patches of their own keys (see [`save`]), never by rewriting the map.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use serde::{Deserialize, Serialize};

use crate::alert::Fingerprint;
use crate::k8s::{ClusterApi, ClusterError, Created};
use crate::resources::{AlertRoute, AlertState};
use crate::slack::PostedMessage;

/// Entries kept per route; the oldest go first.
pub const MAX_STORED_MESSAGES: usize = 2_000;

/// Prefix of the ConfigMap name; the route's name follows.
const NAME_PREFIX: &str = "alertops-messages-";
/// Longest Kubernetes object name.
const MAX_NAME: usize = 253;

/// The Slack message that shows an alert, as remembered for later updates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Channel ID the message is in.
    pub channel: String,
    /// The message's timestamp (its id).
    pub ts: String,
    /// When the message was posted or last changed for this alert.
    pub at: DateTime<Utc>,
    /// The alert state the message shows.
    pub state: AlertState,
    /// Whether the message lists several alerts; such a message is not rewritten for one of
    /// them, a later state change goes into its thread.
    #[serde(default)]
    pub grouped: bool,
    /// Key of the reason the message shows ([`super::plan::reason_key`]), so that a new reason
    /// under the same fingerprint is told apart from a repeat; absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Since when the alert fires (the source's state-change time, else the first post), kept
    /// across updates while it stays firing; reminders say how long it has been firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firing_since: Option<DateTime<Utc>>,
    /// When people were last notified of this alert (the post, a thread reply, a reminder);
    /// the next reminder is due a repeat interval later. Absent in older records: `at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_at: Option<DateTime<Utc>>,
    /// The alert's title (cut to [`STORED_TITLE_CHARS`]), for reminders. Untrusted text:
    /// escaped where it is rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Characters of an alert's title kept in its record.
pub const STORED_TITLE_CHARS: usize = 150;

impl StoredMessage {
    /// The address `chat.update` and thread replies need.
    pub fn posted(&self) -> PostedMessage {
        PostedMessage {
            channel: self.channel.clone(),
            ts: self.ts.clone(),
        }
    }
}

/// Fingerprint → message, bounded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageIndex {
    entries: BTreeMap<Fingerprint, StoredMessage>,
}

impl FromIterator<(Fingerprint, StoredMessage)> for MessageIndex {
    fn from_iter<I: IntoIterator<Item = (Fingerprint, StoredMessage)>>(entries: I) -> Self {
        MessageIndex {
            entries: entries.into_iter().collect(),
        }
    }
}

impl MessageIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// The message showing `fingerprint`, if one is remembered.
    pub fn get(&self, fingerprint: &Fingerprint) -> Option<&StoredMessage> {
        self.entries.get(fingerprint)
    }

    /// Remembers (or replaces) the message showing `fingerprint`.
    pub fn insert(&mut self, fingerprint: Fingerprint, message: StoredMessage) {
        self.entries.insert(fingerprint, message);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every entry, by fingerprint.
    pub fn iter(&self) -> impl Iterator<Item = (&Fingerprint, &StoredMessage)> {
        self.entries.iter()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes `other`'s entries where they are newer than (or missing from) this index.
    pub fn merge(&mut self, other: &MessageIndex) {
        for (fingerprint, message) in &other.entries {
            match self.entries.get(fingerprint) {
                Some(mine) if mine.at > message.at => {}
                _ => {
                    self.entries.insert(fingerprint.clone(), message.clone());
                }
            }
        }
    }

    /// Drops the oldest entries until at most `max` remain.
    pub fn bound(&mut self, max: usize) {
        let excess = self.entries.len().saturating_sub(max);
        for fingerprint in self.oldest(excess) {
            self.entries.remove(&fingerprint);
        }
    }

    /// The `count` oldest entries' fingerprints.
    fn oldest(&self, count: usize) -> Vec<Fingerprint> {
        let mut by_age: Vec<(DateTime<Utc>, &Fingerprint)> =
            self.entries.iter().map(|(fp, m)| (m.at, fp)).collect();
        by_age.sort();
        by_age
            .into_iter()
            .take(count)
            .map(|(_, fp)| fp.clone())
            .collect()
    }

    /// The entries as ConfigMap data: fingerprint → JSON of the message.
    fn data(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .map(|(fp, m)| {
                let value = serde_json::to_string(m).expect("strings and an enum serialize");
                (fp.as_str().to_string(), value)
            })
            .collect()
    }

    /// Reads the entries of a ConfigMap. Entries that do not parse (edited by hand, written by
    /// another version) are skipped: losing one update is better than refusing to deliver.
    pub fn from_config_map(config_map: &ConfigMap) -> Self {
        let entries = config_map
            .data
            .iter()
            .flatten()
            .filter_map(|(key, value)| {
                let message = serde_json::from_str::<StoredMessage>(value).ok()?;
                Some((Fingerprint::from_raw(key.clone()), message))
            })
            .collect();
        MessageIndex { entries }
    }

    /// The ConfigMap holding these entries for `route`, owned by it (deleted with it).
    pub fn to_config_map(&self, route: &AlertRoute) -> Result<ConfigMap, StoreError> {
        owned_config_map(route, NAME_PREFIX, "slack-messages", self.data())
    }
}

/// A ConfigMap of the route's named `prefix` + route name, labelled with `component`, owned by
/// the route (deleted with it), holding `data`.
pub(super) fn owned_config_map(
    route: &AlertRoute,
    prefix: &str,
    component: &str,
    data: BTreeMap<String, String>,
) -> Result<ConfigMap, StoreError> {
    let namespace = route
        .metadata
        .namespace
        .clone()
        .ok_or(StoreError::RouteIdentity("namespace"))?;
    let name = route
        .metadata
        .name
        .clone()
        .ok_or(StoreError::RouteIdentity("name"))?;
    let uid = route
        .metadata
        .uid
        .clone()
        .ok_or(StoreError::RouteIdentity("uid"))?;
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(prefixed_name(prefix, &name)),
            namespace: Some(namespace),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "alertops".to_string(),
                ),
                (
                    "app.kubernetes.io/component".to_string(),
                    component.to_string(),
                ),
                ("alertops.dev/route".to_string(), label_value(&name)),
            ])),
            owner_references: Some(vec![OwnerReference {
                api_version: AlertRoute::api_version(&()).to_string(),
                kind: AlertRoute::kind(&()).to_string(),
                name,
                uid,
                controller: Some(false),
                block_owner_deletion: Some(false),
            }]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    })
}

/// Writes `changes` (key → value, `null` removes the key) into the route's ConfigMap `template`
/// names, with a JSON merge patch of those keys only; the map is created from `template` (which
/// must hold the same entries) when it does not exist yet. Returns the stored map.
pub(super) async fn merge_data<C: ClusterApi>(
    cluster: &C,
    template: &ConfigMap,
    changes: serde_json::Map<String, serde_json::Value>,
) -> Result<ConfigMap, StoreError> {
    let (namespace, name) = crate::k8s::namespace_and_name(template)?;
    let patch = serde_json::json!({ "data": changes });
    if let Some(stored) = cluster.merge_patch(&namespace, &name, &patch).await? {
        return Ok(stored);
    }
    match cluster.create(template).await? {
        Created::New(stored) => Ok(stored),
        // Another replica created it meanwhile: add to theirs.
        Created::AlreadyExisted(_) => cluster
            .merge_patch(&namespace, &name, &patch)
            .await?
            .ok_or_else(|| ClusterError::NotFound(format!("ConfigMap {namespace}/{name}")).into()),
    }
}

/// Why the message index could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The AlertRoute lacks what an owner reference needs.
    #[error("the AlertRoute has no metadata.{0}")]
    RouteIdentity(&'static str),
    /// The cluster refused or failed the call.
    #[error("message index ConfigMap: {0}")]
    Cluster(#[from] ClusterError),
}

/// Name of the ConfigMap of the route named `route` (unique per namespace; long names end in a
/// hash of the whole name so that two long names never share a map).
pub fn config_map_name(route: &str) -> String {
    prefixed_name(NAME_PREFIX, route)
}

/// `prefix` + `route`, shortened to a valid object name with a hash when too long.
pub(super) fn prefixed_name(prefix: &str, route: &str) -> String {
    let name = format!("{prefix}{route}");
    if name.len() <= MAX_NAME {
        return name;
    }
    let hash = crate::names::short_hash(route);
    let keep = MAX_NAME - prefix.len() - hash.len() - 1;
    let mut cut = route[..keep.min(route.len())].to_string();
    // Cut on a character boundary that still forms a valid name (no trailing '.' or '-').
    while cut.ends_with(['.', '-']) {
        cut.pop();
    }
    format!("{prefix}{cut}-{hash}")
}

/// A label value (at most 63 characters) naming the route.
fn label_value(route: &str) -> String {
    if route.len() <= 63 {
        route.to_string()
    } else {
        crate::names::short_hash(route)
    }
}

/// Reads the route's message index; empty when its ConfigMap does not exist yet.
pub async fn load<C: ClusterApi>(
    cluster: &C,
    namespace: &str,
    route: &str,
) -> Result<MessageIndex, StoreError> {
    let config_map = cluster
        .get::<ConfigMap>(namespace, &config_map_name(route))
        .await?;
    Ok(config_map
        .as_ref()
        .map(MessageIndex::from_config_map)
        .unwrap_or_default())
}

/// The route's message index with the resourceVersion of its ConfigMap (`None`: no map yet),
/// for [`write_if_unchanged`].
pub async fn load_versioned<C: ClusterApi>(
    cluster: &C,
    namespace: &str,
    route: &str,
) -> Result<(MessageIndex, Option<String>), StoreError> {
    let config_map = cluster
        .get::<ConfigMap>(namespace, &config_map_name(route))
        .await?;
    Ok(match config_map {
        Some(map) => (
            MessageIndex::from_config_map(&map),
            map.metadata.resource_version.clone(),
        ),
        None => (MessageIndex::new(), None),
    })
}

/// Writes `entries` into the route's map only if the map is still at `resource_version` (a
/// merge patch with that resourceVersion as its precondition). `Ok(false)` when another writer
/// changed the map since it was read: re-read and decide again. This is how one of several
/// replicas claims a piece of work (a reminder) that must happen once.
pub async fn write_if_unchanged<C: ClusterApi>(
    cluster: &C,
    namespace: &str,
    route: &str,
    resource_version: &str,
    entries: &MessageIndex,
) -> Result<bool, StoreError> {
    let changes: serde_json::Map<String, serde_json::Value> = entries
        .data()
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": resource_version },
        "data": changes,
    });
    match cluster
        .merge_patch::<ConfigMap>(namespace, &config_map_name(route), &patch)
        .await
    {
        Ok(Some(_)) => Ok(true),
        // Deleted since it was read: nothing to claim.
        Ok(None) => Ok(false),
        Err(error) if error.is_conflict() => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Adds `new` to the route's index with a JSON merge patch of only its keys: replicas sharing
/// the queue never overwrite each other's entries (a forced apply of the whole map by one field
/// manager removed every key the other replica had added since this one read), and a post sends
/// its own entry, not the whole map. Two writes of one fingerprint keep the later. The map is
/// created, owned by the route, on first use. Once it holds more than [`MAX_STORED_MESSAGES`]
/// entries, the oldest tenth is removed the same way (a patch of `null`s). Returns the index as
/// stored after the write.
pub async fn save<C: ClusterApi>(
    cluster: &C,
    route: &AlertRoute,
    new: &MessageIndex,
) -> Result<MessageIndex, StoreError> {
    let namespace = route
        .metadata
        .namespace
        .as_deref()
        .ok_or(StoreError::RouteIdentity("namespace"))?;
    let name = route
        .metadata
        .name
        .as_deref()
        .ok_or(StoreError::RouteIdentity("name"))?;
    let map_name = config_map_name(name);
    let changes = new
        .data()
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let stored = merge_data(cluster, &new.to_config_map(route)?, changes).await?;
    let mut index = MessageIndex::from_config_map(&stored);
    if index.len() > MAX_STORED_MESSAGES {
        let keep = MAX_STORED_MESSAGES - MAX_STORED_MESSAGES / 10;
        let expired = index.oldest(index.len() - keep);
        let removal: serde_json::Map<String, serde_json::Value> = expired
            .iter()
            .map(|fp| (fp.as_str().to_string(), serde_json::Value::Null))
            .collect();
        cluster
            .merge_patch::<ConfigMap>(
                namespace,
                &map_name,
                &serde_json::json!({ "data": removal }),
            )
            .await?;
        for fingerprint in &expired {
            index.entries.remove(fingerprint);
        }
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn message(ts: &str, secs: i64, state: AlertState) -> StoredMessage {
        StoredMessage {
            channel: "C1".into(),
            ts: ts.into(),
            at: Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap(),
            state,
            grouped: false,
            reason: None,
            firing_since: None,
            notified_at: None,
            title: None,
        }
    }

    fn route() -> AlertRoute {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
            "metadata": {"name": "data-eng", "namespace": "team", "uid": "u-1"},
            "spec": {"sources": [{"topicArn": "arn:aws:sns:us-east-1:123456789012:t"}]},
        }))
        .unwrap()
    }

    #[test]
    fn bound_keeps_the_newest() {
        let mut index = MessageIndex::new();
        for i in 0..10 {
            index.insert(
                Fingerprint::from_raw(format!("fp{i}")),
                message(&format!("{i}"), i, AlertState::Firing),
            );
        }
        index.bound(3);
        assert_eq!(index.len(), 3);
        for i in 7..10 {
            assert!(
                index
                    .get(&Fingerprint::from_raw(format!("fp{i}")))
                    .is_some()
            );
        }
        assert!(index.get(&Fingerprint::from_raw("fp6")).is_none());
    }

    #[test]
    fn merge_keeps_the_newer_entry() {
        let fp = Fingerprint::from_raw("a");
        let mut stored = MessageIndex::new();
        stored.insert(fp.clone(), message("1.0", 10, AlertState::Firing));
        let mut newer = MessageIndex::new();
        newer.insert(fp.clone(), message("1.0", 20, AlertState::Resolved));
        let mut older = MessageIndex::new();
        older.insert(fp.clone(), message("0.5", 5, AlertState::Firing));

        stored.merge(&older);
        assert_eq!(stored.get(&fp).unwrap().ts, "1.0", "an older entry loses");
        stored.merge(&newer);
        assert_eq!(stored.get(&fp).unwrap().state, AlertState::Resolved);
    }

    #[test]
    fn config_map_round_trips_and_is_owned_by_the_route() {
        let mut index = MessageIndex::new();
        let fp = Fingerprint::from_raw("0123abcd");
        index.insert(
            fp.clone(),
            message("1700000000.000001", 0, AlertState::Firing),
        );
        let config_map = index.to_config_map(&route()).unwrap();
        assert_eq!(
            config_map.metadata.name.as_deref(),
            Some("alertops-messages-data-eng")
        );
        let owner = &config_map.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("AlertRoute", "data-eng", "u-1")
        );
        assert_eq!(MessageIndex::from_config_map(&config_map), index);
    }

    #[test]
    fn unreadable_entries_are_skipped() {
        let config_map = ConfigMap {
            data: Some(BTreeMap::from([
                ("bad".to_string(), "not json".to_string()),
                (
                    "good".to_string(),
                    serde_json::to_string(&message("1.1", 0, AlertState::Firing)).unwrap(),
                ),
            ])),
            ..ConfigMap::default()
        };
        let index = MessageIndex::from_config_map(&config_map);
        assert_eq!(index.len(), 1);
        assert!(index.get(&Fingerprint::from_raw("good")).is_some());
    }

    #[test]
    fn route_without_uid_cannot_own_the_map() {
        let mut r = route();
        r.metadata.uid = None;
        assert!(matches!(
            MessageIndex::new().to_config_map(&r),
            Err(StoreError::RouteIdentity("uid"))
        ));
    }

    /// Issue 11 item 6: two replicas record their messages at the same time; neither loses the
    /// other's references.
    #[tokio::test]
    async fn concurrent_saves_of_two_replicas_keep_both_entries() {
        let cluster = crate::k8s::MemoryCluster::interleaving();
        let route = route();
        // Every replica saves 20 alerts of its own, one post at a time.
        let replica = |prefix: &'static str| {
            let cluster = cluster.clone();
            let route = route.clone();
            async move {
                for i in 0..20 {
                    let mut entry = MessageIndex::new();
                    entry.insert(
                        Fingerprint::from_raw(format!("{prefix}{i}")),
                        message(&format!("{i}.{prefix}"), i, AlertState::Firing),
                    );
                    save(&cluster, &route, &entry).await.expect("saved");
                }
            }
        };
        let (a, b) = (tokio::spawn(replica("a")), tokio::spawn(replica("b")));
        a.await.unwrap();
        b.await.unwrap();
        let index = load(&cluster, "team", "data-eng").await.unwrap();
        for prefix in ["a", "b"] {
            for i in 0..20 {
                let stored = index.get(&Fingerprint::from_raw(format!("{prefix}{i}")));
                assert_eq!(
                    stored.map(|m| m.ts.as_str()),
                    Some(format!("{i}.{prefix}").as_str()),
                    "{prefix}{i} lost"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_full_map_loses_its_oldest_tenth() {
        let cluster = crate::k8s::MemoryCluster::new();
        let route = route();
        let mut first = MessageIndex::new();
        for i in 0..MAX_STORED_MESSAGES {
            first.insert(
                Fingerprint::from_raw(format!("fp{i}")),
                message(&i.to_string(), i as i64, AlertState::Firing),
            );
        }
        assert_eq!(save(&cluster, &route, &first).await.unwrap().len(), 2_000);
        let mut newest = MessageIndex::new();
        newest.insert(
            Fingerprint::from_raw("newest"),
            message("n", 10_000, AlertState::Firing),
        );
        let saved = save(&cluster, &route, &newest).await.unwrap();
        let stored = load(&cluster, "team", "data-eng").await.unwrap();
        assert_eq!(stored, saved);
        assert_eq!(stored.len(), MAX_STORED_MESSAGES - MAX_STORED_MESSAGES / 10);
        assert!(stored.get(&Fingerprint::from_raw("newest")).is_some());
        assert!(stored.get(&Fingerprint::from_raw("fp200")).is_none());
        assert!(stored.get(&Fingerprint::from_raw("fp201")).is_some());
    }

    #[test]
    fn long_route_names_stay_valid_and_distinct() {
        let a = "a".repeat(253);
        let b = format!("{}b", "a".repeat(252));
        assert!(config_map_name(&a).len() <= 253);
        assert_ne!(config_map_name(&a), config_map_name(&b));
        assert_eq!(config_map_name("x"), "alertops-messages-x");
    }
}
