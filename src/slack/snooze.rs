//! Snoozes: a person silences one problem's Slack posts for a while from the message's Snooze
//! buttons, and the silence is a Kubernetes object everyone can see with `kubectl`.
//!
//! - **What is snoozed**: one alert fingerprint (one alarm, one EMR cluster, one ECS service...,
//!   see [`crate::alert::Fingerprint`]) on one AlertRoute. Firing alerts of it are not posted to
//!   the route's Slack channel until the snooze ends; resolutions still update the message (an
//!   update does not notify), email and digests are unaffected (digests mark them as snoozed).
//! - **Where it is recorded**: a ConfigMap per route and fingerprint, `alertops-snooze-…`, owned
//!   by the AlertRoute (deleted with it), labelled [`SNOOZE_LABEL`]`=<route>`, with who, until
//!   when, since when, on which alert and message in annotations
//!   (`kubectl get configmaps -l alertops.dev/snooze -o yaml`). Snoozing again the same problem
//!   replaces the end and the person (its count goes on while it is running).
//! - **Counting**: each suppressed SQS message adds a data key `m.<message id>`: the count is the
//!   number of such keys, so a message counted twice (redelivered before its delete) counts once
//!   and replicas never overwrite each other (merge patches of their own keys).
//! - **Ending exactly once**: the consumer replica that first writes [`ENDED_AT`] with the
//!   map's resourceVersion as precondition posts "ended, N suppressed" in the thread; the other's
//!   write fails and it posts nothing. The ended record is kept [`RETENTION_AFTER_END`] so that
//!   digests of that period still mark the alerts, then deleted by the consumer.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use serde::{Deserialize, Serialize};

use super::client::PostedMessage;
use crate::alert::Fingerprint;
use crate::k8s::{ClusterApi, ClusterError, Created};
use crate::resources::AlertRoute;

/// Label on every snooze ConfigMap; its value is the route's name (a hash when longer than a
/// label value may be).
pub const SNOOZE_LABEL: &str = "alertops.dev/snooze";
/// Annotation: Slack user id of who snoozed.
pub const SNOOZED_BY: &str = "alertops.dev/snoozed-by";
/// Annotation: their Slack user name, when Slack sent it.
pub const SNOOZED_BY_NAME: &str = "alertops.dev/snoozed-by-name";
/// Annotation: when the snooze ends (RFC 3339).
pub const UNTIL: &str = "alertops.dev/until";
/// Annotation: when it was made (RFC 3339).
pub const SINCE: &str = "alertops.dev/since";
/// Annotation: the snoozed fingerprint.
pub const FINGERPRINT: &str = "alertops.dev/fingerprint";
/// Annotation: why — the alert it was made from (its message's text, cut).
pub const REASON: &str = "alertops.dev/reason";
/// Annotation: the choice pressed (`1 h`, `4 h`, `until tomorrow 09:00`).
pub const CHOICE: &str = "alertops.dev/choice";
/// Annotation: channel of the alert's message, for the thread notes.
pub const CHANNEL: &str = "alertops.dev/channel";
/// Annotation: ts of the alert's message.
pub const MESSAGE_TS: &str = "alertops.dev/message-ts";
/// Annotation: when the end was announced (RFC 3339); absent while running.
pub const ENDED_AT: &str = "alertops.dev/ended-at";
/// Prefix of the data keys of counted messages.
const COUNTED_PREFIX: &str = "m.";
/// Prefix of the ConfigMap names.
const NAME_PREFIX: &str = "alertops-snooze-";
/// Characters of the reason kept.
const REASON_CHARS: usize = 200;
/// How long an ended snooze stays (for digests), after its end.
pub const RETENTION_AFTER_END: Duration = Duration::days(7);

/// How long a Snooze button silences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SnoozeChoice {
    /// One hour.
    #[serde(rename = "1h")]
    OneHour,
    /// Four hours.
    #[serde(rename = "4h")]
    FourHours,
    /// Until 09:00 tomorrow in the route's time zone.
    #[serde(rename = "tm")]
    UntilTomorrowMorning,
}

