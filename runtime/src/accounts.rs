//! Reading a region's VPCs in the accounts that own them (a cross-account
//! mesh, `LBGP_ACCOUNTS` set): the TGW owner's attachments say who owns
//! each VPC; each member's VPCs and tables are read with that member's
//! clients, side by side; a member that cannot be read is recorded, never
//! fatal; a non-member's VPC is never read.

use std::collections::BTreeMap;
use std::future::Future;

use futures::future::join_all;
use lbgp_aws::Error;
use lbgp_aws::context::Aws;
use lbgp_aws::ec2::Ec2;
use lbgp_core::Region;
use lbgp_core::accounts::{AccountId, AccountsView};
use lbgp_core::topology::VpcAttachment;

/// The owner of an attached VPC as its read goes: `None` for the home
/// account (and when AWS did not say, as for every attachment before
/// accounts existed).
fn owner_of<'a>(a: &'a VpcAttachment, view: &AccountsView) -> Option<&'a AccountId> {
    a.vpc_owner.as_ref().filter(|o| *o != view.membership.home())
}

/// What [`read_owned_vpcs`] read: per account (`None`: home), the answer.
pub type ByAccount<T> = Vec<(Option<AccountId>, T)>;

/// The accounts of a run: members (for `discover`, the owners of the VPCs
/// attached to `attachments`).
pub async fn accounts_view(aws: &Aws, attachments: &[VpcAttachment]) -> Result<AccountsView, Error> {
    let owners: Vec<AccountId> = attachments.iter().filter_map(|a| a.vpc_owner.clone()).collect();
    Ok(AccountsView::new(aws.members.membership(&owners).await?))
}

/// Reads, in each member account owning some of the VPCs `attachments`
/// name, those VPCs with `read(ec2 of that account in region, vpc ids)`.
/// Records in `view` the non-members' VPCs (not read) and the members that
/// could not be read (their clients, their role, or the read failed).
pub async fn read_owned_vpcs<T, Fut>(
    aws: &Aws,
    region: &Region,
    attachments: &[VpcAttachment],
    view: &mut AccountsView,
    read: impl Fn(Ec2, Vec<String>) -> Fut,
) -> ByAccount<T>
where
    Fut: Future<Output = Result<T, Error>>,
{
    let mut groups: BTreeMap<Option<AccountId>, Vec<String>> = BTreeMap::new();
    for a in attachments {
        let owner = owner_of(a, view);
        if let Some(o) = owner
            && !view.membership.contains(o)
        {
            view.not_members
                .insert((region.clone(), o.clone(), a.vpc_id.clone()));
            continue;
        }
        let ids = groups.entry(owner.cloned()).or_default();
        if !ids.contains(&a.vpc_id) {
            ids.push(a.vpc_id.clone());
        }
    }
    let read = &read;
    let results = join_all(groups.into_iter().map(|(account, ids)| async move {
        let result = match aws.ec2_in(account.as_ref(), region).await {
            Ok(ec2) => read(ec2, ids).await,
            Err(e) => Err(e),
        };
        (account, result)
    }))
    .await;
    let mut out = Vec::new();
    for (account, result) in results {
        match result {
            Ok(t) => out.push((account, t)),
            Err(e) => {
                let who = account.unwrap_or_else(|| view.membership.home().clone());
                let why = why_unreadable(&e, &aws.members.config().role);
                tracing::error!(account = %who, region = %region, error = %why,
                    "account could not be read; its tables are left as they are");
                view.unreadable.entry(who).or_insert(why);
            }
        }
    }
    out
}

/// The home account and the other members, for a function that reads no
/// attachment of its own (the watcher): the listed accounts, or, with
/// `discover`, the owners of the VPCs attached to the mesh TGWs of
/// `regions`.
pub async fn other_members(
    aws: &Aws,
    mesh: &str,
    regions: &[Region],
) -> Result<(AccountId, Vec<AccountId>), Error> {
    let home = aws.members.home_account().await?;
    let owners = match &aws.members.config().members {
        lbgp_core::accounts::MemberSetting::Discover => {
            let mut owners = Vec::new();
            for region in regions {
                let ec2 = aws.ec2(region)?;
                let tgws = ec2.mesh_transit_gateways(mesh).await?;
                let ids: Vec<&str> = tgws.iter().map(|t| t.id.as_str()).collect();
                owners.extend(
                    ec2.vpc_attachments(&ids)
                        .await?
                        .into_iter()
                        .filter_map(|a| a.vpc_owner),
                );
            }
            owners
        }
        _ => Vec::new(),
    };
    let membership = aws.members.config().membership(&home, &owners);
    let others = membership.others().cloned().collect();
    Ok((home, others))
}

/// Why a member account could not be read, in one line: the call and
/// where, each cause's message (not the SDK's debug dump of the response),
/// and what to check.
pub fn why_unreadable(e: &Error, role: &lbgp_core::accounts::RoleName) -> String {
    let mut text = match e {
        Error::Aws {
            operation, region, ..
        } => format!("{operation} failed in {region}"),
        other => other.to_string(),
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        // The SDK's innermost causes print their whole response.
        if !more.contains('{') && !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    format!(
        "{text} (check that role {role} exists in that account, trusts this account's function roles, \
         and allows the describes: member-role.yaml)"
    )
}
