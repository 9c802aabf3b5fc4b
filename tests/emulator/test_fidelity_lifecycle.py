"""Fidelity tests: behaviours that take time - 1 (attachment and TGW states),
2 (TGW route states), 3 (read-after-write delay).

Their durations are settings (``/_lbgp/fidelity``), 0 by default; each test
sets a fraction of a second and sleeps past it. On the plain server the gap
(the final state at once) shows before any sleep, so those cases stop early.
"""

from __future__ import annotations

import time
from typing import Any

from conftest import REGIONS, Emulator, aws_or_gap, error_of
from builders import attach_vpc, cidrs, make_tgw, make_vpc, new_route_table, peer, search, vpc_routes

STEP = 0.5  # each timed state lasts this long; sleeps are STEP + MARGIN
MARGIN = 0.15


def attachment(ec2: Any, att: str) -> dict[str, Any] | None:
    found = ec2.describe_transit_gateway_attachments(
        Filters=[{"Name": "transit-gateway-attachment-id", "Values": [att]}]
    )["TransitGatewayAttachments"]
    return found[0] if found else None


def state_of(ec2: Any, att: str) -> str | None:
    found = attachment(ec2, att)
    return found["State"] if found else None


def tgw_state(ec2: Any, tgw: str) -> str:
    return ec2.describe_transit_gateways(TransitGatewayIds=[tgw])["TransitGateways"][0]["State"]


# --------------------------------------------------------------------------- #
# 1. Attachment and TGW states
# --------------------------------------------------------------------------- #


def test_1_new_vpc_attachment_is_pending_then_available(server: Emulator) -> None:
    server.set_fidelity(attachment_pending_seconds=STEP)
    ec2 = server.ec2()
    tgw = make_tgw(ec2)
    vpc, subnet = make_vpc(ec2, "10.10.0.0/16")
    created = ec2.create_transit_gateway_vpc_attachment(
        TransitGatewayId=tgw["TransitGatewayId"], VpcId=vpc, SubnetIds=[subnet]
    )["TransitGatewayVpcAttachment"]
    att = created["TransitGatewayAttachmentId"]
    aws_or_gap(server, created["State"] == "pending", "a new VPC attachment is pending")
    if not server.patched:
        return
    table = tgw["Options"]["PropagationDefaultRouteTableId"]
    pending = attachment(ec2, att)
    assert pending["State"] == "pending"
    assert pending["Association"]["State"] == "associating"
    assert search(ec2, table)["Routes"] == []  # nothing propagates yet
    time.sleep(STEP + MARGIN)
    ready = attachment(ec2, att)
    assert ready["State"] == "available" and ready["Association"]["State"] == "associated"
    assert cidrs(search(ec2, table)["Routes"]) == ["10.10.0.0/16"]


def test_1_modified_vpc_attachment_is_modifying_and_keeps_forwarding(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2)
    table = tgw["Options"]["AssociationDefaultRouteTableId"]
    vpc, subnet = make_vpc(ec2, "10.11.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    ec2.create_transit_gateway_route(
        TransitGatewayRouteTableId=table, DestinationCidrBlock="172.16.0.0/12", TransitGatewayAttachmentId=att
    )
    server.set_fidelity(attachment_modifying_seconds=STEP)
    modified = ec2.modify_transit_gateway_vpc_attachment(
        TransitGatewayAttachmentId=att, Options={"DnsSupport": "disable"}
    )["TransitGatewayVpcAttachment"]
    aws_or_gap(server, modified["State"] == "modifying", "ModifyTransitGatewayVpcAttachment -> modifying")
    if not server.patched:
        return
    during = attachment(ec2, att)
    assert during["State"] == "modifying"
    assert during["Association"] == {"State": "associated", "TransitGatewayRouteTableId": table}
    routes = {r["DestinationCidrBlock"]: (r["Type"], r["State"]) for r in search(ec2, table)["Routes"]}
    assert routes == {"10.11.0.0/16": ("propagated", "active"), "172.16.0.0/12": ("static", "active")}
    code, _, _ = error_of(lambda: ec2.modify_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=att))
    assert code == "IncorrectState"
    time.sleep(STEP + MARGIN)
    assert state_of(ec2, att) == "available"


