//! The retry rules both the interaction endpoint and the retry Job apply: who may retry, which
//! clusters, and how many attempts one original cluster gets.
//!
//! Everything is judged on what AWS says now, never on the Slack message (anyone who can publish
//! to a topic can write "TERMINATED_WITH_ERRORS" in one):
//! - only a cluster whose live state is `TERMINATED_WITH_ERRORS` is retried ([`check_failed`]);
//! - only by a route whose tag match its live tags satisfy ([`check_route_owns`]);
//! - the attempt count lives in tags on the clusters themselves, so it survives restarts, Job
//!   deletion and namespaces: an attempt that already has a cluster in AWS is never started again,
//!   and the cap counts the attempts found there ([`check_chain`]).

use crate::alert::matching::tags_match;
use crate::alert::{EMR_FAILED_STATE, ORIGINAL_CLUSTER_TAG, RETRY_ATTEMPT_TAG};
use crate::resources::alert_route::RetryPolicy;
use crate::resources::{AlertRoute, Tags};

/// Why a retry may not go ahead; the text is shown to the person who pressed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// The route does not offer retries (any more).
    #[error("retries are not enabled on AlertRoute {route}")]
    NotEnabled {
        /// `namespace/name` of the route.
        route: String,
    },
    /// The user is neither an allowed user nor in an allowed user group.
    #[error("you are not on the retry allow-list of AlertRoute {route}")]
    NotAllowed {
        /// `namespace/name` of the route.
        route: String,
    },
    /// Every attempt has been used.
    #[error("all {max_attempts} retries of cluster {original_cluster_id} have been used")]
    AttemptsUsedUp {
        /// The attempt that was asked for.
        attempt: u32,
        /// The route's cap.
        max_attempts: u32,
        /// The cluster the chain started from.
        original_cluster_id: String,
    },
    /// EMR does not report the cluster as failed (whatever the message said).
    #[error(
        "cluster {cluster_id} is {state} in EMR, not {EMR_FAILED_STATE}: only a failed cluster is retried"
    )]
    NotFailed {
        /// The cluster.
        cluster_id: String,
        /// Its live state.
        state: String,
    },
    /// The cluster's live tags do not satisfy the route's tag match.
    #[error(
        "the tags of cluster {cluster_id} do not match AlertRoute {route}: a route retries only the clusters it routes"
    )]
    NotRouted {
        /// The cluster.
        cluster_id: String,
        /// `namespace/name` of the route.
        route: String,
    },
    /// A cluster for this attempt (or a later one) already exists in AWS.
    #[error(
        "retry {attempt} of cluster {original_cluster_id} already exists as cluster {cluster_id}; nothing more was started"
    )]
    AlreadyStarted {
        /// The attempt of the existing cluster.
        attempt: u32,
        /// The cluster the chain started from.
        original_cluster_id: String,
        /// The existing retry.
        cluster_id: String,
    },
}

/// Where a failed cluster stands in its chain of retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptInfo {
    /// The number the next retry gets: the failed cluster's attempt tag plus one (1 when the failed
    /// cluster is an original).
    pub next_attempt: u32,
    /// The cluster the chain started from: the failed cluster's original-cluster tag, or itself.
    pub original_cluster_id: String,
}

/// Why the attempt tags of a cluster cannot be read.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("tag {RETRY_ATTEMPT_TAG} of cluster {cluster_id} is {value:?}, not a small whole number")]
pub struct BadAttemptTag {
    /// The cluster.
    pub cluster_id: String,
    /// The tag's value.
    pub value: String,
}

