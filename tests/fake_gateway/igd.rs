//! A fake UPnP Internet Gateway Device on 127.0.0.1: it answers SSDP searches, serves its
//! device and service descriptions over HTTP, and records every SOAP action it is sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

const SERVICE: &str = "urn:schemas-upnp-org:service:WANIPConnection:1";

/// The external address the fake reports (a documentation address, never contacted).
pub const EXTERNAL_IP: &str = "203.0.113.7";

/// How the fake answers AddPortMapping.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    Accept,
    /// Refuse this many AddPortMapping requests with 718 ConflictInMappingEntry, then accept.
    RefuseFirstAdds(usize),
    /// Refuse every UDP AddPortMapping with 718 ConflictInMappingEntry.
    RefuseUdp,
    /// Refuse any lease but 0 with 725 OnlyPermanentLeasesSupported.
    PermanentOnly,
}

/// One SOAP action received, with the arguments the tests look at.
#[derive(Clone, Debug)]
pub struct Action {
    pub name: String,
    pub protocol: Option<String>,
    pub external_port: Option<u16>,
    pub internal_client: Option<String>,
    pub internal_port: Option<u16>,
    pub lease: Option<u32>,
    pub refused: bool,
    pub at: Instant,
}

struct State {
    behaviour: Behaviour,
    adds_refused: usize,
    actions: Vec<Action>,
}

pub struct FakeIgd {
    /// Where to send the SSDP search.
    pub ssdp: SocketAddr,
    state: Arc<Mutex<State>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeIgd {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

impl FakeIgd {
    pub async fn start(behaviour: Behaviour) -> FakeIgd {
        let ssdp_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let location = format!("http://{}/rootDesc.xml", http.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            behaviour,
            adds_refused: 0,
            actions: Vec::new(),
        }));
        let ssdp = ssdp_socket.local_addr().unwrap();
        let tasks = vec![
            tokio::spawn(answer_searches(ssdp_socket, location)),
            tokio::spawn(serve_http(http, state.clone())),
        ];
        FakeIgd { ssdp, state, tasks }
    }

    pub fn actions(&self) -> Vec<Action> {
        self.state.lock().unwrap().actions.clone()
    }

    /// Waits up to `limit` for the recorded actions to satisfy `done`, and returns them.
    pub async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&[Action]) -> bool,
    ) -> Vec<Action> {
        let start = Instant::now();
        loop {
            let actions = self.actions();
            if done(&actions) {
                return actions;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}; the gateway saw {actions:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn answer_searches(socket: UdpSocket, location: String) {
    let mut buf = [0; 2048];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        let request = String::from_utf8_lossy(&buf[..n]);
        if request.starts_with("M-SEARCH") {
            let answer = format!(
                "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nEXT:\r\n\
                 ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\
                 USN: uuid:fake-igd::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\
                 SERVER: Linux/6 UPnP/1.1 fake/1\r\nLOCATION: {location}\r\n\r\n"
            );
            let _ = socket.send_to(answer.as_bytes(), from).await;
        }
    }
}

async fn serve_http(listener: TcpListener, state: Arc<Mutex<State>>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve_one(stream, state.clone()));
    }
}

