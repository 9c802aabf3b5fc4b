//! `LBGP_ROUTING=shortest-path`: every member learns every uncontested
//! prefix of every member it can reach, toward the next hop of a shortest
//! path ([`crate::paths`]).
//!
//! - **Edges** are peering attachments between two members that every region
//!   seeing them reads as forwarding (`available`, `modifying`).
//! - **Tables.** A member installs its routes in its target tables (as in
//!   `direct`) and, unless it is a leaf (`lbgp:transit=false`), in the route
//!   tables associated with its side of its forwarding mesh peerings: a
//!   packet in transit is routed by the table of the attachment it arrived
//!   on. A leaf installs in its target tables only.
//! - **Reroute.** A peering that stops forwarding is no longer an edge: the
//!   routes over it get the next shortest path in the same run (a replace:
//!   same table and destination, another target). Routes over a peering in
//!   transition (`pending`, `failing`, `rejecting`…) move at once when a path
//!   remains and are kept as they are when none does (it may come back):
//!   a new peering is used only once `available`, so nothing moves twice.
//! - **Unreadable regions.** Paths can run through any region, so every
//!   table of every member connected (over peerings not gone) to a region
//!   that could not be read is frozen: a failed read never withdraws.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rustc_hash::FxHashSet;

use super::{Member, Mesh, learned, no_targets, table_ref, unassociated};
use crate::config::PropagatorConfig;
use crate::desire::{Desire, RouteNotes};
use crate::model::{DesiredRoute, RouteKey, RouteOrigin, RouteState, RouteTableRef, RouteTarget};
use crate::paths::{Graph, Link, Node, TAG_TRANSIT};
use crate::plan::OwnershipLedger;
use crate::prefix::Cidr;
use crate::report::{ErrorReport, SkipReport};
use crate::topology::{AttachmentState, Lifecycle, PeeringAttachment};

/// One member's view of one of its peerings to another member, read in the
/// member's own region (with that side's association).
struct Side<'a> {
    member: &'a Member<'a>,
    peer: &'a str,
    peering: &'a PeeringAttachment,
}

/// How bad a state is for forwarding: what any region reads as the worst.
fn rank(state: &AttachmentState) -> u8 {
    match state.lifecycle() {
        Lifecycle::Up => 0,
        Lifecycle::Transitional => 1,
        Lifecycle::Gone => 2,
    }
}

/// Whether `member` may carry transit: `lbgp:transit=false` makes a leaf;
/// a value other than `true`/`false` is reported and read as `false`, the
/// side that opens no path.
fn transit(member: &Member<'_>, out: &mut Desire) -> bool {
    match member
        .tgw
        .tags
        .get(TAG_TRANSIT)
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => true,
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        Some(v) => {
            out.errors.push(ErrorReport {
                region: member.region.to_string(),
                resource: Some(member.tgw.id.clone()),
                error: format!(
                    "{}: tag {TAG_TRANSIT}={v:?} is neither true nor false; read as false (no transit through it). Fix the tag",
                    member.tgw.id
                ), account: None,
            });
            false
        }
    }
}

