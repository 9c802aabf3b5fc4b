//! Cross-account meshes (issue #18): which accounts are members, which role
//! lbgp assumes in each, and the rules that keep one account's trouble, or
//! a non-member's VPC, from touching anything.
//!
//! Pure: the adapters say who owns what (the `OwnerId` of VPCs and route
//! tables, the `VpcOwnerId`/`ResourceOwnerId` of TGW attachments) and which
//! accounts could be read; these rules decide.
//!
//! Backward compatibility: a deployment without `LBGP_ACCOUNTS` has one
//! member, the home account, and every ledger item written before accounts
//! existed (no `account` attribute) belongs to it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::desire::Desire;
use crate::model::{Region, RouteTableRef, TableKind};
use crate::plan::OwnershipLedger;
use crate::report::{ErrorReport, InvokeResponse, SkipReport};

/// The default `LBGP_MEMBER_ROLE`.
pub const DEFAULT_MEMBER_ROLE: &str = "lbgp-member";

/// A 12-digit AWS account id, validated at the boundary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    /// Exactly 12 ASCII digits (leading zeros are part of the id), or `None`.
    pub fn new(id: &str) -> Option<AccountId> {
        let id = id.trim();
        (id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())).then(|| AccountId(id.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `LBGP_ACCOUNTS`: who, besides the home account, is a member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MemberSetting {
    /// Unset: the home account only, exactly the behaviour before the
    /// setting existed (no role is assumed, no other account is read).
    #[default]
    HomeOnly,
    /// These accounts (the home account is a member whether listed or not).
    Listed(BTreeSet<AccountId>),
    /// `discover`: every account that owns a VPC attached to a mesh TGW.
    Discover,
}

/// An IAM role name, optionally with a path (`team/lbgp-member`): what
/// `arn:aws:iam::<account>:role/` is followed by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName(String);

impl RoleName {
    /// IAM's rules: the name 1–64 of `A–Z a–z 0–9 +=,.@_-`, each path
    /// segment non-empty of the same characters, at most 512 in all.
    pub fn new(name: &str) -> Option<RoleName> {
        let name = name.trim().trim_start_matches('/');
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
        let segments: Vec<&str> = name.split('/').collect();
        let last = segments.last().copied().unwrap_or_default();
        let well_formed = name.len() <= 512
            && (1..=64).contains(&last.len())
            && segments.iter().all(|s| !s.is_empty() && s.chars().all(ok_char));
        well_formed.then(|| RoleName(name.to_owned()))
    }

    /// The name (with its path, no leading slash).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The cross-account settings (`LBGP_ACCOUNTS`, `LBGP_MEMBER_ROLE`,
/// `LBGP_EXTERNAL_ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsConfig {
    /// Who is a member.
    pub members: MemberSetting,
    /// The role assumed in each member other than the home account.
    pub role: RoleName,
    /// The external id passed to `sts:AssumeRole`, if the member roles'
    /// trust policy asks for one.
    pub external_id: Option<String>,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            members: MemberSetting::HomeOnly,
            role: RoleName(DEFAULT_MEMBER_ROLE.to_owned()),
            external_id: None,
        }
    }
}

impl AccountsConfig {
    /// True when other accounts may be read: `LBGP_ACCOUNTS` is set.
    pub fn is_cross_account(&self) -> bool {
        self.members != MemberSetting::HomeOnly
    }

    /// The role assumed in `account`: `arn:<partition>:iam::<account>:role/<name>`.
    pub fn role_arn(&self, partition: &str, account: &AccountId) -> String {
        format!("arn:{partition}:iam::{account}:role/{}", self.role)
    }

    /// The members, given the home account and (for `discover`) the owners
    /// of the VPC attachments of the mesh TGWs.
    pub fn membership<'a>(
        &self,
        home: &AccountId,
        attachment_owners: impl IntoIterator<Item = &'a AccountId>,
    ) -> Membership {
        let mut members = BTreeSet::from([home.clone()]);
        match &self.members {
            MemberSetting::HomeOnly => {}
            MemberSetting::Listed(listed) => members.extend(listed.iter().cloned()),
            MemberSetting::Discover => members.extend(attachment_owners.into_iter().cloned()),
        }
        Membership {
            home: home.clone(),
            members,
        }
    }
}

