"""Fidelity tests: describes - gap g (pagination: MaxResults / NextToken) and
6 (limits on ids and filter values).

Tests taking the ``server`` fixture run twice: on the patched emulator they
assert what AWS does; on the plain one (``--plain``) they assert that moto
still shows the gap (``aws_or_gap``) - so a moto upgrade that fixes a gap
makes the plain case fail and tells us to drop the patch. Behaviour that plain
moto already gets right is asserted on both. Test names start with the gap
letter (or behaviour number) of the fidelity package / README.md.
"""

from __future__ import annotations


import pytest

from conftest import REGIONS, Emulator, aws_or_gap, error_of
from builders import make_vpc, make_tgw, attach_vpc, peer


# --------------------------------------------------------------------------- #
# g. Pagination
# --------------------------------------------------------------------------- #


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


# --------------------------------------------------------------------------- #
# 6. Limits on ids and filter values
# --------------------------------------------------------------------------- #


def test_6_describe_instance_status_takes_at_most_100_ids(server: Emulator) -> None:
    ec2 = server.ec2()
    _, subnet = make_vpc(ec2, "10.60.0.0/16")
    ids = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId="ami-12c6146b", MinCount=101, MaxCount=101, SubnetId=subnet)["Instances"]
    ]
    hundred = ec2.describe_instance_status(InstanceIds=ids[:100], IncludeAllInstances=True)["InstanceStatuses"]
    assert len(hundred) == 100
    code, status, message = error_of(lambda: ec2.describe_instance_status(InstanceIds=ids, IncludeAllInstances=True))
    aws_or_gap(
        server,
        (code, status) == ("InvalidRequest", 400)
        and message.startswith("101 exceeds the maximum number of instance IDs that can be specificied (100)"),
        "DescribeInstanceStatus with 101 instance ids is InvalidRequest",
    )


def test_6_instance_ids_and_max_results_do_not_go_together(server: Emulator) -> None:
    ec2 = server.ec2()
    _, subnet = make_vpc(ec2, "10.61.0.0/16")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]["InstanceId"]
    both = {"InstanceIds": [instance], "MaxResults": 5}
    expected = ("InvalidParameterCombination", 400, "The parameter instancesSet cannot be used with the parameter maxResults")
    assert error_of(lambda: ec2.describe_instances(**both)) == expected  # already right in moto
    aws_or_gap(
        server,
        error_of(lambda: ec2.describe_instance_status(**both)) == expected,
        "DescribeInstanceStatus refuses InstanceIds with MaxResults",
    )


FILTERED = {  # operation -> a filter it supports
    "describe_vpcs": "vpc-id",
    "describe_subnets": "vpc-id",
    "describe_route_tables": "vpc-id",
    "describe_instances": "instance-id",
    "describe_transit_gateways": "transit-gateway-id",
    "describe_transit_gateway_attachments": "transit-gateway-id",
}


@pytest.mark.parametrize("operation", sorted(FILTERED))
def test_6_at_most_200_filter_values_per_call(server: Emulator, operation: str) -> None:
    call = getattr(server.ec2(), operation)
    name = FILTERED[operation]

    def values(n: int, offset: int = 0) -> list[str]:
        return [f"x-{i:017x}" for i in range(offset, offset + n)]

    assert error_of(lambda: call(Filters=[{"Name": name, "Values": values(200)}]))[0] is None
    one = error_of(lambda: call(Filters=[{"Name": name, "Values": values(201)}]))
    two = error_of(lambda: call(Filters=[{"Name": name, "Values": values(150)}, {"Name": "tag-key", "Values": values(51, 150)}]))
    expected = ("FilterLimitExceeded", 400, "The maximum number of filter values specified on a single call is 200")
    aws_or_gap(server, one == expected and two == expected, f"{operation} with 201 filter values")
