//! Deterministic AWS names and ownership tags.
//!
//! Names must not collide across namespaces, nor across two Kubernetes clusters sharing an AWS
//! account (the cluster id), and must be recomputable from the resource alone so that a lost
//! status never orphans anything. Kubernetes names cannot contain `/` or `_`, which makes those
//! characters unambiguous separators; where a service forbids them or limits length, a hash of the
//! exact identity keeps names unique.

use sha2::{Digest, Sha256};

use crate::resources::Tags;

/// Prefix of every EventBridge rule alertops names (of every cluster: rule names are too short
/// for the cluster id, which is inside the policy hash).
pub const RULE_PREFIX: &str = "ao.";

/// Prefix of every CloudWatch alarm of one cluster: the controller's inventory lists them all
/// with it, once per resync.
pub fn cluster_alarm_prefix(cluster_id: &str) -> String {
    format!("alertops/{cluster_id}/")
}

/// Tag naming the Kubernetes cluster (the operator's `--cluster-id`) that owns an AWS resource.
pub const TAG_CLUSTER: &str = "alertops.dev/cluster";
/// Tag naming the owning resource: `Kind/namespace/name`.
pub const TAG_OWNER: &str = "alertops.dev/owner";

/// Maximum length of a CloudWatch alarm name.
const MAX_ALARM_NAME: usize = 255;
/// Maximum length of an EventBridge rule name.
const MAX_RULE_NAME: usize = 64;
/// Maximum length of an SNS topic or SQS queue name.
const MAX_TOPIC_NAME: usize = 256;
const MAX_QUEUE_NAME: usize = 80;

/// The identity of one alertops resource in one cluster, from which every AWS name derives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerIdentity {
    /// The operator's cluster id.
    pub cluster_id: String,
    /// Resource kind, e.g. `AlarmPolicy`.
    pub kind: &'static str,
    /// Namespace of the resource.
    pub namespace: String,
    /// Name of the resource.
    pub name: String,
}

