//! What the SDK does on our behalf, counted: throttled attempts, and the
//! EC2 requests sent. The SDK retries a throttled call itself (adaptive
//! mode slows its own rate down); this interceptor sees every attempt, counts
//! the EC2 requests and the throttled answers for the response, the logs and
//! the metrics, and tells the region's write bucket, so lbgp's own pacing
//! backs off too while the shared budget is exhausted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_ec2::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;

use crate::throttle::TokenBucket;

/// Error codes AWS answers a throttled call with (EC2, DynamoDB, SNS): the
/// SDK's own list of throttling errors for these services.
const THROTTLING_CODES: [&str; 5] = [
    "RequestLimitExceeded",
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "<Code>Throttling</Code>",
    "TooManyRequestsException",
];

/// Throttled attempts seen by the clients of one process, and the EC2
/// requests they sent.
#[derive(Debug, Clone, Default)]
pub struct Throttles {
    throttled: Arc<AtomicU64>,
    ec2_requests: Arc<AtomicU64>,
}

impl Throttles {
    /// Throttled attempts so far.
    pub fn count(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// EC2 requests sent so far, each retry counted: what EC2's request
    /// rate limits count (the `Ec2Calls` metric).
    pub fn ec2_requests(&self) -> u64 {
        self.ec2_requests.load(Ordering::Relaxed)
    }
}

/// Counts throttled attempts of one client (and slows `bucket` on each).
#[derive(Debug, Clone)]
pub struct ThrottleCounter {
    throttles: Throttles,
    bucket: Option<TokenBucket>,
}

impl ThrottleCounter {
    /// A counter adding to `throttles`, backing `bucket` off if given.
    /// `bucket` is the region's EC2 write bucket: only EC2 clients have one,
    /// and their requests are counted too.
    pub fn new(throttles: Throttles, bucket: Option<TokenBucket>) -> Self {
        ThrottleCounter { throttles, bucket }
    }
}

/// True when an answer is a throttling error: the status AWS uses for it
/// (EC2 503, the JSON protocols 400, SNS 400/429) and one of the codes. The
/// code is read from the error body because an interceptor sees the
/// operation's error only type-erased; this only counts, it decides nothing
/// the SDK's retry classifier does not already decide.
fn is_throttled(status: u16, body: Option<&[u8]>) -> bool {
    if !matches!(status, 400 | 429 | 503) {
        return false;
    }
    let Some(body) = body.and_then(|b| std::str::from_utf8(b).ok()) else {
        return false;
    };
    THROTTLING_CODES.iter().any(|code| body.contains(code))
}

impl Intercept for ThrottleCounter {
    fn name(&self) -> &'static str {
        "lbgp-throttle-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.bucket.is_some() {
            self.throttles.ec2_requests.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        if is_throttled(response.status().as_u16(), response.body().bytes()) {
            self.throttles.throttled.fetch_add(1, Ordering::Relaxed);
            if let Some(bucket) = &self.bucket {
                bucket.throttled();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_answers_are_told_from_other_errors() {
        let ec2 = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors></Response>";
        assert!(is_throttled(503, Some(ec2)));
        let unavailable = b"<Response><Errors><Error><Code>Unavailable</Code></Error></Errors></Response>";
        assert!(!is_throttled(503, Some(unavailable)));
        let ddb =
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#;
        assert!(is_throttled(400, Some(ddb)));
        assert!(!is_throttled(200, Some(ddb)));
        let sns = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code></Error></ErrorResponse>";
        assert!(is_throttled(400, Some(sns)));
        assert!(!is_throttled(400, None));
    }
}
