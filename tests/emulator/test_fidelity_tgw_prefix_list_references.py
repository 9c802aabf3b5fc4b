"""Fidelity tests: behaviour 17, transit gateway prefix-list references
(not implemented by moto): a reference toward an attachment stands for one
route per entry of the list, entry changes show in the table, a static route
wins, Modify repoints, Delete withdraws, Get filters and pages. Each runs on
the patched emulator (AWS's behaviour) and on plain moto (the gap)."""

from __future__ import annotations

from typing import Any

from builders import attach_vpc, make_tgw, make_vpc, new_route_table, search
from conftest import Emulator, aws_or_gap, error_of


def _setup(ec2: Any, entries: int = 3) -> tuple[str, str, str, str]:
    """A TGW with a route table, two VPC attachments and a list: (table, list, att1, att2)."""
    tgw = make_tgw(ec2, association="disable", propagation="disable")["TransitGatewayId"]
    vpc1, sub1 = make_vpc(ec2, "10.1.0.0/16")
    vpc2, sub2 = make_vpc(ec2, "10.2.0.0/16")
    att1 = attach_vpc(ec2, tgw, vpc1, sub1)
    att2 = attach_vpc(ec2, tgw, vpc2, sub2)
    table = new_route_table(ec2, tgw)
    pl = ec2.create_managed_prefix_list(
        PrefixListName="lbgp-ref-test",
        AddressFamily="IPv4",
        MaxEntries=10,
        Entries=[{"Cidr": f"172.16.{i}.0/24"} for i in range(entries)],
    )["PrefixList"]
    return table, pl["PrefixListId"], att1, att2


def _create(ec2: Any, table: str, pl: str, att: str) -> Any:
    return ec2.create_transit_gateway_prefix_list_reference(
        TransitGatewayRouteTableId=table, PrefixListId=pl, TransitGatewayAttachmentId=att
    )


def _routes(ec2: Any, table: str) -> dict[str, dict[str, Any]]:
    return {r["DestinationCidrBlock"]: r for r in search(ec2, table)["Routes"]}


def test_17_a_reference_is_a_route_per_entry(server: Emulator) -> None:
    ec2 = server.ec2()
    table, pl, att1, _ = _setup(ec2)
    code, _, _ = error_of(lambda: _create(ec2, table, pl, att1))
    routes = _routes(ec2, table) if code is None else {}
    ok = code is None and sorted(routes) == [f"172.16.{i}.0/24" for i in range(3)] and all(
        r.get("PrefixListId") == pl
        and r["Type"] == "propagated"
        and [a["TransitGatewayAttachmentId"] for a in r["TransitGatewayAttachments"]] == [att1]
        for r in routes.values()
    )
    aws_or_gap(server, ok, "each entry of a referenced list is a propagated route toward the attachment")


def test_17_entry_changes_show_in_the_table_and_static_wins(server: Emulator) -> None:
    ec2 = server.ec2()
    table, pl, att1, att2 = _setup(ec2)
    code, _, _ = error_of(lambda: _create(ec2, table, pl, att1))
    ok = code is None
    if ok:
        ec2.modify_managed_prefix_list(
            PrefixListId=pl,
            CurrentVersion=1,
            AddEntries=[{"Cidr": "172.16.9.0/24"}],
            RemoveEntries=[{"Cidr": "172.16.0.0/24"}],
        )
        ec2.create_transit_gateway_route(
            TransitGatewayRouteTableId=table, DestinationCidrBlock="172.16.1.0/24", TransitGatewayAttachmentId=att2
        )
        routes = _routes(ec2, table)
        ok = (
            "172.16.9.0/24" in routes
            and "172.16.0.0/24" not in routes
            and routes["172.16.1.0/24"]["Type"] == "static"
            and routes["172.16.2.0/24"].get("PrefixListId") == pl
        )
    aws_or_gap(server, ok, "entry changes follow at once; a static route wins over the list's")


