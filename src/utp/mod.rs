//! uTP (BEP 29): BitTorrent's transport over UDP, with LEDBAT congestion control so that it
//! yields to other traffic. [`packet`] is the wire format, [`conn`] one connection's state
//! machine (pure, time passed in), [`ledbat`] and [`rtt`] its congestion window and
//! retransmission timeout.

pub mod conn;
pub mod ledbat;
pub mod packet;
pub mod rtt;