/// The member accounts of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    home: AccountId,
    members: BTreeSet<AccountId>,
}

impl Membership {
    /// The account lbgp runs in.
    pub fn home(&self) -> &AccountId {
        &self.home
    }

    /// True when `account` is a member.
    pub fn contains(&self, account: &AccountId) -> bool {
        self.members.contains(account)
    }

    /// Every member, the home account included, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &AccountId> {
        self.members.iter()
    }

    /// The members whose role is assumed: all but the home account.
    pub fn others(&self) -> impl Iterator<Item = &AccountId> {
        self.members.iter().filter(move |a| **a != self.home)
    }
}

/// Which account owns each route table, as read (`OwnerId`) or as the
/// ledger recorded it. A table it does not know belongs to the home
/// account: every ledger item written before accounts existed does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOwners {
    home: AccountId,
    owners: BTreeMap<RouteTableRef, AccountId>,
}

impl TableOwners {
    /// No table known yet.
    pub fn new(home: AccountId) -> Self {
        TableOwners {
            home,
            owners: BTreeMap::new(),
        }
    }

    /// Records that `account` owns `table` (a later read overrides).
    pub fn insert(&mut self, table: RouteTableRef, account: AccountId) {
        self.owners.insert(table, account);
    }

    /// The owner of `table`: as recorded, else the home account.
    pub fn owner(&self, table: &RouteTableRef) -> &AccountId {
        self.owners.get(table).unwrap_or(&self.home)
    }

    /// The owner of `table` when it is not the home account: where its
    /// writes go, and what its ledger entry records.
    pub fn account(&self, table: &RouteTableRef) -> Option<&AccountId> {
        self.owners.get(table).filter(|a| **a != self.home)
    }

    /// The home account.
    pub fn home(&self) -> &AccountId {
        &self.home
    }

    /// Learns the tables' owners the ledger recorded (an entry without an
    /// account is the home account's); what a read says overrides them.
    pub fn record_ledger(&mut self, ledger: &OwnershipLedger) {
        for e in ledger.iter() {
            if let Some(a) = &e.account {
                self.owners
                    .entry(e.key.table.clone())
                    .or_insert_with(|| a.clone());
            }
        }
    }

    /// The tables and their owners, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&RouteTableRef, &AccountId)> {
        self.owners.iter()
    }
}

/// The accounts a run could not read, each with why (role denied, missing,
/// throttled…).
pub type Unreadable = BTreeMap<AccountId, String>;

/// Applies the two cross-account safety rules to a desire:
///
/// * **Never into a non-member.** A desired route in a VPC table of an
///   account that is not a member is dropped and reported as skipped (a
///   TGW shared through RAM shows attachments of accounts lbgp must not
///   write to). TGW tables are left to their owner's rules.
/// * **Unreadable freezes.** Every table of an unreadable account (known
///   from the ledger or from what was read) is frozen: nothing in it is
///   created, replaced, or deleted, and nothing is forgotten from the
///   ledger because of what could not be read. Each unreadable account is
///   reported once in `errors`.
pub fn guard(
    desire: &mut Desire,
    ledger: &OwnershipLedger,
    owners: &TableOwners,
    membership: &Membership,
    unreadable: &Unreadable,
) {
    for (account, why) in unreadable {
        desire.errors.push(ErrorReport {
            region: "-".to_owned(),
            resource: Some(format!("account {account}")),
            error: format!(
                "account {account} could not be read ({why}); its tables are left exactly as they are"
            ),
            account: Some(account.to_string()),
        });
    }
    let tables: BTreeSet<RouteTableRef> = ledger
        .iter()
        .map(|e| e.key.table.clone())
        .chain(desire.desired.iter().map(|d| d.key.table.clone()))
        .chain(desire.actual.iter().map(|r| r.key.table.clone()))
        .collect();
    for table in tables {
        let owner = owners.owner(&table);
        if unreadable.contains_key(owner) {
            desire.frozen_tables.insert(table);
        }
    }
    let mut refused: BTreeSet<(RouteTableRef, AccountId)> = BTreeSet::new();
    desire.desired.retain(|d| {
        let owner = owners.owner(&d.key.table);
        let allowed = d.key.table.kind != TableKind::Vpc || membership.contains(owner);
        if !allowed {
            refused.insert((d.key.table.clone(), owner.clone()));
        }
        allowed
    });
    for (table, owner) in refused {
        desire.skipped.push(SkipReport {
            region: table.region.to_string(),
            resource: table.id.clone(),
            destination: None,
            reason: format!("owned by account {owner}, which is not a member (LBGP_ACCOUNTS); never written"),
            account: Some(owner.to_string()),
        });
    }
    desire.normalise();
}

