"""Checks the alertops Helm chart with Helm's own library (PyPI helm-python-sdk, Helm v4).

Run by `make chart-test`: lints the chart strictly, renders it for the default values and for
ci/all-values.yaml, and checks the rendered objects. The RBAC tables below are the contract:
every rule the chart grants is listed with the reason the code needs it, and any extra or
missing verb or resource fails.
"""

from __future__ import annotations

import base64
import json
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
        {"get", "list", "watch", "create", "patch", "delete"},
        "consumer Deployments owned by AlertRoutes: server-side apply (patch; create when "
        "absent), watched for readiness, pruned when no longer desired",
    ),
    ("batch", "cronjobs"): (
        {"get", "list", "watch", "create", "patch", "delete"},
        "digest CronJobs owned by DigestSchedules, as for Deployments",
    ),
    ("", "serviceaccounts"): (
        {"get", "create", "patch", "delete"},
        "the workloads' ServiceAccount in each namespace, with its IAM annotations",
    ),
    # Not granted (no reconciler calls them; the workloads do, under the workload role):
    # batch/jobs (retry Jobs are created by the interaction server), configmaps (the consumer's
    # Slack message store), secrets (consumers, digests and retries read their Slack secrets).
    ("events.k8s.io", "events"): (
        {"create", "patch"},
        "events recorder: new events are created, repeats patch the series count",
    ),
}

# The leader-election Role in the release namespace (kube-lease-manager's calls).
LEADER_ELECTION_RULES = {
    ("coordination.k8s.io", "leases"): (
        {"get", "create", "patch"},
        "read the Lease, create it on first start, take and renew it by patch",
    ),
}

# The ClusterRole of the consumers, digests, retry Jobs and the interaction server. Each rule
# names the ClusterApi calls that need it (src/consume, src/interact, src/retry, src/digest).
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
        "secret_value: Slack webhook URLs and bot tokens of consume, interact (user groups), "
        "retry (thread reply) and digest (Slack summary)",
    ),
    ("", "configmaps"): (
        {"get", "create", "patch"},
        "the consumer's Slack message store: get to load it, server-side apply (patch) to save, "
        "and create because server-side apply of an absent ConfigMap creates it",
    ),
    ("batch", "jobs"): (
        {"get", "create"},
        "interact creates one retry Job per attempt; a 409 AlreadyExists is read back (get)",
    ),
}

# The Role in the release namespace that lets the workload ServiceAccounts read the one Secret
# holding the button-signing key (resourceNames: that Secret only).
ACTION_KEY_RULES = {
    ("", "secrets"): (
        {"get"},
        "the consumer reads the button-signing key at start (load_signer → secret_value)",
    ),
}


