//! The port mapper against fake gateways on 127.0.0.1: UPnP IGD and NAT-PMP mappings are
//! requested, renewed and deleted; refusals and silence show in the status and are retried.

mod fake_gateway;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use fake_gateway::igd::{self as fake_igd, Action, FakeIgd};
use fake_gateway::natpmp::{self as fake_natpmp, FakeNatPmp, MapRequest};
use rivulet::portmap::{MappingProtocol, MappingStatus, PortMapper, PortMapperConfig, UpnpTarget};
use tokio::net::UdpSocket;
use tokio::sync::watch;

const PORT: u16 = 6881;

/// A loopback socket that never answers: a place with no gateway.
async fn silent() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

fn config(ssdp: SocketAddr, natpmp: SocketAddr, discovery_timeout: Duration) -> PortMapperConfig {
    let mut config = PortMapperConfig::new(PORT);
    config.lease = Duration::from_secs(4);
    config.retry_after = Duration::from_secs(1);
    config.discovery_timeout = discovery_timeout;
    config.upnp = UpnpTarget::Unicast(ssdp);
    config.natpmp_gateway = Some(natpmp);
    config
}

async fn wait_status(
    status: &mut watch::Receiver<MappingStatus>,
    what: &str,
    limit: Duration,
    done: impl Fn(&MappingStatus) -> bool,
) -> MappingStatus {
    let seen = tokio::time::timeout(limit, status.wait_for(done))
        .await
        .map(|s| s.map(|s| s.clone()));
    match seen {
        Ok(Ok(status)) => status,
        Ok(Err(_)) => panic!("the status closed while waiting for {what}"),
        Err(_) => panic!(
            "timed out waiting for {what}; the status is {:?}",
            *status.borrow()
        ),
    }
}

/// A mapper whose only gateway is the UPnP one at `ssdp` (NAT-PMP goes unanswered); keep the
/// silent socket alive with it.
async fn upnp_mapper(ssdp: SocketAddr, discovery: Duration) -> (PortMapper, UdpSocket) {
    let no_natpmp = silent().await;
    let config = config(ssdp, no_natpmp.local_addr().unwrap(), discovery);
    (PortMapper::spawn(config), no_natpmp)
}

/// A mapper whose only gateway is the NAT-PMP one at `gateway` (UPnP goes unanswered).
async fn natpmp_mapper(gateway: SocketAddr, discovery: Duration) -> (PortMapper, UdpSocket) {
    let no_upnp = silent().await;
    let config = config(no_upnp.local_addr().unwrap(), gateway, discovery);
    (PortMapper::spawn(config), no_upnp)
}

/// The status once the port is mapped.
async fn wait_mapped(status: &mut watch::Receiver<MappingStatus>) -> MappingStatus {
    wait_status(status, "the mapping", Duration::from_secs(5), is_mapped).await
}

/// The status bar's text once the mapping has failed.
async fn refusal(status: &mut watch::Receiver<MappingStatus>) -> String {
    wait_status(status, "the refusal", Duration::from_secs(5), is_failed)
        .await
        .to_string()
}

fn is_mapped(status: &MappingStatus) -> bool {
    matches!(status, MappingStatus::Mapped { .. })
}

fn is_failed(status: &MappingStatus) -> bool {
    matches!(status, MappingStatus::Failed { .. })
}

/// Stops the mapper, which must be done within 2.5 s, and checks that the status closes.
async fn stop(mapper: PortMapper) {
    let status = mapper.status();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), mapper.stop())
        .await
        .expect("stop returns");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "stopping took {:?}",
        started.elapsed()
    );
    assert!(
        status.has_changed().is_err(),
        "the status closes when the mapper stops"
    );
}

fn upnp_calls(actions: &[Action], name: &str, protocol: &str) -> Vec<Action> {
    let protocol = Some(protocol);
    actions
        .iter()
        .filter(|a| a.name == name && a.protocol.as_deref() == protocol)
        .cloned()
        .collect()
}

fn adds(actions: &[Action], protocol: &str) -> Vec<Action> {
    upnp_calls(actions, "AddPortMapping", protocol)
}

