//! What `alertops plan` found, as data, and its two renderings: text for people and JSON for CI
//! bots. Pure: nothing here reads AWS or files.
//!
//! The JSON document is a stable interface (`schemaVersion` 1, documented in `docs/plan.md`):
//! fields are only ever added; a change of meaning gets a new `schemaVersion`.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// The version of the JSON document.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything the plan found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    /// The cluster id the names and ownership tags were derived for.
    pub cluster_id: String,
    /// One entry per AWS resource, grouped by the alertops resource that declares it, in
    /// manifest order.
    pub resources: Vec<ResourceChange>,
    /// Why an alertops resource would not be Ready (someone else's resource holds a name, a
    /// source is missing or not allowed): what the controller would report in its `Ready`
    /// condition. Not changes; they do not change the exit code.
    pub blocked: Vec<Blocked>,
    /// The AWS calls the plan made; `writes` is always 0 (the command fails otherwise).
    pub aws_calls: AwsCalls,
}

/// How many AWS calls the plan made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AwsCalls {
    /// Reads (`Describe*`, `List*`, `Get*`).
    pub reads: usize,
    /// Writes: none, by construction and by check.
    pub writes: usize,
}

/// What would happen to one AWS resource.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceChange {
    /// The alertops resource that declares it: `Kind/namespace/name` (the value of the
    /// `alertops.dev/owner` tag).
    pub owner: String,
    /// What kind of AWS resource.
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    /// Its AWS name (alarm, rule, topic or queue name; a subscription as `topic → queue`).
    pub name: String,
    /// What would happen.
    pub action: ChangeAction,
    /// For updates and adoptions: each differing field with its current and desired value.
    /// For creations: the settings that are not visible in the name (attributes, policies).
    pub fields: Vec<FieldDiff>,
    /// The controller's own one-line account of the decision.
    pub reason: String,
}

/// The kinds of AWS resources alertops manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ResourceType {
    /// A CloudWatch metric alarm.
    CloudWatchAlarm,
    /// A CloudWatch composite alarm (a rule over the policy's alarms).
    CloudWatchCompositeAlarm,
    /// An EventBridge rule (with its target).
    EventBridgeRule,
    /// A CloudWatch Logs metric filter (of a log alarm).
    LogMetricFilter,
    /// An SNS topic.
    SnsTopic,
    /// An SQS queue (main or dead-letter).
    SqsQueue,
    /// An SNS subscription of a queue to a topic.
    SnsSubscription,
}

impl ResourceType {
    /// How a person calls it.
    pub fn label(self) -> &'static str {
        match self {
            ResourceType::CloudWatchAlarm => "CloudWatch alarm",
            ResourceType::CloudWatchCompositeAlarm => "CloudWatch composite alarm",
            ResourceType::EventBridgeRule => "EventBridge rule",
            ResourceType::LogMetricFilter => "CloudWatch Logs metric filter",
            ResourceType::SnsTopic => "SNS topic",
            ResourceType::SqsQueue => "SQS queue",
            ResourceType::SnsSubscription => "SNS subscription",
        }
    }
}

/// What would happen to one AWS resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeAction {
    /// It does not exist and would be created.
    Create,
    /// It is ours and would be changed (see the fields).
    Update,
    /// It is ours and no manifest declares it any more: it would be deleted.
    Delete,
    /// It exists without our ownership tags and the policy opted in to adopting it: our tags
    /// would be added and what differs rewritten.
    Adopt,
    /// It matches (or is referenced and never modified).
    NoChange,
    /// A resource of the name alertops derives exists and someone else owns it: left alone.
    NotOwned,
}

impl ChangeAction {
    /// Whether applying it writes to AWS.
    pub fn is_change(self) -> bool {
        matches!(
            self,
            ChangeAction::Create
                | ChangeAction::Update
                | ChangeAction::Delete
                | ChangeAction::Adopt
        )
    }

    fn symbol(self) -> &'static str {
        match self {
            ChangeAction::Create => "+",
            ChangeAction::Update => "~",
            ChangeAction::Delete => "-",
            ChangeAction::Adopt => "&",
            ChangeAction::NoChange => "=",
            ChangeAction::NotOwned => "!",
        }
    }

    fn word(self) -> &'static str {
        match self {
            ChangeAction::Create => "create",
            ChangeAction::Update => "update",
            ChangeAction::Delete => "delete",
            ChangeAction::Adopt => "adopt",
            ChangeAction::NoChange => "no change",
            ChangeAction::NotOwned => "not owned, left alone",
        }
    }
}

/// One field: what AWS has now (`null` when absent or for a creation) and what the manifests
/// want (`null` when it would be removed).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldDiff {
    /// The field as the AWS API names it (`threshold`, `eventPattern`, `Policy`), or
    /// `tags.KEY` for one tag.
    pub field: String,
    /// The current value.
    pub old: Value,
    /// The desired value.
    pub new: Value,
}