/// One request per connection, answered with `Connection: close`.
async fn serve_one(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut data = Vec::new();
    let mut buf = [0; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|line| {
                line.split_once(':')
                    .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            })
            .map(|(_, value)| value.trim().to_string())
    };
    let length: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
    while data.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let body = String::from_utf8_lossy(&data[head_end..head_end + length]).to_string();
    let mut request_line = head.split_whitespace();
    let (method, path) = (
        request_line.next().unwrap_or(""),
        request_line.next().unwrap_or(""),
    );
    let (status, reply) = match (method, path) {
        ("GET", "/rootDesc.xml") => ("200 OK", root_description()),
        ("GET", "/WANIPCn.xml") => ("200 OK", service_description()),
        ("POST", "/ctl/IPConn") => {
            let action = header("soapaction").unwrap_or_default();
            let action = action
                .trim_matches('"')
                .rsplit('#')
                .next()
                .unwrap_or("")
                .to_string();
            control(&action, &body, &state)
        }
        _ => ("404 Not Found", String::new()),
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Records the action and answers it as the behaviour says.
fn control(name: &str, body: &str, state: &Mutex<State>) -> (&'static str, String) {
    let mut state = state.lock().unwrap();
    let lease = argument(body, "NewLeaseDuration").map(|v| v.parse().unwrap());
    let fault = match (name, state.behaviour) {
        ("AddPortMapping", Behaviour::RefuseFirstAdds(n)) if state.adds_refused < n => {
            state.adds_refused += 1;
            Some((718, "ConflictInMappingEntry"))
        }
        ("AddPortMapping", Behaviour::RefuseUdp)
            if argument(body, "NewProtocol").as_deref() == Some("UDP") =>
        {
            Some((718, "ConflictInMappingEntry"))
        }
        ("AddPortMapping", Behaviour::PermanentOnly) if lease != Some(0) => {
            Some((725, "OnlyPermanentLeasesSupported"))
        }
        _ => None,
    };
    state.actions.push(Action {
        name: name.to_string(),
        protocol: argument(body, "NewProtocol"),
        external_port: argument(body, "NewExternalPort").map(|v| v.parse().unwrap()),
        internal_client: argument(body, "NewInternalClient"),
        internal_port: argument(body, "NewInternalPort").map(|v| v.parse().unwrap()),
        lease,
        refused: fault.is_some(),
        at: Instant::now(),
    });
    match (fault, name) {
        (Some((code, text)), _) => ("500 Internal Server Error", soap_fault(code, text)),
        (None, "GetExternalIPAddress") => (
            "200 OK",
            soap_answer(
                name,
                &format!("<NewExternalIPAddress>{EXTERNAL_IP}</NewExternalIPAddress>"),
            ),
        ),
        (None, "AddPortMapping" | "DeletePortMapping") => ("200 OK", soap_answer(name, "")),
        (None, _) => (
            "500 Internal Server Error",
            soap_fault(401, "Invalid Action"),
        ),
    }
}

/// The text of `<name>…</name>` in a SOAP body.
fn argument(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(body[start..end].to_string())
}

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>{body}</s:Body></s:Envelope>"
    )
}

fn soap_answer(action: &str, inner: &str) -> String {
    envelope(&format!(
        "<u:{action}Response xmlns:u=\"{SERVICE}\">{inner}</u:{action}Response>"
    ))
}

fn soap_fault(code: u16, text: &str) -> String {
    envelope(&format!(
        "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>\
         <UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>{code}</errorCode>\
         <errorDescription>{text}</errorDescription></UPnPError></detail></s:Fault>"
    ))
}

/// An IGD as routers describe it: the WAN IP connection service two devices down.
fn root_description() -> String {
    format!(
        "<?xml version=\"1.0\"?>\r\n<root xmlns=\"urn:schemas-upnp-org:device-1-0\">\
         <specVersion><major>1</major><minor>0</minor></specVersion><device>\
         <deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>\
         <friendlyName>Fake gateway</friendlyName><UDN>uuid:fake-igd</UDN>\
         <serviceList><service>\
         <serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>\
         <serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId>\
         <controlURL>/ctl/L3F</controlURL><eventSubURL>/evt/L3F</eventSubURL><SCPDURL>/L3F.xml</SCPDURL>\
         </service></serviceList><deviceList><device>\
         <deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><deviceList><device>\
         <deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>\
         <serviceList><service><serviceType>{SERVICE}</serviceType>\
         <serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>\
         <controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL>\
         <SCPDURL>/WANIPCn.xml</SCPDURL></service></serviceList>\
         </device></deviceList></device></deviceList></device></root>"
    )
}

/// The three actions with their arguments, as igd-next reads them to build its requests.
fn service_description() -> String {
    let action = |name: &str, arguments: &[(&str, &str)]| {
        let arguments: String = arguments
            .iter()
            .map(|(arg, direction)| {
                format!(
                    "<argument><name>{arg}</name><direction>{direction}</direction>\
                     <relatedStateVariable>{arg}</relatedStateVariable></argument>"
                )
            })
            .collect();
        format!("<action><name>{name}</name><argumentList>{arguments}</argumentList></action>")
    };
    let add = action(
        "AddPortMapping",
        &[
            ("NewRemoteHost", "in"),
            ("NewExternalPort", "in"),
            ("NewProtocol", "in"),
            ("NewInternalPort", "in"),
            ("NewInternalClient", "in"),
            ("NewEnabled", "in"),
            ("NewPortMappingDescription", "in"),
            ("NewLeaseDuration", "in"),
        ],
    );
    let delete = action(
        "DeletePortMapping",
        &[
            ("NewRemoteHost", "in"),
            ("NewExternalPort", "in"),
            ("NewProtocol", "in"),
        ],
    );
    let external_ip = action("GetExternalIPAddress", &[("NewExternalIPAddress", "out")]);
    format!(
        "<?xml version=\"1.0\"?>\r\n<scpd xmlns=\"urn:schemas-upnp-org:service-1-0\">\
         <specVersion><major>1</major><minor>0</minor></specVersion>\
         <actionList>{add}{delete}{external_ip}</actionList></scpd>"
    )
}
