"""Checks the alertops Helm chart with Helm's own library (PyPI helm-python-sdk, Helm v4).

Run by `make chart-test`: lints the chart strictly, renders it for ci/minimal-values.yaml (the
defaults plus the required clusterId) and ci/all-values.yaml, and checks the rendered objects.
The RBAC tables below are the contract: every rule the chart grants is listed with the reason
the code needs it, and any extra or missing verb or resource fails.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

CHART = Path(__file__).resolve().parents[1]
REPO = CHART.parents[1]
RELEASE = "alertops"
NAMESPACE = "alertops-system"
ALL_VALUES = yaml.safe_load((CHART / "ci" / "all-values.yaml").read_text())
MINIMAL_VALUES = yaml.safe_load((CHART / "ci" / "minimal-values.yaml").read_text())


def minimal(**values: Any) -> dict[str, Any]:
    """The minimal values (the required clusterId) with `values` on top."""
    return {**MINIMAL_VALUES, **values}


def rust_const(path: str, name: str) -> str:
    """The value of `pub const NAME: &str = "..."` (or an integer) in a source file, so the chart
    is checked against what the code really uses."""
    text = (REPO / path).read_text()
    match = re.search(rf"pub const {name}: [^=]+= \"?([^\";]+)\"?;", text)
    assert match, f"no const {name} in {path}"
    return match.group(1)

# (apiGroup, resource) -> (verbs, why). The controller's ClusterRole (Role with watchNamespace).
CONTROLLER_RULES: dict[tuple[str, str], tuple[set[str], str]] = {
    **{
        ("alertops.dev", plural): (
            {"get", "list", "watch", "patch"},
            "watched by the reconcilers; patch adds and removes the cleanup finalizer",
        )
        for plural in ("alarmpolicies", "alertroutes", "digestschedules")
    },
    **{
        ("alertops.dev", f"{plural}/status"): (
            {"patch"},
            "status is written by server-side apply on the status subresource",
        )
        for plural in ("alarmpolicies", "alertroutes", "digestschedules")
    },
    **{
        ("alertops.dev", f"{plural}/finalizers"): (
            {"update"},
            "owner references with blockOwnerDeletion on owned workloads",
        )
        for plural in ("alarmpolicies", "alertroutes", "digestschedules")
    },
    ("apps", "deployments"): (
        {"get", "list", "watch"},
        "consumer Deployments owned by AlertRoutes, watched for readiness (Controller::owns)",
    ),
    ("batch", "cronjobs"): (
        {"get", "list", "watch"},
        "digest CronJobs owned by DigestSchedules, watched as for Deployments",
    ),
    # Not granted (no reconciler calls them; the workloads do, under the workload role):
    # batch/jobs (retry Jobs are created by the interaction server), configmaps (the consumer's
    # Slack message store), secrets (consumers, digests and retries read their Slack secrets).
    ("events.k8s.io", "events"): (
        {"create", "patch"},
        "events recorder: new events are created, repeats patch the series count",
    ),
}

# What the controller writes, bound by RoleBindings in the allowed namespaces only.
CONTROLLER_WORKLOAD_RULES = {
    ("apps", "deployments"): (
        {"create", "patch", "delete"},
        "consumer Deployments: server-side apply (patch; create when absent), pruned when no "
        "longer desired",
    ),
    ("batch", "cronjobs"): ({"create", "patch", "delete"}, "digest CronJobs, as for Deployments"),
    ("", "serviceaccounts"): (
        {"get", "create", "patch", "delete"},
        "the workloads' ServiceAccount in each allowed namespace, with its IAM annotations",
    ),
    ("", "secrets"): (
        {"create", "patch"},
        "each route's derived button key, applied by server-side apply (create when absent)",
    ),
}

# The leader-election Role in the release namespace (kube-lease-manager's calls).
LEADER_ELECTION_RULES = {
    ("coordination.k8s.io", "leases"): (
        {"get", "create", "patch"},
        "read the Lease, create it on first start, take and renew it by patch",
    ),
}

# The ClusterRole of the consumers, digests and retry Jobs, bound per allowed namespace. Each
# rule names the ClusterApi calls that need it (src/consume, src/retry, src/digest).
WORKLOAD_RULES = {
    ("alertops.dev", "alertroutes"): (
        {"get"},
        "consume (route_state), interact and retry (retry::load_route) read the route",
    ),
    ("alertops.dev", "digestschedules"): ({"get"}, "digest (run_digest) reads its schedule"),
    ("alertops.dev", "digestschedules/status"): (
        {"patch"},
        "digest records the last run (patch_status); nothing writes a route's status but the controller",
    ),
    ("", "secrets"): (
        {"get"},
        "secret_value: Slack webhook URLs and bot tokens of consume, retry (thread reply) and "
        "digest (Slack summary)",
    ),
    ("", "configmaps"): (
        {"get", "list", "create", "patch", "delete"},
        "the consumer's Slack message store: get to load it, server-side apply (patch) to save, "
        "and create because server-side apply of an absent ConfigMap creates it; snoozes "
        "(slack::snooze): the consumer and the digest list them, the consumer counts suppressed "
        "alerts and marks the end (patch) and deletes ended ones past their retention (delete)",
    ),
}

# The interaction server's ClusterRole, bound per allowed namespace and never cluster-wide: the
# calls of src/interact (read through src/k8s/kube_cluster.rs).
INTERACT_RULES = {
    ("alertops.dev", "alertroutes"): ({"get"}, "retry::load_route reads the button's route"),
    ("", "secrets"): (
        {"get", "create"},
        "retry::route_bot_token: the route's bot token, to look up allowed user groups (get); "
        "job::response_url_secret: the Job's response URL, kept out of its spec (create)",
    ),
    ("batch", "jobs"): (
        {"get", "create", "delete"},
        "one retry Job per attempt (create); KubeCluster::create reads a 409 AlreadyExists back "
        "(get); a Job whose response-URL Secret could not be made is removed (delete)",
    ),
    ("", "configmaps"): (
        {"get", "create", "patch"},
        "snooze::record: a Snooze press creates the snooze ConfigMap (create), reads it back on "
        "409 AlreadyExists (get) and moves the end of an existing one (patch); no list, no delete",
    ),
}

# The Role in the release namespace that lets the controller read the one Secret holding the
# master button key (resourceNames: that Secret only); no workload reads it.
ACTION_KEY_RULES = {
    ("", "secrets"): (
        {"get"},
        "the controller derives each route's key from the master key (alert_route reconciler)",
    ),
}


# ---------------------------------------------------------------------------------------------
# Rendering


def render(values: dict[str, Any] | None = None, upgrade: bool = False) -> list[dict[str, Any]]:
    """Every object the chart renders, CRDs included, on install (or on upgrade)."""
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values)
        manifests = chart.render(
            values, name=RELEASE, namespace=NAMESPACE, is_install=not upgrade, is_upgrade=upgrade
        )
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {}).setdefault("annotations", None)
                objects.append(doc)
    return objects


def notes(values: dict[str, Any] | None = None) -> str:
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return next(text for path, text in manifests.items() if path.endswith("NOTES.txt"))


@pytest.fixture(scope="module")
def default_objects() -> list[dict[str, Any]]:
    return render(MINIMAL_VALUES)


@pytest.fixture(scope="module")
def all_objects() -> list[dict[str, Any]]:
    return render(ALL_VALUES)


def find(objects, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


CRD_NAMES = {
    ("CustomResourceDefinition", f"{plural}.alertops.dev", None)
    for plural in ("alarmpolicies", "alertroutes", "digestschedules")
}


def kinds(objects) -> set[tuple[str, str, str | None]]:
    return {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) for o in objects}


def rule_triples(rules: list[dict[str, Any]], allow_resource_names: bool = False) -> set[tuple[str, str, str]]:
    triples = set()
    for rule in rules:
        assert "nonResourceURLs" not in rule, rule
        assert allow_resource_names or "resourceNames" not in rule, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"wildcard in {rule}"
                    triples.add((group, resource, verb))
    return triples


def table_triples(table) -> set[tuple[str, str, str]]:
    return {(g, r, v) for (g, r), (verbs, why) in table.items() for v in verbs if why}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def grants(objects) -> list[tuple[dict[str, Any], str | None, tuple[str, str, str]]]:
    """Every (subject, namespace the grant holds in or None for cluster-wide, rule triple)."""
    roles = {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")): o for o in objects if o["kind"] in ("Role", "ClusterRole")}
    out = []
    for binding in (o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        namespace = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        ref = binding["roleRef"]
        role = roles[(ref["kind"], ref["name"], namespace if ref["kind"] == "Role" else None)]
        for subject in binding["subjects"]:
            for triple in rule_triples(role["rules"], allow_resource_names=True):
                out.append((subject, namespace, triple))
    return out


# ---------------------------------------------------------------------------------------------
# Lint, schema and required values


@pytest.mark.parametrize("values", [MINIMAL_VALUES, ALL_VALUES], ids=["minimal", "all-values"])
def test_lints_strictly_without_warnings(values):
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    # Severity 2 is a warning, 3 an error; 1 (info, e.g. "icon is recommended") is allowed.
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


def test_lint_reports_a_broken_value():
    """The lint above can fail: a value the schema forbids is reported."""
    report = helm.lint(CHART, {"clusterId": "Not_Valid"}, strict=True, namespace=NAMESPACE)
    assert report["errors"] or any(m["severity"] >= 2 for m in report["messages"])


@pytest.mark.parametrize("values", [None, {"clusterId": ""}, {"watchNamespace": "team"}])
def test_the_chart_refuses_to_render_without_a_cluster_id(values):
    """Two clusters left at a default id would own each other's AWS resources (issue 10)."""
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmError) as error:
            chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    assert "clusterId is required" in str(error.value)


