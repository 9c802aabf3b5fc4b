"""Gap a (TGW routes carry their attachment), the TGW half of gap e
(``RouteAlreadyExists`` / ``InvalidRoute.NotFound``), ReplaceTransitGatewayRoute
(gap g) and the timed states of static TGW routes (``pending`` after
creation, ``deleted`` after deletion: ``tgw_route_pending_seconds``,
``tgw_route_deleted_visible_seconds``)."""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.transit_gateway_route_tables import TransitGatewayRouteTableBackend
from moto.ec2.responses.transit_gateway_route_tables import (
    TransitGatewayRouteTable as TgwRouteTableResponse,
)

from ._common import _invalid, _network, _normal, _patch
from .tgw_model import (
    _attachment_or_error,
    _rt_or_error,
    _static_route_view,
    _static_routes,
    forget_deleted,
    new_static_record,
    remember_deleted,
)


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
        static[cidr] = new_static_record(cidr, transit_gateway_attachment_id, blackhole)
        forget_deleted(table, cidr)
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
        record = static.pop(cidr)
        remember_deleted(table, record)
        view = _static_route_view(self, dict(record, created=0.0))
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
        static[cidr] = new_static_record(
            cidr, transit_gateway_attachment_id, blackhole, created=static[cidr].get("created")
        )
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
