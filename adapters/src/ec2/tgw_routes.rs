//! Transit gateway routes: SearchTransitGatewayRoutes, read completely.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use lbgp_core::topology::{AttachmentResource, TgwRoute, TgwRouteAttachment};
use lbgp_core::{Cidr, Route, RouteKey, RouteOrigin, RouteState, RouteTarget, TableKind};

use super::{Ec2, code_of, filter};
use crate::Error;

impl Ec2 {
    /// Every route of a TGW route table, static and propagated, IPv4 and
    /// IPv6, in the states that exist for planning (`active`, `blackhole`,
    /// and `pending`: in flight, never created twice; `deleting` and
    /// `deleted` routes are gone).
    ///
    /// SearchTransitGatewayRoutes pages with a `NextToken` (current AWS): one
    /// search of the whole table, page after page, reads it all. An answer
    /// that says `AdditionalRoutesAvailable` and gives no token (AWS as it
    /// was: at most 1,000 routes a search) falls back to splitting: the two
    /// families are searched apart, and a truncated search is split into
    /// the two halves of its prefix (`route-search.subnet-of-match`, which
    /// includes the equal prefix) until every answer is complete; the
    /// searches of one depth go out together.
    ///
    /// A split loses the routes whose prefix *equals* the split prefix (they
    /// are in neither half). Rather than one exact-match search per split,
    /// one `route-search.supernet-of-match` just below each deepest split
    /// finds them all: every split prefix is a supernet of it, and no prefix
    /// has more than 129 supernets (at most two routes each, static and
    /// propagated), so those answers are complete.
    pub async fn tgw_routes(&self, route_table_id: &str) -> Result<Vec<TgwRoute>, Error> {
        self.tgw_routes_expecting(route_table_id, &[]).await
    }

