//! failover-watcher against the emulator: health the instance state does
//! not show (CloudWatch alarms, `lbgp:health-alarm`, `lbgp:health-missing`),
//! appliances terminated and replaced (routes blackholed toward a deleted
//! interface, a new instance id), and prefix-list routes.
//!
//! The scene: one VPC with a subnet and an associated route table in each of
//! two AZs, a primary router (priority 200, AZ a, alarm `vpn-a-tunnel`) and a
//! standby (priority 100, AZ b, alarm `vpn-b-tunnel`) in failover group
//! `vpn`, and four routes to the primary: by instance id in a zone table and
//! in the main table, by interface in the other zone table, and a
//! prefix-list route (`DestinationPrefixListId`) by interface.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use failover_watcher::App;
use lbgp_tests::failover_fixtures::{
    NextHop, Router, RouterVpc, alarm_change, cloudwatch, interface_exists, launch_member, list_hop,
    list_route_to_eni, next_hop, prefix_list, route_to_eni, route_to_instance, router_vpc, scheduled,
    set_alarm, state_change, terminate, tunnel_alarm,
};
use lbgp_tests::fixtures::{TestEnv, tag};
use serde_json::{Value, json};

const REGION: &str = "eu-west-1";
const ALARM_A: &str = "vpn-a-tunnel";
const ALARM_B: &str = "vpn-b-tunnel";

struct Scene {
    env: TestEnv,
    net: RouterVpc,
    primary: Router,
    standby: Router,
    /// The prefix list of the prefix-list route.
    list: String,
    /// `(table, destination)` of the CIDR routes to the group (three).
    managed: Vec<(String, String)>,
}

