//! One test per rule of the planner, on data.

use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::resources::alarm_policy::AlarmPolicySpec;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:alertops_test";

fn owner() -> OwnerIdentity {
    OwnerIdentity::new("test", "AlarmPolicy", "team-a", "elb")
}

fn spec() -> AlarmPolicySpec {
    serde_json::from_value(json!({
        "tags": {"Team": "platform"},
        "alarms": [
            {
                "name": "errors",
                "metric": {"namespace": "AWS/ELB", "name": "BackendConnectionErrors", "statistic": "Sum"},
                "period": 60, "evaluationPeriods": 5, "threshold": 100,
                "comparison": "GreaterThanThreshold"
            },
            {
                "name": "latency",
                "metric": {"namespace": "AWS/ELB", "name": "Latency", "percentile": "p99"},
                "period": 60, "evaluationPeriods": 3, "threshold": 2,
                "comparison": "GreaterThanThreshold"
            }
        ],
        "eventRules": [{"name": "emr", "preset": "EmrClusterFailed"}]
    }))
    .unwrap()
}

fn desired() -> DesiredPolicy {
    super::super::desired::build(&spec(), &owner(), TOPIC)
}

fn arn(name: &str) -> String {
    format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")
}

/// AWS exactly as the last apply left it, and the status that apply recorded.
fn in_sync() -> (Observed, Recorded) {
    let desired = desired();
    let mut observed = Observed::default();
    let mut recorded = Recorded::default();
    for alarm in &desired.alarms {
        let name = alarm.definition.alarm_name.clone();
        observed.alarms.insert(
            name.clone(),
            ObservedAlarm {
                arn: Some(arn(&name)),
                definition: alarm.definition.clone(),
                state: Some("OK".into()),
                state_reason: None,
                state_changed_at: None,
            },
        );
        recorded.alarms.insert(
            name.clone(),
            AlarmStatus {
                name: alarm.spec_name.clone(),
                alarm_name: name.clone(),
                arn: Some(arn(&name)),
                tags_digest: Some(tags_digest(&alarm.tags)),
                state: Some(AlarmState::Ok),
                ..AlarmStatus::default()
            },
        );
    }
    for rule in &desired.rules {
        let name = rule.definition.rule_name.clone();
        let rule_arn = format!("arn:aws:events:us-east-1:123456789012:rule/{name}");
        observed.rules.insert(
            name.clone(),
            ObservedRule {
                arn: rule_arn.clone(),
                definition: rule.definition.clone(),
            },
        );
        observed.rule_targets.insert(
            name.clone(),
            vec![RuleTarget {
                id: RULE_TARGET_ID.into(),
                arn: TOPIC.into(),
            }],
        );
        recorded.rules.insert(
            name.clone(),
            EventRuleStatus {
                name: rule.spec_name.clone(),
                rule_name: name.clone(),
                arn: Some(rule_arn),
                tags_digest: Some(tags_digest(&rule.tags)),
            },
        );
    }
    (observed, recorded)
}

fn writes(actions: &[Action]) -> Vec<&Action> {
    actions.iter().filter(|a| a.is_write()).collect()
}

#[test]
fn a_resync_of_what_was_applied_writes_nothing_and_reads_no_tags() {
    let (observed, recorded) = in_sync();
    let desired = desired();
    assert_eq!(
        tag_reads(
            &desired.alarms,
            &desired.composites,
            &desired.rules,
            &observed,
            &recorded
        ),
        TagReads::default()
    );
    let actions = plan(&desired, TOPIC, &observed, &recorded, &owner(), false);
    assert!(writes(&actions).is_empty(), "{actions:#?}");
    assert_eq!(actions.len(), 3, "two kept alarms and one kept rule");
}

