//! failover-watcher against the emulator, through its handler and (once)
//! through the real binary under the Lambda Runtime API.
//!
//! The scene: one VPC with a subnet and an associated route table in each of
//! two AZs, a primary router (priority 200, AZ a) and a standby (priority
//! 100, AZ b) in failover group `vpn`, four routes to the primary in three
//! tables (by instance id, by primary interface, by a secondary interface,
//! in the main table), and routes the watcher must never touch: to an
//! instance outside any group, to an internet gateway, in another VPC.
//!
//! Every scenario runs in both route styles (`<scenario>::routes`,
//! `<scenario>::prefix_list`). The watcher reads no `LBGP_ROUTE_STYLE`: it
//! moves the routes it finds toward a member, whatever their destination.
//! What the style changes is the scene: in `prefix-list` style every route
//! toward a router (managed or not, in the group's VPC and in the other
//! one) has a managed prefix list holding its CIDR as destination
//! (`DestinationPrefixListId`), one list per CIDR shared by the tables, as
//! a user moving to prefix lists would have it. The assertions are the
//! same, on the effective routing (prefix-list routes expanded into their
//! entries, `lbgp_tests::styles`): a prefix-list route moves with one
//! `ReplaceRoute`, as a CIDR route does.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_ec2::Client as Ec2Client;
use failover_watcher::App;
use lbgp_tests::failover_fixtures::{
    Router, RouterVpc, attach_secondary_eni, cloudtrail, internet_gateway, launch, launch_router,
    prefix_list, router_vpc, scheduled, start, state_change, stop, terminate,
};
use lbgp_tests::fixtures::{self, TestEnv};
use lbgp_tests::runtime_api::{LocalLambda, Outcome, dev_binary};
use lbgp_tests::styles::{Hop, Style, effective_vpc_hops};
use serde_json::{Value, json};

const REGION: &str = "eu-west-1";

