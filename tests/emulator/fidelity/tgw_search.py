"""Gap c: SearchTransitGatewayRoutes (every AWS filter, MaxResults, order)
and its paging (behaviour 7): with ``search_routes_paging = "token"`` (the
default, current AWS) a search that matches more than MaxResults routes
answers a page and an opaque ``NextToken``; ``"legacy"`` is the older API
(at most MaxResults routes, ``AdditionalRoutesAvailable=true``, no token)."""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models.transit_gateway_route_tables import TransitGatewayRouteTableBackend
from moto.ec2.responses.transit_gateway_route_tables import (
    TransitGatewayRouteTable as TgwRouteTableResponse,
)

from ._common import _decode_token, _encode_token, _invalid, _network, _normal, _patch, settings
from .consistency import stale_tgw_records
from .tgw_model import _rt_or_error, effective_tgw_routes

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
    """Gap c and behaviour 7: SearchTransitGatewayRoutes with every AWS
    filter, MaxResults (5..1000, default 1000), sorted by destination, and
    either token paging (NextToken; AdditionalRoutesAvailable is true exactly
    when a NextToken is returned) or the legacy cap (no NextToken,
    AdditionalRoutesAvailable=true when more matched, the most specific
    routes kept)."""

    def search_transit_gateway_routes(
        self: Any,
        transit_gateway_route_table_id: str,
        filters: Any,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> dict[str, Any]:
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
        routes = effective_tgw_routes(self, table, stale_tgw_records(table))
        routes = _filter_tgw_routes(routes, filters or {})
        if settings().search_routes_paging == "token":
            key = f"SearchTransitGatewayRoutes:{table.id}"
            offset = _decode_token(key, next_token) if next_token else 0
            end = offset + limit
            token = _encode_token(key, end) if end < len(routes) else None
            return {
                "Routes": routes[offset:end],
                "AdditionalRoutesAvailable": token is not None,
                "NextToken": token,
            }
        if len(routes) <= limit:
            return {"Routes": routes, "AdditionalRoutesAvailable": False}
        # AWS does not say which routes a truncated answer holds. Keep the
        # most specific ones, so the broad routes (a default route, the very
        # prefix a reader splits a search at) are the ones left out: a
        # reader that counts on seeing them in a truncated answer is caught.
        kept = {id(r) for r in sorted(routes, key=lambda r: -_network(r["DestinationCidrBlock"]).prefixlen)[:limit]}
        return {"Routes": [r for r in routes if id(r) in kept], "AdditionalRoutesAvailable": True}

    _patch(TransitGatewayRouteTableBackend, "search_transit_gateway_routes", search_transit_gateway_routes)

    def search_response(self: Any) -> ActionResult:
        return ActionResult(
            self.ec2_backend.search_transit_gateway_routes(
                transit_gateway_route_table_id=self._get_param("TransitGatewayRouteTableId"),
                filters=self._filters_from_querystring(),
                max_results=self._get_param("MaxResults"),
                next_token=self._get_param("NextToken"),
            )
        )

    _patch(TgwRouteTableResponse, "search_transit_gateway_routes", search_response)
