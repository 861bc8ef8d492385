//! A fake NAT-PMP gateway (RFC 6886) on 127.0.0.1: it answers the external address request
//! (opcode 0) and UDP and TCP mapping requests (opcodes 1 and 2), and records each request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// The external address the fake reports (a documentation address, never contacted).
pub const EXTERNAL_IP: [u8; 4] = [198, 51, 100, 9];

/// The fake maps every port to this distance above it, as a gateway may.
pub const PORT_SHIFT: u16 = 10_000;

/// How the fake answers mapping requests. Before each answer it sends a stray one, for
/// another internal port, which a client must not take for its own.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Grants the lease asked for, up to this many seconds.
    Grant { max_lease: u32 },
    /// Answers with this result code (2: not authorized, 3: network failure, …).
    Refuse(u16),
    /// Grants TCP, answers UDP with this result code.
    RefuseUdp(u16),
}

/// One mapping request (opcode 1: UDP, 2: TCP); a lifetime of 0 deletes.
#[derive(Clone, Debug)]
pub struct MapRequest {
    pub opcode: u8,
    pub internal_port: u16,
    pub suggested_port: u16,
    pub lifetime: u32,
    pub at: Instant,
}

pub struct FakeNatPmp {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<MapRequest>>>,
    task: JoinHandle<()>,
}

impl Drop for FakeNatPmp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeNatPmp {
    pub async fn start(behaviour: Behaviour) -> FakeNatPmp {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(serve(socket, behaviour, requests.clone()));
        FakeNatPmp {
            addr,
            requests,
            task,
        }
    }

    pub fn requests(&self) -> Vec<MapRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits up to `limit` for the recorded requests to satisfy `done`, and returns them.
    pub async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&[MapRequest]) -> bool,
    ) -> Vec<MapRequest> {
        let start = Instant::now();
        loop {
            let requests = self.requests();
            if done(&requests) {
                return requests;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}; the gateway saw {requests:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn serve(socket: UdpSocket, behaviour: Behaviour, requests: Arc<Mutex<Vec<MapRequest>>>) {
    let started = Instant::now();
    let mut buf = [0; 64];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        let epoch = u32::try_from(started.elapsed().as_secs())
            .unwrap()
            .to_be_bytes();
        let answer = match &buf[..n] {
            [0, 0] => [&[0, 128, 0, 0][..], &epoch, &EXTERNAL_IP].concat(),
            &[0, opcode @ (1 | 2), 0, 0, i0, i1, s0, s1, l0, l1, l2, l3] => {
                let internal_port = u16::from_be_bytes([i0, i1]);
                let suggested_port = u16::from_be_bytes([s0, s1]);
                let lifetime = u32::from_be_bytes([l0, l1, l2, l3]);
                let at = Instant::now();
                requests.lock().unwrap().push(MapRequest {
                    opcode,
                    internal_port,
                    suggested_port,
                    lifetime,
                    at,
                });
                let (result, external, granted) = match behaviour {
                    Behaviour::Refuse(code) => (code, 0, 0),
                    Behaviour::RefuseUdp(code) if opcode == 1 => (code, 0, 0),
                    _ if lifetime == 0 => (0, 0, 0),
                    Behaviour::Grant { max_lease } => {
                        (0, internal_port + PORT_SHIFT, lifetime.min(max_lease))
                    }
                    Behaviour::RefuseUdp(_) => (0, internal_port + PORT_SHIFT, lifetime),
                };
                let answer = |internal: u16, result: u16, external: u16, granted: u32| {
                    [
                        &[0, 128 + opcode][..],
                        &result.to_be_bytes(),
                        &epoch,
                        &internal.to_be_bytes(),
                        &external.to_be_bytes(),
                        &granted.to_be_bytes(),
                    ]
                    .concat()
                };
                let stray = answer(internal_port ^ 1, 0, 1, 1);
                let _ = socket.send_to(&stray, from).await;
                answer(internal_port, result, external, granted)
            }
            _ => continue,
        };
        let _ = socket.send_to(&answer, from).await;
    }
}
