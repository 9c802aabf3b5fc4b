//! Managed prefix lists as a route style (`LBGP_ROUTE_STYLE=prefix-list`):
//! one customer-managed prefix list per mesh, region, address family and
//! transit gateway, owned by lbgp, holding the prefixes a table would
//! otherwise get one route each for; one route per table toward it.
//!
//! The rules, all pure:
//! - **ownership**: a list is ours only when it carries `lbgp:mesh=<mesh>`,
//!   `lbgp:owner=vpc-route-injector` and `lbgp:prefix-list=<tgw>/<family>`,
//!   set atomically at creation (`TagSpecifications`); a route is ours when
//!   its destination is one of our lists. Foreign lists are read (their
//!   entries matter for overlaps) and never written.
//! - **entries** change through `ModifyManagedPrefixList`, at most
//!   [`ENTRIES_PER_CALL`] added and [`ENTRIES_PER_CALL`] removed per call
//!   ([`batches`]), each call naming the version it was computed from.
//! - **size**: a list's *max entries*, not its entries, count against the
//!   route quota of every table that references it (AWS, "Prefix lists"
//!   quotas); [`sized`] leaves headroom so a few new VPCs need no resize,
//!   and each table is checked before it references the list.
//! - **safety**: a list entry inside one of a table's own VPC CIDRs would
//!   take part of the VPC's own traffic away: such a table is refused. Two
//!   referenced lists with overlapping entries toward different targets in
//!   one table make AWS choose one at random: such a table is refused too.
//!
//! The planner is [`plan`]; its steps are [`ListStep`]s, applied in their
//! sorted order (lists created and grown, entries changed, routes created
//! or repointed, routes deleted, lists deleted).

mod plan;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Region, RouteOrigin, RouteTableRef, RouteTarget};
use crate::prefix::Cidr;
use crate::topology::TAG_MESH;

pub use plan::{ListInput, ListPlan, plan};

/// Tag naming the function that created a list.
pub const TAG_OWNER: &str = "lbgp:owner";
/// Tag naming which list of the mesh it is: `<tgw-id>/<ipv4|ipv6>`.
pub const TAG_LIST: &str = "lbgp:prefix-list";
/// The owner tag's value on the injector's lists.
pub const OWNER_INJECTOR: &str = "vpc-route-injector";
/// The owner tag's value on the propagator's lists (`lbgp:prefix-list` is
/// then `<tgw-rtb-…>/<tgw-attach-…>/<ipv4|ipv6>`).
pub const OWNER_PROPAGATOR: &str = "tgw-route-propagator";
/// Entries added, and entries removed, in one `ModifyManagedPrefixList` or
/// `CreateManagedPrefixList` call (AWS: `AddEntry.N`, `RemoveEntry.N`,
/// `Entry.N`: at most 100 items each).
pub const ENTRIES_PER_CALL: usize = 100;
/// The largest max entries AWS accepts for a customer-managed list.
pub const MAX_LIST_ENTRIES: usize = 1000;

/// An address family, as a prefix list has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Family {
    /// The family of a CIDR.
    pub fn of(cidr: &Cidr) -> Family {
        if cidr.is_ipv6() {
            Family::Ipv6
        } else {
            Family::Ipv4
        }
    }
    /// As `CreateManagedPrefixList`'s `AddressFamily` spells it.
    pub fn as_aws(self) -> &'static str {
        match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        }
    }
    /// Parses `AddressFamily`.
    pub fn from_aws(text: &str) -> Option<Family> {
        match text {
            "IPv4" => Some(Family::Ipv4),
            "IPv6" => Some(Family::Ipv6),
            _ => None,
        }
    }
    fn suffix(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

/// Which list of a mesh: the region, family and transit gateway it routes
/// toward.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ListKey {
    /// Its region.
    pub region: Region,
    /// Its address family.
    pub family: Family,
    /// The transit gateway its routes point at (`tgw-…`).
    pub target: String,
}

