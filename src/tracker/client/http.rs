//! Announcing to and scraping an HTTP(S) tracker with reqwest.

use super::{
    ANNOUNCE_TIMEOUT, AnnounceRequest, AnnounceResponse, SwarmCounts, TrackerError,
    parse_announce_response, parse_scrape_response,
};
use crate::ids::InfoHash;
use crate::net::Reach;
use crate::sync::RwLockExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

/// Largest response body read from a tracker.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// A reusable HTTP tracker client (one connection pool for every torrent; its clones share
/// it, and a new binding replaces it for all of them).
#[derive(Clone)]
pub struct HttpTracker {
    bound: Arc<RwLock<Bound>>,
}

/// The client of the current binding, or why there is none.
struct Bound {
    client: reqwest::Client,
    /// The address requests leave from (`None`: any).
    source: Option<IpAddr>,
    down: Option<String>,
}

impl HttpTracker {
    pub fn new() -> Result<Self, TrackerError> {
        Ok(Self {
            bound: Arc::new(RwLock::new(Bound {
                client: client_from(None)?,
                source: None,
                down: None,
            })),
        })
    }

    /// Requests leave from the address `reach` gives from now on; none while it is down (or
    /// while no client for that address could be made: the reason is then the error).
    pub fn set_reach(&self, reach: &Reach) {
        let source = reach.http_source();
        let client = client_from(source);
        let mut bound = self.bound.write_locked();
        bound.source = source;
        bound.down = reach.down().map(str::to_string);
        match client {
            Ok(client) => bound.client = client,
            // Never the old client's address: nothing goes out until a client is made.
            Err(e) => bound.down = Some(format!("no tracker client for this address: {e}")),
        }
    }

