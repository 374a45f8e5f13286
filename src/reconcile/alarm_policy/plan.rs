//! What applying an AlarmPolicy will do in AWS, decided from data alone: the desired state, what
//! AWS reports, and what the status recorded. No I/O: [`super::observe`] reads, [`super::execute`]
//! writes, `alertops plan` prints.
//!
//! - The topic: a referenced topic (`existingArn`) is only checked to exist, never modified. Our
//!   own topic is created when absent; one that exists without this policy's ownership tags is
//!   someone else's and blocks the policy (`TopicNotOwned`). Its access policy (compared as
//!   canonical JSON), display name and tags are set where they differ.
//! - An alarm or rule that does not exist is created with its tags (rules also get their target).
//! - One that exists is ours when the status recorded it (we made or verified it) or when it
//!   carries this policy's ownership tags; otherwise it is left alone and reported
//!   (`AlarmNotOwned`, `RuleNotOwned`), never modified or deleted.
//! - Tags are read only where the tag digest the status recorded differs from the desired one
//!   ([`tag_reads`]): a resync of a policy whose tags did not change reads no tags.
//! - A definition is rewritten only when it differs after normalisation; the differing fields are
//!   the reason. Tags are rewritten only where they differ (PutMetricAlarm ignores tags on update).
//! - Alarms and rules under the policy's prefixes that the spec no longer has are deleted when
//!   ours (recorded or tagged).
//! - Each alarm's state, state reason and time of change are recorded from the same listing
//!   ([`record_state`]); a state that differs from the recorded one is an Event
//!   ([`state_transitions`]). State changes write only the status, never AWS.
//! - Composite alarms are planned like alarms (created, updated, kept, adopted, skipped when
//!   someone else's, deleted when dropped) and applied after the alarms their rules name; dropped
//!   composites are deleted before dropped alarms.
//! - Adoption is explicit: with the annotation [`ADOPT_ANNOTATION`] `"true"` on the policy, an
//!   existing alarm, rule or topic of our name without our tags is taken over (our tags added,
//!   what differs rewritten, an `Adopted` Event); without it, it is left alone as above.
//! - Deleting the policy with `deletionPolicy: Delete` removes what is ours: alarms and rules
//!   under its prefixes and the topic it created; `Retain` plans nothing.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::aws::cloudwatch::{
    AlarmDefinition, CompositeDefinition, ObservedAlarm, ObservedComposite,
};
use crate::aws::eventbridge::{ObservedRule, RuleDefinition, RuleTarget};
use crate::aws::log_filters::MetricFilterDefinition;
use crate::aws::tags::TagChanges;
use crate::names::{OwnerIdentity, tags_digest};
use crate::reconcile::outcome::{Blocker, Notice};
use crate::resources::Tags;
use crate::resources::alarm_policy::{
    AlarmPolicyStatus, AlarmState, AlarmStatus, EventRuleStatus, MetricFilterStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::desired::{
    DesiredAlarm, DesiredComposite, DesiredFilter, DesiredPolicy, DesiredRule, DesiredTopic,
    RULE_TARGET_ID, alarm_differences, canonical_policy, composite_differences, filter_differences,
    rule_differences, topic_access_policy,
};

/// Annotation by which an AlarmPolicy opts in to adopting existing AWS resources of its names.
pub const ADOPT_ANNOTATION: &str = "alertops.dev/adopt";

/// What the status recorded of earlier applies: lets a resync skip ownership and tag reads that
/// were already verified.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recorded {
    /// Alarm statuses by CloudWatch alarm name.
    pub alarms: HashMap<String, AlarmStatus>,
    /// Composite alarm statuses by CloudWatch alarm name.
    pub composites: HashMap<String, AlarmStatus>,
    /// Rule statuses by EventBridge rule name.
    pub rules: HashMap<String, EventRuleStatus>,
    /// Metric filter statuses by filter name.
    pub filters: HashMap<String, MetricFilterStatus>,
    /// The ARN of the topic this policy created (a referenced topic is not recorded here).
    pub topic_arn: Option<String>,
}

impl Recorded {
    /// What a status recorded.
    pub fn from_status(status: &AlarmPolicyStatus) -> Recorded {
        Recorded {
            alarms: status
                .alarms
                .iter()
                .map(|a| (a.alarm_name.clone(), a.clone()))
                .collect(),
            composites: status
                .composite_alarms
                .iter()
                .map(|a| (a.alarm_name.clone(), a.clone()))
                .collect(),
            rules: status
                .event_rules
                .iter()
                .map(|r| (r.rule_name.clone(), r.clone()))
                .collect(),
            filters: status
                .metric_filters
                .iter()
                .map(|f| (f.filter_name.clone(), f.clone()))
                .collect(),
            // Only a topic we created is ours to look up again by ARN (and to delete).
            topic_arn: status
                .topic_arn
                .clone()
                .filter(|_| status.topic_owned == Some(true)),
        }
    }
}

/// The policy's topic as AWS reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum ObservedTopic {
    /// No topic of ours is known to exist (none recorded, or the recorded one is gone).
    Absent,
    /// The topic exists.
    Present {
        /// Its ARN.
        arn: String,
        /// Its tags.
        tags: Tags,
        /// Its attributes (`Policy`, `DisplayName`, …).
        attributes: HashMap<String, String>,
    },
    /// A name taken by someone else's topic (CreateTopic refused it).
    NameTaken,
    /// The referenced existing topic, and whether it exists.
    Referenced {
        /// Its ARN.
        arn: String,
        /// Whether AWS knows it.
        exists: bool,
    },
}

/// One write to the topic.
#[derive(Clone, Debug, PartialEq)]
pub enum TopicAction {
    /// Create the topic with its tags.
    Create {
        /// Topic name.
        name: String,
        /// Tags.
        tags: Tags,
    },
    /// Set one attribute.
    SetAttribute {
        /// ARN.
        arn: String,
        /// Attribute name.
        name: &'static str,
        /// New value.
        value: String,
    },
    /// Add and remove tags.
    Retag {
        /// ARN.
        arn: String,
        /// The changes.
        changes: TagChanges,
    },
}

