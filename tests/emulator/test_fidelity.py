"""Fidelity tests: every gap of plain moto that fidelity.py closes.

Tests taking the ``server`` fixture run twice: on the patched emulator they
assert what AWS does; on the plain one (``--plain``) they assert that moto
still shows the gap (``aws_or_gap``) - so a moto upgrade that fixes a gap
makes the plain case fail and tells us to drop the patch. Behaviour that plain
moto already gets right is asserted on both. Test names start with the gap
letter of fidelity.py / README.md.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGIONS, Emulator, aws_or_gap, error_of

# --------------------------------------------------------------------------- #
# Builders
# --------------------------------------------------------------------------- #


def make_vpc(ec2: Any, cidr: str, *extra: str, ipv6: bool = False) -> tuple[str, str]:
    vpc = ec2.create_vpc(CidrBlock=cidr, AmazonProvidedIpv6CidrBlock=ipv6)["Vpc"]
    for block in extra:
        ec2.associate_vpc_cidr_block(VpcId=vpc["VpcId"], CidrBlock=block)
    net = ipaddress.ip_network(cidr)
    subnet_cidr = str(next(net.subnets(new_prefix=min(net.prefixlen + 8, 28))))
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=subnet_cidr)["Subnet"]
    return vpc["VpcId"], subnet["SubnetId"]


def make_tgw(ec2: Any, *, association: str = "enable", propagation: str = "enable", tags: dict[str, str] | None = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "Description": "lbgp test",
        "Options": {
            "DefaultRouteTableAssociation": association,
            "DefaultRouteTablePropagation": propagation,
        },
    }
    if tags:
        kwargs["TagSpecifications"] = [
            {"ResourceType": "transit-gateway", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    return ec2.create_transit_gateway(**kwargs)["TransitGateway"]


def attach_vpc(ec2: Any, tgw_id: str, vpc_id: str, subnet_id: str, **options: str) -> str:
    kwargs: dict[str, Any] = {"TransitGatewayId": tgw_id, "VpcId": vpc_id, "SubnetIds": [subnet_id]}
    if options:
        kwargs["Options"] = options
    return ec2.create_transit_gateway_vpc_attachment(**kwargs)["TransitGatewayVpcAttachment"][
        "TransitGatewayAttachmentId"
    ]


def new_route_table(ec2: Any, tgw_id: str) -> str:
    return ec2.create_transit_gateway_route_table(TransitGatewayId=tgw_id)["TransitGatewayRouteTable"][
        "TransitGatewayRouteTableId"
    ]


def search(ec2: Any, table: str, filters: dict[str, list[str]] | None = None, **kwargs: Any) -> dict[str, Any]:
    filters = filters or {"state": ["active", "blackhole"]}
    return ec2.search_transit_gateway_routes(
        TransitGatewayRouteTableId=table,
        Filters=[{"Name": k, "Values": v} for k, v in filters.items()],
        **kwargs,
    )


def cidrs(routes: list[dict[str, Any]]) -> list[str]:
    return [r["DestinationCidrBlock"] for r in routes]


def sort_cidrs(values: list[str]) -> list[str]:
    def key(c: str) -> tuple[int, int, int]:
        n = ipaddress.ip_network(c)
        return (n.version, int(n.network_address), n.prefixlen)

    return sorted(values, key=key)


def attachments_of(route: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (a.get("TransitGatewayAttachmentId"), a.get("ResourceId"), a.get("ResourceType"))
        for a in route.get("TransitGatewayAttachments", [])
    ]


def vpc_routes(ec2: Any, route_table_id: str) -> dict[str, dict[str, Any]]:
    table = ec2.describe_route_tables(RouteTableIds=[route_table_id])["RouteTables"][0]
    return {
        r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock"): r for r in table["Routes"]
    }


def run_instance(ec2: Any, subnet_id: str) -> tuple[str, str]:
    instance = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=subnet_id
    )["Instances"][0]
    return instance["InstanceId"], instance["NetworkInterfaces"][0]["NetworkInterfaceId"]


def peer(ec2_a: Any, tgw_a: str, tgw_b: str, region_b: str) -> str:
    return ec2_a.create_transit_gateway_peering_attachment(
        TransitGatewayId=tgw_a, PeerTransitGatewayId=tgw_b, PeerAccountId=ACCOUNT, PeerRegion=region_b
    )["TransitGatewayPeeringAttachment"]["TransitGatewayAttachmentId"]


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
# b. Propagated routes
# --------------------------------------------------------------------------- #


def test_b_enable_and_disable_propagation(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2, propagation="disable")
    vpc, subnet = make_vpc(ec2, "10.20.0.0/16", "10.21.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    table = new_route_table(ec2, tgw["TransitGatewayId"])
    assert search(ec2, table)["Routes"] == []
    ec2.enable_transit_gateway_route_table_propagation(TransitGatewayRouteTableId=table, TransitGatewayAttachmentId=att)
    routes = search(ec2, table, {"type": ["propagated"]})["Routes"]
    expected = [
        {
            "DestinationCidrBlock": cidr,
            "TransitGatewayAttachments": [{"ResourceId": vpc, "TransitGatewayAttachmentId": att, "ResourceType": "vpc"}],
            "Type": "propagated",
            "State": "active",
        }
        for cidr in ("10.20.0.0/16", "10.21.0.0/16")
    ]
    aws_or_gap(server, routes == expected, "propagation adds one propagated route per VPC CIDR")
    props = ec2.get_transit_gateway_route_table_propagations(TransitGatewayRouteTableId=table)[
        "TransitGatewayRouteTablePropagations"
    ]
    assert [(p["TransitGatewayAttachmentId"], p["State"]) for p in props] == [(att, "enabled")]

    ec2.disable_transit_gateway_route_table_propagation(TransitGatewayRouteTableId=table, TransitGatewayAttachmentId=att)
    assert search(ec2, table, {"type": ["propagated"]})["Routes"] == []
    assert ec2.get_transit_gateway_route_table_propagations(TransitGatewayRouteTableId=table)[
        "TransitGatewayRouteTablePropagations"
    ] == []


def test_b_ipv6_blocks_propagate_when_attachment_supports_ipv6(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2, propagation="disable")
    table = new_route_table(ec2, tgw["TransitGatewayId"])
    vpc6, subnet6 = make_vpc(ec2, "10.30.0.0/16", ipv6=True)
    vpc4, subnet4 = make_vpc(ec2, "10.31.0.0/16", ipv6=True)
    ipv6_block = ec2.describe_vpcs(VpcIds=[vpc6])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
    att6 = attach_vpc(ec2, tgw["TransitGatewayId"], vpc6, subnet6, Ipv6Support="enable")
    att4 = attach_vpc(ec2, tgw["TransitGatewayId"], vpc4, subnet4)
    for att in (att6, att4):
        ec2.enable_transit_gateway_route_table_propagation(TransitGatewayRouteTableId=table, TransitGatewayAttachmentId=att)
    routes = search(ec2, table, {"type": ["propagated"]})["Routes"]
    aws_or_gap(
        server,
        cidrs(routes) == ["10.30.0.0/16", "10.31.0.0/16", ipv6_block],
        "VPC IPv6 blocks propagate (only with Ipv6Support=enable), sorted v4 before v6",
    )


def test_b_default_propagation_on_attachment_creation(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2)  # AWS defaults: default association and propagation enabled
    table = tgw["Options"]["PropagationDefaultRouteTableId"]
    vpc, subnet = make_vpc(ec2, "10.40.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    props = ec2.get_transit_gateway_route_table_propagations(TransitGatewayRouteTableId=table)[
        "TransitGatewayRouteTablePropagations"
    ]
    routes = search(ec2, table)["Routes"]
    aws_or_gap(
        server,
        [p["TransitGatewayAttachmentId"] for p in props] == [att]
        and [(r["DestinationCidrBlock"], r["Type"], r["State"]) for r in routes]
        == [("10.40.0.0/16", "propagated", "active")],
        "a VPC attachment propagates to the default propagation route table",
    )
    described = ec2.describe_transit_gateway_attachments(TransitGatewayAttachmentIds=[att])["TransitGatewayAttachments"][0]
    assert described["Association"]["TransitGatewayRouteTableId"] == tgw["Options"]["AssociationDefaultRouteTableId"]


def test_b_no_default_association_when_disabled(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2, association="disable", propagation="enable")
    vpc, subnet = make_vpc(ec2, "10.41.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    described = ec2.describe_transit_gateway_attachments(TransitGatewayAttachmentIds=[att])["TransitGatewayAttachments"][0]
    aws_or_gap(server, "Association" not in described, "no default association when DefaultRouteTableAssociation=disable")


def test_b_propagated_routes_follow_cidrs_and_vanish_with_attachment(emu: Emulator) -> None:
    ec2 = emu.ec2()
    tgw = make_tgw(ec2)
    table = tgw["Options"]["PropagationDefaultRouteTableId"]
    vpc, subnet = make_vpc(ec2, "10.50.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock="10.51.0.0/16")
    assert cidrs(search(ec2, table)["Routes"]) == ["10.50.0.0/16", "10.51.0.0/16"]
    # A static route wins over the propagated one for the same prefix.
    ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.51.0.0/16", Blackhole=True)
    by_cidr = {r["DestinationCidrBlock"]: r for r in search(ec2, table)["Routes"]}
    assert (by_cidr["10.51.0.0/16"]["Type"], by_cidr["10.51.0.0/16"]["State"]) == ("static", "blackhole")
    ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.51.0.0/16")
    ec2.delete_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=att)
    assert search(ec2, table)["Routes"] == []
    assert ec2.get_transit_gateway_route_table_propagations(TransitGatewayRouteTableId=table)[
        "TransitGatewayRouteTablePropagations"
    ] == []


# --------------------------------------------------------------------------- #
# c. SearchTransitGatewayRoutes
# --------------------------------------------------------------------------- #


def test_c_max_results_caps_without_next_token(server: Emulator) -> None:
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
# d. Attachment kinds and the sides of a peering attachment
# --------------------------------------------------------------------------- #


@pytest.fixture
def vpc_and_peering(server: Emulator) -> dict[str, str]:
    ec2, ec2_b = server.ec2(REGIONS[0]), server.ec2(REGIONS[1])
    tgw = make_tgw(ec2)["TransitGatewayId"]
    tgw_b = make_tgw(ec2_b)["TransitGatewayId"]
    vpc, subnet = make_vpc(ec2, "10.60.0.0/16")
    return {"vpc_att": attach_vpc(ec2, tgw, vpc, subnet), "peering": peer(ec2, tgw, tgw_b, REGIONS[1])}


def test_d_vpc_attachments_lists_only_vpc_attachments(server: Emulator, vpc_and_peering: dict[str, str]) -> None:
    listed = server.ec2().describe_transit_gateway_vpc_attachments()["TransitGatewayVpcAttachments"]
    ids = [a["TransitGatewayAttachmentId"] for a in listed]
    assert vpc_and_peering["vpc_att"] in ids
    aws_or_gap(server, ids == [vpc_and_peering["vpc_att"]], "DescribeTransitGatewayVpcAttachments lists VPC attachments only")


def test_d_peering_attachments_lists_only_peering_attachments(server: Emulator, vpc_and_peering: dict[str, str]) -> None:
    listed = server.ec2().describe_transit_gateway_peering_attachments()["TransitGatewayPeeringAttachments"]
    ids = [a["TransitGatewayAttachmentId"] for a in listed]
    assert vpc_and_peering["peering"] in ids
    aws_or_gap(server, ids == [vpc_and_peering["peering"]], "DescribeTransitGatewayPeeringAttachments lists peerings only")


def test_d_peering_seen_from_both_regions_three_regions(server: Emulator) -> None:
    ec2 = {r: server.ec2(r) for r in REGIONS}
    tgw = {r: make_tgw(ec2[r]) for r in REGIONS}
    tgw_id = {r: tgw[r]["TransitGatewayId"] for r in REGIONS}
    us, eu, ap = REGIONS
    links = {  # attachment id -> (requester region, accepter region)
        peer(ec2[us], tgw_id[us], tgw_id[eu], eu): (us, eu),
        peer(ec2[us], tgw_id[us], tgw_id[ap], ap): (us, ap),
        peer(ec2[eu], tgw_id[eu], tgw_id[ap], ap): (eu, ap),
    }

    def seen(region: str) -> dict[str, dict[str, Any]]:
        found = ec2[region].describe_transit_gateway_peering_attachments()["TransitGatewayPeeringAttachments"]
        return {a["TransitGatewayAttachmentId"]: a for a in found}

    # Every region sees exactly the peerings it is a side of, pending acceptance.
    for region in REGIONS:
        mine = {a for a, sides in links.items() if region in sides}
        got = seen(region)
        assert set(got) == mine, region
        for att_id, att in got.items():
            requester, accepter = links[att_id]
            assert att["State"] == "pendingAcceptance"
            assert att["RequesterTgwInfo"] == {"TransitGatewayId": tgw_id[requester], "OwnerId": ACCOUNT, "Region": requester}
            assert att["AccepterTgwInfo"] == {"TransitGatewayId": tgw_id[accepter], "OwnerId": ACCOUNT, "Region": accepter}

    # The requester cannot accept; the accepter does, in its own region.
    att_id = next(iter(links))
    code, status, _ = error_of(lambda: ec2[us].accept_transit_gateway_peering_attachment(TransitGatewayAttachmentId=att_id))
    assert status == 400 and code is not None
    for att_id, (requester, accepter) in links.items():
        ec2[accepter].accept_transit_gateway_peering_attachment(TransitGatewayAttachmentId=att_id)
    for region in REGIONS:
        assert {a["State"] for a in seen(region).values()} == {"available"}

    # DescribeTransitGatewayAttachments: each side sees it from its own TGW.
    local_views_right = True
    for att_id, (requester, accepter) in links.items():
        for region, other in ((requester, accepter), (accepter, requester)):
            (view,) = ec2[region].describe_transit_gateway_attachments(TransitGatewayAttachmentIds=[att_id])[
                "TransitGatewayAttachments"
            ]
            assert view["ResourceType"] == "peering" and view["State"] == "available"
            local_views_right &= (view["TransitGatewayId"], view["ResourceId"]) == (tgw_id[region], tgw_id[other])
            if server.patched:
                assert view["Association"]["TransitGatewayRouteTableId"] == tgw[region]["Options"]["AssociationDefaultRouteTableId"]
            by_tgw = ec2[region].describe_transit_gateway_attachments(
                Filters=[{"Name": "transit-gateway-id", "Values": [tgw_id[region]]}, {"Name": "resource-type", "Values": ["peering"]}]
            )["TransitGatewayAttachments"]
            local_views_right &= att_id in [a["TransitGatewayAttachmentId"] for a in by_tgw]
    aws_or_gap(server, local_views_right, "the accepter region sees the peering from its own TGW")


def test_d_peering_routes_in_accepter_region_show_requester_tgw(emu: Emulator) -> None:
    us, eu, _ = REGIONS
    ec2_us, ec2_eu = emu.ec2(us), emu.ec2(eu)
    tgw_us, tgw_eu = make_tgw(ec2_us), make_tgw(ec2_eu)
    att = peer(ec2_us, tgw_us["TransitGatewayId"], tgw_eu["TransitGatewayId"], eu)
    ec2_eu.accept_transit_gateway_peering_attachment(TransitGatewayAttachmentId=att)
    table = tgw_eu["Options"]["AssociationDefaultRouteTableId"]
    route = ec2_eu.create_transit_gateway_route(
        TransitGatewayRouteTableId=table, DestinationCidrBlock="10.70.0.0/16", TransitGatewayAttachmentId=att
    )["Route"]
    assert attachments_of(route) == [(att, tgw_us["TransitGatewayId"], "peering")]
    # Deleting on one side deletes it on both.
    ec2_us.delete_transit_gateway_peering_attachment(TransitGatewayAttachmentId=att)
    for ec2 in (ec2_us, ec2_eu):
        (found,) = ec2.describe_transit_gateway_peering_attachments(TransitGatewayAttachmentIds=[att])["TransitGatewayPeeringAttachments"]
        assert found["State"] == "deleted"


def test_d_peering_filters(server: Emulator) -> None:
    us, eu, _ = REGIONS
    ec2_us, ec2_eu = server.ec2(us), server.ec2(eu)
    tgw_us, tgw_eu = make_tgw(ec2_us)["TransitGatewayId"], make_tgw(ec2_eu)["TransitGatewayId"]
    att = peer(ec2_us, tgw_us, tgw_eu, eu)

    def ids(ec2: Any, name: str, value: str) -> list[str]:
        found = ec2.describe_transit_gateway_peering_attachments(Filters=[{"Name": name, "Values": [value]}])
        return [a["TransitGatewayAttachmentId"] for a in found["TransitGatewayPeeringAttachments"]]

    assert ids(ec2_eu, "state", "pendingAcceptance") == [att]
    aws_or_gap(
        server,
        ids(ec2_us, "local-owner-id", ACCOUNT) == [att]
        and ids(ec2_us, "remote-owner-id", ACCOUNT) == [att]
        and ids(ec2_eu, "transit-gateway-id", tgw_eu) == [att]
        and ids(ec2_eu, "transit-gateway-id", "tgw-0000000000000000") == [],
        "peering filters local-owner-id / remote-owner-id / transit-gateway-id",
    )


# --------------------------------------------------------------------------- #
# e. Errors of route writes
# --------------------------------------------------------------------------- #


def test_e_disassociating_a_secondary_cidr_removes_its_local_route(emu: Emulator) -> None:
    """The local-route guard of DeleteRoute must not block AWS's own removal
    of a disassociated block's local route."""
    ec2 = emu.ec2()
    vpc, _ = make_vpc(ec2, "10.60.0.0/16", "10.61.0.0/16")
    (table,) = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
    assoc = next(
        a["AssociationId"]
        for a in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlockAssociationSet"]
        if a["CidrBlock"] == "10.61.0.0/16"
    )
    ec2.disassociate_vpc_cidr_block(AssociationId=assoc)
    assert "10.61.0.0/16" not in vpc_routes(ec2, table["RouteTableId"])
    assert "10.60.0.0/16" in vpc_routes(ec2, table["RouteTableId"])
    # A client still cannot delete the remaining local route.
    with pytest.raises(Exception):
        ec2.delete_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="10.60.0.0/16")


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


