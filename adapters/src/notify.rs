//! SNS notifications: a readable subject and a JSON body that always fits
//! SNS's message limit (see `lbgp_core::notice`).

use aws_sdk_sns::{Client, Config};
use lbgp_core::Region;
use lbgp_core::notice::{Notice, SNS_MESSAGE_LIMIT};

use crate::Error;
use crate::first_use::FirstUse;

/// Publishes to `LBGP_TOPIC_ARN`, or does nothing when it is not set.
/// Most runs have nothing to report, and a run that has reports it after
/// its writes: the SNS client is built on the first publish.
#[derive(Debug, Clone)]
pub struct Notifier {
    target: Option<(FirstUse<Client, Config>, String)>,
    region: Region,
}

impl Notifier {
    /// A notifier on `topic_arn` (None: notifications off).
    pub fn new(client: Client, topic_arn: Option<String>, region: Region) -> Self {
        Notifier {
            target: topic_arn.map(|arn| (FirstUse::ready(client), arn)),
            region,
        }
    }

    /// A notifier on `topic_arn` whose client is built from `config` on
    /// the first publish.
    pub fn on_first_use(config: Config, topic_arn: String, region: Region) -> Self {
        Notifier {
            target: Some((FirstUse::on_first_use(config, Client::from_conf), topic_arn)),
            region,
        }
    }

    /// True once the SNS client exists (false when off or nothing was
    /// published yet by a notifier built [`Notifier::on_first_use`]).
    pub fn client_built(&self) -> bool {
        self.target.as_ref().is_some_and(|(c, _)| c.is_built())
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
            .get()
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