/// The next attempt of `cluster_id`, from its tags.
pub fn attempt_info(cluster_id: &str, tags: &Tags) -> Result<AttemptInfo, BadAttemptTag> {
    let done = match tags.get(RETRY_ATTEMPT_TAG) {
        None => 0,
        Some(value) => value
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n < 1000)
            .ok_or_else(|| BadAttemptTag {
                cluster_id: cluster_id.to_string(),
                value: value.clone(),
            })?,
    };
    let original_cluster_id = tags
        .get(ORIGINAL_CLUSTER_TAG)
        .filter(|id| !id.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| cluster_id.to_string());
    Ok(AttemptInfo {
        next_attempt: done + 1,
        original_cluster_id,
    })
}

/// The route's retry policy when it is enabled.
pub fn enabled_policy(route: &AlertRoute) -> Result<&RetryPolicy, Refusal> {
    route
        .spec
        .actions
        .as_ref()
        .and_then(|a| a.retry.as_ref())
        .filter(|p| p.enabled)
        .ok_or_else(|| Refusal::NotEnabled {
            route: route_label(route),
        })
}

/// The route's cap as a count (the schema keeps it within 1..=10).
pub fn max_attempts(policy: &RetryPolicy) -> u32 {
    u32::try_from(policy.max_attempts).unwrap_or(0)
}

/// Attempt `attempt` is allowed when it does not exceed the cap.
pub fn check_attempt(
    policy: &RetryPolicy,
    attempt: u32,
    original_cluster_id: &str,
) -> Result<(), Refusal> {
    let max_attempts = max_attempts(policy);
    if attempt > max_attempts {
        return Err(Refusal::AttemptsUsedUp {
            attempt,
            max_attempts,
            original_cluster_id: original_cluster_id.to_string(),
        });
    }
    Ok(())
}

/// Only a cluster whose live state is `TERMINATED_WITH_ERRORS` may be retried.
pub fn check_failed(cluster_id: &str, state: Option<&str>) -> Result<(), Refusal> {
    match state {
        Some(EMR_FAILED_STATE) => Ok(()),
        other => Err(Refusal::NotFailed {
            cluster_id: cluster_id.to_string(),
            state: other.unwrap_or("in no reported state").to_string(),
        }),
    }
}

/// A route may retry only a cluster whose live tags satisfy its tag match: a route subscribed to a
/// shared topic must not start copies of another team's clusters.
pub fn check_route_owns(route: &AlertRoute, cluster_id: &str, tags: &Tags) -> Result<(), Refusal> {
    if tags_match(&route.spec.match_.tags, tags) {
        Ok(())
    } else {
        Err(Refusal::NotRouted {
            cluster_id: cluster_id.to_string(),
            route: route_label(route),
        })
    }
}

/// A retry of an original cluster found in AWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainCluster {
    /// The retry's cluster id.
    pub cluster_id: String,
    /// Its attempt tag.
    pub attempt: u32,
}

/// The retries of `original_cluster_id` among `clusters` (id and tags): those tagged with it as
/// their original. A cluster so tagged whose attempt tag is unreadable is an error: it cannot be
/// counted, and the cap must not be guessed.
pub fn chain_of<'a>(
    original_cluster_id: &str,
    clusters: impl IntoIterator<Item = (&'a str, &'a Tags)>,
) -> Result<Vec<ChainCluster>, BadAttemptTag> {
    let mut chain = Vec::new();
    for (cluster_id, tags) in clusters {
        if tags.get(ORIGINAL_CLUSTER_TAG).map(String::as_str) != Some(original_cluster_id) {
            continue;
        }
        let info = attempt_info(cluster_id, tags)?;
        // attempt_info gives the next attempt; this cluster's own is the one before.
        let attempt = info.next_attempt - 1;
        if attempt > 0 {
            chain.push(ChainCluster {
                cluster_id: cluster_id.to_string(),
                attempt,
            });
        }
    }
    Ok(chain)
}