#[test]
fn nothing_in_aws_creates_every_alarm_and_rule_with_tags_and_target() {
    let desired = desired();
    let actions = plan(
        &desired,
        TOPIC,
        &Observed::default(),
        &Recorded::default(),
        &owner(),
        false,
    );
    let created: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateAlarm { record, tags, .. } => {
                assert!(owner().owns(tags));
                Some(record.alarm_name.as_str())
            }
            Action::CreateRule {
                record,
                target,
                tags,
                ..
            } => {
                assert_eq!(target.arn, TOPIC);
                assert!(owner().owns(tags));
                Some(record.rule_name.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 3, "{actions:#?}");
}

#[test]
fn drift_in_a_definition_updates_only_that_alarm_and_names_the_field() {
    let (mut observed, recorded) = in_sync();
    let name = desired().alarms[0].definition.alarm_name.clone();
    observed.alarms.get_mut(&name).unwrap().definition.threshold = 5.0;
    let actions = plan(&desired(), TOPIC, &observed, &recorded, &owner(), false);
    let writes = writes(&actions);
    assert_eq!(writes.len(), 1, "{writes:#?}");
    match writes[0] {
        Action::UpdateAlarm {
            record,
            definition: Some((definition, fields)),
            tags,
        } => {
            assert_eq!(record.alarm_name, name);
            assert_eq!(definition.threshold, 100.0);
            assert_eq!(fields, &vec!["threshold"]);
            assert!(tags.is_empty());
        }
        other => panic!("expected an update, got {other:?}"),
    }
    assert!(writes[0].to_string().contains("threshold differ"));
}

#[test]
fn changed_tags_are_read_and_rewritten_without_touching_the_definition() {
    let (mut observed, mut recorded) = in_sync();
    let desired = desired();
    let name = desired.alarms[0].definition.alarm_name.clone();
    // The status recorded other tags: the plan must read the alarm's tags.
    recorded.alarms.get_mut(&name).unwrap().tags_digest = Some("old".into());
    let reads = tag_reads(
        &desired.alarms,
        &desired.composites,
        &desired.rules,
        &observed,
        &recorded,
    );
    assert_eq!(reads.alarms, vec![(name.clone(), arn(&name))]);
    assert!(reads.rules.is_empty());

    let mut current = desired.alarms[0].tags.clone();
    current.insert("Team".into(), "someone-else".into());
    current.insert("Stale".into(), "1".into());
    observed.alarm_tags.insert(name.clone(), current);
    let actions = plan(&desired, TOPIC, &observed, &recorded, &owner(), false);
    let writes = writes(&actions);
    assert_eq!(writes.len(), 1);
    match writes[0] {
        Action::UpdateAlarm {
            definition: None,
            tags,
            ..
        } => {
            assert_eq!(tags.add.get("Team").map(String::as_str), Some("platform"));
            assert_eq!(tags.remove, vec!["Stale".to_string()]);
        }
        other => panic!("expected a retag, got {other:?}"),
    }
}

#[test]
fn an_alarm_dropped_from_the_spec_is_deleted_when_ours() {
    let (mut observed, mut recorded) = in_sync();
    let dropped = "alertops/test/team-a/elb/old".to_string();
    let mut definition = desired().alarms[0].definition.clone();
    definition.alarm_name = dropped.clone();
    observed.alarms.insert(
        dropped.clone(),
        ObservedAlarm {
            arn: Some(arn(&dropped)),
            definition,
            state: None,
            state_reason: None,
            state_changed_at: None,
        },
    );
    recorded.alarms.insert(
        dropped.clone(),
        AlarmStatus {
            name: "old".into(),
            alarm_name: dropped.clone(),
            arn: Some(arn(&dropped)),
            tags_digest: None,
            ..AlarmStatus::default()
        },
    );
    let actions = plan(&desired(), TOPIC, &observed, &recorded, &owner(), false);
    assert_eq!(
        writes(&actions),
        vec![&Action::DeleteAlarms {
            names: vec![dropped]
        }]
    );
}

#[test]
fn an_unrecorded_leftover_is_deleted_only_if_its_tags_say_it_is_ours() {
    let (mut observed, recorded) = in_sync();
    let ours = "alertops/test/team-a/elb/ours".to_string();
    let theirs = "alertops/test/team-a/elb/theirs".to_string();
    for name in [&ours, &theirs] {
        let mut definition = desired().alarms[0].definition.clone();
        definition.alarm_name = name.clone();
        observed.alarms.insert(
            name.clone(),
            ObservedAlarm {
                arn: Some(arn(name)),
                definition,
                state: None,
                state_reason: None,
                state_changed_at: None,
            },
        );
    }
    let desired = desired();
    let reads = tag_reads(
        &desired.alarms,
        &desired.composites,
        &desired.rules,
        &observed,
        &recorded,
    );
    assert_eq!(
        reads.alarms,
        vec![(ours.clone(), arn(&ours)), (theirs.clone(), arn(&theirs))],
        "both are unrecorded: their tags decide"
    );
    observed
        .alarm_tags
        .insert(ours.clone(), owner().ownership_tags());
    observed
        .alarm_tags
        .insert(theirs.clone(), Tags::from([("Team".into(), "x".into())]));
    let actions = plan(&desired, TOPIC, &observed, &recorded, &owner(), false);
    assert_eq!(
        writes(&actions),
        vec![&Action::DeleteAlarms { names: vec![ours] }]
    );
}

#[test]
fn an_alarm_with_our_name_owned_by_someone_else_is_skipped_and_blocks() {
    let desired = desired();
    let name = desired.alarms[0].definition.alarm_name.clone();
    let mut observed = Observed::default();
    observed.alarms.insert(
        name.clone(),
        ObservedAlarm {
            arn: Some(arn(&name)),
            definition: desired.alarms[0].definition.clone(),
            state: None,
            state_reason: None,
            state_changed_at: None,
        },
    );
    observed
        .alarm_tags
        .insert(name.clone(), Tags::from([("Team".into(), "other".into())]));
    let actions = plan(
        &desired,
        TOPIC,
        &observed,
        &Recorded::default(),
        &owner(),
        false,
    );
    assert!(actions.contains(&Action::SkipUnownedAlarm { name: name.clone() }));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::UpdateAlarm { record, .. } if record.alarm_name == name)),
        "never modified"
    );
    let blocker = actions.iter().find_map(Action::blocker).unwrap();
    assert_eq!(blocker.reason, "AlarmNotOwned");
    assert!(blocker.message.contains(&name));
}