@pytest.mark.parametrize(
    "values",
    [
        {"clusterId": "Upper-Case"},
        {"clusterId": "x" * 33},
        {"unknownTopLevel": True},
        {"controller": {"replicaCount": 2}},
        {"interact": {"ingress": {"enabled": "yes"}}},
        {"interact": {"ingress": {"hosts": [{"host": "a.example", "paths": [{"path": "/", "pathType": "Prefix"}]}]}}},
        {"logFormat": "xml"},
        {"consumer": {"slackOutageToleranceSeconds": 43200}},
        {"watchNamespace": "Not A Namespace"},
        {"metrics": {"serviceMonitor": {"interval": "often"}}},
        {"crds": {"install": True}},
        {"aws": {"rateLimits": {"s3": 5}}},
        {"aws": {"rateLimits": {"ses": 0}}},
        {"aws": {"rateLimits": {"ses": "fast"}}},
    ],
)
def test_schema_rejects_bad_values(values):
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(values)


def test_schema_describes_every_default_value():
    """Every key of values.yaml has a schema entry with a description or nested properties."""
    with helm.Chart.load(CHART) as chart:
        schema = chart.schema
        defaults = chart.values
    assert schema is not None

    def walk(value, node, path):
        assert node is not None, f"{path} is not in values.schema.json"
        assert "description" in node or "properties" in node, f"{path} has no description"
        if isinstance(value, dict) and "properties" in node:
            for key, child in value.items():
                walk(child, node["properties"].get(key), f"{path}.{key}")

    walk(defaults, schema, "values")


