//! What the adapters read from AWS, as plain types with typed states: transit
//! gateways, their attachments and route tables, VPCs, VPC route tables and
//! router instances. The adapters fill these from the SDK's types and hand
//! them to the rules (`inject`, `propagate`, `failover`), which never see an
//! SDK type. States are enums parsed once, at the edge, from AWS's strings.

use crate::accounts::AccountId;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Region, Route};
use crate::prefix::Cidr;

/// Tag key that makes a transit gateway a member of a mesh
/// (`lbgp:mesh=<mesh>`; on TGW route tables it selects the propagator's
/// target tables).
pub const TAG_MESH: &str = "lbgp:mesh";
/// Tag key that excludes a VPC route table from injection (`true`).
pub const TAG_IGNORE: &str = "lbgp:ignore";

/// Where a resource is in its life, as far as routing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Forwarding: `available`, and `modifying` (a modification in progress
    /// keeps the attachment forwarding).
    Up,
    /// On its way up or down (`pending`, `initiating`, `pendingAcceptance`,
    /// `rollingBack`, …): what depends on it is neither created nor deleted.
    Transitional,
    /// Gone for good (`deleting`, `deleted`, `failed`, `rejected`): what
    /// depends on it is withdrawn.
    Gone,
}

/// The state of a transit gateway attachment (VPC, peering, VPN…), as EC2
/// names it (`TransitGatewayAttachmentState`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttachmentState {
    /// `initiating`.
    Initiating,
    /// `initiatingRequest`.
    InitiatingRequest,
    /// `pendingAcceptance`.
    PendingAcceptance,
    /// `rollingBack`.
    RollingBack,
    /// `pending`.
    Pending,
    /// `available`.
    Available,
    /// `modifying`.
    Modifying,
    /// `deleting`.
    Deleting,
    /// `deleted`.
    Deleted,
    /// `failed`.
    Failed,
    /// `failing`.
    Failing,
    /// `rejected`.
    Rejected,
    /// `rejecting`.
    Rejecting,
    /// A state this release does not know (AWS adds states): treated as
    /// transitional, the safe side.
    Unknown(String),
}

impl AttachmentState {
    /// Parses EC2's name of the state.
    pub fn from_aws(name: &str) -> AttachmentState {
        match name {
            "initiating" => AttachmentState::Initiating,
            "initiatingRequest" => AttachmentState::InitiatingRequest,
            "pendingAcceptance" => AttachmentState::PendingAcceptance,
            "rollingBack" => AttachmentState::RollingBack,
            "pending" => AttachmentState::Pending,
            "available" => AttachmentState::Available,
            "modifying" => AttachmentState::Modifying,
            "deleting" => AttachmentState::Deleting,
            "deleted" => AttachmentState::Deleted,
            "failed" => AttachmentState::Failed,
            "failing" => AttachmentState::Failing,
            "rejected" => AttachmentState::Rejected,
            "rejecting" => AttachmentState::Rejecting,
            other => AttachmentState::Unknown(other.to_owned()),
        }
    }

    /// EC2's name of the state.
    pub fn as_aws(&self) -> &str {
        match self {
            AttachmentState::Initiating => "initiating",
            AttachmentState::InitiatingRequest => "initiatingRequest",
            AttachmentState::PendingAcceptance => "pendingAcceptance",
            AttachmentState::RollingBack => "rollingBack",
            AttachmentState::Pending => "pending",
            AttachmentState::Available => "available",
            AttachmentState::Modifying => "modifying",
            AttachmentState::Deleting => "deleting",
            AttachmentState::Deleted => "deleted",
            AttachmentState::Failed => "failed",
            AttachmentState::Failing => "failing",
            AttachmentState::Rejected => "rejected",
            AttachmentState::Rejecting => "rejecting",
            AttachmentState::Unknown(name) => name,
        }
    }