#[test]
fn a_rule_whose_target_was_removed_gets_it_back() {
    let (mut observed, recorded) = in_sync();
    let name = desired().rules[0].definition.rule_name.clone();
    observed.rule_targets.insert(name.clone(), Vec::new());
    let actions = plan(&desired(), TOPIC, &observed, &recorded, &owner(), false);
    match writes(&actions).as_slice() {
        [
            Action::UpdateRule {
                target: Some(target),
                definition: None,
                ..
            },
        ] => assert_eq!(target.arn, TOPIC),
        other => panic!("expected a target fix, got {other:?}"),
    }
}

#[test]
fn deletion_removes_what_is_ours_and_keeps_what_is_not() {
    let (mut observed, recorded) = in_sync();
    let foreign = "alertops/test/team-a/elb/foreign".to_string();
    let mut definition = desired().alarms[0].definition.clone();
    definition.alarm_name = foreign.clone();
    observed.alarms.insert(
        foreign.clone(),
        ObservedAlarm {
            arn: Some(arn(&foreign)),
            definition,
            state: None,
            state_reason: None,
            state_changed_at: None,
        },
    );
    observed.alarm_tags.insert(foreign.clone(), Tags::new());
    let recorded = Recorded {
        topic_arn: Some(TOPIC.into()),
        ..recorded
    };
    assert_eq!(
        deletion_tag_reads(&observed, &recorded).alarms,
        vec![(foreign.clone(), arn(&foreign))]
    );
    let actions = plan_deletion(
        &observed,
        &recorded,
        Some(&owner().ownership_tags()),
        &owner(),
    );
    let deleted_alarms = actions.iter().find_map(|a| match a {
        Action::DeleteAlarms { names } => Some(names.clone()),
        _ => None,
    });
    assert_eq!(deleted_alarms.unwrap().len(), 2, "ours only: {actions:#?}");
    assert!(actions.contains(&Action::DeleteTopic { arn: TOPIC.into() }));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::DeleteRule { .. }))
    );

    // A topic that no longer carries our tags is not deleted.
    let actions = plan_deletion(&observed, &recorded, Some(&Tags::new()), &owner());
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::DeleteTopic { .. }))
    );
}

#[test]
fn a_missing_topic_is_created_and_a_foreign_one_blocks() {
    let (topic, tags) = super::super::desired::topic(&spec(), &owner());
    match plan_topic(&topic, &tags, &ObservedTopic::Absent, &owner(), false) {
        TopicPlan::Create(TopicAction::Create { name, tags }) => {
            assert_eq!(name, owner().topic_name());
            assert!(owner().owns(&tags));
        }
        other => panic!("expected a creation, got {other:?}"),
    }
    let foreign = ObservedTopic::Present {
        arn: TOPIC.into(),
        tags: Tags::new(),
        attributes: HashMap::new(),
    };
    assert!(matches!(
        plan_topic(&topic, &tags, &foreign, &owner(), false),
        TopicPlan::Blocked(Blocker {
            reason: "TopicNotOwned",
            ..
        })
    ));
    assert!(matches!(
        plan_topic(&topic, &tags, &ObservedTopic::NameTaken, &owner(), false),
        TopicPlan::Blocked(Blocker {
            reason: "TopicNotOwned",
            ..
        })
    ));
}