# ---------------------------------------------------------------------------------------------
# Objects


def test_default_values_render_the_expected_objects(default_objects):
    assert kinds(default_objects) == CRD_NAMES | {
        ("ServiceAccount", "alertops-controller", NAMESPACE),
        ("ServiceAccount", "alertops-interact", NAMESPACE),
        ("ClusterRole", "alertops-controller", None),
        ("ClusterRoleBinding", "alertops-controller", None),
        ("Role", "alertops-leader-election", NAMESPACE),
        ("RoleBinding", "alertops-leader-election", NAMESPACE),
        ("ClusterRole", "alertops-controller-workloads", None),
        ("ClusterRole", "alertops-workload", None),
        ("ClusterRole", "alertops-interact", None),
        # No allowed namespace yet: nothing is bound for workloads or the interaction server.
        ("Deployment", "alertops-controller", NAMESPACE),
        ("Deployment", "alertops-interact", NAMESPACE),
        ("Service", "alertops-interact", NAMESPACE),
        ("Service", "alertops-metrics", NAMESPACE),
        ("Secret", "alertops-action-key", NAMESPACE),
        ("Pod", "alertops-test-controller", NAMESPACE),
    }


def test_all_values_render_namespaced_rbac_monitoring_and_the_ingress(all_objects):
    assert kinds(all_objects) == CRD_NAMES | {
        ("ServiceAccount", "alertops-controller", NAMESPACE),
        ("ServiceAccount", "alertops-interact", NAMESPACE),
        ("Role", "alertops-controller", "platform"),
        ("RoleBinding", "alertops-controller", "platform"),
        ("Role", "alertops-leader-election", NAMESPACE),
        ("RoleBinding", "alertops-leader-election", NAMESPACE),
        ("ClusterRole", "alertops-controller-workloads", None),
        ("ClusterRole", "alertops-workload", None),
        ("ClusterRole", "alertops-interact", None),
        # With watchNamespace set, workloads.namespaces is ignored: only "platform" is allowed.
        ("RoleBinding", "alertops-controller-workloads", "platform"),
        ("RoleBinding", "alertops-workload", "platform"),
        ("RoleBinding", "alertops-interact", "platform"),
        ("Role", "alertops-action-key", NAMESPACE),
        ("RoleBinding", "alertops-action-key", NAMESPACE),
        ("Secret", "alertops-action-key", NAMESPACE),
        ("Deployment", "alertops-controller", NAMESPACE),
        ("Deployment", "alertops-interact", NAMESPACE),
        ("Service", "alertops-interact", NAMESPACE),
        ("Service", "alertops-metrics", NAMESPACE),
        ("Ingress", "alertops-interact", NAMESPACE),
        ("PodDisruptionBudget", "alertops-controller", NAMESPACE),
        ("PodDisruptionBudget", "alertops-interact", NAMESPACE),
        ("NetworkPolicy", "alertops-controller", NAMESPACE),
        ("NetworkPolicy", "alertops-interact", NAMESPACE),
        ("ServiceMonitor", "alertops", NAMESPACE),
        ("PodMonitor", "alertops-consumers", NAMESPACE),
        ("PrometheusRule", "alertops", NAMESPACE),
        ("ConfigMap", "alertops-dashboard", "monitoring"),
        ("ConfigMap", "alertops-extra", None),
        ("Pod", "alertops-test-controller", NAMESPACE),
    }


def test_interact_can_be_disabled():
    objects = render(minimal(interact={"enabled": False}, workloads={"namespaces": ["a"]}))
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert not any(name.endswith("-interact") for _, name in names)
    assert ("Deployment", "alertops-controller") in names


def test_workload_roles_are_bound_in_each_allowed_namespace():
    objects = render(minimal(workloads={"serviceAccount": {"name": "runner"}, "namespaces": ["a", "b"]}))
    for name, role, subject in [
        ("alertops-workload", "alertops-workload", lambda ns: {"kind": "ServiceAccount", "name": "runner", "namespace": ns}),
        ("alertops-controller-workloads", "alertops-controller-workloads", lambda ns: {"kind": "ServiceAccount", "name": "alertops-controller", "namespace": NAMESPACE}),
        ("alertops-interact", "alertops-interact", lambda ns: {"kind": "ServiceAccount", "name": "alertops-interact", "namespace": NAMESPACE}),
    ]:
        bindings = [o for o in objects if o["kind"] == "RoleBinding" and o["metadata"]["name"] == name]
        assert sorted(b["metadata"]["namespace"] for b in bindings) == ["a", "b"], name
        for binding in bindings:
            assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}
            assert binding["subjects"] == [subject(binding["metadata"]["namespace"])]


# ---------------------------------------------------------------------------------------------
# RBAC: exactly the rules in the tables above


def test_no_role_grants_more_than_the_tables(default_objects, all_objects):
    for objects in (default_objects, all_objects):
        roles = [o for o in objects if o["kind"] in ("Role", "ClusterRole")]
        assert {o["metadata"]["name"] for o in roles} <= {
            "alertops-controller",
            "alertops-controller-workloads",
            "alertops-leader-election",
            "alertops-workload",
            "alertops-interact",
            "alertops-action-key",
        }


