//! State records: `state#<function>#<scope>`, `sk = <name>`, a JSON body
//! (a failover group's state, the last conflict set…).

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::{Fence, Store, get_s, n, s};
use crate::Error;

/// DynamoDB's item size limit is 400 KB: a body must stay well below it with
/// the other attributes. Callers keep bodies small (digests, not lists);
/// this is the check that a mistake fails clearly and early.
pub const STATE_BODY_LIMIT: usize = 350_000;

impl Store {
    /// Reads a state record (`state#<function>#<scope>`, `name`) as JSON.
    pub async fn load_state(
        &self,
        function: &str,
        scope: &str,
        name: &str,
    ) -> Result<Option<serde_json::Value>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("state#{function}#{scope}")))
            .key("sk", s(name))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err("GetItem", e))?;
        Ok(out
            .item()
            .and_then(|i| get_s(i, "body"))
            .and_then(|b| serde_json::from_str(b).ok()))
    }

    /// Writes a state record, fenced by the lease.
    pub async fn save_state(
        &self,
        fence: &Fence,
        function: &str,
        scope: &str,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<(), Error> {
        let text = body.to_string();
        if text.len() > STATE_BODY_LIMIT {
            return Err(Error::Unexpected {
                operation: "TransactWriteItems",
                region: self.region.to_string(),
                detail: format!(
                    "state record state#{function}#{scope} {name} is {} bytes, above the {STATE_BODY_LIMIT}-byte limit kept under DynamoDB's 400 KB item size; not saved",
                    text.len()
                ),
            });
        }
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("state#{function}#{scope}")))
            .item("sk", s(name))
            .item("body", s(text))
            .item("updated_at", n(self.clock.now()))
            .item("fence", n(fence.token))
            .build()
            .map_err(|e| self.build_err(e))?;
        self.fenced_write(fence, vec![TransactWriteItem::builder().put(put).build()])
            .await
    }
}
