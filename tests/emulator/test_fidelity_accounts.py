"""Fidelity tests: behaviour 18, several accounts - a transit gateway of the
home account shared through RAM with an application account (attached by
that account's VPCs, listed in both, accepted by the owner, propagating into
the owner's route tables, routed to from the VPC's route tables, listed in
DescribeTransitGateways there), and sts:AssumeRole refusing a role that does
not exist or does not trust the caller.

Tests taking the ``server`` fixture run on the patched emulator (AWS's
behaviour) and on plain moto (the gap, ``aws_or_gap``). Acting as another
account: a role is created there through moto's ``x-moto-account-id``
header (``builders.iam_in``, test set-up only), then assumed from the home
account's dummy credentials - the way lbgp's member sessions work.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from builders import (
    assume,
    attach_vpc,
    create_role,
    make_tgw,
    make_vpc,
    member,
    new_route_table,
    search,
    share_tgw,
    trust_policy,
    vpc_routes,
)
from conftest import ACCOUNT, Emulator, aws_or_gap, error_of

HOME = ACCOUNT  # owns the transit gateways
APP = "222222222222"  # owns VPCs
OTHER = "333333333333"


def refused(call: Any) -> bool:
    """The call was refused as AWS refuses an AssumeRole: AccessDenied, 403."""
    code, status, message = error_of(call)
    if code is None:
        return False
    assert (code, status) == ("AccessDenied", 403), (code, status, message)
    assert "is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::" in message, message
    return True


def attachments_in(ec2: Any, attachment_id: str) -> list[dict[str, Any]]:
    return ec2.describe_transit_gateway_attachments(TransitGatewayAttachmentIds=[attachment_id])[
        "TransitGatewayAttachments"
    ]


def vpc_attachments_in(ec2: Any, attachment_id: str) -> list[dict[str, Any]]:
    return ec2.describe_transit_gateway_vpc_attachments(TransitGatewayAttachmentIds=[attachment_id])[
        "TransitGatewayVpcAttachments"
    ]


def route_table_of(ec2: Any, vpc_id: str) -> str:
    return ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"][0][
        "RouteTableId"
    ]


# --------------------------------------------------------------------------- #
# sts:AssumeRole
# --------------------------------------------------------------------------- #


def test_18_assume_role_needs_an_existing_role(server: Emulator) -> None:
    missing = refused(lambda: assume(server, f"arn:aws:iam::{APP}:role/nobody"))
    aws_or_gap(server, missing, "AssumeRole of a role that does not exist is AccessDenied")
    # A role that exists and trusts the home account: credentials of its account.
    app = member(server, APP)
    identity = app.client("sts").get_caller_identity()
    assert (identity["Account"], identity["Arn"]) == (APP, f"arn:aws:sts::{APP}:assumed-role/lbgp-member/lbgp-test")
    vpc = app.ec2().create_vpc(CidrBlock="10.180.0.0/16")["Vpc"]
    assert vpc["OwnerId"] == APP
    assert vpc["VpcId"] not in [v["VpcId"] for v in server.ec2().describe_vpcs()["Vpcs"]]


def test_18_assume_role_follows_the_trust_policy(server: Emulator) -> None:
    # Trusting another account only.
    elsewhere = create_role(server, APP, "trusts-other", trust_policy(OTHER))
    # Trusting the home account, but a Deny for it wins.
    denied = create_role(
        server,
        APP,
        "denies-home",
        trust_policy(deny=[{"Effect": "Deny", "Principal": {"AWS": HOME}, "Action": "sts:AssumeRole"}]),
    )
    # Trusting one role of the home account (its sessions), by role ARN.
    hub_arn = create_role(server, HOME, "hub")
    by_role = create_role(server, APP, "trusts-hub", trust_policy(hub_arn))
    # Trusting the home account's roles named lbgp-* (aws:PrincipalArn).
    by_name = create_role(
        server,
        APP,
        "trusts-lbgp-roles",
        trust_policy(conditions={"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{HOME}:role/lbgp-*"}}),
    )
    injector_arn = create_role(server, HOME, "lbgp-vpc-route-injector")
    hub, injector = assume(server, hub_arn), assume(server, injector_arn)

    refusals = [
        refused(lambda: assume(server, elsewhere)),
        refused(lambda: assume(server, denied)),
        refused(lambda: assume(server, by_role)),  # the dummy user is not the hub role
        refused(lambda: assume(server, by_name, via=hub)),
    ]
    aws_or_gap(server, all(refusals), "AssumeRole refused unless the trust policy allows the caller")
    # Allowed: the hub's session by role ARN, an lbgp-* role by aws:PrincipalArn (role chaining).
    for role, via in ((by_role, hub), (by_name, injector)):
        identity = assume(server, role, via=via).client("sts").get_caller_identity()
        assert identity["Account"] == APP


def test_18_assume_role_checks_the_external_id(server: Emulator) -> None:
    role = create_role(
        server, APP, policy=trust_policy(conditions={"StringEquals": {"sts:ExternalId": "lbgp-7f3a"}})
    )
    refusals = [
        refused(lambda: assume(server, role)),
        refused(lambda: assume(server, role, external_id="lbgp-0000")),
    ]
    aws_or_gap(server, all(refusals), "AssumeRole without the ExternalId the trust policy requires is AccessDenied")
    assert assume(server, role, external_id="lbgp-7f3a").client("sts").get_caller_identity()["Account"] == APP


def test_18_access_denied_names_the_caller_and_the_role(emu: Emulator) -> None:
    role = f"arn:aws:iam::{OTHER}:role/lbgp-member"
    code, status, message = error_of(lambda: assume(emu, role))
    assert (code, status) == ("AccessDenied", 403)
    assert message == (
        f"User: arn:aws:iam::{HOME}:user/moto is not authorized to perform: sts:AssumeRole on resource: {role}"
    )
    # A role session is named by its session ARN.
    app = member(emu, APP)
    code, _, message = error_of(lambda: assume(emu, role, via=app))
    assert code == "AccessDenied"
    assert message.startswith(f"User: arn:aws:sts::{APP}:assumed-role/lbgp-member/lbgp-test is not authorized")


# --------------------------------------------------------------------------- #
# A transit gateway shared through RAM
# --------------------------------------------------------------------------- #


def test_18_a_shared_tgw_is_attached_by_the_other_account_and_accepted_by_its_owner(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2)  # AutoAcceptSharedAttachments: disable (AWS's default)
    tgw_id, default = tgw["TransitGatewayId"], tgw["Options"]["AssociationDefaultRouteTableId"]
    share_tgw(server, tgw, APP)
    app_ec2 = member(server, APP).ec2()
    vpc, subnet = make_vpc(app_ec2, "10.181.0.0/16")
    code, _, message = error_of(lambda: attach_vpc(app_ec2, tgw_id, vpc, subnet))
    aws_or_gap(server, code is None, f"a VPC of the account a TGW is shared with can attach to it ({code}: {message})")
    if not server.patched:
        return
    (att,) = [a["TransitGatewayAttachmentId"] for a in app_ec2.describe_transit_gateway_attachments()["TransitGatewayAttachments"]]

    # Both accounts list it, pending the owner's acceptance.
    for client in (ec2, app_ec2):
        (seen,) = attachments_in(client, att)
        assert (seen["TransitGatewayId"], seen["ResourceId"], seen["ResourceType"]) == (tgw_id, vpc, "vpc")
        assert (seen["TransitGatewayOwnerId"], seen["ResourceOwnerId"]) == (HOME, APP)
        assert seen["State"] == "pendingAcceptance"
        assert "Association" not in seen
        (vpc_view,) = vpc_attachments_in(client, att)
        assert (vpc_view["VpcId"], vpc_view["VpcOwnerId"], vpc_view["SubnetIds"]) == (vpc, APP, [subnet])
    assert search(ec2, default)["Routes"] == []
    # Neither its VPC's account accepts it, nor a VPC route to the TGW is possible yet.
    code, _, _ = error_of(lambda: app_ec2.accept_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=att))
    assert code == "InvalidTransitGatewayAttachmentID.NotFound"
    code, _, _ = error_of(
        lambda: app_ec2.create_route(
            RouteTableId=route_table_of(app_ec2, vpc), DestinationCidrBlock="10.0.0.0/8", TransitGatewayId=tgw_id
        )
    )
    assert code == "InvalidTransitGatewayID.NotFound"

    # The owner accepts: available on both sides, associated with and
    # propagating to the default route table (the TGW's options).
    accepted = ec2.accept_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=att)["TransitGatewayVpcAttachment"]
    assert accepted["State"] == "available"
    (seen,) = attachments_in(ec2, att)
    assert seen["Association"] == {"TransitGatewayRouteTableId": default, "State": "associated"}
    assert attachments_in(app_ec2, att)[0]["State"] == "available"
    (route,) = search(ec2, default)["Routes"]
    assert (route["DestinationCidrBlock"], route["Type"], route["State"]) == ("10.181.0.0/16", "propagated", "active")
    assert route["TransitGatewayAttachments"] == [{"ResourceId": vpc, "TransitGatewayAttachmentId": att, "ResourceType": "vpc"}]
    code, _, _ = error_of(lambda: ec2.accept_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=att))
    assert code == "IncorrectState"


def test_18_without_a_share_the_attachment_is_refused(server: Emulator) -> None:
    """Already right in moto: another account's TGW is not found unless shared."""
    ec2 = server.ec2()
    tgw = make_tgw(ec2, AutoAcceptSharedAttachments="enable")
    app_ec2 = member(server, APP).ec2()
    vpc, subnet = make_vpc(app_ec2, "10.182.0.0/16")

    def refusal() -> tuple[str | None, str]:
        code, _, message = error_of(lambda: attach_vpc(app_ec2, tgw["TransitGatewayId"], vpc, subnet))
        return code, message

    expected = ("InvalidTransitGatewayID.NotFound", f"Transit Gateway {tgw['TransitGatewayId']} was deleted or does not exist.")
    assert refusal() == expected  # not shared
    share = share_tgw(server, tgw, OTHER)
    assert refusal() == expected  # shared with another account
    server.client("ram").delete_resource_share(resourceShareArn=share)
    share_tgw(server, make_tgw(ec2), APP)  # another TGW shared
    assert refusal() == expected


