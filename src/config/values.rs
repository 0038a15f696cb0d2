//! Setting types that are valid by construction: each checks its value as it
//! is deserialised, so a bad one stops the load with an error that names its
//! key (the `config` crate puts the key around a serde custom error).
//!
//! Each reads like the value it holds, through `Deref`: `*timeout` is the
//! `Duration`, `base_url.host()` a method of the `Url`.

use std::{fmt, net::SocketAddr, ops::Deref, str::FromStr, time::Duration};

use reqwest::Url;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

/// Upper bound of every count setting: far above any sane value, and low
/// enough that no semaphore or allocation sized by it can fail.
const MAX_COUNT: usize = 1_000_000;
/// Upper bound of every duration setting, so that `now + duration` can never
/// overflow an `Instant`.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Why a value is not valid for its setting; the load puts the key around it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(String);

impl InvalidValue {
    /// For the setting types of the sections' own modules.
    pub(super) fn new(why: String) -> Self {
        Self(why)
    }
}

/// Derefs a newtype to the value it holds.
macro_rules! reads_as {
    ($name:ident: $target:ty) => {
        impl Deref for $name {
            type Target = $target;
            fn deref(&self) -> &$target {
                &self.0
            }
        }
    };
}

/// Deserialises a newtype from its inner type, then its `new` checks it.
macro_rules! checked_with_new {
    ($name:ident($inner:ty), $why:expr) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(<$inner>::deserialize(d)?).ok_or_else(|| D::Error::custom($why))
            }
        }
    };
}

/// Deserialises a newtype from a string through its `FromStr`.
macro_rules! checked_with_parse {
    ($name:ident) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(D::Error::custom)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

/// A whole number from `$min` to `$max`, held as `$int`.
macro_rules! count {
    ($(#[$doc:meta])* $name:ident($int:ty): $min:literal..=$max:expr, $why:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name($int);

        impl $name {
            const MIN: $int = $min;
            const MAX: $int = $max;

            /// `None` when out of bounds.
            pub const fn new(n: $int) -> Option<Self> {
                if matches!(n, Self::MIN..=Self::MAX) {
                    Some(Self(n))
                } else {
                    None
                }
            }
        }

        reads_as!($name: $int);
        checked_with_new!($name($int), $why);
    };
}

count! {
    /// A count of things (calls, connections) from 1 to a million.
    Count(usize): 1..=MAX_COUNT, format!("must be from 1 to {MAX_COUNT}")
}

count! {
    /// [`Count`] held as a `u32`, for consumers that count in `u32`.
    Count32(u32): 1..=(MAX_COUNT as u32), format!("must be from 1 to {MAX_COUNT}")
}

count! {
    /// Runtime worker threads: 0 means one per CPU; more than 1024 would be a
    /// typo, not a machine.
    Threads(usize): 0..=1024, "must be from 0 (one per CPU) to 1024"
}

count! {
    /// Attempts per call, the first included: 1 means no retries, and more
    /// than 10 would only pile load on a failing upstream.
    Attempts(u32): 1..=10, "must be from 1 (no retries) to 10"
}

count! {
    /// A size in bytes of something held whole in memory (a request message,
    /// an image, an upstream body), up to 64 MiB: more would let a few calls
    /// exhaust memory, and 0 would refuse everything.
    MessageBytes(usize): 1..=67_108_864, "must be from 1 to 67108864"
}

/// A duration greater than zero and at most `$max`, written like `750ms`,
/// `10s`, `2m`.
macro_rules! duration {
    ($(#[$doc:meta])* $name:ident: $max:expr, $why:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Duration);

        impl $name {
            /// `None` when zero or too long.
            pub const fn new(d: Duration) -> Option<Self> {
                if d.is_zero() || d.as_nanos() > $max.as_nanos() {
                    None
                } else {
                    Some(Self(d))
                }
            }
        }

        reads_as!($name: Duration);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(humantime_serde::deserialize(d)?).ok_or_else(|| D::Error::custom($why))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                humantime_serde::serialize(&self.0, s)
            }
        }
    };
}

duration! {
    /// A duration greater than zero and at most a day: zero would disable
    /// what it bounds, and the cap keeps `now + duration` from overflowing.
    PositiveDuration: MAX_DURATION, "must be greater than zero and at most 24h"
}

duration! {
    /// How long a call may wait for a job: longer than ten minutes would hold
    /// a call (and a client) for a job that is not coming.
    WaitDuration: Duration::from_secs(600), "must be greater than zero and at most 10m"
}

/// A fraction from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Ratio(f64);

impl Ratio {
    /// `None` outside 0..=1 (and for NaN).
    pub const fn new(r: f64) -> Option<Self> {
        if r >= 0.0 && r <= 1.0 {
            Some(Self(r))
        } else {
            None
        }
    }
}

reads_as!(Ratio: f64);
checked_with_new!(Ratio(f64), "must be from 0 to 1");

/// A rate per second from 0 to a million.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct PerSecond(f64);

impl PerSecond {
    /// `None` outside 0..=1000000 (and for NaN).
    pub const fn new(r: f64) -> Option<Self> {
        if r >= 0.0 && r <= 1_000_000.0 {
            Some(Self(r))
        } else {
            None
        }
    }
}

reads_as!(PerSecond: f64);
checked_with_new!(PerSecond(f64), "must be from 0 to 1000000");

/// An `IP:port` to listen on; port 0 picks a free one. No host names: what
/// a name resolves to is not the operator's choice to leave to DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenAddr(SocketAddr);

impl ListenAddr {
    /// Infallible: every socket address is one to listen on; only parsing
    /// text can fail.
    pub const fn new(addr: SocketAddr) -> Self {
        Self(addr)
    }
}

impl FromStr for ListenAddr {
    type Err = InvalidValue;
    fn from_str(raw: &str) -> Result<Self, InvalidValue> {
        raw.parse()
            .map(Self)
            .map_err(|_| InvalidValue(format!("{raw:?} is not an IP:port address")))
    }
}

reads_as!(ListenAddr: SocketAddr);
checked_with_parse!(ListenAddr);

/// The upstream's base URL: http or https with a host, no credentials in it
/// (they go in headers), and plain http only to a loopback host, since every
/// request carries the API key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl(Url);

impl FromStr for BaseUrl {
    type Err = InvalidValue;
    fn from_str(raw: &str) -> Result<Self, InvalidValue> {
        let shown = shown_url(raw);
        let url: Url = raw
            .parse()
            .map_err(|e| InvalidValue(format!("{shown} is not a URL: {e}")))?;
        // Before any check that shows the value: it would show them.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidValue(
                "must not contain credentials; use upstream.app_id and upstream.api_key".into(),
            ));
        }
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(InvalidValue(format!(
                "{shown} must be an http:// or https:// URL with a host"
            )));
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if url.scheme() == "http" && !loopback {
            return Err(InvalidValue(format!(
                "{shown} would send the API key unencrypted: use https:// (http:// only for loopback hosts)"
            )));
        }
        Ok(Self(url))
    }
}

