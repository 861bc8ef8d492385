//! Fake home gateways on 127.0.0.1 for the port mapping tests: one speaking UPnP IGD, one
//! speaking NAT-PMP. Each records what it is asked.

pub mod igd;
pub mod natpmp;
