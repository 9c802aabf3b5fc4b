"""Gap d (each attachment describe lists its own kind; the two sides of a
cross-region peering attachment), behaviour 10 (the deprecated
``tgw-peering`` resource type) and behaviour 11 (a peering side associated
with no route table shows no ``Association``: gap d's acceptance only
associates a side whose TGW has ``DefaultRouteTableAssociation=enable``,
and gap g's ``Association`` follows Disassociate)."""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidTransitGatewayID
from moto.ec2.models.transit_gateway_attachments import (
    TransitGatewayAttachment,
    TransitGatewayAttachmentBackend,
    TransitGatewayPeeringAttachment,
)
from moto.ec2.responses.transit_gateway_attachments import (
    TransitGatewayAttachment as TgwAttachmentResponse,
)

from ._common import _ec2_backend, _passes_tag_filters, _patch, _split_tag_filters, settings
from .tgw_model import _associate, _associated_table_id, _attachment_or_error, reported_resource_type

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


class _Shown:
    """An attachment as DescribeTransitGatewayAttachments shows it, with the
    ResourceType of ``reported_resource_type``; everything else is the
    attachment's own."""

    def __init__(self, attachment: Any) -> None:
        self.__dict__["_attachment"] = attachment
        self.__dict__["resource_type"] = reported_resource_type(attachment)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_attachment"], name)


def patch_peering_resource_type() -> None:
    """Behaviour 10: AWS's TransitGatewayAttachmentResourceType has both
    ``peering`` and the deprecated ``tgw-peering``
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TransitGatewayAttachment.html).
    With ``peering_resource_type = "tgw-peering"`` peering attachments are
    shown so in DescribeTransitGatewayAttachments and in the routes of
    SearchTransitGatewayRoutes (``tgw_model.reported_resource_type``), and the
    ``resource-type`` / ``attachment.resource-type`` filters match the value
    shown. AWS does not say when it answers which; off by default."""

    original = TransitGatewayAttachmentBackend.describe_transit_gateway_attachments

    def describe_transit_gateway_attachments(
        self: Any, transit_gateways_attachment_ids: list[str] | None = None, filters: Any = None
    ) -> list[Any]:
        filters = dict(filters or {})
        wanted = filters.pop("resource-type", None)
        found = original(self, transit_gateways_attachment_ids, filters or None)
        if wanted is None:
            return found
        return [a for a in found if reported_resource_type(a) in list(wanted)]

    _patch(
        TransitGatewayAttachmentBackend,
        "describe_transit_gateway_attachments",
        describe_transit_gateway_attachments,
    )

    original_response = TgwAttachmentResponse.describe_transit_gateway_attachments

    def describe_response(self: Any) -> ActionResult:
        result = original_response(self)
        if settings().peering_resource_type == "peering":
            return result
        data = dict(result.result)  # type: ignore[arg-type]
        data["TransitGatewayAttachments"] = [_Shown(a) for a in data.get("TransitGatewayAttachments") or []]
        return ActionResult(data)

    describe_response.__name__ = original_response.__name__
    _patch(TgwAttachmentResponse, "describe_transit_gateway_attachments", describe_response)

