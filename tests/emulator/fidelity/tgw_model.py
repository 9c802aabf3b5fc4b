"""The TGW route model shared by the TGW patches (gaps a, b, c, e and the
timed route states).

Static routes are kept per route table as records (normalised CIDR ->
``{"cidr", "attachment_id", "blackhole", "created"}``) and turned into
AWS-shaped routes when read, in the reading region; propagated routes are
computed from the table's propagations and the VPCs' CIDRs. Deleted static
routes are kept a while (``tgw_route_deleted_visible_seconds``) and read as
``deleted``; a new one reads ``pending`` for ``tgw_route_pending_seconds``.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.transit_gateway_route_tables import TransitGatewayRelations

from ._common import DEAD_ATTACHMENT_STATES, _cidr_key, _normal, now, settings

# Attachment states in which an attachment's VPC CIDRs propagate: AWS keeps
# forwarding (and propagating) while an attachment is being modified.
PROPAGATING_STATES = frozenset({"available", "modifying"})

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
    if getattr(table, "_lbgp_static_routes", None) is None:
        table._lbgp_static_routes = {}
        table.routes = table._lbgp_static_routes
    return table._lbgp_static_routes


def _deleted_routes(table: Any) -> dict[str, dict[str, Any]]:
    """Static routes deleted lately: normalised CIDR -> record (with
    ``deleted``, the time of the deletion). Expired ones are dropped here."""
    deleted = table.__dict__.setdefault("_lbgp_deleted_routes", {})
    keep = settings().tgw_route_deleted_visible_seconds
    t = now()
    for cidr in [c for c, r in deleted.items() if r["deleted"] + keep <= t]:
        deleted.pop(cidr)
    return deleted


def new_static_record(cidr: str, attachment_id: str | None, blackhole: bool, created: float | None = None) -> dict[str, Any]:
    return {
        "cidr": cidr,
        "attachment_id": None if blackhole else attachment_id,
        "blackhole": bool(blackhole),
        "created": now() if created is None else created,
    }


def remember_deleted(table: Any, record: dict[str, Any]) -> None:
    """Keep a deleted static route visible, as AWS does, if so configured."""
    if settings().tgw_route_deleted_visible_seconds > 0:
        _deleted_routes(table)[record["cidr"]] = dict(record, deleted=now())


def forget_deleted(table: Any, cidr: str) -> None:
    table.__dict__.setdefault("_lbgp_deleted_routes", {}).pop(cidr, None)


def reported_resource_type(attachment: Any) -> str:
    """The ResourceType AWS shows for an attachment: ``peering`` attachments
    may be shown with the deprecated ``tgw-peering`` (setting
    ``peering_resource_type``)."""
    if attachment.resource_type == "peering":
        return settings().peering_resource_type
    return attachment.resource_type


def _attachment_ref(attachment: Any) -> dict[str, str]:
    return {
        "ResourceId": attachment.resource_id,
        "TransitGatewayAttachmentId": attachment.id,
        "ResourceType": reported_resource_type(attachment),
    }


def _static_route_view(backend: Any, record: dict[str, Any]) -> dict[str, Any]:
    attachment = None
    if record.get("attachment_id"):
        attachment = backend.transit_gateway_attachments.get(record["attachment_id"])
    alive = attachment is not None and attachment.state not in DEAD_ATTACHMENT_STATES
    blackhole = record.get("blackhole") or not alive
    state = "blackhole" if blackhole else "active"
    if now() < record.get("created", 0.0) + settings().tgw_route_pending_seconds:
        state = "pending"
    return {
        "DestinationCidrBlock": record["cidr"],
        "TransitGatewayAttachments": [] if blackhole else [_attachment_ref(attachment)],
        "Type": "static",
        "State": state,
    }


def _deleted_route_view(backend: Any, record: dict[str, Any]) -> dict[str, Any]:
    view = _static_route_view(backend, dict(record, created=0.0))
    view["State"] = "deleted"
    return view


def _attachment_cidrs(backend: Any, attachment: Any) -> list[str]:
    """The CIDRs an attachment propagates: a VPC's associated IPv4 blocks, and
    its IPv6 blocks when the attachment has Ipv6Support enabled."""
    if attachment.resource_type != "vpc":
        return []  # VPN / DX propagate BGP routes: not emulated
    # The VPC of another account's attachment (a shared TGW, behaviour 18)
    # is read in its own account.
    backend = getattr(attachment, "vpc_backend", None) or backend
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
        if attachment is None or attachment.state not in PROPAGATING_STATES:
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


def prefix_list_references(table: Any) -> dict[str, dict[str, Any]]:
    """The prefix-list references of a TGW route table (behaviour 17):
    prefix-list id -> ``{"prefix_list_id", "attachment_id", "blackhole",
    "created"}``."""
    return table.__dict__.setdefault("_lbgp_pl_refs", {})


def _reference_routes(backend: Any, table: Any) -> dict[str, dict[str, Any]]:
    """The routes a table's prefix-list references stand for: each entry of
    each referenced list is a route of ``Type=propagated`` carrying the
    list's id (AWS, "View prefix list references"); the list's entries are
    read now, so an entry change shows at once in every referencing table."""
    routes: dict[str, dict[str, Any]] = {}
    for list_id, ref in sorted(prefix_list_references(table).items()):
        pl = backend.managed_prefix_lists.get(list_id)
        if pl is None:
            continue
        for entry in pl.entries.get(pl.version, []) or []:
            cidr = _normal(entry["Cidr"])
            view = _static_route_view(backend, dict(ref, cidr=cidr))
            routes.setdefault(cidr, dict(view, PrefixListId=list_id, Type="propagated"))
    return routes


def route_records(table: Any) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(static records, lately deleted records) of a table, as copies (what
    the read-after-write delay keeps)."""
    return dict(_static_routes(table)), dict(_deleted_routes(table))


def effective_tgw_routes(
    backend: Any,
    table: Any,
    records: tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Every route of a TGW route table (static wins over propagated for the
    same prefix; a lately deleted static route shows as ``deleted`` where no
    other route has its prefix), sorted by destination. ``records``: the
    static and deleted records to use instead of the table's own (a stale
    view, see ``consistency``)."""
    static, deleted = records if records is not None else route_records(table)
    routes = _propagated_routes(backend, table)
    # Route priority for one destination (AWS, "Route evaluation order"):
    # static, then prefix-list referenced, then VPC propagated.
    routes.update(_reference_routes(backend, table))
    for cidr, record in static.items():
        routes[cidr] = _static_route_view(backend, record)
    keep = settings().tgw_route_deleted_visible_seconds
    t = now()
    for cidr, record in deleted.items():
        if cidr not in routes and record["deleted"] + keep > t:
            routes[cidr] = _deleted_route_view(backend, record)
    return [routes[c] for c in sorted(routes, key=_cidr_key)]


# --------------------------------------------------------------------------- #
# Associations
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

