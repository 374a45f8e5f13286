//! Enrichment: the tags and facts an alert's own message lacks, read from AWS — the EMR
//! cluster's name, `Team`/`Feature` tags and failure reason, the alarm's tags — with a cache so a
//! burst of alerts about one resource costs one call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::aws::cloudwatch::CloudWatchAlarms;
use crate::aws::{AwsClients, AwsError, AwsErrorKind, emr};
use crate::resources::{AlertKind, AlertMatch, Tags};

use super::matching::matches;

use super::model::Alert;

/// What enrichment learnt about one resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceFacts {
    /// The resource's tags.
    pub tags: Tags,
    /// Extra details to show (e.g. the EMR cluster's name and failure reason).
    pub details: Vec<(String, String)>,
}

/// What enrichment could not learn, and why: a permanent AWS refusal (the consumer's role lacks
/// the permission, or AWS rejects the request). The alert is delivered without those facts and
/// the post says so, rather than waiting in the queue for a permission nobody is granting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingFacts {
    /// What is missing, for a person (`the EMR cluster's tags, name and failure reason`).
    pub what: &'static str,
    /// The AWS operation that was refused.
    pub operation: String,
    /// AWS's error code (or the kind of error when AWS gave none).
    pub code: String,
}

impl MissingFacts {
    /// Label of the detail added to the alert.
    pub const LABEL: &'static str = "Not enriched";

    /// The detail's text: what is missing, the refused call, and the consequence for routing.
    pub fn describe(&self) -> String {
        format!(
            "{} could not be read ({} failed with {}); routing by tags could not use them",
            self.what, self.operation, self.code
        )
    }
}

/// The outcome of a successful [`Enricher::enrich`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Enrichment {
    /// Facts that could not be read for good; `None` when enrichment was complete (or the
    /// resource no longer exists).
    pub missing: Option<MissingFacts>,
}

impl Enrichment {
    /// Whether the alert lacks facts it should have (its tags in particular).
    pub fn is_incomplete(&self) -> bool {
        self.missing.is_some()
    }

    /// Whether `m` takes the alert. Without its tags, tag requirements cannot be decided: the
    /// alert is taken if everything else matches, since a duplicate in a neighbouring route's
    /// channel is better than an alert nobody sees.
    pub fn accepts(&self, m: &AlertMatch, alert: &Alert) -> bool {
        matches(m, alert)
            || (self.is_incomplete()
                && !m.tags.is_empty()
                && matches(
                    &AlertMatch {
                        tags: Vec::new(),
                        ..m.clone()
                    },
                    alert,
                ))
    }
}

/// What a look-up found, as cached.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Lookup {
    /// The resource's facts.
    Found(ResourceFacts),
    /// The resource no longer exists (or cannot be named): the alert stays as it is.
    Absent,
    /// AWS refused for good; cached too, so that a burst does not repeat the refused call.
    Refused(MissingFacts),
}

/// How an AWS error reading facts is handled.
#[derive(Debug)]
enum Refusal {
    /// The resource is gone: nothing to add.
    Absent,
    /// Permanent: deliver without the facts.
    Permanent(MissingFacts),
    /// Transient (throttling, 5xx, no answer): retry the message later.
    Transient(AwsError),
}

/// Classifies an error of `operation` reading `what`. Not found is absence; access denied and
/// invalid requests are permanent (a permission or the request must change, which retrying the
/// message cannot bring about); everything else is transient.
fn classify(what: &'static str, error: AwsError) -> Refusal {
    match error.kind() {
        AwsErrorKind::NotFound => Refusal::Absent,
        AwsErrorKind::AccessDenied | AwsErrorKind::InvalidRequest => {
            Refusal::Permanent(MissingFacts {
                what,
                operation: error.operation().to_string(),
                code: error
                    .code()
                    .map(str::to_string)
                    .unwrap_or_else(|| error.kind().as_str().to_string()),
            })
        }
        AwsErrorKind::Throttled | AwsErrorKind::Service | AwsErrorKind::Dispatch => {
            Refusal::Transient(error)
        }
    }
}

const EMR_FACTS: &str = "the EMR cluster's tags, name and failure reason";
const ALARM_FACTS: &str = "the alarm's tags";

