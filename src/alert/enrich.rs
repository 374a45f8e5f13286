//! Enrichment: the tags and facts an alert's own message lacks, read from AWS — the EMR
//! cluster's name, `Team`/`Feature` tags and failure reason, the alarm's tags — with a cache so a
//! burst of alerts about one resource costs one call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::aws::cloudwatch::CloudWatchAlarms;
use crate::aws::{AwsClients, AwsError, emr};
use crate::resources::{AlertKind, Tags};

use super::model::Alert;

/// What enrichment learnt about one resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceFacts {
    /// The resource's tags.
    pub tags: Tags,
    /// Extra details to show (e.g. the EMR cluster's name and failure reason).
    pub details: Vec<(String, String)>,
}

/// Reads and caches resource facts.
pub struct Enricher {
    aws: AwsClients,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Option<ResourceFacts>)>>,
}

/// Entries kept at most; the oldest go first. Bounded so a long-running consumer stays small.
const MAX_CACHE_ENTRIES: usize = 4096;

impl Enricher {
    /// An enricher whose cache entries live for `ttl`.
    pub fn new(aws: AwsClients, ttl: Duration) -> Self {
        Enricher {
            aws,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Adds the resource's tags and facts to the alert. A resource that no longer exists leaves
    /// the alert as it is; other AWS errors are returned so the message is retried later rather
    /// than routed without the tags routing depends on.
    pub async fn enrich(&self, alert: &mut Alert) -> Result<(), AwsError> {
        let Some(key) = cache_key(alert) else {
            return Ok(());
        };
        let facts = match self.cached(&key) {
            Some(facts) => facts,
            None => {
                let facts = self.fetch(alert).await?;
                self.store(key, facts.clone());
                facts
            }
        };
        if let Some(facts) = facts {
            for (label, value) in facts.details {
                if alert.detail(&label).is_none() {
                    alert.push_detail(&label, value);
                }
            }
            alert.apply_tags(facts.tags);
        }
        Ok(())
    }

    fn cached(&self, key: &str) -> Option<Option<ResourceFacts>> {
        let cache = self.cache.lock().expect("enrichment cache");
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, facts)| facts.clone())
    }

    fn store(&self, key: String, facts: Option<ResourceFacts>) {
        let mut cache = self.cache.lock().expect("enrichment cache");
        if cache.len() >= MAX_CACHE_ENTRIES {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= MAX_CACHE_ENTRIES
                && let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(key, (Instant::now(), facts));
    }

    async fn fetch(&self, alert: &Alert) -> Result<Option<ResourceFacts>, AwsError> {
        match alert.kind {
            AlertKind::EmrClusterStateChange => {
                self.emr_facts(alert.resource.as_deref().unwrap_or_default())
                    .await
            }
            AlertKind::CloudWatchAlarm => match alarm_arn(alert) {
                Some(arn) => self.alarm_facts(&arn).await,
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }

    async fn emr_facts(&self, cluster_id: &str) -> Result<Option<ResourceFacts>, AwsError> {
        let cluster = match emr::describe_cluster(&self.aws, cluster_id).await {
            Ok(Some(cluster)) => cluster,
            Ok(None) => return Ok(None),
            // EMR answers InvalidRequestException for unknown cluster ids.
            Err(e) if e.is_terminal() => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut facts = ResourceFacts {
            tags: emr::cluster_tags(&cluster),
            details: Vec::new(),
        };
        if let Some(name) = cluster.name() {
            facts
                .details
                .push(("Cluster name".into(), name.to_string()));
        }
        if let Some(reason) = cluster.status().and_then(|s| s.state_change_reason()) {
            if let Some(code) = reason.code() {
                facts
                    .details
                    .push(("Reason code".into(), code.as_str().to_string()));
            }
            if let Some(message) = reason.message() {
                facts
                    .details
                    .push(("Failure reason".into(), message.to_string()));
            }
        }
        if let Some(label) = cluster.release_label() {
            facts.details.push(("Release".into(), label.to_string()));
        }
        Ok(Some(facts))
    }

    async fn alarm_facts(&self, arn: &str) -> Result<Option<ResourceFacts>, AwsError> {
        match self.aws.alarm_tags(arn).await {
            Ok(tags) => Ok(Some(ResourceFacts {
                tags,
                details: Vec::new(),
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn cache_key(alert: &Alert) -> Option<String> {
    match alert.kind {
        AlertKind::EmrClusterStateChange => alert.resource.as_ref().map(|id| format!("emr/{id}")),
        AlertKind::CloudWatchAlarm => alarm_arn(alert),
        _ => None,
    }
}

/// The alarm's ARN, rebuilt from the notification's account, region and name.
fn alarm_arn(alert: &Alert) -> Option<String> {
    Some(format!(
        "arn:aws:cloudwatch:{}:{}:alarm:{}",
        alert.region.as_deref()?,
        alert.account.as_deref()?,
        alert.resource.as_deref()?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::model::Fingerprint;
    use crate::resources::AlertState;

    #[test]
    fn cache_keys_identify_the_resource() {
        let mut alert = Alert::new(
            AlertKind::CloudWatchAlarm,
            AlertState::Firing,
            Fingerprint::from_raw("x"),
            "t".into(),
        );
        assert_eq!(cache_key(&alert), None, "no ARN without account and region");
        alert.region = Some("us-east-1".into());
        alert.account = Some("123456789012".into());
        alert.resource = Some("alertops/c/ns/p/a".into());
        assert_eq!(
            cache_key(&alert).as_deref(),
            Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:alertops/c/ns/p/a")
        );
        let mut emr = Alert::new(
            AlertKind::EmrClusterStateChange,
            AlertState::Firing,
            Fingerprint::from_raw("y"),
            "t".into(),
        );
        emr.resource = Some("j-ABC".into());
        assert_eq!(cache_key(&emr).as_deref(), Some("emr/j-ABC"));
    }
}
