//! L-BGP's path selection (`LBGP_ROUTING=shortest-path`): the mesh as a
//! graph, and for every origin the next hop of every TGW on a shortest path
//! toward it.
//!
//! - **Nodes** are member transit gateways; **edges** are peering
//!   attachments between two of them that forward (`available`, or
//!   `modifying`). Several attachments between one pair are one edge: the
//!   one with the lowest attachment id.
//! - **Distances** are counted in peering hops, by a breadth-first search
//!   from the origin. A TGW tagged `lbgp:transit=false` is a *leaf*: it is
//!   reached (it learns prefixes) and it is an origin, but the search never
//!   goes through it, so no path has a leaf in its middle.
//! - **Next hop** of a TGW at distance `d` from the origin: of its
//!   neighbours at distance `d - 1` that may carry transit (or are the origin
//!   itself), the one with the smallest transit gateway id; the route goes
//!   over the edge's attachment (the lowest attachment id of that pair).
//!   Every run and every TGW apply the same rule to the same graph, so equal
//!   paths never flap.
//! - **Loop freedom.** The distance strictly decreases along next hops, so
//!   following them from any TGW reaches the origin in exactly its distance,
//!   never visiting a TGW twice. The graph is the whole mesh as one run read
//!   it: there is no hop-by-hop convergence in which a loop could form.
//! - `max_hops` cuts the search: TGWs farther than that from the origin get
//!   no next hop (the prefixes are not installed there).
//!
//! Pure and deterministic: the result does not depend on the order of the
//! nodes and links given.

use std::collections::{BTreeMap, VecDeque};

use crate::model::Region;

/// Tag key on a transit gateway: `lbgp:transit=false` makes it a leaf that
/// never carries traffic between two other TGWs (shortest-path mode).
pub const TAG_TRANSIT: &str = "lbgp:transit";

/// A member transit gateway.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    /// `tgw-…`.
    pub id: String,
    /// Its region.
    pub region: Region,
    /// False for a leaf (`lbgp:transit=false`): never an intermediate hop.
    pub transit: bool,
}

/// A peering attachment between two member transit gateways that forwards.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Link {
    /// `tgw-attach-…`.
    pub attachment: String,
    /// One transit gateway.
    pub a: String,
    /// The other.
    pub b: String,
}

/// The mesh: nodes sorted by id, each with its neighbours sorted by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    nodes: Vec<Node>,
    index: BTreeMap<String, usize>,
    /// Per node: (neighbour, attachment) sorted by the neighbour's id.
    neighbours: Vec<Vec<(usize, String)>>,
}

impl Graph {
    /// The graph of `nodes` and `links`. A node listed twice is one node
    /// (a leaf if either says so); a link to an unknown node or from a node
    /// to itself is ignored; of several links between one pair, the one with
    /// the lowest attachment id is the edge.
    pub fn new(nodes: impl IntoIterator<Item = Node>, links: impl IntoIterator<Item = Link>) -> Graph {
        let mut by_id: BTreeMap<String, Node> = BTreeMap::new();
        for node in nodes {
            match by_id.get_mut(&node.id) {
                Some(seen) => {
                    seen.transit &= node.transit;
                    if node.region < seen.region {
                        seen.region = node.region;
                    }
                }
                None => {
                    by_id.insert(node.id.clone(), node);
                }
            }
        }
        let nodes: Vec<Node> = by_id.into_values().collect();
        let index: BTreeMap<String, usize> =
            nodes.iter().enumerate().map(|(i, n)| (n.id.clone(), i)).collect();
        let mut pairs: BTreeMap<(usize, usize), String> = BTreeMap::new();
        for link in links {
            let (Some(&a), Some(&b)) = (index.get(&link.a), index.get(&link.b)) else {
                continue;
            };
            if a == b {
                continue;
            }
            let pair = (a.min(b), a.max(b));
            match pairs.get_mut(&pair) {
                Some(chosen) if *chosen <= link.attachment => {}
                Some(chosen) => *chosen = link.attachment,
                None => {
                    pairs.insert(pair, link.attachment);
                }
            }
        }
        let mut neighbours = vec![Vec::new(); nodes.len()];
        for ((a, b), attachment) in pairs {
            neighbours[a].push((b, attachment.clone()));
            neighbours[b].push((a, attachment));
        }
        // Node indices follow id order, so sorting by index sorts by id.
        for list in &mut neighbours {
            list.sort();
        }
        Graph {
            nodes,
            index,
            neighbours,
        }
    }

