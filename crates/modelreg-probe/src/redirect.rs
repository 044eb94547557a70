//! Which redirects a probe follows. A probe carries the tenant's credential in headers that
//! reqwest does not know to strip on a cross-host redirect (`x-api-key`, `api-key`,
//! `x-goog-api-key`, `x-amz-security-token`), so a redirect is followed only within the origin
//! the model names: the credential never reaches a host the tenant did not choose.

use std::{fmt, sync::Arc};

use reqwest::redirect::Policy;
use url::Url;

use crate::guard::{Denied, DenyList};

/// The policy of the probe client: at most `max_redirects` hops, only to http(s), never to a
/// denied IP literal, and never off the original request's origin. A redirect to a name goes
/// through the guarded resolver like any request.
pub(crate) fn policy(deny: Arc<DenyList>, max_redirects: usize) -> Policy {
    Policy::custom(move |attempt| {
        if attempt.previous().len() >= max_redirects {
            return attempt.error(format!("more than {max_redirects} redirects"));
        }
        let url = attempt.url();
        if !matches!(url.scheme(), "http" | "https") {
            return attempt.error("a redirect to a scheme other than http(s)");
        }
        if let Some(ip) = crate::literal_ip(url)
            && !deny.allows(ip)
        {
            return attempt.error(Denied(ip.to_string()));
        }
        // Every hop followed so far kept the origin, so comparing with the first is enough.
        if let Some(refused) = attempt
            .previous()
            .first()
            .and_then(|original| CrossOrigin::check(original, url))
        {
            return attempt.error(refused);
        }
        attempt.follow()
    })
}

/// The error of a redirect off the origin the model names. It holds origins only (scheme,
/// host, port): never a path, a query or user info, which could carry a secret.
#[derive(Debug)]
pub(crate) struct CrossOrigin {
    from: String,
    to: String,
}

impl CrossOrigin {
    /// `Some` when `next` is not on `original`'s scheme, host and port. An https → http hop on
    /// the same host is refused too: the credential would cross the network in clear.
    fn check(original: &Url, next: &Url) -> Option<CrossOrigin> {
        // `origin()` fills in the scheme's default port, so `http://h` and `http://h:80` match.
        let (from, to) = (original.origin(), next.origin());
        (from != to).then(|| CrossOrigin {
            from: from.ascii_serialization(),
            to: to.ascii_serialization(),
        })
    }
}

impl fmt::Display for CrossOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "redirect to another host refused: {} redirected the probe to {}; a probe sends \
             credentials only to the host the model names, so the credentials were not sent there",
            self.from, self.to
        )
    }
}

impl std::error::Error for CrossOrigin {}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(original: &str, next: &str) -> Option<CrossOrigin> {
        CrossOrigin::check(&original.parse().unwrap(), &next.parse().unwrap())
    }

    #[test]
    fn only_the_same_scheme_host_and_port_is_the_same_origin() {
        for (original, next) in [
            (
                "https://api.example.com/v1/models",
                "https://api.example.com/v2/models?x=1",
            ),
            (
                "https://api.example.com/v1",
                "https://API.example.com:443/v1",
            ),
            ("http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b"),
        ] {
            assert!(check(original, next).is_none(), "{original} -> {next}");
        }
        for (original, next) in [
            ("https://api.example.com/v1", "https://evil.example.net/v1"),
            (
                "https://api.example.com/v1",
                "https://api.example.com:8443/v1",
            ),
            ("https://api.example.com/v1", "http://api.example.com/v1"),
            ("http://api.example.com/v1", "https://api.example.com/v1"),
            ("http://127.0.0.1:8080/v1", "http://localhost:8080/v1"),
            ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8081/v1"),
        ] {
            assert!(check(original, next).is_some(), "{original} -> {next}");
        }
    }

    #[test]
    fn the_message_names_origins_only() {
        let refused = check(
            "https://api.example.com/v1",
            "https://user:secret@evil.example.net/steal?key=sk-123",
        )
        .unwrap()
        .to_string();
        assert!(
            refused.contains("redirect to another host refused")
                && refused.contains("https://evil.example.net")
                && refused.contains("credentials were not sent"),
            "{refused}"
        );
        assert!(
            !refused.contains("secret") && !refused.contains("sk-123"),
            "{refused}"
        );
    }
}
