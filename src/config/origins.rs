//! `server.cors_allowed_origins`: the browser origins that may call the
//! gRPC port through gRPC-Web (CORS). Each must be a real origin,
//! `scheme://host[:port]`, so that it can only ever equal a browser's
//! `Origin` header byte for byte; `*` is refused: callers' bearer tokens
//! travel in headers, and any page on the web could spend them.

use std::fmt;

use reqwest::Url;
use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, SeqAccess, Visitor},
};

use super::values::InvalidValue;

/// The allowed origins, each in the form a browser sends it (`Origin`
/// header: lower-case scheme and host, no default port). Empty: none, and
/// no answer carries a CORS header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins(Vec<String>);

impl CorsOrigins {
    /// Every origin given, each checked; a comma-separated list is how the
    /// environment variable holds them.
    pub fn parse<'a>(origins: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidValue> {
        let mut parsed = Vec::new();
        for raw in origins.into_iter().map(str::trim).filter(|o| !o.is_empty()) {
            let origin = origin(raw)?;
            if !parsed.contains(&origin) {
                parsed.push(origin);
            }
        }
        Ok(Self(parsed))
    }

    /// The origins, as browsers send them.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// `raw` as a browser would send it in `Origin`, or why it is not one.
fn origin(raw: &str) -> Result<String, InvalidValue> {
    if raw == "*" {
        return Err(InvalidValue::new(
            "\"*\" is not allowed: callers' bearer tokens travel in headers, so name each \
             allowed origin (https://console.example.com)"
                .to_owned(),
        ));
    }
    let url: Url = raw
        .parse()
        .map_err(|e| InvalidValue::new(format!("{raw:?} is not an origin: {e}")))?;
    let bare = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare {
        return Err(InvalidValue::new(format!(
            "{raw:?} is not an origin: expected http(s)://host[:port] and nothing else"
        )));
    }
    Ok(url.origin().ascii_serialization())
}

impl Serialize for CorsOrigins {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for CorsOrigins {
    /// From a TOML array of origins, or from one string of comma-separated
    /// origins (the environment variable).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Origins;
        impl<'de> Visitor<'de> for Origins {
            type Value = CorsOrigins;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of origins, or one comma-separated string of them")
            }
            fn visit_str<E: de::Error>(self, list: &str) -> Result<CorsOrigins, E> {
                CorsOrigins::parse(list.split(',')).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CorsOrigins, A::Error> {
                let mut all = Vec::new();
                while let Some(one) = seq.next_element::<String>()? {
                    all.push(one);
                }
                CorsOrigins::parse(all.iter().map(String::as_str)).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(Origins)
    }
}

#[cfg(test)]
mod tests {
    use super::CorsOrigins;

    #[test]
    fn origins_are_kept_as_browsers_send_them() {
        let parsed = CorsOrigins::parse([
            "https://Console.Example.com",
            " http://localhost:5173 ",
            "https://a.example:443/",
            "",
            "https://console.example.com",
        ])
        .unwrap();
        assert_eq!(
            parsed.as_slice(),
            [
                "https://console.example.com",
                "http://localhost:5173",
                "https://a.example"
            ]
        );
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        for bad in [
            "*",
            "null",
            "console.example.com",
            "ftp://files.example.com",
            "https://console.example.com/app",
            "https://user@console.example.com",
            "https://console.example.com?x",
            "https://console.example.com#x",
        ] {
            let refused = CorsOrigins::parse([bad]);
            assert!(refused.is_err(), "{bad} was accepted: {refused:?}");
        }
        let star = CorsOrigins::parse(["*"]).unwrap_err().to_string();
        assert!(star.contains("\"*\" is not allowed"), "{star}");
    }
}