/// Reads and caches resource facts.
pub struct Enricher {
    aws: AwsClients,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Lookup)>>,
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
    /// the alert as it is. A permanent refusal (access denied, invalid request) leaves it
    /// without the facts, adds a [`MissingFacts::LABEL`] detail saying what is missing and why,
    /// and is reported in the result. Transient AWS errors are returned, so the message is
    /// retried later rather than routed without the tags routing depends on.
    pub async fn enrich(&self, alert: &mut Alert) -> Result<Enrichment, AwsError> {
        let Some(key) = cache_key(alert) else {
            return Ok(Enrichment::default());
        };
        let lookup = match self.cached(&key) {
            Some(lookup) => lookup,
            None => {
                let lookup = self.fetch(alert).await?;
                self.store(key, lookup.clone());
                lookup
            }
        };
        match lookup {
            Lookup::Found(facts) => {
                for (label, value) in facts.details {
                    if alert.detail(&label).is_none() {
                        alert.push_detail(&label, value);
                    }
                }
                alert.apply_tags(facts.tags);
                Ok(Enrichment::default())
            }
            Lookup::Absent => Ok(Enrichment::default()),
            Lookup::Refused(missing) => {
                if alert.detail(MissingFacts::LABEL).is_none() {
                    alert.push_detail(MissingFacts::LABEL, missing.describe());
                }
                Ok(Enrichment {
                    missing: Some(missing),
                })
            }
        }
    }

    fn cached(&self, key: &str) -> Option<Lookup> {
        let cache = self.cache.lock().expect("enrichment cache");
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, facts)| facts.clone())
    }

    fn store(&self, key: String, facts: Lookup) {
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

    async fn fetch(&self, alert: &Alert) -> Result<Lookup, AwsError> {
        let (what, result) = match alert.kind {
            AlertKind::EmrClusterStateChange => (
                EMR_FACTS,
                self.emr_facts(alert.resource.as_deref().unwrap_or_default())
                    .await,
            ),
            AlertKind::CloudWatchAlarm => match alarm_arn(alert) {
                Some(arn) => (ALARM_FACTS, self.alarm_facts(&arn).await),
                None => return Ok(Lookup::Absent),
            },
            _ => return Ok(Lookup::Absent),
        };
        match result {
            Ok(Some(facts)) => Ok(Lookup::Found(facts)),
            Ok(None) => Ok(Lookup::Absent),
            Err(error) => match classify(what, error) {
                Refusal::Absent => Ok(Lookup::Absent),
                Refusal::Permanent(missing) => Ok(Lookup::Refused(missing)),
                Refusal::Transient(error) => Err(error),
            },
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

    fn error(code: &str, status: u16) -> AwsError {
        AwsError::new(
            AwsErrorKind::classify(Some(code), Some(status)),
            "DescribeCluster",
            code,
            "refused",
        )
    }

    /// Issue 11 item 4: only transient errors hold an alert back.
    #[test]
    fn permanent_refusals_are_told_apart_from_transient_errors() {
        match classify(EMR_FACTS, error("AccessDeniedException", 400)) {
            Refusal::Permanent(missing) => {
                assert_eq!(missing.operation, "DescribeCluster");
                assert_eq!(missing.code, "AccessDeniedException");
                let text = missing.describe();
                assert!(text.contains("EMR cluster's tags"), "{text}");
                assert!(text.contains("DescribeCluster failed with AccessDeniedException"));
            }
            other => panic!("access denied is permanent: {other:?}"),
        }
        assert!(matches!(
            classify(ALARM_FACTS, error("ValidationError", 400)),
            Refusal::Permanent(_)
        ));
        assert!(matches!(
            classify(ALARM_FACTS, error("ResourceNotFound", 404)),
            Refusal::Absent
        ));
        for transient in [
            error("ThrottlingException", 400),
            error("InternalFailure", 500),
        ] {
            assert!(matches!(
                classify(ALARM_FACTS, transient),
                Refusal::Transient(_)
            ));
        }
    }

    /// A route matching on tags takes an alert whose tags could not be read (if the rest
    /// matches) rather than dropping it; with its tags known, the tags decide.
    #[test]
    fn tag_requirements_cannot_drop_an_alert_without_tags() {
        use crate::resources::{AlertState, TagOperator, TagRequirement};
        let m = AlertMatch {
            kinds: vec![AlertKind::EmrClusterStateChange],
            tags: vec![TagRequirement {
                key: "Team".into(),
                operator: TagOperator::In,
                values: vec!["data".into()],
            }],
            ..AlertMatch::default()
        };
        let emr = Alert::new(
            AlertKind::EmrClusterStateChange,
            AlertState::Firing,
            Fingerprint::from_raw("e"),
            "t".into(),
        );
        let refused = Enrichment {
            missing: Some(MissingFacts {
                what: EMR_FACTS,
                operation: "DescribeCluster".into(),
                code: "AccessDeniedException".into(),
            }),
        };
        assert!(
            !Enrichment::default().accepts(&m, &emr),
            "tags known: no Team tag"
        );
        assert!(refused.accepts(&m, &emr), "tags unknown: taken");
        let alarm = Alert::new(
            AlertKind::CloudWatchAlarm,
            AlertState::Firing,
            Fingerprint::from_raw("a"),
            "t".into(),
        );
        assert!(
            !refused.accepts(&m, &alarm),
            "the rest of the match still holds"
        );
    }

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
