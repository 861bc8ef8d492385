//! KRPC (BEP 5): the bencoded queries, responses and errors DHT nodes exchange over UDP.
//! Decoding goes through the strict bencode decoder and is bounded: a response carries at
//! most [`MAX_NODES`] nodes and [`MAX_VALUES`] peers, more are ignored; a field of the wrong
//! type or length is an error that names it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::bencode::{self, Value};

use super::id::NodeId;

/// Nodes read from one response (`nodes` and `nodes6` each); a good node sends 8.
pub const MAX_NODES: usize = 32;
/// Peers read from one `get_peers` response.
pub const MAX_VALUES: usize = 200;
/// Longest transaction id and token accepted.
const MAX_TRANSACTION: usize = 16;
const MAX_TOKEN: usize = 64;

/// A node and where it listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    pub id: NodeId,
    pub addr: SocketAddr,
}

/// What a query asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Ping,
    FindNode {
        target: NodeId,
    },
    GetPeers {
        info_hash: [u8; 20],
    },
    AnnouncePeer {
        info_hash: [u8; 20],
        port: u16,
        /// Use the port the datagram came from instead (BEP 5 `implied_port`).
        implied_port: bool,
        token: Vec<u8>,
    },
}

impl Query {
    pub fn method(&self) -> &'static str {
        match self {
            Query::Ping => "ping",
            Query::FindNode { .. } => "find_node",
            Query::GetPeers { .. } => "get_peers",
            Query::AnnouncePeer { .. } => "announce_peer",
        }
    }
}

/// The body of a response; each query's answer uses the fields it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub id: NodeId,
    pub nodes: Vec<NodeInfo>,
    pub values: Vec<SocketAddr>,
    pub token: Option<Vec<u8>>,
}

/// One KRPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Query {
        id: NodeId,
        query: Query,
        /// BEP 43: the sender is read-only (does not answer queries).
        read_only: bool,
    },
    Response(Response),
    Error {
        code: i64,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub transaction: Vec<u8>,
    pub body: Body,
}

/// A datagram that is not a KRPC message we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KrpcError {
    #[error("KRPC: {0}")]
    Bencode(#[from] bencode::DecodeError),
    #[error("KRPC: not a dictionary")]
    NotADict,
    #[error("KRPC: `{0}` is missing or of the wrong type")]
    Field(&'static str),
    #[error("KRPC: unknown message type")]
    UnknownType,
    #[error("KRPC: unknown query {0:?}")]
    UnknownQuery(String),
    #[error("KRPC: `{0}` is not a whole number of compact entries")]
    BadCompact(&'static str),
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        let mut entries = vec![("t", Value::Bytes(self.transaction.clone()))];
        match &self.body {
            Body::Query {
                id,
                query,
                read_only,
            } => {
                entries.push(("y", bytes(b"q")));
                entries.push(("q", bytes(query.method().as_bytes())));
                let mut args = vec![("id", bytes(&id.0))];
                match query {
                    Query::Ping => {}
                    Query::FindNode { target } => args.push(("target", bytes(&target.0))),
                    Query::GetPeers { info_hash } => args.push(("info_hash", bytes(info_hash))),
                    Query::AnnouncePeer {
                        info_hash,
                        port,
                        implied_port,
                        token,
                    } => {
                        args.push(("info_hash", bytes(info_hash)));
                        args.push(("port", Value::Int((*port).into())));
                        args.push(("implied_port", Value::Int((*implied_port).into())));
                        args.push(("token", bytes(token)));
                    }
                }
                entries.push(("a", Value::dict(args)));
                if *read_only {
                    entries.push(("ro", Value::Int(1)));
                }
            }
            Body::Response(r) => {
                entries.push(("y", bytes(b"r")));
                let mut fields = vec![("id", bytes(&r.id.0))];
                let (v4, v6): (Vec<&NodeInfo>, Vec<&NodeInfo>) =
                    r.nodes.iter().partition(|n| n.addr.is_ipv4());
                if !v4.is_empty() {
                    fields.push(("nodes", Value::Bytes(compact_nodes(&v4))));
                }
                if !v6.is_empty() {
                    fields.push(("nodes6", Value::Bytes(compact_nodes(&v6))));
                }
                if !r.values.is_empty() {
                    let values = r
                        .values
                        .iter()
                        .map(|a| Value::Bytes(compact_addr(a)))
                        .collect();
                    fields.push(("values", Value::List(values)));
                }
                if let Some(token) = &r.token {
                    fields.push(("token", bytes(token)));
                }
                entries.push(("r", Value::dict(fields)));
            }
            Body::Error { code, message } => {
                entries.push(("y", bytes(b"e")));
                entries.push((
                    "e",
                    Value::List(vec![Value::Int(*code), bytes(message.as_bytes())]),
                ));
            }
        }
        Value::dict(entries).encode()
    }

    pub fn decode(datagram: &[u8]) -> Result<Self, KrpcError> {
        let value = bencode::decode(datagram)?;
        if value.as_dict().is_none() {
            return Err(KrpcError::NotADict);
        }
        let transaction = value
            .get("t")
            .and_then(Value::as_bytes)
            .filter(|t| t.len() <= MAX_TRANSACTION)
            .ok_or(KrpcError::Field("t"))?
            .to_vec();
        let kind = value.get("y").and_then(Value::as_bytes);
        let body = match kind {
            Some(b"q") => decode_query(&value)?,
            Some(b"r") => Body::Response(decode_response(
                value.get("r").ok_or(KrpcError::Field("r"))?,
            )?),
            Some(b"e") => {
                let list = value
                    .get("e")
                    .and_then(Value::as_list)
                    .ok_or(KrpcError::Field("e"))?;
                let code = list.first().and_then(Value::as_int).unwrap_or(0);
                let message = list
                    .get(1)
                    .and_then(Value::as_bytes)
                    .map(|m| String::from_utf8_lossy(&m[..m.len().min(200)]).into_owned())
                    .unwrap_or_default();
                Body::Error { code, message }
            }
            _ => return Err(KrpcError::UnknownType),
        };
        Ok(Message { transaction, body })
    }
}

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.to_vec())
}