/// Attempt `info.next_attempt` may start only when AWS holds no cluster for it or a later attempt
/// (a replayed click, a second namespace, a deleted Job, an old message of an earlier cluster of
/// the chain), and when it is within the cap. Together these count the cap from AWS: an attempt
/// number is used once a cluster carries it, no number is used twice, and none above the cap is
/// started, so AWS never holds more than `maxAttempts` retries of one original cluster.
pub fn check_chain(
    policy: &RetryPolicy,
    info: &AttemptInfo,
    chain: &[ChainCluster],
) -> Result<(), Refusal> {
    if let Some(existing) = chain
        .iter()
        .filter(|c| c.attempt >= info.next_attempt)
        .min_by(|a, b| {
            a.attempt
                .cmp(&b.attempt)
                .then(a.cluster_id.cmp(&b.cluster_id))
        })
    {
        return Err(Refusal::AlreadyStarted {
            attempt: existing.attempt,
            original_cluster_id: info.original_cluster_id.clone(),
            cluster_id: existing.cluster_id.clone(),
        });
    }
    check_attempt(policy, info.next_attempt, &info.original_cluster_id)
}

/// Whether `user_id` is allowed by name; group membership is looked up by the caller.
pub fn user_listed(policy: &RetryPolicy, user_id: &str) -> bool {
    policy.allowed_users.iter().any(|u| u == user_id)
}

