//! Which destinations already accepted an SQS message's alert, for routes with more than one
//! destination (Slack and email): a retry sends only to the destinations that have not accepted
//! yet, so that an email failure does not post to Slack again on every receive (and a repeated
//! post no longer wipes "Acknowledged by" from a bot's message).
//!
//! The record must survive what makes the message come back: a failed destination (the same
//! consumer receives it again after a backoff), a consumer restart, another replica. So it lives
//! in a ConfigMap per route, owned by the route, keyed by the SQS message id (which stays the
//! same on every receive of a message), written with JSON merge patches of its own keys so that
//! replicas never overwrite each other. A record is written as soon as one destination accepted
//! while another has not, and removed once the message is deleted.
//!
//! Duplicate window: between a destination accepting and its record being stored (one API call,
//! tens of milliseconds) a crash, or a failed write, means that destination gets the alert again
//! on the next receive.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ConfigMap;
use serde::{Deserialize, Serialize};

use super::store::{self, StoreError};
use crate::k8s::ClusterApi;
use crate::resources::AlertRoute;

/// Prefix of the ConfigMap name; the route's name follows.
const NAME_PREFIX: &str = "alertops-deliveries-";

/// Records kept at most; the oldest go first (a message that went to the dead-letter queue
/// leaves its record behind).
pub const MAX_RECEIPTS: usize = 2_000;

/// A destination of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    /// The route's Slack channel or webhook.
    Slack,
    /// The route's email recipients, through SES.
    Email,
}

impl Destination {
    /// Lower-case name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Slack => "slack",
            Destination::Email => "email",
        }
    }
}

/// What is known of one SQS message's delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The destinations that accepted its alert.
    pub accepted: BTreeSet<Destination>,
    /// When the record was last written.
    pub at: DateTime<Utc>,
}

/// SQS message id → receipt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Receipts {
    entries: BTreeMap<String, Receipt>,
}

impl Receipts {
    /// Whether `destination` accepted the alert of message `message_id`.
    pub fn accepted(&self, message_id: &str, destination: Destination) -> bool {
        self.entries
            .get(message_id)
            .is_some_and(|r| r.accepted.contains(&destination))
    }

    /// Whether a record of `message_id` exists.
    pub fn contains(&self, message_id: &str) -> bool {
        self.entries.contains_key(message_id)
    }