fn id_field(dict: &Value, key: &'static str) -> Result<[u8; 20], KrpcError> {
    dict.get(key)
        .and_then(Value::as_bytes)
        .and_then(|b| <[u8; 20]>::try_from(b).ok())
        .ok_or(KrpcError::Field(key))
}

fn decode_query(value: &Value) -> Result<Body, KrpcError> {
    let method = value
        .get("q")
        .and_then(Value::as_bytes)
        .ok_or(KrpcError::Field("q"))?;
    let args = value.get("a").ok_or(KrpcError::Field("a"))?;
    if args.as_dict().is_none() {
        return Err(KrpcError::Field("a"));
    }
    let id = NodeId(id_field(args, "id")?);
    let query = match method {
        b"ping" => Query::Ping,
        b"find_node" => Query::FindNode {
            target: NodeId(id_field(args, "target")?),
        },
        b"get_peers" => Query::GetPeers {
            info_hash: id_field(args, "info_hash")?,
        },
        b"announce_peer" => {
            let port = args
                .get("port")
                .and_then(Value::as_int)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0);
            let implied_port = args
                .get("implied_port")
                .and_then(Value::as_int)
                .is_some_and(|i| i != 0);
            if port == 0 && !implied_port {
                return Err(KrpcError::Field("port"));
            }
            Query::AnnouncePeer {
                info_hash: id_field(args, "info_hash")?,
                port,
                implied_port,
                token: args
                    .get("token")
                    .and_then(Value::as_bytes)
                    .filter(|t| t.len() <= MAX_TOKEN)
                    .ok_or(KrpcError::Field("token"))?
                    .to_vec(),
            }
        }
        other => {
            let name = String::from_utf8_lossy(&other[..other.len().min(32)]).into_owned();
            return Err(KrpcError::UnknownQuery(name));
        }
    };
    let read_only = value
        .get("ro")
        .and_then(Value::as_int)
        .is_some_and(|r| r == 1);
    Ok(Body::Query {
        id,
        query,
        read_only,
    })
}

fn decode_response(r: &Value) -> Result<Response, KrpcError> {
    if r.as_dict().is_none() {
        return Err(KrpcError::Field("r"));
    }
    let id = NodeId(id_field(r, "id")?);
    let mut nodes = Vec::new();
    for (key, len) in [("nodes", 26), ("nodes6", 38)] {
        if let Some(compact) = r.get(key) {
            let compact = compact.as_bytes().ok_or(KrpcError::Field(key))?;
            if !compact.len().is_multiple_of(len) {
                return Err(KrpcError::BadCompact(key));
            }
            nodes.extend(compact.chunks_exact(len).take(MAX_NODES).filter_map(|c| {
                let id = NodeId(c.get(..20)?.try_into().ok()?);
                let addr = parse_compact_addr(c.get(20..)?)?;
                Some(NodeInfo { id, addr })
            }));
        }
    }
    let values = match r.get("values") {
        None => Vec::new(),
        Some(list) => list
            .as_list()
            .ok_or(KrpcError::Field("values"))?
            .iter()
            .filter_map(Value::as_bytes)
            .filter_map(parse_compact_addr)
            .take(MAX_VALUES)
            .collect(),
    };
    let token = match r.get("token") {
        None => None,
        Some(t) => Some(
            t.as_bytes()
                .filter(|t| t.len() <= MAX_TOKEN)
                .ok_or(KrpcError::Field("token"))?
                .to_vec(),
        ),
    };
    Ok(Response {
        id,
        nodes,
        values,
        token,
    })
}