@pytest.fixture
def vpc_route_setup(server: Emulator) -> dict[str, Any]:
    ec2 = server.ec2()
    vpc, subnet = make_vpc(ec2, "10.90.0.0/16", ipv6=True)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    instance, instance_eni = run_instance(ec2, subnet)
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=instance, DeviceIndex=1)
    return {"ec2": ec2, "vpc": vpc, "subnet": subnet, "table": table, "instance": instance, "instance_eni": instance_eni, "eni": eni}


@pytest.mark.parametrize(
    "target, destination, plain_right",
    [
        ("instance", {"DestinationCidrBlock": "0.0.0.0/0"}, True),
        ("eni", {"DestinationCidrBlock": "172.16.0.0/12"}, False),
        ("eni", {"DestinationIpv6CidrBlock": "2600:1f00::/40"}, False),
    ],
)
def test_e_duplicate_vpc_route_is_route_already_exists(
    server: Emulator, vpc_route_setup: dict[str, Any], target: str, destination: dict[str, str], plain_right: bool
) -> None:
    s = vpc_route_setup
    kwargs = {"RouteTableId": s["table"], **destination}
    kwargs.update({"InstanceId": s["instance"]} if target == "instance" else {"NetworkInterfaceId": s["eni"]})
    s["ec2"].create_route(**kwargs)
    code, status, _ = error_of(lambda: s["ec2"].create_route(**kwargs))
    right = (code, status) == ("RouteAlreadyExists", 400)
    if plain_right:
        assert right
    else:
        aws_or_gap(server, right, f"duplicate CreateRoute to {target} {destination} -> RouteAlreadyExists")