/// NAT-PMP mapping requests for TCP (opcode 2) or UDP (opcode 1): renewals or deletions.
fn natpmp_maps(requests: &[MapRequest], opcode: u8, deleting: bool) -> Vec<MapRequest> {
    requests
        .iter()
        .filter(|r| r.opcode == opcode && (r.lifetime == 0) == deleting)
        .cloned()
        .collect()
}

#[tokio::test]
async fn upnp_maps_tcp_and_udp_renews_at_half_the_lease_and_deletes_on_stop() {
    let igd = FakeIgd::start(fake_igd::Behaviour::Accept).await;
    let (mapper, _no_natpmp) = upnp_mapper(igd.ssdp, Duration::from_secs(1)).await;
    let mut status = mapper.status();
    assert_eq!(*status.borrow(), MappingStatus::Searching);

    let mapped = wait_mapped(&mut status).await;
    let external_ip: IpAddr = fake_igd::EXTERNAL_IP.parse().unwrap();
    let expected = MappingStatus::Mapped {
        via: MappingProtocol::Upnp,
        external_port: PORT,
        external_ip: Some(external_ip),
    };
    assert_eq!(mapped, expected);
    assert_eq!(mapped.to_string(), "port 6881 open via UPnP");
    let actions = igd.actions();
    for protocol in ["TCP", "UDP"] {
        let added = adds(&actions, protocol);
        assert_eq!(
            added.len(),
            1,
            "one {protocol} AddPortMapping: {actions:#?}"
        );
        let add = &added[0];
        assert_eq!(add.external_port, Some(PORT));
        assert_eq!(add.internal_port, Some(PORT));
        assert_eq!(add.internal_client.as_deref(), Some("127.0.0.1"));
        assert_eq!(add.lease, Some(4));
    }

    let actions = igd
        .wait_for("the renewal", Duration::from_secs(5), |a| {
            adds(a, "TCP").len() >= 2 && adds(a, "UDP").len() >= 2
        })
        .await;
    let tcp = adds(&actions, "TCP");
    let gap = tcp[1].at - tcp[0].at;
    assert!(
        gap >= Duration::from_millis(1800) && gap < Duration::from_millis(3500),
        "renewed after {gap:?}, not at half the 4 s lease"
    );
    assert!(tcp[1].lease == Some(4) && tcp[1].external_port == Some(PORT));
    assert!(
        upnp_calls(&actions, "DeletePortMapping", "TCP").is_empty(),
        "nothing deleted before the stop"
    );

    stop(mapper).await;
    let actions = igd.actions();
    for protocol in ["TCP", "UDP"] {
        let deleted = upnp_calls(&actions, "DeletePortMapping", protocol);
        assert_eq!(
            deleted.len(),
            1,
            "one {protocol} DeletePortMapping on stop: {actions:#?}"
        );
        assert_eq!(deleted[0].external_port, Some(PORT));
    }
}

#[tokio::test]
async fn a_upnp_refusal_shows_in_the_status_and_is_retried() {
    let igd = FakeIgd::start(fake_igd::Behaviour::RefuseFirstAdds(1)).await;
    let (mapper, _no_natpmp) = upnp_mapper(igd.ssdp, Duration::from_millis(500)).await;
    let mut status = mapper.status();

    let failed = wait_status(
        &mut status,
        "the refusal",
        Duration::from_secs(5),
        is_failed,
    )
    .await;
    let reason = "the gateway refused: the port is mapped to another device (718)";
    assert_eq!(
        failed,
        MappingStatus::Failed {
            reason: reason.into()
        }
    );
    assert_eq!(failed.to_string(), format!("not mapped: {reason}"));

    let mapped = wait_status(&mut status, "the retry", Duration::from_secs(5), is_mapped).await;
    assert!(matches!(
        mapped,
        MappingStatus::Mapped {
            via: MappingProtocol::Upnp,
            external_port: PORT,
            ..
        }
    ));
    let actions = igd.actions();
    let tcp = adds(&actions, "TCP");
    assert_eq!(tcp.len(), 2, "one refused try, one retry: {actions:#?}");
    assert!(tcp[0].refused && !tcp[1].refused);
    let gap = tcp[1].at - tcp[0].at;
    assert!(
        gap >= Duration::from_secs(1),
        "retried after {gap:?}, before the 1 s retry delay"
    );
    assert_eq!(
        adds(&actions, "UDP").len(),
        1,
        "UDP is asked for only after TCP is mapped"
    );
    stop(mapper).await;
}

