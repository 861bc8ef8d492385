//! Why a mapping attempt failed; its text becomes the status bar's reason.

/// A failed attempt to map, renew or find a gateway.
#[derive(Debug, thiserror::Error)]
pub(super) enum MapError {
    /// Port 0 is no port.
    #[error("no port to map")]
    NoPort,
    /// Nothing answered the search within the discovery timeout.
    #[error("no gateway found")]
    NoGateway,
    /// A gateway answered but would not map the port.
    #[error("the gateway refused: {0}")]
    Refused(String),
    /// The gateway's answer could not be used.
    #[error("the gateway answered badly: {0}")]
    BadAnswer(String),
    /// A local socket could not be opened.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
}

impl MapError {
    /// The more telling of two failures: anything a gateway said beats silence.
    pub(super) fn or(self, other: MapError) -> MapError {
        match self {
            MapError::NoGateway => other,
            found => found,
        }
    }
}