/// The desired routes of `shortest-path` mode (and its reports and notes,
/// in `out`).
pub(super) fn desired(
    context: &Mesh<'_>,
    ledger: &OwnershipLedger,
    config: &PropagatorConfig,
    out: &mut Desire,
) -> Vec<DesiredRoute> {
    let mesh = &config.common.mesh;
    // The worst state any region reads for each peering.
    let mut state: BTreeMap<&str, &AttachmentState> = BTreeMap::new();
    for p in context.views.iter().flat_map(|v| &v.peerings) {
        let seen = state.entry(p.id.as_str()).or_insert(&p.state);
        if rank(&p.state) > rank(seen) {
            *seen = &p.state;
        }
    }
    let up = |id: &str| state.get(id).is_some_and(|s| s.lifecycle() == Lifecycle::Up);
    let mut sides: Vec<Side<'_>> = Vec::new();
    // Each member's own tables, by id.
    let mut own: BTreeMap<&str, Vec<RouteTableRef>> = BTreeMap::new();
    for view in context.views {
        for m in context.all.iter().filter(|m| m.region == &view.region) {
            own.insert(
                m.tgw.id.as_str(),
                view.route_tables
                    .iter()
                    .filter(|t| t.transit_gateway_id == m.tgw.id)
                    .map(|t| table_ref(&view.region, &t.id))
                    .collect(),
            );
            for p in &view.peerings {
                if let Some(end) = p.peer_of(&m.tgw.id)
                    && end.transit_gateway_id != m.tgw.id
                    && context.by_id.contains_key(end.transit_gateway_id.as_str())
                {
                    sides.push(Side {
                        member: m,
                        peer: end.transit_gateway_id.as_str(),
                        peering: p,
                    });
                }
            }
        }
    }
    let nodes: Vec<Node> = context
        .all
        .iter()
        .map(|m| Node {
            id: m.tgw.id.clone(),
            region: m.region.clone(),
            transit: transit(m, out),
        })
        .collect();
    let links = sides.iter().filter(|s| up(&s.peering.id)).map(|s| Link {
        attachment: s.peering.id.clone(),
        a: s.member.tgw.id.clone(),
        b: s.peer.to_owned(),
    });
    let graph = Graph::new(nodes, links);
    let frozen = frozen_by_unreadable(context, &sides, &state);
    for id in &frozen {
        out.frozen_tables
            .extend(own.get(id).into_iter().flatten().cloned());
    }

    // Where each member installs, with its reports.
    let mut installs: BTreeMap<&str, Vec<RouteTableRef>> = BTreeMap::new();
    for m in context.all.iter().filter(|m| !frozen.contains(m.tgw.id.as_str())) {
        let id = m.tgw.id.as_str();
        if m.targets.is_empty() {
            out.skipped.push(no_targets(m, mesh));
        }
        let mine: BTreeSet<&RouteTableRef> = own.get(id).into_iter().flatten().collect();
        let mut tables: BTreeSet<RouteTableRef> =
            m.targets.iter().map(|t| table_ref(m.region, &t.id)).collect();
        let leaf = graph.node(id).is_some_and(|n| !n.transit);
        for s in sides
            .iter()
            .filter(|s| s.member.tgw.id == id && up(&s.peering.id))
        {
            if graph.edge(id, s.peer) == Some(s.peering.id.as_str()) && s.peering.route_table.is_none() {
                unassociated(out, m, s.peering);
            }
            if let Some(table) = &s.peering.route_table {
                let table = table_ref(m.region, table);
                if !leaf && mine.contains(&table) {
                    tables.insert(table);
                }
            }
        }
        for table in &tables {
            for (p, why) in &context.unsettled {
                out.skipped.push(SkipReport {
                    region: m.region.to_string(),
                    resource: table.id.clone(),
                    destination: Some(p.to_string()),
                    reason: format!("{why}: route kept as it is until it settles"),
                    account: None,
                });
                out.frozen_keys.insert(RouteKey {
                    table: table.clone(),
                    destination: *p,
                });
            }
        }
        installs.insert(id, tables.into_iter().collect());
    }

    // Every origin's prefixes, at every member that reaches it.
    let group: BTreeMap<&str, usize> = graph
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut notes = RouteNotes::default();
    for (id, tables) in &installs {
        for table in tables {
            notes.group_table(table.clone(), group[id]);
        }
    }
    let mut origin_of: BTreeMap<Cidr, &str> = BTreeMap::new();
    let mut desired = Vec::new();
    let mut reached: BTreeSet<(&str, &str)> = BTreeSet::new();
    for o in context.all {
        let exported = context.exported(o);
        if exported.is_empty() {
            continue;
        }
        let Some(paths) = graph.toward(&o.tgw.id, config.max_hops) else {
            continue;
        };
        let destinations = learned(&exported, &context.others(&o.tgw.id), config.summarize);
        let from = group[o.tgw.id.as_str()];
        for d in &destinations {
            notes.group_destination(*d, from);
            origin_of.insert(*d, o.tgw.id.as_str());
        }
        for (t, hop) in paths.reached() {
            let Some((id, tables)) = installs.get_key_value(t.id.as_str()) else {
                continue;
            };
            reached.insert((id, o.tgw.id.as_str()));
            let hops = if hop.distance == 1 { "hop" } else { "hops" };
            notes.note(
                group[t.id.as_str()],
                from,
                format!("path {} ({} {hops})", paths.regions(&t.id), hop.distance),
            );
            let target = RouteTarget::TransitGatewayAttachment(hop.attachment.to_owned());
            for table in tables {
                for destination in &destinations {
                    desired.push(DesiredRoute {
                        key: RouteKey {
                            table: table.clone(),
                            destination: *destination,
                        },
                        target: target.clone(),
                    });
                }
            }
        }
    }
    out.notes = notes;

    // Routes that only a peering in transition still carries stay as they
    // are until it settles: those over it, and those a path through it
    // would still give (a TGW farther away, whose path went through it).
    let in_transition = |id: &str| {
        state
            .get(id)
            .copied()
            .filter(|s| s.lifecycle() == Lifecycle::Transitional)
    };
    let maybe = if sides.iter().any(|s| in_transition(&s.peering.id).is_some()) {
        let links = sides
            .iter()
            .filter(|s| {
                state
                    .get(s.peering.id.as_str())
                    .is_some_and(|st| st.lifecycle() != Lifecycle::Gone)
            })
            .map(|s| Link {
                attachment: s.peering.id.clone(),
                a: s.member.tgw.id.clone(),
                b: s.peer.to_owned(),
            });
        let optimistic = Graph::new(graph.nodes().iter().cloned(), links);
        let origins: BTreeSet<&str> = origin_of.values().copied().collect();
        through_transition(
            &graph,
            &optimistic,
            &origins,
            &reached,
            config.max_hops,
            &in_transition,
        )
    } else {
        BTreeMap::new()
    };
    let wanted: FxHashSet<&RouteKey> = desired.iter().map(|d| &d.key).collect();
    let owner: BTreeMap<&RouteTableRef, &str> = own
        .iter()
        .filter(|(id, _)| !frozen.contains(**id))
        .flat_map(|(id, tables)| tables.iter().map(move |t| (t, *id)))
        .collect();
    let mut kept = Vec::new();
    for entry in ledger.iter().filter(|e| !wanted.contains(&e.key)) {
        let Some(t) = owner.get(&entry.key.table) else {
            continue;
        };
        let over = [Some(&entry.target), entry.previous.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|target| match target {
                RouteTarget::TransitGatewayAttachment(id) => {
                    in_transition(id).map(|s| format!("peering attachment {id} is {s}"))
                }
                _ => None,
            });
        let why = over.or_else(|| {
            let o = origin_of.get(&entry.key.destination)?;
            maybe.get(&((*t).to_owned(), (*o).to_owned())).cloned()
        });
        if let Some(why) = why {
            out.skipped.push(SkipReport {
                region: entry.key.table.region.to_string(),
                resource: entry.key.table.id.clone(),
                destination: Some(entry.key.destination.to_string()),
                reason: format!(
                    "{why} and no other path reaches the prefix: route kept as it is until it settles"
                ),
                account: None,
            });
            kept.push(entry.key.clone());
        }
    }
    drop(wanted);
    out.frozen_keys.extend(kept);
    desired
}