/// `namespace/name` of a route, for messages.
pub fn route_label(route: &AlertRoute) -> String {
    format!(
        "{}/{}",
        route.metadata.namespace.as_deref().unwrap_or_default(),
        route.metadata.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn policy(max: i32) -> RetryPolicy {
        RetryPolicy {
            enabled: true,
            max_attempts: max,
            allowed_users: vec!["U1".into()],
            allowed_user_groups: vec![],
        }
    }

    #[test]
    fn attempts_count_from_the_tags() {
        assert_eq!(
            attempt_info("j-1", &Tags::new()).unwrap(),
            AttemptInfo {
                next_attempt: 1,
                original_cluster_id: "j-1".into()
            }
        );
        assert_eq!(
            attempt_info(
                "j-3",
                &tags(&[(RETRY_ATTEMPT_TAG, "2"), (ORIGINAL_CLUSTER_TAG, "j-1")])
            )
            .unwrap(),
            AttemptInfo {
                next_attempt: 3,
                original_cluster_id: "j-1".into()
            }
        );
        assert!(attempt_info("j-3", &tags(&[(RETRY_ATTEMPT_TAG, "two")])).is_err());
        assert!(attempt_info("j-3", &tags(&[(RETRY_ATTEMPT_TAG, "-1")])).is_err());
    }

    #[test]
    fn the_cap_allows_up_to_max_attempts() {
        assert_eq!(check_attempt(&policy(2), 1, "j-1"), Ok(()));
        assert_eq!(check_attempt(&policy(2), 2, "j-1"), Ok(()));
        let refusal = check_attempt(&policy(2), 3, "j-1").unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "all 2 retries of cluster j-1 have been used"
        );
    }

    fn route(tags: Vec<crate::resources::TagRequirement>) -> AlertRoute {
        let mut route = AlertRoute::new(
            "emr",
            serde_json::from_value(serde_json::json!({
                "sources": [{"alarmPolicy": "emr"}],
                "slack": {"channel": "C1"},
            }))
            .unwrap(),
        );
        route.metadata.namespace = Some("data".into());
        route.spec.match_.tags = tags;
        route
    }

    #[test]
    fn only_a_live_failed_cluster_is_retried() {
        assert_eq!(check_failed("j-1", Some("TERMINATED_WITH_ERRORS")), Ok(()));
        for state in [Some("TERMINATED"), Some("WAITING"), Some("RUNNING"), None] {
            let refusal = check_failed("j-1", state).unwrap_err();
            assert!(
                matches!(&refusal, Refusal::NotFailed { cluster_id, .. } if cluster_id == "j-1"),
                "{refusal:?}"
            );
        }
        assert_eq!(
            check_failed("j-1", Some("TERMINATED"))
                .unwrap_err()
                .to_string(),
            "cluster j-1 is TERMINATED in EMR, not TERMINATED_WITH_ERRORS: only a failed cluster is retried"
        );
    }

    #[test]
    fn a_route_retries_only_clusters_its_tag_match_takes() {
        use crate::resources::{TagOperator, TagRequirement};
        let data_only = route(vec![TagRequirement {
            key: "Team".into(),
            operator: TagOperator::In,
            values: vec!["data".into()],
        }]);
        assert_eq!(
            check_route_owns(&data_only, "j-1", &tags(&[("Team", "data")])),
            Ok(())
        );
        let refusal = check_route_owns(&data_only, "j-2", &tags(&[("Team", "web")])).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "the tags of cluster j-2 do not match AlertRoute data/emr: a route retries only the clusters it routes"
        );
        assert!(check_route_owns(&data_only, "j-3", &Tags::new()).is_err());
        assert_eq!(
            check_route_owns(&route(vec![]), "j-3", &Tags::new()),
            Ok(()),
            "a route without tag requirements takes every cluster"
        );
    }

    fn chain_tags(original: &str, attempt: &str) -> Tags {
        tags(&[
            (ORIGINAL_CLUSTER_TAG, original),
            (RETRY_ATTEMPT_TAG, attempt),
        ])
    }

    #[test]
    fn the_chain_is_the_clusters_tagged_with_the_original() {
        let r1 = chain_tags("j-O", "1");
        let other = chain_tags("j-X", "1");
        let plain = tags(&[("Team", "data")]);
        let chain = chain_of("j-O", [("j-R1", &r1), ("j-X1", &other), ("j-O", &plain)]).unwrap();
        assert_eq!(
            chain,
            vec![ChainCluster {
                cluster_id: "j-R1".into(),
                attempt: 1
            }]
        );
        let bad = chain_tags("j-O", "many");
        assert!(chain_of("j-O", [("j-R1", &bad)]).is_err());
    }

    fn info(next: u32) -> AttemptInfo {
        AttemptInfo {
            next_attempt: next,
            original_cluster_id: "j-O".into(),
        }
    }

    fn retry(id: &str, attempt: u32) -> ChainCluster {
        ChainCluster {
            cluster_id: id.into(),
            attempt,
        }
    }

    #[test]
    fn an_attempt_that_exists_in_aws_is_not_started_again() {
        assert_eq!(check_chain(&policy(3), &info(1), &[]), Ok(()));
        assert_eq!(
            check_chain(&policy(3), &info(1), &[retry("j-R1", 1)]),
            Err(Refusal::AlreadyStarted {
                attempt: 1,
                original_cluster_id: "j-O".into(),
                cluster_id: "j-R1".into()
            })
        );
        // An old message of the original, clicked after the chain moved on.
        assert!(matches!(
            check_chain(&policy(3), &info(1), &[retry("j-R2", 2)]),
            Err(Refusal::AlreadyStarted { attempt: 2, .. })
        ));
        assert_eq!(
            check_chain(&policy(3), &info(2), &[retry("j-R1", 1)]),
            Ok(())
        );
    }

    #[test]
    fn the_cap_counts_the_attempts_found_in_aws() {
        // The original's message clicked again after its Jobs are gone: its own tags say attempt 1
        // is due, AWS says both attempts of the cap exist.
        let found = [retry("j-R1", 1), retry("j-R2", 2)];
        assert!(matches!(
            check_chain(&policy(2), &info(1), &found),
            Err(Refusal::AlreadyStarted { attempt: 1, .. })
        ));
        assert!(matches!(
            check_chain(&policy(2), &info(3), &found),
            Err(Refusal::AttemptsUsedUp {
                max_attempts: 2,
                ..
            })
        ));
        assert_eq!(check_chain(&policy(3), &info(3), &found), Ok(()));
    }

    #[test]
    fn users_are_listed_by_id() {
        assert!(user_listed(&policy(1), "U1"));
        assert!(!user_listed(&policy(1), "U2"));
    }
}
