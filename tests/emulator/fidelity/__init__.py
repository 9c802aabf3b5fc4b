"""Fidelity patches: make moto (5.2.x) answer like real AWS where lbgp depends on it.

Each patch is a named function in one of this package's modules, applied by
:func:`apply` (the launcher calls it unless ``--plain``). Each one
monkeypatches a moto backend or response class at import time; none edits
moto's files. Every gap was first reproduced against plain moto
(``lbgp_emulator.py --plain``) and each has a test in ``test_fidelity_*.py``
that asserts the AWS behaviour on the patched server *and* the gap on the
plain one, so that a moto upgrade that closes a gap makes a test fail and
tells us to drop the patch.

Modules: ``_common`` (helpers), ``settings`` (``/_lbgp/fidelity``),
``tgw_model`` (the TGW route model), ``tgw_routes`` (a, e, g, 2),
``tgw_search`` (c, 7), ``attachments`` (b, g), ``peering`` (d, 10, 11),
``lifecycle`` (1), ``consistency`` (3, the per-request hook),
``vpc_routes`` (e, f, g), ``vpc_route_rules`` (4, 5, 9), ``describe`` (g),
``limits`` (6, 8), ``events`` (12), ``termination`` (13), ``prefix_lists``
(14), ``cloudwatch`` (15), ``accounts`` (18), ``speed`` (no behaviour).

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
   1000. Routes are sorted by destination (numerically, IPv4 before IPv6).
   By default pages with ``NextToken`` (behaviour 7); with
   ``search_routes_paging="legacy"`` the API before NextToken: at most
   MaxResults routes, ``AdditionalRoutesAvailable=true`` when more matched,
   no NextToken. AWS did not say which routes a truncated answer holds; this
   one holds the most specific, so the broad routes (0.0.0.0/0, a reader's
   split prefix) are left out of it.
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
   ``TransactionConflictException``. Modelled in the launcher's middleware
   (``lbgp_emulator.py``, ``ddb_conflicts.py``) (it needs to see requests before moto's lock), not here; off
   with ``--plain``.

Already right in moto 5.2.5 (tested, not patched): describe_route_tables
filters ``vpc-id``, ``association.main``, ``route-table-id``;
describe_instance_status with and without ``IncludeAllInstances``;
ReplaceRoute to NetworkInterfaceId / InstanceId / TransitGatewayId; IPv6
VPC routes (create / replace / delete); DeleteRoute of a missing route;
``tag:lbgp:mesh`` on DescribeTransitGateways; DescribeInstances pagination.

Behaviours added for "Real AWS, not the emulator's kind version" (numbered
as in README.md; the timed ones are off by default, see ``settings``):
1. ``patch_attachment_lifecycle`` - attachment and TGW states over time
   (``pending``, ``modifying``, ``deleting``, ``deleted`` still listed,
   ``initiatingRequest``); Modify* of an unknown id is NotFound, not HTTP 500.
2. in ``patch_tgw_route_attachments`` - static TGW routes ``pending`` a
   while after creation, ``deleted`` ones still found a while.
3. ``patch_read_after_write`` - DescribeRouteTables / SearchTransitGatewayRoutes
   lag route writes.
4, 5, 9. ``patch_vpc_route_rules`` - gateway route tables, the routes per
   route table quota (``RouteLimitExceeded``), targets of another VPC.
6. ``patch_describe_limits`` - DescribeInstanceStatus ids, filter values.
7. in ``patch_search_transit_gateway_routes`` - NextToken paging (or legacy).
8. ``patch_sns_message_size`` - SNS messages counted in bytes.
10. ``patch_peering_resource_type`` - ``tgw-peering`` resource type.
11. (tested) a peering side associated with no route table has no Association.
12. ``patch_event_patterns`` - EventBridge patterns match fields inside
    arrays of objects (same element), and TestEventPattern answers.
13. ``patch_termination`` (``termination``) - a terminated instance's
    primary interface is deleted with it, the routes toward it blackholed.
14. ``patch_prefix_list_routes`` (``prefix_lists``) - prefix-list routes keep
    their destination for every target (ReplaceRoute finds them).
15. ``patch_cloudwatch_cbor`` (``cloudwatch``) - CloudWatch answers the
    Smithy RPC v2 CBOR protocol aws-sdk-rust speaks.
16. ``patch_managed_prefix_lists`` (``managed_prefix_lists``) - a stale
    ``CurrentVersion`` is ``PrefixListVersionMismatch``, at most 100 entries
    a call, entries within ``MaxEntries``, ``MaxEntries`` resizes, the name
    kept, DescribeRouteTables' ``route.destination-prefix-list-id`` filter.
17. ``patch_tgw_prefix_list_references`` (``tgw_prefix_list_references``) -
    TGW prefix-list references (Create/Modify/Delete/Get, not in moto); a
    referenced list's entries are ``propagated`` routes with ``PrefixListId``.
18. (``accounts``) several accounts: ``patch_shared_transit_gateways`` - a
    TGW shared through RAM (CreateResourceShare with an account id or the
    organisation) can be attached by a VPC of the account it is shared
    with: one attachment listed in both accounts (``TransitGatewayOwnerId``
    / ``ResourceOwnerId``), ``pendingAcceptance`` until the owner's
    AcceptTransitGatewayVpcAttachment (or Reject; moto had neither) unless
    ``AutoAcceptSharedAttachments=enable``, the VPC's CIDRs propagated into
    the owner's route tables; ``patch_vpc_routes_to_shared_transit_gateways``
    - VPC routes toward such a TGW once attached (moto dropped the target),
    ``InvalidTransitGatewayID.NotFound`` for a TGW the VPC cannot reach;
    ``patch_shared_transit_gateway_describe`` - DescribeTransitGateways
    lists the TGWs shared with the account, DescribeTransitGatewayAttachments
    filters ``resource-owner-id`` / ``transit-gateway-owner-id``;
    ``patch_assume_role_trust`` - AssumeRole needs the role to exist and its
    trust policy (principal, ``sts:ExternalId``, ``aws:PrincipalArn``...) to
    allow the caller, else ``AccessDenied`` (403).

Not a gap: ``patch_transaction_copies`` (``speed``) makes moto copy a table
once per DynamoDB transaction instead of once per item; no answer changes.
"""