@pytest.mark.parametrize(
    "fixture, kind, namespace",
    [("default_objects", "ClusterRole", None), ("all_objects", "Role", "platform")],
)
def test_controller_rules_are_exactly_the_table(request, fixture, kind, namespace):
    role = find(request.getfixturevalue(fixture), kind, "alertops-controller")
    assert role["metadata"].get("namespace") == namespace
    granted = rule_triples(role["rules"])
    expected = table_triples(CONTROLLER_RULES)
    assert granted - expected == set(), "granted but not in CONTROLLER_RULES"
    assert expected - granted == set(), "in CONTROLLER_RULES but not granted"


@pytest.mark.parametrize("fixture", ["default_objects", "all_objects"])
def test_leader_election_workload_and_interact_rules_are_exactly_the_tables(request, fixture):
    objects = request.getfixturevalue(fixture)
    lease_role = find(objects, "Role", "alertops-leader-election")
    assert lease_role["metadata"]["namespace"] == NAMESPACE
    assert rule_triples(lease_role["rules"]) == table_triples(LEADER_ELECTION_RULES)
    for name, table in [
        ("alertops-workload", WORKLOAD_RULES),
        ("alertops-controller-workloads", CONTROLLER_WORKLOAD_RULES),
        ("alertops-interact", INTERACT_RULES),
    ]:
        assert rule_triples(find(objects, "ClusterRole", name)["rules"]) == table_triples(table), name


WRITES = {"create", "update", "patch", "delete", "deletecollection"}


@pytest.mark.parametrize(
    "values",
    [MINIMAL_VALUES, ALL_VALUES, minimal(workloads={"namespaces": ["team-a", "team-b"]})],
    ids=["minimal", "all-values", "two-namespaces"],
)
def test_every_grant_is_listed_and_scoped(values):
    """Lists every (subject, scope, rule) the chart grants and fails on a cluster-wide Secret
    read or Job create by the interaction server, on any grant of it outside the allowed
    namespaces, and on a cluster-wide write of workloads by the controller."""
    objects = render(values)
    allowed = [values["watchNamespace"]] if values.get("watchNamespace") else values.get("workloads", {}).get("namespaces", [])
    interact_sa = {"kind": "ServiceAccount", "name": "alertops-interact", "namespace": NAMESPACE}
    controller_sa = {"kind": "ServiceAccount", "name": "alertops-controller", "namespace": NAMESPACE}
    listed = grants(objects)
    assert listed, "no grant at all: the lister is broken"
    for subject, namespace, (group, resource, verb) in listed:
        if subject == interact_sa:
            assert namespace is not None, f"cluster-wide grant to the interaction server: {resource} {verb}"
            assert namespace in allowed, f"interaction server granted {resource} {verb} in {namespace}"
            assert (group, resource, verb) in table_triples(INTERACT_RULES)
        if subject == controller_sa and (group, resource) in {("apps", "deployments"), ("batch", "cronjobs"), ("", "serviceaccounts")}:
            if verb in WRITES:
                assert namespace in allowed, f"controller may {verb} {resource} in {namespace or 'every namespace'}"
    interact_grants = {(ns, triple) for subject, ns, triple in listed if subject == interact_sa}
    assert interact_grants == {(ns, t) for ns in allowed for t in table_triples(INTERACT_RULES)}


def test_bindings_tie_each_role_to_its_service_account(default_objects, all_objects):
    controller_sa = {"kind": "ServiceAccount", "name": "alertops-controller", "namespace": NAMESPACE}
    interact_sa = {"kind": "ServiceAccount", "name": "alertops-interact", "namespace": NAMESPACE}
    binding = find(default_objects, "ClusterRoleBinding", "alertops-controller")
    assert binding["roleRef"]["kind"] == "ClusterRole"
    assert binding["roleRef"]["name"] == "alertops-controller"
    assert binding["subjects"] == [controller_sa]
    assert [o for o in default_objects if o["kind"] == "ClusterRoleBinding"] == [binding], "only the controller's read access is cluster-wide"
    binding = find(all_objects, "RoleBinding", "alertops-controller")
    assert binding["metadata"]["namespace"] == "platform"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "alertops-controller"}
    assert binding["subjects"] == [controller_sa]
    for objects in (default_objects, all_objects):
        lease = find(objects, "RoleBinding", "alertops-leader-election")
        assert lease["roleRef"]["name"] == "alertops-leader-election"
        assert lease["subjects"] == [controller_sa]
    interact = find(all_objects, "RoleBinding", "alertops-interact")
    assert interact["metadata"]["namespace"] == "platform"
    assert interact["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "alertops-interact"}
    assert interact["subjects"] == [interact_sa]
    workload = find(all_objects, "RoleBinding", "alertops-workload")
    assert workload["subjects"] == [{"kind": "ServiceAccount", "name": "alertops-runner", "namespace": "platform"}]


def test_action_key_role_reads_only_its_secret_for_the_controller():
    objects = render(minimal(workloads={"serviceAccount": {"name": "runner"}, "namespaces": ["a", "b"]}))
    role = find(objects, "Role", "alertops-action-key")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert rule_triples(role["rules"], allow_resource_names=True) == table_triples(ACTION_KEY_RULES)
    assert [r["resourceNames"] for r in role["rules"]] == [["alertops-action-key"]]
    binding = find(objects, "RoleBinding", "alertops-action-key")
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "alertops-action-key"}
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "alertops-controller", "namespace": NAMESPACE},
    ], "the master key is the controller's alone: no workload ServiceAccount reads it"
    existing = render(minimal(actionKey={"existingSecret": "my-key", "existingSecretKey": "k"}, workloads={"namespaces": ["a"]}))
    assert not any(o["kind"] == "Secret" for o in existing), "an existing Secret is not rendered"
    role = find(existing, "Role", "alertops-action-key")
    assert [r["resourceNames"] for r in role["rules"]] == [["my-key"]]
    e = env(container(find(existing, "Deployment", "alertops-controller")))
    assert e["ALERTOPS_ACTION_KEY_SECRET"] == f"{NAMESPACE}/my-key/k"
    e = env(container(find(existing, "Deployment", "alertops-interact")))
    assert e["ALERTOPS_ACTION_TOKEN_KEY"] == {"secretKeyRef": {"name": "my-key", "key": "k"}}


