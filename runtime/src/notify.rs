//! Publishing notices, the same way everywhere: a failure to publish is
//! logged as an error (the routes are what matter), never dropped silently.

use lbgp_aws::context::Aws;
use lbgp_aws::store::Fence;
use lbgp_core::notice::{self, Notice};
use lbgp_core::report::ConflictReport;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Name of the state record holding the last conflict set.
pub const CONFLICTS_RECORD: &str = "conflicts";

/// Conflicts kept whole in the state record; the rest are counted.
pub const CONFLICTS_KEPT: usize = 50;

/// Publishes `notice`; a failure is logged with the subject.
pub async fn publish(aws: &Aws, notice: &Notice) {
    if let Err(e) = aws.notifier.publish(notice).await {
        tracing::error!(error = %e, subject = %notice.subject, "notification not published");
    }
}

/// The digest of a set: what is compared between runs, so the record stays
/// small however many items there are.
fn digest<T: serde::Serialize>(items: &[T]) -> String {
    let text = serde_json::to_string(items).unwrap_or_default();
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest a stored record says: this release's `{digest, count, first}`,
/// or a record an earlier release wrote (the whole list), digested the same
/// way so an upgrade does not announce an unchanged set again.
fn stored_digest(record: &Value, watched: Watched) -> Option<String> {
    if let Some(d) = record.get("digest").and_then(Value::as_str) {
        return Some(d.to_owned());
    }
    match watched {
        Watched::Conflicts => serde_json::from_value::<Vec<ConflictReport>>(record.clone())
            .ok()
            .map(|list| digest(&list)),
        Watched::UnassociatedPeerings => None,
    }
}

/// A set the operators hear about when it changes, not on every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    /// Desired routes not installed.
    Conflicts,
    /// Peering attachments with no route table on a side.
    UnassociatedPeerings,
}

impl Watched {
    /// The state record that remembers the set (`conflicts` is the name
    /// earlier releases used; their records keep working).
    pub fn record(self) -> &'static str {
        match self {
            Watched::Conflicts => CONFLICTS_RECORD,
            Watched::UnassociatedPeerings => "unassociated_peerings",
        }
    }
}

/// Publishes a watched set when it changed since the last run, and
/// remembers it (its digest, count and first entries): one message per
/// change, not one per run. `items` must be sorted.
pub async fn set_changed<T: serde::Serialize>(
    aws: &Aws,
    fence: &Fence,
    (function, scope, trigger): (&str, &str, &str),
    watched: Watched,
    items: &[T],
    notice: impl FnOnce() -> Notice,
) {
    let current = digest(items);
    let previous = match aws.store.load_state(function, scope, watched.record()).await {
        Ok(record) => record.as_ref().and_then(|r| stored_digest(r, watched)),
        Err(e) => {
            tracing::error!(error = %e, record = watched.record(), "the last set could not be read; not notified this run");
            return;
        }
    };
    if previous.as_deref() == Some(current.as_str()) || (previous.is_none() && items.is_empty()) {
        return;
    }
    let record = json!({
        "digest": current,
        "count": items.len(),
        "first": items.iter().take(CONFLICTS_KEPT).collect::<Vec<_>>(),
        "trigger": trigger,
    });
    match aws
        .store
        .save_state(fence, function, scope, watched.record(), &record)
        .await
    {
        Ok(()) => publish(aws, &notice()).await,
        Err(e) => {
            tracing::error!(error = %e, record = watched.record(), "the set could not be saved; not notified this run")
        }
    }
}

/// Publishes the conflicts when their set changed since the last run.
pub async fn conflicts_changed(
    aws: &Aws,
    fence: &Fence,
    function: &str,
    scope: &str,
    trigger: &str,
    conflicts: &[ConflictReport],
) {
    set_changed(
        aws,
        fence,
        (function, scope, trigger),
        Watched::Conflicts,
        conflicts,
        || notice::conflicts_changed(function, trigger, conflicts),
    )
    .await;
}

/// Publishes the peering attachments without a route table when their set
/// changed since the last run.
pub async fn unassociated_changed(
    aws: &Aws,
    fence: &Fence,
    function: &str,
    scope: &str,
    trigger: &str,
    attachments: &[String],
) {
    set_changed(
        aws,
        fence,
        (function, scope, trigger),
        Watched::UnassociatedPeerings,
        attachments,
        || notice::peering_unassociated(function, trigger, attachments),
    )
    .await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn conflict(n: usize) -> ConflictReport {
        ConflictReport {
            region: "eu-west-1".into(),
            route_table_id: Some(format!("rtb-{n}")),
            destination: "10.0.0.0/8".into(),
            wanted: Some("tgw-1".into()),
            held_by: vec!["i-legacy".into()],
            reason: "held".into(),
            account: None,
        }
    }

    #[test]
    fn an_old_record_reads_as_the_same_digest() {
        let set: Vec<ConflictReport> = (0..3).map(conflict).collect();
        let old_format = serde_json::to_value(&set).unwrap();
        assert_eq!(stored_digest(&old_format, Watched::Conflicts), Some(digest(&set)));
        let new_format = json!({"digest": digest(&set), "count": 3, "first": set});
        assert_eq!(stored_digest(&new_format, Watched::Conflicts), Some(digest(&set)));
        assert_ne!(digest(&set[..2]), digest(&set));
    }
}