/// (member, origin) pairs that only a path through a peering in transition
/// connects (the graph with those peerings, `optimistic`, does; the graph
/// of forwarding ones does not), with the first such peering on the path.
fn through_transition<'s>(
    graph: &Graph,
    optimistic: &Graph,
    origins: &BTreeSet<&str>,
    reached: &BTreeSet<(&str, &str)>,
    max_hops: Option<usize>,
    in_transition: &dyn Fn(&str) -> Option<&'s AttachmentState>,
) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for o in origins {
        let Some(paths) = optimistic.toward(o, max_hops) else {
            continue;
        };
        for (t, _) in paths.reached() {
            if reached.contains(&(t.id.as_str(), *o)) {
                continue;
            }
            let path = paths.path(&t.id);
            let cut = path.windows(2).find_map(|w| {
                let (x, y) = (&w[0].id, &w[1].id);
                if graph.edge(x, y).is_some() {
                    return None;
                }
                let id = optimistic.edge(x, y)?;
                in_transition(id).map(|s| format!("peering attachment {id} is {s}"))
            });
            if let Some(why) = cut {
                out.insert((t.id.clone(), (*o).to_owned()), why);
            }
        }
    }
    out
}

/// Members whose routes may depend on a region that could not be read:
/// every member connected, over peerings not gone, to a transit gateway in
/// such a region (or in a region AWS did not name).
fn frozen_by_unreadable<'a>(
    context: &Mesh<'a>,
    sides: &[Side<'a>],
    state: &BTreeMap<&str, &AttachmentState>,
) -> BTreeSet<&'a str> {
    let mut frozen: BTreeSet<&'a str> = BTreeSet::new();
    if context.unreadable.is_empty() {
        return frozen;
    }
    let alive = |p: &PeeringAttachment| {
        state
            .get(p.id.as_str())
            .is_none_or(|s| s.lifecycle() != Lifecycle::Gone)
    };
    let mut queue: VecDeque<&'a str> = VecDeque::new();
    for view in context.views {
        for m in context.all.iter().filter(|m| m.region == &view.region) {
            let touches_dark = view.peerings.iter().filter(|p| alive(p)).any(|p| {
                p.peer_of(&m.tgw.id).is_some_and(|end| {
                    !context.by_id.contains_key(end.transit_gateway_id.as_str())
                        && end
                            .region
                            .as_ref()
                            .is_none_or(|r| context.unreadable.contains(r.as_str()))
                })
            });
            if touches_dark && frozen.insert(m.tgw.id.as_str()) {
                queue.push_back(m.tgw.id.as_str());
            }
        }
    }
    let mut links: BTreeMap<&'a str, Vec<&'a str>> = BTreeMap::new();
    for s in sides.iter().filter(|s| alive(s.peering)) {
        links.entry(s.member.tgw.id.as_str()).or_default().push(s.peer);
        links.entry(s.peer).or_default().push(s.member.tgw.id.as_str());
    }
    while let Some(at) = queue.pop_front() {
        for next in links.get(at).into_iter().flatten() {
            if frozen.insert(next) {
                queue.push_back(next);
            }
        }
    }
    frozen
}

