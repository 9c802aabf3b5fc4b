"""Fidelity tests: attachments - gap b (propagation), gap d (attachment kinds,
the sides of a peering), gap g (TGW defaults, associations, tag and route
table filters), 10 (tgw-peering) and 11 (unassociated peering sides).

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

from conftest import ACCOUNT, REGIONS, Emulator, aws_or_gap, error_of
from builders import make_vpc, make_tgw, attach_vpc, new_route_table, search, cidrs, attachments_of, peer


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
# g. TGW defaults, associations, TGW and route table filters
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


# --------------------------------------------------------------------------- #
# 10. The deprecated tgw-peering resource type; 11. unassociated peering sides
# --------------------------------------------------------------------------- #


def test_10_peering_can_be_shown_as_tgw_peering(server: Emulator) -> None:
    us, eu, _ = REGIONS
    ec2, ec2_eu = server.ec2(us), server.ec2(eu)
    tgw = make_tgw(ec2, propagation="disable")
    table = tgw["Options"]["AssociationDefaultRouteTableId"]
    vpc, subnet = make_vpc(ec2, "10.150.0.0/16")
    vpc_att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    att = peer(ec2, tgw["TransitGatewayId"], make_tgw(ec2_eu)["TransitGatewayId"], eu)
    ec2_eu.accept_transit_gateway_peering_attachment(TransitGatewayAttachmentId=att)
    ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.151.0.0/16", TransitGatewayAttachmentId=att)
    server.set_fidelity(peering_resource_type="tgw-peering")

    def described(*filters: tuple[str, str]) -> dict[str, str]:
        found = ec2.describe_transit_gateway_attachments(Filters=[{"Name": n, "Values": [v]} for n, v in filters])
        return {a["TransitGatewayAttachmentId"]: a["ResourceType"] for a in found["TransitGatewayAttachments"]}

    (route,) = search(ec2, table)["Routes"]
    by_type = search(ec2, table, {"attachment.resource-type": ["tgw-peering"]})["Routes"]
    aws_or_gap(
        server,
        described() == {vpc_att: "vpc", att: "tgw-peering"}
        and route["TransitGatewayAttachments"][0]["ResourceType"] == "tgw-peering"
        and cidrs(by_type) == ["10.151.0.0/16"],
        "peering attachments shown with the deprecated tgw-peering resource type",
    )
    if server.patched:
        assert described(("resource-type", "tgw-peering")) == {att: "tgw-peering"}
        assert described(("resource-type", "peering")) == {}
        server.set_fidelity()
        assert described(("resource-type", "peering")) == {att: "peering"}


def test_11_a_peering_side_without_route_table_has_no_association(server: Emulator) -> None:
    us, eu, _ = REGIONS
    ec2, ec2_eu = server.ec2(us), server.ec2(eu)
    tgw = make_tgw(ec2)
    tgw_eu = make_tgw(ec2_eu, association="disable")  # the accepter's side is associated with nothing
    att = peer(ec2, tgw["TransitGatewayId"], tgw_eu["TransitGatewayId"], eu)
    ec2_eu.accept_transit_gateway_peering_attachment(TransitGatewayAttachmentId=att)

    def association(client: Any) -> Any:
        (found,) = client.describe_transit_gateway_attachments(TransitGatewayAttachmentIds=[att])["TransitGatewayAttachments"]
        assert found["State"] == "available"
        return found.get("Association")

    aws_or_gap(server, association(ec2_eu) is None, "an unassociated peering side shows no Association")
    if not server.patched:
        return
    default = tgw["Options"]["AssociationDefaultRouteTableId"]
    assert association(ec2) == {"State": "associated", "TransitGatewayRouteTableId": default}
    ec2.disassociate_transit_gateway_route_table(TransitGatewayRouteTableId=default, TransitGatewayAttachmentId=att)
    assert association(ec2) is None
    found = ec2.describe_transit_gateway_attachments(
        Filters=[{"Name": "association.transit-gateway-route-table-id", "Values": [default]}]
    )["TransitGatewayAttachments"]
    assert found == []
    # Associating it by hand on the accepter side shows it there.
    eu_table = new_route_table(ec2_eu, tgw_eu["TransitGatewayId"])
    ec2_eu.associate_transit_gateway_route_table(TransitGatewayRouteTableId=eu_table, TransitGatewayAttachmentId=att)
    assert association(ec2_eu) == {"State": "associated", "TransitGatewayRouteTableId": eu_table}
