//! Provider probes (SPEC §6): one cheap, real, authenticated call (list models or equivalent)
//! per verification, over an HTTP client that cannot reach link-local or metadata addresses
//! and reads at most a bounded body.

mod guard;
mod providers;
mod redirect;
#[cfg(feature = "testing")]
pub mod testing;

use std::{
    error::Error as _,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
pub use guard::{DEFAULT_DENY, DenyList};
use modelreg_core::verify::{ProbeOutcome, ProbeTarget, Prober};

use crate::{
    guard::{Denied, DnsFailed, GuardedResolver},
    redirect::CrossOrigin,
};

/// Settings of the prober.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub deny: DenyList,
    /// Largest provider response read, in bytes.
    pub max_body_bytes: usize,
    pub max_redirects: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            deny: DenyList::default(),
            max_body_bytes: 4 * 1024 * 1024,
            max_redirects: 3,
        }
    }
}

pub struct HttpProber {
    client: reqwest::Client,
    deny: Arc<DenyList>,
    max_body_bytes: usize,
}

impl HttpProber {
    pub fn new(config: ProbeConfig) -> Result<HttpProber, String> {
        let deny = Arc::new(config.deny);
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .dns_resolver(GuardedResolver(deny.clone()))
            .redirect(redirect::policy(deny.clone(), config.max_redirects))
            .no_proxy()
            .user_agent(concat!("modelreg/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpProber {
            client,
            deny,
            max_body_bytes: config.max_body_bytes,
        })
    }
}

/// TLS for outbound HTTP: rustls with ring and the Mozilla roots, no system dependency.
pub fn tls_config() -> Result<rustls::ClientConfig, String> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

fn literal_ip(url: &url::Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(v4.into()),
        url::Host::Ipv6(v6) => Some(v6.into()),
        url::Host::Domain(_) => None,
    }
}

/// An HTTP answer: status and (bounded) body.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpProber {
    /// Sends `request`, reading at most `max_body_bytes` of the answer. The error is a
    /// message for the user that names what failed and never the credentials.
    pub(crate) async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &url::Url,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let host = url.host_str().unwrap_or("?").to_owned();
        if let Some(ip) = literal_ip(url)
            && !self.deny.allows(ip)
        {
            return Err(format!("{ip} is a denied address (link-local or metadata)"));
        }
        let work = async {
            let mut res = request
                .send()
                .await
                .map_err(|e| describe(&e, &host, timeout))?;
            let status = res.status().as_u16();
            let mut body = Vec::new();
            while let Some(chunk) = res
                .chunk()
                .await
                .map_err(|e| describe(&e, &host, timeout))?
            {
                if body.len() + chunk.len() > self.max_body_bytes {
                    return Err(format!(
                        "the response from {host} is larger than {} bytes",
                        self.max_body_bytes
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "{host} did not answer within {:.1} s (timeout)",
                    timeout.as_secs_f64()
                ))
            })
    }
}

/// A rustls error in `e`, which hyper and tokio wrap in `io::Error`s that `source()` does
/// not walk into.
fn find_tls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        return find_tls(inner);
    }
    None
}

/// What went wrong with a request, in words.
fn describe(e: &reqwest::Error, host: &str, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!(
            "{host} did not answer within {:.1} s (timeout)",
            timeout.as_secs_f64()
        );
    }
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(d) = s.downcast_ref::<Denied>() {
            return format!("{d} (link-local or metadata): the probe was not sent");
        }
        if let Some(refused) = s.downcast_ref::<CrossOrigin>() {
            return refused.to_string();
        }
        if let Some(d) = s.downcast_ref::<DnsFailed>() {
            return d.to_string();
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return format!("connection refused by {host}");
        }
        if let Some(tls) = find_tls(s) {
            return format!("TLS handshake with {host} failed: {tls}");
        }
        source = s.source();
    }
    if e.is_redirect() {
        return format!(
            "redirect refused: {}",
            e.source().map(|s| s.to_string()).unwrap_or_default()
        );
    }
    if e.is_connect() {
        return format!("cannot connect to {host}");
    }
    format!("the request to {host} failed")
}

#[async_trait]
impl Prober for HttpProber {
    async fn probe(&self, target: &ProbeTarget) -> ProbeOutcome {
        let started = Instant::now();
        let (verified, message) = match providers::probe(self, target).await {
            Ok(message) => (true, message),
            Err(message) => (false, message),
        };
        ProbeOutcome {
            verified,
            message,
            latency_ms: started.elapsed().as_millis() as u64,
        }
    }
}