impl OwnerIdentity {
    /// Identity of a resource.
    pub fn new(cluster_id: &str, kind: &'static str, namespace: &str, name: &str) -> Self {
        OwnerIdentity {
            cluster_id: cluster_id.to_string(),
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// Value of the owner tag.
    pub fn owner_tag(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    /// The two ownership tags every AWS resource alertops creates carries.
    pub fn ownership_tags(&self) -> Tags {
        Tags::from([
            (TAG_CLUSTER.to_string(), self.cluster_id.clone()),
            (TAG_OWNER.to_string(), self.owner_tag()),
        ])
    }

    /// Whether tags read from AWS mark the resource as owned by this identity.
    pub fn owns(&self, tags: &Tags) -> bool {
        tags.get(TAG_CLUSTER) == Some(&self.cluster_id)
            && tags.get(TAG_OWNER) == Some(&self.owner_tag())
    }

    /// A short, stable hash of the exact identity.
    pub fn hash(&self) -> String {
        short_hash(&format!(
            "{}/{}/{}/{}",
            self.cluster_id, self.kind, self.namespace, self.name
        ))
    }

    /// Prefix shared by every CloudWatch alarm of this policy, so one `DescribeAlarms` page
    /// (100 alarms) lists them, and alarms dropped from the spec are found without a status.
    pub fn alarm_prefix(&self) -> String {
        let fixed = format!(
            "{}{}/",
            cluster_alarm_prefix(&self.cluster_id),
            self.namespace
        );
        // Room for the policy segment when the alarm segment is at its maximum (64).
        let room = MAX_ALARM_NAME.saturating_sub(fixed.len() + 1 + 64 + 1);
        let policy = if self.name.len() <= room {
            self.name.clone()
        } else {
            // The hash keeps truncated names unique; `~` cannot occur in Kubernetes names.
            let keep = room.saturating_sub(13);
            format!("{}~{}", &self.name[..keep], self.hash())
        };
        format!("{fixed}{policy}/")
    }

    /// Name of the CloudWatch alarm for the alarm `alarm` of the spec.
    pub fn alarm_name(&self, alarm: &str) -> String {
        format!("{}{}", self.alarm_prefix(), alarm)
    }

    /// Name of the CloudWatch Logs metric filter of the log alarm `log_alarm` of the spec: the
    /// alarm scheme (metric filter names allow 512 characters but no `:` or `*`, which alarm
    /// names never contain), so the policy's filters in a log group share [`Self::alarm_prefix`]
    /// and that prefix proves they are ours (metric filters have no tags).
    pub fn metric_filter_name(&self, log_alarm: &str) -> String {
        self.alarm_name(log_alarm)
    }

    /// Prefix shared by every EventBridge rule of this policy (rule names allow only
    /// `[.-_A-Za-z0-9]` and 64 characters, so the policy is identified by its hash).
    pub fn rule_prefix(&self) -> String {
        format!("{RULE_PREFIX}{}.", self.hash())
    }

    /// Name of the EventBridge rule for the rule `rule` of the spec.
    pub fn rule_name(&self, rule: &str) -> String {
        let prefix = self.rule_prefix();
        let room = MAX_RULE_NAME - prefix.len();
        if rule.len() <= room {
            format!("{prefix}{rule}")
        } else {
            let keep = room - 13;
            format!("{prefix}{}-{}", &rule[..keep], short_hash(rule))
        }
    }

    /// Name of the SNS topic of this resource: readable, with the hash for uniqueness (dots,
    /// allowed in Kubernetes names but not in SNS, become dashes).
    pub fn topic_name(&self) -> String {
        readable_name(
            &["alertops", &self.cluster_id, &self.namespace, &self.name],
            &self.hash(),
            MAX_TOPIC_NAME,
        )
    }

    /// Name of an SQS queue of this resource; `suffix` distinguishes e.g. the dead-letter queue.
    pub fn queue_name(&self, suffix: &str) -> String {
        let mut name = readable_name(
            &["alertops", &self.cluster_id, &self.namespace, &self.name],
            &self.hash(),
            MAX_QUEUE_NAME - suffix.len(),
        );
        name.push_str(suffix);
        name
    }
}

/// Joins parts with `_`, replaces characters SNS and SQS forbid, trims to fit, and appends `hash`.
fn readable_name(parts: &[&str], hash: &str, max: usize) -> String {
    let joined: String = parts
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let room = max - hash.len() - 1;
    let readable = if joined.len() > room {
        &joined[..room]
    } else {
        &joined
    };
    format!("{readable}_{hash}")
}

/// Workload names stay within 52 characters: a CronJob's Jobs append 11, and pods more.
pub const MAX_WORKLOAD_NAME: usize = 52;
/// Label values are at most 63 characters.
pub const MAX_LABEL_VALUE: usize = 63;

/// Name of the consumer Deployment and ServiceAccount of a route.
pub fn consumer_name(route: &str) -> String {
    workload_name(route, "-consumer")
}

/// Name of the Secret holding a route's own button key, which its consumer reads: the
/// consumer's name (at most 52 characters) and `-action-key`, well within a Secret's 253.
pub fn action_key_name(route: &str) -> String {
    format!("{}-action-key", consumer_name(route))
}

/// Name of the CronJob and ServiceAccount of a digest schedule.
pub fn digest_name(schedule: &str) -> String {
    workload_name(schedule, "-digest")
}

/// `<base><suffix>`, or a truncated base with a hash of the whole base when too long.
fn workload_name(base: &str, suffix: &str) -> String {
    if base.len() + suffix.len() <= MAX_WORKLOAD_NAME {
        return format!("{base}{suffix}");
    }
    let hash = short_hash(base);
    let keep = MAX_WORKLOAD_NAME - suffix.len() - hash.len() - 1;
    let head = base[..keep].trim_end_matches(['-', '.']);
    format!("{head}-{hash}{suffix}")
}

/// A label value naming a resource: the name itself, or a truncated name with its hash.
pub fn instance_label(name: &str) -> String {
    if name.len() <= MAX_LABEL_VALUE {
        return name.to_string();
    }
    let hash = short_hash(name);
    let keep = MAX_LABEL_VALUE - hash.len() - 1;
    format!("{}-{hash}", name[..keep].trim_end_matches(['-', '.', '_']))
}

/// First 12 hex digits of the SHA-256 of `input`: 48 bits, ample for names that also carry a
/// readable prefix.
pub fn short_hash(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    hex::encode(&digest[..6])
}

/// A stable digest of a tag set, recorded in status so tags are read back only when they change.
pub fn tags_digest(tags: &Tags) -> String {
    // A BTreeMap serialises in key order: canonical JSON.
    short_hash(&serde_json::to_string(tags).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(cluster: &str, ns: &str, name: &str) -> OwnerIdentity {
        OwnerIdentity::new(cluster, "AlarmPolicy", ns, name)
    }

    #[test]
    fn alarm_names_are_readable_and_scoped_by_cluster_and_namespace() {
        let a = id("prod-eks", "data", "emr");
        assert_eq!(
            a.alarm_name("failures"),
            "alertops/prod-eks/data/emr/failures"
        );
        assert_ne!(
            a.alarm_name("x"),
            id("stage-eks", "data", "emr").alarm_name("x")
        );
        assert_ne!(
            a.alarm_name("x"),
            id("prod-eks", "data2", "emr").alarm_name("x")
        );
        assert!(a.alarm_name("x").starts_with(&a.alarm_prefix()));
    }

    #[test]
    fn a_policy_prefix_is_never_the_prefix_of_another_policy() {
        // "emr" must not list the alarms of "emr-2".
        let a = id("c", "ns", "emr").alarm_prefix();
        let b = id("c", "ns", "emr-2").alarm_prefix();
        assert!(!b.starts_with(&a));
    }

    #[test]
    fn long_names_fit_aws_limits_and_stay_unique() {
        let long_ns = "n".repeat(63);
        let p1 = id(
            "cluster-id-of-32-characters-long",
            &long_ns,
            &"p".repeat(253),
        );
        let mut p2 = p1.clone();
        p2.name = format!("{}q", "p".repeat(252));
        let alarm = "a".repeat(64);
        assert!(p1.alarm_name(&alarm).len() <= 255);
        assert_ne!(p1.alarm_name(&alarm), p2.alarm_name(&alarm));
        assert!(p1.rule_name(&alarm).len() <= 64);
        assert_ne!(p1.rule_name(&alarm), p2.rule_name(&alarm));
        assert!(p1.topic_name().len() <= 256);
        assert!(p1.queue_name("-dlq").len() <= 80);
        assert!(p1.queue_name("-dlq").ends_with("-dlq"));
    }

    #[test]
    fn rule_names_only_use_allowed_characters() {
        let n = id("c", "ns", "my.policy").rule_name("emr.failed");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)),
            "{n}"
        );
        assert_ne!(
            id("c", "ns", "a").rule_name(&"r".repeat(60)),
            id("c", "ns", "a").rule_name(&format!("{}s", "r".repeat(59)))
        );
    }

    #[test]
    fn topic_names_replace_dots_but_stay_distinct() {
        let a = id("c", "ns", "a.b").topic_name();
        let b = id("c", "ns", "a-b").topic_name();
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)),
            "{a}"
        );
        assert_ne!(a, b);
    }

    #[test]
    fn ownership_requires_both_tags() {
        let a = id("c", "ns", "p");
        let mut tags = a.ownership_tags();
        assert!(a.owns(&tags));
        assert!(!id("other", "ns", "p").owns(&tags));
        tags.remove(TAG_CLUSTER);
        assert!(!a.owns(&tags));
    }

    #[test]
    fn tag_digest_changes_with_any_key_or_value() {
        let t1 = Tags::from([("Team".into(), "a".into())]);
        let t2 = Tags::from([("Team".into(), "b".into())]);
        let t3 = Tags::from([("Team=a".into(), "".into())]);
        assert_ne!(tags_digest(&t1), tags_digest(&t2));
        assert_ne!(tags_digest(&t1), tags_digest(&t3));
        assert_eq!(tags_digest(&t1), tags_digest(&t1.clone()));
    }
}
