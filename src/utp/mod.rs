//! uTP (BEP 29): BitTorrent's transport over UDP, with LEDBAT congestion control so that it
//! yields to other traffic.
//!
//! - [`packet`]: the wire format; [`conn`]: one connection's state machine (pure, time
//!   passed in); [`ledbat`] and [`rtt`]: its congestion window and retransmission timeout.
//! - [`socket`]: the UDP sockets of the listen port, shared with the DHT, and the task that
//!   sorts datagrams to connections; [`stream`]: a connection as `AsyncRead + AsyncWrite`.

pub mod conn;
pub mod ledbat;
pub mod packet;
pub mod rtt;
pub mod socket;
pub mod stream;

pub use socket::{DhtChannel, UtpSocket};
pub use stream::{UtpReadHalf, UtpStream, UtpWriteHalf};