    /// [`Ec2::tgw_routes`] for a caller that knows roughly what the table
    /// holds (the routes its ledger says it installed, say): when AWS does
    /// not page, the split searches start at prefixes expected to hold at
    /// most [`EXPECTED_PER_SEARCH`] routes each, instead of discovering them
    /// by truncated searches. The answer is complete whatever the table
    /// really holds: a search that still comes back truncated is split as
    /// usual.
    pub async fn tgw_routes_expecting(
        &self,
        route_table_id: &str,
        expected: &[Cidr],
    ) -> Result<Vec<TgwRoute>, Error> {
        let mut seen: BTreeMap<(Cidr, RouteOrigin), TgwRoute> = BTreeMap::new();
        let roots: [ipnet::IpNet; 2] = [
            "0.0.0.0/0".parse().map_err(|_| self.bug("0.0.0.0/0"))?,
            "::/0".parse().map_err(|_| self.bug("::/0"))?,
        ];
        // One search of the whole table, paged: complete when AWS pages.
        let Some((routes, truncated)) = self.search_tgw_routes(route_table_id, None).await? else {
            // A deleted table holds no routes: the caller forgets ours.
            return Ok(vec![]);
        };
        seen.extend(
            routes
                .into_iter()
                .map(|r| ((r.route.key.destination, r.route.origin), r)),
        );
        if !truncated {
            return Ok(seen.into_values().collect());
        }
        // Truncated without a token: split.
        let expected: Vec<ipnet::IpNet> = expected.iter().map(|c| c.net()).collect();
        let (mut frontier, mut splits): (Vec<Option<ipnet::IpNet>>, Vec<ipnet::IpNet>) =
            (Vec::new(), Vec::new());
        if expected.len() <= EXPECTED_PER_SEARCH {
            frontier.extend(roots.map(Some));
        } else {
            let mut planned = Vec::new();
            for root in roots {
                plan_searches(root, &expected, &mut planned, &mut splits);
            }
            frontier.extend(planned.into_iter().map(Some));
        }
        while !frontier.is_empty() {
            let searches: Vec<_> = frontier
                .iter()
                .map(|scope| {
                    self.search_tgw_routes(route_table_id, scope.map(|s| ("route-search.subnet-of-match", s)))
                })
                .collect();
            let answers: Vec<_> = futures::stream::iter(searches)
                .buffered(SEARCHES_IN_FLIGHT)
                .try_collect()
                .await?;
            let mut next = Vec::new();
            for (scope, answer) in frontier.into_iter().zip(answers) {
                let Some((routes, truncated)) = answer else {
                    // A deleted table holds no routes: the caller forgets ours.
                    return Ok(vec![]);
                };
                seen.extend(
                    routes
                        .into_iter()
                        .map(|r| ((r.route.key.destination, r.route.origin), r)),
                );
                if !truncated {
                    continue;
                }
                let Some(scope) = scope else {
                    next.extend(roots.map(Some));
                    continue;
                };
                let halves = split(scope).ok_or_else(|| Error::Unexpected {
                    operation: "SearchTransitGatewayRoutes",
                    region: self.region.to_string(),
                    detail: format!(
                        "{route_table_id}: more than 1,000 routes match the host prefix {scope}; cannot read the table completely"
                    ),
                })?;
                splits.push(scope);
                next.extend(halves.map(Some));
            }
            frontier = next;
        }
        // The deepest splits: those no other split lies inside. Their
        // supernet searches go one level below them, so every split prefix
        // is a strict supernet of what is searched for: found whether or not
        // AWS counts a prefix as a supernet of itself.
        let below_deepest: Vec<ipnet::IpNet> = splits
            .iter()
            .filter(|s| !splits.iter().any(|other| other != *s && s.contains(other)))
            .filter_map(|s| split(*s).map(|[first, _]| first))
            .collect();
        let searches: Vec<_> = below_deepest
            .iter()
            .map(|scope| {
                self.search_tgw_routes(route_table_id, Some(("route-search.supernet-of-match", *scope)))
            })
            .collect();
        let answers: Vec<_> = futures::stream::iter(searches)
            .buffered(SEARCHES_IN_FLIGHT)
            .try_collect()
            .await?;
        for (scope, answer) in below_deepest.iter().zip(answers) {
            let Some((routes, truncated)) = answer else {
                return Ok(vec![]);
            };
            if truncated {
                // At most two routes (static, propagated) per supernet: never.
                return Err(Error::Unexpected {
                    operation: "SearchTransitGatewayRoutes",
                    region: self.region.to_string(),
                    detail: format!(
                        "{route_table_id}: the supernets of {scope} came back truncated; cannot read the table completely"
                    ),
                });
            }
            seen.extend(
                routes
                    .into_iter()
                    .map(|r| ((r.route.key.destination, r.route.origin), r)),
            );
        }
        Ok(seen.into_values().collect())
    }