/// What to do about the topic.
#[derive(Clone, Debug, PartialEq)]
pub enum TopicPlan {
    /// The topic must be created first; the rest is planned once it exists.
    Create(TopicAction),
    /// The topic exists (ours or referenced); these writes make it match.
    Ready {
        /// Its ARN.
        arn: String,
        /// Whether alertops owns it.
        owned: bool,
        /// Whether it is being adopted (it had no ownership tags of ours).
        adopted: bool,
        /// Writes to make.
        actions: Vec<TopicAction>,
    },
    /// The policy cannot have its topic.
    Blocked(Blocker),
}

/// Plans the topic. With `adopt`, an existing topic of our name without our tags is taken over
/// (our tags added) instead of blocking the policy.
pub fn plan_topic(
    desired: &DesiredTopic,
    desired_tags: &Tags,
    observed: &ObservedTopic,
    owner: &OwnerIdentity,
    adopt: bool,
) -> TopicPlan {
    match (desired, observed) {
        (DesiredTopic::Existing { arn }, ObservedTopic::Referenced { exists: true, .. }) => {
            TopicPlan::Ready {
                arn: arn.clone(),
                owned: false,
                adopted: false,
                actions: Vec::new(),
            }
        }
        (DesiredTopic::Existing { arn }, _) => TopicPlan::Blocked(Blocker::new(
            "TopicNotFound",
            format!(
                "the existing topic {arn} does not exist or is not visible to the operator's role"
            ),
        )),
        (DesiredTopic::Owned { name, .. }, ObservedTopic::Absent) => {
            TopicPlan::Create(TopicAction::Create {
                name: name.clone(),
                tags: desired_tags.clone(),
            })
        }
        (DesiredTopic::Owned { name, .. }, ObservedTopic::NameTaken)
        | (DesiredTopic::Owned { name, .. }, ObservedTopic::Referenced { .. }) => {
            TopicPlan::Blocked(not_owned_topic(name))
        }
        (
            DesiredTopic::Owned { name, display_name },
            ObservedTopic::Present {
                arn,
                tags,
                attributes,
            },
        ) => {
            let adopted = !owner.owns(tags);
            if adopted && !adopt {
                return TopicPlan::Blocked(not_owned_topic(name));
            }
            let mut actions = Vec::new();
            let desired_policy = topic_access_policy(arn, owner);
            let current_policy = attributes
                .get("Policy")
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or(serde_json::Value::Null);
            if canonical_policy(&current_policy) != canonical_policy(&desired_policy) {
                actions.push(TopicAction::SetAttribute {
                    arn: arn.clone(),
                    name: "Policy",
                    value: desired_policy.to_string(),
                });
            }
            let current_display = attributes.get("DisplayName").map(String::as_str);
            let desired_display = display_name.as_deref().unwrap_or("");
            if current_display.unwrap_or("") != desired_display {
                actions.push(TopicAction::SetAttribute {
                    arn: arn.clone(),
                    name: "DisplayName",
                    value: desired_display.to_string(),
                });
            }
            let changes = TagChanges::between(desired_tags, tags);
            if !changes.is_empty() {
                actions.push(TopicAction::Retag {
                    arn: arn.clone(),
                    changes,
                });
            }
            TopicPlan::Ready {
                arn: arn.clone(),
                owned: true,
                adopted,
                actions,
            }
        }
    }
}

fn not_owned_topic(name: &str) -> Blocker {
    Blocker::new(
        "TopicNotOwned",
        format!(
            "an SNS topic named {name:?} already exists and is not owned by this policy; it was \
             left untouched. Reference it with spec.topic.existingArn, or delete it."
        ),
    )
}

/// Alarms and rules as AWS reports them, with the tags and targets [`tag_reads`] asked for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Alarms under the policy's prefix, by name.
    pub alarms: BTreeMap<String, ObservedAlarm>,
    /// Composite alarms under the policy's prefix, by name.
    pub composites: BTreeMap<String, ObservedComposite>,
    /// Rules under the policy's prefix, by name.
    pub rules: BTreeMap<String, ObservedRule>,
    /// Tags of the alarms and composites named by [`TagReads::alarms`], by alarm name.
    pub alarm_tags: BTreeMap<String, Tags>,
    /// Tags of the rules named by [`TagReads::rules`], by rule name.
    pub rule_tags: BTreeMap<String, Tags>,
    /// Targets of every desired rule that exists, by rule name.
    pub rule_targets: BTreeMap<String, Vec<RuleTarget>>,
    /// The log groups of the desired and recorded metric filters: each with our filters in it
    /// (by name, listed under the policy's prefix), or `None` when the group does not exist.
    pub log_groups: ObservedLogGroups,
}

/// Log groups by name: our metric filters in each by filter name, `None` for a missing group.
pub type ObservedLogGroups = BTreeMap<String, Option<BTreeMap<String, MetricFilterDefinition>>>;

impl Observed {
    /// The log groups [`super::observe`] lists: those of the desired filters and those the status
    /// recorded (a filter whose log alarm moved to another group is found and deleted in the old
    /// one).
    pub fn log_groups_to_list(filters: &[DesiredFilter], recorded: &Recorded) -> Vec<String> {
        let mut groups: Vec<String> = filters
            .iter()
            .map(|f| f.definition.log_group.clone())
            .chain(recorded.filters.values().map(|f| f.log_group.clone()))
            .collect();
        groups.sort();
        groups.dedup();
        groups
    }
}

/// Which tags must be read before planning: `(name, arn)` pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagReads {
    /// Alarms and composite alarms whose tags are needed.
    pub alarms: Vec<(String, String)>,
    /// Rules whose tags are needed.
    pub rules: Vec<(String, String)>,
}