impl ListKey {
    /// The `lbgp:prefix-list` tag's value.
    pub fn tag_value(&self) -> String {
        format!("{}/{}", self.target, self.family.suffix())
    }
    /// The list's name (AWS allows 255 characters; names need not be
    /// unique, so ownership is the tags', never the name's).
    pub fn name(&self, mesh: &str) -> String {
        let mut name = format!("lbgp-{mesh}-{}-{}", self.target, self.family.suffix());
        name.truncate(255);
        name
    }
    /// The function that owns the list: the propagator's keys name a TGW
    /// route table and attachment (`<tgw-rtb-…>/<tgw-attach-…>`), the
    /// injector's a transit gateway.
    pub fn owner(&self) -> &'static str {
        if self.target.contains('/') {
            OWNER_PROPAGATOR
        } else {
            OWNER_INJECTOR
        }
    }
    /// The tags a list of ours carries from its creation on.
    pub fn tags(&self, mesh: &str) -> Vec<(String, String)> {
        vec![
            (TAG_MESH.to_owned(), mesh.to_owned()),
            (TAG_OWNER.to_owned(), self.owner().to_owned()),
            (TAG_LIST.to_owned(), self.tag_value()),
        ]
    }
}

impl fmt::Display for ListKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.region, self.tag_value())
    }
}

/// A prefix list's state, as AWS reports it, in what it means for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListState {
    /// `create-complete`, `modify-complete`, `restore-complete`: writable.
    Ready,
    /// `*-in-progress`: a write is under way; written again once it is done.
    Busy,
    /// `*-failed`: the last write was refused (the state message says why).
    Failed,
    /// `delete-complete`: gone.
    Deleted,
}

impl ListState {
    /// Parses AWS's `State`.
    pub fn from_aws(text: &str) -> ListState {
        match text {
            "delete-complete" => ListState::Deleted,
            t if t.ends_with("-in-progress") => ListState::Busy,
            t if t.ends_with("-failed") => ListState::Failed,
            _ => ListState::Ready,
        }
    }
}

/// A managed prefix list as read, with its entries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManagedList {
    /// Its region.
    pub region: Region,
    /// `pl-…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its family; `None` when AWS printed one we do not know.
    pub family: Option<Family>,
    /// Max entries (AWS-managed lists print none: `None`).
    pub max_entries: Option<usize>,
    /// Its version (`CurrentVersion` of the next modification).
    pub version: u64,
    /// Its state.
    pub state: ListState,
    /// AWS's state message (why a write failed).
    pub state_message: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Its entries; `None` when they could not be read.
    pub entries: Option<Vec<Cidr>>,
}

impl ManagedList {
    /// Which list of `mesh` it is, when it is ours (see the module's
    /// ownership rule); `None` for every other list.
    pub fn key(&self, mesh: &str) -> Option<ListKey> {
        if self.tags.get(TAG_MESH).map(String::as_str) != Some(mesh)
            || self.tags.get(TAG_OWNER).map(String::as_str) != Some(OWNER_INJECTOR)
        {
            return None;
        }
        let (target, family) = self.tags.get(TAG_LIST)?.rsplit_once('/')?;
        let family = match family {
            "ipv4" => Family::Ipv4,
            "ipv6" => Family::Ipv6,
            _ => return None,
        };
        if self.family != Some(family) || !target.starts_with("tgw-") {
            return None;
        }
        Some(ListKey {
            region: self.region.clone(),
            family,
            target: target.to_owned(),
        })
    }

    /// Which propagator list of `mesh` it is (a TGW route table, a peering
    /// attachment, a family), when it is one; `None` for every other list.
    pub fn tgw_key(&self, mesh: &str) -> Option<ListKey> {
        if self.tags.get(TAG_MESH).map(String::as_str) != Some(mesh)
            || self.tags.get(TAG_OWNER).map(String::as_str) != Some(OWNER_PROPAGATOR)
        {
            return None;
        }
        let (target, family) = self.tags.get(TAG_LIST)?.rsplit_once('/')?;
        let family = match family {
            "ipv4" => Family::Ipv4,
            "ipv6" => Family::Ipv6,
            _ => return None,
        };
        let (table, attachment) = target.split_once('/')?;
        if self.family != Some(family)
            || !table.starts_with("tgw-rtb-")
            || !attachment.starts_with("tgw-attach-")
        {
            return None;
        }
        Some(ListKey {
            region: self.region.clone(),
            family,
            target: target.to_owned(),
        })
    }

    /// What the list counts against a referencing table's route quota: its
    /// max entries (for an AWS-managed list, which prints none, its entries).
    pub fn weight(&self) -> Option<usize> {
        self.max_entries.or_else(|| self.entries.as_ref().map(Vec::len))
    }
}

/// A VPC route whose destination is a prefix list (`DestinationPrefixListId`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListRoute {
    /// Its table.
    pub table: RouteTableRef,
    /// `pl-…`.
    pub prefix_list_id: String,
    /// Where it points.
    pub target: RouteTarget,
    /// Static (created by a call) or propagated.
    pub origin: RouteOrigin,
}