    /// One search of the whole table or with a `(search filter, prefix)`,
    /// paged with `NextToken` while AWS gives one: the routes, and whether
    /// more matched than it answered without a token to fetch them (AWS as
    /// it was); `None` when the table does not exist.
    async fn search_tgw_routes(
        &self,
        route_table_id: &str,
        search: Option<(&str, ipnet::IpNet)>,
    ) -> Result<Option<(Vec<TgwRoute>, bool)>, Error> {
        let table = self.table_ref(TableKind::TransitGateway, route_table_id);
        let mut routes = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut call = self
                .client
                .search_transit_gateway_routes()
                .transit_gateway_route_table_id(route_table_id)
                .filters(filter("type", &["static", "propagated"]))
                .max_results(1000)
                .set_next_token(token.take());
            if let Some((name, scope)) = search {
                call = call.filters(filter(name, &[&scope.to_string()]));
            }
            let response = match call.send().await {
                Ok(r) => r,
                Err(e) if code_of(&e) == Some("InvalidRouteTableID.NotFound") => return Ok(None),
                Err(e) => return Err(self.err("SearchTransitGatewayRoutes", e)),
            };
            for r in response.routes() {
                if let Some(route) = self.tgw_route(&table, r)? {
                    routes.push(route);
                }
            }
            match response.next_token().filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next.to_owned()),
                None => {
                    return Ok(Some((
                        routes,
                        response.additional_routes_available() == Some(true),
                    )));
                }
            }
        }
    }

    /// One route of a search, or `None` for a route that is gone
    /// (`deleting`, `deleted`) or has no CIDR destination.
    fn tgw_route(
        &self,
        table: &lbgp_core::RouteTableRef,
        r: &aws_sdk_ec2::types::TransitGatewayRoute,
    ) -> Result<Option<TgwRoute>, Error> {
        let Some(dest) = r.destination_cidr_block() else {
            return Ok(None);
        };
        let state = r.state().map(|s| s.as_str()).unwrap_or("active");
        let state = match state {
            "deleting" | "deleted" => return Ok(None),
            "blackhole" => RouteState::Blackhole,
            // `pending`: being created, ours or anyone's: it exists.
            _ => RouteState::Active,
        };
        let destination = self.parse_cidr(dest, "SearchTransitGatewayRoutes")?;
        let attachments: Vec<TgwRouteAttachment> = r
            .transit_gateway_attachments()
            .iter()
            .map(|a| TgwRouteAttachment {
                attachment_id: a.transit_gateway_attachment_id().unwrap_or_default().to_owned(),
                resource_type: AttachmentResource::from_aws(
                    a.resource_type().map(|t| t.as_str()).unwrap_or_default(),
                ),
            })
            .collect();
        let origin = match r.r#type().map(|t| t.as_str()) {
            Some("propagated") => RouteOrigin::Propagated,
            _ => RouteOrigin::Static,
        };
        let target = match (state, attachments.first()) {
            (RouteState::Blackhole, None) => RouteTarget::Blackhole,
            (_, Some(a)) => RouteTarget::TransitGatewayAttachment(a.attachment_id.clone()),
            (_, None) => RouteTarget::Other("none".to_owned()),
        };
        Ok(Some(TgwRoute {
            route: Route {
                key: RouteKey {
                    table: table.clone(),
                    destination,
                },
                target,
                state,
                origin,
            },
            attachments,
        }))
    }

    fn bug(&self, what: &str) -> Error {
        Error::Unexpected {
            operation: "internal",
            region: self.region.to_string(),
            detail: format!("constant {what} does not parse"),
        }
    }
}

/// SearchTransitGatewayRoutes calls one table read keeps in flight: the
/// searches of one depth go out together, within EC2's request rate.
pub const SEARCHES_IN_FLIGHT: usize = 8;

/// Routes a search is planned for when the caller says what it expects: a
/// fifth of the 1,000 a search answers is left for routes it did not expect.
pub const EXPECTED_PER_SEARCH: usize = 800;

/// Splits `scope` into the searches that each cover at most
/// [`EXPECTED_PER_SEARCH`] of the `expected` prefixes (those inside
/// `scope`), pushing them to `searches` and every prefix split on the way to
/// `splits`.
fn plan_searches(
    scope: ipnet::IpNet,
    expected: &[ipnet::IpNet],
    searches: &mut Vec<ipnet::IpNet>,
    splits: &mut Vec<ipnet::IpNet>,
) {
    let inside: Vec<ipnet::IpNet> = expected.iter().filter(|e| scope.contains(*e)).copied().collect();
    match split(scope) {
        Some(halves) if inside.len() > EXPECTED_PER_SEARCH => {
            splits.push(scope);
            for half in halves {
                plan_searches(half, &inside, searches, splits);
            }
        }
        _ => searches.push(scope),
    }
}

/// The two halves of a prefix, or `None` for a host prefix.
fn split(net: ipnet::IpNet) -> Option<[ipnet::IpNet; 2]> {
    let mut halves = net.subnets(net.prefix_len().checked_add(1)?).ok()?;
    Some([halves.next()?, halves.next()?])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn split_halves() {
        let [a, b] = split("10.0.0.0/8".parse().unwrap()).unwrap();
        assert_eq!(a.to_string(), "10.0.0.0/9");
        assert_eq!(b.to_string(), "10.128.0.0/9");
        assert!(split("10.0.0.1/32".parse().unwrap()).is_none());
        assert_eq!(split("::/0".parse().unwrap()).unwrap()[1].to_string(), "8000::/1");
    }
}