    pub async fn announce(
        &self,
        url: &str,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(TrackerError::UnsupportedUrl(url.to_string()));
        }
        let body = self.get(&announce_url(url, req)).await?;
        parse_announce_response(&body)
    }

    /// Seeders, completed and leechers of each torrent, where the announce URL has a scrape
    /// counterpart (BEP 48: its last path segment starts with `announce`).
    pub async fn scrape(
        &self,
        url: &str,
        ids: &[InfoHash],
    ) -> Result<Vec<SwarmCounts>, TrackerError> {
        let base = scrape_url(url).ok_or_else(|| TrackerError::UnsupportedUrl(url.into()))?;
        let mut full = base.clone();
        for (i, id) in ids.iter().enumerate() {
            let sep = if i == 0 && !base.contains('?') {
                '?'
            } else {
                '&'
            };
            full.push(sep);
            full.push_str("info_hash=");
            full.push_str(&crate::percent::encode(&id.0));
        }
        let body = self.get(&full).await?;
        parse_scrape_response(&body, ids)
    }

    /// The body of a successful GET, bounded in size.
    async fn get(&self, full: &str) -> Result<Vec<u8>, TrackerError> {
        let request = {
            let bound = self.bound.read_locked();
            if let Some(reason) = &bound.down {
                return Err(TrackerError::Unreachable(reason.clone()));
            }
            // A literal address skips the resolver: one of the other family would leave
            // unbound, from any interface.
            if let (Some(source), Ok(url)) = (bound.source, reqwest::Url::parse(full)) {
                let literal = url
                    .host_str()
                    .and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok());
                if let Some(ip) = literal.filter(|ip| ip.is_ipv4() != source.is_ipv4()) {
                    return Err(TrackerError::Unreachable(format!(
                        "{ip} cannot be reached from the bound address {source}"
                    )));
                }
            }
            bound.client.get(full)
        };
        let mut response = request.send().await.map_err(describe)?;
        if !response.status().is_success() {
            return Err(TrackerError::HttpStatus(response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(TrackerError::TooLarge(MAX_BODY));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// A client whose connections leave from `source` (any address when `None`; otherwise host
/// names resolve to `source`'s family alone, as a connection to the other would leave
/// unbound).
fn client_from(source: Option<IpAddr>) -> Result<reqwest::Client, TrackerError> {
    let builder = match source {
        Some(ip) => {
            reqwest::Client::builder().dns_resolver(Arc::new(OneFamily { v4: ip.is_ipv4() }))
        }
        None => reqwest::Client::builder(),
    };
    builder
        .timeout(ANNOUNCE_TIMEOUT)
        .connect_timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("Rivulet/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .local_address(source)
        .build()
        .map_err(|e| TrackerError::Unreachable(e.to_string()))
}

/// The system's resolver, keeping the addresses of one family.
struct OneFamily {
    v4: bool,
}

impl reqwest::dns::Resolve for OneFamily {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (host, v4) = (name.as_str().to_string(), self.v4);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| a.is_ipv4() == v4)
                .collect();
            if addrs.is_empty() {
                let family = if v4 { "IPv4" } else { "IPv6" };
                return Err(format!("{host} has no {family} address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// `…/announce…` → `…/scrape…`; `None` when the tracker has no scrape URL.
pub(super) fn scrape_url(announce: &str) -> Option<String> {
    if !(announce.starts_with("http://") || announce.starts_with("https://")) {
        return None;
    }
    let slash = announce.rfind('/')?;
    let rest = announce.get(slash + 1..)?;
    rest.starts_with("announce")
        .then(|| format!("{}/scrape{}", &announce[..slash], &rest["announce".len()..]))
}

fn describe(e: reqwest::Error) -> TrackerError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "too many redirects"
    } else {
        "request failed"
    };
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    TrackerError::Unreachable(format!("{kind} ({detail})"))
}

/// The announce URL with every parameter; binary values are percent-encoded byte by byte.
pub(super) fn announce_url(base: &str, req: &AnnounceRequest) -> String {
    let mut url = String::with_capacity(base.len() + 256);
    url.push_str(base);
    url.push(if base.contains('?') { '&' } else { '?' });
    url.push_str("info_hash=");
    url.push_str(&crate::percent::encode(&req.info_hash.0));
    url.push_str("&peer_id=");
    url.push_str(&crate::percent::encode(&req.peer_id.0));
    url.push_str(&format!(
        "&port={}&uploaded={}&downloaded={}&left={}&compact=1&numwant={}&key={:08x}",
        req.port, req.uploaded, req.downloaded, req.left, req.numwant, req.key
    ));
    if let Some(event) = req.event.as_param() {
        url.push_str("&event=");
        url.push_str(event);
    }
    if let Some(id) = &req.tracker_id {
        url.push_str("&trackerid=");
        url.push_str(&crate::percent::encode(id.as_bytes()));
    }
    if let Some(ip) = req.ipv6 {
        url.push_str("&ipv6=");
        url.push_str(&crate::percent::encode(ip.to_string().as_bytes()));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::InfoHash;

    #[tokio::test]
    async fn bound_requests_never_leave_unbound_or_while_down() {
        let client = HttpTracker::new().unwrap();
        let v4_only = Reach::Bound {
            v4: Some(std::net::Ipv4Addr::LOCALHOST),
            v6: None,
        };
        client.set_reach(&v4_only);
        let request = crate::tracker::sample_request();
        let error = client.announce("http://[::1]:9/announce", &request).await;
        assert!(
            matches!(&error, Err(TrackerError::Unreachable(e)) if e.contains("cannot be reached from the bound address 127.0.0.1")),
            "{error:?}"
        );
        client.set_reach(&Reach::Down("network interface wg0 is down".into()));
        let error = client
            .announce("http://127.0.0.1:9/announce", &request)
            .await;
        assert_eq!(
            error.err(),
            Some(TrackerError::Unreachable(
                "network interface wg0 is down".into()
            ))
        );
    }

    #[test]
    fn scrape_urls_follow_bep_48() {
        let cases = [
            ("http://t.example/announce", Some("http://t.example/scrape")),
            (
                "http://t.example/x/announce.php?k=1",
                Some("http://t.example/x/scrape.php?k=1"),
            ),
            ("http://t.example/a", None),
            ("http://t.example/announce/x", None),
            ("udp://t.example/announce", None),
        ];
        for (announce, scrape) in cases {
            assert_eq!(scrape_url(announce).as_deref(), scrape, "{announce}");
        }
    }

    #[test]
    fn encodes_every_field() {
        let mut hash = [0u8; 20];
        hash[0] = 0x12;
        hash[1] = b'a';
        hash[2] = 0xff;
        let req = AnnounceRequest {
            info_hash: InfoHash(hash),
            ..crate::tracker::sample_request()
        };
        let url = announce_url("http://127.0.0.1:1/announce", &req);
        assert!(url.starts_with("http://127.0.0.1:1/announce?info_hash=%12a%FF%00"));
        assert!(
            url.contains("&peer_id=-RV0100-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3")
        );
        assert!(url.contains("&compact=1&numwant=50&key=0000beef&event=started"));
        assert!(announce_url("http://t/a?x=1", &req).starts_with("http://t/a?x=1&info_hash="));
        assert!(!url.contains("ipv6="));
        let req = AnnounceRequest {
            ipv6: Some("2a01:4f8::1".parse().unwrap()),
            ..req
        };
        let url = announce_url("http://127.0.0.1:1/announce", &req);
        assert!(url.ends_with("&ipv6=2a01%3A4f8%3A%3A1"), "{url}");
    }
}