def test_18_auto_accepted_attachments_propagate_into_the_owners_tables(emu: Emulator) -> None:
    ec2 = emu.ec2()
    tgw = make_tgw(ec2, association="disable", propagation="disable", AutoAcceptSharedAttachments="enable")
    tgw_id = tgw["TransitGatewayId"]
    share_tgw(emu, tgw, APP)
    app_ec2 = member(emu, APP).ec2()
    vpc, subnet = make_vpc(app_ec2, "10.183.0.0/16")
    emu.set_fidelity(attachment_pending_seconds=0.4)  # behaviour 1's timeline applies
    att = attach_vpc(app_ec2, tgw_id, vpc, subnet)
    assert [a["State"] for a in attachments_in(ec2, att) + attachments_in(app_ec2, att)] == ["pending", "pending"]
    time.sleep(0.5)
    assert [a["State"] for a in attachments_in(ec2, att) + attachments_in(app_ec2, att)] == ["available", "available"]

    # The owner associates and propagates it, in its own tables.
    home_table, spoke_table = new_route_table(ec2, tgw_id), new_route_table(ec2, tgw_id)
    ec2.associate_transit_gateway_route_table(TransitGatewayRouteTableId=spoke_table, TransitGatewayAttachmentId=att)
    ec2.enable_transit_gateway_route_table_propagation(TransitGatewayRouteTableId=home_table, TransitGatewayAttachmentId=att)
    assert attachments_in(ec2, att)[0]["Association"]["TransitGatewayRouteTableId"] == spoke_table
    # The VPC's account has no say in the owner's route tables.
    code, _, _ = error_of(
        lambda: app_ec2.enable_transit_gateway_route_table_propagation(
            TransitGatewayRouteTableId=spoke_table, TransitGatewayAttachmentId=att
        )
    )
    assert code == "InvalidRouteTableID.NotFound"
    # Either account may modify it: one attachment.
    app_ec2.modify_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=att, Options={"ApplianceModeSupport": "enable"})
    for client in (ec2, app_ec2):
        (seen,) = vpc_attachments_in(client, att)
        assert (seen["Options"]["ApplianceModeSupport"], seen["State"]) == ("enable", "available")
    # Its CIDRs propagate, and follow the VPC; static routes point at it.
    app_ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock="10.184.0.0/16")
    ec2.create_transit_gateway_route(TransitGatewayRouteTableId=spoke_table, DestinationCidrBlock="0.0.0.0/0", TransitGatewayAttachmentId=att)
    routes = search(ec2, home_table)["Routes"]
    assert [(r["DestinationCidrBlock"], r["Type"]) for r in routes] == [("10.183.0.0/16", "propagated"), ("10.184.0.0/16", "propagated")]
    assert {r["TransitGatewayAttachments"][0]["ResourceId"] for r in routes} == {vpc}
    found = search(ec2, home_table, {"attachment.resource-id": [vpc]})["Routes"]
    assert len(found) == 2

    # The owner deletes it: gone from both accounts, its routes withdrawn or blackholed.
    ec2.delete_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=att)
    assert attachments_in(ec2, att) == [] and attachments_in(app_ec2, att) == []
    assert search(ec2, home_table)["Routes"] == []
    (static,) = search(ec2, spoke_table)["Routes"]
    assert static["State"] == "blackhole"
    # It can be attached again.
    attach_vpc(app_ec2, tgw_id, vpc, subnet)