impl SnoozeChoice {
    /// Every choice, in button order.
    pub const ALL: [SnoozeChoice; 3] = [
        SnoozeChoice::OneHour,
        SnoozeChoice::FourHours,
        SnoozeChoice::UntilTomorrowMorning,
    ];

    /// How people read it: `1 h`, `4 h`, `until tomorrow 09:00`.
    pub fn label(self) -> &'static str {
        match self {
            SnoozeChoice::OneHour => "1 h",
            SnoozeChoice::FourHours => "4 h",
            SnoozeChoice::UntilTomorrowMorning => "until tomorrow 09:00",
        }
    }

    /// When a snooze made at `now` ends; "tomorrow 09:00" is in `zone` (a 09:00 that does not
    /// exist there, skipped by a clock change, becomes the first instant after it).
    pub fn until(self, now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        match self {
            SnoozeChoice::OneHour => now + Duration::hours(1),
            SnoozeChoice::FourHours => now + Duration::hours(4),
            SnoozeChoice::UntilTomorrowMorning => {
                let local = now.with_timezone(&zone);
                let tomorrow = local.date_naive() + Duration::days(1);
                let nine = tomorrow.and_time(NaiveTime::from_hms_opt(9, 0, 0).expect("09:00"));
                // 09:00 skipped by a clock change: the first instant after the gap.
                zone.from_local_datetime(&nine)
                    .earliest()
                    .or_else(|| {
                        zone.from_local_datetime(&(nine + Duration::hours(1)))
                            .earliest()
                    })
                    .map(|at| at.with_timezone(&Utc))
                    .unwrap_or_else(|| Utc.from_utc_datetime(&nine))
            }
        }
    }
}

/// The route's time zone for snoozes: `actions.snooze.timeZone`, UTC when unset or unknown.
pub fn route_time_zone(route: &AlertRoute) -> Tz {
    route
        .spec
        .actions
        .as_ref()
        .and_then(|a| a.snooze.as_ref())
        .and_then(|s| s.time_zone.as_deref())
        .and_then(|zone| zone.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC)
}

/// Whether the route shows Snooze buttons.
pub fn route_snoozes(route: &AlertRoute) -> bool {
    route
        .spec
        .actions
        .as_ref()
        .and_then(|a| a.snooze.as_ref())
        .is_some_and(|s| s.enabled)
}

/// One snooze as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snooze {
    /// Namespace of the route and of the ConfigMap.
    pub namespace: String,
    /// Name of the ConfigMap.
    pub name: String,
    /// The route's label value.
    pub route_label: String,
    /// The snoozed problem.
    pub fingerprint: Fingerprint,
    /// Slack user id of who snoozed.
    pub by: String,
    /// Their user name, when known.
    pub by_name: Option<String>,
    /// When it was made.
    pub since: DateTime<Utc>,
    /// When it ends.
    pub until: DateTime<Utc>,
    /// The choice pressed.
    pub choice: Option<String>,
    /// The alert it was made from.
    pub reason: Option<String>,
    /// The alert's message, for thread notes.
    pub message: Option<PostedMessage>,
    /// When its end was announced.
    pub ended_at: Option<DateTime<Utc>>,
    /// SQS messages suppressed while it ran.
    pub suppressed: usize,
    /// The ConfigMap's resourceVersion when read.
    pub resource_version: Option<String>,
}

impl Snooze {
    /// Whether it silences its problem at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && now < self.until
    }

    /// Whether its end is due to be announced at `now`.
    pub fn is_due_to_end(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && now >= self.until
    }

    /// Whether the record may go at `now` (ended and kept long enough for digests).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_some() && now >= self.until + RETENTION_AFTER_END
    }

    /// Whether an alert of `fingerprint` at `at` fell inside it (for digests).
    pub fn covers(&self, fingerprint: &Fingerprint, at: DateTime<Utc>) -> bool {
        &self.fingerprint == fingerprint && self.since <= at && at < self.until
    }

    /// Reads a snooze ConfigMap; `None` when it is not one or lacks what a snooze must have.
    pub fn from_config_map(map: &ConfigMap) -> Option<Snooze> {
        let meta = &map.metadata;
        let route_label = meta.labels.as_ref()?.get(SNOOZE_LABEL)?.clone();
        let annotations = meta.annotations.as_ref()?;
        let text = |key: &str| annotations.get(key).filter(|v| !v.is_empty()).cloned();
        let time = |key: &str| {
            annotations
                .get(key)
                .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let message = text(CHANNEL)
            .zip(text(MESSAGE_TS))
            .map(|(channel, ts)| PostedMessage { channel, ts });
        let suppressed = map
            .data
            .iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(COUNTED_PREFIX))
            .count();
        Some(Snooze {
            namespace: meta.namespace.clone()?,
            name: meta.name.clone()?,
            route_label,
            fingerprint: Fingerprint::from_raw(text(FINGERPRINT)?),
            by: text(SNOOZED_BY)?,
            by_name: text(SNOOZED_BY_NAME),
            since: time(SINCE)?,
            until: time(UNTIL)?,
            choice: text(CHOICE),
            reason: text(REASON),
            message,
            ended_at: time(ENDED_AT),
            suppressed,
            resource_version: meta.resource_version.clone(),
        })
    }
}

