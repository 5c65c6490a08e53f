"""The framework's private API we build on is still there, at the versions we pin.

tools/warm_transfer.py subclasses WarmTransferTask and overrides two of its private
methods; tools/send_dtmf.py builds an FFI request the public wrapper cannot;
switchboard/worker.py counts calls starting from the AgentServer's reserved slots. Both are
pinned to exact versions in pyproject.toml. An upgrade that moves any of these names
fails here, in a second and with the name, instead of in a phone call.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pytest
from livekit import rtc
from livekit.agents import AgentServer
from livekit.agents.beta.workflows import WarmTransferTask
from livekit.rtc._ffi_client import FfiClient
from livekit.rtc._proto import ffi_pb2

pytestmark = pytest.mark.unit

PINNED = {"livekit-agents": "1.8.9", "livekit": "1.1.21"}
UPGRADE = (
    "re-check tools/warm_transfer.py, tools/send_dtmf.py and switchboard/worker.py against the "
    "new source"
)


@pytest.mark.parametrize(("package", "expected"), sorted(PINNED.items()))
def test_the_pinned_versions_are_installed(package: str, expected: str) -> None:
    assert version(package) == expected, f"{package} {version(package)}: {UPGRADE}"


@pytest.mark.parametrize(
    ("method", "parameters"),
    [
        ("_originate_human_agent", ["self", "room_name", "identity", "room"]),
        ("_merge_calls", ["self"]),
        ("_set_result", ["self", "result"]),
    ],
)
def test_warm_transfer_task_methods_we_override(method: str, parameters: list[str]) -> None:
    found = getattr(WarmTransferTask, method, None)
    assert callable(found), f"WarmTransferTask.{method} is gone: {UPGRADE}"
    names = list(inspect.signature(found).parameters)
    assert names == parameters, f"WarmTransferTask.{method}{names}: {UPGRADE}"


def test_warm_transfer_task_keeps_the_person_session_where_we_read_it() -> None:
    source = inspect.getsource(WarmTransferTask)
    assert "self._human_agent_sess =" in source, f"_human_agent_sess moved: {UPGRADE}"


def test_ffi_publish_sip_dtmf_has_destination_identities() -> None:
    request = ffi_pb2.FfiRequest()
    fields = request.publish_sip_dtmf.DESCRIPTOR.fields_by_name
    for name in ("local_participant_handle", "code", "digit", "destination_identities"):
        assert name in fields, f"PublishSipDtmfRequest.{name} is gone: {UPGRADE}"
    assert "publish_sip_dtmf" in ffi_pb2.FfiEvent.DESCRIPTOR.fields_by_name
    for attribute in ("instance", "request", "queue"):
        assert hasattr(FfiClient, attribute), f"FfiClient.{attribute} is gone: {UPGRADE}"
    assert "_ffi_handle" in inspect.getsource(rtc.LocalParticipant), UPGRADE


def test_agent_server_load_accounting_we_override() -> None:
    assert list(inspect.signature(AgentServer._get_effective_load).parameters) == ["self"], UPGRADE
    source = inspect.getsource(AgentServer)
    # Our override replaces the load the framework compares with load_threshold...
    assert "self._get_effective_load() < load_threshold" in source, UPGRADE
    # ...and counts the jobs accepted but not launched from the same slots it does.
    assert "self._reserved_slots += 1" in source, UPGRADE
    assert "self._reserved_slots -= 1" in source, UPGRADE
