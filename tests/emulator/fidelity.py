"""Fidelity patches: make moto (5.2.x) answer like real AWS where lbgp depends on it.

Each patch is a named function below, applied by :func:`apply` (the launcher
calls it unless ``--plain``). Each one monkeypatches a moto backend or
response class at import time; none edits moto's files. Every gap was first
reproduced against plain moto (``lbgp_emulator.py --plain``) and each has a
test in ``test_fidelity.py`` that asserts the AWS behaviour on the patched
server *and* the gap on the plain one, so that a moto upgrade that closes a
gap makes a test fail and tells us to drop the patch.

Gaps and patches (the table in README.md carries the same list):

a. ``patch_tgw_route_attachments`` - TGW routes (CreateTransitGatewayRoute,
   SearchTransitGatewayRoutes, DeleteTransitGatewayRoute) came back with an
   empty ``TransitGatewayAttachments``. AWS lists the attachment id, resource
   id and resource type (vpc, peering, vpn, direct-connect-gateway, connect...).
   Static routes now keep the attachment *id* and resolve it when read, in the
   region that reads it (so a peering attachment shows the peer TGW as
   resource id on both sides). A static route whose attachment is gone reads
   ``blackhole``.
b. ``patch_tgw_propagation`` - propagated routes never appeared. AWS: while an
   attachment propagates to a TGW route table, that table has one
   ``propagated`` / ``active`` route per CIDR of the VPC (every associated IPv4
   block, plus the IPv6 blocks when the attachment has ``Ipv6Support``
   enabled); they vanish on DisableTransitGatewayRouteTablePropagation or when
   the attachment is deleted, and follow CIDRs associated later. A VPC
   attachment created on a TGW with ``DefaultRouteTablePropagation=enable``
   propagates to the default propagation route table (moto did not), and is
   associated with the default association route table only when
   ``DefaultRouteTableAssociation=enable`` (moto always did). A static route
   wins over a propagated one for the same prefix.
c. ``patch_search_transit_gateway_routes`` - moto crashed (HTTP 500) on
   ``MaxResults`` and ignored most filters. Implemented: ``type``, ``state``,
   ``route-search.exact-match``, ``route-search.longest-prefix-match``,
   ``route-search.subnet-of-match``, ``route-search.supernet-of-match`` (both
   include the equal prefix), ``attachment.transit-gateway-attachment-id``,
   ``attachment.resource-id``, ``attachment.resource-type``; an unknown filter
   is ``InvalidParameterValue``. Like AWS: ``MaxResults`` 5..1000, default
   1000, at most that many routes, ``AdditionalRoutesAvailable=true`` when
   more matched, and no NextToken. Routes are sorted by destination
   (numerically, IPv4 before IPv6). AWS does not say which routes a
   truncated answer holds; this one holds the most specific, so the broad
   routes (0.0.0.0/0, a reader's split prefix) are left out of it.
d. ``patch_attachment_kinds_and_peering_sides`` -
   DescribeTransitGatewayVpcAttachments returned every kind of attachment
   and DescribeTransitGatewayPeeringAttachments too; each now lists its own
   kind only. moto already shows a cross-region peering attachment in both
   regions (one shared object: pendingAcceptance, then available on both
   sides after AcceptTransitGatewayPeeringAttachment in the accepter region,
   Requester/AccepterTgwInfo right), but the accepter region saw the
   *requester's* point of view in DescribeTransitGatewayAttachments
   (TransitGatewayId = the requester TGW, ResourceId = its own TGW), and it
   only worked if the peer region had been used before the peering was
   created. The accepter region now holds its own view of the shared
   attachment: TransitGatewayId = its TGW, ResourceId = the requester TGW,
   state shared with the requester. On acceptance each side is associated
   with its TGW's default association route table when
   ``DefaultRouteTableAssociation=enable`` (as AWS does). The
   ``local-owner-id`` / ``remote-owner-id`` filters (broken in moto) and
   ``transit-gateway-id`` work.
e. ``patch_route_errors`` - a duplicate CreateTransitGatewayRoute silently
   overwrote the route: now ``RouteAlreadyExists``. DeleteTransitGatewayRoute
   of a missing route crashed (HTTP 500): now ``InvalidRoute.NotFound``.
   CreateRoute of an existing VPC route was caught by moto only for some
   targets (not NetworkInterfaceId, not IPv6 destinations): now always
   ``RouteAlreadyExists``. DeleteRoute of a missing route: moto is already
   right (``InvalidRoute.NotFound``). ReplaceRoute of a missing route: moto
   answers ``InvalidParameterValue`` ("There is no route defined for ... Use
   CreateRoute instead."), which is what AWS answers (checked against AWS by
   moto's maintainers, getmoto/moto#6425), so it is left alone.
f. ``patch_vpc_route_state`` - every VPC route read ``active``. AWS: a route
   to an instance that is stopping / stopped / shutting-down / terminated, or
   to an ENI that was deleted, is detached, or whose instance is in one of
   those states, reads ``blackhole``; so does a route to a deleted TGW. Also
   like AWS, a route to an instance shows the instance's primary ENI id and a
   route to an attached ENI shows its instance id (and ``InstanceOwnerId``).
g. Smaller gaps met on the way:
   ``patch_pagination`` - MaxResults/NextToken were ignored (everything in
   one page) by DescribeTransitGateways, DescribeTransitGatewayAttachments,
   -VpcAttachments, -PeeringAttachments, -RouteTables, DescribeVpcs and
   DescribeRouteTables. Now paged like AWS (MaxResults 5..1000, 5..100 for
   DescribeRouteTables; opaque NextToken; no MaxResults = everything).
   DescribeInstances already pages (moto: 100 per page by default).
   ``patch_tag_filters`` - ``tag-key`` / ``tag-value`` filters and wildcards
   were ignored on DescribeTransitGateways (``tag:lbgp:mesh`` with a colon
   in the key already worked), and the attachment describes ignored tag
   filters altogether.
   ``patch_tgw_defaults`` - a TGW created with both default association and
   propagation disabled has no default route table in AWS; moto made one.
   CreateTransitGatewayVpcAttachment dropped its ``TagSpecifications``
   (moto read the ``transit-gateway-route-table`` ones) and accepted a
   missing VPC; AssociateTransitGatewayRouteTable of an attachment already
   associated is ``Resource.AlreadyAssociated`` in AWS; and the attachment's
   ``Association`` did not follow Associate/Disassociate.
   ``patch_replace_transit_gateway_route`` - ReplaceTransitGatewayRoute was
   not implemented by moto (HTTP 500).
   ``patch_tgw_route_table_filters`` - DescribeTransitGatewayRouteTables
   filters ``default-association-route-table`` /
   ``default-propagation-route-table`` matched nothing, tag filters were
   ignored.
   ``patch_canonical_ipv6_blocks`` - a VPC's Amazon-provided IPv6 block was
   printed as drawn, about one in eight with a leading zero
   (``2400:6500:0a1b:…``); AWS prints canonical addresses.
h. DynamoDB transaction conflicts - moto handles one request at a time, so
   concurrent transactions never met. In AWS a TransactWriteItems touching an
   item another ongoing transaction touches (a condition check counts) is
   cancelled (``TransactionConflict`` among its CancellationReasons), and a
   PutItem / UpdateItem / DeleteItem of such an item fails with
   ``TransactionConflictException``. Modelled in ``lbgp_emulator.py``'s
   middleware (it needs to see requests before moto's lock), not here; off
   with ``--plain``.

Already right in moto 5.2.5 (tested, not patched): describe_route_tables
filters ``vpc-id``, ``association.main``, ``route-table-id``;
describe_instance_status with and without ``IncludeAllInstances``;
ReplaceRoute to NetworkInterfaceId / InstanceId / TransitGatewayId; IPv6
VPC routes (create / replace / delete); DeleteRoute of a missing route;
``tag:lbgp:mesh`` on DescribeTransitGateways; DescribeInstances pagination.
"""