from __future__ import annotations

from typing import Callable

from . import settings
from ._common import BLACKHOLE_INSTANCE_STATES, DEAD_ATTACHMENT_STATES
from .accounts import (
    patch_assume_role_trust,
    patch_shared_transit_gateway_describe,
    patch_shared_transit_gateways,
    patch_vpc_routes_to_shared_transit_gateways,
)
from .attachments import patch_tgw_defaults, patch_tgw_propagation
from .cloudwatch import patch_cloudwatch_cbor
from .consistency import patch_read_after_write, patch_request_context
from .events import patch_event_patterns
from .describe import patch_pagination, patch_tag_filters, patch_tgw_route_table_filters
from .lifecycle import patch_attachment_lifecycle
from .limits import patch_describe_limits, patch_sns_message_size
from .speed import patch_transaction_copies
from .prefix_lists import patch_prefix_list_routes
from .managed_prefix_lists import patch_managed_prefix_lists
from .tgw_prefix_list_references import patch_tgw_prefix_list_references
from .peering import (
    AccepterSidePeeringAttachment,
    patch_attachment_kinds_and_peering_sides,
    patch_peering_resource_type,
)
from .termination import patch_termination
from .tgw_model import effective_tgw_routes
from .tgw_routes import patch_replace_transit_gateway_route, patch_tgw_route_attachments
from .tgw_search import patch_search_transit_gateway_routes
from .vpc_route_rules import patch_vpc_route_rules
from .vpc_routes import patch_canonical_ipv6_blocks, patch_route_errors, patch_vpc_route_state

_APPLIED: list[str] = []

# Applied in this order: a later patch may wrap what an earlier one put in
# place (e.g. the lifecycle wraps gap b's CreateTransitGatewayVpcAttachment;
# gap e's duplicate check runs before the route rules of 4, 5 and 9).
PATCHES: list[tuple[str, Callable[[], None]]] = [
    ("a", patch_tgw_route_attachments),
    ("b", patch_tgw_propagation),
    ("c", patch_search_transit_gateway_routes),
    ("d", patch_attachment_kinds_and_peering_sides),
    ("4", patch_vpc_route_rules),
    ("e", patch_route_errors),
    ("f", patch_vpc_route_state),
    ("g", patch_pagination),
    ("g", patch_tag_filters),
    ("g", patch_tgw_route_table_filters),
    ("g", patch_tgw_defaults),
    ("g", patch_replace_transit_gateway_route),
    ("g", patch_canonical_ipv6_blocks),
    ("1", patch_attachment_lifecycle),
    ("3", patch_request_context),
    ("3", patch_read_after_write),
    ("6", patch_describe_limits),
    ("8", patch_sns_message_size),
    ("10", patch_peering_resource_type),
    ("12", patch_event_patterns),
    ("13", patch_termination),
    ("14", patch_prefix_list_routes),
    ("15", patch_cloudwatch_cbor),
    ("16", patch_managed_prefix_lists),
    ("17", patch_tgw_prefix_list_references),
    # 18 wraps what the TGW, attachment, route and lifecycle patches put in
    # place (it routes cross-account calls to the owner's backend), so last.
    ("18", patch_shared_transit_gateways),
    ("18", patch_vpc_routes_to_shared_transit_gateways),
    ("18", patch_shared_transit_gateway_describe),
    ("18", patch_assume_role_trust),
    ("speed", patch_transaction_copies),
]


def apply() -> list[str]:
    """Apply every patch once (idempotent); returns the names applied."""
    if _APPLIED:
        return list(_APPLIED)
    for _gap, patch in PATCHES:
        patch()
        _APPLIED.append(patch.__name__)
    return list(_APPLIED)


__all__ = [
    "PATCHES",
    "apply",
    "settings",
    "effective_tgw_routes",
    "AccepterSidePeeringAttachment",
    "BLACKHOLE_INSTANCE_STATES",
    "DEAD_ATTACHMENT_STATES",
] + [patch.__name__ for _gap, patch in PATCHES]
