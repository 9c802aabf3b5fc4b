"""Behaviour 3 (eventual consistency) and the per-request hook the timed
behaviours use.

``patch_request_context`` wraps moto's EC2 ``call_action`` (the method that
runs an action *and* serialises its answer): it records the action being
handled on this thread (``_common.current_action``) and runs the registered
``TICKS`` first (e.g. dropping attachments whose ``deleted`` time is over).

``patch_read_after_write``: the EC2 API is eventually consistent: "the
result of an API command you run that affects your Amazon EC2 resources
might not be immediately visible to all subsequent commands you run"
(https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html).
With ``read_after_write_seconds = N > 0``, for N seconds after a
CreateRoute / ReplaceRoute / DeleteRoute (VPC) or a Create / Replace /
DeleteTransitGatewayRoute (TGW), DescribeRouteTables and
SearchTransitGatewayRoutes show that route table as it was before the
write; after N seconds, as it is. Several writes: a read at time t shows
the table with the writes older than t - N applied and none of the younger
ones. Writes themselves always see the current table (a second CreateRoute
is still ``RouteAlreadyExists``). AWS gives no bound on the delay; off by
default (N = 0).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from moto.ec2.models.route_tables import RouteTable
from moto.ec2.responses.route_tables import RouteTables as RouteTablesResponse
from moto.ec2.responses.transit_gateway_route_tables import (
    TransitGatewayRouteTable as TgwRouteTableResponse,
)

from ._common import CONTEXT, _patch, current_action, now, settings

# Called with the region's EC2 backend before each EC2 action.
TICKS: list[Callable[[Any], None]] = []


def patch_request_context() -> None:
    """Record the EC2 action in progress and run the ticks before it."""
    from moto.ec2.responses import EC2Response

    original = EC2Response.call_action

    def call_action(self: Any) -> Any:
        previous = getattr(CONTEXT, "action", None)
        try:
            CONTEXT.action = self._get_action()
        except Exception:  # noqa: BLE001 - not an action request
            CONTEXT.action = None
        try:
            if TICKS and CONTEXT.action:
                backend = self.ec2_backend
                for tick in TICKS:
                    tick(backend)
            return original(self)
        finally:
            CONTEXT.action = previous

    _patch(EC2Response, "call_action", call_action)


# --------------------------------------------------------------------------- #
# Read-after-write delay
# --------------------------------------------------------------------------- #
def _remember(table: Any, snapshot: Any, written_at: float) -> None:
    window = settings().read_after_write_seconds
    if window <= 0:
        return
    history = table.__dict__.setdefault("_lbgp_history", [])
    t = now()
    history[:] = [h for h in history if h[0] + window > t]
    history.append((written_at, snapshot))


def _stale(table: Any) -> Any:
    """The view of ``table`` a read sees now, if it is not the current one."""
    history = table.__dict__.get("_lbgp_history")
    if not history:
        return None
    window = settings().read_after_write_seconds
    t = now()
    history[:] = [h for h in history if h[0] + window > t]
    return history[0][1] if history else None


def stale_tgw_records(table: Any) -> Any:
    """For SearchTransitGatewayRoutes: the (static, deleted) records of a TGW
    route table as a read sees them now, or None for the current ones."""
    if current_action() != "SearchTransitGatewayRoutes":
        return None
    return _stale(table)


def _vpc_snapshot(table: RouteTable) -> dict[str, Any]:
    # Copies: ReplaceRoute changes a route's target in place.
    return {key: copy.copy(route) for key, route in table._routes.items()}


def _delayed(method: Callable[[Any], Any], table_of: Callable[[Any], Any], snapshot_of: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def wrapper(self: Any) -> Any:
        if settings().read_after_write_seconds <= 0:
            return method(self)
        try:
            table = table_of(self)
        except Exception:  # noqa: BLE001 - the write reports it
            table = None
        if table is None:
            return method(self)
        written_at = now()
        snapshot = snapshot_of(table)
        result = method(self)  # raises: nothing was written, nothing to delay
        _remember(table, snapshot, written_at)
        return result

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


def patch_read_after_write() -> None:
    """Behaviour 3: reads of a route table lag its route writes by
    ``read_after_write_seconds`` (off by default)."""
    from .tgw_model import route_records

    def vpc_table(response: Any) -> Any:
        return response.ec2_backend.route_tables.get(response._get_param("RouteTableId"))

    for name in ("create_route", "replace_route", "delete_route"):
        _patch(RouteTablesResponse, name, _delayed(getattr(RouteTablesResponse, name), vpc_table, _vpc_snapshot))

    def tgw_table(response: Any) -> Any:
        return response.ec2_backend.transit_gateways_route_tables.get(
            response._get_param("TransitGatewayRouteTableId")
        )

    for name in ("create_transit_gateway_route", "replace_transit_gateway_route", "delete_transit_gateway_route"):
        _patch(TgwRouteTableResponse, name, _delayed(getattr(TgwRouteTableResponse, name), tgw_table, route_records))

    def routes(self: RouteTable) -> list[Any]:
        if current_action() == "DescribeRouteTables":
            stale = _stale(self)
            if stale is not None:
                return list(stale.values())
        return list(self._routes.values())

    _patch(RouteTable, "routes", property(routes))