def test_1_modify_of_an_unknown_attachment_or_tgw_is_not_found(server: Emulator) -> None:
    ec2 = server.ec2()
    att = error_of(lambda: ec2.modify_transit_gateway_vpc_attachment(TransitGatewayAttachmentId="tgw-attach-0123456789abcdef0"))
    tgw = error_of(lambda: ec2.modify_transit_gateway(TransitGatewayId="tgw-0123456789abcdef0", Description="x"))
    aws_or_gap(
        server,
        att[:2] == ("InvalidTransitGatewayAttachmentID.NotFound", 400) and tgw[:2] == ("InvalidTransitGatewayID.NotFound", 400),
        "Modify* of an unknown id is NotFound (moto: HTTP 500)",
    )


def test_1_deleted_vpc_attachment_is_deleting_then_listed_as_deleted(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2, propagation="disable")
    table = tgw["Options"]["AssociationDefaultRouteTableId"]
    vpc, subnet = make_vpc(ec2, "10.12.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    ec2.create_transit_gateway_route(
        TransitGatewayRouteTableId=table, DestinationCidrBlock="172.16.0.0/12", TransitGatewayAttachmentId=att
    )
    server.set_fidelity(attachment_deleting_seconds=STEP, attachment_deleted_visible_seconds=STEP)
    deleted = ec2.delete_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=att)["TransitGatewayVpcAttachment"]
    aws_or_gap(
        server,
        deleted["State"] == "deleting" and state_of(ec2, att) == "deleting",
        "a deleted VPC attachment is deleting, and still listed",
    )
    if not server.patched:
        return
    assert "Association" not in attachment(ec2, att)
    (route,) = search(ec2, table)["Routes"]
    assert route["State"] == "blackhole"
    time.sleep(STEP + MARGIN)
    assert state_of(ec2, att) == "deleted"
    listed = ec2.describe_transit_gateway_vpc_attachments(
        Filters=[{"Name": "state", "Values": ["deleted"]}]
    )["TransitGatewayVpcAttachments"]
    assert [a["TransitGatewayAttachmentId"] for a in listed] == [att]
    # A new attachment of the same VPC is allowed meanwhile.
    attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    time.sleep(STEP + MARGIN)
    assert state_of(ec2, att) is None


def test_1_peering_attachment_states(server: Emulator) -> None:
    us, eu = REGIONS[0], REGIONS[1]
    ec2, ec2_eu = server.ec2(us), server.ec2(eu)
    tgw, tgw_eu = make_tgw(ec2)["TransitGatewayId"], make_tgw(ec2_eu)["TransitGatewayId"]
    server.set_fidelity(
        peering_initiating_seconds=STEP, attachment_pending_seconds=STEP, attachment_deleting_seconds=STEP
    )
    att = peer(ec2, tgw, tgw_eu, eu)
    aws_or_gap(server, state_of(ec2, att) == "initiatingRequest", "a new peering attachment is initiatingRequest")
    if not server.patched:
        return
    assert state_of(ec2_eu, att) == "initiatingRequest"
    code, _, _ = error_of(lambda: ec2_eu.accept_transit_gateway_peering_attachment(TransitGatewayAttachmentId=att))
    assert code == "IncorrectState"
    time.sleep(STEP + MARGIN)
    assert (state_of(ec2, att), state_of(ec2_eu, att)) == ("pendingAcceptance", "pendingAcceptance")
    accepted = ec2_eu.accept_transit_gateway_peering_attachment(TransitGatewayAttachmentId=att)
    assert accepted["TransitGatewayPeeringAttachment"]["State"] == "pending"
    assert (state_of(ec2, att), state_of(ec2_eu, att)) == ("pending", "pending")
    time.sleep(STEP + MARGIN)
    assert (state_of(ec2, att), state_of(ec2_eu, att)) == ("available", "available")
    ec2.delete_transit_gateway_peering_attachment(TransitGatewayAttachmentId=att)
    assert (state_of(ec2, att), state_of(ec2_eu, att)) == ("deleting", "deleting")
    time.sleep(STEP + MARGIN)
    # Deleted peering attachments stay listed (moto's behaviour, kept).
    assert (state_of(ec2, att), state_of(ec2_eu, att)) == ("deleted", "deleted")


