//! Route writes, tolerant of what a retry or a race leaves behind: a create
//! that finds the route there, a delete or replace that finds it gone.
//! Every write waits for a token of the region's bucket first.

use lbgp_core::{Route, RouteKey, RouteOrigin, RouteState, RouteTableRef, RouteTarget, TableKind};

use super::{Ec2, RouteTableQuery, filter};
use crate::Error;

/// The result of a tolerant write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The write was applied.
    Applied,
    /// A create found the route already there (perhaps our own earlier
    /// write whose response was lost).
    AlreadyExists,
    /// A delete or replace found no route.
    NotFound,
}

/// CreateRoute and ReplaceRoute take the same fields through builders of
/// different types: this sets destination and target on either and sends it.
macro_rules! send_vpc_route {
    ($self:ident, $call:expr, $key:expr, $target:expr, $op:literal) => {{
        let dest = $key.destination.to_string();
        let call = $call.route_table_id(&$key.table.id);
        let call = if $key.destination.is_ipv6() {
            call.destination_ipv6_cidr_block(&dest)
        } else {
            call.destination_cidr_block(&dest)
        };
        let call = match $target {
            RouteTarget::TransitGateway(id) => call.transit_gateway_id(id),
            RouteTarget::NetworkInterface(id) => call.network_interface_id(id),
            RouteTarget::Instance(id) => call.instance_id(id),
            other => return Err($self.unsupported($op, other)),
        };
        call.send().await.map(|_| ()).map_err(|e| $self.err($op, e))
    }};
}

/// The transit gateway twin of [`send_vpc_route`].
macro_rules! send_tgw_route {
    ($self:ident, $call:expr, $key:expr, $target:expr, $op:literal) => {{
        let call = $call
            .transit_gateway_route_table_id(&$key.table.id)
            .destination_cidr_block($key.destination.to_string());
        let call = match $target {
            RouteTarget::TransitGatewayAttachment(id) => call.transit_gateway_attachment_id(id),
            RouteTarget::Blackhole => call.blackhole(true),
            other => return Err($self.unsupported($op, other)),
        };
        call.send().await.map(|_| ()).map_err(|e| $self.err($op, e))
    }};
}

/// The right to send one route write now: the region's token bucket gave
/// its token. A caller with a deadline checks it after taking the permit,
/// since the wait for a token can be long when many writes are queued.
#[derive(Debug)]
pub struct WritePermit<'a> {
    ec2: &'a Ec2,
}

impl WritePermit<'_> {
    /// Creates a route (see [`Ec2::create_route`]).
    pub async fn create_route(self, key: &RouteKey, target: &RouteTarget) -> Result<WriteOutcome, Error> {
        self.ec2.send_create(key, target).await
    }
    /// Repoints a route (see [`Ec2::replace_route`]).
    pub async fn replace_route(self, key: &RouteKey, target: &RouteTarget) -> Result<WriteOutcome, Error> {
        self.ec2.send_replace(key, target).await
    }
    /// Deletes a route (see [`Ec2::delete_route`]).
    pub async fn delete_route(self, key: &RouteKey) -> Result<WriteOutcome, Error> {
        self.ec2.send_delete(key).await
    }
    /// Repoints a VPC route whose destination is a managed prefix list
    /// (`ReplaceRoute` with `DestinationPrefixListId`). `NotFound` when
    /// the table has no route for that list.
    pub async fn replace_list_route(
        self,
        table: &RouteTableRef,
        prefix_list_id: &str,
        target: &RouteTarget,
    ) -> Result<WriteOutcome, Error> {
        self.ec2.send_replace_list(table, prefix_list_id, target).await
    }
}