#[tokio::test]
async fn a_upnp_gateway_refusing_udp_is_left_no_tcp_mapping() {
    let igd = FakeIgd::start(fake_igd::Behaviour::RefuseUdp).await;
    let (mapper, _no_natpmp) = upnp_mapper(igd.ssdp, Duration::from_millis(500)).await;
    let mut status = mapper.status();

    assert_eq!(
        refusal(&mut status).await,
        "not mapped: the gateway refused: the port is mapped to another device (718)"
    );
    let actions = igd.actions();
    let names: Vec<_> = actions
        .iter()
        .map(|a| (a.name.as_str(), a.protocol.as_deref()))
        .collect();
    let add_tcp = ("AddPortMapping", Some("TCP"));
    let add_udp = ("AddPortMapping", Some("UDP"));
    let delete_tcp = ("DeletePortMapping", Some("TCP"));
    assert_eq!(
        names,
        [add_tcp, add_udp, delete_tcp],
        "the TCP mapping is undone"
    );
    stop(mapper).await;
}

#[tokio::test]
async fn a_natpmp_gateway_refusing_udp_is_left_no_tcp_mapping() {
    let gateway = FakeNatPmp::start(fake_natpmp::Behaviour::RefuseUdp(4)).await;
    let (mapper, _no_upnp) = natpmp_mapper(gateway.addr, Duration::from_millis(500)).await;
    let mut status = mapper.status();

    assert_eq!(
        refusal(&mut status).await,
        "not mapped: the gateway refused: nat-pmp server out of resources"
    );
    let requests = gateway.requests();
    let asked: Vec<_> = requests.iter().map(|r| (r.opcode, r.lifetime)).collect();
    assert_eq!(asked, [(2, 4), (1, 4), (2, 0)], "the TCP mapping is undone");
    stop(mapper).await;
}

#[tokio::test]
async fn a_upnp_gateway_that_takes_only_permanent_mappings_gets_them() {
    let igd = FakeIgd::start(fake_igd::Behaviour::PermanentOnly).await;
    let (mapper, _no_natpmp) = upnp_mapper(igd.ssdp, Duration::from_secs(1)).await;
    let mut status = mapper.status();

    wait_mapped(&mut status).await;
    let actions = igd.actions();
    let leases = |protocol| {
        adds(&actions, protocol)
            .iter()
            .map(|a| (a.lease, a.refused))
            .collect::<Vec<_>>()
    };
    assert_eq!(leases("TCP"), [(Some(4), true), (Some(0), false)]);
    assert_eq!(leases("UDP"), [(Some(0), false)]);
    stop(mapper).await;
    assert_eq!(
        upnp_calls(&igd.actions(), "DeletePortMapping", "UDP").len(),
        1,
        "a permanent mapping is deleted too"
    );
}