    /// Notes that `destination` accepted the alert of `message_id`; returns the receipt now.
    pub fn accept(
        &mut self,
        message_id: &str,
        destination: Destination,
        at: DateTime<Utc>,
    ) -> &Receipt {
        let receipt = self
            .entries
            .entry(message_id.to_string())
            .or_insert_with(|| Receipt {
                accepted: BTreeSet::new(),
                at,
            });
        receipt.accepted.insert(destination);
        receipt.at = at;
        receipt
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn from_config_map(config_map: &ConfigMap) -> Self {
        // A record that does not parse is skipped: at worst a destination gets the alert twice.
        let entries = config_map
            .data
            .iter()
            .flatten()
            .filter_map(|(key, value)| {
                Some((key.clone(), serde_json::from_str::<Receipt>(value).ok()?))
            })
            .collect();
        Receipts { entries }
    }

    /// The `count` oldest message ids.
    fn oldest(&self, count: usize) -> Vec<String> {
        let mut by_age: Vec<(DateTime<Utc>, &String)> =
            self.entries.iter().map(|(id, r)| (r.at, id)).collect();
        by_age.sort();
        by_age
            .into_iter()
            .take(count)
            .map(|(_, id)| id.clone())
            .collect()
    }
}

/// Name of the receipts ConfigMap of the route named `route`.
pub fn config_map_name(route: &str) -> String {
    store::prefixed_name(NAME_PREFIX, route)
}

/// Reads the route's receipts; empty when its ConfigMap does not exist yet.
pub async fn load<C: ClusterApi>(
    cluster: &C,
    namespace: &str,
    route: &str,
) -> Result<Receipts, StoreError> {
    let config_map = cluster
        .get::<ConfigMap>(namespace, &config_map_name(route))
        .await?;
    Ok(config_map
        .as_ref()
        .map(Receipts::from_config_map)
        .unwrap_or_default())
}

/// Stores the receipts of `message_ids` as `receipts` holds them (keys only; other records
/// stay), then removes the oldest records beyond [`MAX_RECEIPTS`].
pub async fn record<C: ClusterApi>(
    cluster: &C,
    route: &AlertRoute,
    receipts: &Receipts,
    message_ids: &[&str],
) -> Result<(), StoreError> {
    let data: BTreeMap<String, String> = message_ids
        .iter()
        .filter_map(|id| {
            let receipt = receipts.entries.get(*id)?;
            let value = serde_json::to_string(receipt).expect("a set and a time serialize");
            Some((id.to_string(), value))
        })
        .collect();
    if data.is_empty() {
        return Ok(());
    }
    let template = store::owned_config_map(route, NAME_PREFIX, "deliveries", data.clone())?;
    let changes = data
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let stored = Receipts::from_config_map(&store::merge_data(cluster, &template, changes).await?);
    if stored.len() > MAX_RECEIPTS {
        let expired = stored.oldest(stored.len() - (MAX_RECEIPTS - MAX_RECEIPTS / 10));
        remove(cluster, route, &expired).await?;
    }
    Ok(())
}

/// Removes the records of `message_ids` (their messages were deleted).
pub async fn forget<C: ClusterApi>(
    cluster: &C,
    route: &AlertRoute,
    message_ids: &[&str],
) -> Result<(), StoreError> {
    let ids: Vec<String> = message_ids.iter().map(|id| id.to_string()).collect();
    remove(cluster, route, &ids).await
}

async fn remove<C: ClusterApi>(
    cluster: &C,
    route: &AlertRoute,
    message_ids: &[String],
) -> Result<(), StoreError> {
    if message_ids.is_empty() {
        return Ok(());
    }
    let name = route
        .metadata
        .name
        .as_deref()
        .ok_or(StoreError::RouteIdentity("name"))?;
    let namespace = route
        .metadata
        .namespace
        .as_deref()
        .ok_or(StoreError::RouteIdentity("namespace"))?;
    let changes: serde_json::Map<String, serde_json::Value> = message_ids
        .iter()
        .map(|id| (id.clone(), serde_json::Value::Null))
        .collect();
    // An absent map has nothing to remove.
    cluster
        .merge_patch::<ConfigMap>(
            namespace,
            &config_map_name(name),
            &serde_json::json!({ "data": changes }),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::MemoryCluster;
    use chrono::TimeZone;

    fn route() -> AlertRoute {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
            "metadata": {"name": "data-eng", "namespace": "team", "uid": "u-1"},
            "spec": {"sources": [{"topicArn": "arn:aws:sns:us-east-1:123456789012:t"}]},
        }))
        .unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    #[tokio::test]
    async fn receipts_survive_a_reload_and_are_forgotten_after_delete() {
        let cluster = MemoryCluster::new();
        let route = route();
        let mut receipts = Receipts::default();
        receipts.accept("m-1", Destination::Slack, at(0));
        receipts.accept("m-2", Destination::Email, at(1));
        record(&cluster, &route, &receipts, &["m-1", "m-2"])
            .await
            .unwrap();

        let loaded = load(&cluster, "team", "data-eng").await.unwrap();
        assert!(loaded.accepted("m-1", Destination::Slack));
        assert!(!loaded.accepted("m-1", Destination::Email));
        assert!(loaded.accepted("m-2", Destination::Email));
        assert!(!loaded.accepted("m-3", Destination::Slack));
        let map: ConfigMap = cluster
            .get("team", "alertops-deliveries-data-eng")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(map.metadata.owner_references.unwrap()[0].uid, "u-1");

        forget(&cluster, &route, &["m-1"]).await.unwrap();
        let loaded = load(&cluster, "team", "data-eng").await.unwrap();
        assert!(!loaded.contains("m-1"));
        assert!(loaded.contains("m-2"));
    }

    #[tokio::test]
    async fn the_oldest_records_go_beyond_the_bound() {
        let cluster = MemoryCluster::new();
        let route = route();
        let mut receipts = Receipts::default();
        let ids: Vec<String> = (0..=MAX_RECEIPTS).map(|i| format!("m-{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            receipts.accept(id, Destination::Slack, at(i as i64));
        }
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        record(&cluster, &route, &receipts, &refs).await.unwrap();
        let loaded = load(&cluster, "team", "data-eng").await.unwrap();
        assert_eq!(loaded.len(), MAX_RECEIPTS - MAX_RECEIPTS / 10);
        assert!(!loaded.contains("m-0"));
        assert!(loaded.contains(&format!("m-{MAX_RECEIPTS}")));
    }

    #[tokio::test]
    async fn forgetting_without_a_map_is_fine() {
        forget(&MemoryCluster::new(), &route(), &["m-1"])
            .await
            .unwrap();
    }
}
