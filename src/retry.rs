//! When and how long to wait before resending a request: the retry budget (`--retries`,
//! `--deadline`), capped exponential backoff with full jitter, and `Retry-After`.
//!
//! Whether a failure may be retried at all depends on the request: an idempotent PUT that
//! sets a known password may be resent after anything transient, even after bytes left;
//! a request that must never be sent twice (Telepath's rotate) only when the earlier try
//! provably never reached the provider. [`Resend`] carries that choice from the provider
//! to the HTTP client.

use std::time::Duration;

use rand::TryRng;
use rand::rngs::SysRng;

/// Default number of retries after the first try.
pub const DEFAULT_RETRIES: u32 = 3;
/// Default bound on the time spent on one provider call, retries and waits included.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);

/// What the provider allows us to resend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resend {
    /// The request is idempotent (same body, same effect): retry transient failures and
    /// answers (408, 429, 500, 502, 503, 504), connection losses and timeouts.
    Idempotent,
    /// The request must never be sent twice: retry only when it provably never left
    /// (connection refused, DNS or TLS failure, connect timeout).
    OnlyIfNotSent,
}

/// The retry budget and backoff shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Retries after the first try (`--retries`); 0 sends once.
    pub max_retries: u32,
    /// Bound on the whole call: no retry starts, and no wait is taken, past it.
    pub deadline: Duration,
    /// Cap of the first backoff; doubled after each try.
    pub initial_backoff: Duration,
    /// Largest backoff (a `Retry-After` may ask for more, within the deadline).
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_RETRIES,
            deadline: DEFAULT_DEADLINE,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryConfig {
    /// The wait before retry number `retry` (1-based): a uniformly random duration up to
    /// `min(max_backoff, initial_backoff * 2^(retry-1))` ("full jitter"), so that many
    /// clients failing together do not come back together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_backoff);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        // Jitter needs no cryptographic quality; without entropy, wait the full cap.
        let ms = match SysRng.try_next_u64() {
            Ok(r) if cap_ms > 0 => r % (cap_ms + 1),
            _ => cap_ms,
        };
        Duration::from_millis(ms)
    }
}

/// Parses a `Retry-After` value: delay seconds (`120`) or an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, relative to `now`; a date in the past means now).
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let at = PARSER.parse_timestamp(value).ok()?;
    let ahead = at.duration_since(now);
    Some(Duration::try_from(ahead).unwrap_or(Duration::ZERO))
}

/// Whether an HTTP status is worth another try of an idempotent request.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now: jiff::Timestamp = "1994-11-06T08:49:00Z".parse().unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(37))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:48:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means retry now"
        );
        for junk in ["", "soon", "-5", "1.5", "Sun, 06 Nov 1994"] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk:?}");
        }
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_below_it() {
        let config = RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..RetryConfig::default()
        };
        for (retry, cap) in [(1, 100), (2, 200), (3, 350), (10, 350), (u32::MAX, 350)] {
            let mut seen = Vec::new();
            for _ in 0..200 {
                let wait = config.backoff(retry);
                assert!(wait <= Duration::from_millis(cap), "{retry}: {wait:?}");
                seen.push(wait);
            }
            seen.sort();
            seen.dedup();
            assert!(seen.len() > 10, "retry {retry}: no jitter in {seen:?}");
        }
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(status), "{status}");
        }
        for status in [200, 301, 400, 401, 403, 404, 409, 422, 501] {
            assert!(!retryable_status(status), "{status}");
        }
    }
}