def test_generated_action_key_is_long_and_shared(default_objects):
    secret = find(default_objects, "Secret", "alertops-action-key")
    key = base64.b64decode(secret["data"]["key"])
    assert len(key) == 48 and key.isalnum()
    e = env(container(find(default_objects, "Deployment", "alertops-controller")))
    assert e["ALERTOPS_ACTION_KEY_SECRET"] == f"{NAMESPACE}/alertops-action-key/key"
    e = env(container(find(default_objects, "Deployment", "alertops-interact")))
    assert e["ALERTOPS_ACTION_TOKEN_KEY"] == {"secretKeyRef": {"name": "alertops-action-key", "key": "key"}}


def test_slack_api_base_reaches_the_controller_and_the_interaction_server(default_objects):
    objects = render(minimal(slack={"apiBase": "https://slack.example/api/"}))
    for name in ("alertops-controller", "alertops-interact"):
        assert env(container(find(objects, "Deployment", name)))["ALERTOPS_SLACK_API_BASE"] == "https://slack.example/api/"
    assert "ALERTOPS_SLACK_API_BASE" not in env(container(find(default_objects, "Deployment", "alertops-controller")))


def test_every_rule_in_the_tables_says_why():
    for table in (CONTROLLER_RULES, CONTROLLER_WORKLOAD_RULES, LEADER_ELECTION_RULES, WORKLOAD_RULES, INTERACT_RULES, ACTION_KEY_RULES):
        for key, (verbs, why) in table.items():
            assert verbs and len(why) > 10, key


# ---------------------------------------------------------------------------------------------
# Pods: probes, security, resources, images, environment


@pytest.mark.parametrize("fixture", ["default_objects", "all_objects"])
@pytest.mark.parametrize("name", ["alertops-controller", "alertops-interact"])
def test_probes_on_the_http_port(request, fixture, name):
    c = container(find(request.getfixturevalue(fixture), "Deployment", name))
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


@pytest.mark.parametrize("fixture", ["default_objects", "all_objects"])
def test_every_pod_is_locked_down(request, fixture):
    objects = request.getfixturevalue(fixture)
    pods = [o["spec"]["template"]["spec"] for o in objects if o["kind"] == "Deployment"]
    pods += [o["spec"] for o in objects if o["kind"] == "Pod"]
    assert len(pods) == 3
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert set(c["resources"]["requests"]) == {"cpu", "memory"}
            assert "memory" in c["resources"]["limits"]


def test_images_default_to_the_chart_image(default_objects):
    with helm.Chart.load(CHART) as chart:
        app_version = chart.metadata["appVersion"]
    image = f"ghcr.io/alertops/alertops:{app_version}"
    for name in ("alertops-controller", "alertops-interact"):
        c = container(find(default_objects, "Deployment", name))
        assert c["image"] == image
        assert env(c)["ALERTOPS_WORKLOAD_IMAGE"] == image


def test_digest_pins_every_image():
    digest = "sha256:" + "a" * 64
    objects = render(minimal(image={"digest": digest}))
    c = container(find(objects, "Deployment", "alertops-controller"))
    assert c["image"] == f"ghcr.io/alertops/alertops@{digest}"
    assert env(c)["ALERTOPS_WORKLOAD_IMAGE"] == c["image"]