/// The active snooze of `fingerprint` among `snoozes` at `now`.
pub fn active_for<'a>(
    snoozes: &'a [Snooze],
    fingerprint: &Fingerprint,
    now: DateTime<Utc>,
) -> Option<&'a Snooze> {
    snoozes
        .iter()
        .find(|s| &s.fingerprint == fingerprint && s.is_active(now))
}

/// A label value naming the route (at most 63 characters).
pub fn route_label(route: &str) -> String {
    if route.len() <= 63 {
        route.to_string()
    } else {
        crate::names::short_hash(route)
    }
}

/// Name of the snooze ConfigMap of `route` and `fingerprint` (a valid object name; long route
/// names are hashed).
pub fn config_map_name(route: &str, fingerprint: &Fingerprint) -> String {
    let name = format!("{NAME_PREFIX}{route}-{fingerprint}");
    if name.len() <= 253 {
        name
    } else {
        format!(
            "{NAME_PREFIX}{}-{fingerprint}",
            crate::names::short_hash(route)
        )
    }
}

/// What a Snooze press asks to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnoozeRequest {
    /// The snoozed problem.
    pub fingerprint: Fingerprint,
    /// How long.
    pub choice: SnoozeChoice,
    /// Slack user id of who pressed.
    pub by: String,
    /// Their user name, when Slack sent it.
    pub by_name: Option<String>,
    /// The alert's message text (why).
    pub reason: Option<String>,
    /// The alert's message.
    pub message: Option<PostedMessage>,
    /// When it was pressed.
    pub now: DateTime<Utc>,
}

/// The annotations of a snooze for `request` ending at `until`.
fn annotations(request: &SnoozeRequest, until: DateTime<Utc>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::from([
        (FINGERPRINT.to_string(), request.fingerprint.to_string()),
        (SNOOZED_BY.to_string(), request.by.clone()),
        (SINCE.to_string(), request.now.to_rfc3339()),
        (UNTIL.to_string(), until.to_rfc3339()),
        (CHOICE.to_string(), request.choice.label().to_string()),
    ]);
    if let Some(name) = &request.by_name {
        out.insert(SNOOZED_BY_NAME.to_string(), name.clone());
    }
    if let Some(reason) = &request.reason {
        out.insert(
            REASON.to_string(),
            reason.chars().take(REASON_CHARS).collect(),
        );
    }
    if let Some(message) = &request.message {
        out.insert(CHANNEL.to_string(), message.channel.clone());
        out.insert(MESSAGE_TS.to_string(), message.ts.clone());
    }
    out
}