/// Why an alertops resource would not be Ready, as its `Ready` condition would say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Blocked {
    /// `Kind/namespace/name`.
    pub owner: String,
    /// The condition reason, e.g. `AlarmNotOwned`, `SourceNotReady`.
    pub reason: String,
    /// The condition message.
    pub message: String,
}

/// Counts by action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// To create.
    pub create: usize,
    /// To update.
    pub update: usize,
    /// To delete.
    pub delete: usize,
    /// To adopt.
    pub adopt: usize,
    /// Unchanged.
    pub no_change: usize,
    /// Left alone: owned by someone else.
    pub not_owned: usize,
}

impl PlanReport {
    /// Counts by action.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for resource in &self.resources {
            *match resource.action {
                ChangeAction::Create => &mut summary.create,
                ChangeAction::Update => &mut summary.update,
                ChangeAction::Delete => &mut summary.delete,
                ChangeAction::Adopt => &mut summary.adopt,
                ChangeAction::NoChange => &mut summary.no_change,
                ChangeAction::NotOwned => &mut summary.not_owned,
            } += 1;
        }
        summary
    }

    /// Whether applying the manifests would write to AWS.
    pub fn has_changes(&self) -> bool {
        self.resources.iter().any(|r| r.action.is_change())
    }

    /// The JSON document for CI bots (see the module docs).
    pub fn to_json(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.insert("schemaVersion".into(), SCHEMA_VERSION.into());
            map.insert("changes".into(), self.has_changes().into());
            map.insert(
                "summary".into(),
                serde_json::to_value(self.summary()).unwrap_or(Value::Null),
            );
        }
        value
    }

    /// The text for people: per alertops resource, each AWS resource that would change (with
    /// field-level old → new), then what blocks, then one summary line. Unchanged resources are
    /// counted, not listed. Every value from AWS is shown as JSON, so control characters and
    /// terminal escapes arrive escaped.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let mut owners: Vec<&str> = Vec::new();
        for owner in self
            .resources
            .iter()
            .map(|r| r.owner.as_str())
            .chain(self.blocked.iter().map(|b| b.owner.as_str()))
        {
            if !owners.contains(&owner) {
                owners.push(owner);
            }
        }
        for owner in owners {
            let _ = writeln!(out, "{}", printable(owner));
            let mine = self.resources.iter().filter(|r| r.owner == owner);
            let mut unchanged = 0;
            for resource in mine {
                if resource.action == ChangeAction::NoChange {
                    unchanged += 1;
                    continue;
                }
                let _ = writeln!(
                    out,
                    "  {} {} {} {}",
                    resource.action.symbol(),
                    resource.action.word(),
                    resource.resource_type.label(),
                    printable(&resource.name)
                );
                if resource.action == ChangeAction::Create {
                    for field in &resource.fields {
                        let _ = writeln!(
                            out,
                            "      {}: {}",
                            printable(&field.field),
                            shown(&field.new)
                        );
                    }
                } else {
                    for field in &resource.fields {
                        let _ = writeln!(
                            out,
                            "      {}: {} → {}",
                            printable(&field.field),
                            shown(&field.old),
                            shown(&field.new)
                        );
                    }
                }
                if matches!(
                    resource.action,
                    ChangeAction::NotOwned | ChangeAction::Delete
                ) {
                    let _ = writeln!(out, "      ({})", printable(&resource.reason));
                }
            }
            if unchanged > 0 {
                let _ = writeln!(out, "  = {unchanged} unchanged");
            }
            for blocked in self.blocked.iter().filter(|b| b.owner == owner) {
                let _ = writeln!(
                    out,
                    "  ! not Ready ({}): {}",
                    printable(&blocked.reason),
                    printable(&blocked.message)
                );
            }
        }
        let s = self.summary();
        let _ = writeln!(
            out,
            "\nPlan for cluster {}: {} to create, {} to update, {} to delete, {} to adopt, {} \
             owned by someone else (left alone), {} unchanged.",
            printable(&self.cluster_id),
            s.create,
            s.update,
            s.delete,
            s.adopt,
            s.not_owned,
            s.no_change
        );
        if !self.has_changes() {
            let _ = writeln!(out, "No changes: AWS matches the manifests.");
        }
        out
    }
}

/// A value as compact JSON (strings quoted and escaped); `(none)` for null.
fn shown(value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_string(),
        other => other.to_string(),
    }
}