    /// The nodes, by id.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node `id`, if it is in the graph.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.index.get(id).map(|&i| &self.nodes[i])
    }

    /// The attachment of the edge between `a` and `b`, if they are peered.
    pub fn edge(&self, a: &str, b: &str) -> Option<&str> {
        let (&a, &b) = (self.index.get(a)?, self.index.get(b)?);
        self.neighbours[a]
            .iter()
            .find(|(n, _)| *n == b)
            .map(|(_, attachment)| attachment.as_str())
    }

    /// The neighbours of `id` with the attachment to each, by id.
    pub fn neighbours(&self, id: &str) -> impl Iterator<Item = (&Node, &str)> {
        self.index
            .get(id)
            .map(|&i| self.neighbours[i].as_slice())
            .unwrap_or_default()
            .iter()
            .map(|(n, attachment)| (&self.nodes[*n], attachment.as_str()))
    }

    /// Shortest paths toward `origin`, no longer than `max_hops` when
    /// given; `None` when `origin` is not a node.
    pub fn toward(&self, origin: &str, max_hops: Option<usize>) -> Option<Paths<'_>> {
        let origin = *self.index.get(origin)?;
        let mut distance: Vec<Option<usize>> = vec![None; self.nodes.len()];
        distance[origin] = Some(0);
        let mut queue = VecDeque::from([origin]);
        while let Some(at) = queue.pop_front() {
            let d = distance[at].unwrap_or_default();
            // A leaf is reached but never passed through; nothing is
            // reached farther than `max_hops`.
            if (at != origin && !self.nodes[at].transit) || max_hops.is_some_and(|m| d >= m) {
                continue;
            }
            for (n, _) in &self.neighbours[at] {
                if distance[*n].is_none() {
                    distance[*n] = Some(d + 1);
                    queue.push_back(*n);
                }
            }
        }
        let mut next: Vec<Option<(usize, usize)>> = vec![None; self.nodes.len()];
        for (at, d) in distance.iter().enumerate() {
            let Some(d) = *d else { continue };
            if at == origin {
                continue;
            }
            // Neighbours are sorted by id: the first that qualifies is the
            // smallest id (the tie-break).
            next[at] = self.neighbours[at]
                .iter()
                .enumerate()
                .find(|(_, (n, _))| distance[*n] == Some(d - 1) && (*n == origin || self.nodes[*n].transit))
                .map(|(slot, (n, _))| (*n, slot));
        }
        Some(Paths {
            graph: self,
            origin,
            distance,
            next,
        })
    }
}

/// The next hop of a transit gateway toward an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop<'g> {
    /// The neighbour one hop closer to the origin.
    pub next: &'g Node,
    /// The peering attachment to it.
    pub attachment: &'g str,
    /// Peering hops from this TGW to the origin.
    pub distance: usize,
}

/// Shortest paths of every node toward one origin.
#[derive(Debug, Clone)]
pub struct Paths<'g> {
    graph: &'g Graph,
    origin: usize,
    distance: Vec<Option<usize>>,
    /// Per node: (next node, its slot in the node's neighbour list).
    next: Vec<Option<(usize, usize)>>,
}

