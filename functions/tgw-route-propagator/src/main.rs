//! tgw-route-propagator (in progress).
fn main() {}