#[test]
fn our_topic_gets_its_policy_display_name_and_tags_only_where_they_differ() {
    let (topic, tags) = super::super::desired::topic(&spec(), &owner());
    let attributes = HashMap::from([(
        "Policy".to_string(),
        topic_access_policy(TOPIC, &owner()).to_string(),
    )]);
    let present = ObservedTopic::Present {
        arn: TOPIC.into(),
        tags: tags.clone(),
        attributes: attributes.clone(),
    };
    assert_eq!(
        plan_topic(&topic, &tags, &present, &owner(), false),
        TopicPlan::Ready {
            arn: TOPIC.into(),
            owned: true,
            adopted: false,
            actions: Vec::new()
        }
    );
    let mut drifted_tags = tags.clone();
    drifted_tags.remove("Team");
    let drifted = ObservedTopic::Present {
        arn: TOPIC.into(),
        tags: drifted_tags,
        attributes: HashMap::new(),
    };
    let TopicPlan::Ready { actions, .. } = plan_topic(&topic, &tags, &drifted, &owner(), false)
    else {
        panic!("our topic is ready");
    };
    assert!(matches!(
        &actions[0],
        TopicAction::SetAttribute { name: "Policy", .. }
    ));
    assert!(
        matches!(&actions[1], TopicAction::Retag { changes, .. } if changes.add.contains_key("Team"))
    );
}

#[test]
fn a_referenced_topic_is_used_as_is_or_blocks_when_missing() {
    let referenced = DesiredTopic::Existing { arn: TOPIC.into() };
    let exists = ObservedTopic::Referenced {
        arn: TOPIC.into(),
        exists: true,
    };
    assert_eq!(
        plan_topic(&referenced, &Tags::new(), &exists, &owner(), false),
        TopicPlan::Ready {
            arn: TOPIC.into(),
            owned: false,
            adopted: false,
            actions: Vec::new()
        }
    );
    let missing = ObservedTopic::Referenced {
        arn: TOPIC.into(),
        exists: false,
    };
    assert!(matches!(
        plan_topic(&referenced, &Tags::new(), &missing, &owner(), false),
        TopicPlan::Blocked(Blocker {
            reason: "TopicNotFound",
            ..
        })
    ));
}

#[test]
fn adoption_takes_over_only_when_opted_in_and_adds_our_tags() {
    let desired = desired();
    let name = desired.alarms[0].definition.alarm_name.clone();
    let mut hand_made = desired.alarms[0].definition.clone();
    hand_made.threshold = 7.0;
    let mut observed = Observed::default();
    observed.alarms.insert(
        name.clone(),
        ObservedAlarm {
            arn: Some(arn(&name)),
            definition: hand_made,
            state: None,
            state_reason: None,
            state_changed_at: None,
        },
    );
    observed
        .alarm_tags
        .insert(name.clone(), Tags::from([("Team".into(), "legacy".into())]));
    let recorded = Recorded::default();

    let refused = plan(&desired, TOPIC, &observed, &recorded, &owner(), false);
    assert!(refused.contains(&Action::SkipUnownedAlarm { name: name.clone() }));

    let adopted = plan(&desired, TOPIC, &observed, &recorded, &owner(), true);
    let action = adopted
        .iter()
        .find(|a| matches!(a, Action::AdoptAlarm { .. }))
        .expect("adopted");
    let Action::AdoptAlarm {
        definition, tags, ..
    } = action
    else {
        unreachable!()
    };
    assert_eq!(definition.as_ref().unwrap().1, vec!["threshold"]);
    assert!(
        owner().owns(&tags.add),
        "our ownership tags are added: {tags:?}"
    );
    assert_eq!(action.notice().unwrap().reason, "Adopted");
    assert!(action.blocker().is_none());

    let (topic, topic_tags) = super::super::desired::topic(&spec(), &owner());
    let foreign = ObservedTopic::Present {
        arn: TOPIC.into(),
        tags: Tags::new(),
        attributes: HashMap::new(),
    };
    match plan_topic(&topic, &topic_tags, &foreign, &owner(), true) {
        TopicPlan::Ready {
            adopted: true,
            actions,
            ..
        } => assert!(actions.iter().any(
            |a| matches!(a, TopicAction::Retag { changes, .. } if owner().owns(&changes.add))
        )),
        other => panic!("expected an adoption, got {other:?}"),
    }
}

fn observed_in(state: &str, reason: &str) -> ObservedAlarm {
    let desired = desired();
    let definition = desired.alarms[0].definition.clone();
    ObservedAlarm {
        arn: Some(arn(&definition.alarm_name)),
        definition,
        state: Some(state.into()),
        state_reason: Some(reason.into()),
        state_changed_at: chrono::DateTime::from_timestamp(1_700_000_000, 0),
    }
}