async fn scene() -> Scene {
    let env = TestEnv::new(&[REGION]).await.unwrap();
    let ec2 = env.ec2(REGION);
    let cw = cloudwatch(&env, REGION);
    for alarm in [ALARM_A, ALARM_B] {
        tunnel_alarm(&cw, alarm).await.unwrap();
        set_alarm(&cw, alarm, "OK", "tunnel up").await.unwrap();
    }
    let net = router_vpc(&ec2, REGION, "10.10.0.0/16").await.unwrap();
    let primary = launch_member(
        &ec2,
        &net.subnets[0],
        "vpn",
        200,
        &[("lbgp:health-alarm", ALARM_A)],
    )
    .await
    .unwrap();
    let standby = launch_member(
        &ec2,
        &net.subnets[1],
        "vpn",
        100,
        &[("lbgp:health-alarm", ALARM_B)],
    )
    .await
    .unwrap();
    route_to_instance(&ec2, &net.tables[0], "10.0.0.0/8", &primary.instance)
        .await
        .unwrap();
    route_to_instance(&ec2, &net.main, "192.168.0.0/16", &primary.instance)
        .await
        .unwrap();
    route_to_eni(&ec2, &net.tables[1], "10.0.0.0/8", &primary.eni)
        .await
        .unwrap();
    let list = prefix_list(&ec2, "corp", &["172.16.0.0/12", "100.64.0.0/10"])
        .await
        .unwrap();
    list_route_to_eni(&ec2, &net.tables[1], &list, &primary.eni)
        .await
        .unwrap();
    let managed = vec![
        (net.tables[0].clone(), "10.0.0.0/8".to_owned()),
        (net.tables[1].clone(), "10.0.0.0/8".to_owned()),
        (net.main.clone(), "192.168.0.0/16".to_owned()),
    ];
    Scene {
        env,
        net,
        primary,
        standby,
        list,
        managed,
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

fn entry(response: &Value, group: &str) -> Value {
    response["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["group"] == group))
        .cloned()
        .unwrap_or_else(|| panic!("no entry for group {group}: {response:#}"))
}

fn vpn(response: &Value) -> Value {
    entry(response, "vpn")
}

fn replaces(n: u64) -> BTreeMap<String, u64> {
    if n == 0 {
        BTreeMap::new()
    } else {
        BTreeMap::from([("ReplaceRoute".to_owned(), n)])
    }
}

impl Scene {
    fn ec2(&self) -> aws_sdk_ec2::Client {
        self.env.ec2(REGION)
    }

    fn cw(&self) -> aws_sdk_cloudwatch::Client {
        cloudwatch(&self.env, REGION)
    }

    async fn hop(&self, table: &str, dest: &str) -> NextHop {
        next_hop(&self.ec2(), table, dest)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("route {table} {dest} is gone"))
    }

    async fn list_hop(&self) -> NextHop {
        list_hop(&self.ec2(), &self.net.tables[1], &self.list)
            .await
            .unwrap()
            .expect("the prefix-list route is gone")
    }

    /// Every managed route, the prefix-list one included, points at
    /// `router`'s primary interface.
    async fn assert_all_on(&self, router: &Router) {
        for (table, dest) in &self.managed {
            let hop = self.hop(table, dest).await;
            assert_eq!(hop.eni.as_ref(), Some(&router.eni), "{table} {dest}: {hop:?}");
            assert_eq!(hop.state, "active", "{table} {dest}: {hop:?}");
        }
        let hop = self.list_hop().await;
        assert_eq!(hop.eni.as_ref(), Some(&router.eni), "{}: {hop:?}", self.list);
        assert_eq!(hop.state, "active");
    }

    async fn reset_calls(&self) {
        self.env.emulator.reset_calls().await.unwrap();
    }

    /// Route writes, state writes and notifications since the last reset.
    async fn writes(&self) -> (BTreeMap<String, u64>, u64, u64) {
        let calls = self.env.emulator.calls().await.unwrap();
        (
            calls.ec2_mutating(),
            calls.count("dynamodb", "TransactWriteItems") + calls.count("dynamodb", "PutItem"),
            calls.count("sns", "Publish"),
        )
    }

    /// `payload` again, then a sweep: nothing written, anywhere.
    async fn assert_second_runs_write_nothing(&self, app: &App, payload: Value, on: &Router) {
        for p in [payload, scheduled()] {
            self.reset_calls().await;
            let again = invoke(app, p).await;
            assert!(changes(&again).is_empty(), "{again:#}");
            assert_eq!(vpn(&again)["decision"], "none", "{again:#}");
            assert_eq!(vpn(&again)["active"], json!(on.instance));
            let calls = self.env.emulator.calls().await.unwrap();
            assert!(calls.ec2_mutating().is_empty(), "{:?}", calls.ec2_mutating());
            assert_eq!(
                calls.count("dynamodb", "TransactWriteItems"),
                0,
                "state rewritten: {again:#}"
            );
            assert_eq!(calls.count("sns", "Publish"), 0);
        }
    }

    async fn state(&self) -> Value {
        let config = self.env.config(&[]).watcher().unwrap();
        let aws = self.env.aws(&config.common).unwrap();
        aws.store
            .load_state(
                failover_watcher::FUNCTION,
                &format!("{REGION}#vpn"),
                failover_watcher::STATE_RECORD,
            )
            .await
            .unwrap()
            .expect("the group's state record")
    }
}

/// An SQS queue subscribed to the notification topic: what an operator's
/// mail or chat integration receives.
async fn notices(env: &TestEnv) -> (aws_sdk_sqs::Client, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sqs = aws_sdk_sqs::Client::new(&env.sdk);
    let url = sqs
        .create_queue()
        .queue_name("notices")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .unwrap();
    aws_sdk_sns::Client::new(&env.sdk)
        .subscribe()
        .topic_arn(&env.topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();
    (sqs, url)
}

async fn received(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    out.messages()
        .iter()
        .filter_map(|m| m.body().map(str::to_owned))
        .collect()
}

/// The first evaluation leaves the converged group alone.
async fn settle(s: &Scene, app: &App) {
    let first = invoke(app, scheduled()).await;
    let e = vpn(&first);
    assert_eq!(e["decision"], "none", "{first:#}");
    assert_eq!(e["active"], json!(s.primary.instance));
    assert_eq!(e["routes_managed"], 4, "{first:#}");
    assert!(changes(&first).is_empty(), "{first:#}");
    s.reset_calls().await;
}

#[tokio::test]
async fn a_tunnel_alarm_fails_over_at_once_and_ok_fails_back_after_the_hysteresis() {
    let s = scene().await;
    let app = app(&s.env, &[]); // LBGP_FAILBACK_AFTER_SECONDS: 300
    settle(&s, &app).await;
    let (sqs, inbox) = notices(&s.env).await;

    // The primary runs and passes its status checks; its tunnel is down.
    let reason = "Threshold Crossed: 1 out of the last 1 datapoints [0.0] was less than the threshold (1.0)";
    set_alarm(&s.cw(), ALARM_A, "ALARM", reason).await.unwrap();
    s.reset_calls().await;
    let event = alarm_change(REGION, ALARM_A, "OK", "ALARM", reason);
    let down = invoke(&app, event.clone()).await;
    assert_eq!(down["trigger"], "alarm_change:alarm");
    let e = vpn(&down);
    assert_eq!(e["decision"], "failover", "{down:#}");
    assert_eq!(e["previous"], json!(s.primary.instance));
    assert_eq!(e["active"], json!(s.standby.instance));
    assert_eq!(e["routes_moved"], 4);
    // Which source failed, and CloudWatch's reason.
    assert_eq!(
        e["failed"],
        json!([{"instance_id": s.primary.instance,
                "faults": [{"source": "alarm", "alarm": ALARM_A, "state": "ALARM", "reason": reason, "from_event": true}]}])
    );
    assert!(
        e["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("alarm {ALARM_A} ALARM: {reason}")),
        "{}",
        e["reason"]
    );
    let c = changes(&down);
    assert_eq!(c.len(), 4, "{down:#}");
    assert!(
        c.iter()
            .all(|c| c["op"] == "replace" && c["target"] == json!(s.standby.eni))
    );
    assert!(c.iter().any(|c| c["destination"] == json!(s.list)), "{c:#?}");
    let (ec2, _, published) = s.writes().await;
    assert_eq!(
        ec2,
        replaces(4),
        "one ReplaceRoute per route, the prefix-list one included"
    );
    assert_eq!(published, 1);
    // The notification says which source failed, and why.
    let notes = received(&sqs, &inbox).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    for needle in [
        ALARM_A,
        reason,
        "\"source\": \"alarm\"",
        s.primary.instance.as_str(),
        s.list.as_str(),
    ] {
        assert!(notes[0].contains(needle), "{needle} not in {}", notes[0]);
    }
    let calls = s.env.emulator.calls().await.unwrap();
    // The members' alarms in one batch, read beside the members themselves.
    assert_eq!(calls.count("monitoring", "DescribeAlarms"), 1, "{calls:?}");
    s.assert_all_on(&s.standby).await;
    s.assert_second_runs_write_nothing(&app, event, &s.standby).await;

    // The tunnel is back: the streak starts; failback after 300 s of health
    // by every source.
    set_alarm(&s.cw(), ALARM_A, "OK", "tunnel up").await.unwrap();
    s.env.clock.advance(20);
    let up = invoke(&app, alarm_change(REGION, ALARM_A, "ALARM", "OK", "tunnel up")).await;
    assert_eq!(vpn(&up)["decision"], "none", "{up:#}");
    assert_eq!(
        vpn(&up)["failback_pending"],
        json!({"instance_id": s.primary.instance, "healthy_for_seconds": 0, "failback_after_seconds": 300})
    );
    s.reset_calls().await;
    s.env.clock.advance(299);
    let early = invoke(&app, scheduled()).await;
    assert_eq!(vpn(&early)["decision"], "none", "{early:#}");
    assert_eq!(s.writes().await.0, replaces(0));
    s.env.clock.advance(1);
    let back = invoke(&app, scheduled()).await;
    assert_eq!(vpn(&back)["decision"], "failback", "{back:#}");
    assert_eq!(vpn(&back)["routes_moved"], 4);
    assert_eq!(s.writes().await.0, replaces(4));
    s.assert_all_on(&s.primary).await;
}

#[tokio::test]
async fn a_flapping_tunnel_restarts_the_failback_streak() {
    let s = scene().await;
    let app = app(&s.env, &[]);
    settle(&s, &app).await;
    let cw = s.cw();
    set_alarm(&cw, ALARM_A, "ALARM", "down").await.unwrap();
    invoke(&app, alarm_change(REGION, ALARM_A, "OK", "ALARM", "down")).await;
    set_alarm(&cw, ALARM_A, "OK", "up").await.unwrap();
    invoke(&app, alarm_change(REGION, ALARM_A, "ALARM", "OK", "up")).await;
    s.env.clock.advance(250);
    // Down and up between two sweeps: only the events saw it.
    invoke(&app, alarm_change(REGION, ALARM_A, "OK", "ALARM", "down")).await;
    invoke(&app, alarm_change(REGION, ALARM_A, "ALARM", "OK", "up")).await;
    s.reset_calls().await;
    s.env.clock.advance(100);
    let later = invoke(&app, scheduled()).await;
    assert_eq!(vpn(&later)["decision"], "none", "{later:#}");
    assert_eq!(vpn(&later)["failback_pending"]["healthy_for_seconds"], 100);
    assert_eq!(s.writes().await.0, replaces(0));
    s.assert_all_on(&s.standby).await;
}

#[tokio::test]
async fn insufficient_data_follows_each_setting_of_health_missing() {
    let env = TestEnv::new(&[REGION]).await.unwrap();
    let ec2 = env.ec2(REGION);
    let cw = cloudwatch(&env, REGION);
    let settings = [
        ("g-default", None),
        ("g-unhealthy", Some("unhealthy")),
        ("g-ignore", Some("ignore")),
    ];
    let mut groups = Vec::new();
    for (n, (group, missing)) in settings.iter().enumerate() {
        let net = router_vpc(&ec2, REGION, &format!("10.{}.0.0/16", 50 + n))
            .await
            .unwrap();
        let mut members = Vec::new();
        for (priority, subnet) in [(200, &net.subnets[0]), (100, &net.subnets[1])] {
            let alarm = format!("{group}-{priority}");
            tunnel_alarm(&cw, &alarm).await.unwrap();
            set_alarm(&cw, &alarm, "OK", "reporting").await.unwrap();
            let mut tags = vec![("lbgp:health-alarm", alarm.as_str())];
            if let Some(m) = missing {
                tags.push(("lbgp:health-missing", m));
            }
            members.push((
                alarm.clone(),
                launch_member(&ec2, subnet, group, priority, &tags).await.unwrap(),
            ));
        }
        route_to_eni(&ec2, &net.tables[0], "10.0.0.0/8", &members[0].1.eni)
            .await
            .unwrap();
        groups.push((*group, net, members));
    }
    let app = app(&env, &[]);
    let first = invoke(&app, scheduled()).await;
    for (group, _, members) in &groups {
        assert_eq!(
            entry(&first, group)["active"],
            json!(members[0].1.instance),
            "{first:#}"
        );
    }

    // Every primary's appliance stops reporting.
    for (group, net, members) in &groups {
        let (alarm, primary) = &members[0];
        let reason = "Insufficient Data: 1 datapoint was unknown.";
        set_alarm(&cw, alarm, "INSUFFICIENT_DATA", reason).await.unwrap();
        env.emulator.reset_calls().await.unwrap();
        let out = invoke(
            &app,
            alarm_change(REGION, alarm, "OK", "INSUFFICIENT_DATA", reason),
        )
        .await;
        let e = entry(&out, group);
        let hop = next_hop(&ec2, &net.tables[0], "10.0.0.0/8")
            .await
            .unwrap()
            .unwrap();
        let writes = env.emulator.calls().await.unwrap().ec2_mutating();
        if *group == "g-ignore" {
            assert_eq!(e["decision"], "none", "{out:#}");
            assert_eq!(hop.eni.as_ref(), Some(&primary.eni));
            assert!(writes.is_empty(), "{writes:?}");
        } else {
            assert_eq!(e["decision"], "failover", "{group}: {out:#}");
            assert_eq!(
                e["failed"][0]["faults"][0]["state"], "INSUFFICIENT_DATA",
                "{out:#}"
            );
            assert_eq!(hop.eni.as_ref(), Some(&members[1].1.eni), "{group}");
            assert_eq!(writes, replaces(1));
        }
        // Only the alarm's own group was evaluated.
        assert_eq!(out["groups"].as_array().unwrap().len(), 1, "{out:#}");
    }
    // A sweep agrees with the events, and writes nothing.
    env.emulator.reset_calls().await.unwrap();
    let sweep = invoke(&app, scheduled()).await;
    assert!(changes(&sweep).is_empty(), "{sweep:#}");
    let calls = env.emulator.calls().await.unwrap();
    assert!(calls.ec2_mutating().is_empty(), "{calls:?}");
    assert_eq!(
        calls.count("dynamodb", "TransactWriteItems"),
        0,
        "state rewritten: {sweep:#}"
    );
}

#[tokio::test]
async fn a_terminated_primary_s_blackholed_routes_move_to_the_standby() {
    let s = scene().await;
    let app = app(&s.env, &[]);
    settle(&s, &app).await;
    let ec2 = s.ec2();

    terminate(&ec2, &s.primary.instance).await.unwrap();
    // As AWS does it: the primary interface is deleted with the instance and
    // every route toward it is a blackhole naming it.
    assert!(!interface_exists(&ec2, &s.primary.eni).await.unwrap());
    for (table, dest) in &s.managed {
        let hop = s.hop(table, dest).await;
        assert_eq!(
            (hop.state.as_str(), hop.instance.as_deref()),
            ("blackhole", None),
            "{hop:?}"
        );
        assert_eq!(hop.eni.as_ref(), Some(&s.primary.eni));
    }
    assert_eq!(s.list_hop().await.state, "blackhole");

    s.reset_calls().await;
    let event = state_change(REGION, &s.primary.instance, "terminated");
    let out = invoke(&app, event.clone()).await;
    let e = vpn(&out);
    assert_eq!(e["decision"], "failover", "{out:#}");
    assert_eq!(e["routes_managed"], 4);
    assert_eq!(e["routes_moved"], 4);
    assert_eq!(e["active"], json!(s.standby.instance));
    assert_eq!(e["failed"][0]["instance_id"], json!(s.primary.instance));
    assert_eq!(e["failed"][0]["faults"][0]["source"], "state", "{out:#}");
    let (writes, _, published) = s.writes().await;
    assert_eq!(writes, replaces(4));
    assert_eq!(published, 1);
    s.assert_all_on(&s.standby).await;
    // The terminated member is forgotten once its routes moved.
    let state = s.state().await;
    assert!(state["members"].get(&s.primary.instance).is_none(), "{state:#}");
    assert!(state["members"].get(&s.standby.instance).is_some(), "{state:#}");
    s.assert_second_runs_write_nothing(&app, event, &s.standby).await;
}

#[tokio::test]
async fn a_termination_nobody_announced_is_found_by_the_sweep() {
    let s = scene().await;
    let app = app(&s.env, &[]);
    settle(&s, &app).await;
    terminate(&s.ec2(), &s.primary.instance).await.unwrap();
    // The event was lost: the sweep finds the blackholes through the
    // interfaces the group remembers.
    let out = invoke(&app, scheduled()).await;
    assert_eq!(vpn(&out)["decision"], "failover", "{out:#}");
    assert_eq!(changes(&out).len(), 4);
    s.assert_all_on(&s.standby).await;
}

#[tokio::test]
async fn a_replacement_with_a_higher_priority_takes_the_routes_after_its_streak() {
    let s = scene().await;
    let app = app(&s.env, &[]);
    settle(&s, &app).await;
    let ec2 = s.ec2();
    terminate(&ec2, &s.primary.instance).await.unwrap();
    invoke(&app, state_change(REGION, &s.primary.instance, "terminated")).await;
    s.assert_all_on(&s.standby).await;

    // The Auto Scaling group launches a replacement from the same template:
    // the same tags, a new instance id, interface and address.
    let replacement = launch_member(
        &ec2,
        &s.net.subnets[0],
        "vpn",
        200,
        &[("lbgp:health-alarm", ALARM_A)],
    )
    .await
    .unwrap();
    assert_ne!(replacement.eni, s.primary.eni);
    s.reset_calls().await;
    let joined = invoke(&app, scheduled()).await;
    let e = vpn(&joined);
    assert_eq!(e["decision"], "none", "{joined:#}");
    assert_eq!(
        e["failback_pending"],
        json!({"instance_id": replacement.instance, "healthy_for_seconds": 0, "failback_after_seconds": 300})
    );
    let member = e["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["instance_id"] == json!(replacement.instance))
        .cloned()
        .expect("the replacement is a member");
    assert_eq!(member["healthy"], true);
    assert!(!member["addresses"].as_array().unwrap().is_empty(), "{member}");
    assert_eq!(s.writes().await.0, replaces(0));

    s.env.clock.advance(299);
    assert!(changes(&invoke(&app, scheduled()).await).is_empty());
    s.env.clock.advance(1);
    s.reset_calls().await;
    let back = invoke(&app, scheduled()).await;
    assert_eq!(vpn(&back)["decision"], "failback", "{back:#}");
    assert_eq!(vpn(&back)["active"], json!(replacement.instance));
    assert_eq!(s.writes().await.0, replaces(4));
    s.assert_all_on(&replacement).await;
    s.assert_second_runs_write_nothing(&app, scheduled(), &replacement)
        .await;
}

#[tokio::test]
async fn a_new_member_joins_at_once_by_its_tags() {
    let s = scene().await;
    let app = app(&s.env, &[("LBGP_FAILBACK_AFTER_SECONDS", "0")]);
    settle(&s, &app).await;
    let ec2 = s.ec2();
    // Launched untagged, tagged afterwards (CreateTags): a member from then on.
    let late = lbgp_tests::failover_fixtures::launch(&ec2, &s.net.subnets[0], &[])
        .await
        .unwrap();
    tag(&ec2, &late.instance, "lbgp:failover-group", "vpn")
        .await
        .unwrap();
    tag(&ec2, &late.instance, "lbgp:priority", "300").await.unwrap();
    let out = invoke(
        &app,
        lbgp_tests::failover_fixtures::cloudtrail(
            "CreateTags",
            REGION,
            json!({"resourcesSet": {"items": [{"resourceId": late.instance}]},
                   "tagSet": {"items": [{"key": "lbgp:failover-group", "value": "vpn"}]}}),
        ),
    )
    .await;
    assert_eq!(vpn(&out)["decision"], "failback", "{out:#}");
    assert_eq!(vpn(&out)["active"], json!(late.instance));
    s.assert_all_on(&late).await;
}

#[tokio::test]
async fn an_alarm_of_no_member_is_ignored_with_no_call_beyond_the_read() {
    let s = scene().await;
    let app = app(&s.env, &[]);
    settle(&s, &app).await;
    for event in [
        alarm_change(REGION, "billing-over-budget", "OK", "ALARM", "spend"),
        // lbgp's own alarms (the template's) come through the same rule.
        alarm_change(REGION, "lbgp-failover-watcher-errors", "OK", "ALARM", "errors"),
    ] {
        s.reset_calls().await;
        let out = invoke(&app, event).await;
        let ignored = out["ignored"].as_str().unwrap_or_default();
        assert!(ignored.contains("no failover group member"), "{out:#}");
        let calls = s.env.emulator.calls().await.unwrap();
        let all: BTreeMap<String, u64> = calls
            .0
            .iter()
            .flat_map(|(service, actions)| actions.iter().map(move |(a, n)| (format!("{service}:{a}"), *n)))
            .collect();
        assert_eq!(
            all,
            BTreeMap::from([("ec2:DescribeInstances".to_owned(), 1)]),
            "{out:#}"
        );
    }
    // An alarm event from a region outside LBGP_REGIONS: not even that.
    s.reset_calls().await;
    let out = invoke(&app, alarm_change("ap-south-1", ALARM_A, "OK", "ALARM", "down")).await;
    assert!(
        out["ignored"].as_str().unwrap().contains("LBGP_REGIONS"),
        "{out:#}"
    );
    assert!(s.env.emulator.calls().await.unwrap().0.is_empty());
    s.assert_all_on(&s.primary).await;
}

#[tokio::test]
async fn unreadable_alarms_freeze_only_the_groups_that_use_them() {
    let s = scene().await;
    let ec2 = s.ec2();
    // A second group, in its own VPC, without health alarms.
    let other = router_vpc(&ec2, REGION, "10.20.0.0/16").await.unwrap();
    let a = launch_member(&ec2, &other.subnets[0], "edge", 200, &[])
        .await
        .unwrap();
    let b = launch_member(&ec2, &other.subnets[1], "edge", 100, &[])
        .await
        .unwrap();
    route_to_eni(&ec2, &other.tables[0], "10.0.0.0/8", &a.eni)
        .await
        .unwrap();
    let app = app(&s.env, &[]);
    settle(&s, &app).await;

    lbgp_tests::failover_fixtures::stop(&ec2, &a.instance)
        .await
        .unwrap();
    lbgp_tests::failover_fixtures::stop(&ec2, &s.primary.instance)
        .await
        .unwrap();
    s.env
        .emulator
        .set_faults(json!({"error5xx_p": 1.0, "services": ["monitoring"]}))
        .await
        .unwrap();
    s.reset_calls().await;
    let out = invoke(&app, scheduled()).await;
    s.env.emulator.clear_faults().await.unwrap();
    // vpn's health cannot be known: its routes stay; edge fails over.
    let e = vpn(&out);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("health alarms could not be read"),
        "{out:#}"
    );
    assert_eq!(entry(&out, "edge")["decision"], "failover", "{out:#}");
    let hop = next_hop(&ec2, &other.tables[0], "10.0.0.0/8")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hop.eni.as_ref(), Some(&b.eni));
    for (table, dest) in &s.managed {
        // Left on the stopped primary (a blackhole, as AWS shows it).
        assert_eq!(s.hop(table, dest).await.eni.as_ref(), Some(&s.primary.eni));
    }
    // Readable again: vpn fails over too.
    let again = invoke(&app, scheduled()).await;
    assert_eq!(vpn(&again)["decision"], "failover", "{again:#}");
    s.assert_all_on(&s.standby).await;
}

#[tokio::test]
async fn a_dry_run_reports_the_prefix_list_move_and_writes_nothing() {
    let s = scene().await;
    let app = app(&s.env, &[]);
    settle(&s, &app).await;
    lbgp_tests::failover_fixtures::stop(&s.ec2(), &s.primary.instance)
        .await
        .unwrap();
    s.reset_calls().await;
    let dry = invoke(&app, json!({"dry_run": true})).await;
    let planned = changes(&dry);
    assert_eq!(planned.len(), 4, "{dry:#}");
    assert!(planned.iter().any(|c| c["destination"] == json!(s.list)));
    assert!(s.env.emulator.calls().await.unwrap().mutating().is_empty());
    let applied = invoke(&app, state_change(REGION, &s.primary.instance, "stopped")).await;
    let mut a = changes(&applied);
    let mut p = planned.clone();
    let key = |c: &Value| format!("{}{}", c["route_table_id"], c["destination"]);
    a.sort_by_key(key);
    p.sort_by_key(key);
    assert_eq!(
        a.iter()
            .map(|c| (&c["route_table_id"], &c["destination"], &c["target"]))
            .collect::<Vec<_>>(),
        p.iter()
            .map(|c| (&c["route_table_id"], &c["destination"], &c["target"]))
            .collect::<Vec<_>>()
    );
    s.assert_all_on(&s.standby).await;
}

#[tokio::test]
async fn health_alarms_are_read_100_names_a_call() {
    let env = TestEnv::new(&[REGION]).await.unwrap();
    let cw = cloudwatch(&env, REGION);
    let names: Vec<String> = (0..130).map(|n| format!("tunnel-{n:03}")).collect();
    for (n, name) in names.iter().enumerate() {
        tunnel_alarm(&cw, name).await.unwrap();
        let state = if n % 10 == 0 { "ALARM" } else { "OK" };
        set_alarm(&cw, name, state, "set by the test").await.unwrap();
    }
    let config = env.config(&[]).watcher().unwrap();
    let aws = env.aws(&config.common).unwrap();
    let mut asked: Vec<&str> = names.iter().map(String::as_str).collect();
    asked.extend(["no-such-alarm", "tunnel-000"]);
    env.emulator.reset_calls().await.unwrap();
    let region = lbgp_core::Region::new(REGION).unwrap();
    let readings = aws.cloudwatch(&region).unwrap().alarms(&asked).await.unwrap();
    // AWS takes at most 100 names a call (the emulator refuses more, as AWS).
    let calls = env.emulator.calls().await.unwrap();
    assert_eq!(calls.count("monitoring", "DescribeAlarms"), 2, "{calls:?}");
    assert_eq!(readings.len(), 130, "an alarm that does not exist is absent");
    assert!(!readings.contains_key("no-such-alarm"));
    let alarming = readings
        .values()
        .filter(|r| r.state == lbgp_core::failover::AlarmState::Alarm)
        .count();
    assert_eq!(alarming, 13);
    assert_eq!(readings["tunnel-010"].reason.as_deref(), Some("set by the test"));
    assert!(readings["tunnel-010"].updated_ms.is_some());
}
