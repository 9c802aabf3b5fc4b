//! failover-watcher (in progress).
fn main() {}
