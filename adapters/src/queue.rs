//! The follow-up queue: where a run that stopped before its deadline with
//! work left sends the invocation that continues it at once (an SQS queue
//! that is an event source of the function; `LBGP_FOLLOW_UP_QUEUE_URL`).

use aws_sdk_sqs::{Client, Config};
use lbgp_core::Region;

use crate::Error;
use crate::first_use::FirstUse;

/// The queue, or nothing when none is configured. Only a run that runs
/// out of time sends to it, so its client is built on the first send.
#[derive(Debug, Clone)]
pub struct FollowUps {
    target: Option<(FirstUse<Client, Config>, String)>,
    region: Region,
}

impl FollowUps {
    /// A sender to `queue_url` (None: follow-ups off; the schedule then
    /// picks up what a run left).
    pub fn new(client: Client, queue_url: Option<String>, region: Region) -> Self {
        FollowUps {
            target: queue_url.map(|url| (FirstUse::ready(client), url)),
            region,
        }
    }

    /// A sender to `queue_url` whose client is built from `config` on the
    /// first send.
    pub fn on_first_use(config: Config, queue_url: String, region: Region) -> Self {
        FollowUps {
            target: Some((FirstUse::on_first_use(config, Client::from_conf), queue_url)),
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
            .get()
            .send_message()
            .queue_url(url)
            .message_body(payload.to_string())
            .send()
            .await
            .map_err(|e| Error::aws("SendMessage", &self.region, e))?;
        Ok(out.message_id().map(str::to_owned))
    }
}