@pytest.mark.parametrize("destination", [{"DestinationCidrBlock": "192.0.2.0/24"}, {"DestinationIpv6CidrBlock": "2600:1f01::/40"}])
def test_e_delete_missing_vpc_route_is_not_found(server: Emulator, vpc_route_setup: dict[str, Any], destination: dict[str, str]) -> None:
    s = vpc_route_setup
    code, status, _ = error_of(lambda: s["ec2"].delete_route(RouteTableId=s["table"], **destination))
    assert (code, status) == ("InvalidRoute.NotFound", 400)  # already right in moto


@pytest.mark.parametrize("destination", [{"DestinationCidrBlock": "192.0.2.0/24"}, {"DestinationIpv6CidrBlock": "2600:1f01::/40"}])
def test_e_replace_missing_vpc_route_is_invalid_parameter_value(
    server: Emulator, vpc_route_setup: dict[str, Any], destination: dict[str, str]
) -> None:
    """AWS answers InvalidParameterValue here, not InvalidRoute.NotFound
    (verified against AWS by moto's maintainers, getmoto/moto#6425)."""
    s = vpc_route_setup
    code, status, message = error_of(
        lambda: s["ec2"].replace_route(RouteTableId=s["table"], NetworkInterfaceId=s["eni"], **destination)
    )
    assert (code, status) == ("InvalidParameterValue", 400)
    assert "There is no route defined for" in message