/// The ConfigMap recording `request` on `route`, owned by the route.
pub fn snooze_config_map(
    route: &AlertRoute,
    request: &SnoozeRequest,
    until: DateTime<Utc>,
) -> Result<ConfigMap, ClusterError> {
    let missing = |what: &str| ClusterError::Invalid(format!("the AlertRoute has no {what}"));
    let namespace = route
        .metadata
        .namespace
        .clone()
        .ok_or_else(|| missing("namespace"))?;
    let name = route.metadata.name.clone().ok_or_else(|| missing("name"))?;
    let uid = route.metadata.uid.clone().ok_or_else(|| missing("uid"))?;
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(config_map_name(&name, &request.fingerprint)),
            namespace: Some(namespace),
            labels: Some(BTreeMap::from([
                (SNOOZE_LABEL.to_string(), route_label(&name)),
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "alertops".to_string(),
                ),
                (
                    "app.kubernetes.io/component".to_string(),
                    "snooze".to_string(),
                ),
            ])),
            annotations: Some(annotations(request, until)),
            owner_references: Some(vec![OwnerReference {
                api_version: AlertRoute::api_version(&()).to_string(),
                kind: AlertRoute::kind(&()).to_string(),
                name,
                uid,
                controller: Some(false),
                block_owner_deletion: Some(false),
            }]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::new()),
        ..ConfigMap::default()
    })
}

/// Records `request` on `route`: creates its snooze, or — when the problem is already snoozed —
/// moves the end and the person (a running snooze keeps its count; an ended one starts again
/// from zero). Returns the snooze as stored.
pub async fn record<C: ClusterApi>(
    cluster: &C,
    route: &AlertRoute,
    request: &SnoozeRequest,
    zone: Tz,
) -> Result<Snooze, ClusterError> {
    let until = request.choice.until(request.now, zone);
    let map = snooze_config_map(route, request, until)?;
    let unreadable = || ClusterError::Invalid("the stored snooze does not read back".into());
    let existing = match cluster.create(&map).await? {
        Created::New(stored) => return Snooze::from_config_map(&stored).ok_or_else(unreadable),
        Created::AlreadyExisted(existing) => existing,
    };
    let (namespace, name) = crate::k8s::namespace_and_name(&map)?;
    let mut annotations: serde_json::Map<String, serde_json::Value> = annotations(request, until)
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    annotations.insert(ENDED_AT.to_string(), serde_json::Value::Null);
    let mut patch = serde_json::json!({ "metadata": { "annotations": annotations } });
    let previous = Snooze::from_config_map(&existing);
    if previous.as_ref().is_none_or(|s| !s.is_active(request.now)) {
        // A new snooze of a problem snoozed before: its count starts from zero.
        let reset: serde_json::Map<String, serde_json::Value> = existing
            .data
            .iter()
            .flatten()
            .map(|(k, _)| (k.clone(), serde_json::Value::Null))
            .collect();
        patch["data"] = serde_json::Value::Object(reset);
    }
    let stored: ConfigMap = cluster
        .merge_patch(&namespace, &name, &patch)
        .await?
        .ok_or_else(|| ClusterError::NotFound(format!("ConfigMap {namespace}/{name}")))?;
    Snooze::from_config_map(&stored).ok_or_else(unreadable)
}

/// Every snooze of the route named `route` in `namespace`.
pub async fn list<C: ClusterApi>(
    cluster: &C,
    namespace: &str,
    route: &str,
) -> Result<Vec<Snooze>, ClusterError> {
    let label = route_label(route);
    Ok(list_namespace(cluster, namespace)
        .await?
        .into_iter()
        .filter(|s| s.route_label == label)
        .collect())
}

/// Every snooze in `namespace`, of any route (digests read them all).
pub async fn list_namespace<C: ClusterApi>(
    cluster: &C,
    namespace: &str,
) -> Result<Vec<Snooze>, ClusterError> {
    Ok(cluster
        .list_labelled::<ConfigMap>(namespace, SNOOZE_LABEL)
        .await?
        .iter()
        .filter_map(Snooze::from_config_map)
        .collect())
}

/// Counts the SQS messages `message_ids` as suppressed by `snooze` (idempotent: one key per
/// message).
pub async fn count_suppressed<C: ClusterApi>(
    cluster: &C,
    snooze: &Snooze,
    message_ids: &[&str],
    now: DateTime<Utc>,
) -> Result<(), ClusterError> {
    let data: serde_json::Map<String, serde_json::Value> = message_ids
        .iter()
        .map(|id| (counted_key(id), serde_json::Value::String(now.to_rfc3339())))
        .collect();
    cluster
        .merge_patch::<ConfigMap>(
            &snooze.namespace,
            &snooze.name,
            &serde_json::json!({ "data": data }),
        )
        .await?
        .map(|_| ())
        .ok_or_else(|| ClusterError::NotFound(format!("snooze {}", snooze.name)))
}