#[tokio::test]
async fn natpmp_maps_when_no_upnp_answers_renews_at_half_the_granted_lifetime_and_deletes_on_stop()
{
    let gateway = FakeNatPmp::start(fake_natpmp::Behaviour::Grant { max_lease: 4 }).await;
    let no_upnp = silent().await;
    let mut config = config(
        no_upnp.local_addr().unwrap(),
        gateway.addr,
        Duration::from_millis(500),
    );
    config.lease = Duration::from_secs(3600);
    let mapper = PortMapper::spawn(config);
    let mut status = mapper.status();

    let mapped = wait_mapped(&mut status).await;
    let external_port = PORT + fake_natpmp::PORT_SHIFT;
    let external_ip = Some(IpAddr::from(fake_natpmp::EXTERNAL_IP));
    assert_eq!(
        mapped,
        MappingStatus::Mapped {
            via: MappingProtocol::NatPmp,
            external_port,
            external_ip
        }
    );
    assert_eq!(mapped.to_string(), "port 16881 open via NAT-PMP");
    let requests = gateway.requests();
    let (tcp, udp) = (
        natpmp_maps(&requests, 2, false),
        natpmp_maps(&requests, 1, false),
    );
    assert_eq!((tcp.len(), udp.len()), (1, 1), "{requests:#?}");
    assert_eq!(
        (tcp[0].internal_port, tcp[0].suggested_port, tcp[0].lifetime),
        (PORT, PORT, 3600)
    );
    assert_eq!(
        (udp[0].internal_port, udp[0].suggested_port, udp[0].lifetime),
        (PORT, external_port, 3600)
    );

    let requests = gateway
        .wait_for("the renewal", Duration::from_secs(5), |r| {
            natpmp_maps(r, 2, false).len() >= 2 && natpmp_maps(r, 1, false).len() >= 2
        })
        .await;
    let tcp = natpmp_maps(&requests, 2, false);
    let gap = tcp[1].at - tcp[0].at;
    assert!(
        gap >= Duration::from_millis(1800) && gap < Duration::from_millis(3500),
        "renewed after {gap:?}, not at half the granted 4 s"
    );
    assert_eq!(
        (tcp[1].suggested_port, tcp[1].lifetime),
        (external_port, 3600),
        "a renewal asks for the port it holds"
    );

    stop(mapper).await;
    let requests = gateway.requests();
    for opcode in [2, 1] {
        let deleted = natpmp_maps(&requests, opcode, true);
        assert_eq!(
            deleted.len(),
            1,
            "one deletion for opcode {opcode}: {requests:#?}"
        );
        assert_eq!(
            (deleted[0].internal_port, deleted[0].suggested_port),
            (PORT, 0)
        );
    }
}

#[tokio::test]
async fn a_natpmp_refusal_shows_in_the_status_and_is_retried() {
    let gateway = FakeNatPmp::start(fake_natpmp::Behaviour::Refuse(2)).await;
    let (mapper, _no_upnp) = natpmp_mapper(gateway.addr, Duration::from_millis(500)).await;
    let mut status = mapper.status();

    assert_eq!(
        refusal(&mut status).await,
        "not mapped: the gateway refused: not authorized"
    );
    let requests = gateway
        .wait_for("the retry", Duration::from_secs(5), |r| {
            natpmp_maps(r, 2, false).len() >= 2
        })
        .await;
    let tcp = natpmp_maps(&requests, 2, false);
    assert!(
        tcp[1].at - tcp[0].at >= Duration::from_secs(1),
        "retried before the 1 s retry delay"
    );
    assert!(
        natpmp_maps(&requests, 1, false).is_empty(),
        "UDP is asked for only after TCP is mapped"
    );
    stop(mapper).await;
}

