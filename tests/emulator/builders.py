"""Builders shared by the fidelity tests: VPCs, TGWs, attachments, routes,
instances, peering, and small readers of their answers."""

from __future__ import annotations

import ipaddress
from typing import Any

from conftest import ACCOUNT

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