# --------------------------------------------------------------------------- #
# f. VPC route state
# --------------------------------------------------------------------------- #


def test_f_route_to_instance_blackhole_unless_running(server: Emulator, vpc_route_setup: dict[str, Any]) -> None:
    s = vpc_route_setup
    ec2 = s["ec2"]
    ec2.create_route(RouteTableId=s["table"], DestinationCidrBlock="0.0.0.0/0", InstanceId=s["instance"])
    ec2.create_route(RouteTableId=s["table"], DestinationCidrBlock="172.16.0.0/12", NetworkInterfaceId=s["eni"])

    def states() -> tuple[str, str]:
        routes = vpc_routes(ec2, s["table"])
        return routes["0.0.0.0/0"]["State"], routes["172.16.0.0/12"]["State"]

    assert states() == ("active", "active")
    ec2.stop_instances(InstanceIds=[s["instance"]])
    aws_or_gap(server, states() == ("blackhole", "blackhole"), "routes to a stopped instance / its ENI are blackholes")
    ec2.start_instances(InstanceIds=[s["instance"]])
    assert states() == ("active", "active")
    ec2.terminate_instances(InstanceIds=[s["instance"]])
    aws_or_gap(server, states() == ("blackhole", "blackhole"), "routes to a terminated instance / its ENI are blackholes")