def test_controller_command_and_environment(default_objects, all_objects):
    deployment = find(default_objects, "Deployment", "alertops-controller")
    assert deployment["spec"]["replicas"] == 1
    c = container(deployment)
    assert c["args"] == ["controller", "--lease-name", "alertops-controller"]
    e = env(c)
    assert e["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert e["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert e["ALERTOPS_CLUSTER_ID"] == MINIMAL_VALUES["clusterId"]
    assert e["ALERTOPS_HTTP_LISTEN"] == "0.0.0.0:8080"
    assert e["ALERTOPS_WORKLOAD_SERVICE_ACCOUNT"] == "alertops-workload"
    assert json.loads(e["ALERTOPS_WORKLOAD_SERVICE_ACCOUNT_ANNOTATIONS"]) == {}
    assert "AWS_REGION" not in e and "ALERTOPS_WATCH_NAMESPACE" not in e
    assert e["ALERTOPS_SLACK_OUTAGE_TOLERANCE_SECONDS"] == "7200", "two hours by default"

    deployment = find(all_objects, "Deployment", "alertops-controller")
    assert deployment["spec"]["replicas"] == 2
    c = container(deployment)
    e = env(c)
    assert c["image"] == "registry.example.com/alertops:0.1.0-rc1"
    assert c["imagePullPolicy"] == "Always"
    assert c["args"] == ["controller", "--lease-name", "alertops-controller", "--resync-seconds=300"]
    assert e["ALERTOPS_WORKLOAD_IMAGE"] == "registry.example.com/alertops-workloads:0.1.0-rc1"
    assert e["ALERTOPS_CLUSTER_ID"] == "prod-eu-1"
    assert e["ALERTOPS_WATCH_NAMESPACE"] == "platform"
    assert e["AWS_REGION"] == "eu-west-1"
    assert e["AWS_ENDPOINT_URL"] == "http://moto.aws-emulator.svc:5000"
    # Per-API rate limits over AWS's default quotas, as --aws-rate-limits reads them.
    assert e["ALERTOPS_AWS_RATE_LIMITS"] == "cloudwatch:PutMetricAlarm=10,ses=14/28"
    assert "ALERTOPS_AWS_RATE_LIMITS" not in env(container(find(default_objects, "Deployment", "alertops-controller")))
    assert e["ALERTOPS_RESYNC_SECONDS"] == "300"
    assert e["ALERTOPS_SLACK_OUTAGE_TOLERANCE_SECONDS"] == "14400"
    assert e["RUST_LOG"] == "info,alertops=debug"
    assert json.loads(e["ALERTOPS_WORKLOAD_SERVICE_ACCOUNT_ANNOTATIONS"]) == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/alertops-workloads"
    }
    pod = deployment["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["serviceAccountName"] == "alertops-controller"
    assert c["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "ca-bundle", "mountPath": "/etc/ssl/corporate", "readOnly": True},
    ]
    assert [v["name"] for v in pod["volumes"]] == ["tmp", "ca-bundle"]


def test_two_controller_replicas_spread_and_share_one_lease(all_objects):
    pod = find(all_objects, "Deployment", "alertops-controller")["spec"]["template"]["spec"]
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "controller"
    # Both replicas get the same Lease name and distinct identities (the pod name).
    assert pod["containers"][0]["args"][1:3] == ["--lease-name", "alertops-controller"]
    [spread] = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    # Left out in the values, the selector is filled with the component's own labels.
    assert spread["labelSelector"] == {"matchLabels": find(all_objects, "Deployment", "alertops-controller")["spec"]["selector"]["matchLabels"]}


def test_a_given_spread_selector_is_kept():
    constraint = {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"x": "y"}}}
    objects = render(minimal(interact={"topologySpreadConstraints": [constraint]}))
    assert find(objects, "Deployment", "alertops-interact")["spec"]["template"]["spec"]["topologySpreadConstraints"] == [constraint]


def test_pod_disruption_budgets_only_with_more_than_one_replica(default_objects, all_objects):
    assert not [o for o in default_objects if o["kind"] == "PodDisruptionBudget"]
    for component in ("controller", "interact"):
        pdb = find(all_objects, "PodDisruptionBudget", f"alertops-{component}")
        assert pdb["spec"]["minAvailable"] == 1
        assert pdb["spec"]["selector"] == find(all_objects, "Deployment", f"alertops-{component}")["spec"]["selector"]
    # minAvailable never blocks every eviction: at most replicas - 1.
    three = render(minimal(controller={"replicas": 3, "podDisruptionBudget": {"enabled": True, "minAvailable": 5}}))
    assert find(three, "PodDisruptionBudget", "alertops-controller")["spec"]["minAvailable"] == 2
    off = render(minimal(controller={"replicas": 2, "podDisruptionBudget": {"enabled": False, "minAvailable": 1}}))
    assert not [o for o in off if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == "alertops-controller"]