# ---------------------------------------------------------------------------------------------
# Rendering


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object the chart renders (templates only; CRDs are checked apart)."""
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values)
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
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
    return render(None)


@pytest.fixture(scope="module")
def all_objects() -> list[dict[str, Any]]:
    return render(ALL_VALUES)


def find(objects, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


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


# ---------------------------------------------------------------------------------------------
# Lint and schema


@pytest.mark.parametrize("values", [None, ALL_VALUES], ids=["defaults", "all-values"])
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


@pytest.mark.parametrize(
    "values",
    [
        {"clusterId": "Upper-Case"},
        {"clusterId": "x" * 33},
        {"unknownTopLevel": True},
        {"controller": {"replicaCount": 2}},
        {"interact": {"ingress": {"enabled": "yes"}}},
        {"logFormat": "xml"},
        {"watchNamespace": "Not A Namespace"},
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
    assert kinds(default_objects) == {
        ("ServiceAccount", "alertops-controller", NAMESPACE),
        ("ServiceAccount", "alertops-interact", NAMESPACE),
        ("ClusterRole", "alertops-controller", None),
        ("ClusterRoleBinding", "alertops-controller", None),
        ("Role", "alertops-leader-election", NAMESPACE),
        ("RoleBinding", "alertops-leader-election", NAMESPACE),
        ("ClusterRole", "alertops-workload", None),
        ("ClusterRoleBinding", "alertops-interact", None),
        ("Deployment", "alertops-controller", NAMESPACE),
        ("Deployment", "alertops-interact", NAMESPACE),
        ("Service", "alertops-interact", NAMESPACE),
        ("Secret", "alertops-action-key", NAMESPACE),
    }


def test_all_values_render_namespaced_rbac_and_the_ingress(all_objects):
    assert kinds(all_objects) == {
        ("ServiceAccount", "alertops-controller", NAMESPACE),
        ("ServiceAccount", "alertops-interact", NAMESPACE),
        ("Role", "alertops-controller", "platform"),
        ("RoleBinding", "alertops-controller", "platform"),
        ("Role", "alertops-leader-election", NAMESPACE),
        ("RoleBinding", "alertops-leader-election", NAMESPACE),
        ("ClusterRole", "alertops-workload", None),
        # With watchNamespace set, workloads.namespaces is ignored: only "platform" is served.
        ("RoleBinding", "alertops-workload", "platform"),
        ("Role", "alertops-action-key", NAMESPACE),
        ("RoleBinding", "alertops-action-key", NAMESPACE),
        ("Secret", "alertops-action-key", NAMESPACE),
        ("RoleBinding", "alertops-interact", "platform"),
        ("Deployment", "alertops-controller", NAMESPACE),
        ("Deployment", "alertops-interact", NAMESPACE),
        ("Service", "alertops-interact", NAMESPACE),
        ("Ingress", "alertops-interact", NAMESPACE),
    }


def test_interact_can_be_disabled():
    objects = render({"interact": {"enabled": False}})
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert not any(name.endswith("-interact") for _, name in names)
    assert ("Deployment", "alertops-controller") in names


def test_workload_role_is_bound_in_each_listed_namespace():
    objects = render({"workloads": {"serviceAccount": {"name": "runner"}, "namespaces": ["a", "b"]}})
    bindings = [o for o in objects if o["kind"] == "RoleBinding" and o["metadata"]["name"] == "alertops-workload"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["a", "b"]
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "alertops-workload",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "runner", "namespace": binding["metadata"]["namespace"]}
        ]


# ---------------------------------------------------------------------------------------------
# RBAC: exactly the rules in the tables above


def test_no_role_grants_more_than_the_tables(default_objects, all_objects):
    for objects in (default_objects, all_objects):
        roles = [o for o in objects if o["kind"] in ("Role", "ClusterRole")]
        assert {o["metadata"]["name"] for o in roles} <= {
            "alertops-controller",
            "alertops-leader-election",
            "alertops-workload",
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
def test_leader_election_and_workload_rules_are_exactly_the_tables(request, fixture):
    objects = request.getfixturevalue(fixture)
    lease_role = find(objects, "Role", "alertops-leader-election")
    assert lease_role["metadata"]["namespace"] == NAMESPACE
    assert rule_triples(lease_role["rules"]) == table_triples(LEADER_ELECTION_RULES)
    workload = find(objects, "ClusterRole", "alertops-workload")
    assert rule_triples(workload["rules"]) == table_triples(WORKLOAD_RULES)


def test_bindings_tie_each_role_to_its_service_account(default_objects, all_objects):
    controller_sa = {"kind": "ServiceAccount", "name": "alertops-controller", "namespace": NAMESPACE}
    interact_sa = {"kind": "ServiceAccount", "name": "alertops-interact", "namespace": NAMESPACE}
    binding = find(default_objects, "ClusterRoleBinding", "alertops-controller")
    assert binding["roleRef"]["kind"] == "ClusterRole"
    assert binding["roleRef"]["name"] == "alertops-controller"
    assert binding["subjects"] == [controller_sa]
    binding = find(all_objects, "RoleBinding", "alertops-controller")
    assert binding["metadata"]["namespace"] == "platform"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "alertops-controller"}
    assert binding["subjects"] == [controller_sa]
    for objects in (default_objects, all_objects):
        lease = find(objects, "RoleBinding", "alertops-leader-election")
        assert lease["roleRef"]["name"] == "alertops-leader-election"
        assert lease["subjects"] == [controller_sa]
    interact = find(default_objects, "ClusterRoleBinding", "alertops-interact")
    assert interact["roleRef"]["name"] == "alertops-workload"
    assert interact["subjects"] == [interact_sa]
    interact = find(all_objects, "RoleBinding", "alertops-interact")
    assert interact["metadata"]["namespace"] == "platform"
    assert interact["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "alertops-workload"}
    workload = find(all_objects, "RoleBinding", "alertops-workload")
    assert workload["subjects"] == [{"kind": "ServiceAccount", "name": "alertops-runner", "namespace": "platform"}]


def test_action_key_role_reads_only_its_secret_for_the_workloads():
    objects = render({"workloads": {"serviceAccount": {"name": "runner"}, "namespaces": ["a", "b"]}})
    role = find(objects, "Role", "alertops-action-key")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert rule_triples(role["rules"], allow_resource_names=True) == table_triples(ACTION_KEY_RULES)
    assert [r["resourceNames"] for r in role["rules"]] == [["alertops-action-key"]]
    binding = find(objects, "RoleBinding", "alertops-action-key")
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "alertops-action-key"}
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "runner", "namespace": "a"},
        {"kind": "ServiceAccount", "name": "runner", "namespace": "b"},
    ]
    existing = render({"actionKey": {"existingSecret": "my-key", "existingSecretKey": "k"}, "workloads": {"namespaces": ["a"]}})
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


def test_slack_api_base_reaches_the_controller_and_the_interaction_server():
    objects = render({"slack": {"apiBase": "https://slack.example/api/"}})
    for name in ("alertops-controller", "alertops-interact"):
        assert env(container(find(objects, "Deployment", name)))["ALERTOPS_SLACK_API_BASE"] == "https://slack.example/api/"
    defaults = render(None)
    assert "ALERTOPS_SLACK_API_BASE" not in env(container(find(defaults, "Deployment", "alertops-controller")))


def test_every_rule_in_the_tables_says_why():
    for table in (CONTROLLER_RULES, LEADER_ELECTION_RULES, WORKLOAD_RULES, ACTION_KEY_RULES):
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
    deployments = [o for o in request.getfixturevalue(fixture) if o["kind"] == "Deployment"]
    assert len(deployments) == 2
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
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
    objects = render({"image": {"digest": digest}})
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
    assert e["ALERTOPS_CLUSTER_ID"] == RELEASE
    assert e["ALERTOPS_HTTP_LISTEN"] == "0.0.0.0:8080"
    assert e["ALERTOPS_WORKLOAD_SERVICE_ACCOUNT"] == "alertops-workload"
    assert json.loads(e["ALERTOPS_WORKLOAD_SERVICE_ACCOUNT_ANNOTATIONS"]) == {}
    assert "AWS_REGION" not in e and "ALERTOPS_WATCH_NAMESPACE" not in e

    deployment = find(all_objects, "Deployment", "alertops-controller")
    assert deployment["spec"]["replicas"] == 2
    c = container(deployment)
    e = env(c)
    assert c["image"] == "registry.example.com/alertops:0.1.0-rc1"
    assert c["imagePullPolicy"] == "Always"
    assert e["ALERTOPS_WORKLOAD_IMAGE"] == "registry.example.com/alertops-workloads:0.1.0-rc1"
    assert e["ALERTOPS_CLUSTER_ID"] == "prod-eu-1"
    assert e["ALERTOPS_WATCH_NAMESPACE"] == "platform"
    assert e["AWS_REGION"] == "eu-west-1"
    assert e["AWS_ENDPOINT_URL"] == "http://moto.aws-emulator.svc:5000"
    assert e["ALERTOPS_RESYNC_SECONDS"] == "300"
    assert e["RUST_LOG"] == "info,alertops=debug"
    assert json.loads(e["ALERTOPS_WORKLOAD_SERVICE_ACCOUNT_ANNOTATIONS"]) == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/alertops-workloads"
    }
    pod = deployment["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["serviceAccountName"] == "alertops-controller"


def test_two_controller_replicas_spread_and_share_one_lease(all_objects):
    pod = find(all_objects, "Deployment", "alertops-controller")["spec"]["template"]["spec"]
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "controller"
    # Both replicas get the same Lease name and distinct identities (the pod name).
    assert pod["containers"][0]["args"][1:] == ["--lease-name", "alertops-controller"]


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
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "alertops.example.com"
    assert rule["http"]["paths"] == [
        {
            "path": "/slack/interactions",
            "pathType": "Prefix",
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


def test_notes_warn_about_missing_iam_role_and_cluster_id():
    default = notes(None)
    assert "no IAM role" in default and "set clusterId explicitly" in default
    configured = notes(ALL_VALUES)
    assert "no IAM role" not in configured
    assert "https://alertops.example.com/slack/interactions" in configured


# ---------------------------------------------------------------------------------------------
# CRDs


def test_crds_are_those_of_the_repository_byte_for_byte():
    repo_crds = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    chart_crds = sorted(p.name for p in (CHART / "crds").iterdir())
    assert repo_crds, "crds/ is empty"
    assert chart_crds == repo_crds, "run make crds"
    for name in repo_crds:
        assert (CHART / "crds" / name).read_bytes() == (REPO / "crds" / name).read_bytes(), (
            f"charts/alertops/crds/{name} differs from crds/{name}: run make crds"
        )


def test_helm_loads_the_three_crds():
    with helm.Chart.load(CHART) as chart:
        loaded = {Path(c["filename"]).name: c["data"] for c in chart.crds}
    assert set(loaded) == {
        "alarmpolicies.alertops.dev.yaml",
        "alertroutes.alertops.dev.yaml",
        "digestschedules.alertops.dev.yaml",
    }
    for name, data in loaded.items():
        crd = yaml.safe_load(data)
        assert crd["kind"] == "CustomResourceDefinition"
        assert crd["metadata"]["name"] == name.removesuffix(".yaml")
        assert data.encode() == (REPO / "crds" / name).read_bytes()
