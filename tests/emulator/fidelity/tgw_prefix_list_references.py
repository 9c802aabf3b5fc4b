"""Behaviour 17: transit gateway prefix-list references.

``patch_tgw_prefix_list_references`` - moto 5.2.5 implements none of
CreateTransitGatewayPrefixListReference, ModifyTransitGatewayPrefixListReference,
DeleteTransitGatewayPrefixListReference and GetTransitGatewayPrefixListReferences.

AWS (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateTransitGatewayPrefixListReference.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyTransitGatewayPrefixListReference.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteTransitGatewayPrefixListReference.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetTransitGatewayPrefixListReferences.html,
https://docs.aws.amazon.com/vpc/latest/tgw/create-prefix-list-reference.html,
https://docs.aws.amazon.com/vpc/latest/tgw/view-prefix-list-reference.html,
https://docs.aws.amazon.com/vpc/latest/tgw/how-transit-gateways-work.html):
a reference is a route toward an attachment (or a blackhole) for every
entry of a prefix list; "each entry in the prefix list is represented as a
route in your transit gateway route table", of route type ``propagated``
(SearchTransitGatewayRoutes shows it with ``PrefixListId``); for one
destination a static route wins over a prefix-list route, which wins over a
VPC-propagated one. Get filters: ``attachment.resource-id``,
``attachment.resource-type``, ``attachment.transit-gateway-attachment-id``,
``is-blackhole``, ``prefix-list-id``, ``prefix-list-owner-id``, ``state``;
``MaxResults`` 5..1000 with ``NextToken``.

**Not documented**, chosen here: the error codes for a second reference to
the same list in one table (``InvalidParameterValue``) and for a reference
that does not exist (``InvalidRoute.NotFound``, as for a missing TGW route);
the reference is ``available`` at once (AWS shows ``pending`` /
``modifying`` / ``deleting`` for an undocumented while).
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses.transit_gateway_route_tables import (
    TransitGatewayRouteTable as TgwRouteTableResponse,
)

from ._common import _decode_token, _encode_token, _invalid, _patch, now
from .tgw_model import (
    _attachment_or_error,
    _attachment_ref,
    _rt_or_error,
    prefix_list_references,
)

GET_FILTERS = frozenset(
    {
        "attachment.resource-id",
        "attachment.resource-type",
        "attachment.transit-gateway-attachment-id",
        "is-blackhole",
        "prefix-list-id",
        "prefix-list-owner-id",
        "state",
    }
)
GET_MAX_RESULTS = 1000
GET_MIN_RESULTS = 5


def _list_or_error(backend: Any, list_id: str | None) -> Any:
    pl = backend.managed_prefix_lists.get(list_id or "")
    if pl is None or pl.state == "delete-complete":
        raise EC2ClientError("InvalidPrefixListID.NotFound", f"The prefix list ID '{list_id}' does not exist")
    return pl


def _not_found(table_id: str, list_id: str) -> EC2ClientError:
    return EC2ClientError(
        "InvalidRoute.NotFound",
        f"No prefix list reference to {list_id} in Transit Gateway Route Table {table_id}.",
    )


def _target(backend: Any, attachment_id: str | None, blackhole: bool) -> str | None:
    if blackhole:
        return None
    if not attachment_id:
        raise EC2ClientError(
            "MissingParameter", "Either TransitGatewayAttachmentId or Blackhole must be specified."
        )
    _attachment_or_error(backend, attachment_id)
    return attachment_id


def _view(backend: Any, table: Any, ref: dict[str, Any], state: str = "available") -> dict[str, Any]:
    pl = backend.managed_prefix_lists.get(ref["prefix_list_id"])
    out: dict[str, Any] = {
        "TransitGatewayRouteTableId": table.id,
        "PrefixListId": ref["prefix_list_id"],
        "PrefixListOwnerId": pl.owner_id if pl is not None else backend.account_id,
        "State": state,
        "Blackhole": bool(ref["blackhole"]),
    }
    attachment = backend.transit_gateway_attachments.get(ref.get("attachment_id") or "")
    if attachment is not None:
        out["TransitGatewayAttachment"] = _attachment_ref(attachment)
    return out


def _bool(value: Any) -> bool:
    return str(value if value is not None else "false").lower() == "true"


def _matches(view: dict[str, Any], name: str, values: list[str]) -> bool:
    attachment = view.get("TransitGatewayAttachment") or {}
    field = {
        "attachment.resource-id": attachment.get("ResourceId"),
        "attachment.resource-type": attachment.get("ResourceType"),
        "attachment.transit-gateway-attachment-id": attachment.get("TransitGatewayAttachmentId"),
        "is-blackhole": "true" if view["Blackhole"] else "false",
        "prefix-list-id": view["PrefixListId"],
        "prefix-list-owner-id": view["PrefixListOwnerId"],
        "state": view["State"],
    }[name]
    return field in values


def patch_tgw_prefix_list_references() -> None:
    """Behaviour 17: Create/Modify/Delete/GetTransitGatewayPrefixListReference(s);
    the entries of a referenced list are routes of the table (``tgw_model``)."""

    def create(self: Any) -> ActionResult:
        backend = self.ec2_backend
        table = _rt_or_error(backend, self._get_param("TransitGatewayRouteTableId"))
        pl = _list_or_error(backend, self._get_param("PrefixListId"))
        refs = prefix_list_references(table)
        if pl.id in refs:
            raise _invalid(
                f"The prefix list {pl.id} is already referenced in Transit Gateway Route Table {table.id}."
            )
        blackhole = _bool(self._get_param("Blackhole"))
        attachment_id = _target(backend, self._get_param("TransitGatewayAttachmentId"), blackhole)
        refs[pl.id] = {
            "prefix_list_id": pl.id,
            "attachment_id": attachment_id,
            "blackhole": blackhole,
            "created": now(),
        }
        return ActionResult({"TransitGatewayPrefixListReference": _view(backend, table, refs[pl.id])})

    def modify(self: Any) -> ActionResult:
        backend = self.ec2_backend
        table = _rt_or_error(backend, self._get_param("TransitGatewayRouteTableId"))
        list_id = self._get_param("PrefixListId")
        refs = prefix_list_references(table)
        if list_id not in refs:
            raise _not_found(table.id, list_id)
        blackhole = _bool(self._get_param("Blackhole"))
        attachment_id = _target(backend, self._get_param("TransitGatewayAttachmentId"), blackhole)
        refs[list_id] = dict(refs[list_id], attachment_id=attachment_id, blackhole=blackhole)
        return ActionResult({"TransitGatewayPrefixListReference": _view(backend, table, refs[list_id])})

    def delete(self: Any) -> ActionResult:
        backend = self.ec2_backend
        table = _rt_or_error(backend, self._get_param("TransitGatewayRouteTableId"))
        list_id = self._get_param("PrefixListId")
        refs = prefix_list_references(table)
        if list_id not in refs:
            raise _not_found(table.id, list_id)
        ref = refs.pop(list_id)
        return ActionResult(
            {"TransitGatewayPrefixListReference": _view(backend, table, ref, state="deleting")}
        )

    def get(self: Any) -> ActionResult:
        backend = self.ec2_backend
        table = _rt_or_error(backend, self._get_param("TransitGatewayRouteTableId"))
        filters = self._filters_from_querystring() or {}
        for name in filters:
            if name not in GET_FILTERS:
                raise _invalid(f"The filter '{name}' is invalid")
        raw_max = self._get_param("MaxResults")
        max_results = GET_MAX_RESULTS
        if raw_max is not None:
            try:
                max_results = int(raw_max)
            except ValueError:
                raise _invalid(f"Invalid value for MaxResults: {raw_max}") from None
            if not GET_MIN_RESULTS <= max_results <= GET_MAX_RESULTS:
                raise _invalid(f"Invalid value for MaxResults: {raw_max}")
        views = [
            _view(backend, table, ref)
            for _, ref in sorted(prefix_list_references(table).items())
        ]
        for name, values in filters.items():
            views = [v for v in views if _matches(v, name, list(values or []))]
        token = self._get_param("NextToken")
        start = _decode_token("GetTransitGatewayPrefixListReferences", token) if token else 0
        page = views[start : start + max_results]
        out: dict[str, Any] = {"TransitGatewayPrefixListReferences": page}
        if start + max_results < len(views):
            out["NextToken"] = _encode_token("GetTransitGatewayPrefixListReferences", start + max_results)
        return ActionResult(out)

    _patch(TgwRouteTableResponse, "create_transit_gateway_prefix_list_reference", create)
    _patch(TgwRouteTableResponse, "modify_transit_gateway_prefix_list_reference", modify)
    _patch(TgwRouteTableResponse, "delete_transit_gateway_prefix_list_reference", delete)
    _patch(TgwRouteTableResponse, "get_transit_gateway_prefix_list_references", get)