from __future__ import annotations

import base64
import fnmatch
import inspect
import ipaddress
import json
import re
import threading
from typing import Any, Callable, Iterable

from moto.ec2.exceptions import (
    DuplicateTransitGatewayAttachmentError,
    EC2ClientError,
    InvalidRouteError,
    InvalidTransitGatewayID,
    RouteAlreadyExistsError,
)
from moto.ec2.models.route_tables import Route, RouteBackend
from moto.ec2.models.transit_gateway import TransitGatewayBackend
from moto.ec2.models.transit_gateway_attachments import (
    TransitGatewayAttachment,
    TransitGatewayAttachmentBackend,
    TransitGatewayPeeringAttachment,
    TransitGatewayVpcAttachment,
)
from moto.ec2.models.transit_gateway_route_tables import (
    RouteTablePropagation,
    TransitGatewayRelations,
    TransitGatewayRouteTableBackend,
)
from moto.ec2.responses.route_tables import RouteTables as RouteTablesResponse
from moto.ec2.responses.transit_gateway_attachments import (
    TransitGatewayAttachment as TgwAttachmentResponse,
)
from moto.ec2.responses.transit_gateway_route_tables import (
    TransitGatewayRouteTable as TgwRouteTableResponse,
)
from moto.ec2.responses.transit_gateways import TransitGateways as TgwResponse
from moto.ec2.responses.vpcs import VPCs as VpcsResponse
from moto.core.responses import ActionResult

_APPLIED: list[str] = []

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


# --------------------------------------------------------------------------- #
# TGW route model (shared by a, b, c, e)
# --------------------------------------------------------------------------- #
def _rt_or_error(backend: Any, route_table_id: str) -> Any:
    table = backend.transit_gateways_route_tables.get(route_table_id)
    if table is None or table.state == "deleted":
        raise EC2ClientError(
            "InvalidRouteTableID.NotFound",
            f"Transit Gateway Route Table {route_table_id} was deleted or does not exist.",
        )
    return table


def _attachment_or_error(backend: Any, attachment_id: str) -> Any:
    attachment = backend.transit_gateway_attachments.get(attachment_id)
    if attachment is None or attachment.state in ("deleted",):
        raise EC2ClientError(
            "InvalidTransitGatewayAttachmentID.NotFound",
            f"Transit Gateway Attachment {attachment_id} was deleted or does not exist.",
        )
    return attachment


def _static_routes(table: Any) -> dict[str, dict[str, Any]]:
    """The static routes of a TGW route table: normalised CIDR -> record.

    moto's own ``table.routes`` is replaced by our records (only the patched
    methods read it)."""
    if not getattr(table, "_lbgp_static_routes", None):
        table._lbgp_static_routes = {}
        table.routes = table._lbgp_static_routes
    return table._lbgp_static_routes


def _attachment_ref(attachment: Any) -> dict[str, str]:
    return {
        "ResourceId": attachment.resource_id,
        "TransitGatewayAttachmentId": attachment.id,
        "ResourceType": attachment.resource_type,
    }


def _static_route_view(backend: Any, record: dict[str, Any]) -> dict[str, Any]:
    attachment = None
    if record.get("attachment_id"):
        attachment = backend.transit_gateway_attachments.get(record["attachment_id"])
    alive = attachment is not None and attachment.state not in DEAD_ATTACHMENT_STATES
    blackhole = record.get("blackhole") or not alive
    return {
        "DestinationCidrBlock": record["cidr"],
        "TransitGatewayAttachments": [] if blackhole else [_attachment_ref(attachment)],
        "Type": "static",
        "State": "blackhole" if blackhole else "active",
    }


def _attachment_cidrs(backend: Any, attachment: Any) -> list[str]:
    """The CIDRs an attachment propagates: a VPC's associated IPv4 blocks, and
    its IPv6 blocks when the attachment has Ipv6Support enabled."""
    if attachment.resource_type != "vpc":
        return []  # VPN / DX propagate BGP routes: not emulated
    vpc = backend.vpcs.get(getattr(attachment, "vpc_id", attachment.resource_id))
    if vpc is None:
        return []
    cidrs = []
    ipv6 = (getattr(attachment, "options", {}) or {}).get("Ipv6Support") == "enable"
    for entry in vpc._cidr_block_association_set.values():
        if (entry.get("cidr_block_state") or {}).get("state") != "associated":
            continue
        cidr = entry.get("cidr_block")
        if not cidr:
            continue
        if ":" in cidr and not ipv6:
            continue
        cidrs.append(_normal(cidr))
    return cidrs


