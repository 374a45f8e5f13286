"""Runs the Argo CD health check shipped in deploy/argocd/argocd-cm.yaml over status fixtures.

Argo CD runs health checks with gopher-lua (Lua 5.1) and hands the object in the global `obj`;
the script returns a table with `status` and `message`. lupa's Lua 5.1 runtime stands in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lupa
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CM = REPO / "deploy" / "argocd" / "argocd-cm.yaml"


def health_script() -> str:
    customizations = yaml.safe_load(yaml.safe_load(CM.read_text())["data"]["resource.customizations"])
    assert set(customizations) == {"alertops.dev/*"}, "one wildcard entry for every alertops kind"
    return customizations["alertops.dev/*"]["health.lua"]


def to_lua(lua, value):
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


def health(obj: dict[str, Any]) -> tuple[str, str | None]:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = to_lua(lua, obj)
    result = lua.execute(health_script())
    return result["status"], result["message"]


def resource(kind: str = "AlertRoute", generation: int = 2, status: dict | None = None, **metadata) -> dict:
    obj = {
        "apiVersion": "alertops.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "r", "namespace": "team", "generation": generation, **metadata},
        "spec": {},
    }
    if status is not None:
        obj["status"] = status
    return obj


def ready(status: str, reason: str | None = None, message: str | None = None, generation: int = 2) -> dict:
    condition = {"type": "Ready", "status": status, "lastTransitionTime": "2026-01-01T00:00:00Z"}
    if reason is not None:
        condition["reason"] = reason
    if message is not None:
        condition["message"] = message
    return {"observedGeneration": generation, "conditions": [{"type": "Lint", "status": "False", "reason": "Warnings"}, condition]}


@pytest.mark.parametrize("kind", ["AlarmPolicy", "AlertRoute", "DigestSchedule"])
def test_ready_is_healthy_with_the_reason_and_message(kind):
    assert health(resource(kind, status=ready("True", "Reconciled", "3 alarms"))) == (
        "Healthy",
        "Reconciled: 3 alarms",
    )


@pytest.mark.parametrize("reason", ["SourceNotReady", "AwsThrottled", "AwsUnavailable", "ConsumerNotReady"])
def test_waiting_reasons_are_progressing_not_degraded(reason):
    status, message = health(resource(status=ready("False", reason, "looking again with backoff")))
    assert status == "Progressing"
    assert message == f"{reason}: looking again with backoff"


@pytest.mark.parametrize("reason", ["InvalidSpec", "AlarmNotOwned", "AwsAccessDenied", "ScheduleTooSparse", "TopicNotFound"])
def test_reasons_that_need_a_person_are_degraded(reason):
    assert health(resource(status=ready("False", reason, "fix it")))[0] == "Degraded"


def test_a_condition_without_message_or_reason_is_no_error():
    assert health(resource(status=ready("False", "InvalidSpec"))) == ("Degraded", "InvalidSpec")
    assert health(resource(status=ready("True"))) == ("Healthy", "")
    assert health(resource(status=ready("False", None, "only a message"))) == ("Degraded", "only a message")


def test_being_deleted_is_progressing_even_when_ready():
    obj = resource(status=ready("True", "Reconciled", "ok"), deletionTimestamp="2026-01-01T00:00:00Z")
    status, message = health(obj)
    assert status == "Progressing"
    assert "deleted" in message


def test_unreconciled_and_stale_generations_are_progressing():
    assert health(resource())[0] == "Progressing"
    assert health(resource(status={"observedGeneration": 1}))[0] == "Progressing"
    stale = resource(generation=3, status=ready("True", "Reconciled", "ok", generation=2))
    assert health(stale) == ("Progressing", "Waiting for the controller to apply generation 3")
    no_ready = resource(status={"observedGeneration": 2, "conditions": [{"type": "Lint", "status": "True"}]})
    assert health(no_ready)[0] == "Progressing"


def test_unknown_ready_is_progressing():
    assert health(resource(status=ready("Unknown", "Reconciling", "started")))[0] == "Progressing"
