"""Rules AWS applies to VPC route writes that moto does not: gateway route
tables (behaviour 4), the routes-per-route-table quota (behaviour 5) and the
target checks that make ReplaceRoute / CreateRoute fail for reasons other
than a missing route (behaviour 9).

4. A route table associated with an internet gateway or a virtual private
   gateway (edge association, AssociateRouteTable with GatewayId) is a
   *gateway route table*: its routes may only target ``local``, a Gateway
   Load Balancer endpoint or a network interface, and their destination
   must be the whole CIDR block of the VPC or of one of its subnets
   (https://docs.aws.amazon.com/vpc/latest/userguide/gateway-route-tables.html).
   Any other target (a transit gateway among them) is refused with
   ``InvalidParameterValue`` "Route target is not supported. ..." (AWS's
   words for a refused target, as it answers a route within the VPC's range
   to an unsupported target; the rest of the message is ours), and so is a
   destination outside the VPC or a prefix list. A table with such routes
   cannot be associated with a gateway. moto also hid the ``GatewayId`` of
   a virtual private gateway association; shown now.
5. "Routes per route table (non-propagated routes)": 50 by default,
   adjustable up to 1,000, "enforced separately for IPv4 routes and IPv6
   routes" (https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html).
   CreateRoute beyond ``vpc_route_quota`` (default 50, null: none) is
   ``RouteLimitExceeded``. The local routes are not counted (the page does
   not say; they cannot be removed). A route to a prefix list counts its
   maximum number of entries, as the page says for prefix list references.
9. CreateRoute / ReplaceRoute to a network interface of another VPC is
   ``InvalidParameterValue`` "route table ... and network interface ...
   belong to different networks" (AWS's message for a gateway of another
   VPC); with ``reject_multi_interface_instances`` (off by default: this
   suite's fixtures, and lbgp's failover fixtures, route to two-interface
   instances by InstanceId), a route to an instance with several network interfaces
   given by InstanceId is ``InvalidInstanceID`` "There are multiple
   interfaces attached to instance '...'. Please specify an interface ID for
   the operation instead." (AWS's answer, reported in bobtfish/AWSnycast#28).
   ReplaceRoute of a missing route is still checked first ("There is no
   route defined for ...").
"""

from __future__ import annotations

import functools
from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.route_tables import RouteBackend, RouteTable

from ._common import _bound_arguments, _invalid, _normal, _patch, settings

GATEWAY_PREFIXES = ("igw-", "vgw-")
# CreateRoute / ReplaceRoute target arguments (moto's names) that a gateway
# route table refuses.
REFUSED_IN_GATEWAY_TABLES = (
    "gateway_id",
    "instance_id",
    "nat_gateway_id",
    "egress_only_igw_id",
    "transit_gateway_id",
    "vpc_peering_connection_id",
    "carrier_gateway_id",
)


def gateway_of(table: RouteTable) -> str | None:
    """The gateway a route table is associated with (edge association)."""
    for target in table._associations.values():
        if target and str(target).startswith(GATEWAY_PREFIXES):
            return str(target)
    return None


def _destination(arguments: dict[str, Any]) -> str | None:
    return arguments.get("destination_ipv6_cidr_block") or arguments.get("destination_cidr_block")


def _vpc_blocks(backend: Any, vpc_id: str) -> tuple[set[str], set[str]]:
    """(the VPC's associated CIDR blocks, its subnets' CIDR blocks)."""
    vpc = backend.vpcs.get(vpc_id)
    blocks: set[str] = set()
    if vpc is not None:
        for entry in vpc._cidr_block_association_set.values():
            if (entry.get("cidr_block_state") or {}).get("state") == "associated" and entry.get("cidr_block"):
                blocks.add(_normal(entry["cidr_block"]))
    subnets: set[str] = set()
    for subnet in backend.describe_subnets(filters={"vpc-id": [vpc_id]}):
        subnets.add(_normal(subnet.cidr_block))
        for assoc in (getattr(subnet, "ipv6_cidr_block_associations", {}) or {}).values():
            cidr = assoc.get("ipv6CidrBlock") if isinstance(assoc, dict) else None
            if cidr:
                subnets.add(_normal(cidr))
    return blocks, subnets


def _check_gateway_route(backend: Any, table: RouteTable, gateway: str, arguments: dict[str, Any]) -> None:
    refused = [name for name in REFUSED_IN_GATEWAY_TABLES if arguments.get(name)]
    if refused:
        raise _invalid(
            "Route target is not supported. A route table associated with a gateway "
            f"({gateway}) only supports local, network interface and Gateway Load "
            "Balancer endpoint targets."
        )
    if arguments.get("destination_prefix_list_id"):
        raise _invalid(
            f"A prefix list cannot be the destination of a route in a route table "
            f"associated with a gateway ({table.id})."
        )
    destination = _destination(arguments)
    if destination:
        blocks, subnets = _vpc_blocks(backend, table.vpc_id)
        if _normal(destination) not in blocks | subnets:
            raise _invalid(
                f"The destination CIDR block {destination} is not the CIDR block of VPC "
                f"{table.vpc_id} or of one of its subnets: a route table associated with a "
                "gateway only routes to destinations inside its VPC."
            )


def _check_targets(backend: Any, table: RouteTable, arguments: dict[str, Any]) -> None:
    interface_id = arguments.get("interface_id")
    if interface_id:
        eni = backend.get_network_interface(interface_id)  # InvalidNetworkInterfaceID.NotFound
        subnet = getattr(eni, "subnet", None)
        if subnet is not None and subnet.vpc_id != table.vpc_id:
            raise _invalid(f"route table {table.id} and network interface {interface_id} belong to different networks")
    instance_id = arguments.get("instance_id")
    if instance_id and not interface_id:
        instance = backend.get_instance(instance_id)  # InvalidInstanceID.NotFound
        if getattr(instance, "vpc_id", None) and instance.vpc_id != table.vpc_id:
            raise _invalid(f"route table {table.id} and instance {instance_id} belong to different networks")
        if settings().reject_multi_interface_instances and len(getattr(instance, "nics", {}) or {}) > 1:
            raise EC2ClientError(
                "InvalidInstanceID",
                f"There are multiple interfaces attached to instance '{instance_id}'. "
                "Please specify an interface ID for the operation instead.",
            )