impl<'g> Paths<'g> {
    /// The origin.
    pub fn origin(&self) -> &'g Node {
        &self.graph.nodes[self.origin]
    }

    /// Peering hops from `id` to the origin (0 for the origin itself);
    /// `None` when it cannot reach it (or only beyond `max_hops`).
    pub fn distance(&self, id: &str) -> Option<usize> {
        self.distance[*self.graph.index.get(id)?]
    }

    /// The next hop of `id` toward the origin; `None` for the origin and
    /// for what cannot reach it.
    pub fn hop(&self, id: &str) -> Option<Hop<'g>> {
        self.hop_at(*self.graph.index.get(id)?)
    }

    fn hop_at(&self, at: usize) -> Option<Hop<'g>> {
        let (n, slot) = self.next[at]?;
        Some(Hop {
            next: &self.graph.nodes[n],
            attachment: self.graph.neighbours[at][slot].1.as_str(),
            distance: self.distance[at].unwrap_or_default(),
        })
    }

    /// Every node that reaches the origin, with its next hop, by id.
    pub fn reached(&self) -> impl Iterator<Item = (&'g Node, Hop<'g>)> + '_ {
        (0..self.graph.nodes.len()).filter_map(|at| self.hop_at(at).map(|hop| (&self.graph.nodes[at], hop)))
    }

    /// The nodes a packet from `id` crosses, `id` first and the origin last
    /// (empty when `id` does not reach it).
    pub fn path(&self, id: &str) -> Vec<&'g Node> {
        let Some(&start) = self.graph.index.get(id) else {
            return Vec::new();
        };
        if self.distance[start].is_none() {
            return Vec::new();
        }
        let mut out = vec![&self.graph.nodes[start]];
        let mut at = start;
        // The distance drops by one at every step: at most `distance` steps.
        while let Some((n, _)) = self.next[at] {
            out.push(&self.graph.nodes[n]);
            at = n;
        }
        out
    }

    /// The path of `id` as its sequence of regions, for reports:
    /// `us-east-1 → eu-west-1 → ap-southeast-2`.
    pub fn regions(&self, id: &str) -> String {
        self.path(id)
            .iter()
            .map(|n| n.region.as_str())
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn node(id: &str, transit: bool) -> Node {
        Node {
            id: id.to_owned(),
            region: Region::new(&format!("te-{id}-1")).unwrap(),
            transit,
        }
    }

    fn link(attachment: &str, a: &str, b: &str) -> Link {
        Link {
            attachment: attachment.to_owned(),
            a: a.to_owned(),
            b: b.to_owned(),
        }
    }

    #[test]
    fn ring_ties_go_to_the_smallest_id_and_leaves_carry_nothing() {
        // a - b - c - d - e - a: from c, a is two hops away both ways.
        let nodes = ["a", "b", "c", "d", "e"].map(|n| node(n, true));
        let links = [
            link("x-ab", "a", "b"),
            link("x-bc", "b", "c"),
            link("x-cd", "c", "d"),
            link("x-de", "d", "e"),
            link("x-ea", "e", "a"),
        ];
        let g = Graph::new(nodes.clone(), links.clone());
        let p = g.toward("a", None).unwrap();
        assert_eq!(p.distance("c"), Some(2));
        assert_eq!(p.hop("c").unwrap().next.id, "b");
        assert_eq!(p.hop("d").unwrap().next.id, "e");
        assert_eq!(p.regions("c"), "te-c-1 → te-b-1 → te-a-1");
        // b a leaf: c must go around through d and e.
        let mut leafy = nodes.to_vec();
        leafy[1].transit = false;
        let g = Graph::new(leafy, links);
        let p = g.toward("a", None).unwrap();
        assert_eq!(p.distance("b"), Some(1));
        assert_eq!(p.distance("c"), Some(3));
        assert_eq!(p.hop("c").unwrap().attachment, "x-cd");
        assert_eq!(
            p.path("c").iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
            ["c", "d", "e", "a"]
        );
        // A leaf still originates: everyone reaches b, the far side of the
        // ring through c (a transit TGW; b is the end of the path, not its
        // middle).
        let p = g.toward("b", None).unwrap();
        assert_eq!((p.distance("a"), p.distance("c")), (Some(1), Some(1)));
        assert_eq!((p.distance("d"), p.distance("e")), (Some(2), Some(2)));
        assert_eq!(
            p.path("d").iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
            ["d", "c", "b"]
        );
        // e is two hops from b both ways: the smaller id, a, is its next hop.
        assert_eq!(p.hop("e").unwrap().next.id, "a");
        // max_hops: toward a around the leaf, c (3 hops) is cut off.
        let cut = g.toward("a", Some(2)).unwrap();
        assert_eq!((cut.distance("d"), cut.distance("c")), (Some(2), None));
        assert!(cut.hop("c").is_none() && cut.path("c").is_empty());
    }

    #[test]
    fn parallel_links_use_the_lowest_attachment_and_strays_are_ignored() {
        let g = Graph::new(
            [node("a", true), node("b", true)],
            [
                link("x-2", "a", "b"),
                link("x-1", "b", "a"),
                link("x-0", "a", "a"),
                link("x-9", "a", "z"),
            ],
        );
        assert_eq!(g.edge("a", "b"), Some("x-1"));
        assert_eq!(g.edge("a", "z"), None);
        assert_eq!(g.neighbours("a").count(), 1);
        assert!(g.toward("z", None).is_none());
    }
}
