"""Fidelity tests: rules of VPC route writes - 4 (gateway route tables), 5
(routes per route table quota), 9 (ReplaceRoute refused for another reason
than a missing route)."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Emulator, aws_or_gap, error_of
from builders import make_tgw, make_vpc, run_instance, vpc_routes


@pytest.fixture
def gateway_table(server: Emulator) -> dict[str, Any]:
    """A VPC (10.40.0.0/16, subnet 10.40.0.0/24) with an internet gateway, a
    virtual private gateway, a second subnet 10.40.1.0/24, an ENI, a TGW, and two route tables: one
    edge-associated with the internet gateway, one with the VPN gateway."""
    ec2 = server.ec2()
    vpc, subnet = make_vpc(ec2, "10.40.0.0/16")
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    ec2.attach_vpn_gateway(VpnGatewayId=vgw, VpcId=vpc)
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    tgw = make_tgw(ec2)["TransitGatewayId"]
    igw_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    vgw_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=igw_table, GatewayId=igw)
    ec2.associate_route_table(RouteTableId=vgw_table, GatewayId=vgw)
    return {"ec2": ec2, "vpc": vpc, "subnet": subnet, "igw": igw, "vgw": vgw, "eni": eni, "tgw": tgw,
            "igw_table": igw_table, "vgw_table": vgw_table}


def gateway_ids(ec2: Any, table: str) -> list[str | None]:
    (found,) = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"]
    return [a.get("GatewayId") for a in found["Associations"]]


# --------------------------------------------------------------------------- #
# 4. Gateway route tables
# --------------------------------------------------------------------------- #


def test_4_edge_associations_show_their_gateway(server: Emulator, gateway_table: dict[str, Any]) -> None:
    g = gateway_table
    assert gateway_ids(g["ec2"], g["igw_table"]) == [g["igw"]]  # already right in moto
    aws_or_gap(server, gateway_ids(g["ec2"], g["vgw_table"]) == [g["vgw"]], "an edge association with a VGW shows its GatewayId")


@pytest.mark.parametrize("table", ["igw_table", "vgw_table"])
def test_4_gateway_route_table_refuses_a_transit_gateway_target(
    server: Emulator, gateway_table: dict[str, Any], table: str
) -> None:
    g = gateway_table
    ec2, rtb = g["ec2"], g[table]
    code, status, message = error_of(
        lambda: ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="10.40.0.0/24", TransitGatewayId=g["tgw"])
    )
    aws_or_gap(
        server,
        (code, status) == ("InvalidParameterValue", 400) and message.startswith("Route target is not supported"),
        "CreateRoute toward a TGW in a gateway route table fails",
    )
    if not server.patched:
        return
    # Allowed: a network interface, for the whole VPC or a whole subnet.
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="10.40.0.0/24", NetworkInterfaceId=g["eni"])
    assert vpc_routes(ec2, rtb)["10.40.0.0/24"]["NetworkInterfaceId"] == g["eni"]
    # Refused: other targets, other destinations, and the same by ReplaceRoute.
    for kwargs in (
        {"DestinationCidrBlock": "10.40.1.0/24", "GatewayId": g["igw"]},
        {"DestinationCidrBlock": "10.40.1.0/24", "TransitGatewayId": g["tgw"]},
        {"DestinationCidrBlock": "0.0.0.0/0", "NetworkInterfaceId": g["eni"]},
        {"DestinationCidrBlock": "10.40.0.0/25", "NetworkInterfaceId": g["eni"]},
    ):
        code, status, _ = error_of(lambda: ec2.create_route(RouteTableId=rtb, **kwargs))
        assert (code, status) == ("InvalidParameterValue", 400), kwargs
    code, _, message = error_of(
        lambda: ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="10.40.0.0/24", TransitGatewayId=g["tgw"])
    )
    assert code == "InvalidParameterValue" and "There is no route defined" not in message
    assert vpc_routes(ec2, rtb)["10.40.0.0/24"]["NetworkInterfaceId"] == g["eni"]


def test_4_a_table_with_other_routes_cannot_be_edge_associated(emu: Emulator) -> None:
    ec2 = emu.ec2()
    vpc, _ = make_vpc(ec2, "10.41.0.0/16")
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    code, status, _ = error_of(lambda: ec2.associate_route_table(RouteTableId=table, GatewayId=igw))
    assert (code, status) == ("InvalidParameterValue", 400)
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
    ec2.associate_route_table(RouteTableId=table, GatewayId=igw)
    assert gateway_ids(ec2, table) == [igw]


# --------------------------------------------------------------------------- #
# 5. Routes per route table
# --------------------------------------------------------------------------- #


def test_5_route_quota_is_50_per_table(server: Emulator) -> None:
    ec2 = server.ec2()
    vpc, _ = make_vpc(ec2, "10.50.0.0/16")
    tgw = make_tgw(ec2)["TransitGatewayId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    for i in range(50):  # the local route is not counted
        ec2.create_route(RouteTableId=table, DestinationCidrBlock=f"172.16.{i}.0/24", TransitGatewayId=tgw)
    code, status, _ = error_of(
        lambda: ec2.create_route(RouteTableId=table, DestinationCidrBlock="172.16.50.0/24", TransitGatewayId=tgw)
    )
    aws_or_gap(server, (code, status) == ("RouteLimitExceeded", 400), "the 51st route of a table is RouteLimitExceeded")


def test_5_route_quota_counts_ipv4_and_ipv6_apart_and_is_configurable(emu: Emulator) -> None:
    emu.set_fidelity(vpc_route_quota=2)
    ec2 = emu.ec2()
    vpc, _ = make_vpc(ec2, "10.51.0.0/16", ipv6=True)
    tgw = make_tgw(ec2)["TransitGatewayId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]

    def add(**destination: str) -> str | None:
        return error_of(lambda: ec2.create_route(RouteTableId=table, TransitGatewayId=tgw, **destination))[0]

    assert [add(DestinationCidrBlock=c) for c in ("172.16.0.0/16", "172.17.0.0/16", "172.18.0.0/16")] == [
        None, None, "RouteLimitExceeded"]
    assert [add(DestinationIpv6CidrBlock=c) for c in ("2600:1f00::/40", "2600:1f01::/40", "2600:1f02::/40")] == [
        None, None, "RouteLimitExceeded"]
    # A duplicate is still RouteAlreadyExists; a deletion frees a place.
    assert add(DestinationCidrBlock="172.16.0.0/16") == "RouteAlreadyExists"
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="172.16.0.0/16")
    assert add(DestinationCidrBlock="172.18.0.0/16") is None
    emu.set_fidelity(vpc_route_quota=None)
    assert add(DestinationCidrBlock="172.19.0.0/16") is None


# --------------------------------------------------------------------------- #
# 9. ReplaceRoute: InvalidParameterValue for another reason than a missing route
# --------------------------------------------------------------------------- #


def test_9_replace_route_to_an_eni_of_another_vpc_is_refused(server: Emulator) -> None:
    ec2 = server.ec2()
    vpc, _ = make_vpc(ec2, "10.90.0.0/16")
    _, other_subnet = make_vpc(ec2, "10.91.0.0/16")
    foreign = ec2.create_network_interface(SubnetId=other_subnet)["NetworkInterface"]["NetworkInterfaceId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", TransitGatewayId=make_tgw(ec2)["TransitGatewayId"])
    code, status, message = error_of(
        lambda: ec2.replace_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=foreign)
    )
    aws_or_gap(
        server,
        (code, status) == ("InvalidParameterValue", 400) and "belong to different networks" in message,
        "ReplaceRoute to an ENI of another VPC is InvalidParameterValue (not a missing route)",
    )
    # A missing route still reads as one, whatever the target.
    code, _, message = error_of(
        lambda: ec2.replace_route(RouteTableId=table, DestinationCidrBlock="192.0.2.0/24", NetworkInterfaceId=foreign)
    )
    assert code == "InvalidParameterValue" and "There is no route defined for" in message
    if server.patched:
        code, _, message = error_of(
            lambda: ec2.create_route(RouteTableId=table, DestinationCidrBlock="192.0.2.0/24", NetworkInterfaceId=foreign)
        )
        assert code == "InvalidParameterValue" and "belong to different networks" in message


def test_9_route_to_an_instance_with_several_interfaces_can_be_refused(emu: Emulator) -> None:
    ec2 = emu.ec2()
    vpc, subnet = make_vpc(ec2, "10.92.0.0/16")
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    instance, primary = run_instance(ec2, subnet)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", InstanceId=instance)
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=instance, DeviceIndex=1)
    ec2.replace_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", InstanceId=instance)  # default: allowed
    emu.set_fidelity(reject_multi_interface_instances=True)
    code, status, message = error_of(
        lambda: ec2.replace_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", InstanceId=instance)
    )
    assert (code, status) == ("InvalidInstanceID", 400) and "multiple interfaces" in message
    ec2.replace_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=primary)
