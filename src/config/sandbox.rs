//! `[sandbox]`: the embedded offline look-alike of the vendor's sandbox.
//! `sandbox = true` (or `KTP_GATEWAY__SANDBOX=true`) is short for
//! `sandbox.enabled = true`.

use serde::{Deserialize, Deserializer, Serialize, de};

use super::values::{PositiveDuration, known};

/// The sandbox section.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxSettings {
    /// Answer from the embedded sandbox instead of the real upstream, to try
    /// the gateway without credentials (`--sandbox` sets it too).
    pub enabled: bool,
    /// How long a job submitted to the sandbox is "processing" (its result
    /// is not found yet) before it answers its card.
    pub processing_time: PositiveDuration,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            processing_time: known::secs(2),
        }
    }
}

/// The section's fields, as a table.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Table {
    enabled: bool,
    processing_time: PositiveDuration,
}

impl Default for Table {
    fn default() -> Self {
        let d = SandboxSettings::default();
        Self {
            enabled: d.enabled,
            processing_time: d.processing_time,
        }
    }
}

impl<'de> Deserialize<'de> for SandboxSettings {
    /// A table, or a boolean (from TOML, or as the text an environment
    /// variable holds) meaning `enabled`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = SandboxSettings;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, enabled: bool) -> Result<Self::Value, E> {
                Ok(SandboxSettings {
                    enabled,
                    ..SandboxSettings::default()
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "true" => self.visit_bool(true),
                    "false" => self.visit_bool(false),
                    // Worded as the other settings' type errors are.
                    _ => Err(E::custom(format!("expected a boolean, found string {v:?}"))),
                }
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let t = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(SandboxSettings {
                    enabled: t.enabled,
                    processing_time: t.processing_time,
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}
