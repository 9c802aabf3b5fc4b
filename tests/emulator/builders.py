"""Builders shared by the fidelity tests: VPCs, TGWs, attachments, routes,
instances, peering, small readers of their answers, and sessions in other
accounts (roles, AssumeRole, RAM shares)."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import boto3

from conftest import ACCOUNT, CLIENT_CONFIG

def make_vpc(ec2: Any, cidr: str, *extra: str, ipv6: bool = False) -> tuple[str, str]:
    vpc = ec2.create_vpc(CidrBlock=cidr, AmazonProvidedIpv6CidrBlock=ipv6)["Vpc"]
    for block in extra:
        ec2.associate_vpc_cidr_block(VpcId=vpc["VpcId"], CidrBlock=block)
    net = ipaddress.ip_network(cidr)
    subnet_cidr = str(next(net.subnets(new_prefix=min(net.prefixlen + 8, 28))))
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=subnet_cidr)["Subnet"]
    return vpc["VpcId"], subnet["SubnetId"]


def make_tgw(
    ec2: Any,
    *,
    association: str = "enable",
    propagation: str = "enable",
    tags: dict[str, str] | None = None,
    **options: str,
) -> dict[str, Any]:
    """A TGW; ``options``: more TransitGatewayRequestOptions (e.g.
    ``AutoAcceptSharedAttachments="enable"``)."""
    kwargs: dict[str, Any] = {
        "Description": "lbgp test",
        "Options": {
            "DefaultRouteTableAssociation": association,
            "DefaultRouteTablePropagation": propagation,
            **options,
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
# Other accounts (behaviour 18)
# --------------------------------------------------------------------------- #
MEMBER_ROLE = "lbgp-member"  # LBGP_MEMBER_ROLE's default


def iam_in(server: Any, account: str) -> Any:
    """An IAM client acting in ``account`` through moto's ``x-moto-account-id``
    header - test set-up only (AWS has no such header): the way to create a
    role in an account nobody can act in yet."""
    iam = boto3.client(
        "iam",
        region_name="us-east-1",
        endpoint_url=server.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=CLIENT_CONFIG,
    )

    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    iam.meta.events.register("before-sign.iam.*", add_header)
    return iam


def trust_policy(*principals: str, conditions: dict[str, Any] | None = None, deny: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A role trust policy allowing ``sts:AssumeRole`` to ``principals``
    (account ids, root / role / user ARNs; default: the home account)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": list(principals) or [f"arn:aws:iam::{ACCOUNT}:root"]},
        "Action": "sts:AssumeRole",
    }
    if conditions:
        statement["Condition"] = conditions
    return {"Version": "2012-10-17", "Statement": [statement, *(deny or [])]}


def create_role(server: Any, account: str, name: str = MEMBER_ROLE, policy: dict[str, Any] | None = None) -> str:
    """Create role ``name`` in ``account`` (trusting the home account unless
    ``policy`` says otherwise); its ARN."""
    role = iam_in(server, account).create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(policy or trust_policy())
    )["Role"]
    return role["Arn"]


class Session:
    """Clients with the credentials of an assumed role."""

    def __init__(self, server: Any, credentials: dict[str, Any]) -> None:
        self.server = server
        self.credentials = credentials
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str = "us-east-1") -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = boto3.client(
                service,
                region_name=region,
                endpoint_url=self.server.url,
                aws_access_key_id=self.credentials["AccessKeyId"],
                aws_secret_access_key=self.credentials["SecretAccessKey"],
                aws_session_token=self.credentials["SessionToken"],
                config=CLIENT_CONFIG,
            )
        return self._clients[key]

    def ec2(self, region: str = "us-east-1") -> Any:
        return self.client("ec2", region)


def assume(server: Any, role_arn: str, *, external_id: str | None = None, via: Session | None = None, session_name: str = "lbgp-test") -> Session:
    """AssumeRole ``role_arn`` (from the home account's dummy credentials, or
    from ``via``'s); raises botocore's ClientError when refused."""
    sts = via.client("sts") if via is not None else server.client("sts")
    kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name}
    if external_id is not None:
        kwargs["ExternalId"] = external_id
    return Session(server, sts.assume_role(**kwargs)["Credentials"])


def member(server: Any, account: str, name: str = MEMBER_ROLE) -> Session:
    """A session in ``account``: its member role, trusting the home account,
    created and assumed (what lbgp's member sessions do)."""
    return assume(server, create_role(server, account, name))


def share_tgw(server: Any, tgw: dict[str, Any], *principals: str, region: str = "us-east-1") -> str:
    """Share a home-account TGW through RAM with ``principals`` (account ids,
    an organisation or OU ARN); the share's ARN."""
    return server.client("ram", region).create_resource_share(
        name=f"share-{tgw['TransitGatewayId']}",
        resourceArns=[tgw["TransitGatewayArn"]],
        principals=list(principals),
    )["resourceShare"]["resourceShareArn"]
