//! Which queued alerts a digest email already covered, so that a run that crashed after SES
//! accepted its email and before it deleted the messages does not email them again.
//!
//! The record is a ConfigMap per schedule, `alertops-digest-sent-<schedule>`, owned by the
//! DigestSchedule and written only by its digest Job (one at a time: the CronJob forbids
//! concurrent runs). It holds two sets of message identities (the SNS message id, else the SQS
//! message id; stored as 64-bit hashes, 17 bytes each, so that about 60,000 fit a ConfigMap;
//! a larger run's record is refused by the API server, which the run logs, sending unguarded):
//!
//! - `pending`: written just before the email is handed to SES;
//! - `sent`: after SES accepted it, `pending` moves here.
//!
//! A run skips (and deletes) the messages in `sent`; it reports those in `pending` again,
//! because it cannot know whether SES accepted that email. Duplicate window: a crash between
//! SES's answer and the write that moves `pending` to `sent` (one Kubernetes API call). The
//! skipped identities a run saw are carried in its own record's `sent`, so a crash of that run
//! too does not bring them back.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use sha2::{Digest, Sha256};

use crate::k8s::{ClusterApi, ClusterError};
use crate::resources::DigestSchedule;

/// Prefix of the ConfigMap name; the schedule's name follows.
const NAME_PREFIX: &str = "alertops-digest-sent-";
const SENT_KEY: &str = "sent";
const PENDING_KEY: &str = "pending";

/// The stored form of a message identity: the first 64 bits of its SHA-256, in hex. Two
/// identities of one run colliding is a 1-in-10^10 event at 50,000 alerts.
pub fn fingerprint(identity: &str) -> String {
    let digest = Sha256::digest(identity.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// What the previous run recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SentRecord {
    /// Fingerprints of messages an accepted email covered.
    pub sent: BTreeSet<String>,
    /// Fingerprints of messages of an email whose acceptance was never recorded.
    pub pending: BTreeSet<String>,
}

impl SentRecord {
    /// Whether the message of `identity` was in an email SES accepted.
    pub fn was_sent(&self, identity: &str) -> bool {
        self.sent.contains(&fingerprint(identity))
    }

    fn from_config_map(config_map: &ConfigMap) -> Self {
        let set = |key: &str| -> BTreeSet<String> {
            config_map
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|v| {
                    v.lines()
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        SentRecord {
            sent: set(SENT_KEY),
            pending: set(PENDING_KEY),
        }
    }
}

/// Name of the record of the schedule named `schedule`.
pub fn config_map_name(schedule: &str) -> String {
    format!("{NAME_PREFIX}{schedule}")
}

/// Reads the schedule's record; empty when there is none.
pub async fn load<C: ClusterApi>(
    cluster: &C,
    schedule: &DigestSchedule,
) -> Result<SentRecord, ClusterError> {
    let namespace = schedule.metadata.namespace.as_deref().unwrap_or_default();
    let name = config_map_name(schedule.metadata.name.as_deref().unwrap_or_default());
    Ok(cluster
        .get::<ConfigMap>(namespace, &name)
        .await?
        .map(|c| SentRecord::from_config_map(&c))
        .unwrap_or_default())
}

/// Replaces the schedule's record with `record`.
pub async fn store<C: ClusterApi>(
    cluster: &C,
    schedule: &DigestSchedule,
    record: &SentRecord,
) -> Result<(), ClusterError> {
    let join = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join("\n");
    let name = schedule.metadata.name.clone().unwrap_or_default();
    let owner = OwnerReference {
        api_version: DigestSchedule::api_version(&()).to_string(),
        kind: DigestSchedule::kind(&()).to_string(),
        name: name.clone(),
        uid: schedule.metadata.uid.clone().unwrap_or_default(),
        controller: Some(false),
        block_owner_deletion: Some(false),
    };
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(config_map_name(&name)),
            namespace: schedule.metadata.namespace.clone(),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "alertops".to_string(),
                ),
                (
                    "app.kubernetes.io/component".to_string(),
                    "digest-sent".to_string(),
                ),
            ])),
            owner_references: schedule.metadata.uid.is_some().then(|| vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            (SENT_KEY.to_string(), join(&record.sent)),
            (PENDING_KEY.to_string(), join(&record.pending)),
        ])),
        ..ConfigMap::default()
    };
    cluster.apply(&config_map).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::MemoryCluster;

    #[tokio::test]
    async fn a_record_reads_back_and_only_sent_counts() {
        let cluster = MemoryCluster::new();
        cluster
            .apply_manifest(serde_json::json!({
                "apiVersion": "alertops.dev/v1alpha1", "kind": "DigestSchedule",
                "metadata": {"name": "daily", "namespace": "team"},
                "spec": {"schedule": "0 8 * * *", "sources": [{"alarmPolicy": "p"}],
                         "email": {"from": "a@example.com", "to": ["b@example.com"]}},
            }))
            .unwrap();
        let schedule: DigestSchedule = cluster.object("team", "daily").unwrap().unwrap();
        assert_eq!(
            load(&cluster, &schedule).await.unwrap(),
            SentRecord::default()
        );
        let record = SentRecord {
            sent: [fingerprint("m-1")].into(),
            pending: [fingerprint("m-2")].into(),
        };
        store(&cluster, &schedule, &record).await.unwrap();
        let read = load(&cluster, &schedule).await.unwrap();
        assert_eq!(read, record);
        assert!(read.was_sent("m-1"));
        assert!(
            !read.was_sent("m-2"),
            "pending: SES may not have accepted it"
        );
        assert!(!read.was_sent("m-3"));
        assert_eq!(fingerprint("m-1").len(), 16);
    }
}
