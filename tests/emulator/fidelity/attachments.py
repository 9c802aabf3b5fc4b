"""Attachment patches: gap b (propagation, default association and
propagation of new VPC attachments) and gap g's TGW defaults (no default
route table when both defaults are disabled, VPC attachment tags, the
``Association`` of an attachment, ``Resource.AlreadyAssociated``)."""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import (
    DuplicateTransitGatewayAttachmentError,
    EC2ClientError,
    InvalidTransitGatewayID,
)
from moto.ec2.models.transit_gateway import TransitGatewayBackend
from moto.ec2.models.transit_gateway_attachments import (
    TransitGatewayAttachment,
    TransitGatewayAttachmentBackend,
    TransitGatewayVpcAttachment,
)
from moto.ec2.models.transit_gateway_route_tables import (
    RouteTablePropagation,
    TransitGatewayRelations,
    TransitGatewayRouteTableBackend,
)
from moto.ec2.responses.transit_gateway_attachments import (
    TransitGatewayAttachment as TgwAttachmentResponse,
)

from ._common import _patch
from .tgw_model import _associate, _associated_table_id, _attachment_or_error, _rt_or_error


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
        if table_id is None:
            return None
        state = self.state
        if state in ("available", "modifying"):
            return {"State": "associated", "TransitGatewayRouteTableId": table_id}
        if state == "pending":  # an attachment being created or accepted
            return {"State": "associating", "TransitGatewayRouteTableId": table_id}
        return None

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