def test_18_accept_and_reject_vpc_attachments(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2)
    own_vpc, own_subnet = make_vpc(ec2, "10.185.0.0/16")
    own = attach_vpc(ec2, tgw["TransitGatewayId"], own_vpc, own_subnet)  # same account: available at once
    code, status, _ = error_of(lambda: ec2.accept_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=own))
    aws_or_gap(server, (code, status) == ("IncorrectState", 400), "AcceptTransitGatewayVpcAttachment is implemented")
    if not server.patched:
        assert status == 500  # moto: not implemented
        return
    code, _, _ = error_of(
        lambda: ec2.reject_transit_gateway_vpc_attachment(TransitGatewayAttachmentId="tgw-attach-0123456789abcdef0")
    )
    assert code == "InvalidTransitGatewayAttachmentID.NotFound"

    share_tgw(server, tgw, APP)
    app_ec2 = member(server, APP).ec2()
    vpc, subnet = make_vpc(app_ec2, "10.186.0.0/16")
    att = attach_vpc(app_ec2, tgw["TransitGatewayId"], vpc, subnet)
    rejected = ec2.reject_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=att)["TransitGatewayVpcAttachment"]
    assert rejected["State"] == "rejected"
    assert [a["State"] for a in attachments_in(ec2, att) + attachments_in(app_ec2, att)] == ["rejected", "rejected"]
    code, _, _ = error_of(lambda: ec2.accept_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=att))
    assert code == "IncorrectState"
    assert search(ec2, tgw["Options"]["PropagationDefaultRouteTableId"])["Routes"] == [
        {
            "DestinationCidrBlock": "10.185.0.0/16",
            "TransitGatewayAttachments": [{"ResourceId": own_vpc, "TransitGatewayAttachmentId": own, "ResourceType": "vpc"}],
            "Type": "propagated",
            "State": "active",
        }
    ]
    # A rejected attachment does not block a new request; the VPC's account may delete it.
    again = attach_vpc(app_ec2, tgw["TransitGatewayId"], vpc, subnet)
    app_ec2.delete_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=again)
    assert attachments_in(ec2, again) == [] and attachments_in(app_ec2, again) == []