/// The data key of a counted message: ConfigMap keys allow `[-._a-zA-Z0-9]`, SQS message ids
/// are UUIDs; anything else is replaced.
fn counted_key(message_id: &str) -> String {
    let safe: String = message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(240)
        .collect();
    format!("{COUNTED_PREFIX}{safe}")
}

/// Claims the announcement of `snooze`'s end: writes [`ENDED_AT`] only if the ConfigMap is
/// still the version read. `Ok(true)`: this caller announces; `Ok(false)`: another replica
/// did, or the snooze changed (re-read next time).
pub async fn claim_end<C: ClusterApi>(
    cluster: &C,
    snooze: &Snooze,
    now: DateTime<Utc>,
) -> Result<bool, ClusterError> {
    let Some(version) = &snooze.resource_version else {
        return Ok(false);
    };
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": version,
            "annotations": { ENDED_AT: now.to_rfc3339() },
        }
    });
    match cluster
        .merge_patch::<ConfigMap>(&snooze.namespace, &snooze.name, &patch)
        .await
    {
        Ok(stored) => Ok(stored.is_some()),
        Err(error) if error.is_conflict() => Ok(false),
        Err(error) => Err(error),
    }
}

/// Gives back a claimed end (its announcement failed), so that it is announced next time.
pub async fn release_end<C: ClusterApi>(cluster: &C, snooze: &Snooze) -> Result<(), ClusterError> {
    let patch = serde_json::json!({ "metadata": { "annotations": { ENDED_AT: null } } });
    cluster
        .merge_patch::<ConfigMap>(&snooze.namespace, &snooze.name, &patch)
        .await
        .map(|_| ())
}