impl Ec2 {
    /// Waits for the region's write token.
    pub async fn write_permit(&self) -> WritePermit<'_> {
        self.writes.acquire().await;
        WritePermit { ec2: self }
    }

    /// Reads the static route at `key`, if any (after a create reported
    /// `RouteAlreadyExists`, to tell our own lost write from someone else's;
    /// after a replace reported `InvalidParameterValue`, to tell a missing
    /// route from a refused one).
    pub async fn read_static_route(&self, key: &RouteKey) -> Result<Option<Route>, Error> {
        let routes: Vec<Route> = match key.table.kind {
            TableKind::Vpc => self
                .vpc_route_tables(RouteTableQuery::Ids(&[key.table.id.as_str()]))
                .await?
                .into_iter()
                .flat_map(|t| t.routes.into_iter().map(|r| r.route))
                .collect(),
            TableKind::TransitGateway => {
                let response = self
                    .client
                    .search_transit_gateway_routes()
                    .transit_gateway_route_table_id(&key.table.id)
                    .filters(filter(
                        "route-search.exact-match",
                        &[&key.destination.to_string()],
                    ))
                    .filters(filter("type", &["static"]))
                    .send()
                    .await
                    .map_err(|e| self.err("SearchTransitGatewayRoutes", e))?;
                response
                    .routes()
                    .iter()
                    .filter(|r| {
                        r.state()
                            .is_none_or(|s| matches!(s.as_str(), "active" | "blackhole" | "pending"))
                    })
                    .filter_map(|r| {
                        let id = r
                            .transit_gateway_attachments()
                            .first()?
                            .transit_gateway_attachment_id()?;
                        Some(Route {
                            key: key.clone(),
                            target: RouteTarget::TransitGatewayAttachment(id.to_owned()),
                            state: RouteState::Active,
                            origin: RouteOrigin::Static,
                        })
                    })
                    .collect()
            }
        };
        Ok(routes
            .into_iter()
            .find(|r| r.key == *key && r.origin == RouteOrigin::Static))
    }

    /// Creates a route, paced. `AlreadyExists` when the destination is taken.
    pub async fn create_route(&self, key: &RouteKey, target: &RouteTarget) -> Result<WriteOutcome, Error> {
        self.write_permit().await.create_route(key, target).await
    }

    /// Repoints a route, paced. `NotFound` when there is no route to repoint.
    pub async fn replace_route(&self, key: &RouteKey, target: &RouteTarget) -> Result<WriteOutcome, Error> {
        self.write_permit().await.replace_route(key, target).await
    }

    /// Deletes a route, paced. `NotFound` when it is already gone.
    pub async fn delete_route(&self, key: &RouteKey) -> Result<WriteOutcome, Error> {
        self.write_permit().await.delete_route(key).await
    }

    async fn send_create(&self, key: &RouteKey, target: &RouteTarget) -> Result<WriteOutcome, Error> {
        let result = match key.table.kind {
            TableKind::Vpc => send_vpc_route!(self, self.client.create_route(), key, target, "CreateRoute"),
            TableKind::TransitGateway => send_tgw_route!(
                self,
                self.client.create_transit_gateway_route(),
                key,
                target,
                "CreateTransitGatewayRoute"
            ),
        };
        match result {
            Ok(()) => Ok(WriteOutcome::Applied),
            Err(e) if e.code() == Some("RouteAlreadyExists") => Ok(WriteOutcome::AlreadyExists),
            Err(e) => Err(e),
        }
    }

    async fn send_replace(&self, key: &RouteKey, target: &RouteTarget) -> Result<WriteOutcome, Error> {
        let result = match key.table.kind {
            TableKind::Vpc => send_vpc_route!(self, self.client.replace_route(), key, target, "ReplaceRoute"),
            TableKind::TransitGateway => send_tgw_route!(
                self,
                self.client.replace_transit_gateway_route(),
                key,
                target,
                "ReplaceTransitGatewayRoute"
            ),
        };
        match result {
            Ok(()) => Ok(WriteOutcome::Applied),
            Err(e) if e.code() == Some("InvalidRoute.NotFound") => Ok(WriteOutcome::NotFound),
            // EC2 answers ReplaceRoute of a missing VPC route with
            // InvalidParameterValue ("There is no route defined for …"), the
            // code it also gives a refused target. The route table tells the
            // two apart, not the message: only a missing route is "gone".
            Err(e) if e.code() == Some("InvalidParameterValue") && key.table.kind == TableKind::Vpc => {
                match self.read_static_route(key).await? {
                    None => Ok(WriteOutcome::NotFound),
                    Some(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn send_replace_list(
        &self,
        table: &RouteTableRef,
        prefix_list_id: &str,
        target: &RouteTarget,
    ) -> Result<WriteOutcome, Error> {
        let call = self
            .client
            .replace_route()
            .route_table_id(&table.id)
            .destination_prefix_list_id(prefix_list_id);
        let call = match target {
            RouteTarget::TransitGateway(id) => call.transit_gateway_id(id),
            RouteTarget::NetworkInterface(id) => call.network_interface_id(id),
            RouteTarget::Instance(id) => call.instance_id(id),
            other => return Err(self.unsupported("ReplaceRoute", other)),
        };
        match call.send().await.map_err(|e| self.err("ReplaceRoute", e)) {
            Ok(_) => Ok(WriteOutcome::Applied),
            Err(e) if e.code() == Some("InvalidRoute.NotFound") => Ok(WriteOutcome::NotFound),
            // As for a CIDR route, EC2 answers a missing one with
            // InvalidParameterValue: the table tells it from a refusal.
            Err(e) if e.code() == Some("InvalidParameterValue") => {
                let tables = self
                    .vpc_route_tables_with_lists(RouteTableQuery::Ids(&[table.id.as_str()]))
                    .await?;
                let present = tables
                    .iter()
                    .flat_map(|(_, lists)| lists)
                    .any(|l| l.prefix_list_id == prefix_list_id);
                if present {
                    Err(e)
                } else {
                    Ok(WriteOutcome::NotFound)
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn send_delete(&self, key: &RouteKey) -> Result<WriteOutcome, Error> {
        let dest = key.destination.to_string();
        let result = match key.table.kind {
            TableKind::Vpc => {
                let mut call = self.client.delete_route().route_table_id(&key.table.id);
                call = if key.destination.is_ipv6() {
                    call.destination_ipv6_cidr_block(&dest)
                } else {
                    call.destination_cidr_block(&dest)
                };
                call.send()
                    .await
                    .map(|_| ())
                    .map_err(|e| self.err("DeleteRoute", e))
            }
            TableKind::TransitGateway => self
                .client
                .delete_transit_gateway_route()
                .transit_gateway_route_table_id(&key.table.id)
                .destination_cidr_block(&dest)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.err("DeleteTransitGatewayRoute", e)),
        };
        match result {
            Ok(()) => Ok(WriteOutcome::Applied),
            Err(e) if e.code() == Some("InvalidRoute.NotFound") => Ok(WriteOutcome::NotFound),
            Err(e) => Err(e),
        }
    }

    fn unsupported(&self, operation: &'static str, target: &RouteTarget) -> Error {
        Error::Unexpected {
            operation,
            region: self.region.to_string(),
            detail: format!("target {target:?} cannot be written by {operation}"),
        }
    }
}
