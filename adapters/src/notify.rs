//! SNS notifications: a readable subject and a JSON body that always fits
//! SNS's message limit (see `lbgp_core::notice`).

use aws_sdk_sns::Client;
use lbgp_core::Region;
use lbgp_core::notice::{Notice, SNS_MESSAGE_LIMIT};

use crate::Error;

/// Publishes to `LBGP_TOPIC_ARN`, or does nothing when it is not set.
#[derive(Debug, Clone)]
pub struct Notifier {
    target: Option<(Client, String)>,
    region: Region,
}

impl Notifier {
    /// A notifier on `topic_arn` (None: notifications off).
    pub fn new(client: Client, topic_arn: Option<String>, region: Region) -> Self {
        Notifier {
            target: topic_arn.map(|arn| (client, arn)),
            region,
        }
    }

    /// Nothing configured (notifications off): no client is built.
    pub fn off(region: Region) -> Self {
        Notifier { target: None, region }
    }

    /// True when a topic is configured.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Publishes one notice. SNS subjects are limited to 100 printable
    /// ASCII characters, so the subject is cut to fit; the message is
    /// summarised to fit 256 KiB.
    pub async fn publish(&self, notice: &Notice) -> Result<(), Error> {
        let Some((client, arn)) = &self.target else {
            return Ok(());
        };
        let subject: String = notice
            .subject
            .chars()
            .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
            .take(100)
            .collect();
        client
            .publish()
            .topic_arn(arn)
            .subject(&subject)
            .message(notice.render(SNS_MESSAGE_LIMIT))
            .send()
            .await
            .map_err(|e| Error::aws("Publish", &self.region, e))?;
        tracing::info!(topic_arn = %arn, subject = %subject, "notification published");
        Ok(())
    }
}
