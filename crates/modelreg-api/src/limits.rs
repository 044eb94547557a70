//! Limits against abuse: how fast each credential may call, how long a request may take, how
//! large its head may be, and (in `server.rs`) how many connections are served at once and how
//! long a client may take to send its headers. `docs/operations.md` gives the defaults and
//! why.

use std::{num::NonZeroU32, time::Duration};

use axum::http::StatusCode;
use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};

use crate::error::ApiError;

/// Every limit of the HTTP layer.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests per second each credential may make on average; 0 turns rate limiting off.
    pub rate_per_sec: u32,
    /// Requests a credential may make in a burst, at once, after being idle.
    pub rate_burst: u32,
    /// Longest a request may take, from its head being read to its response head; past it the
    /// answer is 503.
    pub request_timeout: Duration,
    /// Longest a client may take to send a request body; past it the answer is 408.
    pub body_timeout: Duration,
    /// Longest a client may take to send a request's headers; past it the connection is closed.
    /// Also the longest an idle keep-alive connection is kept.
    pub header_timeout: Duration,
    /// Largest request head (the URL and every header), in bytes; past it the answer is 414 or
    /// 431.
    pub max_header_bytes: usize,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rate_per_sec: 200,
            rate_burst: 400,
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
            max_connections: 1024,
        }
    }
}

impl Limits {
    /// Limits that never get in a test's way but the ones it sets.
    pub fn generous() -> Self {
        Limits {
            rate_per_sec: 0,
            ..Limits::default()
        }
    }
}

/// Per-credential token buckets (GCRA, which is a token bucket kept as one timestamp).
pub struct RateLimiter {
    buckets: Option<DefaultKeyedRateLimiter<String>>,
}

impl RateLimiter {
    pub fn new(limits: &Limits) -> Self {
        let buckets = NonZeroU32::new(limits.rate_per_sec).map(|rate| {
            let burst = NonZeroU32::new(limits.rate_burst).unwrap_or(rate);
            governor::RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        RateLimiter { buckets }
    }

    /// A limiter whose idle buckets are dropped every minute while it is in use.
    pub fn shared(limits: &Limits) -> std::sync::Arc<Self> {
        let limiter = std::sync::Arc::new(RateLimiter::new(limits));
        if limiter.buckets.is_some()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let weak = std::sync::Arc::downgrade(&limiter);
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    match weak.upgrade() {
                        Some(limiter) => limiter.prune(),
                        None => return,
                    }
                }
            });
        }
        limiter
    }

    /// Takes one request from `key`'s bucket, or refuses with 429 and how long to wait.
    pub fn check(&self, key: String) -> Result<(), ApiError> {
        let Some(buckets) = &self.buckets else {
            return Ok(());
        };
        match buckets.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(buckets.clock().now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMIT_EXCEEDED",
                    format!(
                        "this credential is over its rate limit; retry after {} s",
                        secs.max(1)
                    ),
                );
                e.retry_after = Some(u16::try_from(secs.max(1)).unwrap_or(u16::MAX));
                Err(e)
            }
        }
    }

    /// Forgets the buckets that are full again, so the table holds only active credentials.
    pub fn prune(&self) {
        if let Some(buckets) = &self.buckets {
            buckets.retain_recent();
            buckets.shrink_to_fit();
        }
    }

    /// Credentials with a bucket in the table.
    pub fn tracked(&self) -> usize {
        self.buckets.as_ref().map_or(0, |b| b.len())
    }
}

/// The time a request body may take, put on each request by the middleware for the body
/// extractor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyTimeout(pub Duration);

/// The 414 or 431 for a request head larger than `max` bytes, in our error shape.
pub(crate) fn check_head(req: &axum::extract::Request, max: usize) -> Result<(), ApiError> {
    let uri = req
        .uri()
        .path_and_query()
        .map_or(req.uri().path().len(), |pq| pq.as_str().len());
    if uri > max {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "INVALID_REQUEST",
            format!("the URL is {uri} bytes; at most {max} are accepted"),
        ));
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if uri + headers > max {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "INVALID_REQUEST",
            format!(
                "the request head is {} bytes; at most {max} are accepted",
                uri + headers
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_past_its_burst_and_says_how_long_to_wait() {
        let limiter = RateLimiter::new(&Limits {
            rate_per_sec: 1,
            rate_burst: 3,
            ..Limits::default()
        });
        for _ in 0..3 {
            limiter.check("a".into()).unwrap();
        }
        let e = limiter.check("a".into()).unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.code, "RATE_LIMIT_EXCEEDED");
        assert_eq!(e.retry_after, Some(1));
        // Another credential has its own bucket.
        limiter.check("b".into()).unwrap();
        assert_eq!(limiter.tracked(), 2);
    }

    #[test]
    fn zero_turns_rate_limiting_off() {
        let limiter = RateLimiter::new(&Limits::generous());
        for _ in 0..10_000 {
            limiter.check("a".into()).unwrap();
        }
        assert_eq!(limiter.tracked(), 0);
    }
}