    /// Where the attachment is in its life. `failing` and `rejecting` are
    /// on their way to gone, but not gone: they freeze, the safe side.
    pub fn lifecycle(&self) -> Lifecycle {
        match self {
            AttachmentState::Available | AttachmentState::Modifying => Lifecycle::Up,
            AttachmentState::Deleting
            | AttachmentState::Deleted
            | AttachmentState::Failed
            | AttachmentState::Rejected => Lifecycle::Gone,
            _ => Lifecycle::Transitional,
        }
    }
}

impl fmt::Display for AttachmentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_aws())
    }
}

/// The state of a transit gateway (`TransitGatewayState`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayState {
    /// `pending`.
    Pending,
    /// `available`.
    Available,
    /// `modifying`.
    Modifying,
    /// `deleting`.
    Deleting,
    /// `deleted`.
    Deleted,
    /// A state this release does not know: transitional.
    Unknown(String),
}

impl GatewayState {
    /// Parses EC2's name of the state.
    pub fn from_aws(name: &str) -> GatewayState {
        match name {
            "pending" => GatewayState::Pending,
            "available" => GatewayState::Available,
            "modifying" => GatewayState::Modifying,
            "deleting" => GatewayState::Deleting,
            "deleted" => GatewayState::Deleted,
            other => GatewayState::Unknown(other.to_owned()),
        }
    }

    /// EC2's name of the state.
    pub fn as_aws(&self) -> &str {
        match self {
            GatewayState::Pending => "pending",
            GatewayState::Available => "available",
            GatewayState::Modifying => "modifying",
            GatewayState::Deleting => "deleting",
            GatewayState::Deleted => "deleted",
            GatewayState::Unknown(name) => name,
        }
    }

    /// Where the transit gateway is in its life.
    pub fn lifecycle(&self) -> Lifecycle {
        match self {
            GatewayState::Available | GatewayState::Modifying => Lifecycle::Up,
            GatewayState::Deleting | GatewayState::Deleted => Lifecycle::Gone,
            GatewayState::Pending | GatewayState::Unknown(_) => Lifecycle::Transitional,
        }
    }
}

impl fmt::Display for GatewayState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_aws())
    }
}

/// What an attachment connects a transit gateway to
/// (`TransitGatewayAttachmentResourceType`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachmentResource {
    /// `vpc`.
    Vpc,
    /// `peering`, and the deprecated `tgw-peering`: another transit gateway.
    Peering,
    /// `vpn`.
    Vpn,
    /// `direct-connect-gateway`.
    DirectConnectGateway,
    /// `connect`.
    Connect,
    /// Anything else (`network-function`, `tgw-service`…).
    Other(String),
}

impl AttachmentResource {
    /// Parses EC2's name of the resource type.
    pub fn from_aws(name: &str) -> AttachmentResource {
        match name {
            "vpc" => AttachmentResource::Vpc,
            // `tgw-peering` is the deprecated name of the same thing: a
            // route over it was learned from a peer and is never re-exported.
            "peering" | "tgw-peering" => AttachmentResource::Peering,
            "vpn" => AttachmentResource::Vpn,
            "direct-connect-gateway" => AttachmentResource::DirectConnectGateway,
            "connect" => AttachmentResource::Connect,
            other => AttachmentResource::Other(other.to_owned()),
        }
    }

    /// EC2's name of the resource type.
    pub fn as_aws(&self) -> &str {
        match self {
            AttachmentResource::Vpc => "vpc",
            AttachmentResource::Peering => "peering",
            AttachmentResource::Vpn => "vpn",
            AttachmentResource::DirectConnectGateway => "direct-connect-gateway",
            AttachmentResource::Connect => "connect",
            AttachmentResource::Other(name) => name,
        }
    }
}

impl fmt::Display for AttachmentResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_aws())
    }
}

/// A transit gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitGateway {
    /// `tgw-…`.
    pub id: String,
    /// Region.
    pub region: Region,
    /// Its state.
    pub state: GatewayState,
    /// The default association route table, if default association is on.
    pub default_association_route_table: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

