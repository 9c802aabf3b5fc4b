//! What a group remembers of its members between runs, and the routes it
//! manages, CIDR and prefix-list alike.
//!
//! When a router is terminated AWS deletes its primary interface (created
//! with the instance, `DeleteOnTermination`), drops the interfaces and the
//! VPC from the instance's description, and the routes toward it read
//! `blackhole`, naming an interface that belongs to no instance any more.
//! The group's state keeps each member's interfaces, so those routes are
//! still found as the group's and moved; a member EC2 no longer describes
//! at all is kept, *gone*, while a blackhole route points at it.

use std::collections::{BTreeMap, BTreeSet};

use super::group::{Group, ListRoute, Member, rank_order};
use super::{GroupState, MemberRecord};
use crate::model::{RouteOrigin, RouteTarget};
use crate::topology::{InstanceState, VpcRoute};

/// A managed route: a CIDR route or a prefix-list route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Managed<'a> {
    /// `DestinationCidrBlock` / `DestinationIpv6CidrBlock`.
    Cidr(&'a VpcRoute),
    /// `DestinationPrefixListId`.
    List(&'a ListRoute),
}

impl<'a> Managed<'a> {
    /// The member the route points at.
    pub(super) fn owner<'g>(&self, group: &'g Group) -> Option<&'g Member> {
        match self {
            Managed::Cidr(r) => group.owner_of(r),
            Managed::List(r) => group.owner_of_list_route(r),
        }
    }

    /// Where it points now.
    pub(super) fn target(&self) -> &'a RouteTarget {
        match self {
            Managed::Cidr(r) => &r.route.target,
            Managed::List(r) => &r.target,
        }
    }

    /// Its destination, in words: the CIDR or the prefix list id.
    pub(super) fn destination(&self) -> String {
        match self {
            Managed::Cidr(r) => r.route.key.destination.to_string(),
            Managed::List(r) => r.prefix_list_id.clone(),
        }
    }

    /// Static: the only kind anyone can move.
    pub(super) fn is_static(&self) -> bool {
        match self {
            Managed::Cidr(r) => r.route.origin == RouteOrigin::Static,
            Managed::List(r) => r.origin == RouteOrigin::Static,
        }
    }
}

fn terminal(state: Option<InstanceState>) -> bool {
    matches!(
        state,
        Some(InstanceState::ShuttingDown | InstanceState::Terminated)
    )
}

/// The group as this run decides it: described members completed with what
/// the state remembers once EC2 stopped showing their interfaces
/// (terminated), and the remembered members EC2 no longer describes, gone.
pub(super) fn with_memory(group: &Group, state: &GroupState) -> Group {
    let mut g = group.clone();
    for m in &mut g.members {
        let Some(record) = state.members.get(&m.instance_id) else {
            continue;
        };
        if !(terminal(m.state) || m.interfaces.is_empty()) {
            continue;
        }
        for i in &record.interfaces {
            if !m.interfaces.contains(i) {
                m.interfaces.push(i.clone());
            }
        }
        m.interfaces.sort();
        if m.primary_interface.is_none() {
            m.primary_interface.clone_from(&record.primary);
        }
        if m.vpc_id.is_none() {
            m.vpc_id.clone_from(&record.vpc);
        }
        if m.addresses.is_empty() {
            m.addresses.clone_from(&record.addresses);
        }
    }
    for (id, record) in &state.members {
        if g.member(id).is_some() {
            continue;
        }
        g.members.push(Member {
            instance_id: id.clone(),
            priority: record.priority,
            az: record.az.clone(),
            vpc_id: record.vpc.clone(),
            state: None,
            instance_impaired: false,
            system_impaired: false,
            event_state: None,
            interfaces: record.interfaces.clone(),
            primary_interface: record.primary.clone(),
            addresses: record.addresses.clone(),
            alarm_names: vec![],
            alarms: vec![],
            missing: Default::default(),
            gone: true,
        });
    }
    g.members.sort_by(rank_order);
    g
}

/// What the next state remembers: every member that is not going away, and
/// a terminated or gone one while a managed route points at it (`owners`:
/// the members the managed routes point at).
pub(super) fn records(group: &Group, owners: &BTreeSet<&str>) -> BTreeMap<String, MemberRecord> {
    group
        .members
        .iter()
        .filter(|m| !(m.gone || terminal(m.state)) || owners.contains(m.instance_id.as_str()))
        .map(|m| {
            (
                m.instance_id.clone(),
                MemberRecord {
                    interfaces: m.interfaces.clone(),
                    primary: m.primary_interface.clone(),
                    addresses: m.addresses.clone(),
                    vpc: m.vpc_id.clone(),
                    az: m.az.clone(),
                    priority: m.priority,
                },
            )
        })
        .collect()
}