def test_18_vpc_routes_to_the_shared_tgw_once_attached(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2, AutoAcceptSharedAttachments="enable")
    tgw_id = tgw["TransitGatewayId"]
    share_tgw(server, tgw, APP)
    app_ec2 = member(server, APP).ec2()
    vpc, subnet = make_vpc(app_ec2, "10.187.0.0/16")
    error_of(lambda: attach_vpc(app_ec2, tgw_id, vpc, subnet))  # refused by plain moto
    rtb = route_table_of(app_ec2, vpc)
    app_ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="10.0.0.0/8", TransitGatewayId=tgw_id)
    route = vpc_routes(app_ec2, rtb)["10.0.0.0/8"]
    aws_or_gap(
        server,
        (route.get("TransitGatewayId"), route["State"]) == (tgw_id, "active"),
        "a VPC route to the shared, attached TGW keeps its target",
    )
    if not server.patched:
        return
    app_ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="172.16.0.0/12", TransitGatewayId=tgw_id)
    own_tgw = make_tgw(app_ec2)["TransitGatewayId"]
    app_ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="172.16.0.0/12", TransitGatewayId=own_tgw)
    app_ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="172.16.0.0/12", TransitGatewayId=tgw_id)
    assert vpc_routes(app_ec2, rtb)["172.16.0.0/12"]["TransitGatewayId"] == tgw_id
    # A second one is RouteAlreadyExists, as for any target.
    code, _, _ = error_of(
        lambda: app_ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="10.0.0.0/8", TransitGatewayId=tgw_id)
    )
    assert code == "RouteAlreadyExists"
    # The attachment deleted, the routes toward the TGW are blackholes.
    (att,) = app_ec2.describe_transit_gateway_vpc_attachments()["TransitGatewayVpcAttachments"]
    app_ec2.delete_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=att["TransitGatewayAttachmentId"])
    routes = vpc_routes(app_ec2, rtb)
    assert {routes[c]["State"] for c in ("10.0.0.0/8", "172.16.0.0/12")} == {"blackhole"}


