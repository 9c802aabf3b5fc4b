"""Behaviour 1: the states of attachments and transit gateways change with
time, as in AWS, instead of being ``available`` at once.

AWS lists these states (API reference, TransitGatewayVpcAttachment /
TransitGatewayPeeringAttachment / TransitGateway ``State``:
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TransitGatewayVpcAttachment.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TransitGateway.html)
but not how long each lasts, so every duration is a setting
(``/_lbgp/fidelity``), 0 by default (the last state at once, as before):

* VPC attachment: ``pending`` (``attachment_pending_seconds``) then
  ``available``; after ModifyTransitGatewayVpcAttachment ``modifying``
  (``attachment_modifying_seconds``) then ``available`` - it keeps its
  association, propagations and routes meanwhile; after deletion
  ``deleting`` (``attachment_deleting_seconds``) then ``deleted``, still
  listed while ``deleting`` and, with ``attachment_deleted_visible_seconds``
  set, for that long once ``deleted``.
* peering attachment: ``initiatingRequest`` (``peering_initiating_seconds``)
  then ``pendingAcceptance``; once accepted ``pending``
  (``attachment_pending_seconds``) then ``available``; deleted: ``deleting``
  then ``deleted`` (listed as ``deleted`` for good, as moto does, unless
  ``attachment_deleted_visible_seconds`` is set).
* transit gateway: ``pending`` (``tgw_pending_seconds``) then ``available``;
  after ModifyTransitGateway ``modifying`` (``tgw_modifying_seconds``).

While an attachment is ``pending`` its association reads ``associating``
and it propagates nothing; routes to a ``deleting`` attachment are
blackholes. ModifyTransitGatewayVpcAttachment / ModifyTransitGateway of an
unknown id, which crashed moto (HTTP 500), are ``...NotFound``; modifying an
attachment that is not ``available``, accepting a peering that is still
``initiatingRequest`` and deleting an attachment already ``deleting`` are
``IncorrectState`` (only reachable with durations above 0).
"""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import EC2ClientError, InvalidTransitGatewayID
from moto.ec2.models.transit_gateway import TransitGateway, TransitGatewayBackend
from moto.ec2.models.transit_gateway_attachments import (
    TransitGatewayAttachment,
    TransitGatewayAttachmentBackend,
)

from ._common import _patch, now, phase_ends, set_phases, settings, timed_state_property
from .consistency import TICKS
from .tgw_model import _attachment_or_error


def _incorrect_state(attachment_id: str, state: str) -> EC2ClientError:
    return EC2ClientError(
        "IncorrectState",
        f"Transit Gateway Attachment {attachment_id} is in invalid state {state}.",
    )


def _primary(attachment: Any) -> Any:
    """The object that holds a peering attachment's shared state."""
    return getattr(attachment, "_primary", attachment)


def _schedule_purge(attachment: Any, keep: float) -> None:
    primary = _primary(attachment)
    primary.__dict__["_lbgp_purge_at"] = (phase_ends(primary) or now()) + keep


def purge_deleted_attachments(backend: Any) -> None:
    """Tick: drop the attachments whose time as ``deleted`` is over."""
    attachments = getattr(backend, "transit_gateway_attachments", None)
    if not attachments:
        return
    t = now()
    for attachment_id, attachment in list(attachments.items()):
        purge_at = _primary(attachment).__dict__.get("_lbgp_purge_at")
        if purge_at is not None and purge_at <= t and attachment.state == "deleted":
            attachments.pop(attachment_id, None)