def test_f_route_to_deleted_or_detached_eni_is_blackhole(server: Emulator, vpc_route_setup: dict[str, Any]) -> None:
    s = vpc_route_setup
    ec2 = s["ec2"]
    ec2.create_route(RouteTableId=s["table"], DestinationCidrBlock="172.16.0.0/12", NetworkInterfaceId=s["eni"])
    attachment = ec2.describe_network_interfaces(NetworkInterfaceIds=[s["eni"]])["NetworkInterfaces"][0]["Attachment"]
    ec2.detach_network_interface(AttachmentId=attachment["AttachmentId"])
    detached = vpc_routes(ec2, s["table"])["172.16.0.0/12"]["State"]
    ec2.delete_network_interface(NetworkInterfaceId=s["eni"])
    route = vpc_routes(ec2, s["table"])["172.16.0.0/12"]
    assert route["NetworkInterfaceId"] == s["eni"]
    aws_or_gap(server, (detached, route["State"]) == ("blackhole", "blackhole"), "routes to a detached / deleted ENI are blackholes")


def test_f_route_shows_both_instance_and_eni(server: Emulator, vpc_route_setup: dict[str, Any]) -> None:
    s = vpc_route_setup
    ec2 = s["ec2"]
    ec2.create_route(RouteTableId=s["table"], DestinationCidrBlock="0.0.0.0/0", InstanceId=s["instance"])
    ec2.create_route(RouteTableId=s["table"], DestinationCidrBlock="172.16.0.0/12", NetworkInterfaceId=s["eni"])
    routes = vpc_routes(ec2, s["table"])
    to_instance, to_eni = routes["0.0.0.0/0"], routes["172.16.0.0/12"]
    assert to_instance["InstanceId"] == s["instance"] and to_eni["NetworkInterfaceId"] == s["eni"]
    aws_or_gap(
        server,
        to_instance.get("NetworkInterfaceId") == s["instance_eni"]
        and to_eni.get("InstanceId") == s["instance"]
        and to_eni.get("InstanceOwnerId") == ACCOUNT,
        "a route to an instance shows its ENI, a route to an attached ENI its instance",
    )


# --------------------------------------------------------------------------- #
# g. Smaller gaps, and what moto already gets right
# --------------------------------------------------------------------------- #


def test_g_tgw_tag_filter_with_colon_in_key(server: Emulator) -> None:
    ec2 = server.ec2()
    mesh = make_tgw(ec2, tags={"lbgp:mesh": "prod", "Name": "a"})["TransitGatewayId"]
    make_tgw(ec2, tags={"lbgp:mesh": "dev"})
    make_tgw(ec2)

    def ids(name: str, *values: str) -> list[str]:
        found = ec2.describe_transit_gateways(Filters=[{"Name": name, "Values": list(values)}])["TransitGateways"]
        return [t["TransitGatewayId"] for t in found]

    assert ids("tag:lbgp:mesh", "prod") == [mesh]  # already right in moto
    assert len(ids("tag:lbgp:mesh", "prod", "dev")) == 2
    assert ids("tag:lbgp:mesh", "staging") == []


