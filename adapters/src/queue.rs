//! The follow-up queue: where a run that stopped before its deadline with
//! work left sends the invocation that continues it at once (an SQS queue
//! that is an event source of the function; `LBGP_FOLLOW_UP_QUEUE_URL`).

use aws_sdk_sqs::Client;
use lbgp_core::Region;

use crate::Error;

/// The queue, or nothing when none is configured.
#[derive(Debug, Clone)]
pub struct FollowUps {
    target: Option<(Client, String)>,
    region: Region,
}

impl FollowUps {
    /// A sender to `queue_url` (None: follow-ups off; the schedule then
    /// picks up what a run left).
    pub fn new(client: Client, queue_url: Option<String>, region: Region) -> Self {
        FollowUps {
            target: queue_url.map(|url| (client, url)),
            region,
        }
    }

    /// Nothing configured (follow-ups off): no client is built.
    pub fn off(region: Region) -> Self {
        FollowUps { target: None, region }
    }

    /// True when a queue is configured.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one follow-up payload; its message id, or `None` when off.
    pub async fn send(&self, payload: &serde_json::Value) -> Result<Option<String>, Error> {
        let Some((client, url)) = &self.target else {
            return Ok(None);
        };
        let out = client
            .send_message()
            .queue_url(url)
            .message_body(payload.to_string())
            .send()
            .await
            .map_err(|e| Error::aws("SendMessage", &self.region, e))?;
        Ok(out.message_id().map(str::to_owned))
    }
}