/// The prefix lists and prefix-list routes a run read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListsView {
    /// Our lists (found by tag) and every list a read table references.
    pub lists: Vec<ManagedList>,
    /// Every prefix-list route of the read tables.
    pub routes: Vec<ListRoute>,
    /// Regions whose lists could not be read: nothing there is planned.
    pub unreadable: Vec<Region>,
}

/// Which list a route step points at: one that exists, or one the same
/// run creates first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum ListRef {
    /// `pl-…`.
    Id(String),
    /// The list [`ListStep::CreateList`] creates for this key.
    New(ListKey),
}

impl fmt::Display for ListRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListRef::Id(id) => f.write_str(id),
            ListRef::New(key) => write!(f, "new list {key}"),
        }
    }
}

/// One write of a prefix-list plan. The variants are in the order they
/// are applied: what a route points at exists before the route, a route is
/// gone before its list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ListStep {
    /// `CreateManagedPrefixList` (tagged ours), then the entries past the
    /// first [`ENTRIES_PER_CALL`] by modification.
    CreateList {
        /// Which list.
        key: ListKey,
        /// Its name.
        name: String,
        /// Its max entries.
        max_entries: usize,
        /// Its entries.
        entries: Vec<Cidr>,
    },
    /// `ModifyManagedPrefixList` with `MaxEntries` only (AWS takes a size
    /// change and an entry change in separate calls).
    Resize {
        /// Region.
        region: Region,
        /// `pl-…`.
        list_id: String,
        /// Max entries now.
        from: usize,
        /// Max entries after.
        to: usize,
    },
    /// `ModifyManagedPrefixList` in batches of [`ENTRIES_PER_CALL`], each
    /// naming the version it was computed from; on a version conflict the
    /// list is read again and the difference recomputed from `entries`.
    SyncEntries {
        /// Region.
        region: Region,
        /// `pl-…`.
        list_id: String,
        /// The version the difference was computed from.
        version: u64,
        /// Entries to add (as planned).
        add: Vec<Cidr>,
        /// Entries to remove (as planned).
        remove: Vec<Cidr>,
        /// Every entry the list must hold afterwards.
        entries: Vec<Cidr>,
    },
    /// `CreateRoute` with `DestinationPrefixListId`.
    CreateRoute {
        /// The table.
        table: RouteTableRef,
        /// The list.
        list: ListRef,
        /// The target.
        target: RouteTarget,
    },
    /// `ReplaceRoute` with `DestinationPrefixListId`.
    ReplaceRoute {
        /// The table.
        table: RouteTableRef,
        /// `pl-…`.
        list_id: String,
        /// The new target.
        target: RouteTarget,
        /// The target it has.
        previous: RouteTarget,
    },
    /// `CreateTransitGatewayPrefixListReference` toward an attachment (the
    /// propagator's style).
    CreateReference {
        /// The TGW route table.
        table: RouteTableRef,
        /// The list.
        list: ListRef,
        /// `tgw-attach-…`.
        attachment: String,
    },
    /// `ModifyTransitGatewayPrefixListReference`: repoints a reference.
    ModifyReference {
        /// The TGW route table.
        table: RouteTableRef,
        /// `pl-…`.
        list_id: String,
        /// The new attachment.
        attachment: String,
        /// The attachment it has (`None`: a blackhole).
        previous: Option<String>,
    },
    /// `DeleteRoute` with `DestinationPrefixListId`.
    DeleteRoute {
        /// The table.
        table: RouteTableRef,
        /// `pl-…`.
        list_id: String,
        /// The target it had.
        target: RouteTarget,
    },
    /// `DeleteTransitGatewayPrefixListReference`.
    DeleteReference {
        /// The TGW route table.
        table: RouteTableRef,
        /// `pl-…`.
        list_id: String,
    },
    /// `DeleteManagedPrefixList` of a list of ours nothing references.
    DeleteList {
        /// Region.
        region: Region,
        /// `pl-…`.
        list_id: String,
    },
}