def test_g_tgw_tag_key_and_wildcard_filters(server: Emulator) -> None:
    ec2 = server.ec2()
    prod = make_tgw(ec2, tags={"lbgp:mesh": "prod"})["TransitGatewayId"]
    dev = make_tgw(ec2, tags={"lbgp:mesh": "dev"})["TransitGatewayId"]
    make_tgw(ec2, tags={"Name": "other"})

    def ids(name: str, *values: str) -> list[str]:
        found = ec2.describe_transit_gateways(Filters=[{"Name": name, "Values": list(values)}])["TransitGateways"]
        return sorted(t["TransitGatewayId"] for t in found)

    aws_or_gap(
        server,
        ids("tag-key", "lbgp:mesh") == sorted([prod, dev]) and ids("tag:lbgp:mesh", "pr*") == [prod],
        "tag-key filter and wildcards in tag filters",
    )


def test_g_route_table_filters(server: Emulator) -> None:
    ec2 = server.ec2()
    vpc, _ = make_vpc(ec2, "10.100.0.0/16")
    other, _ = make_vpc(ec2, "10.101.0.0/16")
    extra = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]

    def ids(*filters: tuple[str, str]) -> list[str]:
        found = ec2.describe_route_tables(Filters=[{"Name": n, "Values": [v]} for n, v in filters])["RouteTables"]
        return [t["RouteTableId"] for t in found]

    in_vpc = ids(("vpc-id", vpc))
    main = ids(("vpc-id", vpc), ("association.main", "true"))
    assert len(in_vpc) == 2 and extra in in_vpc and len(main) == 1 and main[0] != extra
    assert ids(("vpc-id", vpc), ("association.main", "false")) == [extra]
    assert ids(("route-table-id", extra)) == [extra]
    assert extra not in ids(("vpc-id", other))


def test_g_describe_instance_status_include_all(server: Emulator) -> None:
    ec2 = server.ec2()
    _, subnet = make_vpc(ec2, "10.102.0.0/16")
    running, _ = run_instance(ec2, subnet)
    stopped, _ = run_instance(ec2, subnet)
    ec2.stop_instances(InstanceIds=[stopped])
    default = {s["InstanceId"]: s["InstanceState"]["Name"] for s in ec2.describe_instance_status()["InstanceStatuses"]}
    every = {
        s["InstanceId"]: s["InstanceState"]["Name"]
        for s in ec2.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"]
    }
    assert default == {running: "running"}
    assert every == {running: "running", stopped: "stopped"}


def test_g_replace_route_targets(server: Emulator, vpc_route_setup: dict[str, Any]) -> None:
    s = vpc_route_setup
    ec2 = s["ec2"]
    tgw = make_tgw(ec2)["TransitGatewayId"]
    ec2.create_route(RouteTableId=s["table"], DestinationCidrBlock="0.0.0.0/0", InstanceId=s["instance"])
    ec2.replace_route(RouteTableId=s["table"], DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=s["eni"])
    assert vpc_routes(ec2, s["table"])["0.0.0.0/0"]["NetworkInterfaceId"] == s["eni"]
    ec2.replace_route(RouteTableId=s["table"], DestinationCidrBlock="0.0.0.0/0", TransitGatewayId=tgw)
    route = vpc_routes(ec2, s["table"])["0.0.0.0/0"]
    assert route["TransitGatewayId"] == tgw and "NetworkInterfaceId" not in route and "InstanceId" not in route
    ec2.replace_route(RouteTableId=s["table"], DestinationCidrBlock="0.0.0.0/0", InstanceId=s["instance"])
    route = vpc_routes(ec2, s["table"])["0.0.0.0/0"]
    assert route["InstanceId"] == s["instance"] and "TransitGatewayId" not in route


def test_g_ipv6_vpc_routes(server: Emulator, vpc_route_setup: dict[str, Any]) -> None:
    s = vpc_route_setup
    ec2 = s["ec2"]
    ec2.create_route(RouteTableId=s["table"], DestinationIpv6CidrBlock="::/0", NetworkInterfaceId=s["eni"])
    assert vpc_routes(ec2, s["table"])["::/0"]["NetworkInterfaceId"] == s["eni"]
    ec2.replace_route(RouteTableId=s["table"], DestinationIpv6CidrBlock="::/0", InstanceId=s["instance"])
    assert vpc_routes(ec2, s["table"])["::/0"]["InstanceId"] == s["instance"]
    ec2.delete_route(RouteTableId=s["table"], DestinationIpv6CidrBlock="::/0")
    assert "::/0" not in vpc_routes(ec2, s["table"])


def _seed_for_pagination(server: Emulator) -> None:
    ec2 = server.ec2()
    for i in range(6):
        tgw = make_tgw(ec2)["TransitGatewayId"]
        vpc, subnet = make_vpc(ec2, f"10.{110 + i}.0.0/16")
        attach_vpc(ec2, tgw, vpc, subnet)
    ec2_b = server.ec2(REGIONS[1])
    peer_tgw = make_tgw(ec2_b)["TransitGatewayId"]
    tgws = [t["TransitGatewayId"] for t in ec2.describe_transit_gateways()["TransitGateways"]]
    for tgw in tgws:
        peer(ec2, tgw, peer_tgw, REGIONS[1])
    _, subnet = make_vpc(ec2, "10.120.0.0/16")
    ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)
    for _ in range(6):
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)