def test_1_deleted_peering_is_unlisted_after_the_visible_time(emu: Emulator) -> None:
    us, eu = REGIONS[0], REGIONS[1]
    ec2, ec2_eu = emu.ec2(us), emu.ec2(eu)
    att = peer(ec2, make_tgw(ec2)["TransitGatewayId"], make_tgw(ec2_eu)["TransitGatewayId"], eu)
    ec2_eu.accept_transit_gateway_peering_attachment(TransitGatewayAttachmentId=att)
    emu.set_fidelity(attachment_deleted_visible_seconds=STEP)
    ec2_eu.delete_transit_gateway_peering_attachment(TransitGatewayAttachmentId=att)
    assert (state_of(ec2, att), state_of(ec2_eu, att)) == ("deleted", "deleted")
    time.sleep(STEP + MARGIN)
    assert (state_of(ec2, att), state_of(ec2_eu, att)) == (None, None)


def test_1_tgw_is_pending_then_available_and_modifying_after_modify(server: Emulator) -> None:
    server.set_fidelity(tgw_pending_seconds=STEP, tgw_modifying_seconds=STEP)
    ec2 = server.ec2()
    created = make_tgw(ec2)
    tgw = created["TransitGatewayId"]
    aws_or_gap(server, created["State"] == "pending" and tgw_state(ec2, tgw) == "pending", "a new TGW is pending")
    if not server.patched:
        return
    time.sleep(STEP + MARGIN)
    assert tgw_state(ec2, tgw) == "available"
    modified = ec2.modify_transit_gateway(TransitGatewayId=tgw, Description="renamed")["TransitGateway"]
    assert modified["State"] == "modifying" and tgw_state(ec2, tgw) == "modifying"
    time.sleep(STEP + MARGIN)
    assert tgw_state(ec2, tgw) == "available"


# --------------------------------------------------------------------------- #
# 2. TGW route states
# --------------------------------------------------------------------------- #


def test_2_new_static_route_is_pending_then_active(server: Emulator) -> None:
    server.set_fidelity(tgw_route_pending_seconds=STEP)
    ec2 = server.ec2()
    table = make_tgw(ec2)["Options"]["AssociationDefaultRouteTableId"]
    created = ec2.create_transit_gateway_route(
        TransitGatewayRouteTableId=table, DestinationCidrBlock="10.20.0.0/16", Blackhole=True
    )["Route"]
    pending = cidrs(search(ec2, table, {"state": ["pending"]})["Routes"])
    aws_or_gap(server, created["State"] == "pending" and pending == ["10.20.0.0/16"], "a new TGW route is pending")
    if not server.patched:
        return
    assert search(ec2, table)["Routes"] == []  # state active | blackhole
    time.sleep(STEP + MARGIN)
    (route,) = search(ec2, table)["Routes"]
    assert route["State"] == "blackhole"