/// Where a route goes.
#[derive(Debug, Clone, Copy)]
enum To<'a> {
    Instance(&'a str),
    Eni(&'a str),
}

/// How the scene writes routes in its style: toward a CIDR, or toward the
/// prefix list holding it (one per CIDR, made on first use).
struct Routes {
    style: Style,
    /// CIDR → `pl-…`.
    lists: Mutex<BTreeMap<String, String>>,
}

impl Routes {
    fn new(style: Style) -> Self {
        Routes {
            style,
            lists: Mutex::new(BTreeMap::new()),
        }
    }

    /// The list holding `dest` (prefix-list style).
    async fn list(&self, ec2: &Ec2Client, dest: &str) -> String {
        if let Some(pl) = self.lists.lock().unwrap().get(dest) {
            return pl.clone();
        }
        let pl = prefix_list(ec2, &format!("corp-{dest}").replace('/', "-"), &[dest])
            .await
            .unwrap();
        self.lists.lock().unwrap().insert(dest.to_owned(), pl.clone());
        pl
    }

    /// The destination of a route call: `dest` or its list.
    async fn create(&self, ec2: &Ec2Client, rtb: &str, dest: &str, to: To<'_>) {
        let call = ec2.create_route().route_table_id(rtb);
        let call = match self.style {
            Style::Routes => call.destination_cidr_block(dest),
            Style::PrefixList => call.destination_prefix_list_id(self.list(ec2, dest).await),
        };
        let call = match to {
            To::Instance(i) => call.instance_id(i),
            To::Eni(e) => call.network_interface_id(e),
        };
        call.send().await.unwrap();
    }

    /// Repoints a route to a network interface by hand (an operator's
    /// change), with the CloudTrail request of the call.
    async fn replace_to_eni(&self, ec2: &Ec2Client, rtb: &str, dest: &str, eni: &str) -> Value {
        let call = ec2.replace_route().route_table_id(rtb).network_interface_id(eni);
        let (call, request) = match self.style {
            Style::Routes => (
                call.destination_cidr_block(dest),
                json!({"routeTableId": rtb, "destinationCidrBlock": dest, "networkInterfaceId": eni}),
            ),
            Style::PrefixList => {
                let pl = self.list(ec2, dest).await;
                (
                    call.destination_prefix_list_id(&pl),
                    json!({"routeTableId": rtb, "destinationPrefixListId": pl, "networkInterfaceId": eni}),
                )
            }
        };
        call.send().await.unwrap();
        request
    }

    async fn delete(&self, ec2: &Ec2Client, rtb: &str, dest: &str) {
        let call = ec2.delete_route().route_table_id(rtb);
        let call = match self.style {
            Style::Routes => call.destination_cidr_block(dest),
            Style::PrefixList => call.destination_prefix_list_id(self.list(ec2, dest).await),
        };
        call.send().await.unwrap();
    }
}

/// Where `dest` goes from `rtb`, effectively (prefix-list routes expanded).
async fn next_hop(ec2: &Ec2Client, rtb: &str, dest: &str) -> Option<Hop> {
    effective_vpc_hops(ec2, rtb).await.unwrap().remove(dest)
}

struct Scene {
    env: TestEnv,
    routes: Routes,
    net: RouterVpc,
    primary: Router,
    standby: Router,
    /// The primary's second interface (one managed route points at it).
    secondary: String,
    /// `(table, destination)` of every route to the group (four).
    managed: Vec<(String, String)>,
    /// `(table, destination)` of routes in the group's VPC the watcher must
    /// not touch.
    unrelated: Vec<(String, String)>,
    /// Route tables of another VPC.
    other_tables: Vec<String>,
}

async fn scene(az: bool, style: Style) -> Scene {
    let env = TestEnv::new(&[REGION]).await.unwrap();
    let ec2 = env.ec2(REGION);
    let routes = Routes::new(style);
    let net = router_vpc(&ec2, REGION, "10.10.0.0/16").await.unwrap();
    let primary = launch_router(&ec2, &net.subnets[0], "vpn", Some(200), az)
        .await
        .unwrap();
    let standby = launch_router(&ec2, &net.subnets[1], "vpn", Some(100), az)
        .await
        .unwrap();
    // Instance-id routes first: AWS refuses them once the instance has two
    // interfaces.
    let p = To::Instance(&primary.instance);
    routes.create(&ec2, &net.tables[0], "10.0.0.0/8", p).await;
    routes.create(&ec2, &net.main, "192.168.0.0/16", p).await;
    routes
        .create(&ec2, &net.tables[1], "10.0.0.0/8", To::Eni(&primary.eni))
        .await;
    let secondary = attach_secondary_eni(&ec2, &primary, &net.subnets[0])
        .await
        .unwrap();
    routes
        .create(&ec2, &net.tables[0], "172.16.0.0/12", To::Eni(&secondary))
        .await;

    let stranger = launch(&ec2, &net.subnets[0], &[("Name", "not-a-router")])
        .await
        .unwrap();
    routes
        .create(&ec2, &net.tables[0], "100.64.0.0/10", To::Eni(&stranger.eni))
        .await;
    let igw = internet_gateway(&ec2, &net.vpc).await.unwrap();
    ec2.create_route()
        .route_table_id(&net.tables[1])
        .destination_cidr_block("0.0.0.0/0")
        .gateway_id(&igw)
        .send()
        .await
        .unwrap();

    let other = router_vpc(&ec2, REGION, "10.20.0.0/16").await.unwrap();
    let other_router = launch(&ec2, &other.subnets[0], &[]).await.unwrap();
    routes
        .create(
            &ec2,
            &other.tables[0],
            "10.0.0.0/8",
            To::Instance(&other_router.instance),
        )
        .await;
    routes
        .create(&ec2, &other.main, "192.168.0.0/16", To::Eni(&other_router.eni))
        .await;

    let managed = vec![
        (net.tables[0].clone(), "10.0.0.0/8".to_owned()),
        (net.tables[0].clone(), "172.16.0.0/12".to_owned()),
        (net.tables[1].clone(), "10.0.0.0/8".to_owned()),
        (net.main.clone(), "192.168.0.0/16".to_owned()),
    ];
    let unrelated = vec![
        (net.tables[0].clone(), "100.64.0.0/10".to_owned()),
        (net.tables[0].clone(), "10.10.0.0/16".to_owned()),
        (net.tables[1].clone(), "0.0.0.0/0".to_owned()),
    ];
    let other_tables = vec![
        other.tables[0].clone(),
        other.tables[1].clone(),
        other.main.clone(),
    ];
    // The style is in the routes: CIDR routes, or prefix-list routes.
    for (table, dest) in managed.iter().chain(&unrelated[..1]) {
        let hop = next_hop(&ec2, table, dest).await.unwrap();
        assert_eq!(hop.list.is_some(), style.lists(), "{table} {dest}: {hop:?}");
    }
    Scene {
        env,
        routes,
        net,
        primary,
        standby,
        secondary,
        managed,
        unrelated,
        other_tables,
    }
}

fn app(env: &TestEnv, extra: &[(&str, &str)]) -> App {
    let config = env.config(extra).watcher().unwrap();
    let aws = env.aws(&config.common).unwrap();
    App::new(failover_watcher::Watcher { config }, aws)
}

async fn invoke(app: &App, payload: Value) -> Value {
    serde_json::to_value(app.invoke(payload).await.expect("handler error")).unwrap()
}

fn changes(response: &Value) -> Vec<Value> {
    response["changes"].as_array().cloned().unwrap_or_default()
}

/// The response's entry for group `vpn`.
fn vpn(response: &Value) -> Value {
    response["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["group"] == "vpn"))
        .cloned()
        .unwrap_or_else(|| panic!("no entry for group vpn: {response:#}"))
}

impl Scene {
    fn ec2(&self) -> aws_sdk_ec2::Client {
        self.env.ec2(REGION)
    }

    async fn hop(&self, table: &str, dest: &str) -> Hop {
        next_hop(&self.ec2(), table, dest)
            .await
            .unwrap_or_else(|| panic!("route {table} {dest} is gone"))
    }

    /// Every managed route points at `router`: by its primary interface,
    /// except the route to the primary's second interface, which stays as
    /// it is while the primary is active.
    async fn assert_all_on(&self, router: &Router) {
        for (table, dest) in &self.managed {
            let hop = self.hop(table, dest).await;
            assert_eq!(
                hop.instance.as_ref(),
                Some(&router.instance),
                "{table} {dest}: {hop:?}"
            );
            let eni = hop.eni.clone().unwrap_or_default();
            let untouched_secondary = router.instance == self.primary.instance && eni == self.secondary;
            assert!(
                eni == router.eni || untouched_secondary,
                "{table} {dest}: {hop:?}"
            );
        }
    }

    /// Routes the watcher must never touch, as they are now.
    async fn untouchable(&self) -> Vec<(String, String, Option<Hop>)> {
        let ec2 = self.ec2();
        let mut out = Vec::new();
        for (table, dest) in &self.unrelated {
            out.push((table.clone(), dest.clone(), next_hop(&ec2, table, dest).await));
        }
        for table in &self.other_tables {
            for (dest, hop) in effective_vpc_hops(&ec2, table).await.unwrap() {
                out.push((table.clone(), dest, Some(hop)));
            }
        }
        out
    }

    /// What a change names as the destination of a managed route: its
    /// CIDR, or the prefix list holding it.
    fn destination(&self, dest: &str) -> String {
        match self.routes.style {
            Style::Routes => dest.to_owned(),
            Style::PrefixList => self.routes.lists.lock().unwrap()[dest].clone(),
        }
    }

    async fn ec2_writes(&self) -> BTreeMap<String, u64> {
        self.env.emulator.calls().await.unwrap().ec2_mutating()
    }

    async fn reset_calls(&self) {
        self.env.emulator.reset_calls().await.unwrap();
    }

    async fn publishes(&self) -> u64 {
        self.env.emulator.calls().await.unwrap().count("sns", "Publish")
    }
}

impl Scene {
    /// True when every managed route points at `router`'s primary interface.
    async fn all_on(&self, router: &Router) -> bool {
        for (table, dest) in &self.managed {
            match next_hop(&self.ec2(), table, dest).await {
                Some(hop)
                    if hop.instance.as_ref() == Some(&router.instance)
                        && hop.eni.as_ref() == Some(&router.eni) => {}
                _ => return false,
            }
        }
        true
    }
}

fn replaces(n: u64) -> BTreeMap<String, u64> {
    if n == 0 {
        BTreeMap::new()
    } else {
        BTreeMap::from([("ReplaceRoute".to_owned(), n)])
    }
}

/// The first evaluation leaves a converged group alone (a route to the
/// active member's secondary interface included).
async fn settle(s: &Scene, app: &App) {
    let first = invoke(app, scheduled()).await;
    let entry = vpn(&first);
    assert_eq!(entry["decision"], "none", "{first:#}");
    assert_eq!(entry["active"], json!(s.primary.instance));
    assert_eq!(entry["vpc"], json!(s.net.vpc));
    assert_eq!(entry["routes_managed"], 4, "{first:#}");
    assert!(changes(&first).is_empty(), "{first:#}");
    s.reset_calls().await;
}

lbgp_tests::both_styles!(
    stopped_primary_moves_every_managed_route_once_and_nothing_else,
    terminated_primary_fails_over_at_once,
    failback_at_once_when_the_delay_is_zero,
    failback_waits_for_300_seconds_of_uninterrupted_health,
    never_fails_back_except_by_operator,
    az_group_keeps_each_zone_on_its_own_member,
    no_healthy_member_changes_nothing_and_alerts_once,
    concurrent_invocations_for_one_group_give_one_outcome,
    dry_run_reports_exactly_what_apply_does_and_writes_nothing,
    malformed_and_foreign_events_write_nothing,
    operator_activate_switches_pins_and_refuses_an_unhealthy_member,
    blast_radius_refuses_the_whole_failover_unless_forced,
    drift_on_a_managed_table_is_repaired,
    a_group_spanning_vpcs_is_an_error_for_that_group_only,
    the_binary_serves_invocations_through_the_runtime_api,
    failover_converges_under_faults_within_five_runs,
    a_failover_crashed_after_k_writes_is_finished_by_the_next_run,
);

async fn stopped_primary_moves_every_managed_route_once_and_nothing_else(style: Style) {
    let s = scene(false, style).await;
    let app = app(&s.env, &[]);
    settle(&s, &app).await;
    let before = s.untouchable().await;

    stop(&s.ec2(), &s.primary.instance).await.unwrap();
    s.reset_calls().await;
    let event = state_change(REGION, &s.primary.instance, "stopped");
    let response = invoke(&app, event.clone()).await;
    assert_eq!(response["trigger"], "state_change:stopped");
    assert_eq!(response["applied"], json!(true));
    let c = changes(&response);
    assert_eq!(c.len(), 4, "{response:#}");
    for change in &c {
        assert_eq!(change["op"], "replace");
        assert_eq!(change["target"], json!(s.standby.eni));
        assert!(
            change["reason"].as_str().unwrap().starts_with("failover:"),
            "{change}"
        );
    }
    let mut moved: Vec<&str> = c.iter().map(|c| c["destination"].as_str().unwrap()).collect();
    moved.sort_unstable();
    let mut want: Vec<String> = s.managed.iter().map(|(_, d)| s.destination(d)).collect();
    want.sort();
    assert_eq!(moved, want, "{response:#}");
    let entry = vpn(&response);
    assert_eq!(entry["decision"], "failover");
    assert_eq!(entry["active"], json!(s.standby.instance));
    assert_eq!(entry["previous"], json!(s.primary.instance));
    assert_eq!(entry["vpc"], json!(s.net.vpc));
    assert_eq!(entry["routes_moved"], 4);
    assert_eq!(s.ec2_writes().await, replaces(4));
    assert_eq!(s.publishes().await, 1);
    s.assert_all_on(&s.standby).await;
    assert_eq!(s.untouchable().await, before, "an unrelated route changed");

    // The same event again, then a sweep: nothing to write, anywhere.
    for payload in [event, scheduled()] {
        s.reset_calls().await;
        let again = invoke(&app, payload).await;
        assert!(changes(&again).is_empty(), "{again:#}");
        assert_eq!(vpn(&again)["decision"], "none");
        assert_eq!(vpn(&again)["active"], json!(s.standby.instance));
        let calls = s.env.emulator.calls().await.unwrap();
        assert!(calls.ec2_mutating().is_empty(), "{:?}", calls.ec2_mutating());
        assert_eq!(
            calls.count("dynamodb", "TransactWriteItems"),
            0,
            "state rewritten"
        );
        assert_eq!(calls.count("sns", "Publish"), 0);
    }
    s.assert_all_on(&s.standby).await;
}

async fn terminated_primary_fails_over_at_once(style: Style) {
    let s = scene(false, style).await;
    let app = app(&s.env, &[]);
    settle(&s, &app).await;
    terminate(&s.ec2(), &s.primary.instance).await.unwrap();
    let response = invoke(&app, state_change(REGION, &s.primary.instance, "shutting-down")).await;
    assert_eq!(vpn(&response)["decision"], "failover", "{response:#}");
    assert_eq!(changes(&response).len(), 4);
    s.assert_all_on(&s.standby).await;
}

async fn failback_at_once_when_the_delay_is_zero(style: Style) {
    let s = scene(false, style).await;
    let app = app(&s.env, &[("LBGP_FAILBACK_AFTER_SECONDS", "0")]);
    settle(&s, &app).await;
    stop(&s.ec2(), &s.primary.instance).await.unwrap();
    let out = invoke(&app, state_change(REGION, &s.primary.instance, "stopped")).await;
    assert_eq!(vpn(&out)["decision"], "failover");

    start(&s.ec2(), &s.primary.instance).await.unwrap();
    s.reset_calls().await;
    let back = invoke(&app, state_change(REGION, &s.primary.instance, "running")).await;
    let entry = vpn(&back);
    assert_eq!(entry["decision"], "failback", "{back:#}");
    assert_eq!(entry["active"], json!(s.primary.instance));
    assert_eq!(changes(&back).len(), 4);
    assert_eq!(s.ec2_writes().await, replaces(4));
    assert_eq!(s.publishes().await, 1);
    s.assert_all_on(&s.primary).await;
}

async fn failback_waits_for_300_seconds_of_uninterrupted_health(style: Style) {
    let s = scene(false, style).await;
    let app = app(&s.env, &[]); // default: 300 s
    settle(&s, &app).await;
    let ec2 = s.ec2();
    stop(&ec2, &s.primary.instance).await.unwrap();
    invoke(&app, state_change(REGION, &s.primary.instance, "stopping")).await;
    s.assert_all_on(&s.standby).await;

    start(&ec2, &s.primary.instance).await.unwrap();
    s.reset_calls().await;
    let up = invoke(&app, state_change(REGION, &s.primary.instance, "running")).await;
    let entry = vpn(&up);
    assert_eq!(entry["decision"], "none", "{up:#}");
    assert_eq!(
        entry["failback_pending"],
        json!({"instance_id": s.primary.instance, "healthy_for_seconds": 0, "failback_after_seconds": 300})
    );

    // The primary flaps after 200 s: the routes stay on the standby, and
    // the clock starts again.
    s.env.clock.advance(200);
    invoke(&app, scheduled()).await;
    stop(&ec2, &s.primary.instance).await.unwrap();
    let down = invoke(&app, state_change(REGION, &s.primary.instance, "stopping")).await;
    assert_eq!(vpn(&down)["decision"], "none", "{down:#}");
    s.env.clock.advance(30);
    start(&ec2, &s.primary.instance).await.unwrap();
    invoke(&app, state_change(REGION, &s.primary.instance, "running")).await;
    let calls = s.env.emulator.calls().await.unwrap();
    assert_eq!(calls.count("ec2", "ReplaceRoute"), 0, "the flap moved routes");

    // 299 s after the restart: not yet (though 529 s after the first one).
    s.reset_calls().await;
    s.env.clock.advance(299);
    let early = invoke(&app, scheduled()).await;
    assert_eq!(vpn(&early)["decision"], "none", "{early:#}");
    assert_eq!(vpn(&early)["failback_pending"]["healthy_for_seconds"], 299);
    assert!(s.ec2_writes().await.is_empty());
    s.assert_all_on(&s.standby).await;

    s.env.clock.advance(1);
    let back = invoke(&app, scheduled()).await;
    assert_eq!(vpn(&back)["decision"], "failback", "{back:#}");
    assert_eq!(s.ec2_writes().await, replaces(4));
    s.assert_all_on(&s.primary).await;
}

async fn never_fails_back_except_by_operator(style: Style) {
    let s = scene(false, style).await;
    let app = app(&s.env, &[("LBGP_FAILBACK_AFTER_SECONDS", "never")]);
    settle(&s, &app).await;
    stop(&s.ec2(), &s.primary.instance).await.unwrap();
    invoke(&app, state_change(REGION, &s.primary.instance, "stopped")).await;
    start(&s.ec2(), &s.primary.instance).await.unwrap();
    invoke(&app, state_change(REGION, &s.primary.instance, "running")).await;
    s.env.clock.advance(86_400);
    let later = invoke(&app, scheduled()).await;
    assert_eq!(vpn(&later)["decision"], "none");
    assert_eq!(
        vpn(&later)["failback_pending"]["failback_after_seconds"],
        Value::Null
    );
    s.assert_all_on(&s.standby).await;
    let manual = invoke(&app, json!({"group": "vpn", "activate": s.primary.instance})).await;
    assert_eq!(vpn(&manual)["decision"], "failback", "{manual:#}");
    s.assert_all_on(&s.primary).await;
}

async fn az_group_keeps_each_zone_on_its_own_member(style: Style) {
    let s = scene(true, style).await;
    let (a, b) = (&s.primary, &s.standby);
    let zone_b = (s.net.tables[1].clone(), "10.0.0.0/8".to_owned());
    let app = app(&s.env, &[]);
    let ec2 = s.ec2();

    // First evaluation: zone b's table goes to zone b's member; zone a's
    // table and the main table stay on the priority member.
    let first = invoke(&app, scheduled()).await;
    let entry = vpn(&first);
    assert_eq!(entry["mode"], "az");
    assert_eq!(changes(&first).len(), 1, "{first:#}");
    let expected = BTreeMap::from([
        (s.net.tables[0].clone(), a.instance.clone()),
        (s.net.tables[1].clone(), b.instance.clone()),
        (s.net.main.clone(), a.instance.clone()),
    ]);
    assert_eq!(entry["route_tables"], json!(expected));
    let on = |hop: Hop, r: &Router| hop.instance.as_ref() == Some(&r.instance);
    assert!(on(s.hop(&zone_b.0, &zone_b.1).await, b));
    for (t, d) in s.managed.iter().filter(|m| **m != zone_b) {
        assert!(on(s.hop(t, d).await, a), "{t} {d}");
    }

    // Zone b's member fails: only its table moves, to zone a's member.
    stop(&ec2, &b.instance).await.unwrap();
    s.reset_calls().await;
    let down = invoke(&app, state_change(REGION, &b.instance, "stopped")).await;
    assert_eq!(vpn(&down)["decision"], "failover", "{down:#}");
    assert_eq!(changes(&down).len(), 1);
    assert_eq!(changes(&down)[0]["route_table_id"], json!(zone_b.0));
    assert!(on(s.hop(&zone_b.0, &zone_b.1).await, a));
    assert_eq!(s.ec2_writes().await, replaces(1));

    // It comes back, and after the failback delay its table returns.
    start(&ec2, &b.instance).await.unwrap();
    let up = invoke(&app, state_change(REGION, &b.instance, "running")).await;
    assert!(changes(&up).is_empty(), "{up:#}");
    s.env.clock.advance(300);
    let back = invoke(&app, scheduled()).await;
    assert_eq!(vpn(&back)["decision"], "failback", "{back:#}");
    assert_eq!(changes(&back).len(), 1);
    assert!(on(s.hop(&zone_b.0, &zone_b.1).await, b));

    // Zone a's member fails: its table and the main table go to b; zone b's
    // table does not move.
    stop(&ec2, &a.instance).await.unwrap();
    s.reset_calls().await;
    let a_down = invoke(&app, state_change(REGION, &a.instance, "stopping")).await;
    assert_eq!(vpn(&a_down)["decision"], "failover");
    assert_eq!(vpn(&a_down)["active"], json!(b.instance));
    assert_eq!(changes(&a_down).len(), 3, "{a_down:#}");
    assert!(
        changes(&a_down)
            .iter()
            .all(|c| c["route_table_id"] != json!(zone_b.0))
    );
    assert_eq!(s.ec2_writes().await, replaces(3));
    s.assert_all_on(b).await;
}

async fn no_healthy_member_changes_nothing_and_alerts_once(style: Style) {
    let s = scene(false, style).await;
    let app = app(&s.env, &[]);
    settle(&s, &app).await;
    let ec2 = s.ec2();
    stop(&ec2, &s.standby.instance).await.unwrap();
    stop(&ec2, &s.primary.instance).await.unwrap();
    s.reset_calls().await;
    let response = invoke(&app, state_change(REGION, &s.primary.instance, "stopped")).await;
    let entry = vpn(&response);
    assert_eq!(entry["decision"], "no_healthy_member", "{response:#}");
    assert_eq!(
        entry["active"],
        json!(s.primary.instance),
        "active is left as it is"
    );
    assert_eq!(entry["routes_moved"], 0);
    let reason = entry["reason"].as_str().unwrap();
    assert!(reason.starts_with("no healthy member:"), "{reason}");
    assert!(reason.contains("routes left as they are"), "{reason}");
    assert!(changes(&response).is_empty());
    assert!(s.ec2_writes().await.is_empty());
    assert_eq!(s.publishes().await, 1, "one alert");
    for (table, dest) in &s.managed {
        let hop = s.hop(table, dest).await;
        assert_eq!(hop.instance.as_ref(), Some(&s.primary.instance), "{table} {dest}");
    }

    // Still down: the same answer, no second alert.
    s.reset_calls().await;
    for payload in [state_change(REGION, &s.standby.instance, "stopped"), scheduled()] {
        let again = invoke(&app, payload).await;
        assert_eq!(vpn(&again)["decision"], "no_healthy_member");
    }
    assert_eq!(s.publishes().await, 0, "alerted twice for one outage");
    assert!(s.ec2_writes().await.is_empty());

    // The standby comes back: it takes the routes.
    start(&ec2, &s.standby.instance).await.unwrap();
    let recovered = invoke(&app, state_change(REGION, &s.standby.instance, "running")).await;
    assert_eq!(vpn(&recovered)["decision"], "failover", "{recovered:#}");
    s.assert_all_on(&s.standby).await;
}

async fn concurrent_invocations_for_one_group_give_one_outcome(style: Style) {
    let s = scene(false, style).await;
    let a = app(&s.env, &[]);
    let b = app(&s.env, &[]);
    settle(&s, &a).await;
    stop(&s.ec2(), &s.primary.instance).await.unwrap();
    // Slow EC2 down so the two runs overlap: the first holds the group's
    // lease while it reads and writes, the second finds it busy.
    s.env
        .emulator
        .set_faults(json!({"latency_ms": 150, "services": ["ec2"]}))
        .await
        .unwrap();
    s.reset_calls().await;
    let event = state_change(REGION, &s.primary.instance, "stopped");
    let (first, second) = tokio::join!(invoke(&a, event.clone()), async {
        tokio::time::sleep(Duration::from_millis(60)).await;
        invoke(&b, event.clone()).await
    });
    s.env.emulator.clear_faults().await.unwrap();
    // One holds the lease and fails over, the other finds it busy. Which
    // one is the scheduler's choice: on a loaded machine the later start
    // can reach the lease first.
    let (first, second) = match vpn(&first)["decision"] == "locked" {
        true => (second, first),
        false => (first, second),
    };
    let decisions = [vpn(&first)["decision"].clone(), vpn(&second)["decision"].clone()];
    assert_eq!(
        decisions,
        [json!("failover"), json!("locked")],
        "{first:#}\n{second:#}"
    );
    assert_eq!(second["locked"], json!(true));
    assert!(changes(&second).is_empty());
    assert_eq!(changes(&first).len(), 4);
    let calls = s.env.emulator.calls().await.unwrap();
    assert_eq!(calls.ec2_mutating(), replaces(4), "double flap");
    assert_eq!(calls.count("sns", "Publish"), 1);
    // The holder saw the pending mark and evaluated the group once more
    // (a second read of the tables) before letting go.
    assert_eq!(calls.count("ec2", "DescribeRouteTables"), 2);
    s.assert_all_on(&s.standby).await;

    // Many at once, no latency: still one consistent outcome.
    start(&s.ec2(), &s.primary.instance).await.unwrap();
    let apps: Vec<App> = (0..4)
        .map(|_| app_with(&s.env, &[("LBGP_FAILBACK_AFTER_SECONDS", "0")]))
        .collect();
    s.reset_calls().await;
    let event = state_change(REGION, &s.primary.instance, "running");
    let responses = futures::future::join_all(apps.iter().map(|a| invoke(a, event.clone()))).await;
    let failbacks = responses
        .iter()
        .filter(|r| vpn(r)["decision"] == "failback")
        .count();
    assert_eq!(failbacks, 1, "{responses:#?}");
    for r in &responses {
        let d = vpn(r)["decision"].clone();
        assert!(d == "failback" || d == "locked" || d == "none", "{r:#}");
    }
    assert_eq!(s.ec2_writes().await, replaces(4));
    s.assert_all_on(&s.primary).await;
}

fn app_with(env: &TestEnv, extra: &[(&str, &str)]) -> App {
    app(env, extra)
}

async fn dry_run_reports_exactly_what_apply_does_and_writes_nothing(style: Style) {
    let s = scene(false, style).await;
    let app = app(&s.env, &[]);
    settle(&s, &app).await;
    stop(&s.ec2(), &s.primary.instance).await.unwrap();
    s.reset_calls().await;
    let dry = invoke(&app, json!({"dry_run": true})).await;
    assert_eq!(dry["dry_run"], json!(true));
    assert_eq!(dry["applied"], json!(false));
    assert_eq!(vpn(&dry)["decision"], "failover");
    assert_eq!(changes(&dry).len(), 4, "{dry:#}");
    let calls = s.env.emulator.calls().await.unwrap();
    assert!(
        calls.mutating().is_empty(),
        "a dry run wrote: {:?}",
        calls.mutating()
    );
    assert_eq!(calls.count("sns", "Publish"), 0);
    s.assert_all_on(&s.primary).await;

    // LBGP_DRY_RUN=true makes every trigger a dry run.
    let dry_env = app_with(&s.env, &[("LBGP_DRY_RUN", "true")]);
    let dry_event = invoke(&dry_env, state_change(REGION, &s.primary.instance, "stopped")).await;
    assert_eq!(dry_event["dry_run"], json!(true));
    assert_eq!(changes(&dry_event), changes(&dry));
    assert!(s.env.emulator.calls().await.unwrap().mutating().is_empty());

    let applied = invoke(&app, json!({"dry_run": false})).await;
    assert_eq!(applied["applied"], json!(true));
    assert_eq!(changes(&applied), changes(&dry), "apply differs from its dry run");
    s.assert_all_on(&s.standby).await;
}

async fn malformed_and_foreign_events_write_nothing(style: Style) {
    let s = scene(false, style).await;
    let app = app(&s.env, &[]);
    settle(&s, &app).await;
    let ec2 = s.ec2();
    stop(&ec2, &s.primary.instance).await.unwrap();
    s.reset_calls().await;
    let no_instance = json!({"version": "0", "id": "3", "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2", "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": REGION,
        "resources": [], "detail": {"state": "stopped"}});
    for bad in [
        json!([]),
        json!("go"),
        json!(42),
        Value::Null,
        json!({"dryrun": true}),
        json!({"dry_run": "yes"}),
        json!({"activate": s.standby.instance}),
        state_change(REGION, &s.primary.instance, "melted"),
        no_instance,
    ] {
        let err = app.invoke(bad.clone()).await.expect_err("malformed accepted");
        assert_eq!(err.error_type, "lbgp.MalformedPayload.NonRetryable", "{bad}");
        assert!(
            err.error_message.contains("malformed invocation payload"),
            "{}",
            err.error_message
        );
    }
    let stranger = ec2
        .describe_instances()
        .send()
        .await
        .unwrap()
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.tags().iter().any(|t| t.value() == Some("not-a-router")))
        .and_then(|i| i.instance_id())
        .unwrap()
        .to_owned();
    for (payload, why) in [
        (
            state_change(REGION, &stranger, "stopped"),
            "is in no failover group",
        ),
        (
            state_change("ap-south-1", &s.primary.instance, "stopped"),
            "not in LBGP_REGIONS",
        ),
        (
            cloudtrail("RunInstances", REGION, json!({})),
            "not one this function acts on",
        ),
        (
            cloudtrail("CreateRoute", REGION, json!({"routeTableId": s.other_tables[0]})),
            "not in the VPC of a failover group",
        ),
        (
            json!({"detail-type": "Object Created", "source": "aws.s3", "version": "0", "id": "4",
                "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": REGION,
                "resources": [], "detail": {}}),
            "not something this function acts on",
        ),
    ] {
        let response = invoke(&app, payload.clone()).await;
        let ignored = response["ignored"]
            .as_str()
            .unwrap_or_else(|| panic!("{payload}: {response:#}"));
        assert!(ignored.contains(why), "{ignored}");
        assert!(changes(&response).is_empty());
    }
    let calls = s.env.emulator.calls().await.unwrap();
    assert!(calls.mutating().is_empty(), "{:?}", calls.mutating());
    assert_eq!(calls.count("sns", "Publish"), 0);
    s.assert_all_on(&s.primary).await;
}

async fn operator_activate_switches_pins_and_refuses_an_unhealthy_member(style: Style) {
    let s = scene(false, style).await;
    let app = app(&s.env, &[]);
    settle(&s, &app).await;

    // Rehearsal first.
    let rehearsal = invoke(
        &app,
        json!({"group": "vpn", "activate": s.standby.instance, "dry_run": true}),
    )
    .await;
    assert_eq!(changes(&rehearsal).len(), 4);
    assert!(s.ec2_writes().await.is_empty());

    let switched = invoke(&app, json!({"group": "vpn", "activate": s.standby.instance})).await;
    let entry = vpn(&switched);
    assert_eq!(entry["decision"], "failover", "{switched:#}");
    assert_eq!(entry["active"], json!(s.standby.instance));
    assert!(entry["reason"].as_str().unwrap().contains("operator activated"));
    assert_eq!(changes(&switched).len(), 4);
    s.assert_all_on(&s.standby).await;

    // The switch holds: a healthy, settled primary does not take it back.
    s.env.clock.advance(3600);
    s.reset_calls().await;
    let later = invoke(&app, scheduled()).await;
    assert_eq!(vpn(&later)["decision"], "none", "{later:#}");
    assert!(s.ec2_writes().await.is_empty());

    // Back to the primary (the top-priority member: automatic selection resumes).
    let back = invoke(&app, json!({"group": "vpn", "activate": s.primary.instance})).await;
    assert_eq!(vpn(&back)["decision"], "failback", "{back:#}");
    s.assert_all_on(&s.primary).await;

    // An unhealthy member, an unknown group: refused, nothing written but the lease.
    stop(&s.ec2(), &s.standby.instance).await.unwrap();
    s.reset_calls().await;
    let err = app
        .invoke(json!({"group": "vpn", "activate": s.standby.instance}))
        .await
        .expect_err("activated a stopped instance");
    assert_eq!(err.error_type, "lbgp.ActivateRefused.NonRetryable");
    assert!(
        err.error_message.contains("is not healthy (stopped)"),
        "{}",
        err.error_message
    );
    let err = app
        .invoke(json!({"group": "nope", "activate": s.primary.instance}))
        .await
        .expect_err("activated in an unknown group");
    assert_eq!(err.error_type, "lbgp.ActivateRefused.NonRetryable");
    assert!(
        err.error_message.contains("no failover group \"nope\""),
        "{}",
        err.error_message
    );
    let calls = s.env.emulator.calls().await.unwrap();
    assert!(calls.ec2_mutating().is_empty());
    assert_eq!(calls.count("dynamodb", "TransactWriteItems"), 0);
    s.assert_all_on(&s.primary).await;
}

async fn blast_radius_refuses_the_whole_failover_unless_forced(style: Style) {
    let s = scene(false, style).await;
    let app = app(&s.env, &[("LBGP_MAX_CHANGES", "3")]);
    settle(&s, &app).await;
    stop(&s.ec2(), &s.primary.instance).await.unwrap();
    s.reset_calls().await;
    let refused = invoke(&app, state_change(REGION, &s.primary.instance, "stopped")).await;
    assert_eq!(refused["applied"], json!(false));
    assert!(
        refused["refused"]
            .as_str()
            .unwrap()
            .contains("4 changes exceed LBGP_MAX_CHANGES=3"),
        "{refused:#}"
    );
    assert!(changes(&refused).is_empty());
    assert!(vpn(&refused)["error"].is_string());
    let calls = s.env.emulator.calls().await.unwrap();
    assert!(calls.ec2_mutating().is_empty());
    assert_eq!(calls.count("dynamodb", "TransactWriteItems"), 0);
    assert_eq!(calls.count("sns", "Publish"), 1, "refusal not notified");
    for (table, dest) in &s.managed {
        assert_eq!(
            s.hop(table, dest).await.instance.as_ref(),
            Some(&s.primary.instance)
        );
    }

    let forced = invoke(&app, json!({"force": true})).await;
    assert_eq!(vpn(&forced)["decision"], "failover", "{forced:#}");
    assert_eq!(changes(&forced).len(), 4);
    s.assert_all_on(&s.standby).await;
}

async fn drift_on_a_managed_table_is_repaired(style: Style) {
    let s = scene(false, style).await;
    let app = app(&s.env, &[]);
    settle(&s, &app).await;
    let ec2 = s.ec2();

    // An operator repoints one managed route to the standby by hand.
    let (table, dest) = s.managed[2].clone();
    let request = s.routes.replace_to_eni(&ec2, &table, &dest, &s.standby.eni).await;
    s.reset_calls().await;
    let event = cloudtrail("ReplaceRoute", REGION, request);
    let repaired = invoke(&app, event).await;
    assert_eq!(vpn(&repaired)["decision"], "none");
    let c = changes(&repaired);
    assert_eq!(c.len(), 1, "{repaired:#}");
    assert_eq!(c[0]["route_table_id"], json!(table));
    assert_eq!(c[0]["previous_target"], json!(s.standby.eni));
    assert!(c[0]["reason"].as_str().unwrap().starts_with("drift:"));
    assert_eq!(s.ec2_writes().await, replaces(1));
    s.assert_all_on(&s.primary).await;

    // A new route to the standby in a managed table is managed too (made a
    // while after the repair: within SETTLE_SECS of a move, a route on the
    // old member is taken for a read lagging the write).
    s.env.clock.advance(lbgp_core::desire::SETTLE_SECS);
    s.routes
        .create(
            &ec2,
            &s.net.main,
            "100.65.0.0/16",
            To::Instance(&s.standby.instance),
        )
        .await;
    s.reset_calls().await;
    let created = invoke(
        &app,
        cloudtrail("CreateRoute", REGION, json!({"routeTableId": s.net.main})),
    )
    .await;
    assert_eq!(changes(&created).len(), 1, "{created:#}");
    let hop = s.hop(&s.net.main, "100.65.0.0/16").await;
    assert_eq!(hop.eni.as_ref(), Some(&s.primary.eni));

    // A deleted route is the user's business: nothing to write.
    s.routes.delete(&ec2, &s.net.main, "100.65.0.0/16").await;
    assert!(next_hop(&ec2, &s.net.main, "100.65.0.0/16").await.is_none());
    s.reset_calls().await;
    let deleted = invoke(
        &app,
        cloudtrail("DeleteRoute", REGION, json!({"routeTableId": s.net.main})),
    )
    .await;
    assert!(changes(&deleted).is_empty(), "{deleted:#}");
    assert!(s.ec2_writes().await.is_empty());
}

async fn a_group_spanning_vpcs_is_an_error_for_that_group_only(style: Style) {
    let s = scene(false, style).await;
    let ec2 = s.ec2();
    let elsewhere = router_vpc(&ec2, REGION, "10.30.0.0/16").await.unwrap();
    launch_router(&ec2, &elsewhere.subnets[0], "vpn", Some(50), false)
        .await
        .unwrap();
    let edge_a = launch_router(&ec2, &elsewhere.subnets[0], "edge", Some(2), false)
        .await
        .unwrap();
    let edge_b = launch_router(&ec2, &elsewhere.subnets[1], "edge", Some(1), false)
        .await
        .unwrap();
    s.routes
        .create(
            &ec2,
            &elsewhere.main,
            "10.0.0.0/8",
            To::Instance(&edge_a.instance),
        )
        .await;
    stop(&ec2, &s.primary.instance).await.unwrap();
    stop(&ec2, &edge_a.instance).await.unwrap();
    let app = app(&s.env, &[]);
    s.reset_calls().await;
    let response = invoke(&app, scheduled()).await;
    let entry = vpn(&response);
    assert_eq!(entry["decision"], "none");
    assert!(
        entry["error"].as_str().unwrap().contains("spans VPCs"),
        "{response:#}"
    );
    assert!(
        response["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["error"].as_str().unwrap().contains("spans VPCs"))
    );
    let edge = response["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "edge")
        .unwrap()
        .clone();
    assert_eq!(edge["decision"], "failover", "{response:#}");
    assert_eq!(edge["active"], json!(edge_b.instance));
    assert_eq!(s.ec2_writes().await, replaces(1));
    for (table, dest) in &s.managed {
        assert_eq!(
            s.hop(table, dest).await.instance.as_ref(),
            Some(&s.primary.instance)
        );
    }
    let hop = s.hop(&elsewhere.main, "10.0.0.0/8").await;
    assert_eq!(hop.instance.as_ref(), Some(&edge_b.instance), "{hop:?}");
}

async fn the_binary_serves_invocations_through_the_runtime_api(style: Style) {
    let s = scene(false, style).await;
    let binary = dev_binary("failover-watcher");
    assert!(
        binary.exists(),
        "{} missing: run `cargo build --bins` (make test does)",
        binary.display()
    );
    let mut vars = s.env.env(&[]);
    vars.insert("AWS_ENDPOINT_URL".into(), s.env.emulator.endpoint());
    vars.insert("AWS_REGION".into(), fixtures::HOME.into());
    vars.insert("AWS_ACCESS_KEY_ID".into(), "testing".into());
    vars.insert("AWS_SECRET_ACCESS_KEY".into(), "testing".into());
    let mut lambda = LocalLambda::start(&binary, &vars).await.unwrap();

    stop(&s.ec2(), &s.primary.instance).await.unwrap();
    let Outcome::Response(dry) = lambda.invoke(json!({"dry_run": true})).await.unwrap() else {
        panic!("dry run failed")
    };
    assert_eq!(changes(&dry).len(), 4, "{dry:#}");
    let Outcome::Error(err) = lambda.invoke(json!(42)).await.unwrap() else {
        panic!("malformed payload accepted")
    };
    assert_eq!(err["errorType"], "lbgp.MalformedPayload.NonRetryable");
    let event = state_change(REGION, &s.primary.instance, "stopped");
    let Outcome::Response(applied) = lambda.invoke(event).await.unwrap() else {
        panic!("failover failed")
    };
    assert_eq!(vpn(&applied)["decision"], "failover", "{applied:#}");
    assert_eq!(changes(&applied), changes(&dry));
    s.assert_all_on(&s.standby).await;

    let logs = lambda.stop().await.unwrap();
    let decision = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| {
            l["fields"]["message"] == "failover decision"
                && l["fields"]["decision"] == "failover"
                && l["fields"]["planned_only"] == false
        })
        .unwrap_or_else(|| panic!("no decision log line:\n{logs}"));
    assert_eq!(decision["fields"]["group"], "vpn");
    assert_eq!(decision["fields"]["from"], json!(s.primary.instance));
    assert_eq!(decision["fields"]["to"], json!(s.standby.instance));
    assert_eq!(decision["fields"]["routes_moved"], 4);
}

/// Issue 8 for the watcher: with 10% throttling, 10% 5xx and 5% "applied,
/// response lost" on EC2 and DynamoDB, a failover converges within five
/// runs, touches nothing else, and the next clean run writes nothing.
async fn failover_converges_under_faults_within_five_runs(style: Style) {
    for seed in [3, 11] {
        let s = scene(false, style).await;
        let app = app(&s.env, &[]);
        settle(&s, &app).await;
        let before = s.untouchable().await;
        stop(&s.ec2(), &s.primary.instance).await.unwrap();
        s.env
            .emulator
            .set_faults(json!({"seed": seed, "throttle_p": 0.1, "error5xx_p": 0.1,
                               "lost_response_p": 0.05, "services": ["ec2", "dynamodb"]}))
            .await
            .unwrap();
        let mut runs = 0;
        for run in 0..5 {
            runs = run + 1;
            let payload = if run == 0 {
                state_change(REGION, &s.primary.instance, "stopped")
            } else {
                scheduled()
            };
            // A faulted run may fail as a whole; Lambda would retry it.
            let _ = app.invoke(payload).await;
            if s.all_on(&s.standby).await {
                break;
            }
            // A run that died holding the lease frees it by expiry.
            s.env.clock.advance(200);
        }
        s.env.emulator.clear_faults().await.unwrap();
        assert!(
            s.all_on(&s.standby).await,
            "seed {seed}: not converged after {runs} runs"
        );
        assert_eq!(
            s.untouchable().await,
            before,
            "seed {seed}: an unrelated route changed"
        );
        s.env.clock.advance(200);
        s.reset_calls().await;
        let clean = invoke(&app, scheduled()).await;
        assert!(changes(&clean).is_empty(), "seed {seed}: {clean:#}");
        assert_eq!(vpn(&clean)["active"], json!(s.standby.instance));
        assert!(s.ec2_writes().await.is_empty(), "seed {seed}");
        println!("watcher faults seed {seed}: converged in {runs} run(s)");
    }
}

/// Issue 8 for the watcher: a run that dies after k of its n writes, for
/// every k, is finished by the next run, and nothing is left half-moved.
async fn a_failover_crashed_after_k_writes_is_finished_by_the_next_run(style: Style) {
    // n: the mutating calls (EC2 and DynamoDB) of one clean failover.
    let n = {
        let s = scene(false, style).await;
        let app = app(&s.env, &[]);
        settle(&s, &app).await;
        stop(&s.ec2(), &s.primary.instance).await.unwrap();
        invoke(&app, state_change(REGION, &s.primary.instance, "stopped")).await;
        let calls = s.env.emulator.calls().await.unwrap();
        calls.mutating().values().sum::<u64>()
    };
    assert!(n >= 4, "a failover of 4 routes made {n} writes");
    println!("watcher crash: n = {n} writes, crashing after every k < n");
    for k in 0..n {
        let s = scene(false, style).await;
        let app = app(&s.env, &[]);
        settle(&s, &app).await;
        let before = s.untouchable().await;
        stop(&s.ec2(), &s.primary.instance).await.unwrap();
        s.env
            .emulator
            .set_faults(json!({"fail_writes_after": k, "services": ["ec2", "dynamodb"]}))
            .await
            .unwrap();
        let _ = app
            .invoke(state_change(REGION, &s.primary.instance, "stopped"))
            .await;
        s.env.emulator.clear_faults().await.unwrap();
        s.env.clock.advance(200);
        let next = invoke(&app, scheduled()).await;
        assert!(s.all_on(&s.standby).await, "k={k}: not finished: {next:#}");
        assert_eq!(s.untouchable().await, before, "k={k}: an unrelated route changed");
        s.reset_calls().await;
        let idle = invoke(&app, scheduled()).await;
        assert!(changes(&idle).is_empty(), "k={k}: {idle:#}");
        assert!(s.ec2_writes().await.is_empty(), "k={k}");
    }
}
