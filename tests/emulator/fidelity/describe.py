"""Describe patches (gap g): MaxResults / NextToken paging of the describes
lbgp pages through, tag filters (``tag:<key>`` with wildcards, ``tag-key``,
``tag-value``) and the other filters moto ignored on
DescribeTransitGateways, DescribeTransitGatewayAttachments and
DescribeTransitGatewayRouteTables."""

from __future__ import annotations

from typing import Any, Callable

from moto.core.responses import ActionResult
from moto.ec2.models.transit_gateway import TransitGatewayBackend
from moto.ec2.models.transit_gateway_attachments import TransitGatewayAttachmentBackend
from moto.ec2.models.transit_gateway_route_tables import TransitGatewayRouteTableBackend
from moto.ec2.responses.route_tables import RouteTables as RouteTablesResponse
from moto.ec2.responses.transit_gateway_attachments import (
    TransitGatewayAttachment as TgwAttachmentResponse,
)
from moto.ec2.responses.transit_gateway_route_tables import (
    TransitGatewayRouteTable as TgwRouteTableResponse,
)
from moto.ec2.responses.transit_gateways import TransitGateways as TgwResponse
from moto.ec2.responses.vpcs import VPCs as VpcsResponse

from ._common import (
    _decode_token,
    _encode_token,
    _invalid,
    _passes_tag_filters,
    _patch,
    _split_tag_filters,
)
from .tgw_model import _associated_table_id


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