def _propagated_routes(backend: Any, table: Any) -> dict[str, dict[str, Any]]:
    routes: dict[str, list[Any]] = {}
    for propagation in table.route_table_propagation:
        if getattr(propagation, "state", "enabled") != "enabled":
            continue
        attachment = backend.transit_gateway_attachments.get(
            propagation.transitGatewayAttachmentId
        )
        if attachment is None or attachment.state != "available":
            continue
        for cidr in _attachment_cidrs(backend, attachment):
            routes.setdefault(cidr, [])
            if attachment not in routes[cidr]:
                routes[cidr].append(attachment)
    return {
        cidr: {
            "DestinationCidrBlock": cidr,
            "TransitGatewayAttachments": [
                _attachment_ref(a) for a in sorted(atts, key=lambda a: a.id)
            ],
            "Type": "propagated",
            "State": "active",
        }
        for cidr, atts in routes.items()
    }


def effective_tgw_routes(backend: Any, table: Any) -> list[dict[str, Any]]:
    """Every route of a TGW route table (static wins over propagated for the
    same prefix), sorted by destination."""
    routes = _propagated_routes(backend, table)
    for cidr, record in _static_routes(table).items():
        routes[cidr] = _static_route_view(backend, record)
    return [routes[c] for c in sorted(routes, key=_cidr_key)]


# --------------------------------------------------------------------------- #
# a. Attachments of TGW routes
# --------------------------------------------------------------------------- #
def patch_tgw_route_attachments() -> None:
    """Gap a: TGW routes carry their attachment (id, resource id, resource type).

    Replaces ``create_transit_gateway_route`` / ``delete_transit_gateway_route``
    of moto's TGW route table backend (and their responses) with versions that
    keep the attachment id of each static route and build AWS-shaped routes
    when read. Includes gap e's ``RouteAlreadyExists`` / ``InvalidRoute.NotFound``.
    """

    def create_transit_gateway_route(
        self: Any,
        transit_gateway_route_table_id: str,
        destination_cidr_block: str,
        transit_gateway_attachment_id: str | None = None,
        blackhole: bool = False,
    ) -> dict[str, Any]:
        table = _rt_or_error(self, transit_gateway_route_table_id)
        try:
            cidr = str(_network(destination_cidr_block))
        except ValueError:
            raise _invalid(f"Invalid destination CIDR block: {destination_cidr_block}") from None
        if not blackhole:
            if not transit_gateway_attachment_id:
                raise EC2ClientError(
                    "MissingParameter",
                    "Either TransitGatewayAttachmentId or Blackhole must be specified.",
                )
            _attachment_or_error(self, transit_gateway_attachment_id)
        static = _static_routes(table)
        if cidr in static:
            raise EC2ClientError(
                "RouteAlreadyExists",
                f"Route {cidr} already exists in Transit Gateway Route Table "
                f"{transit_gateway_route_table_id}.",
            )
        static[cidr] = {
            "cidr": cidr,
            "attachment_id": None if blackhole else transit_gateway_attachment_id,
            "blackhole": bool(blackhole),
        }
        return _static_route_view(self, static[cidr])

    def delete_transit_gateway_route(
        self: Any, transit_gateway_route_table_id: str, destination_cidr_block: str
    ) -> dict[str, Any]:
        table = _rt_or_error(self, transit_gateway_route_table_id)
        cidr = _normal(destination_cidr_block)
        static = _static_routes(table)
        if cidr not in static:
            raise EC2ClientError(
                "InvalidRoute.NotFound",
                f"No route with destination-cidr-block {destination_cidr_block} in "
                f"Transit Gateway Route Table {transit_gateway_route_table_id}.",
            )
        view = _static_route_view(self, static.pop(cidr))
        view["State"] = "deleted"
        return view

    _patch(TransitGatewayRouteTableBackend, "create_transit_gateway_route", create_transit_gateway_route)
    _patch(TransitGatewayRouteTableBackend, "delete_transit_gateway_route", delete_transit_gateway_route)

    def create_route_response(self: Any) -> ActionResult:
        blackhole = str(self._get_param("Blackhole", "false")).lower() == "true"
        route = self.ec2_backend.create_transit_gateway_route(
            transit_gateway_route_table_id=self._get_param("TransitGatewayRouteTableId"),
            destination_cidr_block=self._get_param("DestinationCidrBlock"),
            transit_gateway_attachment_id=self._get_param("TransitGatewayAttachmentId"),
            blackhole=blackhole,
        )
        return ActionResult({"Route": route})

    def delete_route_response(self: Any) -> ActionResult:
        route = self.ec2_backend.delete_transit_gateway_route(
            transit_gateway_route_table_id=self._get_param("TransitGatewayRouteTableId"),
            destination_cidr_block=self._get_param("DestinationCidrBlock"),
        )
        return ActionResult({"Route": route})

    _patch(TgwRouteTableResponse, "create_transit_gateway_route", create_route_response)
    _patch(TgwRouteTableResponse, "delete_transit_gateway_route", delete_route_response)


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


def patch_replace_transit_gateway_route() -> None:
    """Gap g: ReplaceTransitGatewayRoute (not implemented by moto).

    Replaces the target of an existing static route; a missing route is
    ``InvalidRoute.NotFound``."""

    def replace_transit_gateway_route(
        self: Any,
        transit_gateway_route_table_id: str,
        destination_cidr_block: str,
        transit_gateway_attachment_id: str | None = None,
        blackhole: bool = False,
    ) -> dict[str, Any]:
        table = _rt_or_error(self, transit_gateway_route_table_id)
        cidr = _normal(destination_cidr_block)
        static = _static_routes(table)
        if cidr not in static:
            raise EC2ClientError(
                "InvalidRoute.NotFound",
                f"No route with destination-cidr-block {destination_cidr_block} in "
                f"Transit Gateway Route Table {transit_gateway_route_table_id}.",
            )
        if not blackhole:
            if not transit_gateway_attachment_id:
                raise EC2ClientError(
                    "MissingParameter",
                    "Either TransitGatewayAttachmentId or Blackhole must be specified.",
                )
            _attachment_or_error(self, transit_gateway_attachment_id)
        static[cidr] = {
            "cidr": cidr,
            "attachment_id": None if blackhole else transit_gateway_attachment_id,
            "blackhole": bool(blackhole),
        }
        return _static_route_view(self, static[cidr])

    def replace_route_response(self: Any) -> ActionResult:
        blackhole = str(self._get_param("Blackhole", "false")).lower() == "true"
        route = self.ec2_backend.replace_transit_gateway_route(
            transit_gateway_route_table_id=self._get_param("TransitGatewayRouteTableId"),
            destination_cidr_block=self._get_param("DestinationCidrBlock"),
            transit_gateway_attachment_id=self._get_param("TransitGatewayAttachmentId"),
            blackhole=blackhole,
        )
        return ActionResult({"Route": route})

    _patch(TransitGatewayRouteTableBackend, "replace_transit_gateway_route", replace_transit_gateway_route)
    _patch(TgwRouteTableResponse, "replace_transit_gateway_route", replace_route_response)