def test_17_modify_repoints_and_delete_withdraws(server: Emulator) -> None:
    ec2 = server.ec2()
    table, pl, att1, att2 = _setup(ec2)
    code, _, _ = error_of(lambda: _create(ec2, table, pl, att1))
    ok = code is None
    if ok:
        ref = ec2.modify_transit_gateway_prefix_list_reference(
            TransitGatewayRouteTableId=table, PrefixListId=pl, TransitGatewayAttachmentId=att2
        )["TransitGatewayPrefixListReference"]
        repointed = {
            a["TransitGatewayAttachmentId"]
            for r in _routes(ec2, table).values()
            for a in r["TransitGatewayAttachments"]
        }
        deleted = ec2.delete_transit_gateway_prefix_list_reference(
            TransitGatewayRouteTableId=table, PrefixListId=pl
        )["TransitGatewayPrefixListReference"]
        again, _, _ = error_of(
            lambda: ec2.delete_transit_gateway_prefix_list_reference(
                TransitGatewayRouteTableId=table, PrefixListId=pl
            )
        )
        ok = (
            ref["TransitGatewayAttachment"]["TransitGatewayAttachmentId"] == att2
            and repointed == {att2}
            and deleted["State"] == "deleting"
            and _routes(ec2, table) == {}
            and again == "InvalidRoute.NotFound"
        )
    aws_or_gap(server, ok, "Modify repoints every entry, Delete withdraws them")


def test_17_create_refuses_duplicates_unknown_lists_and_no_target(server: Emulator) -> None:
    ec2 = server.ec2()
    table, pl, att1, _ = _setup(ec2)
    first, _, _ = error_of(lambda: _create(ec2, table, pl, att1))
    duplicate, _, _ = error_of(lambda: _create(ec2, table, pl, att1))
    unknown, _, _ = error_of(lambda: _create(ec2, table, "pl-0123456789abcdef0", att1))
    no_target, _, _ = error_of(
        lambda: ec2.create_transit_gateway_prefix_list_reference(
            TransitGatewayRouteTableId=table, PrefixListId=pl
        )
    )
    aws_or_gap(
        server,
        first is None
        and duplicate is not None
        and unknown == "InvalidPrefixListID.NotFound"
        and no_target is not None,
        "a second reference, an unknown list and a reference with no target are refused",
    )


def test_17_get_filters_and_pages(server: Emulator) -> None:
    ec2 = server.ec2()
    table, pl, att1, att2 = _setup(ec2)
    ok = error_of(lambda: _create(ec2, table, pl, att1))[0] is None
    if ok:
        lists = [
            ec2.create_managed_prefix_list(PrefixListName=f"l{i}", AddressFamily="IPv4", MaxEntries=5)[
                "PrefixList"
            ]["PrefixListId"]
            for i in range(6)
        ]
        for other in lists:
            _create(ec2, table, other, att2)
        by_att = ec2.get_transit_gateway_prefix_list_references(
            TransitGatewayRouteTableId=table,
            Filters=[{"Name": "attachment.transit-gateway-attachment-id", "Values": [att1]}],
        )["TransitGatewayPrefixListReferences"]
        page = ec2.get_transit_gateway_prefix_list_references(TransitGatewayRouteTableId=table, MaxResults=5)
        rest = ec2.get_transit_gateway_prefix_list_references(
            TransitGatewayRouteTableId=table, MaxResults=5, NextToken=page["NextToken"]
        )
        bad, _, _ = error_of(
            lambda: ec2.get_transit_gateway_prefix_list_references(
                TransitGatewayRouteTableId=table, Filters=[{"Name": "bogus", "Values": ["x"]}]
            )
        )
        ok = (
            [r["PrefixListId"] for r in by_att] == [pl]
            and len(page["TransitGatewayPrefixListReferences"]) == 5
            and len(rest["TransitGatewayPrefixListReferences"]) == 2
            and "NextToken" not in rest
            and bad == "InvalidParameterValue"
        )
    aws_or_gap(server, ok, "Get filters by attachment, pages with NextToken, refuses unknown filters")