impl TransitGateway {
    /// True when tagged `lbgp:mesh=<mesh>` exactly.
    pub fn in_mesh(&self, mesh: &str) -> bool {
        self.tags.get(TAG_MESH).map(String::as_str) == Some(mesh)
    }
}

/// A VPC attachment of a transit gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcAttachment {
    /// `tgw-attach-…`.
    pub id: String,
    /// The transit gateway.
    pub transit_gateway_id: String,
    /// The VPC.
    pub vpc_id: String,
    /// Its state.
    pub state: AttachmentState,
    /// `Options.Ipv6Support` is `enable`: IPv6 traffic crosses it.
    pub ipv6_support: bool,
    /// The account owning the VPC (`ResourceOwnerId`), when AWS said.
    pub vpc_owner: Option<AccountId>,
}

/// One side of a peering attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeeringEnd {
    /// `tgw-…`.
    pub transit_gateway_id: String,
    /// Its region.
    pub region: Option<Region>,
}

/// A transit gateway peering attachment, as seen from `region`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeeringAttachment {
    /// `tgw-attach-…`.
    pub id: String,
    /// The region it was read in.
    pub region: Region,
    /// The requesting side.
    pub requester: PeeringEnd,
    /// The accepting side.
    pub accepter: PeeringEnd,
    /// Its state.
    pub state: AttachmentState,
    /// The TGW route table this side of it is associated with: traffic
    /// arriving over it is routed by that table, and dropped without one.
    pub route_table: Option<String>,
}

impl PeeringAttachment {
    /// Given one of its transit gateways, the other side.
    pub fn peer_of(&self, tgw_id: &str) -> Option<&PeeringEnd> {
        if self.requester.transit_gateway_id == tgw_id {
            Some(&self.accepter)
        } else if self.accepter.transit_gateway_id == tgw_id {
            Some(&self.requester)
        } else {
            None
        }
    }
}

/// A VPC and every CIDR block associated with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    /// `vpc-…`.
    pub id: String,
    /// Associated IPv4 and IPv6 CIDR blocks.
    pub cidrs: Vec<Cidr>,
}

/// A VPC route with every id AWS reports for its target: a route to an
/// instance shows the instance and its interface, so both are kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VpcRoute {
    /// The route in the core model.
    pub route: Route,
    /// Instance id, when the target is (on) an instance.
    pub instance_id: Option<String>,
    /// Network interface id, when the target is an interface.
    pub network_interface_id: Option<String>,
}

/// A VPC route table with its routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcRouteTable {
    /// `rtb-…`.
    pub id: String,
    /// The VPC.
    pub vpc_id: String,
    /// True for the VPC's main route table.
    pub main: bool,
    /// Subnets explicitly associated.
    pub subnet_ids: Vec<String>,
    /// Gateways (internet or virtual private) associated with the table:
    /// a gateway route table, which takes no routes toward a TGW.
    pub gateway_ids: Vec<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Routes with a CIDR destination (prefix-list routes are not ours).
    pub routes: Vec<VpcRoute>,
    /// The account owning the table (`OwnerId`), when AWS said.
    pub owner: Option<AccountId>,
}

impl VpcRouteTable {
    /// True when tagged `lbgp:ignore=true`.
    pub fn ignored(&self) -> bool {
        self.tags
            .get(TAG_IGNORE)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// A transit gateway route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgwRouteTable {
    /// `tgw-rtb-…`.
    pub id: String,
    /// The transit gateway.
    pub transit_gateway_id: String,
    /// True when it is the TGW's default association table.
    pub default_association: bool,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// What a transit gateway route points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgwRouteAttachment {
    /// `tgw-attach-…`.
    pub attachment_id: String,
    /// What the attachment connects to.
    pub resource_type: AttachmentResource,
}

/// A transit gateway route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgwRoute {
    /// The route in the core model.
    pub route: Route,
    /// The attachments it points at (several for ECMP).
    pub attachments: Vec<TgwRouteAttachment>,
}