/// What a cross-account read found out about accounts: who the members
/// are, who owns each table, which accounts could not be read, and which
/// attached VPCs belong to accounts that are not members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsView {
    /// The members.
    pub membership: Membership,
    /// The owner of every table read or in the ledger.
    pub tables: TableOwners,
    /// Member accounts that could not be read, with why.
    pub unreadable: Unreadable,
    /// Attached VPCs of non-members, never read nor written: (region,
    /// account, VPC id).
    pub not_members: BTreeSet<(Region, AccountId, String)>,
}

impl AccountsView {
    /// Nothing read yet.
    pub fn new(membership: Membership) -> AccountsView {
        let tables = TableOwners::new(membership.home().clone());
        AccountsView {
            membership,
            tables,
            unreadable: Unreadable::new(),
            not_members: BTreeSet::new(),
        }
    }

    /// Adds what another region's read found.
    pub fn merge(&mut self, other: AccountsView) {
        for (t, a) in other.tables.owners {
            self.tables.owners.entry(t).or_insert(a);
        }
        for (a, why) in other.unreadable {
            self.unreadable.entry(a).or_insert(why);
        }
        self.not_members.extend(other.not_members);
        for a in other.membership.iter() {
            self.membership.members.insert(a.clone());
        }
    }

    /// [`guard`], and one skip report per attached VPC of a non-member.
    pub fn guard(&self, desire: &mut Desire, ledger: &OwnershipLedger) {
        for (region, account, vpc) in &self.not_members {
            desire.skipped.push(SkipReport {
                region: region.to_string(),
                resource: vpc.clone(),
                destination: None,
                reason: format!(
                    "attached VPC of account {account}, which is not a member (LBGP_ACCOUNTS); never read nor written"
                ),
                account: Some(account.to_string()),
            });
        }
        guard(desire, ledger, &self.tables, &self.membership, &self.unreadable);
    }
}