def test_18_vpc_routes_to_an_unreachable_tgw_are_refused(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2)
    tgw_id = tgw["TransitGatewayId"]
    app_ec2 = member(server, APP).ec2()
    vpc, subnet = make_vpc(app_ec2, "10.188.0.0/16")
    rtb = route_table_of(app_ec2, vpc)

    def refusal(destination: str, target: str) -> str | None:
        code, _, message = error_of(
            lambda: app_ec2.create_route(RouteTableId=rtb, DestinationCidrBlock=destination, TransitGatewayId=target)
        )
        if code is not None:
            assert (code, message) == ("InvalidTransitGatewayID.NotFound", f"The transitGateway ID '{target}' does not exist")
        return code

    codes = [refusal("10.1.0.0/16", tgw_id)]  # another account's TGW, not shared
    share_tgw(server, tgw, APP)
    codes.append(refusal("10.2.0.0/16", tgw_id))  # shared, not attached
    error_of(lambda: attach_vpc(app_ec2, tgw_id, vpc, subnet))  # pendingAcceptance
    codes.append(refusal("10.3.0.0/16", tgw_id))  # not accepted yet
    codes.append(refusal("10.4.0.0/16", "tgw-0123456789abcdef0"))  # no such TGW
    aws_or_gap(server, all(codes), "a VPC route to a TGW the VPC is not attached to is InvalidTransitGatewayID.NotFound")
    if server.patched:
        # ReplaceRoute too.
        local_tgw = make_tgw(app_ec2)["TransitGatewayId"]
        app_ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="10.5.0.0/16", TransitGatewayId=local_tgw)
        code, _, _ = error_of(
            lambda: app_ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="10.5.0.0/16", TransitGatewayId=tgw_id)
        )
        assert code == "InvalidTransitGatewayID.NotFound"
        assert vpc_routes(app_ec2, rtb)["10.5.0.0/16"]["TransitGatewayId"] == local_tgw


def test_18_the_shared_tgw_is_listed_in_the_other_account(server: Emulator) -> None:
    ec2 = server.ec2()
    shared = make_tgw(ec2, tags={"lbgp:mesh": "prod"})
    shared_id = shared["TransitGatewayId"]
    make_tgw(ec2)  # not shared
    share_tgw(server, shared, APP)
    app = member(server, APP)
    own = make_tgw(app.ec2())["TransitGatewayId"]

    def listed(client: Any, **kwargs: Any) -> list[tuple[str, str]]:
        found = client.describe_transit_gateways(**kwargs)["TransitGateways"]
        return sorted((t["TransitGatewayId"], t["OwnerId"]) for t in found)

    aws_or_gap(
        server,
        listed(app.ec2()) == sorted([(own, APP), (shared_id, HOME)]),
        "DescribeTransitGateways lists the TGWs shared with the account, with their owner's id",
    )
    if not server.patched:
        return
    assert listed(app.ec2(), TransitGatewayIds=[shared_id]) == [(shared_id, HOME)]
    assert listed(app.ec2(), TransitGatewayIds=[own]) == [(own, APP)]
    assert listed(app.ec2(), Filters=[{"Name": "owner-id", "Values": [HOME]}]) == [(shared_id, HOME)]
    assert listed(app.ec2(), Filters=[{"Name": "owner-id", "Values": [APP]}]) == [(own, APP)]
    (seen,) = app.ec2().describe_transit_gateways(TransitGatewayIds=[shared_id])["TransitGateways"]
    assert seen["Options"]["AutoAcceptSharedAttachments"] == "disable"
    # Not in an account it is not shared with, nor in another region.
    assert listed(member(server, OTHER).ec2()) == []
    assert listed(app.ec2("eu-west-1")) == []


