"""Helpers shared by the fidelity patches: CIDRs, tag filters, opaque
pagination tokens, the patching primitive, and the small state machine used
for resources whose state changes with time (``set_phases``)."""

from __future__ import annotations

import base64
import fnmatch
import inspect
import ipaddress
import json
import re
import threading
import time
from typing import Any, Callable, Iterable

from moto.ec2.exceptions import EC2ClientError

from . import settings as _settings

# Instance states in which AWS shows a route to the instance (or to its ENI)
# as a blackhole.
BLACKHOLE_INSTANCE_STATES = frozenset({"stopping", "stopped", "shutting-down", "terminated"})
# Attachment states in which a static TGW route to the attachment is a blackhole.
DEAD_ATTACHMENT_STATES = frozenset({"deleting", "deleted", "failed", "failing", "rejected"})

# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(str(cidr).strip(), strict=False)


def _cidr_key(cidr: str) -> tuple[int, int, int]:
    """Sort key: IPv4 before IPv6, then numerically by address, then length."""
    net = _network(cidr)
    return (net.version, int(net.network_address), net.prefixlen)


def _normal(cidr: str) -> str:
    try:
        return str(_network(cidr))
    except ValueError:
        return str(cidr)


def _invalid(message: str) -> EC2ClientError:
    return EC2ClientError("InvalidParameterValue", message)


def _wildcard_match(value: str | None, patterns: Iterable[str]) -> bool:
    if value is None:
        return False
    for pattern in patterns:
        regex = fnmatch.translate(pattern.replace("[", "[[]"))
        if re.match(regex, value, flags=re.DOTALL):
            return True
    return False


def _tags_of(resource: Any) -> dict[str, str]:
    try:
        return {t["key"]: t["value"] for t in resource.get_tags()}
    except Exception:  # resources without tags
        return {}


def _split_tag_filters(filters: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    filters = dict(filters or {})
    tag_filters = {
        k: v for k, v in filters.items() if k.startswith("tag:") or k in ("tag-key", "tag-value")
    }
    for key in tag_filters:
        filters.pop(key)
    return filters, tag_filters


def _passes_tag_filters(resource: Any, tag_filters: dict[str, Any]) -> bool:
    if not tag_filters:
        return True
    tags = _tags_of(resource)
    for name, values in tag_filters.items():
        values = values or []
        if name == "tag-key":
            if not any(_wildcard_match(k, values) for k in tags):
                return False
        elif name == "tag-value":
            if not any(_wildcard_match(v, values) for v in tags.values()):
                return False
        else:
            key = name[len("tag:"):]
            if key not in tags or not _wildcard_match(tags[key], values):
                return False
    return True


def _bound_arguments(func: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _ec2_backend(account_id: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[account_id][region]


# Set while moto itself removes a local route (a disassociated CIDR block's).
_LOCAL_ROUTE_REMOVAL = threading.local()


def _patch(owner: Any, name: str, value: Any) -> Any:
    original = owner.__dict__.get(name)
    if original is None:
        for klass in getattr(owner, "__mro__", ())[1:]:
            if name in klass.__dict__:
                original = klass.__dict__[name]
                break
    setattr(owner, name, value)
    return original


def _encode_token(action: str, offset: int) -> str:
    raw = json.dumps({"a": action, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(action: str, token: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data["a"] != action or not isinstance(data["o"], int) or data["o"] < 0:
            raise ValueError
        return data["o"]
    except Exception:
        raise EC2ClientError(
            "InvalidPaginationToken", f"The pagination token '{token}' is invalid."
        ) from None



# --------------------------------------------------------------------------- #
# Time, settings, request context
# --------------------------------------------------------------------------- #
def now() -> float:
    """Wall-clock seconds for every timed behaviour (monotonic)."""
    return time.monotonic()


def settings() -> Any:
    """The fidelity settings in force (``POST /_lbgp/fidelity``)."""
    return _settings.current()


# The EC2 action being handled on this thread (set around moto's
# ``call_action`` by ``consistency.patch_request_context``), so that a model
# property can tell a read from a write.
CONTEXT = threading.local()


def current_action() -> str | None:
    return getattr(CONTEXT, "action", None)


def set_phases(obj: Any, phases: list[tuple[str, float | None]]) -> None:
    """Give ``obj`` a timeline of states starting now: each ``(state,
    seconds)`` lasts that long, the last one for good. A zero duration
    passes at once, so with every duration 0 the object is in its last
    state immediately (the emulator's default)."""
    start = now()
    timeline = []
    for state, seconds in phases:
        timeline.append((state, start))
        start += seconds or 0.0
    obj.__dict__["_lbgp_phases"] = timeline


def phase(obj: Any, default: str) -> str:
    """The state of ``obj`` now, from its timeline."""
    timeline = obj.__dict__.get("_lbgp_phases")
    if not timeline:
        return default
    t = now()
    state = timeline[0][0]
    for name, start in timeline:
        if start <= t:
            state = name
        else:
            break
    return state


def phase_ends(obj: Any) -> float | None:
    """When ``obj`` reaches the last state of its timeline."""
    timeline = obj.__dict__.get("_lbgp_phases")
    return timeline[-1][1] if timeline else None


def timed_state_property(default: str) -> property:
    """A ``state`` attribute backed by a timeline: reading gives the state
    now, assigning (as moto does) starts a one-state timeline."""

    def getter(self: Any) -> str:
        return phase(self, default)

    def setter(self: Any, value: str) -> None:
        set_phases(self, [(value, None)])

    return property(getter, setter)
