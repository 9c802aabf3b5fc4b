//! failover-watcher (in progress).