/// A base URL as an error may show it: quoted, unless it has an `@`, which
/// may be credentials (`https://user:password@host`) that a URL too broken
/// to parse could not be checked for.
fn shown_url(raw: &str) -> String {
    if raw.contains('@') {
        "the value (not shown: it has an '@', which may be credentials)".to_owned()
    } else {
        format!("{raw:?}")
    }
}

reads_as!(BaseUrl: Url);
checked_with_parse!(BaseUrl);

/// A `RUST_LOG`-style filter, e.g. `info,ktp_gateway=debug`, checked by the
/// parser that will use it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogFilter(String);

impl FromStr for LogFilter {
    type Err = InvalidValue;
    fn from_str(raw: &str) -> Result<Self, InvalidValue> {
        match tracing_subscriber::EnvFilter::try_new(raw) {
            Ok(_) => Ok(Self(raw.to_owned())),
            Err(_) => Err(InvalidValue(format!("{raw:?} is not a valid filter"))),
        }
    }
}

reads_as!(LogFilter: str);
checked_with_parse!(LogFilter);

/// For the built-in defaults, which are literals: one out of bounds is a bug
/// that every test loading settings trips over.
pub(super) mod known {
    use super::*;

    pub(crate) const fn valid<T: Copy>(value: Option<T>) -> T {
        value.expect("a built-in default is out of bounds")
    }

    pub(crate) const fn secs(s: u64) -> PositiveDuration {
        valid(PositiveDuration::new(Duration::from_secs(s)))
    }

    pub(crate) const fn wait_secs(s: u64) -> WaitDuration {
        valid(WaitDuration::new(Duration::from_secs(s)))
    }

    pub(crate) const fn millis(ms: u64) -> PositiveDuration {
        valid(PositiveDuration::new(Duration::from_millis(ms)))
    }

    pub(crate) fn parse<T: FromStr>(literal: &str) -> T {
        match literal.parse() {
            Ok(v) => v,
            Err(_) => panic!("the built-in default {literal:?} is invalid"),
        }
    }
}