PAGINATED = {
    "describe_transit_gateways": ("TransitGateways", "TransitGatewayId", False),
    "describe_transit_gateway_attachments": ("TransitGatewayAttachments", "TransitGatewayAttachmentId", False),
    "describe_transit_gateway_vpc_attachments": ("TransitGatewayVpcAttachments", "TransitGatewayAttachmentId", False),
    "describe_transit_gateway_peering_attachments": ("TransitGatewayPeeringAttachments", "TransitGatewayAttachmentId", False),
    "describe_transit_gateway_route_tables": ("TransitGatewayRouteTables", "TransitGatewayRouteTableId", False),
    "describe_vpcs": ("Vpcs", "VpcId", False),
    "describe_route_tables": ("RouteTables", "RouteTableId", False),
    "describe_instances": ("Reservations", "ReservationId", True),
}


@pytest.mark.parametrize("operation", sorted(PAGINATED))
def test_g_pagination(server: Emulator, operation: str) -> None:
    key, id_field, plain_right = PAGINATED[operation]
    _seed_for_pagination(server)
    call = getattr(server.ec2(), operation)
    everything = [item[id_field] for item in call()[key]]
    assert len(everything) > 5
    pages, token, ok = [], None, True
    for _ in range(10):
        out = call(MaxResults=5, **({"NextToken": token} if token else {}))
        pages.append([item[id_field] for item in out[key]])
        ok &= len(pages[-1]) <= 5
        token = out.get("NextToken")
        if not token:
            break
    ok &= len(pages) > 1 and [i for p in pages for i in p] == everything
    if plain_right:
        assert ok
    else:
        aws_or_gap(server, ok, f"{operation} pages with MaxResults / NextToken")


def test_g_pagination_bounds_and_bad_token(emu: Emulator) -> None:
    ec2 = emu.ec2()
    assert error_of(lambda: ec2.describe_vpcs(MaxResults=4))[:2] == ("InvalidParameterValue", 400)
    assert error_of(lambda: ec2.describe_route_tables(MaxResults=101))[:2] == ("InvalidParameterValue", 400)
    assert error_of(lambda: ec2.describe_transit_gateways(MaxResults=5, NextToken="garbage"))[:2] == ("InvalidPaginationToken", 400)


def test_g_tgw_without_defaults_has_no_default_route_table(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2, association="disable", propagation="disable")
    tables = ec2.describe_transit_gateway_route_tables(
        Filters=[{"Name": "transit-gateway-id", "Values": [tgw["TransitGatewayId"]]}]
    )["TransitGatewayRouteTables"]
    aws_or_gap(
        server,
        tables == [] and "AssociationDefaultRouteTableId" not in tgw["Options"],
        "no default route table when default association and propagation are disabled",
    )


def test_g_vpc_attachment_tag_specifications(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2)["TransitGatewayId"]
    vpc, subnet = make_vpc(ec2, "10.130.0.0/16")
    att = ec2.create_transit_gateway_vpc_attachment(
        TransitGatewayId=tgw,
        VpcId=vpc,
        SubnetIds=[subnet],
        TagSpecifications=[{"ResourceType": "transit-gateway-attachment", "Tags": [{"Key": "lbgp:mesh", "Value": "prod"}]}],
    )["TransitGatewayVpcAttachment"]
    (described,) = ec2.describe_transit_gateway_vpc_attachments(
        TransitGatewayAttachmentIds=[att["TransitGatewayAttachmentId"]]
    )["TransitGatewayVpcAttachments"]
    aws_or_gap(server, described.get("Tags") == [{"Key": "lbgp:mesh", "Value": "prod"}], "VPC attachment keeps its tags")


