//! The peer wire protocol (BEP 3): the handshake and the length-prefixed messages.
//!
//! Pure encoding and decoding over byte buffers; the connection logic that uses them lives in
//! `engine::peer`.

mod handshake;
mod message;

pub use handshake::{HANDSHAKE_LEN, Handshake};
pub use message::{BLOCK_LEN, BlockRef, Message, decode_frame, max_frame_len};

/// A peer broke the wire protocol.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("not a BitTorrent handshake")]
    BadProtocol,
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLong { len: usize, max: usize },
    #[error("malformed {kind} message of {len} bytes")]
    Malformed { kind: &'static str, len: usize },
}