def test_18_attachment_owner_filters(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2)
    vpc, subnet = make_vpc(ec2, "10.189.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)

    def ids(name: str, value: str) -> list[str]:
        found = ec2.describe_transit_gateway_attachments(Filters=[{"Name": name, "Values": [value]}])
        return [a["TransitGatewayAttachmentId"] for a in found["TransitGatewayAttachments"]]

    assert ids("resource-owner-id", HOME) == [att]
    aws_or_gap(
        server,
        ids("resource-owner-id", APP) == [] and ids("transit-gateway-owner-id", APP) == []
        and ids("transit-gateway-owner-id", HOME) == [att],
        "DescribeTransitGatewayAttachments filters resource-owner-id / transit-gateway-owner-id",
    )


def test_18_sharing_with_the_organisation(emu: Emulator) -> None:
    organizations = emu.client("organizations")
    org = organizations.create_organization(FeatureSet="ALL")["Organization"]
    status = organizations.create_account(AccountName="app", Email="app@example.com")["CreateAccountStatus"]
    account = status["AccountId"]
    ec2 = emu.ec2()
    tgw = make_tgw(ec2, AutoAcceptSharedAttachments="enable")
    share_tgw(emu, tgw, org["Arn"])
    create_role(emu, account)
    app_ec2 = assume(emu, f"arn:aws:iam::{account}:role/lbgp-member").ec2()
    vpc, subnet = make_vpc(app_ec2, "10.190.0.0/16")
    att = attach_vpc(app_ec2, tgw["TransitGatewayId"], vpc, subnet)
    (seen,) = attachments_in(ec2, att)
    assert (seen["ResourceOwnerId"], seen["State"]) == (account, "available")
    # Shared with an organisational unit: the accounts under it.
    root = organizations.list_roots()["Roots"][0]["Id"]
    ou = organizations.create_organizational_unit(ParentId=root, Name="apps")["OrganizationalUnit"]
    by_ou = make_tgw(ec2, AutoAcceptSharedAttachments="enable")
    share_tgw(emu, by_ou, ou["Arn"])
    code, _, _ = error_of(lambda: attach_vpc(app_ec2, by_ou["TransitGatewayId"], vpc, subnet))
    assert code == "InvalidTransitGatewayID.NotFound"  # not under the OU yet
    organizations.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou["Id"])
    attach_vpc(app_ec2, by_ou["TransitGatewayId"], vpc, subnet)
    # An account outside the organisation does not see it.
    outsider = member(emu, OTHER).ec2()
    vpc, subnet = make_vpc(outsider, "10.191.0.0/16")
    code, _, _ = error_of(lambda: attach_vpc(outsider, tgw["TransitGatewayId"], vpc, subnet))
    assert code == "InvalidTransitGatewayID.NotFound"
    # aws:PrincipalOrgID: a role trusting the organisation's accounts only.
    role = create_role(
        emu, OTHER, "org-only", trust_policy("*", conditions={"StringEquals": {"aws:PrincipalOrgID": org["Id"]}})
    )
    # The home account is the organisation's management account.
    assert assume(emu, role).client("sts").get_caller_identity()["Account"] == OTHER
    outsider_session = assume(emu, f"arn:aws:iam::{OTHER}:role/lbgp-member")
    with pytest.raises(ClientError) as refusal:
        assume(emu, role, via=outsider_session)
    assert refusal.value.response["Error"]["Code"] == "AccessDenied"