#[test]
fn the_state_listed_with_the_definition_is_recorded_without_a_write() {
    let (mut observed, recorded) = in_sync();
    let name = desired().alarms[0].definition.alarm_name.clone();
    observed
        .alarms
        .insert(name.clone(), observed_in("ALARM", "Threshold Crossed"));
    let actions = plan(&desired(), TOPIC, &observed, &recorded, &owner(), false);
    assert!(writes(&actions).is_empty(), "{actions:#?}");
    let record = actions
        .iter()
        .find_map(|a| match a {
            Action::KeepAlarm { record } if record.alarm_name == name => Some(record),
            _ => None,
        })
        .expect("kept");
    assert_eq!(record.state, Some(AlarmState::Alarm));
    assert_eq!(record.state_reason.as_deref(), Some("Threshold Crossed"));
    assert_eq!(
        record.state_changed_at.as_ref().map(|t| t.0.as_second()),
        Some(1_700_000_000)
    );
}

fn status_in(state: Option<AlarmState>, reason: &str) -> AlarmStatus {
    AlarmStatus {
        name: "errors".into(),
        alarm_name: "alertops/test/team-a/elb/errors".into(),
        state,
        state_reason: Some(reason.into()),
        ..AlarmStatus::default()
    }
}

fn recorded_with(state: Option<AlarmState>) -> Recorded {
    let status = status_in(state, "before");
    Recorded {
        alarms: HashMap::from([(status.alarm_name.clone(), status)]),
        ..Recorded::default()
    }
}

#[test]
fn a_state_that_differs_from_the_recorded_one_is_an_event_alarm_as_a_warning() {
    let firing = [status_in(
        Some(AlarmState::Alarm),
        "Threshold Crossed: 3 of 5",
    )];
    let notices = state_transitions(&recorded_with(Some(AlarmState::Ok)), &firing);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].warning);
    assert_eq!(notices[0].reason, "AlarmStateChanged");
    assert_eq!(
        notices[0].note,
        "alarm errors (alertops/test/team-a/elb/errors) is ALARM (was OK): Threshold Crossed: 3 of 5"
    );

    let resolved = [status_in(
        Some(AlarmState::Ok),
        "Threshold no longer crossed",
    )];
    let notices = state_transitions(&recorded_with(Some(AlarmState::Alarm)), &resolved);
    assert_eq!(notices.len(), 1);
    assert!(!notices[0].warning);
    assert!(notices[0].note.contains("is OK (was ALARM)"), "{notices:?}");
}

#[test]
fn an_unchanged_state_is_no_event_and_a_first_sight_only_when_firing() {
    let ok = [status_in(Some(AlarmState::Ok), "same")];
    assert!(state_transitions(&recorded_with(Some(AlarmState::Ok)), &ok).is_empty());
    assert!(state_transitions(&recorded_with(None), &ok).is_empty());
    assert!(state_transitions(&Recorded::default(), &ok).is_empty());
    let firing = [status_in(Some(AlarmState::Alarm), "x")];
    let notices = state_transitions(&Recorded::default(), &firing);
    assert_eq!(notices.len(), 1);
    assert!(notices[0].note.contains("is ALARM: x"), "{notices:?}");
    let unknown = [status_in(None, "x")];
    assert!(state_transitions(&recorded_with(Some(AlarmState::Ok)), &unknown).is_empty());
}

#[test]
fn a_state_reason_in_an_event_is_one_bounded_line() {
    let reason = format!("line one\nline two\u{1b}[31m{}", "x".repeat(1000));
    let notices = state_transitions(
        &recorded_with(Some(AlarmState::Ok)),
        &[status_in(Some(AlarmState::Alarm), &reason)],
    );
    let note = &notices[0].note;
    assert!(!note.chars().any(char::is_control), "{note:?}");
    assert!(note.contains("line one line two"), "{note:?}");
    assert!(note.ends_with('…'));
    assert!(note.chars().count() < 400, "{}", note.chars().count());
}

#[test]
fn firing_counts_the_alarms_in_alarm() {
    let alarms = [
        status_in(Some(AlarmState::Alarm), ""),
        status_in(Some(AlarmState::Ok), ""),
        status_in(Some(AlarmState::Alarm), ""),
        status_in(Some(AlarmState::InsufficientData), ""),
        status_in(None, ""),
    ];
    assert_eq!(firing(&alarms), 2);
}
