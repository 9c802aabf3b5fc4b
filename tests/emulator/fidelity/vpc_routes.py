"""VPC route patches: gap e (errors of VPC route writes), gap f (route
states and the instance <-> ENI ids of a route) and gap g's canonical IPv6
blocks."""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from moto.ec2.exceptions import InvalidRouteError, RouteAlreadyExistsError
from moto.ec2.models.route_tables import Route, RouteBackend

from ._common import (
    BLACKHOLE_INSTANCE_STATES,
    _LOCAL_ROUTE_REMOVAL,
    _bound_arguments,
    _invalid,
    _normal,
    _patch,
)


# --------------------------------------------------------------------------- #
# e. Errors of route writes
# --------------------------------------------------------------------------- #
def patch_route_errors() -> None:
    """Gap e: CreateRoute of an existing VPC route is ``RouteAlreadyExists``
    whatever the target and address family (moto checked IPv4 routes with a
    non-ENI target only). The TGW route errors are part of
    ``patch_tgw_route_attachments``."""

    original_create = RouteBackend.create_route

    @functools.wraps(original_create)
    def create_route(self: Any, *args: Any, **kwargs: Any) -> Route:
        arguments = _bound_arguments(original_create, self, *args, **kwargs)
        if not arguments.get("local"):
            table = self.get_route_table(arguments["route_table_id"])
            wanted = (
                arguments.get("destination_cidr_block")
                or arguments.get("destination_ipv6_cidr_block")
                or arguments.get("destination_prefix_list_id")
            )
            if wanted:
                wanted_norm = _normal(wanted)
                for route in table._routes.values():
                    existing = (
                        route.destination_cidr_block
                        or route.destination_ipv6_cidr_block
                        or route.destination_prefix_list_id
                    )
                    if existing and _normal(existing) == wanted_norm:
                        raise RouteAlreadyExistsError(wanted)
        return original_create(self, *args, **kwargs)

    _patch(RouteBackend, "create_route", create_route)

    original_delete = RouteBackend.delete_route

    @functools.wraps(original_delete)
    def delete_route(self: Any, *args: Any, **kwargs: Any) -> Route:
        """moto looks the route up by its id string; match CIDRs by value."""
        arguments = _bound_arguments(original_delete, self, *args, **kwargs)
        table = self.get_route_table(arguments["route_table_id"])
        wanted = (
            arguments.get("destination_ipv6_cidr_block")
            or arguments.get("destination_prefix_list_id")
            or arguments.get("destination_cidr_block")
        )
        if wanted:
            wanted_norm = _normal(wanted)
            for key, route in list(table._routes.items()):
                existing = (
                    route.destination_ipv6_cidr_block
                    or route.destination_prefix_list_id
                    or route.destination_cidr_block
                )
                if existing and _normal(existing) == wanted_norm:
                    if route.local and not getattr(_LOCAL_ROUTE_REMOVAL, "allowed", False):
                        raise _invalid(
                            f"cannot remove local route {wanted} in route table "
                            f"{arguments['route_table_id']}"
                        )
                    return table._routes.pop(key)
        raise InvalidRouteError(arguments["route_table_id"], wanted)

    _patch(RouteBackend, "delete_route", delete_route)

    from moto.ec2.models.vpcs import VPCBackend

    original_disassociate = VPCBackend.disassociate_vpc_cidr_block

    def disassociate_vpc_cidr_block(self: Any, *args: Any, **kwargs: Any) -> Any:
        """moto removes a disassociated block's local route through
        ``delete_route``, which (rightly) refuses local routes when a client
        asks: AWS removes it with the block, so allow it on this path only."""
        _LOCAL_ROUTE_REMOVAL.allowed = True
        try:
            return original_disassociate(self, *args, **kwargs)
        finally:
            _LOCAL_ROUTE_REMOVAL.allowed = False

    _patch(VPCBackend, "disassociate_vpc_cidr_block", disassociate_vpc_cidr_block)


# --------------------------------------------------------------------------- #
# f. VPC route state
# --------------------------------------------------------------------------- #
def patch_vpc_route_state() -> None:
    """Gap f: ``blackhole`` VPC routes, and the instance <-> ENI ids of a route.

    ``Route.state`` is computed when read: blackhole when the instance target
    is stopping/stopped/shutting-down/terminated, when the ENI target was
    deleted, is detached, or its instance is in one of those states, or when
    the TGW target was deleted."""

    def state(self: Route) -> str:
        backend = self.route_table.ec2_backend
        if self.interface is not None:
            eni = self.interface
            if backend.enis.get(eni.id) is not eni:
                return "blackhole"
            instance = getattr(eni, "instance", None)
            if instance is None or instance.state in BLACKHOLE_INSTANCE_STATES:
                return "blackhole"
        elif self.instance is not None:
            if self.instance.state in BLACKHOLE_INSTANCE_STATES:
                return "blackhole"
        if self.transit_gateway is not None and self.transit_gateway.id not in backend.transit_gateways:
            return "blackhole"
        return "active"

    def instance_id(self: Route) -> str | None:
        if self.instance is not None:
            return self.instance.id
        if self.interface is not None and getattr(self.interface, "instance", None) is not None:
            return self.interface.instance.id
        return None

    def instance_owner_id(self: Route) -> str | None:
        return self.route_table.ec2_backend.account_id if instance_id(self) else None

    def network_interface_id(self: Route) -> str | None:
        if self.interface is not None:
            return self.interface.id
        if self.instance is not None:
            nics = getattr(self.instance, "nics", {}) or {}
            primary = nics.get(0) or (next(iter(nics.values())) if nics else None)
            if primary is not None:
                return primary.id
        return None

    _patch(Route, "state", property(state))
    _patch(Route, "instance_id", property(instance_id))
    _patch(Route, "instance_owner_id", property(instance_owner_id))
    _patch(Route, "network_interface_id", property(network_interface_id))


def patch_canonical_ipv6_blocks() -> None:
    """Gap g: moto draws a VPC's Amazon-provided IPv6 block as
    ``2400:6500:<4 hex>:<2 hex>00::/56`` and prints it as drawn, so about one
    block in eight carries a leading zero (``2400:6500:0a1b:…``). AWS prints
    addresses in canonical form; now so does the emulator."""
    from moto.ec2.models import vpcs

    drawn = vpcs.random_ipv6_cidr

    def canonical() -> str:
        return str(ipaddress.ip_network(drawn()))

    vpcs.random_ipv6_cidr = canonical