impl ListStep {
    /// The region the step writes in.
    pub fn region(&self) -> &Region {
        match self {
            ListStep::CreateList { key, .. } => &key.region,
            ListStep::Resize { region, .. }
            | ListStep::SyncEntries { region, .. }
            | ListStep::DeleteList { region, .. } => region,
            ListStep::CreateRoute { table, .. }
            | ListStep::ReplaceRoute { table, .. }
            | ListStep::DeleteRoute { table, .. }
            | ListStep::CreateReference { table, .. }
            | ListStep::ModifyReference { table, .. }
            | ListStep::DeleteReference { table, .. } => &table.region,
        }
    }

    /// What the step weighs against the blast-radius limit: one per route
    /// or list written, one per entry added or removed.
    pub fn weight(&self) -> usize {
        match self {
            ListStep::CreateList { entries, .. } => 1 + entries.len(),
            ListStep::SyncEntries { add, remove, .. } => add.len() + remove.len(),
            _ => 1,
        }
    }

    /// The EC2 calls the step makes when nothing conflicts.
    pub fn calls(&self) -> usize {
        match self {
            ListStep::CreateList { entries, .. } => {
                1 + entries
                    .len()
                    .saturating_sub(ENTRIES_PER_CALL)
                    .div_ceil(ENTRIES_PER_CALL)
            }
            ListStep::SyncEntries { add, remove, .. } => batches(add, remove).len(),
            _ => 1,
        }
    }
}

/// One `ModifyManagedPrefixList` call's entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryBatch {
    /// Entries to add (at most [`ENTRIES_PER_CALL`]).
    pub add: Vec<Cidr>,
    /// Entries to remove (at most [`ENTRIES_PER_CALL`]).
    pub remove: Vec<Cidr>,
}

/// What to add and remove to turn `current` into `desired` (both sorted on
/// output, duplicates ignored).
pub fn diff(current: &[Cidr], desired: &[Cidr]) -> (Vec<Cidr>, Vec<Cidr>) {
    let have: std::collections::BTreeSet<&Cidr> = current.iter().collect();
    let want: std::collections::BTreeSet<&Cidr> = desired.iter().collect();
    let add = want.difference(&have).map(|c| **c).collect();
    let remove = have.difference(&want).map(|c| **c).collect();
    (add, remove)
}

/// Splits an entry change into calls of at most [`ENTRIES_PER_CALL`] added
/// and [`ENTRIES_PER_CALL`] removed. Call *k* takes the *k*-th hundred of
/// each, so the list never holds more entries between two calls than the
/// larger of its sizes before and after: a list sized for both never
/// overflows half-way.
pub fn batches(add: &[Cidr], remove: &[Cidr]) -> Vec<EntryBatch> {
    let calls = add.len().max(remove.len()).div_ceil(ENTRIES_PER_CALL);
    (0..calls)
        .map(|k| {
            let part = |v: &[Cidr]| {
                v.iter()
                    .skip(k * ENTRIES_PER_CALL)
                    .take(ENTRIES_PER_CALL)
                    .copied()
                    .collect()
            };
            EntryBatch {
                add: part(add),
                remove: part(remove),
            }
        })
        .collect()
}

/// The max entries of a list holding `entries`: a quarter more, at least
/// five more, rounded up to a multiple of five, at most
/// [`MAX_LIST_ENTRIES`]. Headroom lets a few VPCs join without a resize
/// (a resize needs every referencing table to have room); it costs as much
/// route quota in every table, so it stays small.
pub fn sized(entries: usize) -> usize {
    let headroom = entries.div_ceil(4).max(5);
    (entries + headroom)
        .div_ceil(5)
        .saturating_mul(5)
        .min(MAX_LIST_ENTRIES)
}

/// True when a table whose VPC has `own` CIDRs may reference a list with
/// `entries`: no entry lies inside (or partly over) one of its CIDRs. An
/// entry equal to or wider than an own CIDR is harmless: the VPC's local
/// route is at least as specific and wins.
pub fn safe_for(entries: &[Cidr], own: &[Cidr]) -> Result<(), String> {
    for e in entries {
        if let Some(o) = own.iter().find(|o| e.overlaps(o) && !e.contains(o)) {
            return Err(format!(
                "entry {e} lies inside the VPC's own CIDR {o}: it would take part of the VPC's own traffic"
            ));
        }
    }
    Ok(())
}

/// True when two referenced lists toward different targets would share an
/// address in one table (AWS then picks one of them at random).
pub fn conflicting(ours: &[Cidr], theirs: &[Cidr]) -> Option<(Cidr, Cidr)> {
    ours.iter()
        .find_map(|a| theirs.iter().find(|b| a.overlaps(b)).map(|b| (*a, *b)))
}