# --------------------------------------------------------------------------- #
# b. Propagation
# --------------------------------------------------------------------------- #
def _associated_table_id(backend: Any, attachment_id: str) -> str | None:
    for table in backend.transit_gateways_route_tables.values():
        if table.state != "deleted" and attachment_id in table.route_table_associations:
            return table.id
    return None


def _associate(backend: Any, attachment_id: str, route_table_id: str) -> TransitGatewayRelations:
    relation = TransitGatewayRelations(backend, attachment_id, route_table_id, state="associated")
    backend.set_route_table_association(attachment_id, route_table_id)
    backend.set_attachment_association(attachment_id, route_table_id)
    backend.transit_gateway_associations[attachment_id] = relation
    return relation


def patch_tgw_propagation() -> None:
    """Gap b: propagated routes, and default association / propagation of new
    VPC attachments as the TGW's options say.

    * EnableTransitGatewayRouteTablePropagation records the propagation (once
      per route table; an attachment may propagate to several tables) and
      Disable removes it; the routes are computed when read (see
      ``effective_tgw_routes``), so they follow the VPC's CIDRs and vanish with
      the attachment.
    * CreateTransitGatewayVpcAttachment is re-implemented after moto's:
      association with the default association route table only when
      DefaultRouteTableAssociation=enable, propagation to the default
      propagation route table when DefaultRouteTablePropagation=enable, the
      VPC must exist.
    * DeleteTransitGatewayVpcAttachment drops the attachment's propagations
      and associations from every route table.
    """

    def enable_transit_gateway_route_table_propagation(
        self: Any, transit_gateway_attachment_id: str, transit_gateway_route_table_id: str
    ) -> TransitGatewayRelations:
        table = _rt_or_error(self, transit_gateway_route_table_id)
        attachment = _attachment_or_error(self, transit_gateway_attachment_id)
        if not any(
            p.transitGatewayAttachmentId == transit_gateway_attachment_id
            for p in table.route_table_propagation
        ):
            table.route_table_propagation.append(
                RouteTablePropagation(
                    resource_id=attachment.resource_id,
                    resource_type=attachment.resource_type,
                    state="enabled",
                    transit_gateway_attachment_id=transit_gateway_attachment_id,
                )
            )
        attachment.propagation = {
            "state": "enabled",
            "transitGatewayRouteTableId": transit_gateway_route_table_id,
        }
        relation = TransitGatewayRelations(
            self, transit_gateway_attachment_id, transit_gateway_route_table_id, state="enabled"
        )
        self.transit_gateway_propagations[transit_gateway_attachment_id] = relation
        return relation

    def disable_transit_gateway_route_table_propagation(
        self: Any, transit_gateway_attachment_id: str, transit_gateway_route_table_id: str
    ) -> TransitGatewayRelations:
        table = _rt_or_error(self, transit_gateway_route_table_id)
        attachment = _attachment_or_error(self, transit_gateway_attachment_id)
        table.route_table_propagation = [
            p
            for p in table.route_table_propagation
            if p.transitGatewayAttachmentId != transit_gateway_attachment_id
        ]
        if attachment.propagation.get("transitGatewayRouteTableId") == transit_gateway_route_table_id:
            attachment.propagation = {}
        self.transit_gateway_propagations.pop(transit_gateway_attachment_id, None)
        return TransitGatewayRelations(
            self, transit_gateway_attachment_id, transit_gateway_route_table_id, state="disabled"
        )

    _patch(
        TransitGatewayRouteTableBackend,
        "enable_transit_gateway_route_table_propagation",
        enable_transit_gateway_route_table_propagation,
    )
    _patch(
        TransitGatewayRouteTableBackend,
        "disable_transit_gateway_route_table_propagation",
        disable_transit_gateway_route_table_propagation,
    )

    def create_transit_gateway_vpc_attachment(
        self: Any,
        transit_gateway_id: str,
        vpc_id: str,
        subnet_ids: list[str],
        tags: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
    ) -> TransitGatewayVpcAttachment:
        transit_gateway = self.transit_gateways.get(transit_gateway_id)
        if transit_gateway is None:
            raise InvalidTransitGatewayID(
                transit_gateway_id,
                f"Transit Gateway {transit_gateway_id} was deleted or does not exist.",
            )
        self.get_vpc(vpc_id)  # InvalidVpcID.NotFound
        for existing in self.transit_gateway_attachments.values():
            if (
                existing.resource_type == "vpc"
                and existing.transit_gateway_id == transit_gateway_id
                and existing.resource_id == vpc_id
                and existing.state not in ("deleted", "deleting")
            ):
                raise DuplicateTransitGatewayAttachmentError(transit_gateway_id)
        attachment = TransitGatewayVpcAttachment(
            self,
            transit_gateway=transit_gateway,
            tags=tags,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            options=options,
        )
        self.transit_gateway_attachments[attachment.id] = attachment
        opts = transit_gateway.options
        association_table = opts.get("AssociationDefaultRouteTableId")
        if (
            opts.get("DefaultRouteTableAssociation") == "enable"
            and association_table in self.transit_gateways_route_tables
        ):
            _associate(self, attachment.id, association_table)
        propagation_table = opts.get("PropagationDefaultRouteTableId")
        if (
            opts.get("DefaultRouteTablePropagation") == "enable"
            and propagation_table in self.transit_gateways_route_tables
        ):
            self.enable_transit_gateway_route_table_propagation(attachment.id, propagation_table)
        return attachment

    _patch(
        TransitGatewayAttachmentBackend,
        "create_transit_gateway_vpc_attachment",
        create_transit_gateway_vpc_attachment,
    )

    original_delete = TransitGatewayAttachmentBackend.delete_transit_gateway_vpc_attachment

    def delete_transit_gateway_vpc_attachment(
        self: Any, transit_gateway_attachment_id: str
    ) -> TransitGatewayAttachment:
        _attachment_or_error(self, transit_gateway_attachment_id)
        attachment = original_delete(self, transit_gateway_attachment_id)
        for table in self.transit_gateways_route_tables.values():
            table.route_table_propagation = [
                p
                for p in table.route_table_propagation
                if p.transitGatewayAttachmentId != transit_gateway_attachment_id
            ]
            table.route_table_associations.pop(transit_gateway_attachment_id, None)
        self.transit_gateway_propagations.pop(transit_gateway_attachment_id, None)
        self.transit_gateway_associations.pop(transit_gateway_attachment_id, None)
        return attachment

    _patch(
        TransitGatewayAttachmentBackend,
        "delete_transit_gateway_vpc_attachment",
        delete_transit_gateway_vpc_attachment,
    )


