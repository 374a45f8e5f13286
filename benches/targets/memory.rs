//! Controller memory with 1,000 AlarmPolicies of 10 alarms each, held as the controller holds
//! them: the typed objects in a kube reflector store, fed by list pages (of `LIST_PAGE_SIZE`) as the API server
//! sends them (metadata with managedFields and kubectl's last-applied annotation, status with
//! conditions, alarm ARNs, tag digests and lint findings), plus the desired states of the
//! reconciles in flight (each built and dropped as a reconcile does, as many at once as the
//! controller runs). Measured with a counting allocator (live and peak heap) and the process's VmRSS.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use alertops::aws::fake::FakeAws;
use alertops::aws::{AlarmListing, CloudWatchAlarms, Inventory};
use alertops::controller::RECONCILE_CONCURRENCY;
use alertops::lint::rules::lint_alarm_policy;
use alertops::names::OwnerIdentity;
use alertops::reconcile::FINALIZER;
use alertops::reconcile::alarm_policy::desired::{self, DesiredPolicy};
use alertops::resources::{AlarmPolicy, AlarmPolicySpec};
use kube::ResourceExt;
use kube::core::ObjectList;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};

use crate::Row;
use crate::policies;

/// Objects per list page, as the controller's watchers ask for them.
const PAGE_SIZE: usize = alertops::controller::LIST_PAGE_SIZE as usize;

const CLUSTER_ID: &str = "prod-eu1";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

/// A global allocator that counts live bytes and their high-water mark.
pub struct CountingAllocator {
    live: AtomicUsize,
    peak: AtomicUsize,
}