/// Our routes whose peering went away, as EC2 shows them: a static route
/// whose attachment is deleted reads `blackhole` with no attachment, so the
/// planner could not tell it from a blackhole someone else put there and
/// would forget it, leaving it in place. A blackhole at a key the ledger
/// holds, recorded toward a peering attachment that its table's region does
/// not read as forwarding (gone, in transition, or no longer listed), is
/// that route: it is shown with the target we installed, so it is replaced
/// or deleted as ours. A blackhole over a peering that still forwards was
/// put there by someone else and stays foreign.
pub(super) fn our_dark_routes(
    views: &[super::RegionView],
    ledger: &OwnershipLedger,
) -> BTreeMap<RouteKey, RouteTarget> {
    let mut out = BTreeMap::new();
    for view in views {
        let up: BTreeSet<&str> = view
            .peerings
            .iter()
            .filter(|p| p.state.lifecycle() == Lifecycle::Up)
            .map(|p| p.id.as_str())
            .collect();
        for r in view.routes.iter().filter(|r| {
            r.route.state == RouteState::Blackhole
                && r.route.target == RouteTarget::Blackhole
                && r.route.origin == RouteOrigin::Static
        }) {
            let Some(entry) = ledger.get(&r.route.key) else {
                continue;
            };
            let dark = [Some(&entry.target), entry.previous.as_ref()]
                .into_iter()
                .flatten()
                .find(
                    |t| matches!(t, RouteTarget::TransitGatewayAttachment(id) if !up.contains(id.as_str())),
                );
            if let Some(target) = dark {
                out.insert(r.route.key.clone(), target.clone());
            }
        }
    }
    out
}
