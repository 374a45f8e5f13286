//! The retry rules both the interaction endpoint and the retry Job apply: who may retry, and how
//! many attempts one original cluster gets. The attempt count lives in tags on the clusters
//! themselves, so it survives restarts and anyone can read it in AWS.

use crate::alert::{ORIGINAL_CLUSTER_TAG, RETRY_ATTEMPT_TAG};
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

    #[test]
    fn users_are_listed_by_id() {
        assert!(user_listed(&policy(1), "U1"));
        assert!(!user_listed(&policy(1), "U2"));
    }
}