/// The tags the plan needs: those of existing desired alarms and rules whose recorded tag digest
/// differs from the desired one, and those of unrecorded leftovers under our prefixes (to know
/// whether they are ours to delete).
pub fn tag_reads(
    alarms: &[DesiredAlarm],
    composites: &[DesiredComposite],
    rules: &[DesiredRule],
    observed: &Observed,
    recorded: &Recorded,
) -> TagReads {
    let desired_alarms: HashMap<&str, &DesiredAlarm> = alarms
        .iter()
        .map(|a| (a.definition.alarm_name.as_str(), a))
        .collect();
    let desired_rules: HashMap<&str, &DesiredRule> = rules
        .iter()
        .map(|r| (r.definition.rule_name.as_str(), r))
        .collect();
    let mut reads = TagReads::default();
    for (name, alarm) in &observed.alarms {
        let Some(arn) = &alarm.arn else { continue };
        let needed = match desired_alarms.get(name.as_str()) {
            Some(desired) => !verified(
                recorded
                    .alarms
                    .get(name)
                    .and_then(|r| r.tags_digest.as_deref()),
                &desired.tags,
            ),
            None => !recorded.alarms.contains_key(name),
        };
        if needed {
            reads.alarms.push((name.clone(), arn.clone()));
        }
    }
    for (name, composite) in &observed.composites {
        let Some(arn) = &composite.arn else { continue };
        let desired = composites.iter().find(|c| &c.definition.alarm_name == name);
        let needed = match desired {
            Some(desired) => !verified(
                recorded
                    .composites
                    .get(name)
                    .and_then(|r| r.tags_digest.as_deref()),
                &desired.tags,
            ),
            None => !recorded.composites.contains_key(name),
        };
        if needed {
            reads.alarms.push((name.clone(), arn.clone()));
        }
    }
    for (name, rule) in &observed.rules {
        let needed = match desired_rules.get(name.as_str()) {
            Some(desired) => !verified(
                recorded
                    .rules
                    .get(name)
                    .and_then(|r| r.tags_digest.as_deref()),
                &desired.tags,
            ),
            None => !recorded.rules.contains_key(name),
        };
        if needed {
            reads.rules.push((name.clone(), rule.arn.clone()));
        }
    }
    reads
}

fn verified(recorded_digest: Option<&str>, desired: &Tags) -> bool {
    recorded_digest == Some(tags_digest(desired).as_str())
}

