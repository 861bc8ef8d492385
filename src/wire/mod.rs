//! The peer wire protocol (BEP 3): the handshake and the length-prefixed messages, with the
//! fast extension (BEP 6), the extension protocol's handshake (BEP 10), and the extended
//! messages `ut_metadata` (BEP 9, [`metadata`]) and `ut_pex` (BEP 11, [`pex`]).
//!
//! Pure encoding and decoding over byte buffers; the connection logic that uses them lives in
//! `engine::peer`.

mod extension;
mod fast;
mod handshake;
mod message;
pub mod metadata;
pub mod pex;

pub use extension::{EXTENSION_HANDSHAKE_ID, ExtensionError, ExtensionHandshake};
pub use fast::{ALLOWED_FAST_COUNT, allowed_fast_set};
pub use handshake::{Capabilities, HANDSHAKE_LEN, Handshake};
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
