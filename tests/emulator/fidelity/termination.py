"""Behaviour 13: instance termination as AWS does it, for the interfaces.

``patch_termination`` - moto creates the primary network interface of an
instance launched without ``NetworkInterfaces`` with
``DeleteOnTermination=false`` and keeps it, attached, after termination; the
terminated instance still shows its VPC and interfaces, and a route toward
it still names the instance. AWS: an interface created with the instance at
launch is deleted when the instance is terminated
(``DeleteOnTermination``, "If set to true, the interface is deleted when the
instance is terminated",
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceNetworkInterfaceSpecification.html;
the attachment's attribute,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceNetworkInterfaceAttachment.html),
a terminated instance's resources "are gradually disassociated from the
instance and may no longer be visible on the terminated instance"
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/terminating-instances.html),
and a route whose target is gone reads ``blackhole``
(https://docs.aws.amazon.com/vpc/latest/userguide/RouteTables.html).

Modelled: RunInstances without ``NetworkInterfaces`` makes the primary
interface ``DeleteOnTermination=true`` (an explicit value is kept); at
TerminateInstances the interfaces marked so are deleted and detached, the
instance is described without ``VpcId``, ``PrivateIpAddress`` and
``NetworkInterfaces``, and every route toward it reads ``blackhole`` and
names the deleted interface only (no ``InstanceId``: no instance owns that
interface any more). Whether AWS keeps showing the ``InstanceId`` of a route
created by instance id is not documented; the interface id alone is the
harder case for a client, so that is the one modelled.
"""

from __future__ import annotations

import functools
from typing import Any

from ._common import _patch


def patch_termination() -> None:
    """Behaviour 13: interfaces deleted with their instance; routes toward it
    blackholed, naming the deleted interface."""
    from moto.ec2.models.instances import Instance
    from moto.ec2.models.route_tables import Route

    original_prep = Instance.prep_nics

    @functools.wraps(original_prep)
    def prep_nics(self: Any, nic_spec: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        launched_without_spec = not nic_spec
        result = original_prep(self, nic_spec, *args, **kwargs)
        if launched_without_spec:
            primary = self.nics.get(0)
            if primary is not None:
                primary.delete_on_termination = True
        return result

    _patch(Instance, "prep_nics", prep_nics)

    original_terminate = Instance.terminate

    @functools.wraps(original_terminate)
    def terminate(self: Any) -> Any:
        backend = self.ec2_backend
        doomed = [nic for nic in self.nics.values() if nic.delete_on_termination]
        primary = self.nics.get(0)
        # Routes created by instance id: AWS routes them to the primary
        # interface; once it is deleted, that is what they name.
        if primary is not None and primary in doomed:
            for table in backend.route_tables.values():
                for route in table._routes.values():
                    if route.instance is self and route.interface is None:
                        route.interface = primary
                        route.instance = None
        previous = original_terminate(self)  # moto deletes the doomed interfaces
        for nic in doomed:
            backend.enis.pop(nic.id, None)
            nic.instance = None
            nic.attachment_id = None
            nic.status = "available"
        self._lbgp_network_gone = True
        return previous

    _patch(Instance, "terminate", terminate)

    def gone(instance: Any) -> bool:
        return bool(getattr(instance, "_lbgp_network_gone", False))

    original_vpc_id = Instance.vpc_id
    original_interfaces = Instance.network_interfaces
    original_private_ip = Instance.private_ip_address

    def vpc_id(self: Any) -> Any:
        return None if gone(self) else original_vpc_id.fget(self)

    def network_interfaces(self: Any) -> Any:
        return [] if gone(self) else original_interfaces.fget(self)

    def private_ip_address(self: Any) -> Any:
        return None if gone(self) else original_private_ip.fget(self)

    _patch(Instance, "vpc_id", property(vpc_id))
    _patch(Instance, "network_interfaces", property(network_interfaces))
    _patch(Instance, "private_ip_address", property(private_ip_address))
    # Route.instance_id (gap f) reads the interface's instance, now None.
    assert hasattr(Route, "instance_id")