impl CountingAllocator {
    /// A counter at zero.
    pub const fn new() -> Self {
        CountingAllocator {
            live: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Starts a new high-water mark from the current live bytes.
    fn reset_peak(&self) {
        self.peak.store(self.live(), Ordering::Relaxed);
    }

    fn added(&self, size: usize) {
        let live = self.live.fetch_add(size, Ordering::Relaxed) + size;
        self.peak.fetch_max(live, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            self.added(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.added(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes through
        // this allocator).
        unsafe { System.dealloc(ptr, layout) };
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            self.live.fetch_sub(layout.size(), Ordering::Relaxed);
            self.added(new_size);
        }
        new
    }
}

/// How many policies, of how many alarms.
pub struct Scale {
    policies: usize,
    alarms_per_policy: usize,
    /// Whether the cache holds objects as the controller's reflectors do since issue 12,
    /// stripped of managedFields and the last-applied annotation.
    stripped: bool,
    /// The bound, MiB.
    target_mib: f64,
}

impl Scale {
    /// The design's numbers: 10,000 alarms across 1,000 policies.
    pub fn full() -> Scale {
        Scale {
            policies: 1_000,
            alarms_per_policy: 10,
            stripped: false,
            target_mib: 100.0,
        }
    }

    /// A fleet: 100,000 alarms across 10,000 policies, cached as the controller caches them
    /// (stripped), held to the design's 200 MiB.
    pub fn fleet() -> Scale {
        Scale {
            policies: 10_000,
            alarms_per_policy: 10,
            stripped: true,
            target_mib: 200.0,
        }
    }

    /// A quick pass that only proves the measurement works.
    pub fn smoke() -> Scale {
        Scale {
            policies: 20,
            alarms_per_policy: 10,
            stripped: true,
            target_mib: 100.0,
        }
    }
}

/// Builds the controller's state and reports its memory.
pub fn measure(allocator: &CountingAllocator, scale: Scale) -> Vec<Row> {
    match hold(allocator, &scale) {
        Ok(rows) => rows,
        Err(error) => vec![Row::checked(
            "controller memory",
            format!("could not build the state: {error}"),
            "state builds",
            false,
        )],
    }
}

fn hold(allocator: &CountingAllocator, scale: &Scale) -> Result<Vec<Row>, String> {
    // The API server's side is made first and kept to the end, so that neither its bytes nor
    // its transient allocations count: what is measured is only what the controller adds.
    let pages = (0..scale.policies)
        .step_by(PAGE_SIZE)
        .map(|first| {
            list_page(
                first..(first + PAGE_SIZE).min(scale.policies),
                scale.alarms_per_policy,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let server_bytes: usize = pages.iter().map(Vec::len).sum();
    // CloudWatch's side: every policy's alarms, evaluated for a while, listed in pages of 100.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let cloudwatch = runtime.block_on(account(scale))?;
    // The kube client holds one page's body while decoding it.
    let held_body = pages.iter().map(Vec::len).max().unwrap_or(0);

    let rss_before = rss_bytes();
    let live_before = allocator.live();
    allocator.reset_peak();

    let mut writer: Writer<AlarmPolicy> = Writer::default();
    let store = writer.as_reader();
    writer.apply_watcher_event(&Event::Init);
    for body in &pages {
        let page: ObjectList<AlarmPolicy> =
            serde_json::from_slice(body).map_err(|e| format!("list page: {e}"))?;
        for mut policy in page.items {
            if scale.stripped {
                alertops::controller::strip_unread(&mut policy);
            }
            writer.apply_watcher_event(&Event::InitApply(policy));
        }
    }
    writer.apply_watcher_event(&Event::InitDone);
    let live_store = allocator.live();

    // The inventory the resync reads every policy's alarms from: listed once for the cluster,
    // kept until the next resync.
    let inventory = Inventory::new(cloudwatch.clone(), CLUSTER_ID, Duration::from_secs(600));
    let mut listed_alarms = 0;

    // Each reconcile builds its policy's desired state and drops it when done; the controller
    // runs RECONCILE_CONCURRENCY of them at once, so that many are held at most.
    let objects = store.state();
    let mut desired_alarms = 0;
    let mut live_in_flight = live_store;
    for window in objects.chunks(usize::from(RECONCILE_CONCURRENCY)) {
        let desired: Vec<(DesiredPolicy, Result<AlarmListing, _>)> = window
            .iter()
            .map(|policy| {
                let namespace = policy.namespace().unwrap_or_default();
                let owner =
                    OwnerIdentity::new(CLUSTER_ID, "AlarmPolicy", &namespace, &policy.name_any());
                let topic_arn = topic_arn(&owner);
                let observed = runtime.block_on(inventory.alarm_listing(&owner.alarm_prefix()));
                (desired::build(&policy.spec, &owner, &topic_arn), observed)
            })
            .collect();
        desired_alarms += desired.iter().map(|(d, _)| d.alarms.len()).sum::<usize>();
        for (_, observed) in &desired {
            let observed = observed.as_ref().map_err(|e| format!("inventory: {e}"))?;
            listed_alarms += observed.metric.len();
        }
        live_in_flight = live_in_flight.max(allocator.live());
    }
    drop(objects);

    let live_inventory = allocator.live();
    let live_after = live_inventory.max(live_in_flight);
    let peak = allocator.peak() + held_body;
    let rss_after = rss_bytes();

    let held_alarms: usize = store
        .state()
        .iter()
        .map(|p| p.status.as_ref().map_or(0, |s| s.alarms.len()))
        .sum();
    let expected = scale.policies * scale.alarms_per_policy;
    if store.len() != scale.policies
        || held_alarms != expected
        || desired_alarms != expected
        || listed_alarms != expected
    {
        return Err(format!(
            "held {} policies, {held_alarms} alarm statuses, {desired_alarms} desired alarms, {listed_alarms} listed alarms; expected {} and {expected}",
            store.len(),
            scale.policies
        ));
    }

    let target = scale.target_mib;
    let mib = |bytes: usize| bytes as f64 / (1024.0 * 1024.0);
    let retained = mib(live_after.saturating_sub(live_before));
    let peak = mib(peak.saturating_sub(live_before));
    let label = format!(
        "{} policies x {} alarms{}",
        scale.policies,
        scale.alarms_per_policy,
        if scale.stripped {
            " (stripped cache)"
        } else {
            ""
        }
    );
    let mut rows = vec![
        Row::info(
            format!("  {label}: API list bytes received"),
            format!("{:.1} MiB", mib(server_bytes)),
        ),
        Row::info(
            format!(
                "  heap: reflector store / inventory of {expected} alarms / reconciles in flight ({RECONCILE_CONCURRENCY})"
            ),
            format!(
                "{:.1} / {:.1} / {:.1} MiB",
                mib(live_store.saturating_sub(live_before)),
                mib(live_inventory.saturating_sub(live_store)),
                mib(live_in_flight.saturating_sub(live_inventory.min(live_in_flight)))
            ),
        ),
        Row::checked(
            format!("memory, {label}: heap held (cache + reconciles in flight)"),
            format!("{retained:.1} MiB"),
            format!("< {target:.0} MiB"),
            retained < target,
        ),
        Row::checked(
            format!("memory, {label}: heap peak (+ one list body)"),
            format!("{peak:.1} MiB"),
            format!("< {target:.0} MiB"),
            peak < target,
        ),
    ];
    match (rss_before, rss_after) {
        (Some(before), Some(after)) => {
            let growth = mib(after.saturating_sub(before));
            rows.push(Row::checked(
                format!("memory, {label}: RSS growth"),
                format!("{growth:.1} MiB"),
                format!("< {target:.0} MiB"),
                growth < target,
            ));
        }
        _ => rows.push(Row::info(
            format!("memory, {label}: RSS growth"),
            "unavailable (no /proc/self/status)",
        )),
    }
    // Keep everything alive until after the measurement.
    drop((store, writer, pages, inventory, cloudwatch));
    Ok(rows)
}

/// Resident set size from /proc/self/status, if the platform has it.
fn rss_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What CloudWatch says of an alarm that has been evaluated for a while (every alarm's status
/// carries it, and so does the inventory's listing).
fn state_reason(policy: usize, alarm: &str) -> String {
    format!(
        "Threshold Crossed: 5 datapoints [{}.0 (01/05/24 10:19:00), 2.0 (01/05/24 10:18:00), 1.0 (01/05/24 10:17:00)] were not greater than the threshold ({}.0) for {alarm}.",
        policy % 7,
        10 + policy % 50
    )
}

/// An account holding every policy's alarms as the controller made them, each in state OK
/// with the reason CloudWatch gives, listed in pages of 100.
async fn account(scale: &Scale) -> Result<FakeAws, String> {
    let cloudwatch = FakeAws::new().with_alarm_pages(100);
    for i in 0..scale.policies {
        let namespace = format!("team-{:02}", i % 40);
        let name = format!("svc-{i:04}-alarms");
        let spec: AlarmPolicySpec =
            serde_json::from_value(policies::spec(i, scale.alarms_per_policy))
                .map_err(|e| format!("spec {i}: {e}"))?;
        let owner = OwnerIdentity::new(CLUSTER_ID, "AlarmPolicy", &namespace, &name);
        let desired = desired::build(&spec, &owner, &topic_arn(&owner));
        for alarm in &desired.alarms {
            cloudwatch
                .put_alarm(&alarm.definition, Some(&alarm.tags))
                .await
                .map_err(|e| format!("put alarm: {e}"))?;
            cloudwatch.set_alarm_state(
                &alarm.definition.alarm_name,
                "OK",
                &state_reason(i, &alarm.spec_name),
                chrono::DateTime::from_timestamp(1_714_558_800, 0).unwrap_or_default(),
            );
        }
    }
    cloudwatch.clear_calls();
    Ok(cloudwatch)
}

fn topic_arn(owner: &OwnerIdentity) -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT}:{}", owner.topic_name())
}

/// A list response page of the policies `range`, serialized one object at a time (so that
/// making it never holds more than one object's JSON tree).
fn list_page(range: std::ops::Range<usize>, alarms: usize) -> Result<Vec<u8>, String> {
    let mut body = br#"{"apiVersion":"alertops.dev/v1alpha1","kind":"AlarmPolicyList","metadata":{"resourceVersion":"48213377","continue":""},"items":["#.to_vec();
    for (n, i) in range.enumerate() {
        if n > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, &api_object(i, alarms)?)
            .map_err(|e| format!("serialize policy {i}: {e}"))?;
    }
    body.extend_from_slice(b"]}");
    Ok(body)
}

/// Policy `i` as the API server returns it after the controller reconciled it.
fn api_object(i: usize, alarms: usize) -> Result<Value, String> {
    let namespace = format!("team-{:02}", i % 40);
    let name = format!("svc-{i:04}-alarms");
    let spec_value = policies::spec(i, alarms);
    let spec: AlarmPolicySpec =
        serde_json::from_value(spec_value.clone()).map_err(|e| format!("spec {i}: {e}"))?;
    let owner = OwnerIdentity::new(CLUSTER_ID, "AlarmPolicy", &namespace, &name);
    let lint = lint_alarm_policy(&spec);
    let lint_message = if lint.is_empty() {
        "no findings".to_string()
    } else {
        format!("{} finding(s); see status.lint", lint.len())
    };
    let alarm_statuses: Vec<Value> = spec
        .alarms
        .iter()
        .map(|alarm| {
            let alarm_name = owner.alarm_name(&alarm.name);
            json!({
                "name": alarm.name,
                "alarmName": alarm_name,
                "arn": format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm_name}"),
                "tagsDigest": format!("{:064x}", (i as u128) << 64 | alarm.name.len() as u128),
                "state": "OK",
                "stateReason": state_reason(i, &alarm.name),
                "stateChangedAt": "2024-05-01T10:20:00Z",
            })
        })
        .collect();
    let last_applied = json!({
        "apiVersion": "alertops.dev/v1alpha1", "kind": "AlarmPolicy",
        "metadata": {"name": name, "namespace": namespace,
                     "annotations": {"argocd.argoproj.io/tracking-id": format!("{namespace}:alertops.dev/AlarmPolicy:{namespace}/{name}")}},
        "spec": spec_value,
    });
    let status_conditions_fields = json!({
        "f:conditions": {
            ".": {},
            "k:{\"type\":\"Lint\"}": {".": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:observedGeneration": {}, "f:reason": {}, "f:status": {}, "f:type": {}},
            "k:{\"type\":\"Ready\"}": {".": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:observedGeneration": {}, "f:reason": {}, "f:status": {}, "f:type": {}}
        },
        "f:alarmCount": {}, "f:alarms": {}, "f:lint": {}, "f:observedGeneration": {},
        "f:ruleCount": {}, "f:topicArn": {}, "f:topicOwned": {}
    });
    Ok(json!({
        "apiVersion": "alertops.dev/v1alpha1",
        "kind": "AlarmPolicy",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("6f1c2d3e-4a5b-4c6d-8e7f-{i:012}"),
            "resourceVersion": format!("{}", 48_000_000 + i),
            "generation": 3,
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "finalizers": [FINALIZER],
            "labels": {"app.kubernetes.io/part-of": format!("svc-{i:04}"), "argocd.argoproj.io/instance": namespace},
            "annotations": {
                "argocd.argoproj.io/tracking-id": format!("{namespace}:alertops.dev/AlarmPolicy:{namespace}/{name}"),
                "kubectl.kubernetes.io/last-applied-configuration": last_applied.to_string(),
            },
            "managedFields": [
                {"manager": "argocd-controller", "operation": "Update", "apiVersion": "alertops.dev/v1alpha1",
                 "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:argocd.argoproj.io/tracking-id": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                                             "f:labels": {".": {}, "f:app.kubernetes.io/part-of": {}, "f:argocd.argoproj.io/instance": {}}},
                              "f:spec": {".": {}, "f:alarms": {}, "f:tags": {".": {}, "f:Feature": {}, "f:Team": {}}}}},
                {"manager": "alertops", "operation": "Update", "apiVersion": "alertops.dev/v1alpha1",
                 "time": "2024-05-01T10:00:02Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:finalizers": {".": {}, "v:\"alertops.dev/cleanup\"": {}}}}},
                {"manager": "alertops", "operation": "Update", "apiVersion": "alertops.dev/v1alpha1",
                 "time": "2024-05-01T10:00:09Z", "fieldsType": "FieldsV1", "subresource": "status",
                 "fieldsV1": {"f:status": status_conditions_fields}}
            ]
        },
        "spec": spec_value,
        "status": {
            "observedGeneration": 3,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Reconciled", "observedGeneration": 3,
                 "message": format!("{alarms} alarms and 0 rules match the spec"),
                 "lastTransitionTime": "2024-05-01T10:00:09Z"},
                {"type": "Lint", "status": if lint.is_empty() { "True" } else { "False" },
                 "reason": if lint.is_empty() { "Clean" } else { "Findings" }, "observedGeneration": 3,
                 "message": lint_message, "lastTransitionTime": "2024-05-01T10:00:09Z"}
            ],
            "topicArn": topic_arn(&owner),
            "topicOwned": true,
            "alarms": alarm_statuses,
            "alarmCount": alarms,
            "ruleCount": 0,
            "lint": lint,
        }
    }))
}