def _route_family(route: Any) -> tuple[int, int]:
    """(IP version, how many routes it counts for) of an existing route."""
    if route.destination_ipv6_cidr_block:
        return 6, 1
    prefix_list = route.destination_prefix_list
    if prefix_list is not None:
        return _prefix_list_family(prefix_list)
    return 4, 1


def _prefix_list_family(prefix_list: Any) -> tuple[int, int]:
    family = 6 if str(getattr(prefix_list, "address_family", "IPv4")).lower() == "ipv6" else 4
    return family, int(getattr(prefix_list, "max_entries", 1) or 1)


def _check_quota(backend: Any, table: RouteTable, arguments: dict[str, Any]) -> None:
    quota = settings().vpc_route_quota
    if quota is None:
        return
    if arguments.get("destination_ipv6_cidr_block"):
        family, weight = 6, 1
    elif arguments.get("destination_prefix_list_id"):
        prefix_list = backend.managed_prefix_lists.get(arguments["destination_prefix_list_id"])
        family, weight = _prefix_list_family(prefix_list) if prefix_list is not None else (4, 1)
    else:
        family, weight = 4, 1
    used = 0
    for route in table._routes.values():
        if route.local:
            continue
        route_family, route_weight = _route_family(route)
        if route_family == family:
            used += route_weight
    if used + weight > quota:
        raise EC2ClientError(
            "RouteLimitExceeded",
            f"The maximum number of routes ({quota}) has been reached for the IPv{family} "
            f"routes of route table {table.id}.",
        )


def patch_vpc_route_rules() -> None:
    """Behaviours 4, 5 and 9 (see the module docstring)."""
    original_create = RouteBackend.create_route

    @functools.wraps(original_create)  # keeps the signature: gap e binds the arguments too
    def create_route(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = _bound_arguments(original_create, self, *args, **kwargs)
        if not arguments.get("local"):
            table = self.get_route_table(arguments["route_table_id"])
            gateway = gateway_of(table)
            if gateway:
                _check_gateway_route(self, table, gateway, arguments)
            _check_targets(self, table, arguments)
            _check_quota(self, table, arguments)
        return original_create(self, *args, **kwargs)

    _patch(RouteBackend, "create_route", create_route)

    original_replace = RouteBackend.replace_route

    @functools.wraps(original_replace)
    def replace_route(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = _bound_arguments(original_replace, self, *args, **kwargs)
        table = self.get_route_table(arguments["route_table_id"])
        wanted = _destination(arguments) or arguments.get("destination_prefix_list_id")
        exists = wanted is not None and any(
            _normal(r.destination_ipv6_cidr_block or r.destination_prefix_list_id or r.destination_cidr_block or "")
            == _normal(wanted)
            for r in table._routes.values()
        )
        if exists:  # else moto answers "There is no route defined for ..."
            gateway = gateway_of(table)
            if gateway:
                _check_gateway_route(self, table, gateway, arguments)
            _check_targets(self, table, arguments)
        return original_replace(self, *args, **kwargs)

    _patch(RouteBackend, "replace_route", replace_route)

    original_associate = RouteBackend.associate_route_table

    def associate_route_table(
        self: Any, route_table_id: str, gateway_id: str | None = None, subnet_id: str | None = None
    ) -> str:
        if gateway_id:
            table = self.get_route_table(route_table_id)
            if str(gateway_id).startswith("igw-"):
                self.get_internet_gateway(gateway_id)  # InvalidInternetGatewayID.NotFound
            elif str(gateway_id).startswith("vgw-"):
                self.get_vpn_gateway(gateway_id)  # InvalidVpnGatewayID.NotFound
            blocks, subnets = _vpc_blocks(self, table.vpc_id)
            for route in table._routes.values():
                if route.local:
                    continue
                destination = route.destination_ipv6_cidr_block or route.destination_cidr_block
                supported = (route.interface is not None or route.vpc_endpoint_id) and not (
                    route.gateway or route.instance or route.nat_gateway or route.transit_gateway or route.vpc_pcx
                )
                if not supported or destination is None or _normal(destination) not in blocks | subnets:
                    raise _invalid(
                        f"Route table {route_table_id} has a route ({destination or route.destination_prefix_list_id}) "
                        "that a route table associated with a gateway does not support."
                    )
        return original_associate(self, route_table_id, gateway_id, subnet_id)

    _patch(RouteBackend, "associate_route_table", associate_route_table)

    def associations(self: RouteTable) -> list[dict[str, Any]]:
        result = []
        if self.main_association_id is not None:
            result.append(
                {
                    "RouteTableAssociationId": self.main_association_id,
                    "RouteTableId": self.id,
                    "Main": True,
                    "AssociationState": {"State": "associated"},
                }
            )
        for association_id, target_id in self._associations.items():
            item: dict[str, Any] = {
                "RouteTableAssociationId": association_id,
                "RouteTableId": self.id,
                "Main": False,
                "AssociationState": {"State": "associated"},
            }
            if str(target_id).startswith(GATEWAY_PREFIXES):
                item["GatewayId"] = target_id
            elif str(target_id).startswith("subnet"):
                item["SubnetId"] = target_id
            result.append(item)
        return result

    _patch(RouteTable, "associations", property(associations))

