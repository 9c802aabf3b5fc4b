"""Fidelity tests: TGW routes - gap a (routes carry their attachment), gap c
(SearchTransitGatewayRoutes), the TGW half of gap e, ReplaceTransitGatewayRoute
(g) and 7 (NextToken paging).

Tests taking the ``server`` fixture run twice: on the patched emulator they
assert what AWS does; on the plain one (``--plain``) they assert that moto
still shows the gap (``aws_or_gap``) - so a moto upgrade that fixes a gap
makes the plain case fail and tells us to drop the patch. Behaviour that plain
moto already gets right is asserted on both. Test names start with the gap
letter (or behaviour number) of the fidelity package / README.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import REGIONS, Emulator, aws_or_gap, error_of
from builders import attach_vpc, attachments_of, cidrs, make_tgw, make_vpc, new_route_table, peer, search, sort_cidrs


# --------------------------------------------------------------------------- #
# a. TGW routes carry their attachment
# --------------------------------------------------------------------------- #


def test_a_create_tgw_route_returns_attachment(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2, propagation="disable")
    vpc, subnet = make_vpc(ec2, "10.10.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    table = tgw["Options"]["AssociationDefaultRouteTableId"]
    route = ec2.create_transit_gateway_route(
        TransitGatewayRouteTableId=table, DestinationCidrBlock="172.16.0.0/12", TransitGatewayAttachmentId=att
    )["Route"]
    assert route["DestinationCidrBlock"] == "172.16.0.0/12"
    assert route["Type"] == "static" and route["State"] == "active"
    aws_or_gap(server, attachments_of(route) == [(att, vpc, "vpc")], "CreateTransitGatewayRoute lists the attachment")


def test_a_search_lists_attachment_of_vpc_and_peering_routes(server: Emulator) -> None:
    ec2, ec2_b = server.ec2(REGIONS[0]), server.ec2(REGIONS[1])
    tgw = make_tgw(ec2, propagation="disable")
    tgw_b = make_tgw(ec2_b)
    vpc, subnet = make_vpc(ec2, "10.10.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    peering = peer(ec2, tgw["TransitGatewayId"], tgw_b["TransitGatewayId"], REGIONS[1])
    ec2_b.accept_transit_gateway_peering_attachment(TransitGatewayAttachmentId=peering)
    table = tgw["Options"]["AssociationDefaultRouteTableId"]
    ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="172.16.0.0/12", TransitGatewayAttachmentId=att)
    ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.200.0.0/16", TransitGatewayAttachmentId=peering)
    ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.250.0.0/16", Blackhole=True)
    routes = {r["DestinationCidrBlock"]: r for r in search(ec2, table)["Routes"]}
    assert set(routes) == {"172.16.0.0/12", "10.200.0.0/16", "10.250.0.0/16"}
    assert routes["10.250.0.0/16"]["State"] == "blackhole"
    assert routes["10.250.0.0/16"].get("TransitGatewayAttachments", []) == []
    aws_or_gap(
        server,
        attachments_of(routes["172.16.0.0/12"]) == [(att, vpc, "vpc")]
        and attachments_of(routes["10.200.0.0/16"]) == [(peering, tgw_b["TransitGatewayId"], "peering")],
        "SearchTransitGatewayRoutes lists each route's attachment",
    )


def test_a_static_route_to_deleted_attachment_is_blackhole(emu: Emulator) -> None:
    ec2 = emu.ec2()
    tgw = make_tgw(ec2, propagation="disable")
    vpc, subnet = make_vpc(ec2, "10.10.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    table = tgw["Options"]["AssociationDefaultRouteTableId"]
    ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="172.16.0.0/12", TransitGatewayAttachmentId=att)
    ec2.delete_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=att)
    (route,) = search(ec2, table)["Routes"]
    assert route["State"] == "blackhole" and route["Type"] == "static"

# --------------------------------------------------------------------------- #
# c. SearchTransitGatewayRoutes
# --------------------------------------------------------------------------- #


def test_c_max_results_caps_without_next_token(server: Emulator) -> None:
    server.set_fidelity(search_routes_paging="legacy")  # the API before NextToken
    ec2 = server.ec2()
    tgw = make_tgw(ec2, propagation="disable")
    table = tgw["Options"]["AssociationDefaultRouteTableId"]
    for i in range(7):
        ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock=f"10.{i}.0.0/16", Blackhole=True)
    code, status, _ = error_of(lambda: search(ec2, table, MaxResults=5))
    if not server.patched:
        aws_or_gap(server, code is None, "SearchTransitGatewayRoutes accepts MaxResults")
        return
    out = search(ec2, table, MaxResults=5)
    assert cidrs(out["Routes"]) == [f"10.{i}.0.0/16" for i in range(5)]
    assert out["AdditionalRoutesAvailable"] is True
    assert "NextToken" not in out
    out = search(ec2, table, MaxResults=7)
    assert len(out["Routes"]) == 7 and out["AdditionalRoutesAvailable"] is False


def test_c_max_results_bounds(emu: Emulator) -> None:
    ec2 = emu.ec2()
    table = make_tgw(ec2)["Options"]["AssociationDefaultRouteTableId"]
    for bad in (4, 1001):
        code, status, _ = error_of(lambda: search(ec2, table, MaxResults=bad))
        assert (code, status) == ("InvalidParameterValue", 400)


def test_c_default_cap_is_1000_routes(emu: Emulator) -> None:
    emu.set_fidelity(search_routes_paging="legacy")
    ec2 = emu.ec2()
    table = make_tgw(ec2)["Options"]["AssociationDefaultRouteTableId"]
    for i in range(1001):
        ec2.create_transit_gateway_route(
            TransitGatewayRouteTableId=table, DestinationCidrBlock=f"10.{i // 256}.{i % 256}.0/24", Blackhole=True
        )
    out = search(ec2, table)
    assert len(out["Routes"]) == 1000
    assert out["AdditionalRoutesAvailable"] is True
    assert "NextToken" not in out
    assert out["Routes"][-1]["DestinationCidrBlock"] == "10.3.231.0/24"  # 999th in numeric order


def test_c_a_truncated_answer_leaves_out_the_broad_routes(emu: Emulator) -> None:
    # Which routes a truncated answer holds is unspecified; the emulator keeps
    # the most specific, so a reader must search for the broad ones itself.
    emu.set_fidelity(search_routes_paging="legacy")
    ec2 = emu.ec2()
    table = make_tgw(ec2)["Options"]["AssociationDefaultRouteTableId"]
    for cidr in ["0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/13", "10.0.0.0/25"]:
        ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock=cidr, Blackhole=True)
    for i in range(7):
        ec2.create_transit_gateway_route(
            TransitGatewayRouteTableId=table, DestinationCidrBlock=f"10.{i}.0.0/16", Blackhole=True
        )
    out = search(ec2, table, MaxResults=5)
    assert out["AdditionalRoutesAvailable"] is True
    assert cidrs(out["Routes"]) == ["10.0.0.0/16", "10.0.0.0/25", "10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"]
    out = search(ec2, table, MaxResults=11)
    assert out["AdditionalRoutesAvailable"] is False
    assert cidrs(out["Routes"])[:3] == ["0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/13"]


@pytest.fixture
def filter_table(server: Emulator) -> dict[str, Any]:
    """A TGW route table with static routes only: to VPC attachment X (vpc A),
    VPC attachment Y (vpc B), and one blackhole."""
    ec2 = server.ec2()
    tgw = make_tgw(ec2, propagation="disable")
    vpc_a, subnet_a = make_vpc(ec2, "172.31.0.0/16")
    vpc_b, subnet_b = make_vpc(ec2, "172.30.0.0/16")
    att_x = attach_vpc(ec2, tgw["TransitGatewayId"], vpc_a, subnet_a)
    att_y = attach_vpc(ec2, tgw["TransitGatewayId"], vpc_b, subnet_b)
    table = tgw["Options"]["AssociationDefaultRouteTableId"]
    routes = [
        ("192.168.0.0/16", att_y),
        ("10.1.2.128/25", att_x),
        ("2600:1f00::/40", att_x),
        ("10.0.0.0/8", att_x),
        ("10.1.2.0/24", None),
        ("10.1.0.0/16", att_y),
    ]
    for cidr, att in routes:
        if att:
            ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock=cidr, TransitGatewayAttachmentId=att)
        else:
            ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock=cidr, Blackhole=True)
    return {"ec2": ec2, "table": table, "X": att_x, "Y": att_y, "A": vpc_a, "B": vpc_b}


ALL_FILTER_ROUTES = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.128/25", "192.168.0.0/16", "2600:1f00::/40"]


# (filters, expected destinations in order, plain moto already right?)
FILTER_CASES = {
    "type": ({"type": ["static"]}, ALL_FILTER_ROUTES, True),
    "state-blackhole": ({"state": ["blackhole"]}, ["10.1.2.0/24"], True),
    "state-active": ({"state": ["active"]}, [c for c in ALL_FILTER_ROUTES if c != "10.1.2.0/24"], True),
    "exact-match": ({"route-search.exact-match": ["10.1.0.0/16"]}, ["10.1.0.0/16"], True),
    "longest-prefix-match": ({"route-search.longest-prefix-match": ["10.1.2.200/32"]}, ["10.1.2.128/25"], False),
    "longest-prefix-match-ip": ({"route-search.longest-prefix-match": ["10.1.2.5"]}, ["10.1.2.0/24"], False),
    "subnet-of-match": (
        {"route-search.subnet-of-match": ["10.1.0.0/16"]},
        ["10.1.0.0/16", "10.1.2.0/24", "10.1.2.128/25"],
        False,
    ),
    "supernet-of-match": (
        {"route-search.supernet-of-match": ["10.1.2.0/24"]},
        ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"],
        False,
    ),
    "attachment-id": (
        {"attachment.transit-gateway-attachment-id": ["X"]},
        ["10.0.0.0/8", "10.1.2.128/25", "2600:1f00::/40"],
        False,
    ),
    "resource-id": ({"attachment.resource-id": ["B"]}, ["10.1.0.0/16", "192.168.0.0/16"], False),
    "resource-type": (
        {"attachment.resource-type": ["vpc"]},
        [c for c in ALL_FILTER_ROUTES if c != "10.1.2.0/24"],
        False,
    ),
    "combined": (
        {"state": ["active"], "route-search.subnet-of-match": ["10.0.0.0/8"]},
        ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.128/25"],
        False,
    ),
}


@pytest.mark.parametrize("case", sorted(FILTER_CASES))
def test_c_search_filters(server: Emulator, filter_table: dict[str, Any], case: str) -> None:
    filters, expected, plain_right = FILTER_CASES[case]
    filters = {k: [filter_table.get(v, v) for v in values] for k, values in filters.items()}
    got = cidrs(search(filter_table["ec2"], filter_table["table"], filters)["Routes"])
    if plain_right:
        # moto filters these itself (its order is insertion order, see test_c_order)
        assert sorted(got) == sorted(expected)
        if server.patched:
            assert got == expected
    else:
        aws_or_gap(server, got == expected, f"filter {filters}")


def test_c_unknown_filter_is_rejected(emu: Emulator) -> None:
    ec2 = emu.ec2()
    table = make_tgw(ec2)["Options"]["AssociationDefaultRouteTableId"]
    code, status, _ = error_of(lambda: search(ec2, table, {"route-search.bogus": ["10.0.0.0/8"]}))
    assert (code, status) == ("InvalidParameterValue", 400)


def test_c_order_numeric_v4_before_v6(server: Emulator) -> None:
    ec2 = server.ec2()
    table = make_tgw(ec2, propagation="disable")["Options"]["AssociationDefaultRouteTableId"]
    created = ["2600:1f00::/40", "10.10.0.0/16", "10.9.0.0/16", "192.168.0.0/16", "10.9.0.0/24", "2001:db8::/32"]
    for cidr in created:
        ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock=cidr, Blackhole=True)
    got = cidrs(search(ec2, table)["Routes"])
    assert sorted(got) == sorted(created)
    aws_or_gap(server, got == sort_cidrs(created), "routes sorted by destination, IPv4 first")

# --------------------------------------------------------------------------- #
# e. Errors of TGW route writes; g. ReplaceTransitGatewayRoute
# --------------------------------------------------------------------------- #


def test_e_duplicate_tgw_route_is_route_already_exists(server: Emulator) -> None:
    ec2 = server.ec2()
    table = make_tgw(ec2)["Options"]["AssociationDefaultRouteTableId"]
    ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.80.0.0/16", Blackhole=True)
    code, status, _ = error_of(
        lambda: ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.80.0.0/16", Blackhole=True)
    )
    aws_or_gap(server, (code, status) == ("RouteAlreadyExists", 400), "duplicate TGW route -> RouteAlreadyExists")


def test_e_delete_missing_tgw_route_is_not_found(server: Emulator) -> None:
    ec2 = server.ec2()
    table = make_tgw(ec2)["Options"]["AssociationDefaultRouteTableId"]
    code, status, _ = error_of(
        lambda: ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.81.0.0/16")
    )
    aws_or_gap(server, (code, status) == ("InvalidRoute.NotFound", 400), "delete of a missing TGW route -> InvalidRoute.NotFound")


def test_g_replace_transit_gateway_route(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2, propagation="disable")
    vpc, subnet = make_vpc(ec2, "10.140.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    table = tgw["Options"]["AssociationDefaultRouteTableId"]
    ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.141.0.0/16", Blackhole=True)
    code, status, _ = error_of(
        lambda: ec2.replace_transit_gateway_route(
            TransitGatewayRouteTableId=table, DestinationCidrBlock="10.141.0.0/16", TransitGatewayAttachmentId=att
        )
    )
    aws_or_gap(server, code is None, "ReplaceTransitGatewayRoute is implemented")
    if server.patched:
        (route,) = search(ec2, table)["Routes"]
        assert (route["State"], attachments_of(route)) == ("active", [(att, vpc, "vpc")])
        code, status, _ = error_of(
            lambda: ec2.replace_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.142.0.0/16", Blackhole=True)
        )
        assert (code, status) == ("InvalidRoute.NotFound", 400)


# --------------------------------------------------------------------------- #
# 7. SearchTransitGatewayRoutes pages with NextToken
# --------------------------------------------------------------------------- #


def pages(ec2: Any, table: str, filters: dict[str, list[str]] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    out, token = [], None
    for _ in range(50):
        page = search(ec2, table, filters, **kwargs, **({"NextToken": token} if token else {}))
        out.append(page)
        token = page.get("NextToken")
        if not token:
            break
    return out


def test_7_search_pages_with_next_token(server: Emulator) -> None:
    ec2 = server.ec2()
    table = make_tgw(ec2, propagation="disable")["Options"]["AssociationDefaultRouteTableId"]
    created = [f"10.{i}.0.0/16" for i in range(12)]
    for cidr in created:
        ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock=cidr, Blackhole=True)
    code, _, _ = error_of(lambda: search(ec2, table, MaxResults=5))
    if not server.patched:
        aws_or_gap(server, code is None, "SearchTransitGatewayRoutes pages with MaxResults")
        return
    got = pages(ec2, table, MaxResults=5)
    assert [len(p["Routes"]) for p in got] == [5, 5, 2]
    # More routes are available exactly when a NextToken comes back.
    assert [(p["AdditionalRoutesAvailable"], "NextToken" in p) for p in got] == [(True, True), (True, True), (False, False)]
    assert [c for p in got for c in cidrs(p["Routes"])] == sort_cidrs(created)
    # Filters apply before paging.
    filtered = pages(ec2, table, {"route-search.subnet-of-match": ["10.0.0.0/12"]}, MaxResults=5)
    assert [cidrs(p["Routes"]) for p in filtered] == [created[:5], created[5:12][:5], created[10:12]]
    # A whole table in one page: no token.
    (whole,) = pages(ec2, table)
    assert len(whole["Routes"]) == 12 and whole["AdditionalRoutesAvailable"] is False and "NextToken" not in whole


def test_7_default_page_is_1000_routes_then_a_token(emu: Emulator) -> None:
    ec2 = emu.ec2()
    table = make_tgw(ec2)["Options"]["AssociationDefaultRouteTableId"]
    for i in range(1001):
        ec2.create_transit_gateway_route(
            TransitGatewayRouteTableId=table, DestinationCidrBlock=f"10.{i // 256}.{i % 256}.0/24", Blackhole=True
        )
    first, second = pages(ec2, table)
    assert len(first["Routes"]) == 1000 and first["AdditionalRoutesAvailable"] is True
    assert cidrs(second["Routes"]) == ["10.3.232.0/24"] and "NextToken" not in second


def test_7_bad_or_foreign_token_is_invalid_pagination_token(emu: Emulator) -> None:
    ec2 = emu.ec2()
    tgw = make_tgw(ec2)
    table = tgw["Options"]["AssociationDefaultRouteTableId"]
    other = new_route_table(ec2, tgw["TransitGatewayId"])
    for i in range(6):
        ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock=f"10.{i}.0.0/16", Blackhole=True)
    token = search(ec2, table, MaxResults=5)["NextToken"]
    for bad_table, bad_token in ((table, "garbage"), (other, token)):
        code, status, _ = error_of(lambda: search(ec2, bad_table, MaxResults=5, NextToken=bad_token))
        assert (code, status) == ("InvalidPaginationToken", 400)