def test_network_policies_admit_only_the_listed_peers_on_the_http_port(all_objects):
    test_peer = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "alertops", "app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "test"}}}
    monitoring = ALL_VALUES["networkPolicy"]["metricsFrom"]
    ingress_ns = ALL_VALUES["networkPolicy"]["interactFrom"]
    controller = find(all_objects, "NetworkPolicy", "alertops-controller")
    assert controller["spec"]["policyTypes"] == ["Ingress"]
    assert controller["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "controller"
    assert controller["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}], "from": monitoring + [test_peer]}]
    interact = find(all_objects, "NetworkPolicy", "alertops-interact")
    assert interact["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}], "from": monitoring + ingress_ns + [test_peer]}]
    test_pod = find(all_objects, "Pod", "alertops-test-controller")
    assert test_peer["podSelector"]["matchLabels"].items() <= test_pod["metadata"]["labels"].items()


def test_extra_objects_are_rendered_with_templates(all_objects):
    extra = find(all_objects, "ConfigMap", "alertops-extra")
    assert extra["data"] == {"cluster": "prod-eu-1"}


def test_helm_test_asks_the_controller_through_the_metrics_service(all_objects):
    pod = find(all_objects, "Pod", "alertops-test-controller")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    [c] = pod["spec"]["containers"]
    assert c["image"] == "registry.example.com/busybox:1.37"
    script = c["command"][-1]
    url = f"http://alertops-metrics.{NAMESPACE}.svc:9090"
    assert f"{url}/readyz" in script and f"{url}/metrics" in script
    assert "alertops_build_info" in script
    service = find(all_objects, "Service", "alertops-metrics")
    assert service["spec"]["ports"] == [{"name": "http", "port": 9090, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"] == find(all_objects, "Deployment", "alertops-controller")["spec"]["selector"]["matchLabels"]
    assert not [o for o in render(minimal(tests={"enabled": False, "image": "busybox:1.37"})) if o["kind"] == "Pod"]


def test_interaction_server(default_objects, all_objects):
    c = container(find(default_objects, "Deployment", "alertops-interact"))
    assert c["args"] == ["interact", "--listen", "0.0.0.0:8080"]
    assert env(c)["ALERTOPS_SLACK_SIGNING_SECRET"] == {
        "secretKeyRef": {"name": "alertops-slack", "key": "signing-secret"}
    }
    service = find(default_objects, "Service", "alertops-interact")
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    selector = find(default_objects, "Deployment", "alertops-interact")["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector

    c = container(find(all_objects, "Deployment", "alertops-interact"))
    assert env(c)["ALERTOPS_SLACK_SIGNING_SECRET"] == {"secretKeyRef": {"name": "slack-app", "key": "signing"}}
    ingress = find(all_objects, "Ingress", "alertops-interact")
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert ingress["spec"]["tls"] == [{"secretName": "alertops-tls", "hosts": ["alertops.example.com"]}]


@pytest.mark.parametrize("hosts", [None, [{"host": "a.example"}, {"host": "b.example"}]])
def test_the_ingress_exposes_only_the_slack_request_url(hosts):
    """Never /metrics (nor /healthz, /readyz): only the path the server routes to Slack."""
    interactions = rust_const("src/interact/mod.rs", "INTERACTIONS_PATH")
    ingress_values = {"enabled": True} | ({"hosts": hosts} if hosts else {})
    ingress = find(render(minimal(interact={"ingress": ingress_values})), "Ingress", "alertops-interact")
    assert len(ingress["spec"]["rules"]) == len(hosts or [None])
    for rule in ingress["spec"]["rules"]:
        assert rule["http"]["paths"] == [
            {
                "path": interactions,
                "pathType": "Exact",
                "backend": {"service": {"name": "alertops-interact", "port": {"name": "http"}}},
            }
        ]


def test_service_account_annotations(default_objects, all_objects):
    for name in ("alertops-controller", "alertops-interact"):
        assert find(default_objects, "ServiceAccount", name)["metadata"]["annotations"] is None
    controller = find(all_objects, "ServiceAccount", "alertops-controller")
    assert controller["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/alertops-controller",
        "eks.amazonaws.com/sts-regional-endpoints": "true",
    }
    assert controller["metadata"]["labels"]["team"] == "platform"
    interact = find(all_objects, "ServiceAccount", "alertops-interact")
    assert interact["metadata"]["annotations"] == {
        "alertops.dev/pod-identity-role": "arn:aws:iam::123456789012:role/alertops-interact"
    }


def test_notes_warn_about_a_missing_iam_role_and_name_the_cluster_id():
    default = notes(MINIMAL_VALUES)
    assert "no IAM role" in default and "deploy/iam/controller.json" in default
    assert f"Cluster id: {MINIMAL_VALUES['clusterId']}" in default
    assert "no namespace is allowed" in default
    configured = notes(ALL_VALUES)
    assert "no IAM role" not in configured
    assert "no namespace is allowed" not in configured
    assert "https://alertops.example.com/slack/interactions" in configured


# ---------------------------------------------------------------------------------------------
# Monitoring


def test_service_monitor_scrapes_the_controller_and_the_interaction_server(all_objects):
    monitor = find(all_objects, "ServiceMonitor", "alertops")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    selector = monitor["spec"]["selector"]

    def selected(service):
        labels = service["metadata"]["labels"]
        return all(labels.get(k) == v for k, v in selector["matchLabels"].items()) and all(
            labels.get(e["key"]) in e["values"] for e in selector["matchExpressions"]
        )

    services = [o for o in all_objects if o["kind"] == "Service"]
    assert {s["metadata"]["name"] for s in services if selected(s)} == {"alertops-metrics", "alertops-interact"}
    for service in services:
        assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def test_pod_monitor_selects_the_consumers_the_controller_creates(all_objects, default_objects):
    """The labels and port come from src/workloads/mod.rs, where the consumers are built."""
    monitor = find(all_objects, "PodMonitor", "alertops-consumers")
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": rust_const("src/workloads/mod.rs", "CONSUMER_APP"),
        "app.kubernetes.io/managed-by": rust_const("src/workloads/mod.rs", "MANAGED_BY"),
    }
    workloads = (REPO / "src/workloads/mod.rs").read_text()
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert f'"ports": [{{"name": "{endpoint["port"]}", "containerPort": HEALTH_PORT' in workloads
    assert endpoint["path"] == "/metrics"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["platform"]}
    listed = render(minimal(workloads={"namespaces": ["a", "b"]}, metrics={"podMonitor": {"enabled": True}}))
    assert find(listed, "PodMonitor", "alertops-consumers")["spec"]["namespaceSelector"] == {"matchNames": ["a", "b"]}
    assert not [o for o in default_objects if o["kind"] in ("PodMonitor", "ServiceMonitor", "PrometheusRule")]


def test_prometheus_rule_alerts_on_what_an_operator_needs(all_objects):
    rule = find(all_objects, "PrometheusRule", "alertops")
    [group] = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert set(alerts) == {
        "AlertopsNoLeader",
        "AlertopsReconcileFailures",
        "AlertopsAwsThrottling",
        "AlertopsDeadLetterRisk",
        "AlertopsDeadLetterQueueNotEmpty",
        "AlertopsConsumerNotReady",
        "AlertopsSlackUnreachable",
    }
    for alert in alerts.values():
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["labels"]["team"] == "platform"
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
        # Prometheus' own templating survives Helm's.
        assert "{{ $labels" not in alert["expr"]
    assert f'namespace="{NAMESPACE}"' in alerts["AlertopsNoLeader"]["expr"]
    assert "{{ $labels.route }}" in alerts["AlertopsDeadLetterRisk"]["annotations"]["summary"]
    assert 'queue="dead_letter"' in alerts["AlertopsDeadLetterQueueNotEmpty"]["expr"]
    assert "alertops_consumer_slack_circuit_open" in alerts["AlertopsSlackUnreachable"]["expr"]


def test_dashboard_config_map_is_labelled_for_the_grafana_sidecar(all_objects):
    dashboard = find(all_objects, "ConfigMap", "alertops-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dashboard["data"]["alertops.json"])
    assert board["uid"] == "alertops-operator"
    assert board == json.loads((CHART / "files" / "dashboards" / "alertops.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert len(exprs) >= 10 and all("alertops_" in e for e in exprs)


# ---------------------------------------------------------------------------------------------
# CRDs: templates, so that upgrades update them


def crd_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((REPO / "crds").glob("*.yaml"))}


def test_chart_crds_are_those_of_the_repository_byte_for_byte():
    repo_crds = crd_files()
    chart_crds = {p.name: p.read_bytes() for p in sorted((CHART / "files" / "crds").iterdir())}
    assert repo_crds, "crds/ is empty"
    assert sorted(chart_crds) == sorted(repo_crds), "run make crds"
    for name, data in repo_crds.items():
        assert chart_crds[name] == data, f"charts/alertops/files/crds/{name} differs from crds/{name}: run make crds"
    assert not (CHART / "crds").exists(), "Helm's crds/ folder is never upgraded: keep the CRDs in files/crds/"


@pytest.mark.parametrize("upgrade", [False, True], ids=["install", "upgrade"])
def test_crds_render_on_install_and_upgrade_with_the_keep_policy(upgrade):
    objects = render(MINIMAL_VALUES, upgrade=upgrade)
    rendered = {o["metadata"]["name"]: o for o in objects if o["kind"] == "CustomResourceDefinition"}
    expected = {f"{yaml.safe_load(data)['metadata']['name']}": yaml.safe_load(data) for data in crd_files().values()}
    assert set(rendered) == set(expected)
    for name, crd in rendered.items():
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        # Apart from the labels and annotations the chart adds, the file itself.
        source = expected[name]
        assert {k: v for k, v in crd.items() if k != "metadata"} == {k: v for k, v in source.items() if k != "metadata"}
        assert crd["metadata"]["name"] == source["metadata"]["name"]
        for key, value in (source["metadata"].get("annotations") or {}).items():
            assert crd["metadata"]["annotations"][key] == value


def test_crds_can_be_left_out_or_not_kept():
    assert not [o for o in render(minimal(crds={"enabled": False, "keep": True})) if o["kind"] == "CustomResourceDefinition"]
    unkept = [o for o in render(minimal(crds={"enabled": True, "keep": False})) if o["kind"] == "CustomResourceDefinition"]
    assert len(unkept) == 3
    assert all("helm.sh/resource-policy" not in (o["metadata"]["annotations"] or {}) for o in unkept)


def test_helm_loads_no_crds_from_the_special_folder():
    with helm.Chart.load(CHART) as chart:
        assert list(chart.crds) == []


# Short names kubectl already resolves to built-in kinds (kubectl api-resources, Kubernetes 1.33).
BUILTIN_SHORT_NAMES = {
    "cm", "cs", "csr", "crd", "crds", "deploy", "ds", "ep", "ev", "hpa", "ing", "limits", "netpol",
    "no", "ns", "pc", "pdb", "po", "psp", "pv", "pvc", "quota", "rc", "rs", "sa", "sc", "sts", "svc",
}


def test_crd_short_names_do_not_shadow_built_in_kinds():
    """`ds` meant DaemonSet long before DigestSchedule; kubectl would resolve one of them."""
    for name, data in crd_files().items():
        crd = yaml.safe_load(data)
        short = set(crd["spec"]["names"].get("shortNames", []))
        assert short, f"{name} has no short name"
        assert not short & BUILTIN_SHORT_NAMES, f"{name}: {short & BUILTIN_SHORT_NAMES} clash with built-in kinds"


def test_topic_sources_are_allowed_only_as_listed(default_objects, all_objects):
    """topicArn sources reach the controller as its allow-list; none by default."""

    def env_of(objects):
        deployment = find(objects, "Deployment", "alertops-controller")
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e.get("value") for e in container["env"]}

    assert env_of(default_objects)["ALERTOPS_ALLOWED_SOURCE_TOPICS"] == ""
    assert env_of(all_objects)["ALERTOPS_ALLOWED_SOURCE_TOPICS"] == (
        "arn:aws:sns:us-east-1:123456789012:shared-*,"
        "arn:aws:sns:us-east-1:123456789012:platform-alerts"
    )


def test_the_controller_creates_workloads_only_in_the_allowed_namespaces(default_objects):
    """The controller's own allow-list is the chart's: the same namespaces its RBAC covers."""

    def controller_env(objects):
        deployment = find(objects, "Deployment", "alertops-controller")
        [c] = deployment["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e.get("value") for e in c["env"]}

    assert controller_env(default_objects)["ALERTOPS_ALLOWED_NAMESPACES"] == ""
    two = render(minimal(workloads={"namespaces": ["team-a", "team-b"]}))
    assert controller_env(two)["ALERTOPS_ALLOWED_NAMESPACES"] == "team-a,team-b"
    watched = render(minimal(watchNamespace="only-here"))
    assert controller_env(watched)["ALERTOPS_ALLOWED_NAMESPACES"] == "only-here"