/// Names the account of every change, conflict, skip and error of
/// `response` that concerns a table `tables` knows (a cross-account mesh:
/// the home account's tables too). Reports that already name one keep it.
pub fn name_accounts(response: &mut InvokeResponse, tables: &TableOwners) {
    let by_id: BTreeMap<&str, &AccountId> = tables.iter().map(|(t, a)| (t.id.as_str(), a)).collect();
    let name = |id: &str, account: &mut Option<String>| {
        if account.is_none() {
            *account = Some(by_id.get(id).copied().unwrap_or(tables.home()).to_string());
        }
    };
    for c in &mut response.changes {
        name(&c.route_table_id, &mut c.account);
    }
    for c in &mut response.conflicts {
        if let Some(id) = &c.route_table_id {
            name(id, &mut c.account);
        }
    }
    for s in &mut response.skipped {
        if by_id.contains_key(s.resource.as_str()) || s.resource.starts_with("rtb-") {
            name(&s.resource, &mut s.account);
        }
    }
    for e in &mut response.errors {
        if let Some(id) = e
            .resource
            .as_deref()
            .filter(|r| by_id.contains_key(r) || r.starts_with("rtb-"))
        {
            name(id, &mut e.account);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::model::{DesiredRoute, Region, Route, RouteKey, RouteOrigin, RouteState, RouteTarget};
    use crate::plan::{LedgerEntry, LedgerStatus};

    fn acct(id: &str) -> AccountId {
        AccountId::new(id).unwrap()
    }

    fn table(id: &str) -> RouteTableRef {
        RouteTableRef {
            region: Region::new("eu-west-1").unwrap(),
            kind: TableKind::Vpc,
            id: id.to_owned(),
        }
    }

    fn key(t: &str, dst: &str) -> RouteKey {
        RouteKey {
            table: table(t),
            destination: dst.parse().unwrap(),
        }
    }

    const HOME: &str = "111111111111";
    const APP: &str = "222222222222";
    const OTHER: &str = "333333333333";

    #[test]
    fn account_ids_and_role_names() {
        assert_eq!(acct(" 012345678901 ").as_str(), "012345678901");
        for bad in ["", "12345678901", "1234567890123", "12345678901a", "-12345678901"] {
            assert!(AccountId::new(bad).is_none(), "{bad}");
        }
        for ok in ["lbgp-member", "a", "team/net/lbgp+x=y,z.w@q_1", "/svc/r"] {
            assert!(RoleName::new(ok).is_some(), "{ok}");
        }
        assert_eq!(RoleName::new("/svc/r").unwrap().as_str(), "svc/r");
        for bad in [
            "",
            "has space",
            "a//b",
            "role*",
            &"x".repeat(65),
            "arn:aws:iam::1:role/x",
        ] {
            assert!(RoleName::new(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn role_arn_per_account() {
        let cfg = AccountsConfig::default();
        assert_eq!(
            cfg.role_arn("aws", &acct(APP)),
            "arn:aws:iam::222222222222:role/lbgp-member"
        );
        let cfg = AccountsConfig {
            role: RoleName::new("net/lbgp").unwrap(),
            ..AccountsConfig::default()
        };
        assert_eq!(
            cfg.role_arn("aws-us-gov", &acct(APP)),
            "arn:aws-us-gov:iam::222222222222:role/net/lbgp"
        );
    }

    #[test]
    fn home_is_always_a_member() {
        let owners = [acct(APP), acct(OTHER), acct(HOME)];
        let home_only = AccountsConfig::default().membership(&acct(HOME), &owners);
        assert_eq!(home_only.iter().collect::<Vec<_>>(), vec![&acct(HOME)]);
        assert_eq!(home_only.others().count(), 0);
        assert!(!AccountsConfig::default().is_cross_account());

        let listed = AccountsConfig {
            members: MemberSetting::Listed(BTreeSet::from([acct(APP)])),
            ..AccountsConfig::default()
        };
        let m = listed.membership(&acct(HOME), &owners);
        assert!(m.contains(&acct(HOME)) && m.contains(&acct(APP)) && !m.contains(&acct(OTHER)));
        assert_eq!(m.others().collect::<Vec<_>>(), vec![&acct(APP)]);

        let discover = AccountsConfig {
            members: MemberSetting::Discover,
            ..AccountsConfig::default()
        };
        let m = discover.membership(&acct(HOME), &owners);
        assert_eq!(m.iter().count(), 3);
        assert_eq!(m.others().count(), 2);
        // No attachment at all: still the home account.
        let m = discover.membership(&acct(HOME), &[]);
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![&acct(HOME)]);
    }

    fn desired(t: &str, dst: &str) -> DesiredRoute {
        DesiredRoute {
            key: key(t, dst),
            target: RouteTarget::TransitGateway("tgw-1".to_owned()),
        }
    }

    #[test]
    fn never_into_a_non_member() {
        let listed = AccountsConfig {
            members: MemberSetting::Listed(BTreeSet::from([acct(APP)])),
            ..AccountsConfig::default()
        };
        let membership = listed.membership(&acct(HOME), &[]);
        let mut owners = TableOwners::new(acct(HOME));
        owners.insert(table("rtb-app"), acct(APP));
        owners.insert(table("rtb-stranger"), acct(OTHER));
        let mut desire = Desire {
            desired: vec![
                desired("rtb-home", "10.0.0.0/8"),
                desired("rtb-app", "10.0.0.0/8"),
                desired("rtb-stranger", "10.0.0.0/8"),
                desired("rtb-stranger", "172.16.0.0/12"),
            ],
            ..Desire::default()
        };
        guard(
            &mut desire,
            &OwnershipLedger::new(),
            &owners,
            &membership,
            &Unreadable::new(),
        );
        let tables: Vec<&str> = desire.desired.iter().map(|d| d.key.table.id.as_str()).collect();
        assert_eq!(tables, vec!["rtb-home", "rtb-app"]);
        assert_eq!(desire.skipped.len(), 1, "one report per refused table");
        assert!(desire.skipped[0].reason.contains("333333333333"));
        assert!(desire.errors.is_empty());
    }

    #[test]
    fn an_unreadable_account_freezes_its_tables_only() {
        let listed = AccountsConfig {
            members: MemberSetting::Listed(BTreeSet::from([acct(APP), acct(OTHER)])),
            ..AccountsConfig::default()
        };
        let membership = listed.membership(&acct(HOME), &[]);
        let mut owners = TableOwners::new(acct(HOME));
        owners.insert(table("rtb-app"), acct(APP));
        owners.insert(table("rtb-other"), acct(OTHER));
        let mut ledger = OwnershipLedger::new();
        for t in ["rtb-home", "rtb-app", "rtb-legacy"] {
            ledger.insert(LedgerEntry::new(
                key(t, "10.0.0.0/8"),
                RouteTarget::TransitGateway("tgw-1".to_owned()),
                LedgerStatus::Owned,
            ));
        }
        let mut desire = Desire {
            desired: vec![
                desired("rtb-home", "10.0.0.0/8"),
                desired("rtb-other", "10.0.0.0/8"),
            ],
            actual: vec![Route {
                key: key("rtb-other", "10.0.0.0/8"),
                target: RouteTarget::TransitGateway("tgw-1".to_owned()),
                state: RouteState::Active,
                origin: RouteOrigin::Static,
            }],
            complete_regions: BTreeSet::from([Region::new("eu-west-1").unwrap()]),
            ..Desire::default()
        };
        let unreadable = Unreadable::from([(acct(APP), "AccessDenied".to_owned())]);
        guard(&mut desire, &ledger, &owners, &membership, &unreadable);
        // The app account's table (known only from the ledger) is frozen:
        // its ledger entry is neither re-created nor forgotten.
        assert!(desire.frozen_tables.contains(&table("rtb-app")));
        assert!(desire.in_scope(&table("rtb-home")) && desire.in_scope(&table("rtb-other")));
        assert_eq!(desire.frozen_tables.len(), 1);
        assert_eq!(desire.errors.len(), 1);
        assert!(
            desire.errors[0].error.contains("222222222222")
                && desire.errors[0].error.contains("AccessDenied")
        );
        let plan = desire.plan(&ledger);
        assert!(
            plan.changes.iter().all(|c| c.key.table.id != "rtb-app"),
            "{plan:?}"
        );
        let fixed = |f: &crate::plan::LedgerFix| match f {
            crate::plan::LedgerFix::Record { key, .. } | crate::plan::LedgerFix::Drop { key, .. } => {
                key.table.id == "rtb-app"
            }
        };
        assert!(!plan.ledger_fixes.iter().any(fixed), "{plan:?}");
        // Without the freeze the same plan re-creates the app route:
        // the assertion above is not vacuous.
        let unguarded = Desire {
            complete_regions: desire.complete_regions.clone(),
            ..Desire::default()
        };
        assert!(unguarded.plan(&ledger).ledger_fixes.iter().any(fixed));
    }

    #[test]
    fn legacy_ledger_items_belong_to_home() {
        let owners = TableOwners::new(acct(HOME));
        assert_eq!(owners.owner(&table("rtb-written-last-year")), &acct(HOME));
        // The home account unreadable (its own role is never assumed, so
        // this only happens if its reads fail): legacy tables freeze too.
        let membership = AccountsConfig::default().membership(&acct(HOME), &[]);
        let mut ledger = OwnershipLedger::new();
        ledger.insert(LedgerEntry::new(
            key("rtb-written-last-year", "10.0.0.0/8"),
            RouteTarget::TransitGateway("tgw-1".to_owned()),
            LedgerStatus::Owned,
        ));
        let mut desire = Desire::default();
        let unreadable = Unreadable::from([(acct(HOME), "throttled".to_owned())]);
        guard(&mut desire, &ledger, &owners, &membership, &unreadable);
        assert!(desire.frozen_tables.contains(&table("rtb-written-last-year")));
    }

    #[test]
    fn ledger_accounts_and_reads_say_who_owns_a_table() {
        let mut owners = TableOwners::new(acct(HOME));
        let mut ledger = OwnershipLedger::new();
        let mut entry = LedgerEntry::new(
            key("rtb-app", "10.0.0.0/8"),
            RouteTarget::TransitGateway("tgw-1".to_owned()),
            LedgerStatus::Owned,
        );
        entry.account = Some(acct(APP));
        ledger.insert(entry);
        ledger.insert(LedgerEntry::new(
            key("rtb-old", "10.0.0.0/8"),
            RouteTarget::TransitGateway("tgw-1".to_owned()),
            LedgerStatus::Owned,
        ));
        owners.record_ledger(&ledger);
        owners.insert(table("rtb-home"), acct(HOME));
        assert_eq!(owners.account(&table("rtb-app")), Some(&acct(APP)));
        // Home tables, read or recorded before accounts existed: no account.
        assert_eq!(owners.account(&table("rtb-old")), None);
        assert_eq!(owners.account(&table("rtb-home")), None);
        assert_eq!(owners.owner(&table("rtb-old")), &acct(HOME));
    }

    #[test]
    fn every_report_about_a_table_names_its_account() {
        let mut owners = TableOwners::new(acct(HOME));
        owners.insert(table("rtb-app"), acct(APP));
        let change = |t: &str| crate::report::ChangeReport {
            op: "create".into(),
            region: "eu-west-1".into(),
            route_table_id: t.into(),
            destination: "10.0.0.0/8".into(),
            target: "tgw-1".into(),
            previous_target: None,
            reason: "r".into(),
            account: None,
        };
        let mut response = InvokeResponse {
            changes: vec![change("rtb-app"), change("rtb-home")],
            skipped: vec![SkipReport {
                region: "eu-west-1".into(),
                resource: "rtb-app".into(),
                destination: None,
                reason: "r".into(),
                account: None,
            }],
            errors: vec![ErrorReport {
                region: "-".into(),
                resource: Some("account 333333333333".into()),
                error: "denied".into(),
                account: Some(OTHER.into()),
            }],
            ..InvokeResponse::default()
        };
        name_accounts(&mut response, &owners);
        let accounts: Vec<&str> = response
            .changes
            .iter()
            .filter_map(|c| c.account.as_deref())
            .collect();
        assert_eq!(accounts, vec![APP, HOME]);
        assert_eq!(response.skipped[0].account.as_deref(), Some(APP));
        // An error that names its account keeps it.
        assert_eq!(response.errors[0].account.as_deref(), Some(OTHER));
    }

    #[test]
    fn a_non_members_attached_vpc_is_reported_once_and_views_merge() {
        let listed = AccountsConfig {
            members: MemberSetting::Listed(BTreeSet::from([acct(APP)])),
            ..AccountsConfig::default()
        };
        let region = Region::new("eu-west-1").unwrap();
        let mut a = AccountsView::new(listed.membership(&acct(HOME), &[]));
        a.not_members
            .insert((region.clone(), acct(OTHER), "vpc-stranger".to_owned()));
        let mut b = AccountsView::new(listed.membership(&acct(HOME), &[]));
        b.tables.insert(table("rtb-app"), acct(APP));
        b.unreadable.insert(acct(APP), "denied".to_owned());
        a.merge(b);
        let mut desire = Desire {
            desired: vec![desired("rtb-app", "10.0.0.0/8")],
            ..Desire::default()
        };
        a.guard(&mut desire, &OwnershipLedger::new());
        assert_eq!(desire.skipped.len(), 1, "{:?}", desire.skipped);
        assert!(desire.skipped[0].reason.contains(OTHER));
        assert!(desire.frozen_tables.contains(&table("rtb-app")));
        assert_eq!(desire.errors.len(), 1);
    }
}