impl TgwRoute {
    /// True when the route goes over a peering attachment: learned from a
    /// peer, never re-exported.
    pub fn via_peering(&self) -> bool {
        self.attachments
            .iter()
            .any(|a| a.resource_type == AttachmentResource::Peering)
    }
}

/// EC2 instance states (`InstanceStateName`), as instances report them and
/// state-change events name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    /// Starting.
    Pending,
    /// Running.
    Running,
    /// Stopping.
    Stopping,
    /// Stopped.
    Stopped,
    /// Terminating.
    ShuttingDown,
    /// Terminated.
    Terminated,
}

impl InstanceState {
    /// Parses EC2's name of the state; `None` for a name EC2 does not use.
    pub fn from_aws(name: &str) -> Option<InstanceState> {
        Some(match name {
            "pending" => InstanceState::Pending,
            "running" => InstanceState::Running,
            "stopping" => InstanceState::Stopping,
            "stopped" => InstanceState::Stopped,
            "shutting-down" => InstanceState::ShuttingDown,
            "terminated" => InstanceState::Terminated,
            _ => return None,
        })
    }

    /// EC2's name of the state.
    pub fn as_aws(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
        }
    }

    /// States in which an instance no longer forwards traffic.
    pub fn is_down(self) -> bool {
        matches!(
            self,
            InstanceState::Stopping
                | InstanceState::Stopped
                | InstanceState::ShuttingDown
                | InstanceState::Terminated
        )
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_aws())
    }
}

/// Instance and system status checks (`DescribeInstanceStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusChecks {
    /// The instance status check reports `impaired`.
    pub instance_impaired: bool,
    /// The system status check reports `impaired`.
    pub system_impaired: bool,
}

/// An EC2 instance with what the failover rules need: the facts
/// DescribeInstances gives, and its status checks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Instance {
    /// `i-…`.
    pub id: String,
    /// Its VPC (absent once terminated).
    pub vpc_id: Option<String>,
    /// Its availability zone.
    pub availability_zone: Option<String>,
    /// Its state; `None` when EC2 did not say.
    pub state: Option<InstanceState>,
    /// Primary network interface (device index 0).
    pub primary_interface_id: Option<String>,
    /// Every attached network interface.
    pub interface_ids: Vec<String>,
    /// The private IP addresses of its interfaces, primary first.
    pub private_addresses: Vec<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Its status checks (not yet reported: not impaired).
    pub status: StatusChecks,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_classify() {
        for name in [
            "initiating",
            "initiatingRequest",
            "pendingAcceptance",
            "rollingBack",
            "pending",
            "available",
            "modifying",
            "deleting",
            "deleted",
            "failed",
            "failing",
            "rejected",
            "rejecting",
            "something-new",
        ] {
            assert_eq!(AttachmentState::from_aws(name).as_aws(), name);
        }
        assert_eq!(AttachmentState::from_aws("modifying").lifecycle(), Lifecycle::Up);
        assert_eq!(
            AttachmentState::from_aws("rollingBack").lifecycle(),
            Lifecycle::Transitional
        );
        assert_eq!(
            AttachmentState::from_aws("something-new").lifecycle(),
            Lifecycle::Transitional
        );
        assert_eq!(AttachmentState::from_aws("rejected").lifecycle(), Lifecycle::Gone);
        assert_eq!(GatewayState::from_aws("modifying").lifecycle(), Lifecycle::Up);
        assert_eq!(
            GatewayState::from_aws("pending").lifecycle(),
            Lifecycle::Transitional
        );
        assert_eq!(
            AttachmentResource::from_aws("tgw-peering"),
            AttachmentResource::Peering
        );
        assert_eq!(
            InstanceState::from_aws("shutting-down"),
            Some(InstanceState::ShuttingDown)
        );
        assert_eq!(InstanceState::from_aws("melted"), None);
    }
}