#[tokio::test]
async fn with_no_gateway_at_all_it_says_so_within_the_discovery_timeouts() {
    let (no_upnp, no_natpmp) = (silent().await, silent().await);
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let mapper = PortMapper::spawn(config(
        no_upnp.local_addr().unwrap(),
        no_natpmp.local_addr().unwrap(),
        timeout,
    ));
    let mut status = mapper.status();
    assert_eq!(status.borrow().to_string(), "looking for a gateway…");

    let failed = wait_status(
        &mut status,
        "the failure",
        Duration::from_secs(3),
        is_failed,
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(
        failed,
        MappingStatus::Failed {
            reason: "no gateway found".into()
        }
    );
    assert_eq!(failed.to_string(), "not mapped: no gateway found");
    assert!(
        elapsed >= 2 * timeout && elapsed < Duration::from_millis(1500),
        "failed after {elapsed:?}"
    );

    let mut buf = [0; 1024];
    let (n, _) = no_upnp
        .try_recv_from(&mut buf)
        .expect("an SSDP search was sent");
    assert!(buf[..n].starts_with(b"M-SEARCH * HTTP/1.1\r\n"));
    let (n, _) = no_natpmp
        .try_recv_from(&mut buf)
        .expect("a NAT-PMP request was sent");
    assert_eq!(
        &buf[..n],
        [0, 0],
        "the first NAT-PMP request asks for the external address"
    );
    stop(mapper).await;
}

#[tokio::test]
async fn port_zero_is_never_asked_for() {
    let igd = FakeIgd::start(fake_igd::Behaviour::Accept).await;
    let no_natpmp = silent().await;
    let mut config = config(
        igd.ssdp,
        no_natpmp.local_addr().unwrap(),
        Duration::from_millis(300),
    );
    config.port = 0;
    let mapper = PortMapper::spawn(config);
    let mut status = mapper.status();

    let failed = wait_status(
        &mut status,
        "the failure",
        Duration::from_secs(3),
        is_failed,
    )
    .await;
    assert_eq!(failed.to_string(), "not mapped: no port to map");
    assert!(igd.actions().is_empty());
    stop(mapper).await;
}

#[tokio::test]
async fn stopping_during_the_search_returns_at_once() {
    let (no_upnp, no_natpmp) = (silent().await, silent().await);
    let addrs = (
        no_upnp.local_addr().unwrap(),
        no_natpmp.local_addr().unwrap(),
    );
    let mapper = PortMapper::spawn(config(addrs.0, addrs.1, Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    stop(mapper).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "stopping took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn dropping_the_handle_aborts_the_task_and_leaves_the_mapping_to_its_lease() {
    let igd = FakeIgd::start(fake_igd::Behaviour::Accept).await;
    let (mapper, _no_natpmp) = upnp_mapper(igd.ssdp, Duration::from_secs(1)).await;
    let mut status = mapper.status();
    wait_mapped(&mut status).await;

    drop(mapper);
    let closed = tokio::time::timeout(Duration::from_secs(1), status.changed()).await;
    assert!(
        matches!(closed, Ok(Err(_))),
        "the task ends and the status closes: {closed:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let actions = igd.actions();
    assert!(
        upnp_calls(&actions, "DeletePortMapping", "TCP").is_empty(),
        "no removal after a drop: {actions:#?}"
    );
}

/// A session with port mapping on maps its listen port through the gateway, shows it in its
/// snapshot ("port N open via UPnP"), and deletes both mappings when it shuts down.
#[test]
fn a_session_maps_its_listen_port_and_removes_it_on_shutdown() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let igd = runtime.block_on(FakeIgd::start(fake_igd::Behaviour::Accept));
    let no_natpmp = runtime.block_on(silent());
    let state = tempfile::tempdir().unwrap();
    let mut session_config = rivulet::engine::SessionConfig::with_state_dir(state.path().into());
    session_config.restore_saved = false;
    session_config.bind = rivulet::net::Binding::Address(std::net::Ipv4Addr::LOCALHOST.into());
    session_config.listen_port = 0;
    session_config.port_mapping = true;
    session_config.port_mapper = config(
        igd.ssdp,
        no_natpmp.local_addr().unwrap(),
        Duration::from_secs(1),
    );
    let session = rivulet::engine::Session::start(session_config, None).unwrap();
    let port = session.listen_port();
    let start = Instant::now();
    let shown = loop {
        if let Some(status @ MappingStatus::Mapped { .. }) = &session.snapshot().port_mapping {
            break status.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no mapping shown: {:?}",
            session.snapshot().port_mapping
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(shown, format!("port {port} open via UPnP"));
    let added = igd.actions();
    for protocol in ["TCP", "UDP"] {
        let add = adds(&added, protocol);
        assert_eq!(add.len(), 1, "{protocol}: {add:?}");
        assert_eq!(add[0].external_port, Some(port));
    }
    session.shutdown();
    let actions = igd.actions();
    for protocol in ["TCP", "UDP"] {
        let deletes = upnp_calls(&actions, "DeletePortMapping", protocol);
        assert_eq!(
            deletes.len(),
            1,
            "{protocol} deleted at shutdown: {actions:?}"
        );
    }
}
