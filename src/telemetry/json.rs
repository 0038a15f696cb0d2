//! The JSON line format, written straight into the line.
//!
//! Same lines as `tracing_subscriber`'s own JSON format with
//! `flatten_event(true)`, `with_current_span(true)`, `with_span_list(false)`
//! and `with_target(true)` (the tests compare the two), for a fraction of its
//! cost: the stock one serializes every field through serde into a UTF-8
//! checking adapter and re-parses the span's fields on every line, which was
//! an eighth of the gateway's instructions per call (`bench/README.md`, change 10).

use std::fmt::{self, Write};

use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_log::NormalizeEvent;
use tracing_subscriber::{
    fmt::{
        FmtContext, FormatEvent, FormattedFields,
        format::{JsonFields, Writer},
        time::{FormatTime, SystemTime},
    },
    registry::LookupSpan,
};

/// One JSON object per line: `timestamp`, `level`, the event's fields (its
/// message as `message`), `target`, then the current span, if any, as
/// `span` (its fields and `name`). Span fields must be formatted by
/// [`JsonFields`].
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());

        w.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut w)?;
        w.write_str("\",\"level\":\"")?;
        w.write_str(meta.level().as_str())?;
        w.write_char('"')?;

        let mut fields = Fields {
            w: &mut w,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;

        w.write_str(",\"target\":")?;
        write_str(&mut w, meta.target())?;

        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            w.write_str(",\"span\":{")?;
            let extensions = span.extensions();
            // `{"a":1,"b":2}` as JsonFields left it: spliced in, not re-parsed.
            let stored = extensions
                .get::<FormattedFields<JsonFields>>()
                .map(|f| f.fields.as_str());
            if let Some(inner) = stored
                .and_then(|s| s.strip_prefix('{'))
                .and_then(|s| s.strip_suffix('}'))
                .filter(|s| !s.is_empty())
            {
                w.write_str(inner)?;
                w.write_char(',')?;
            }
            w.write_str("\"name\":")?;
            write_str(&mut w, span.metadata().name())?;
            w.write_char('}')?;
        }
        w.write_str("}\n")
    }
}

/// Appends each field as `,"name":value`.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.w.write_char(',')?;
                write_str(self.w, field.name())?;
                self.w.write_char(':')?;
                value(self.w)
            })();
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |w| write_str(w, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.entry(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value}")?;
            w.write_char('"')
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes those as null too.
        self.entry(field, |w| match value.is_finite() {
            true => write!(w, "{value}"),
            false => w.write_str("null"),
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |w| write!(w, "{value}"));
    }
}

/// `s` as a JSON string, quotes included.
fn write_str(w: &mut impl Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(s)?;
    w.write_char('"')
}

/// Escapes what JSON strings may not hold raw: `"`, `\` and control
/// characters. Everything else, non-ASCII included, passes through.
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Most values (ids, names, codes) need no escape: one pass to tell,
        // one write.
        if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            return self.0.write_str(s);
        }
        let mut clean = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x00..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[clean..i])?;
            match escape {
                "" => write!(self.0, "\\u{b:04x}")?,
                e => self.0.write_str(e)?,
            }
            clean = i + 1;
        }
        self.0.write_str(&s[clean..])
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
    };

    use serde_json::Value;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().map_err(|_| io::ErrorKind::Other)?.extend(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl MakeWriter<'_> for Captured {
        type Writer = Self;
        fn make_writer(&self) -> Self {
            self.clone()
        }
    }

    const AWKWARD: &str =
        "quote \" backslash \\ newline \n tab \t nul \0 bell \u{7} \u{1f} del \u{7f} é 日本 🦀";

    #[derive(Debug)]
    struct Oops;
    impl fmt::Display for Oops {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("it \"broke\"\n")
        }
    }
    impl std::error::Error for Oops {}

    /// Every kind of field and line the gateway logs, in and out of a span.
    fn log_everything() {
        tracing::info!(
            method = "/ktp.v1.KtpService/GetKtpResult",
            duration_ms = 104.801_261_000_000_01,
            tiny = 1e-7,
            nan = f64::NAN,
            count = 3_u64,
            delta = -4_i64,
            big = u128::MAX,
            small = i128::MIN,
            flag = true,
            awkward = AWKWARD,
            debugged = ?AWKWARD,
            shown = %AWKWARD,
            "call finished"
        );
        let error: &(dyn std::error::Error + 'static) = &Oops;
        tracing::warn!(error, "no message escapes: {AWKWARD}");
        let span = tracing::debug_span!("call", request_id = %"req-\"1\"", n = 7);
        span.in_scope(|| {
            tracing::debug!(retry = 1, "retrying upstream");
            let empty = tracing::error_span!("empty");
            empty.in_scope(|| tracing::error!("inner"));
        });
    }

    fn raw_lines(ours: bool) -> Vec<String> {
        let out = Captured::default();
        let builder = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(out.clone())
            .with_target(true)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false);
        if ours {
            let subscriber = builder.event_format(JsonLines).finish();
            tracing::subscriber::with_default(subscriber, log_everything);
        } else {
            tracing::subscriber::with_default(builder.finish(), log_everything);
        }
        let bytes = out.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes)
            .expect("UTF-8")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn lines(ours: bool) -> Vec<Value> {
        raw_lines(ours)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn lines_say_what_the_stock_json_format_says() {
        let (ours, stock) = (lines(true), lines(false));
        assert_eq!(ours.len(), 4);
        assert_eq!(ours.len(), stock.len());
        for (mut a, mut b) in ours.into_iter().zip(stock) {
            for line in [&mut a, &mut b] {
                let stamp = line["timestamp"].take();
                assert!(stamp.as_str().is_some_and(|s| s.ends_with('Z')), "{stamp}");
            }
            // Shortest round-trip forms of one f64 may differ in notation.
            if let (Some(x), Some(y)) = (a.get("tiny"), b.get("tiny")) {
                assert_eq!(x.as_f64(), y.as_f64());
                a["tiny"].take();
                b["tiny"].take();
            }
            assert_eq!(a, b);
        }
    }

    #[test]
    fn awkward_strings_survive_exactly() {
        let first = &lines(true)[0];
        assert_eq!(first["awkward"], AWKWARD);
        assert_eq!(first["shown"], AWKWARD);
        assert_eq!(first["debugged"], format!("{AWKWARD:?}"));
        // serde_json's default float parsing may be an ULP off: check the text.
        assert!(raw_lines(true)[0].contains(r#""duration_ms":104.80126100000001,"#));
        assert_eq!(first["nan"], Value::Null);
        let mut escaped = String::new();
        write_str(&mut escaped, "\u{0}\u{1f}\"").expect("to a String");
        assert_eq!(escaped, r#""\u0000\u001f\"""#);
    }

    #[test]
    fn fields_keep_their_order() {
        let first = &raw_lines(true)[0];
        let at = |key: &str| first.find(&format!("\"{key}\":")).expect(key);
        let order = [
            "timestamp",
            "level",
            "message",
            "method",
            "duration_ms",
            "target",
        ];
        assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{first}");
        assert!(first.starts_with("{\"timestamp\":"), "{first}");
    }
}
