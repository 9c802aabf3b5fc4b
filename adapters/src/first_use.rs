//! SDK clients built on their first use.
//!
//! Building an SDK client is a visible share of a cold start: each service
//! crate parses AWS's partition table (JSON and a regex per partition) the
//! first time one of its clients is built, about 0.4M instructions, then
//! the client's runtime plugins. A client that an invocation may never call
//! (CloudWatch for L-BGP, SNS when nothing is to be reported, SQS when no
//! run runs out of time) is therefore kept as its configuration and built
//! when first called; one that a time-critical path calls first (the
//! watcher's alarms) is built at start-up with [`FirstUse::warm`].

use std::sync::{Arc, OnceLock};

/// A client of type `C`, given ready or built from its configuration `F`
/// on first use (once, whichever thread asks first). Clones share it.
#[derive(Debug)]
pub struct FirstUse<C, F> {
    made: Arc<Made<C, F>>,
}

// Written out: a derive would ask `C` and `F` to be `Clone` too, and the
// clones share one `Arc`.
impl<C, F> Clone for FirstUse<C, F> {
    fn clone(&self) -> Self {
        FirstUse {
            made: Arc::clone(&self.made),
        }
    }
}

#[derive(Debug)]
enum Made<C, F> {
    Ready(C),
    OnFirstUse {
        config: F,
        build: fn(F) -> C,
        client: OnceLock<C>,
    },
}

impl<C, F: Clone> FirstUse<C, F> {
    /// A client already built.
    pub fn ready(client: C) -> Self {
        FirstUse {
            made: Arc::new(Made::Ready(client)),
        }
    }

    /// A client `build` makes from `config` when it is first asked for
    /// (`Client::from_conf`).
    pub fn on_first_use(config: F, build: fn(F) -> C) -> Self {
        FirstUse {
            made: Arc::new(Made::OnFirstUse {
                config,
                build,
                client: OnceLock::new(),
            }),
        }
    }

    /// True once the client exists (given ready, warmed or called).
    pub fn is_built(&self) -> bool {
        match &*self.made {
            Made::Ready(_) => true,
            Made::OnFirstUse { client, .. } => client.get().is_some(),
        }
    }

    /// Builds the client now if it is not yet built.
    pub fn warm(&self) {
        let _ = self.get();
    }

    /// The client, built now if this is its first use.
    pub fn get(&self) -> &C {
        match &*self.made {
            Made::Ready(client) => client,
            Made::OnFirstUse {
                config,
                build,
                client,
            } => client.get_or_init(|| build(config.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static BUILT: AtomicUsize = AtomicUsize::new(0);

    fn build(prefix: String) -> String {
        BUILT.fetch_add(1, Ordering::SeqCst);
        format!("{prefix}-client")
    }

    #[test]
    fn a_client_is_built_once_on_its_first_use_and_shared_by_clones() {
        let lazy = FirstUse::on_first_use("sns".to_owned(), build);
        let clone = lazy.clone();
        assert!(!lazy.is_built());
        assert_eq!(
            BUILT.load(Ordering::SeqCst),
            0,
            "nothing is built before first use"
        );
        assert_eq!(clone.get(), "sns-client");
        assert_eq!(lazy.get(), "sns-client");
        lazy.warm();
        assert!(lazy.is_built());
        assert_eq!(
            BUILT.load(Ordering::SeqCst),
            1,
            "one build for every clone and call"
        );
        let ready: FirstUse<String, String> = FirstUse::ready("given".to_owned());
        assert!(ready.is_built());
        assert_eq!(ready.get(), "given");
    }
}