/// Deletes an expired snooze.
pub async fn remove<C: ClusterApi>(cluster: &C, snooze: &Snooze) -> Result<(), ClusterError> {
    cluster
        .delete::<ConfigMap>(&snooze.namespace, &snooze.name)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::MemoryCluster;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn route() -> AlertRoute {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
            "metadata": {"name": "data-eng", "namespace": "team", "uid": "u-1"},
            "spec": {
                "sources": [{"topicArn": "arn:aws:sns:us-east-1:123456789012:t"}],
                "actions": {"snooze": {"timeZone": "America/Los_Angeles"}},
            },
        }))
        .unwrap()
    }

    fn request(choice: SnoozeChoice, now: &str) -> SnoozeRequest {
        SnoozeRequest {
            fingerprint: Fingerprint::from_raw("0123abcd"),
            choice,
            by: "U0ALICE".into(),
            by_name: Some("alice".into()),
            reason: Some("[Firing] CPU high".into()),
            message: Some(PostedMessage {
                channel: "C1".into(),
                ts: "1700000000.000001".into(),
            }),
            now: at(now),
        }
    }

    #[test]
    fn choices_end_when_they_say_in_the_route_zone() {
        let now = at("2024-05-01T22:30:00Z");
        assert_eq!(
            SnoozeChoice::OneHour.until(now, Tz::UTC),
            at("2024-05-01T23:30:00Z")
        );
        assert_eq!(
            SnoozeChoice::FourHours.until(now, Tz::UTC),
            at("2024-05-02T02:30:00Z")
        );
        assert_eq!(
            SnoozeChoice::UntilTomorrowMorning.until(now, Tz::UTC),
            at("2024-05-02T09:00:00Z")
        );
        // 22:30 UTC is 15:30 in Los Angeles (PDT, UTC-7): tomorrow 09:00 there is 16:00 UTC.
        assert_eq!(
            SnoozeChoice::UntilTomorrowMorning.until(now, route_time_zone(&route())),
            at("2024-05-02T16:00:00Z")
        );
        assert_eq!(
            route_time_zone(
                &serde_json::from_value::<AlertRoute>(serde_json::json!({
                    "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
                    "metadata": {"name": "r", "namespace": "n"},
                    "spec": {"sources": [], "actions": {"snooze": {"timeZone": "Mars/Olympus"}}},
                }))
                .unwrap()
            ),
            Tz::UTC,
            "an unknown zone is UTC"
        );
    }

    #[test]
    fn a_snooze_is_active_until_its_end_and_covers_its_window() {
        let map = snooze_config_map(
            &route(),
            &request(SnoozeChoice::OneHour, "2024-05-01T10:00:00Z"),
            at("2024-05-01T11:00:00Z"),
        )
        .unwrap();
        let mut map = map;
        map.metadata.namespace = Some("team".into());
        let snooze = Snooze::from_config_map(&map).expect("reads back");
        assert_eq!(snooze.by, "U0ALICE");
        assert_eq!(snooze.route_label, "data-eng");
        let fp = Fingerprint::from_raw("0123abcd");
        assert!(snooze.is_active(at("2024-05-01T10:59:59Z")));
        assert!(!snooze.is_active(at("2024-05-01T11:00:00Z")));
        assert!(snooze.is_due_to_end(at("2024-05-01T11:00:00Z")));
        assert!(snooze.covers(&fp, at("2024-05-01T10:30:00Z")));
        assert!(!snooze.covers(&fp, at("2024-05-01T09:59:00Z")));
        assert!(!snooze.covers(&Fingerprint::from_raw("other"), at("2024-05-01T10:30:00Z")));
        let snoozes = vec![snooze.clone()];
        assert!(active_for(&snoozes, &fp, at("2024-05-01T10:30:00Z")).is_some());
        assert!(
            active_for(
                &snoozes,
                &Fingerprint::from_raw("x"),
                at("2024-05-01T10:30:00Z")
            )
            .is_none()
        );
        let mut ended = snooze;
        ended.ended_at = Some(at("2024-05-01T11:00:05Z"));
        assert!(
            !ended.is_active(at("2024-05-01T10:30:00Z")),
            "an announced end ends it"
        );
        assert!(!ended.is_expired(at("2024-05-07T11:00:00Z")));
        assert!(ended.is_expired(at("2024-05-08T11:00:00Z")));
    }

    #[tokio::test]
    async fn record_count_and_end_once() {
        let cluster = MemoryCluster::interleaving();
        let route = route();
        let first = record(
            &cluster,
            &route,
            &request(SnoozeChoice::OneHour, "2024-05-01T10:00:00Z"),
            Tz::UTC,
        )
        .await
        .unwrap();
        assert_eq!(first.until, at("2024-05-01T11:00:00Z"));
        count_suppressed(
            &cluster,
            &first,
            &["m-1", "m-2"],
            at("2024-05-01T10:10:00Z"),
        )
        .await
        .unwrap();
        // A redelivered message counts once.
        count_suppressed(&cluster, &first, &["m-2"], at("2024-05-01T10:11:00Z"))
            .await
            .unwrap();
        let listed = list(&cluster, "team", "data-eng").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].suppressed, 2);

        // Snoozing again while it runs moves the end and keeps the count.
        let mut again = request(SnoozeChoice::FourHours, "2024-05-01T10:30:00Z");
        again.by = "U0BOB".into();
        let moved = record(&cluster, &route, &again, Tz::UTC).await.unwrap();
        assert_eq!(
            (moved.by.as_str(), moved.until, moved.suppressed),
            ("U0BOB", at("2024-05-01T14:30:00Z"), 2)
        );

        // Two replicas see it due: one claims the end.
        let due = list(&cluster, "team", "data-eng").await.unwrap().remove(0);
        let now = at("2024-05-01T14:31:00Z");
        let (a, b) = tokio::join!(
            claim_end(&cluster, &due, now),
            claim_end(&cluster, &due, now)
        );
        assert_eq!(u8::from(a.unwrap()) + u8::from(b.unwrap()), 1);
        let ended = list(&cluster, "team", "data-eng").await.unwrap().remove(0);
        assert_eq!(ended.ended_at, Some(now));
        assert!(
            !claim_end(&cluster, &due, now).await.unwrap(),
            "a stale read claims nothing"
        );

        // A new snooze of the ended problem counts from zero.
        let fresh = record(
            &cluster,
            &route,
            &request(SnoozeChoice::OneHour, "2024-05-02T08:00:00Z"),
            Tz::UTC,
        )
        .await
        .unwrap();
        assert_eq!((fresh.suppressed, fresh.ended_at), (0, None));
    }
}