def test_2_deleted_static_route_stays_visible_as_deleted(server: Emulator) -> None:
    server.set_fidelity(tgw_route_deleted_visible_seconds=STEP)
    ec2 = server.ec2()
    tgw = make_tgw(ec2, propagation="disable")
    table = tgw["Options"]["AssociationDefaultRouteTableId"]
    vpc, subnet = make_vpc(ec2, "10.21.0.0/16")
    att = attach_vpc(ec2, tgw["TransitGatewayId"], vpc, subnet)
    ec2.create_transit_gateway_route(
        TransitGatewayRouteTableId=table, DestinationCidrBlock="10.22.0.0/16", TransitGatewayAttachmentId=att
    )
    ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.22.0.0/16")
    deleted = search(ec2, table, {"state": ["deleted"]})["Routes"]
    aws_or_gap(
        server,
        [(r["DestinationCidrBlock"], r["State"], r["Type"]) for r in deleted] == [("10.22.0.0/16", "deleted", "static")],
        "a deleted TGW route is still found, deleted",
    )
    if not server.patched:
        return
    assert search(ec2, table)["Routes"] == []
    assert error_of(
        lambda: ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.22.0.0/16")
    )[0] == "InvalidRoute.NotFound"
    time.sleep(STEP + MARGIN)
    assert search(ec2, table, {"state": ["deleted"]})["Routes"] == []
    # Deleting and re-creating: the new route replaces the deleted one.
    ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.23.0.0/16", Blackhole=True)
    ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.23.0.0/16")
    ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.23.0.0/16", Blackhole=True)
    states = [r["State"] for r in search(ec2, table, {"state": ["active", "blackhole", "deleted"]})["Routes"]]
    assert states == ["blackhole"]


# --------------------------------------------------------------------------- #
# 3. Read-after-write delay
# --------------------------------------------------------------------------- #


def test_3_describe_route_tables_lags_route_writes(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2)["TransitGatewayId"]
    other = make_tgw(ec2)["TransitGatewayId"]
    vpc, _ = make_vpc(ec2, "10.30.0.0/16")
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    server.set_fidelity(read_after_write_seconds=STEP)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="10.0.0.0/8", TransitGatewayId=tgw)
    aws_or_gap(server, "10.0.0.0/8" not in vpc_routes(ec2, table), "a new VPC route is not seen at once")
    if not server.patched:
        return
    # Writes see the current table.
    code, _, _ = error_of(lambda: ec2.create_route(RouteTableId=table, DestinationCidrBlock="10.0.0.0/8", TransitGatewayId=tgw))
    assert code == "RouteAlreadyExists"
    time.sleep(STEP + MARGIN)
    assert vpc_routes(ec2, table)["10.0.0.0/8"]["TransitGatewayId"] == tgw
    ec2.replace_route(RouteTableId=table, DestinationCidrBlock="10.0.0.0/8", TransitGatewayId=other)
    assert vpc_routes(ec2, table)["10.0.0.0/8"]["TransitGatewayId"] == tgw
    time.sleep(STEP + MARGIN)
    assert vpc_routes(ec2, table)["10.0.0.0/8"]["TransitGatewayId"] == other
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="10.0.0.0/8")
    assert "10.0.0.0/8" in vpc_routes(ec2, table)
    time.sleep(STEP + MARGIN)
    assert "10.0.0.0/8" not in vpc_routes(ec2, table)


def test_3_search_transit_gateway_routes_lags_route_writes(server: Emulator) -> None:
    ec2 = server.ec2()
    tgw = make_tgw(ec2, propagation="disable")
    table = new_route_table(ec2, tgw["TransitGatewayId"])
    server.set_fidelity(read_after_write_seconds=STEP)
    ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.31.0.0/16", Blackhole=True)
    aws_or_gap(server, search(ec2, table)["Routes"] == [], "a new TGW route is not seen at once")
    if not server.patched:
        return
    time.sleep(STEP + MARGIN)
    assert cidrs(search(ec2, table)["Routes"]) == ["10.31.0.0/16"]
    ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.31.0.0/16")
    assert cidrs(search(ec2, table)["Routes"]) == ["10.31.0.0/16"]
    time.sleep(STEP + MARGIN)
    assert search(ec2, table)["Routes"] == []
