//! tgw-route-propagator (in progress).