/// An address in compact form: 4 or 16 bytes of IP, then the port, big-endian.
pub fn compact_addr(addr: &SocketAddr) -> Vec<u8> {
    let mut out = match addr.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

/// A compact address (6 or 18 bytes); `None` for another length, port 0 or an unspecified IP.
pub fn parse_compact_addr(b: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = b.split_at_checked(b.len().checked_sub(2)?)?;
    let port = u16::from_be_bytes([*port.first()?, *port.get(1)?]);
    let ip: IpAddr = match ip.len() {
        4 => Ipv4Addr::from(<[u8; 4]>::try_from(ip).ok()?).into(),
        16 => Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?).into(),
        _ => return None,
    };
    (port != 0 && !ip.is_unspecified()).then(|| SocketAddr::new(ip, port))
}

fn compact_nodes(nodes: &[&NodeInfo]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * 26);
    for n in nodes {
        out.extend_from_slice(&n.id.0);
        out.extend_from_slice(&compact_addr(&n.addr));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NodeId {
        NodeId([n; 20])
    }

    #[test]
    fn every_message_round_trips() {
        let node = |n: u8, addr: &str| NodeInfo {
            id: id(n),
            addr: addr.parse().unwrap(),
        };
        let messages = [
            Body::Query {
                id: id(1),
                query: Query::Ping,
                read_only: false,
            },
            Body::Query {
                id: id(1),
                query: Query::FindNode { target: id(9) },
                read_only: true,
            },
            Body::Query {
                id: id(1),
                query: Query::GetPeers { info_hash: [7; 20] },
                read_only: false,
            },
            Body::Query {
                id: id(1),
                query: Query::AnnouncePeer {
                    info_hash: [7; 20],
                    port: 6881,
                    implied_port: true,
                    token: b"tok".to_vec(),
                },
                read_only: false,
            },
            Body::Response(Response {
                id: id(2),
                nodes: vec![node(3, "127.0.0.3:6881"), node(4, "[::1]:6882")],
                values: vec!["127.0.0.9:51413".parse().unwrap()],
                token: Some(b"secret".to_vec()),
            }),
            Body::Error {
                code: 203,
                message: "Protocol Error".into(),
            },
        ];
        for body in messages {
            let m = Message {
                transaction: b"aa".to_vec(),
                body,
            };
            assert_eq!(Message::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn reads_the_bep_5_examples() {
        let ping =
            Message::decode(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe").unwrap();
        assert_eq!(ping.transaction, b"aa");
        assert!(matches!(
            ping.body,
            Body::Query {
                query: Query::Ping,
                ..
            }
        ));
        let error =
            Message::decode(b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee").unwrap();
        assert_eq!(
            error.body,
            Body::Error {
                code: 201,
                message: "A Generic Error Ocurred".into()
            }
        );
    }

    #[test]
    fn hostile_messages_are_errors_or_bounded() {
        assert_eq!(Message::decode(b"i1e"), Err(KrpcError::NotADict));
        assert_eq!(
            Message::decode(b"d1:t2:aa1:y1:qe"),
            Err(KrpcError::Field("q"))
        );
        assert_eq!(
            Message::decode(b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe"),
            Err(KrpcError::Field("id")),
            "an id of the wrong length"
        );
        assert!(matches!(
            Message::decode(b"d1:ad2:id20:abcdefghij0123456789e1:q4:evil1:t2:aa1:y1:qe"),
            Err(KrpcError::UnknownQuery(q)) if q == "evil"
        ));
        assert_eq!(
            Message::decode(b"d1:rd2:id20:abcdefghij01234567895:nodes5:abcdee1:t2:aa1:y1:re"),
            Err(KrpcError::BadCompact("nodes"))
        );
        // 1,000 nodes in one response: 32 are read.
        let many: Vec<NodeInfo> = (0..1000u32)
            .map(|i| NodeInfo {
                id: NodeId([(i % 251) as u8; 20]),
                addr: SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1)),
            })
            .collect();
        let response = Message {
            transaction: b"x".to_vec(),
            body: Body::Response(Response {
                id: id(2),
                nodes: many,
                ..Default::default()
            }),
        };
        let Body::Response(r) = Message::decode(&response.encode()).unwrap().body else {
            panic!("not a response");
        };
        assert_eq!(r.nodes.len(), MAX_NODES);
        // announce_peer with neither a port nor implied_port.
        assert_eq!(
            Message::decode(
                b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe"
            ),
            Err(KrpcError::Field("port"))
        );
    }
}