/// Text with control characters (terminal escapes, newlines) escaped, so a name or message from
/// AWS prints on its line and cannot drive the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OWNER: &str = "AlarmPolicy/platform/broker-elb";

    fn change(action: ChangeAction, name: &str, fields: Vec<FieldDiff>) -> ResourceChange {
        ResourceChange {
            owner: OWNER.into(),
            resource_type: ResourceType::CloudWatchAlarm,
            name: name.into(),
            action,
            fields,
            reason: format!("{name}: the reason"),
        }
    }

    fn report() -> PlanReport {
        PlanReport {
            cluster_id: "prod".into(),
            resources: vec![
                change(
                    ChangeAction::Update,
                    "alertops/prod/platform/broker-elb/errors",
                    vec![FieldDiff {
                        field: "threshold".into(),
                        old: json!(100.0),
                        new: json!(200.0),
                    }],
                ),
                change(
                    ChangeAction::Create,
                    "alertops/prod/platform/broker-elb/new",
                    vec![],
                ),
                change(
                    ChangeAction::Delete,
                    "alertops/prod/platform/broker-elb/old",
                    vec![],
                ),
                change(
                    ChangeAction::NoChange,
                    "alertops/prod/platform/broker-elb/same",
                    vec![],
                ),
                change(
                    ChangeAction::NotOwned,
                    "alertops/prod/platform/broker-elb/theirs",
                    vec![],
                ),
            ],
            blocked: vec![Blocked {
                owner: OWNER.into(),
                reason: "AlarmNotOwned".into(),
                message: "someone else's".into(),
            }],
            aws_calls: AwsCalls {
                reads: 7,
                writes: 0,
            },
        }
    }

    #[test]
    fn text_shows_each_change_with_old_and_new_and_counts_the_rest() {
        let text = report().render_text();
        assert!(
            text.contains("  ~ update CloudWatch alarm alertops/prod/platform/broker-elb/errors\n      threshold: 100.0 → 200.0\n"),
            "{text}"
        );
        assert!(
            text.contains("  + create CloudWatch alarm alertops/prod/platform/broker-elb/new\n")
        );
        assert!(
            text.contains("  - delete CloudWatch alarm alertops/prod/platform/broker-elb/old\n")
        );
        assert!(text.contains(
            "  ! not owned, left alone CloudWatch alarm alertops/prod/platform/broker-elb/theirs\n"
        ));
        assert!(
            !text.contains("/same"),
            "unchanged ones are counted: {text}"
        );
        assert!(text.contains("  = 1 unchanged\n"), "{text}");
        assert!(
            text.contains("not Ready (AlarmNotOwned): someone else's"),
            "{text}"
        );
        assert!(
            text.contains("1 to create, 1 to update, 1 to delete, 0 to adopt, 1 owned by someone else (left alone), 1 unchanged."),
            "{text}"
        );
        assert!(!text.contains("No changes"));
    }

    #[test]
    fn no_changes_is_said_and_blockers_do_not_count_as_changes() {
        let mut quiet = report();
        quiet.resources.retain(|r| !r.action.is_change());
        assert!(!quiet.has_changes());
        assert!(
            quiet
                .render_text()
                .contains("No changes: AWS matches the manifests.")
        );
        assert!(report().has_changes());
    }

    #[test]
    fn json_follows_the_documented_schema() {
        let value = report().to_json();
        assert_eq!(value["schemaVersion"], 1);
        assert_eq!(value["clusterId"], "prod");
        assert_eq!(value["changes"], true);
        assert_eq!(
            value["summary"],
            json!({"create": 1, "update": 1, "delete": 1, "adopt": 0, "noChange": 1, "notOwned": 1})
        );
        let first = &value["resources"][0];
        assert_eq!(first["owner"], OWNER);
        assert_eq!(first["type"], "CloudWatchAlarm");
        assert_eq!(first["action"], "update");
        assert_eq!(
            first["fields"][0],
            json!({"field": "threshold", "old": 100.0, "new": 200.0})
        );
        assert_eq!(value["resources"][3]["action"], "noChange");
        assert_eq!(value["resources"][4]["action"], "notOwned");
        assert_eq!(value["blocked"][0]["reason"], "AlarmNotOwned");
        assert_eq!(value["awsCalls"], json!({"reads": 7, "writes": 0}));
    }

    #[test]
    fn text_from_aws_cannot_drive_the_terminal() {
        let mut hostile = report();
        hostile.resources[0].fields[0] = FieldDiff {
            field: "description".into(),
            old: json!("\u{1b}[31mred\nsecond line"),
            new: json!("plain"),
        };
        hostile.resources[1].name = "name\u{1b}]0;title\u{7}".into();
        let text = hostile.render_text();
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(!text.contains('\u{7}'), "{text:?}");
        assert!(
            text.contains(r#"description: "\u001b[31mred\nsecond line" → "plain""#),
            "{text}"
        );
    }
}
