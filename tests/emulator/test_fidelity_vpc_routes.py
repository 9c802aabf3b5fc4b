"""Fidelity tests: VPC routes - the VPC half of gap e (errors of route
writes), gap f (route states), and what moto already gets right about VPC
routes (g).

Tests taking the ``server`` fixture run twice: on the patched emulator they
assert what AWS does; on the plain one (``--plain``) they assert that moto
still shows the gap (``aws_or_gap``) - so a moto upgrade that fixes a gap
makes the plain case fail and tells us to drop the patch. Behaviour that plain
moto already gets right is asserted on both. Test names start with the gap
letter (or behaviour number) of the fidelity package / README.md.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from conftest import ACCOUNT, Emulator, aws_or_gap, error_of
from builders import make_vpc, make_tgw, vpc_routes, run_instance


# --------------------------------------------------------------------------- #
# e. Errors of VPC route writes
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
# g. Route tables, instance status, route targets, IPv6
# --------------------------------------------------------------------------- #


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