def test_g_associate_twice_is_already_associated(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2)
    vpc, subnet = make_vpc(ec2, "10.131.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    other = new_route_table(ec2, tgw["TransitGatewayId"])
    code, status, _ = error_of(
        lambda: ec2.associate_transit_gateway_route_table(TransitGatewayRouteTableId=other, TransitGatewayAttachmentId=att)
    )
    aws_or_gap(server, (code, status) == ("Resource.AlreadyAssociated", 400), "associating an associated attachment fails")


def test_g_association_follows_disassociate_and_associate(emu: Emulator) -> None:
    ec2 = emu.ec2()
    tgw = make_tgw(ec2)
    default = tgw["Options"]["AssociationDefaultRouteTableId"]
    vpc, subnet = make_vpc(ec2, "10.132.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    other = new_route_table(ec2, tgw["TransitGatewayId"])

    def association() -> Any:
        (found,) = ec2.describe_transit_gateway_attachments(TransitGatewayAttachmentIds=[att])["TransitGatewayAttachments"]
        return found.get("Association", {}).get("TransitGatewayRouteTableId")

    assert association() == default
    ec2.disassociate_transit_gateway_route_table(TransitGatewayRouteTableId=default, TransitGatewayAttachmentId=att)
    assert association() is None
    ec2.associate_transit_gateway_route_table(TransitGatewayRouteTableId=other, TransitGatewayAttachmentId=att)
    assert association() == other
    found = ec2.describe_transit_gateway_attachments(
        Filters=[{"Name": "association.transit-gateway-route-table-id", "Values": [other]}]
    )["TransitGatewayAttachments"]
    assert [a["TransitGatewayAttachmentId"] for a in found] == [att]


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


def test_g_tgw_route_table_default_and_tag_filters(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2)
    tgw_id, default = tgw["TransitGatewayId"], tgw["Options"]["AssociationDefaultRouteTableId"]
    other = ec2.create_transit_gateway_route_table(
        TransitGatewayId=tgw_id,
        TagSpecifications=[{"ResourceType": "transit-gateway-route-table", "Tags": [{"Key": "lbgp:role", "Value": "mesh"}]}],
    )["TransitGatewayRouteTable"]["TransitGatewayRouteTableId"]

    def ids(name: str, value: str) -> list[str]:
        found = ec2.describe_transit_gateway_route_tables(
            Filters=[{"Name": "transit-gateway-id", "Values": [tgw_id]}, {"Name": name, "Values": [value]}]
        )["TransitGatewayRouteTables"]
        return [t["TransitGatewayRouteTableId"] for t in found]

    aws_or_gap(
        server,
        ids("default-association-route-table", "true") == [default]
        and ids("default-propagation-route-table", "false") == [other]
        and ids("tag:lbgp:role", "mesh") == [other],
        "DescribeTransitGatewayRouteTables default-*-route-table and tag filters",
    )


def test_g_ipv6_blocks_are_canonical(server: Emulator) -> None:
    # moto prints a drawn block as drawn; about one in eight has a leading
    # zero. A hundred blocks make the plain server show it all but surely.
    ec2 = server.ec2()
    blocks = [
        ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"][
            "Ipv6CidrBlockAssociationSet"
        ][0]["Ipv6CidrBlock"]
        for _ in range(100)
    ]
    aws_or_gap(
        server,
        all(b == str(ipaddress.ip_network(b)) for b in blocks),
        "Amazon-provided IPv6 blocks are printed in canonical form",
    )


# --------------------------------------------------------------------------- #
# h. DynamoDB transaction conflicts
# --------------------------------------------------------------------------- #


def _lease_table(server: Emulator) -> Any:
    ddb = server.client("dynamodb")
    ddb.create_table(
        TableName="conflicts",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="conflicts", Item={"pk": {"S": "lease#x"}, "sk": {"S": "lease"}, "token": {"N": "1"}})
    return ddb


def _fenced_put(ddb: Any, n: int) -> dict[str, Any]:
    return {
        "TransactItems": [
            {
                "ConditionCheck": {
                    "TableName": "conflicts",
                    "Key": {"pk": {"S": "lease#x"}, "sk": {"S": "lease"}},
                    "ConditionExpression": "#t = :t",
                    "ExpressionAttributeNames": {"#t": "token"},
                    "ExpressionAttributeValues": {":t": {"N": "1"}},
                }
            },
            {"Put": {"TableName": "conflicts", "Item": {"pk": {"S": "ledger#x"}, "sk": {"S": f"r{n}"}}}},
        ]
    }


def test_h_concurrent_transactions_on_one_item_conflict(server: Emulator) -> None:
    # DynamoDB cancels a transaction that touches an item another ongoing
    # transaction touches (a condition check counts), and refuses a plain
    # write of such an item. moto handles one request at a time: never.
    ddb = _lease_table(server)
    server.set_faults(latency_ms=400, services=["dynamodb"])
    outcomes: dict[str, Any] = {}

    def run(name: str, call: Callable[[], Any]) -> None:
        try:
            call()
            outcomes[name] = None
        except ClientError as exc:
            outcomes[name] = (exc.response["Error"]["Code"], exc.response.get("CancellationReasons"))

    first = threading.Thread(target=run, args=("first", lambda: ddb.transact_write_items(**_fenced_put(ddb, 1))))
    first.start()
    time.sleep(0.15)
    threads = [
        threading.Thread(target=run, args=("second", lambda: ddb.transact_write_items(**_fenced_put(ddb, 2)))),
        threading.Thread(
            target=run,
            args=(
                "plain",
                lambda: ddb.update_item(
                    TableName="conflicts",
                    Key={"pk": {"S": "lease#x"}, "sk": {"S": "lease"}},
                    UpdateExpression="SET pending = :p",
                    ExpressionAttributeValues={":p": {"BOOL": True}},
                ),
            ),
        ),
    ]
    for t in threads:
        t.start()
    for t in [first, *threads]:
        t.join(10)
    server.control("DELETE", "/_lbgp/faults")
    cancelled = outcomes.get("second") or (None, None)
    aws_or_gap(
        server,
        outcomes.get("first") is None
        and cancelled[0] == "TransactionCanceledException"
        and [r["Code"] for r in cancelled[1] or []] == ["TransactionConflict", "None"]
        and (outcomes.get("plain") or (None,))[0] == "TransactionConflictException",
        "concurrent transactions on one item conflict",
    )
    # Once the first is answered, the same transaction goes through.
    ddb.transact_write_items(**_fenced_put(ddb, 3))
    assert "Item" in ddb.get_item(TableName="conflicts", Key={"pk": {"S": "ledger#x"}, "sk": {"S": "r3"}})