# --------------------------------------------------------------------------- #
# c. SearchTransitGatewayRoutes
# --------------------------------------------------------------------------- #
SEARCH_FILTERS = frozenset(
    {
        "type",
        "state",
        "route-search.exact-match",
        "route-search.longest-prefix-match",
        "route-search.subnet-of-match",
        "route-search.supernet-of-match",
        "attachment.transit-gateway-attachment-id",
        "attachment.resource-id",
        "attachment.resource-type",
        "prefix-list-id",
        "transit-gateway-route-destination-cidr-block",
    }
)
SEARCH_MAX_RESULTS = 1000
SEARCH_MIN_RESULTS = 5


def _filter_tgw_routes(routes: list[dict[str, Any]], filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    for name in filters:
        if name not in SEARCH_FILTERS:
            raise _invalid(f"The filter '{name}' is invalid")

    def networks(values: list[str]) -> list[Any]:
        out = []
        for value in values:
            try:
                out.append(_network(value))
            except ValueError:
                raise _invalid(f"Invalid CIDR filter value: {value}") from None
        return out

    result = routes
    for name, values in filters.items():
        values = list(values or [])
        if name == "type":
            result = [r for r in result if r["Type"] in values]
        elif name == "state":
            result = [r for r in result if r["State"] in values]
        elif name in ("route-search.exact-match", "transit-gateway-route-destination-cidr-block"):
            wanted = {str(n) for n in networks(values)}
            result = [r for r in result if _normal(r["DestinationCidrBlock"]) in wanted]
        elif name == "route-search.subnet-of-match":
            nets = networks(values)
            result = [
                r
                for r in result
                if any(
                    _network(r["DestinationCidrBlock"]).version == n.version
                    and _network(r["DestinationCidrBlock"]).subnet_of(n)
                    for n in nets
                )
            ]
        elif name == "route-search.supernet-of-match":
            nets = networks(values)
            result = [
                r
                for r in result
                if any(
                    _network(r["DestinationCidrBlock"]).version == n.version
                    and _network(r["DestinationCidrBlock"]).supernet_of(n)
                    for n in nets
                )
            ]
        elif name == "route-search.longest-prefix-match":
            keep: list[dict[str, Any]] = []
            for n in networks(values):
                candidates = [
                    r
                    for r in result
                    if _network(r["DestinationCidrBlock"]).version == n.version
                    and _network(r["DestinationCidrBlock"]).supernet_of(n)
                ]
                if candidates:
                    best = max(_network(r["DestinationCidrBlock"]).prefixlen for r in candidates)
                    for r in candidates:
                        if _network(r["DestinationCidrBlock"]).prefixlen == best and r not in keep:
                            keep.append(r)
            result = [r for r in result if r in keep]
        elif name.startswith("attachment."):
            field = {
                "attachment.transit-gateway-attachment-id": "TransitGatewayAttachmentId",
                "attachment.resource-id": "ResourceId",
                "attachment.resource-type": "ResourceType",
            }[name]
            result = [
                r
                for r in result
                if any(a.get(field) in values for a in r["TransitGatewayAttachments"])
            ]
        elif name == "prefix-list-id":
            result = [r for r in result if r.get("PrefixListId") in values]
    return result


def patch_search_transit_gateway_routes() -> None:
    """Gap c: SearchTransitGatewayRoutes with every AWS filter, MaxResults
    (5..1000, default 1000) and AdditionalRoutesAvailable, no NextToken,
    sorted by destination."""

    def search_transit_gateway_routes(
        self: Any,
        transit_gateway_route_table_id: str,
        filters: Any,
        max_results: int | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        table = _rt_or_error(self, transit_gateway_route_table_id)
        limit = SEARCH_MAX_RESULTS
        if max_results not in (None, ""):
            try:
                limit = int(max_results)
            except (TypeError, ValueError):
                raise _invalid(f"Invalid value for MaxResults: {max_results}") from None
            if not SEARCH_MIN_RESULTS <= limit <= SEARCH_MAX_RESULTS:
                raise _invalid(
                    f"Value ( {limit} ) for parameter maxResults is invalid. "
                    f"Expecting a value between {SEARCH_MIN_RESULTS} and {SEARCH_MAX_RESULTS}."
                )
        routes = _filter_tgw_routes(effective_tgw_routes(self, table), filters or {})
        if len(routes) <= limit:
            return routes, False
        # AWS does not say which routes a truncated answer holds. Keep the
        # most specific ones, so the broad routes (a default route, the very
        # prefix a reader splits a search at) are the ones left out: a
        # reader that counts on seeing them in a truncated answer is caught.
        kept = {id(r) for r in sorted(routes, key=lambda r: -_network(r["DestinationCidrBlock"]).prefixlen)[:limit]}
        return [r for r in routes if id(r) in kept], True

    _patch(TransitGatewayRouteTableBackend, "search_transit_gateway_routes", search_transit_gateway_routes)

    def search_response(self: Any) -> ActionResult:
        routes, more = self.ec2_backend.search_transit_gateway_routes(
            transit_gateway_route_table_id=self._get_param("TransitGatewayRouteTableId"),
            filters=self._filters_from_querystring(),
            max_results=self._get_param("MaxResults"),
        )
        return ActionResult({"Routes": routes, "AdditionalRoutesAvailable": more})

    _patch(TgwRouteTableResponse, "search_transit_gateway_routes", search_response)


# --------------------------------------------------------------------------- #
# d. Attachment kinds and the two sides of a peering attachment
# --------------------------------------------------------------------------- #
class AccepterSidePeeringAttachment(TransitGatewayPeeringAttachment):
    """The accepter region's view of a cross-region (or cross-account) peering
    attachment: same id, state and Requester/AccepterTgwInfo as the requester's
    object (shared), but seen from the accepter TGW: TransitGatewayId is the
    accepter TGW, ResourceId the requester TGW. Tags, association and
    propagation belong to this side."""

    # moto's model metaclass files every model class under the service named
    # by the second part of its module.
    __module__ = "moto.ec2.lbgp_fidelity"

    def __init__(self, primary: TransitGatewayPeeringAttachment, backend: Any) -> None:
        # No super().__init__(): the shared state lives in ``primary``.
        self._primary = primary
        self.ec2_backend = backend
        self.id = primary.id
        self.resource_type = "peering"
        self.resource_id = primary.requester_tgw_info["TransitGatewayId"]
        self.transit_gateway_id = primary.accepter_tgw_info["TransitGatewayId"]
        self.resource_owner_id = primary.requester_tgw_info["OwnerId"]
        self.owner_id = backend.account_id
        self._association_data: dict[str, str] = {}
        self.propagation: dict[str, str] = {}
        transit_gateway = backend.transit_gateways.get(self.transit_gateway_id)
        self.transit_gateway_route_table = (
            transit_gateway.default_route_table if transit_gateway is not None else None
        )

    state = property(
        lambda self: self._primary.state,
        lambda self, value: setattr(self._primary, "state", value),
    )
    _peering_status = property(lambda self: self._primary._peering_status)
    requester_tgw_info = property(lambda self: self._primary.requester_tgw_info)
    accepter_tgw_info = property(lambda self: self._primary.accepter_tgw_info)
    _created_at = property(lambda self: self._primary._created_at)

    @property
    def transit_gateway_owner_id(self) -> str:
        return self.owner_id


def _filter_peering(attachments: list[Any], filters: dict[str, Any]) -> list[Any]:
    plain, tag_filters = _split_tag_filters(filters)
    result = []
    for att in attachments:
        ok = True
        for name, values in plain.items():
            values = list(values or [])
            if name == "state":
                ok = att.state in values
            elif name == "transit-gateway-attachment-id":
                ok = att.id in values
            elif name == "transit-gateway-id":
                ok = bool(
                    {att.requester_tgw_info["TransitGatewayId"], att.accepter_tgw_info["TransitGatewayId"]}
                    & set(values)
                )
            elif name == "local-owner-id":
                ok = att.requester_tgw_info["OwnerId"] in values
            elif name == "remote-owner-id":
                ok = att.accepter_tgw_info["OwnerId"] in values
            if not ok:
                break
        if ok and _passes_tag_filters(att, tag_filters):
            result.append(att)
    return result


def patch_attachment_kinds_and_peering_sides() -> None:
    """Gap d: each attachment describe lists its own kind; a cross-region
    peering attachment has a proper accepter-side view in the peer region,
    created even if that region was never used before; each side is
    associated with its default association route table on acceptance."""

    original_vpc = TransitGatewayAttachmentBackend.describe_transit_gateway_vpc_attachments

    def describe_transit_gateway_vpc_attachments(
        self: Any, transit_gateways_attachment_ids: list[str] | None = None, filters: Any = None
    ) -> list[Any]:
        plain, tag_filters = _split_tag_filters(filters)
        found = original_vpc(self, transit_gateways_attachment_ids, plain or None)
        return [
            a
            for a in found
            if a.resource_type == "vpc" and _passes_tag_filters(a, tag_filters)
        ]

    _patch(
        TransitGatewayAttachmentBackend,
        "describe_transit_gateway_vpc_attachments",
        describe_transit_gateway_vpc_attachments,
    )

    def describe_transit_gateway_peering_attachments(
        self: Any, transit_gateways_attachment_ids: list[str] | None = None, filters: Any = None
    ) -> list[Any]:
        found = [
            a for a in self.transit_gateway_attachments.values() if a.resource_type == "peering"
        ]
        if transit_gateways_attachment_ids:
            found = [a for a in found if a.id in transit_gateways_attachment_ids]
        return _filter_peering(found, filters or {})

    _patch(
        TransitGatewayAttachmentBackend,
        "describe_transit_gateway_peering_attachments",
        describe_transit_gateway_peering_attachments,
    )

    original_create = TransitGatewayAttachmentBackend.create_transit_gateway_peering_attachment

    def create_transit_gateway_peering_attachment(
        self: Any,
        transit_gateway_id: str,
        peer_transit_gateway_id: str,
        peer_region: str,
        peer_account_id: str,
        tags: dict[str, str],
    ) -> TransitGatewayPeeringAttachment:
        if transit_gateway_id not in self.transit_gateways:
            raise InvalidTransitGatewayID(
                transit_gateway_id,
                f"Transit Gateway {transit_gateway_id} was deleted or does not exist.",
            )
        peer_account_id = peer_account_id or self.account_id
        peer_region = peer_region or self.region_name
        attachment = original_create(
            self, transit_gateway_id, peer_transit_gateway_id, peer_region, peer_account_id, tags
        )
        if peer_account_id != self.account_id or peer_region != self.region_name:
            try:
                peer = _ec2_backend(peer_account_id, peer_region)
            except KeyError:
                peer = None
            if peer is not None:
                peer.transit_gateway_attachments[attachment.id] = AccepterSidePeeringAttachment(
                    attachment, peer
                )
        return attachment

    _patch(
        TransitGatewayAttachmentBackend,
        "create_transit_gateway_peering_attachment",
        create_transit_gateway_peering_attachment,
    )

    original_accept = TransitGatewayAttachmentBackend.accept_transit_gateway_peering_attachment

    def accept_transit_gateway_peering_attachment(
        self: Any, transit_gateway_attachment_id: str
    ) -> TransitGatewayAttachment:
        _attachment_or_error(self, transit_gateway_attachment_id)
        attachment = original_accept(self, transit_gateway_attachment_id)
        primary = getattr(attachment, "_primary", attachment)
        sides = [(self, attachment)]
        requester = primary.requester_tgw_info
        try:
            requester_backend = _ec2_backend(requester["OwnerId"], requester["Region"])
        except KeyError:
            requester_backend = None
        if requester_backend is not None and requester_backend is not self:
            side = requester_backend.transit_gateway_attachments.get(primary.id)
            if side is not None:
                sides.append((requester_backend, side))
        for backend, side in sides:
            transit_gateway = backend.transit_gateways.get(side.transit_gateway_id)
            if transit_gateway is None:
                continue
            table = transit_gateway.options.get("AssociationDefaultRouteTableId")
            if (
                transit_gateway.options.get("DefaultRouteTableAssociation") == "enable"
                and table in backend.transit_gateways_route_tables
                and _associated_table_id(backend, side.id) is None
            ):
                _associate(backend, side.id, table)
        return attachment

    _patch(
        TransitGatewayAttachmentBackend,
        "accept_transit_gateway_peering_attachment",
        accept_transit_gateway_peering_attachment,
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


# --------------------------------------------------------------------------- #
# g. Pagination, tag filters, TGW defaults, associations
# --------------------------------------------------------------------------- #
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


def _paginated(action: str, method: Callable[[Any], ActionResult], low: int, high: int) -> Callable[[Any], ActionResult]:
    def wrapper(self: Any) -> ActionResult:
        max_results = self._get_param("MaxResults")
        token = self._get_param("NextToken")
        result = method(self)
        if max_results in (None, "") and not token:
            return result
        data = dict(result.result)  # type: ignore[arg-type]
        keys = [k for k, v in data.items() if isinstance(v, list)]
        if len(keys) != 1:
            return result
        items = data[keys[0]]
        limit = high
        if max_results not in (None, ""):
            try:
                limit = int(max_results)
            except (TypeError, ValueError):
                raise _invalid(f"Invalid value for MaxResults: {max_results}") from None
            if not low <= limit <= high:
                raise _invalid(
                    f"Value ( {limit} ) for parameter maxResults is invalid. "
                    f"Expecting a value between {low} and {high}."
                )
        offset = _decode_token(action, token) if token else 0
        page = items[offset : offset + limit]
        data[keys[0]] = page
        data["NextToken"] = _encode_token(action, offset + limit) if offset + limit < len(items) else None
        return ActionResult(data)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


def patch_pagination() -> None:
    """Gap g: MaxResults / NextToken on the describes lbgp pages through."""
    targets = [
        (TgwResponse, "describe_transit_gateways", "DescribeTransitGateways", 5, 1000),
        (TgwAttachmentResponse, "describe_transit_gateway_attachments", "DescribeTransitGatewayAttachments", 5, 1000),
        (TgwAttachmentResponse, "describe_transit_gateway_vpc_attachments", "DescribeTransitGatewayVpcAttachments", 5, 1000),
        (TgwAttachmentResponse, "describe_transit_gateway_peering_attachments", "DescribeTransitGatewayPeeringAttachments", 5, 1000),
        (TgwRouteTableResponse, "describe_transit_gateway_route_tables", "DescribeTransitGatewayRouteTables", 5, 1000),
        (VpcsResponse, "describe_vpcs", "DescribeVpcs", 5, 1000),
        (RouteTablesResponse, "describe_route_tables", "DescribeRouteTables", 5, 100),
    ]
    for owner, name, action, low, high in targets:
        _patch(owner, name, _paginated(action, getattr(owner, name), low, high))


def patch_tag_filters() -> None:
    """Gap g: ``tag:<key>`` (any key, colons included, wildcards), ``tag-key``
    and ``tag-value`` filters on DescribeTransitGateways and
    DescribeTransitGatewayAttachments (moto ignored tag-key/tag-value and
    wildcards on the first and every tag filter on the second)."""
    original_tgws = TransitGatewayBackend.describe_transit_gateways

    def describe_transit_gateways(self: Any, filters: Any, transit_gateway_ids: list[str] | None) -> list[Any]:
        plain, tag_filters = _split_tag_filters(filters)
        found = original_tgws(self, plain or None, transit_gateway_ids)
        return [t for t in found if _passes_tag_filters(t, tag_filters)]

    _patch(TransitGatewayBackend, "describe_transit_gateways", describe_transit_gateways)

    original_atts = TransitGatewayAttachmentBackend.describe_transit_gateway_attachments

    def describe_transit_gateway_attachments(
        self: Any, transit_gateways_attachment_ids: list[str] | None = None, filters: Any = None
    ) -> list[Any]:
        plain, tag_filters = _split_tag_filters(filters)
        extra = {}
        for name in ("state", "transit-gateway-attachment-id", "association.transit-gateway-route-table-id"):
            if name in plain:
                extra[name] = plain.pop(name)
        found = original_atts(self, transit_gateways_attachment_ids, plain or None)
        result = []
        for att in found:
            if "state" in extra and att.state not in extra["state"]:
                continue
            if "transit-gateway-attachment-id" in extra and att.id not in extra["transit-gateway-attachment-id"]:
                continue
            if "association.transit-gateway-route-table-id" in extra and (
                _associated_table_id(self, att.id) not in extra["association.transit-gateway-route-table-id"]
            ):
                continue
            if _passes_tag_filters(att, tag_filters):
                result.append(att)
        return result

    _patch(
        TransitGatewayAttachmentBackend,
        "describe_transit_gateway_attachments",
        describe_transit_gateway_attachments,
    )


def patch_tgw_route_table_filters() -> None:
    """Gap g: DescribeTransitGatewayRouteTables filters
    ``default-association-route-table`` / ``default-propagation-route-table``
    (moto compared its booleans with the strings "true"/"false" and so
    matched nothing) and tag filters (ignored)."""
    original = TransitGatewayRouteTableBackend.get_all_transit_gateway_route_tables
    flags = {
        "default-association-route-table": "default_association_route_table",
        "default-propagation-route-table": "default_propagation_route_table",
    }

    def get_all_transit_gateway_route_tables(
        self: Any, transit_gateway_route_table_ids: Any = None, filters: Any = None
    ) -> list[Any]:
        plain, tag_filters = _split_tag_filters(filters)
        wanted = {name: plain.pop(name) for name in list(plain) if name in flags}
        found = original(self, transit_gateway_route_table_ids, plain or None)
        result = []
        for table in found:
            if all(
                str(bool(getattr(table, flags[name]))).lower() in [str(v).lower() for v in values or []]
                for name, values in wanted.items()
            ) and _passes_tag_filters(table, tag_filters):
                result.append(table)
        return result

    _patch(
        TransitGatewayRouteTableBackend,
        "get_all_transit_gateway_route_tables",
        get_all_transit_gateway_route_tables,
    )


def patch_tgw_defaults() -> None:
    """Gap g: TGW default route table only when default association or
    propagation is enabled; VPC attachment tags from TagSpecifications;
    ``Association`` of an attachment follows Associate/Disassociate;
    ``Resource.AlreadyAssociated``."""
    original_create = TransitGatewayBackend.create_transit_gateway

    def create_transit_gateway(
        self: Any,
        description: str | None,
        options: dict[str, str] | None = None,
        tags: list[dict[str, str]] | None = None,
    ) -> Any:
        transit_gateway = original_create(self, description, options, tags)
        opts = transit_gateway.options
        if (
            opts.get("DefaultRouteTableAssociation") == "disable"
            and opts.get("DefaultRouteTablePropagation") == "disable"
        ):
            self.transit_gateways_route_tables.pop(transit_gateway.default_route_table.id, None)
            opts.pop("AssociationDefaultRouteTableId", None)
            opts.pop("PropagationDefaultRouteTableId", None)
        return transit_gateway

    _patch(TransitGatewayBackend, "create_transit_gateway", create_transit_gateway)

    def association(self: Any) -> dict[str, str] | None:
        table_id = _associated_table_id(self.ec2_backend, self.id)
        if table_id is None or self.state not in ("available", "modifying"):
            return None
        return {"State": "associated", "TransitGatewayRouteTableId": table_id}

    _patch(TransitGatewayAttachment, "association", property(association))

    original_associate = TransitGatewayRouteTableBackend.associate_transit_gateway_route_table

    def associate_transit_gateway_route_table(
        self: Any, transit_gateway_attachment_id: str, transit_gateway_route_table_id: str
    ) -> TransitGatewayRelations:
        _rt_or_error(self, transit_gateway_route_table_id)
        _attachment_or_error(self, transit_gateway_attachment_id)
        if _associated_table_id(self, transit_gateway_attachment_id) is not None:
            raise EC2ClientError(
                "Resource.AlreadyAssociated",
                f"Transit Gateway Attachment {transit_gateway_attachment_id} is already "
                "associated to a route table.",
            )
        return original_associate(self, transit_gateway_attachment_id, transit_gateway_route_table_id)

    _patch(
        TransitGatewayRouteTableBackend,
        "associate_transit_gateway_route_table",
        associate_transit_gateway_route_table,
    )

    def disassociate_transit_gateway_route_table(
        self: Any, tgw_attach_id: str, tgw_rt_id: str
    ) -> TransitGatewayRelations:
        table = _rt_or_error(self, tgw_rt_id)
        _attachment_or_error(self, tgw_attach_id)
        if tgw_attach_id not in table.route_table_associations:
            raise EC2ClientError(
                "InvalidAssociation.NotFound",
                f"Transit Gateway Attachment {tgw_attach_id} is not associated with "
                f"route table {tgw_rt_id}.",
            )
        table.route_table_associations.pop(tgw_attach_id)
        self.unset_attachment_association(tgw_attach_id)
        self.transit_gateway_associations.pop(tgw_attach_id, None)
        return TransitGatewayRelations(self, tgw_attach_id, tgw_rt_id, state="disassociated")

    _patch(
        TransitGatewayRouteTableBackend,
        "disassociate_transit_gateway_route_table",
        disassociate_transit_gateway_route_table,
    )

    def create_vpc_attachment_response(self: Any) -> ActionResult:
        specs = self._get_param("TagSpecifications", []) or []
        tags: dict[str, str] = {}
        for spec in specs:
            if spec.get("ResourceType") in ("transit-gateway-attachment", None):
                for tag in spec.get("Tags", []) or []:
                    tags[tag["Key"]] = tag.get("Value", "")
        attachment = self.ec2_backend.create_transit_gateway_vpc_attachment(
            transit_gateway_id=self._get_param("TransitGatewayId"),
            tags=tags,
            vpc_id=self._get_param("VpcId"),
            subnet_ids=self._get_param("SubnetIds", []),
            options=self._get_param("Options", {}),
        )
        return ActionResult({"TransitGatewayVpcAttachment": attachment})

    _patch(TgwAttachmentResponse, "create_transit_gateway_vpc_attachment", create_vpc_attachment_response)


# --------------------------------------------------------------------------- #
PATCHES: list[tuple[str, Callable[[], None]]] = [
    ("a", patch_tgw_route_attachments),
    ("b", patch_tgw_propagation),
    ("c", patch_search_transit_gateway_routes),
    ("d", patch_attachment_kinds_and_peering_sides),
    ("e", patch_route_errors),
    ("f", patch_vpc_route_state),
    ("g", patch_pagination),
    ("g", patch_tag_filters),
    ("g", patch_tgw_route_table_filters),
    ("g", patch_tgw_defaults),
    ("g", patch_replace_transit_gateway_route),
    ("g", patch_canonical_ipv6_blocks),
]


def apply() -> list[str]:
    """Apply every patch once (idempotent); returns the names applied."""
    if _APPLIED:
        return list(_APPLIED)
    for _gap, patch in PATCHES:
        patch()
        _APPLIED.append(patch.__name__)
    return list(_APPLIED)
