//! What the port mapper reports to the status bar: searching, mapped (and how), or why not.

use std::fmt;
use std::net::IpAddr;

/// The protocol a gateway accepted the mapping through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappingProtocol {
    /// UPnP Internet Gateway Device.
    Upnp,
    /// NAT Port Mapping Protocol (RFC 6886).
    NatPmp,
}

impl fmt::Display for MappingProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Upnp => "UPnP",
            Self::NatPmp => "NAT-PMP",
        })
    }
}

/// The state of the port mapping, as published by [`super::PortMapper::status`].
#[derive(Clone, Debug, PartialEq)]
pub enum MappingStatus {
    /// The first search for a gateway is under way.
    Searching,
    /// The port is mapped for both TCP and UDP.
    Mapped {
        via: MappingProtocol,
        external_port: u16,
        external_ip: Option<IpAddr>,
    },
    /// No mapping; another attempt follows after the retry delay.
    Failed { reason: String },
}

impl fmt::Display for MappingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Searching => f.write_str("looking for a gateway…"),
            Self::Mapped {
                via, external_port, ..
            } => write!(f, "port {external_port} open via {via}"),
            Self::Failed { reason } => write!(f, "not mapped: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_well_in_the_status_bar() {
        assert_eq!(
            MappingStatus::Searching.to_string(),
            "looking for a gateway…"
        );
        let mapped = |via| MappingStatus::Mapped {
            via,
            external_port: 6881,
            external_ip: None,
        };
        assert_eq!(
            mapped(MappingProtocol::Upnp).to_string(),
            "port 6881 open via UPnP"
        );
        assert_eq!(
            mapped(MappingProtocol::NatPmp).to_string(),
            "port 6881 open via NAT-PMP"
        );
        let failed = MappingStatus::Failed {
            reason: "no gateway found".into(),
        };
        assert_eq!(failed.to_string(), "not mapped: no gateway found");
    }
}
