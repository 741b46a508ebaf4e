"""The exception tree: every exception class Palaver defines is a ``PalaverError``, in its layer."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import palaver
from palaver.errors import CallError, MediaError, PalaverError, SipError, ToolError


def palaver_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined in a palaver module, by ``module.Name`` (private ones too)."""
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(palaver.__path__, "palaver."):
        if module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if not inspect.isclass(value) or value.__module__ != module.__name__:
                continue
            if issubclass(value, BaseException):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_exception_class_in_palaver_is_a_palaver_error() -> None:
    classes = palaver_exceptions()
    assert len(classes) >= 20  # the walk did find the modules
    strays = sorted(name for name, cls in classes.items() if not issubclass(cls, PalaverError))
    assert strays == []


#: Each class of the documented tree, its layer, and the builtin base callers rely on (if any).
TREE: list[tuple[str, type[PalaverError], type[Exception] | None]] = [
    ("palaver.config.ConfigError", PalaverError, ValueError),
    ("palaver.protocol.errors.ProtocolError", PalaverError, None),
    ("palaver.protocol.bounds.ClientJsonError", PalaverError, ValueError),
    ("palaver.sip.errors.SipParseError", SipError, None),
    ("palaver.sip.digest.DigestError", SipError, ValueError),
    ("palaver.sip.transaction.TransactionError", SipError, None),
    ("palaver.sip.ua_events.UaStateError", SipError, None),
    ("palaver.calls.call.CallStateError", CallError, None),
    ("palaver.calls.sip_gateway.SipUnavailable", CallError, RuntimeError),
    ("palaver.sdp.SdpError", MediaError, ValueError),
    ("palaver.sdp.NoAcceptableMedia", MediaError, ValueError),
    ("palaver.rtp.packet.RtpError", MediaError, ValueError),
    ("palaver.rtp.rtcp.RtcpError", MediaError, ValueError),
    ("palaver.rtp.srtp.SrtpError", MediaError, ValueError),
    ("palaver.rtp.dtmf.DtmfError", MediaError, ValueError),
    ("palaver.backends.base.BackendError", PalaverError, None),
    ("palaver.backends.base.BackendUnavailable", PalaverError, None),
    ("palaver.tools.mcp_errors.McpError", ToolError, None),
    ("palaver.tools.policy.PolicyError", ToolError, ValueError),
    ("palaver.egress.EgressRefused", PalaverError, None),
]


@pytest.mark.parametrize(("name", "layer", "builtin"), TREE, ids=[name for name, _, _ in TREE])
def test_each_class_sits_in_its_layer_and_keeps_its_builtin_base(
    name: str, layer: type[PalaverError], builtin: type[Exception] | None
) -> None:
    module_name, _, class_name = name.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    assert issubclass(cls, layer)
    if builtin is not None:
        assert issubclass(cls, builtin)


def test_the_layers_do_not_overlap() -> None:
    layers = [SipError, CallError, MediaError, ToolError]
    for one in layers:
        assert [other for other in layers if other is not one and issubclass(one, other)] == []


def test_there_is_one_call_state_error() -> None:
    """The UA's refusal and the calls layer's 409 are different classes with different names:
    the gateway translates one into the other (tests/calls/test_sip_gateway_races.py)."""
    classes = palaver_exceptions()
    named = [name for name in classes if name.endswith(".CallStateError")]
    assert named == ["palaver.calls.call.CallStateError"]


def test_the_errors_module_exports_the_layer_bases() -> None:
    import palaver.errors

    assert sorted(palaver.errors.__all__) == [
        "CallError",
        "MediaError",
        "PalaverError",
        "SipError",
        "ToolError",
    ]
