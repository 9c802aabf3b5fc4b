"""Run-time settings of the fidelity layer (``/_lbgp/fidelity``).

One process-wide :class:`FidelitySettings`, replaced as a whole by
``POST /_lbgp/fidelity`` (fields left out take their defaults), read by the
patches while moto handles a request. No moto import here: the launcher
loads it with ``--plain`` too (the settings are then accepted and shown but
nothing reads them).

Two kinds of field:

* *strictness* (limits, quotas, paging): AWS's behaviour, **on** by default;
* *time* (states that linger, read-after-write delay): **off** by default
  (zero seconds), so that a client that never asks for them sees what it
  saw before. Durations are wall-clock seconds (``time.monotonic``),
  fractions allowed.
"""

from __future__ import annotations

import threading
from typing import Any

DURATIONS = (
    # A new VPC attachment is `pending` this long, then `available`; a
    # peering attachment is `pending` this long after it is accepted.
    "attachment_pending_seconds",
    # After ModifyTransitGatewayVpcAttachment: `modifying`, then `available`.
    "attachment_modifying_seconds",
    # After Delete...Attachment: `deleting`, then `deleted`.
    "attachment_deleting_seconds",
    # A new peering attachment is `initiatingRequest`, then `pendingAcceptance`.
    "peering_initiating_seconds",
    # A new transit gateway is `pending`, then `available`.
    "tgw_pending_seconds",
    # After ModifyTransitGateway: `modifying`, then `available`.
    "tgw_modifying_seconds",
    # A new static TGW route is `pending`, then `active` (or `blackhole`).
    "tgw_route_pending_seconds",
    # A deleted static TGW route is still found, `deleted`, this long.
    "tgw_route_deleted_visible_seconds",
    # DescribeRouteTables / SearchTransitGatewayRoutes show a route table as
    # it was before a route write for this long after the write.
    "read_after_write_seconds",
)

PAGING_MODES = ("token", "legacy")
PEERING_RESOURCE_TYPES = ("peering", "tgw-peering")


class SettingsError(ValueError):
    """A bad ``POST /_lbgp/fidelity`` body (the launcher answers 400)."""


class FidelitySettings:
    """The settings in force. Build one from a JSON object; every field is
    optional (defaults below), an unknown field is an error."""

    DEFAULTS: dict[str, Any] = {
        **{name: 0.0 for name in DURATIONS},
        # How long a deleted attachment stays listed as `deleted`. null:
        # moto's behaviour (a VPC attachment is gone at once, a peering
        # attachment stays listed as `deleted`); a number: both kinds, that
        # many seconds after they reach `deleted`.
        "attachment_deleted_visible_seconds": None,
        # Routes per VPC route table (non-propagated, non-local; IPv4 and
        # IPv6 counted separately); null: no quota.
        "vpc_route_quota": 50,
        # Filter values per Describe call (all filters together); null: none.
        "filter_value_limit": 200,
        # SearchTransitGatewayRoutes: "token" (pages with NextToken) or
        # "legacy" (at most MaxResults routes, AdditionalRoutesAvailable,
        # no NextToken, the most specific routes kept).
        "search_routes_paging": "token",
        # ResourceType shown for peering attachments ("tgw-peering": the
        # deprecated spelling, in SearchTransitGatewayRoutes and
        # DescribeTransitGatewayAttachments).
        "peering_resource_type": "peering",
        # CreateRoute / ReplaceRoute with the InstanceId of an instance that
        # has several network interfaces: InvalidInstanceID, as AWS answers.
        # Off by default: this suite's fixtures (and lbgp's failover fixtures,
        # tests/src/failover_fixtures.rs) route to two-interface instances by
        # InstanceId.
        "reject_multi_interface_instances": False,
    }

    def __init__(self, raw: dict[str, Any] | None = None) -> None:
        raw = dict(raw or {})
        unknown = set(raw) - set(self.DEFAULTS)
        if unknown:
            raise SettingsError(f"unknown fields: {sorted(unknown)}")
        values = dict(self.DEFAULTS)
        for name in DURATIONS:
            if name in raw:
                values[name] = _seconds(name, raw[name])
        if "attachment_deleted_visible_seconds" in raw:
            value = raw["attachment_deleted_visible_seconds"]
            values["attachment_deleted_visible_seconds"] = (
                None if value is None else _seconds("attachment_deleted_visible_seconds", value)
            )
        for name in ("vpc_route_quota", "filter_value_limit"):
            if name in raw:
                values[name] = _count(name, raw[name])
        for name, allowed in (
            ("search_routes_paging", PAGING_MODES),
            ("peering_resource_type", PEERING_RESOURCE_TYPES),
        ):
            if name in raw:
                if raw[name] not in allowed:
                    raise SettingsError(f"{name} must be one of {list(allowed)}")
                values[name] = raw[name]
        for name in ("reject_multi_interface_instances",):
            if name in raw:
                if not isinstance(raw[name], bool):
                    raise SettingsError(f"{name} must be true or false")
                values[name] = raw[name]
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SettingsError(f"{name} must be a number of seconds >= 0")
    return float(value)


def _count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(f"{name} must be null or an integer >= 1")
    return value


_LOCK = threading.Lock()
_CURRENT = FidelitySettings()


def current() -> FidelitySettings:
    """The settings in force (an immutable snapshot)."""
    return _CURRENT


def replace(raw: dict[str, Any] | None) -> FidelitySettings:
    """Validate ``raw`` and put it in force (all of it: absent fields take
    their defaults). Raises :class:`SettingsError`."""
    global _CURRENT
    settings = FidelitySettings(raw)
    with _LOCK:
        _CURRENT = settings
    return settings


def reset() -> FidelitySettings:
    return replace(None)