/// One decision about one alarm or rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create an alarm that does not exist.
    CreateAlarm {
        /// What the status records once it is created (the ARN is filled in after).
        record: AlarmStatus,
        /// Its definition.
        definition: AlarmDefinition,
        /// Its tags.
        tags: Tags,
    },
    /// Rewrite the definition and/or the tags of an alarm of ours.
    UpdateAlarm {
        /// What the status records.
        record: AlarmStatus,
        /// The definition, when it differs, with the names of the differing fields.
        definition: Option<(AlarmDefinition, Vec<&'static str>)>,
        /// Tag changes (empty when the tags match or were not read).
        tags: TagChanges,
    },
    /// An alarm of ours that matches.
    KeepAlarm {
        /// What the status records.
        record: AlarmStatus,
    },
    /// Delete alarms of ours that the spec no longer has.
    DeleteAlarms {
        /// Their names.
        names: Vec<String>,
    },
    /// Take over an existing alarm that carries no ownership tags of ours, because the policy
    /// opted in ([`ADOPT_ANNOTATION`]): add our tags, rewrite what differs.
    AdoptAlarm {
        /// What the status records.
        record: AlarmStatus,
        /// The definition, when it differs, with the differing fields.
        definition: Option<(AlarmDefinition, Vec<&'static str>)>,
        /// Tag changes (our ownership tags among them).
        tags: TagChanges,
    },
    /// An alarm with our name that someone else owns: left alone.
    SkipUnownedAlarm {
        /// Its name.
        name: String,
    },
    /// Create a composite alarm that does not exist (after the alarms its rule names).
    CreateComposite {
        /// What the status records once it is created.
        record: AlarmStatus,
        /// Its definition.
        definition: CompositeDefinition,
        /// Its tags.
        tags: Tags,
    },
    /// Rewrite the definition and/or tags of a composite of ours, or adopt one.
    UpdateComposite {
        /// What the status records.
        record: AlarmStatus,
        /// The definition, when it differs, with the differing fields.
        definition: Option<(CompositeDefinition, Vec<&'static str>)>,
        /// Tag changes.
        tags: TagChanges,
        /// Whether it is taken over (it had no ownership tags; the policy opted in).
        adopting: bool,
    },
    /// A composite of ours that matches.
    KeepComposite {
        /// What the status records.
        record: AlarmStatus,
    },
    /// A composite with our name that someone else owns: left alone.
    SkipUnownedComposite {
        /// Its name.
        name: String,
    },
    /// Delete composites of ours that the spec no longer has (before any alarm they name).
    DeleteComposites {
        /// Their names.
        names: Vec<String>,
    },
    /// Create a rule that does not exist and point it at the topic.
    CreateRule {
        /// What the status records.
        record: EventRuleStatus,
        /// Its definition.
        definition: RuleDefinition,
        /// Its tags.
        tags: Tags,
        /// Its target.
        target: RuleTarget,
    },
    /// Rewrite the definition, tags and/or target of a rule of ours.
    UpdateRule {
        /// What the status records.
        record: EventRuleStatus,
        /// The definition, when it differs, with the differing fields.
        definition: Option<(RuleDefinition, Vec<&'static str>)>,
        /// Tag changes.
        tags: TagChanges,
        /// The target, when it is missing or points elsewhere.
        target: Option<RuleTarget>,
    },
    /// A rule of ours that matches.
    KeepRule {
        /// What the status records.
        record: EventRuleStatus,
    },
    /// Delete a rule of ours (its targets first).
    DeleteRule {
        /// Its name.
        name: String,
        /// Ids of its targets, removed first (unknown when empty: the executor lists them).
        target_ids: Vec<String>,
    },
    /// Take over an existing rule without our ownership tags, because the policy opted in.
    AdoptRule {
        /// What the status records.
        record: EventRuleStatus,
        /// The definition, when it differs, with the differing fields.
        definition: Option<(RuleDefinition, Vec<&'static str>)>,
        /// Tag changes (our ownership tags among them).
        tags: TagChanges,
        /// The target, when it is missing or points elsewhere.
        target: Option<RuleTarget>,
    },
    /// A rule with our name that someone else owns: left alone.
    SkipUnownedRule {
        /// Its name.
        name: String,
    },
    /// Create a log alarm's metric filter.
    CreateFilter {
        /// What the status records.
        record: MetricFilterStatus,
        /// The filter.
        definition: MetricFilterDefinition,
    },
    /// Rewrite a metric filter of ours whose definition differs (PutMetricFilter replaces it).
    UpdateFilter {
        /// What the status records.
        record: MetricFilterStatus,
        /// The filter, with the names of the differing fields.
        definition: MetricFilterDefinition,
        /// The differing fields.
        fields: Vec<&'static str>,
    },
    /// A metric filter of ours that matches.
    KeepFilter {
        /// What the status records.
        record: MetricFilterStatus,
    },
    /// Delete a metric filter of ours that the spec no longer has.
    DeleteFilter {
        /// Its log group.
        log_group: String,
        /// Its name.
        name: String,
    },
    /// A log alarm whose log group does not exist: its filter cannot be made (yet).
    LogGroupMissing {
        /// Name of the log alarm in the spec.
        spec_name: String,
        /// The missing log group.
        log_group: String,
    },
    /// Delete the topic this policy created.
    DeleteTopic {
        /// Its ARN.
        arn: String,
    },
}

impl Action {
    /// Whether it writes to AWS.
    pub fn is_write(&self) -> bool {
        match self {
            Action::KeepAlarm { .. }
            | Action::KeepFilter { .. }
            | Action::LogGroupMissing { .. }
            | Action::KeepRule { .. }
            | Action::KeepComposite { .. }
            | Action::SkipUnownedComposite { .. }
            | Action::SkipUnownedAlarm { .. }
            | Action::SkipUnownedRule { .. } => false,
            Action::UpdateComposite {
                definition, tags, ..
            } => definition.is_some() || !tags.is_empty(),
            Action::DeleteComposites { names } => !names.is_empty(),
            Action::UpdateAlarm {
                definition, tags, ..
            } => definition.is_some() || !tags.is_empty(),
            Action::UpdateRule {
                definition,
                tags,
                target,
                ..
            } => definition.is_some() || !tags.is_empty() || target.is_some(),
            Action::DeleteAlarms { names } => !names.is_empty(),
            _ => true,
        }
    }

    /// The Event this action is reported by once applied, if any.
    pub fn notice(&self) -> Option<Notice> {
        match self {
            Action::CreateAlarm { record, .. } => Some(Notice::normal(
                "AlarmCreated",
                format!("created CloudWatch alarm {}", record.alarm_name),
            )),
            Action::UpdateAlarm {
                record,
                definition: Some((_, fields)),
                ..
            } => Some(Notice::normal(
                "AlarmUpdated",
                format!(
                    "updated CloudWatch alarm {}: {}",
                    record.alarm_name,
                    fields.join(", ")
                ),
            )),
            Action::AdoptAlarm { record, .. } => Some(Notice::normal(
                "Adopted",
                format!(
                    "adopted CloudWatch alarm {}: it carried no alertops ownership tags and the \
                     policy opted in ({ADOPT_ANNOTATION}); it is now managed (and deleted) with the policy",
                    record.alarm_name
                ),
            )),
            Action::AdoptRule { record, .. } => Some(Notice::normal(
                "Adopted",
                format!(
                    "adopted EventBridge rule {}: it carried no alertops ownership tags and the \
                     policy opted in ({ADOPT_ANNOTATION}); it is now managed (and deleted) with the policy",
                    record.rule_name
                ),
            )),
            Action::CreateComposite { record, .. } => Some(Notice::normal(
                "AlarmCreated",
                format!("created CloudWatch composite alarm {}", record.alarm_name),
            )),
            Action::UpdateComposite {
                record,
                adopting: true,
                ..
            } => Some(Notice::normal(
                "Adopted",
                format!(
                    "adopted CloudWatch composite alarm {}: it carried no alertops ownership \
                     tags and the policy opted in ({ADOPT_ANNOTATION})",
                    record.alarm_name
                ),
            )),
            Action::UpdateComposite {
                record,
                definition: Some((_, fields)),
                ..
            } => Some(Notice::normal(
                "AlarmUpdated",
                format!(
                    "updated CloudWatch composite alarm {}: {}",
                    record.alarm_name,
                    fields.join(", ")
                ),
            )),
            Action::DeleteComposites { names } if !names.is_empty() => Some(Notice::normal(
                "AlarmDeleted",
                format!("deleted CloudWatch composite alarms {}", names.join(", ")),
            )),
            Action::DeleteAlarms { names } if !names.is_empty() => Some(Notice::normal(
                "AlarmDeleted",
                format!("deleted CloudWatch alarms {}", names.join(", ")),
            )),
            Action::CreateRule { record, .. } => Some(Notice::normal(
                "RuleCreated",
                format!("created EventBridge rule {}", record.rule_name),
            )),
            Action::UpdateRule {
                record,
                definition: Some((_, fields)),
                ..
            } => Some(Notice::normal(
                "RuleUpdated",
                format!(
                    "updated EventBridge rule {}: {}",
                    record.rule_name,
                    fields.join(", ")
                ),
            )),
            Action::DeleteRule { name, .. } => Some(Notice::normal(
                "RuleDeleted",
                format!("deleted EventBridge rule {name}"),
            )),
            Action::CreateFilter { record, .. } => Some(Notice::normal(
                "MetricFilterCreated",
                format!(
                    "created metric filter {} in log group {}",
                    record.filter_name, record.log_group
                ),
            )),
            Action::UpdateFilter { record, fields, .. } => Some(Notice::normal(
                "MetricFilterUpdated",
                format!(
                    "updated metric filter {} in log group {}: {}",
                    record.filter_name,
                    record.log_group,
                    fields.join(", ")
                ),
            )),
            Action::DeleteFilter { log_group, name } => Some(Notice::normal(
                "MetricFilterDeleted",
                format!("deleted metric filter {name} in log group {log_group}"),
            )),
            Action::DeleteTopic { arn } => Some(Notice::normal(
                "TopicDeleted",
                format!("deleted SNS topic {arn}"),
            )),
            _ => None,
        }
    }

    /// Why the policy is not Ready because of this action, if it blocks.
    pub fn blocker(&self) -> Option<Blocker> {
        match self {
            Action::SkipUnownedAlarm { name } => Some(Blocker::new(
                "AlarmNotOwned",
                format!(
                    "CloudWatch alarm {name:?} exists but is not owned by this policy (its \
                     alertops.dev/owner and alertops.dev/cluster tags do not name it); it was \
                     left untouched. Delete or rename that alarm, or rename the alarm in the spec."
                ),
            )),
            Action::SkipUnownedComposite { name } => Some(Blocker::new(
                "AlarmNotOwned",
                format!(
                    "CloudWatch composite alarm {name:?} exists but is not owned by this policy; \
                     it was left untouched. Delete or rename it, or rename the composite in the spec."
                ),
            )),
            Action::LogGroupMissing {
                spec_name,
                log_group,
            } => Some(Blocker::new(
                "LogGroupNotFound",
                format!(
                    "log group {log_group:?} of log alarm {spec_name:?} does not exist (or the \
                     operator's role cannot see it); its metric filter will be created once the \
                     group exists"
                ),
            )),
            Action::SkipUnownedRule { name } => Some(Blocker::new(
                "RuleNotOwned",
                format!(
                    "EventBridge rule {name:?} exists but is not owned by this policy; it was left untouched"
                ),
            )),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    /// One line for a person: what, on which resource, and why.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateAlarm { record, .. } => {
                write!(f, "create alarm {}: not in CloudWatch", record.alarm_name)
            }
            Action::UpdateAlarm {
                record,
                definition,
                tags,
            } => {
                write!(f, "update alarm {}:", record.alarm_name)?;
                if let Some((_, fields)) = definition {
                    write!(f, " {} differ", fields.join(", "))?;
                }
                write_tag_changes(f, tags)
            }
            Action::KeepAlarm { record } => write!(f, "keep alarm {}: in sync", record.alarm_name),
            Action::AdoptAlarm {
                record,
                definition,
                tags,
            } => {
                write!(
                    f,
                    "adopt alarm {}: exists without our tags, adoption opted in;",
                    record.alarm_name
                )?;
                if let Some((_, fields)) = definition {
                    write!(f, " {} differ", fields.join(", "))?;
                }
                write_tag_changes(f, tags)
            }
            Action::DeleteAlarms { names } => {
                write!(
                    f,
                    "delete alarms {}: no longer in the spec",
                    names.join(", ")
                )
            }
            Action::SkipUnownedAlarm { name } => {
                write!(f, "skip alarm {name}: owned by someone else")
            }
            Action::CreateComposite { record, .. } => {
                write!(
                    f,
                    "create composite alarm {}: not in CloudWatch",
                    record.alarm_name
                )
            }
            Action::UpdateComposite {
                record,
                definition,
                tags,
                adopting,
            } => {
                let verb = if *adopting { "adopt" } else { "update" };
                write!(f, "{verb} composite alarm {}:", record.alarm_name)?;
                if let Some((_, fields)) = definition {
                    write!(f, " {} differ", fields.join(", "))?;
                }
                write_tag_changes(f, tags)
            }
            Action::KeepComposite { record } => {
                write!(f, "keep composite alarm {}: in sync", record.alarm_name)
            }
            Action::SkipUnownedComposite { name } => {
                write!(f, "skip composite alarm {name}: owned by someone else")
            }
            Action::DeleteComposites { names } => write!(
                f,
                "delete composite alarms {}: no longer in the spec",
                names.join(", ")
            ),
            Action::CreateRule { record, .. } => {
                write!(f, "create rule {}: not in EventBridge", record.rule_name)
            }
            Action::UpdateRule {
                record,
                definition,
                tags,
                target,
            } => {
                write!(f, "update rule {}:", record.rule_name)?;
                if let Some((_, fields)) = definition {
                    write!(f, " {} differ", fields.join(", "))?;
                }
                if target.is_some() {
                    write!(f, " target missing")?;
                }
                write_tag_changes(f, tags)
            }
            Action::KeepRule { record } => write!(f, "keep rule {}: in sync", record.rule_name),
            Action::AdoptRule {
                record,
                definition,
                tags,
                ..
            } => {
                write!(
                    f,
                    "adopt rule {}: exists without our tags, adoption opted in;",
                    record.rule_name
                )?;
                if let Some((_, fields)) = definition {
                    write!(f, " {} differ", fields.join(", "))?;
                }
                write_tag_changes(f, tags)
            }
            Action::DeleteRule { name, .. } => {
                write!(f, "delete rule {name}: no longer in the spec")
            }
            Action::SkipUnownedRule { name } => {
                write!(f, "skip rule {name}: owned by someone else")
            }
            Action::CreateFilter { record, .. } => write!(
                f,
                "create metric filter {} in {}: not in CloudWatch Logs",
                record.filter_name, record.log_group
            ),
            Action::UpdateFilter { record, fields, .. } => write!(
                f,
                "update metric filter {} in {}: {} differ",
                record.filter_name,
                record.log_group,
                fields.join(", ")
            ),
            Action::KeepFilter { record } => {
                write!(f, "keep metric filter {}: in sync", record.filter_name)
            }
            Action::DeleteFilter { log_group, name } => write!(
                f,
                "delete metric filter {name} in {log_group}: no longer in the spec"
            ),
            Action::LogGroupMissing {
                spec_name,
                log_group,
            } => write!(
                f,
                "wait for log group {log_group} of log alarm {spec_name}: it does not exist"
            ),
            Action::DeleteTopic { arn } => write!(f, "delete topic {arn}: the policy is deleted"),
        }
    }
}

fn write_tag_changes(f: &mut fmt::Formatter<'_>, tags: &TagChanges) -> fmt::Result {
    if !tags.add.is_empty() {
        let keys: Vec<&str> = tags.add.keys().map(String::as_str).collect();
        write!(f, " tags to set: {}", keys.join(", "))?;
    }
    if !tags.remove.is_empty() {
        write!(f, " tags to remove: {}", tags.remove.join(", "))?;
    }
    Ok(())
}

/// Plans the alarms and rules of a policy whose topic is in place.
pub fn plan(
    desired: &DesiredPolicy,
    topic_arn: &str,
    observed: &Observed,
    recorded: &Recorded,
    owner: &OwnerIdentity,
    adopt: bool,
) -> Vec<Action> {
    let mut actions: Vec<Action> = desired
        .alarms
        .iter()
        .map(|alarm| plan_alarm(alarm, observed, recorded, owner, adopt))
        .collect();
    actions.extend(
        desired
            .composites
            .iter()
            .map(|composite| plan_composite(composite, observed, recorded, owner, adopt)),
    );
    actions.extend(stale_composites(desired, observed, recorded, owner));
    actions.extend(stale_alarms(desired, observed, recorded, owner));
    actions.extend(
        desired
            .rules
            .iter()
            .map(|rule| plan_rule(rule, topic_arn, observed, recorded, owner, adopt)),
    );
    actions.extend(stale_rules(desired, observed, recorded, owner));
    actions.extend(
        desired
            .filters
            .iter()
            .map(|filter| plan_filter(filter, observed, owner)),
    );
    actions.extend(stale_filters(&desired.filters, observed));
    actions
}

/// One decision about one existing-or-not resource, shared by alarms, composites and metric
/// filters: create what is absent; leave alone what someone else owns (not recorded, tags read
/// and not ours, no adoption); otherwise rewrite what differs, adopting when the tags were not
/// ours and the policy opted in, and keep what matches.
enum Decision<D> {
    Create,
    SkipUnowned,
    Keep,
    Write {
        definition: Option<(D, Vec<&'static str>)>,
        tags: TagChanges,
        adopting: bool,
    },
}

/// An existing resource as the plan sees it.
struct Existing<'a, C> {
    current: &'a C,
    /// Its tags, when they were read ([`tag_reads`]); metric filters have none.
    tags: Option<&'a Tags>,
    /// Whether the status recorded it (then it is ours whatever its tags).
    recorded: bool,
}

fn decide<D: Clone, C>(
    desired: &D,
    desired_tags: &Tags,
    existing: Option<Existing<'_, C>>,
    owner: &OwnerIdentity,
    adopt: bool,
    differences: impl Fn(&D, &C) -> Vec<&'static str>,
) -> Decision<D> {
    let Some(existing) = existing else {
        return Decision::Create;
    };
    let mut adopting = false;
    let tags = match existing.tags {
        Some(current_tags) => {
            if !existing.recorded && !owner.owns(current_tags) {
                if !adopt {
                    return Decision::SkipUnowned;
                }
                adopting = true;
            }
            TagChanges::between(desired_tags, current_tags)
        }
        None => TagChanges::default(),
    };
    let fields = differences(desired, existing.current);
    let definition = (!fields.is_empty()).then(|| (desired.clone(), fields));
    if !adopting && definition.is_none() && tags.is_empty() {
        Decision::Keep
    } else {
        Decision::Write {
            definition,
            tags,
            adopting,
        }
    }
}

/// Names under our prefix that the spec no longer has and that are ours.
fn stale<'a>(
    observed: impl Iterator<Item = &'a String>,
    desired: impl Fn(&str) -> bool,
    ours: impl Fn(&str) -> bool,
) -> Vec<String> {
    observed
        .filter(|name| !desired(name) && ours(name))
        .cloned()
        .collect()
}

fn plan_filter(filter: &DesiredFilter, observed: &Observed, owner: &OwnerIdentity) -> Action {
    let definition = &filter.definition;
    let record = MetricFilterStatus {
        name: filter.spec_name.clone(),
        filter_name: definition.filter_name.clone(),
        log_group: definition.log_group.clone(),
    };
    let Some(Some(filters)) = observed.log_groups.get(&definition.log_group) else {
        return Action::LogGroupMissing {
            spec_name: filter.spec_name.clone(),
            log_group: definition.log_group.clone(),
        };
    };
    // Listed under our prefix: the name is the ownership proof, there are no tags to read.
    let existing = filters
        .get(&definition.filter_name)
        .map(|current| Existing {
            current,
            tags: None,
            recorded: true,
        });
    match decide(
        definition,
        &Tags::new(),
        existing,
        owner,
        false,
        filter_differences,
    ) {
        Decision::Create => Action::CreateFilter {
            record,
            definition: definition.clone(),
        },
        Decision::Write {
            definition: Some((definition, fields)),
            ..
        } => Action::UpdateFilter {
            record,
            definition,
            fields,
        },
        Decision::Keep | Decision::SkipUnowned | Decision::Write { .. } => {
            Action::KeepFilter { record }
        }
    }
}

/// Metric filters of ours (listed under our prefix) in the listed log groups that no log alarm
/// of the spec has there.
fn stale_filters(filters: &[DesiredFilter], observed: &Observed) -> Vec<Action> {
    observed
        .log_groups
        .iter()
        .filter_map(|(group, listed)| Some((group, listed.as_ref()?)))
        .flat_map(|(group, listed)| {
            stale(
                listed.keys(),
                |name| {
                    filters.iter().any(|f| {
                        f.definition.filter_name == name && &f.definition.log_group == group
                    })
                },
                |_| true,
            )
            .into_iter()
            .map(|name| Action::DeleteFilter {
                log_group: group.clone(),
                name,
            })
        })
        .collect()
}

fn plan_alarm(
    alarm: &DesiredAlarm,
    observed: &Observed,
    recorded: &Recorded,
    owner: &OwnerIdentity,
    adopt: bool,
) -> Action {
    let name = &alarm.definition.alarm_name;
    let mut record = AlarmStatus {
        name: alarm.spec_name.clone(),
        alarm_name: name.clone(),
        arn: None,
        tags_digest: Some(tags_digest(&alarm.tags)),
        ..AlarmStatus::default()
    };
    let current = observed.alarms.get(name);
    if let Some(current) = current {
        record.arn = current.arn.clone();
        record_state(&mut record, current);
    }
    // Tags were read exactly when not verified before (see `tag_reads`).
    let existing = current.map(|current| Existing {
        current: &current.definition,
        tags: observed.alarm_tags.get(name),
        recorded: recorded.alarms.contains_key(name),
    });
    match decide(
        &alarm.definition,
        &alarm.tags,
        existing,
        owner,
        adopt,
        alarm_differences,
    ) {
        Decision::Create => Action::CreateAlarm {
            record,
            definition: alarm.definition.clone(),
            tags: alarm.tags.clone(),
        },
        Decision::SkipUnowned => Action::SkipUnownedAlarm { name: name.clone() },
        Decision::Keep => Action::KeepAlarm { record },
        Decision::Write {
            definition,
            tags,
            adopting: true,
        } => Action::AdoptAlarm {
            record,
            definition,
            tags,
        },
        Decision::Write {
            definition, tags, ..
        } => Action::UpdateAlarm {
            record,
            definition,
            tags,
        },
    }
}

/// Copies the state CloudWatch reported with the alarm's definition into its record: the state
/// costs no call of its own, it comes with the DescribeAlarms pages every resync reads.
pub fn record_state(record: &mut AlarmStatus, observed: &ObservedAlarm) {
    record_state_of(
        record,
        &observed.state,
        &observed.state_reason,
        observed.state_changed_at,
    );
}

/// [`record_state`] from the state fields of a metric or composite alarm.
pub fn record_state_of(
    record: &mut AlarmStatus,
    state: &Option<String>,
    reason: &Option<String>,
    changed_at: Option<chrono::DateTime<chrono::Utc>>,
) {
    record.state = state.as_deref().and_then(AlarmState::parse);
    record.state_reason = reason.clone();
    record.state_changed_at = changed_at
        .and_then(|t| Timestamp::from_second(t.timestamp()).ok())
        .map(Time);
}

/// Longest state reason quoted in an Event; the status keeps CloudWatch's whole reason.
const EVENT_REASON_CHARS: usize = 300;

/// One Event per alarm whose state differs from the one the status recorded: a transition the
/// controller saw. An alarm seen for the first time is reported only when it is already firing
/// (its earlier states were never seen, so there is no transition to tell, except that one).
/// ALARM is a warning; OK and INSUFFICIENT_DATA are normal.
pub fn state_transitions(recorded: &Recorded, alarms: &[AlarmStatus]) -> Vec<Notice> {
    alarms
        .iter()
        .filter_map(|alarm| {
            let now = alarm.state?;
            let before = recorded
                .alarms
                .get(&alarm.alarm_name)
                .or_else(|| recorded.composites.get(&alarm.alarm_name))
                .and_then(|r| r.state);
            if before == Some(now) || (before.is_none() && now != AlarmState::Alarm) {
                return None;
            }
            let was = before.map(|b| format!(" (was {})", b.as_str()));
            let reason = alarm
                .state_reason
                .as_deref()
                .map(|r| format!(": {}", event_text(r)));
            Some(Notice {
                warning: now == AlarmState::Alarm,
                reason: "AlarmStateChanged",
                note: format!(
                    "alarm {} ({}) is {}{}{}",
                    alarm.name,
                    alarm.alarm_name,
                    now.as_str(),
                    was.unwrap_or_default(),
                    reason.unwrap_or_default()
                ),
            })
        })
        .collect()
}

/// CloudWatch's reason (anyone allowed SetAlarmState can write it) as one bounded line.
fn event_text(reason: &str) -> String {
    let mut text: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EVENT_REASON_CHARS)
        .collect();
    if reason.chars().count() > EVENT_REASON_CHARS {
        text.push('…');
    }
    text
}

/// How many of the alarms are firing.
pub fn firing(alarms: &[AlarmStatus]) -> i32 {
    alarms
        .iter()
        .filter(|a| a.state == Some(AlarmState::Alarm))
        .count() as i32
}

fn plan_composite(
    composite: &DesiredComposite,
    observed: &Observed,
    recorded: &Recorded,
    owner: &OwnerIdentity,
    adopt: bool,
) -> Action {
    let name = &composite.definition.alarm_name;
    let mut record = AlarmStatus {
        name: composite.spec_name.clone(),
        alarm_name: name.clone(),
        tags_digest: Some(tags_digest(&composite.tags)),
        ..AlarmStatus::default()
    };
    let current = observed.composites.get(name);
    if let Some(current) = current {
        record.arn = current.arn.clone();
        record_state_of(
            &mut record,
            &current.state,
            &current.state_reason,
            current.state_changed_at,
        );
    }
    let existing = current.map(|current| Existing {
        current: &current.definition,
        tags: observed.alarm_tags.get(name),
        recorded: recorded.composites.contains_key(name),
    });
    match decide(
        &composite.definition,
        &composite.tags,
        existing,
        owner,
        adopt,
        composite_differences,
    ) {
        Decision::Create => Action::CreateComposite {
            record,
            definition: composite.definition.clone(),
            tags: composite.tags.clone(),
        },
        Decision::SkipUnowned => Action::SkipUnownedComposite { name: name.clone() },
        Decision::Keep => Action::KeepComposite { record },
        Decision::Write {
            definition,
            tags,
            adopting,
        } => Action::UpdateComposite {
            record,
            definition,
            tags,
            adopting,
        },
    }
}

/// Composites under our prefix that the spec no longer has and that are ours.
fn stale_composites(
    desired: &DesiredPolicy,
    observed: &Observed,
    recorded: &Recorded,
    owner: &OwnerIdentity,
) -> Option<Action> {
    let names = stale(
        observed.composites.keys(),
        |name| {
            desired
                .composites
                .iter()
                .any(|c| c.definition.alarm_name == name)
        },
        |name| is_ours(name, &recorded.composites, &observed.alarm_tags, owner),
    );
    (!names.is_empty()).then_some(Action::DeleteComposites { names })
}

/// Alarms under our prefix that the spec no longer has and that are ours.
fn stale_alarms(
    desired: &DesiredPolicy,
    observed: &Observed,
    recorded: &Recorded,
    owner: &OwnerIdentity,
) -> Option<Action> {
    let names = stale(
        observed.alarms.keys(),
        |name| {
            desired
                .alarms
                .iter()
                .any(|a| a.definition.alarm_name == name)
        },
        |name| is_ours(name, &recorded.alarms, &observed.alarm_tags, owner),
    );
    (!names.is_empty()).then_some(Action::DeleteAlarms { names })
}

fn is_ours<V>(
    name: &str,
    recorded: &HashMap<String, V>,
    tags: &BTreeMap<String, Tags>,
    owner: &OwnerIdentity,
) -> bool {
    recorded.contains_key(name) || tags.get(name).is_some_and(|t| owner.owns(t))
}

fn plan_rule(
    rule: &DesiredRule,
    topic_arn: &str,
    observed: &Observed,
    recorded: &Recorded,
    owner: &OwnerIdentity,
    adopt: bool,
) -> Action {
    let name = &rule.definition.rule_name;
    let target = RuleTarget {
        id: RULE_TARGET_ID.to_string(),
        arn: topic_arn.to_string(),
    };
    let mut record = EventRuleStatus {
        name: rule.spec_name.clone(),
        rule_name: name.clone(),
        arn: None,
        tags_digest: Some(tags_digest(&rule.tags)),
    };
    let Some(current) = observed.rules.get(name) else {
        return Action::CreateRule {
            record,
            definition: rule.definition.clone(),
            tags: rule.tags.clone(),
            target,
        };
    };
    record.arn = Some(current.arn.clone());
    let mut adopting = false;
    let tags = match observed.rule_tags.get(name) {
        Some(current_tags) => {
            if !recorded.rules.contains_key(name) && !owner.owns(current_tags) {
                if !adopt {
                    return Action::SkipUnownedRule { name: name.clone() };
                }
                adopting = true;
            }
            TagChanges::between(&rule.tags, current_tags)
        }
        None => TagChanges::default(),
    };
    let fields = rule_differences(&rule.definition, &current.definition);
    let definition = (!fields.is_empty()).then(|| (rule.definition.clone(), fields));
    let target_in_place = observed
        .rule_targets
        .get(name)
        .is_some_and(|targets| targets.contains(&target));
    let target = (!target_in_place).then_some(target);
    if adopting {
        return Action::AdoptRule {
            record,
            definition,
            tags,
            target,
        };
    }
    if definition.is_none() && tags.is_empty() && target.is_none() {
        Action::KeepRule { record }
    } else {
        Action::UpdateRule {
            record,
            definition,
            tags,
            target,
        }
    }
}

fn stale_rules(
    desired: &DesiredPolicy,
    observed: &Observed,
    recorded: &Recorded,
    owner: &OwnerIdentity,
) -> Vec<Action> {
    stale(
        observed.rules.keys(),
        |name| desired.rules.iter().any(|r| r.definition.rule_name == name),
        |name| is_ours(name, &recorded.rules, &observed.rule_tags, owner),
    )
    .into_iter()
    .map(|name| Action::DeleteRule {
        name,
        target_ids: Vec::new(),
    })
    .collect()
}

/// Plans the cleanup of a deleted policy with `deletionPolicy: Delete`: its alarms and rules
/// (recorded, or tagged as ours) and the topic it created when that still carries our tags.
/// `topic_tags` are the recorded topic's tags, when it still exists.
pub fn plan_deletion(
    observed: &Observed,
    recorded: &Recorded,
    topic_tags: Option<&Tags>,
    owner: &OwnerIdentity,
) -> Vec<Action> {
    let empty = DesiredPolicy {
        topic: DesiredTopic::Existing { arn: String::new() },
        topic_tags: Tags::new(),
        alarms: Vec::new(),
        composites: Vec::new(),
        rules: Vec::new(),
        filters: Vec::new(),
    };
    // Composites first: they name the alarms.
    let mut actions: Vec<Action> = stale_composites(&empty, observed, recorded, owner)
        .into_iter()
        .collect();
    actions.extend(stale_alarms(&empty, observed, recorded, owner));
    actions.extend(stale_rules(&empty, observed, recorded, owner));
    actions.extend(stale_filters(&[], observed));
    if let (Some(arn), Some(tags)) = (&recorded.topic_arn, topic_tags)
        && owner.owns(tags)
    {
        actions.push(Action::DeleteTopic { arn: arn.clone() });
    }
    actions
}

/// The tags a deletion must read: every leftover alarm and rule the status did not record.
pub fn deletion_tag_reads(observed: &Observed, recorded: &Recorded) -> TagReads {
    tag_reads(&[], &[], &[], observed, recorded)
}

#[cfg(test)]
#[path = "plan/tests.rs"]
mod tests;