def patch_attachment_lifecycle() -> None:
    """Behaviour 1: timed states of attachments and transit gateways."""
    _patch(TransitGatewayAttachment, "state", timed_state_property("available"))
    _patch(TransitGateway, "state", timed_state_property("available"))
    TICKS.append(purge_deleted_attachments)

    # -- VPC attachments ----------------------------------------------------
    original_create = TransitGatewayAttachmentBackend.create_transit_gateway_vpc_attachment

    def create_transit_gateway_vpc_attachment(self: Any, *args: Any, **kwargs: Any) -> Any:
        attachment = original_create(self, *args, **kwargs)
        set_phases(attachment, [("pending", settings().attachment_pending_seconds), ("available", None)])
        return attachment

    _patch(
        TransitGatewayAttachmentBackend,
        "create_transit_gateway_vpc_attachment",
        create_transit_gateway_vpc_attachment,
    )

    original_modify = TransitGatewayAttachmentBackend.modify_transit_gateway_vpc_attachment

    def modify_transit_gateway_vpc_attachment(
        self: Any,
        transit_gateway_attachment_id: str,
        add_subnet_ids: list[str] | None = None,
        options: dict[str, str] | None = None,
        remove_subnet_ids: list[str] | None = None,
    ) -> Any:
        attachment = _attachment_or_error(self, transit_gateway_attachment_id)
        if attachment.resource_type != "vpc":
            raise EC2ClientError(
                "InvalidTransitGatewayAttachmentID.NotFound",
                f"Transit Gateway Attachment {transit_gateway_attachment_id} was deleted or does not exist.",
            )
        if attachment.state != "available":
            raise _incorrect_state(transit_gateway_attachment_id, attachment.state)
        result = original_modify(
            self,
            transit_gateway_attachment_id,
            add_subnet_ids=add_subnet_ids,
            options=options,
            remove_subnet_ids=remove_subnet_ids,
        )
        set_phases(result, [("modifying", settings().attachment_modifying_seconds), ("available", None)])
        return result

    _patch(
        TransitGatewayAttachmentBackend,
        "modify_transit_gateway_vpc_attachment",
        modify_transit_gateway_vpc_attachment,
    )

    original_delete = TransitGatewayAttachmentBackend.delete_transit_gateway_vpc_attachment

    def delete_transit_gateway_vpc_attachment(self: Any, transit_gateway_attachment_id: str) -> Any:
        existing = self.transit_gateway_attachments.get(transit_gateway_attachment_id)
        if existing is not None and existing.state == "deleting":
            raise _incorrect_state(transit_gateway_attachment_id, "deleting")
        attachment = original_delete(self, transit_gateway_attachment_id)  # unlisted it
        s = settings()
        set_phases(attachment, [("deleting", s.attachment_deleting_seconds), ("deleted", None)])
        keep = s.attachment_deleted_visible_seconds or 0.0
        if s.attachment_deleting_seconds > 0 or keep > 0:
            self.transit_gateway_attachments[attachment.id] = attachment
            _schedule_purge(attachment, keep)
        return attachment

    _patch(
        TransitGatewayAttachmentBackend,
        "delete_transit_gateway_vpc_attachment",
        delete_transit_gateway_vpc_attachment,
    )

    # -- peering attachments -------------------------------------------------
    original_peer = TransitGatewayAttachmentBackend.create_transit_gateway_peering_attachment

    def create_transit_gateway_peering_attachment(self: Any, *args: Any, **kwargs: Any) -> Any:
        attachment = original_peer(self, *args, **kwargs)
        set_phases(
            _primary(attachment),
            [("initiatingRequest", settings().peering_initiating_seconds), ("pendingAcceptance", None)],
        )
        return attachment

    _patch(
        TransitGatewayAttachmentBackend,
        "create_transit_gateway_peering_attachment",
        create_transit_gateway_peering_attachment,
    )

    original_accept = TransitGatewayAttachmentBackend.accept_transit_gateway_peering_attachment

    def accept_transit_gateway_peering_attachment(self: Any, transit_gateway_attachment_id: str) -> Any:
        attachment = _attachment_or_error(self, transit_gateway_attachment_id)
        if attachment.state == "initiatingRequest":
            raise _incorrect_state(transit_gateway_attachment_id, "initiatingRequest")
        result = original_accept(self, transit_gateway_attachment_id)
        set_phases(_primary(result), [("pending", settings().attachment_pending_seconds), ("available", None)])
        return result

    _patch(
        TransitGatewayAttachmentBackend,
        "accept_transit_gateway_peering_attachment",
        accept_transit_gateway_peering_attachment,
    )

    original_unpeer = TransitGatewayAttachmentBackend.delete_transit_gateway_peering_attachment

    def delete_transit_gateway_peering_attachment(self: Any, transit_gateway_attachment_id: str) -> Any:
        attachment = _attachment_or_error(self, transit_gateway_attachment_id)
        if attachment.state == "deleting":
            raise _incorrect_state(transit_gateway_attachment_id, "deleting")
        result = original_unpeer(self, transit_gateway_attachment_id)
        s = settings()
        set_phases(_primary(result), [("deleting", s.attachment_deleting_seconds), ("deleted", None)])
        if s.attachment_deleted_visible_seconds is not None:
            _schedule_purge(result, s.attachment_deleted_visible_seconds)
        return result

    _patch(
        TransitGatewayAttachmentBackend,
        "delete_transit_gateway_peering_attachment",
        delete_transit_gateway_peering_attachment,
    )

    # -- transit gateways ------------------------------------------------------
    original_tgw = TransitGatewayBackend.create_transit_gateway

    def create_transit_gateway(self: Any, *args: Any, **kwargs: Any) -> Any:
        transit_gateway = original_tgw(self, *args, **kwargs)
        set_phases(transit_gateway, [("pending", settings().tgw_pending_seconds), ("available", None)])
        return transit_gateway

    _patch(TransitGatewayBackend, "create_transit_gateway", create_transit_gateway)

    original_modify_tgw = TransitGatewayBackend.modify_transit_gateway

    def modify_transit_gateway(
        self: Any, transit_gateway_id: str, description: str | None = None, options: dict[str, str] | None = None
    ) -> Any:
        if transit_gateway_id not in self.transit_gateways:
            raise InvalidTransitGatewayID(
                transit_gateway_id, f"Transit Gateway {transit_gateway_id} was deleted or does not exist."
            )
        transit_gateway = original_modify_tgw(self, transit_gateway_id, description=description, options=options)
        set_phases(transit_gateway, [("modifying", settings().tgw_modifying_seconds), ("available", None)])
        return transit_gateway

    _patch(TransitGatewayBackend, "modify_transit_gateway", modify_transit_gateway)
