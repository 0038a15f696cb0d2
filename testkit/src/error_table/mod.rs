//! The README's error table ("## Error mapping") as data: one [`Entry`] per
//! row, holding the row's cells exactly as the README writes them and one or
//! more concrete [`Example`]s (a trigger and the answer the caller must get).
//!
//! One table for every test that is about the table, so that adding an
//! error code is one entry here plus the match arm in the gateway: the check
//! that the README says the same (this module's tests), every example
//! through the real server (`tests/api/table.rs`) and the fault matrix's
//! expected answers read it.
//!
//! Each example names the RPC it calls ([`Rpc`]); an HTTP answer says which
//! upstream call gives it ([`Trigger::Upstream`] the result call,
//! [`Trigger::Submit`] the submit call), and an entry lists the statuses it
//! answers per upstream call.
//!
//! Plain types only (strings, numbers, this module's enums), so that the
//! gateway's own unit tests (the mapping's, the property tests' oracle) can
//! read it too, without a crate cycle and without tonic.

mod data;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use data::TABLE;

use crate::images::{self, ImageSource};

/// `ErrorInfo.domain` of reasons the upstream gave (its `error_code`).
pub const UPSTREAM_DOMAIN: &str = "api.verihubs.com";
/// `ErrorInfo.domain` of reasons the gateway makes up.
pub const GATEWAY_DOMAIN: &str = "ktp-gateway";

/// The canonical gRPC code names, indexed by code number (`"NOT_FOUND"` is
/// 5): how a consumer turns [`Expect::code`] into its own code type.
pub const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The number of the gRPC code named `name`, if it is a canonical name.
pub fn code_number(name: &str) -> Option<i32> {
    CODE_NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| i32::try_from(i).ok())
}

/// One row of the README table.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// A stable name to refer to the row by (`"not_found"`).
    pub name: &'static str,
    /// The row's cells, exactly as in README.md.
    pub readme: Cells,
    /// The HTTP statuses whose answer (status and body) to the result call
    /// can land on this row; empty when no complete HTTP answer of it
    /// decides it (the gateway answers by itself, or the attempt failed).
    pub statuses: &'static [HttpStatus],
    /// The same, for an answer to the submit call.
    pub submit_statuses: &'static [HttpStatus],
    /// The gRPC code of the row.
    pub code: GrpcCode,
    /// The `ErrorInfo` reason of the row.
    pub reason: Reason,
    /// The detail the row adds beside `ErrorInfo` and `RequestInfo`.
    pub detail: Detail,
    /// Concrete cases of the row, at least one.
    pub examples: &'static [Example],
}

/// The four cells of a README row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cells {
    /// "upstream answer"
    pub answer: &'static str,
    /// "gRPC code"
    pub code: &'static str,
    /// "ErrorInfo.reason (domain)"
    pub reason: &'static str,
    /// "extra detail"
    pub detail: &'static str,
}

/// HTTP statuses an entry answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpStatus {
    /// Exactly this status.
    Exact(u16),
    /// Any status in `from..=to` (`Range(200, 299)`: any 2xx).
    Range(u16, u16),
    /// Any status that no entry of the table names with `Exact` or `Range`
    /// for the same upstream call.
    Other,
}

/// The gRPC code of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcCode {
    /// This code, by its canonical name (`"NOT_FOUND"`).
    Is(&'static str),
    /// Whatever code the gRPC layer refused the request with (the
    /// `REQUEST_REFUSED` row).
    AsRefused,
}

/// How an entry's `ErrorInfo` reason is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No `ErrorInfo`: the OK row.
    None,
    /// This reason, under this domain.
    Is(&'static str, Domain),
    /// One of these reasons, under this domain.
    OneOf(&'static [&'static str], Domain),
    /// The upstream's `error_code`, as given, under [`Domain::Upstream`].
    UpstreamCode,
    /// The upstream's `error_code` under [`Domain::Upstream`] if it sent
    /// one, else this reason under [`Domain::Gateway`].
    UpstreamCodeElse(&'static str),
}

/// Who made the reason up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// [`UPSTREAM_DOMAIN`]: the upstream's own `error_code`.
    Upstream,
    /// [`GATEWAY_DOMAIN`]: a reason of the gateway.
    Gateway,
}

impl Domain {
    /// The `ErrorInfo.domain` string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Upstream => UPSTREAM_DOMAIN,
            Self::Gateway => GATEWAY_DOMAIN,
        }
    }
}

/// The detail a status carries beside `ErrorInfo` and `RequestInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// None.
    None,
    /// A `BadRequest` violation on this field.
    BadRequest {
        /// The violation's field.
        field: &'static str,
    },
    /// A `BadRequest` violation on one of these fields, the one the
    /// upstream's code names (an entry's rule; an example names its field).
    BadRequestOneOf(&'static [&'static str]),
    /// A `ResourceInfo` of this type whose `resource_name` is the call's
    /// reference id.
    ResourceInfo {
        /// `resource_type`.
        resource_type: &'static str,
    },
    /// A `QuotaFailure` with at least one violation.
    QuotaFailure,
    /// A `RetryInfo`.
    RetryInfo(Delay),
}

impl Detail {
    /// The exact `RetryInfo` delay this detail promises, if it is one.
    pub const fn retry_delay(self) -> Option<Duration> {
        match self {
            Self::RetryInfo(Delay::Exactly(d)) => Some(d),
            _ => None,
        }
    }
}

/// A `RetryInfo` delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// Exactly this long.
    Exactly(Duration),
    /// The upstream's `Retry-After` (capped at 1 h), else this long.
    RetryAfterElse(Duration),
    /// What is left of the circuit breaker's cool-down: more than zero, at
    /// most `upstream.breaker.cooldown`.
    RestOfCoolDown,
}

/// One concrete case of an entry.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    /// Unique within its entry (`"no Retry-After"`).
    pub name: &'static str,
    /// The RPC the example calls.
    pub rpc: Rpc,
    /// What makes it happen.
    pub trigger: Trigger,
    /// What the caller must get.
    pub expect: Expect,
}

/// The RPCs of `ktp.v1.KtpService`. Unless its trigger says otherwise, an
/// example's request is: `GetKtpResult` with the call's reference id and
/// `wait` false; `SubmitKtp` and `ExtractKtp` with a valid image
/// ([`images::valid`], a 720×480 PNG), `validate_quality` false and the
/// call's reference id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// Reads a job's result.
    GetKtpResult,
    /// Submits an image.
    SubmitKtp,
    /// Submits an image and waits for its result.
    ExtractKtp,
}

impl Rpc {
    /// The full gRPC method name (the metrics' `method` label).
    pub const fn method(self) -> &'static str {
        match self {
            Self::GetKtpResult => "/ktp.v1.KtpService/GetKtpResult",
            Self::SubmitKtp => "/ktp.v1.KtpService/SubmitKtp",
            Self::ExtractKtp => "/ktp.v1.KtpService/ExtractKtp",
        }
    }

    /// Whether its request carries an image (and a submit call follows).
    pub const fn carries_image(self) -> bool {
        !matches!(self, Self::GetKtpResult)
    }
}

/// The two upstream calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamCall {
    /// `GET …/ktp/id/extract-async/result`.
    Result,
    /// `POST …/ktp/id/extract-async`.
    Submit,
}

/// What makes an example happen.
#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    /// The result call answers the call's request with this (every
    /// attempt). For `ExtractKtp` its submit is accepted first (a 200 naming
    /// the call's reference id), and every poll gets this.
    Upstream(Answer),
    /// The submit call answers this (every attempt); `SubmitKtp` and
    /// `ExtractKtp` only.
    Submit(Answer),
    /// The submit call's first attempt is read and its connection closed
    /// without an answer, so its outcome is lost (the upstream may have
    /// taken the job); every later attempt gets this.
    SubmitAfterLostAttempt(Answer),
    /// Something on the gateway's side or the network's, which each consumer
    /// knows how to provoke.
    Provoke(Provoke),
}

impl Trigger {
    /// The HTTP answer the trigger plays, and the upstream call it answers.
    pub const fn answer(&self) -> Option<(UpstreamCall, Answer)> {
        match *self {
            Self::Upstream(a) => Some((UpstreamCall::Result, a)),
            Self::Submit(a) | Self::SubmitAfterLostAttempt(a) => Some((UpstreamCall::Submit, a)),
            Self::Provoke(_) => None,
        }
    }
}

/// A complete HTTP answer of the upstream.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// Response headers besides framing (`Content-Length` is added unless
    /// the body is [`Body::Filler`]).
    pub headers: &'static [(&'static str, &'static str)],
    /// The body.
    pub body: Body,
}

impl Answer {
    /// The `Retry-After` header's value, if any.
    pub fn retry_after(&self) -> Option<&'static str> {
        self.header("retry-after")
    }

    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&'static str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// The body of an [`Answer`].
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// JSON text, sent with `Content-Type: application/json`.
    Json(&'static str),
    /// These bytes, with only the answer's own headers.
    Bytes(&'static [u8]),
    /// `len` spaces, announced with `Content-Length` or sent chunked: a body
    /// over `upstream.max_body_bytes` (1 MiB by default), streamed.
    Filler {
        /// Bytes in the body.
        len: usize,
        /// `Transfer-Encoding: chunked` instead of `Content-Length`.
        chunked: bool,
    },
}

impl Body {
    /// The body's bytes (a [`Body::Filler`] generated, unframed).
    pub fn to_bytes(self) -> Vec<u8> {
        match self {
            Self::Json(text) => text.as_bytes().to_vec(),
            Self::Bytes(bytes) => bytes.to_vec(),
            Self::Filler { len, .. } => vec![b' '; len],
        }
    }
}

/// Triggers that are not an HTTP answer. Each consumer provokes them its
/// own way; the doc says what the example's expectation assumes. Those about
/// the upstream's answer concern the example's first upstream call: the
/// submit call for `SubmitKtp` and `ExtractKtp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provoke {
    /// A request whose `reference_id` is this text.
    ReferenceId(&'static str),
    /// A request whose `reference_id` is this many `R`s.
    LongReferenceId(usize),
    /// A request message whose `reference_id` (field 1) holds these bytes,
    /// which are not UTF-8.
    ReferenceIdBytes(&'static [u8]),
    /// A request message whose field 1 has the wrong wire type (a fixed64),
    /// so it does not decode as `GetKtpResultRequest`.
    WrongWireType,
    /// A request that says its message is compressed with `gzip`, which the
    /// gateway does not accept.
    UnsupportedCompression,
    /// A Connect JSON request (only that protocol can carry it) with a
    /// member of this name, which the message has no field for.
    JsonUnknownMember(&'static str),
    /// A Connect JSON request whose field of this proto name holds a value
    /// of the wrong kind (a string for `wait`).
    JsonWrongKind(&'static str),
    /// `auth.tokens_file` is set and the call carries no bearer token.
    BearerTokenMissing,
    /// `auth.tokens_file` is set and the call's bearer token is not in it.
    BearerTokenInvalid,
    /// `server.max_in_flight` is 1 and one call is in flight.
    Overloaded,
    /// The shared (coalesced) request of the call panics: a gateway bug no
    /// request can cause, so only the mapping's own tests play it.
    SharedRequestLost,
    /// `upstream.max_connections` is 1, `upstream.timeout` short, and one
    /// upstream request holds the slot past it (its upstream answers late).
    UpstreamSaturated,
    /// The call's `grpc-timeout` runs out while the upstream is still
    /// working on the answer (one attempt, which the gateway abandons).
    CallerDeadline,
    /// The circuit breaker is open: earlier attempts kept failing.
    CircuitOpen,
    /// The upstream answers later than `upstream.timeout` (or never).
    UpstreamTimeout,
    /// Nothing listens on the upstream's port.
    ConnectionRefused,
    /// The upstream reads the request and closes the connection without a
    /// word.
    ConnectionClosed,
    /// A 200 head announcing more body than comes, then a clean close.
    CutMidBody,
    /// A 200 head announcing more body than comes, then a TCP reset.
    ResetMidBody,
    /// An image RPC whose image is this instead of a valid one.
    Image(ImageCase),
    /// `GetKtpResult` with `wait`: every poll answers 404
    /// `INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND`, and the wait ends after the
    /// first (`wait.max_wait` shorter than `wait.poll_interval`).
    WaitEnds,
    /// `ExtractKtp`: the submit is accepted, then as [`Provoke::WaitEnds`].
    ResultNotReady,
    /// `GetKtpResult` with `wait`: the result call answers later than
    /// `wait.max_wait`, so no poll answers before the wait ends.
    NoAnswerInWait,
    /// The request headers and the first bytes of the message are sent,
    /// then nothing, past `server.request_read_timeout` (set short).
    StalledBody,
    /// A call waits for a job that does not finish, and the server begins
    /// its shutdown (a short `server.drain_delay`).
    ShutdownWhileWaiting,
    /// `submit.max_in_flight` is 1 and one image-carrying call is in flight
    /// (`server.max_in_flight` at its default).
    ImageCallsOverloaded,
    /// A request whose `read_mask` holds these paths.
    ReadMask(&'static [&'static str]),
    /// `auth.tokens_file` gives the call's token the line
    /// `<token> caller=table fields=nik,full_name`, and the call's
    /// `read_mask` names `address`.
    FieldNotAllowed,
    /// An image RPC whose message is over `submit.max_image_bytes` + 16 KiB
    /// (the default settings): an image of
    /// [`ImageCase::OVER_MESSAGE_LIMIT`] bytes.
    OversizedImageMessage,
}

/// An image an image RPC sends instead of a valid one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageCase {
    /// Neither `image` nor `image_url`.
    Missing,
    /// `image` with no bytes.
    Empty,
    /// A valid 720×480 PNG padded to one byte over `submit.max_image_bytes`.
    OverLimit,
    /// `image` holding these bytes.
    Bytes(&'static [u8]),
    /// A PNG of this many pixels across and down.
    Png(u32, u32),
    /// A JPEG of this many pixels across and down.
    Jpeg(u16, u16),
    /// `image_url` holding this text.
    Url(&'static str),
    /// `image_url` holding `https://example.com/` and as many `a`s as make
    /// it this long.
    LongUrl(usize),
}

impl ImageCase {
    /// The image size (bytes) of [`Provoke::OversizedImageMessage`]: one
    /// byte over the default `submit.max_image_bytes` plus 16 KiB.
    pub const OVER_MESSAGE_LIMIT: usize = 5_000_000 + 16 * 1024 + 1;

    /// What the request carries, for a gateway whose
    /// `submit.max_image_bytes` is `max_image_bytes`.
    pub fn source(self, max_image_bytes: usize) -> ImageSource {
        match self {
            Self::Missing => ImageSource::None,
            Self::Empty => ImageSource::File(Vec::new()),
            Self::OverLimit => {
                ImageSource::File(images::padded(images::valid(), max_image_bytes + 1))
            }
            Self::Bytes(b) => ImageSource::File(b.to_vec()),
            Self::Png(w, h) => ImageSource::File(images::png(w, h)),
            Self::Jpeg(w, h) => ImageSource::File(images::jpeg(w, h)),
            Self::Url(u) => ImageSource::Url(u.to_owned()),
            Self::LongUrl(len) => {
                let head = "https://example.com/";
                ImageSource::Url(format!(
                    "{head}{}",
                    "a".repeat(len.saturating_sub(head.len()))
                ))
            }
        }
    }
}

/// What the caller must get.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// The gRPC code, by its canonical name (`"OK"`, `"NOT_FOUND"`).
    pub code: &'static str,
    /// The error's details; `None` exactly when the code is `"OK"`.
    pub error: Option<Failure>,
    /// Requests the upstream receives for one call, with the default retry
    /// settings (0: no upstream call, or none that reached it).
    pub attempts: u32,
}

/// The details of an error answer.
#[derive(Debug, Clone, Copy)]
pub struct Failure {
    /// `ErrorInfo.reason`, exactly (for reasons the upstream gave, the
    /// example's `error_code`).
    pub reason: &'static str,
    /// `ErrorInfo.domain`.
    pub domain: Domain,
    /// `ErrorInfo.metadata` keys checked; keys not listed are not checked.
    pub metadata: &'static [(&'static str, Meta)],
    /// The detail beside `ErrorInfo` and `RequestInfo`.
    pub detail: Detail,
}

/// An expectation on one `ErrorInfo.metadata` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    /// The key holds exactly this value.
    Is(&'static str),
    /// The key holds the call's reference id.
    ReferenceId,
    /// The key holds a whole number (a duration in milliseconds, say).
    Number,
    /// The key is absent.
    Absent,
}

impl Expect {
    /// A success after `attempts` upstream requests.
    pub const fn ok(attempts: u32) -> Self {
        Self {
            code: "OK",
            error: None,
            attempts,
        }
    }

    /// An error with this code, reason and domain, no metadata checked, no
    /// detail, after one upstream request.
    pub const fn error(code: &'static str, reason: &'static str, domain: Domain) -> Self {
        Self {
            code,
            error: Some(Failure {
                reason,
                domain,
                metadata: &[],
                detail: Detail::None,
            }),
            attempts: 1,
        }
    }

    /// The same, with these metadata expectations.
    pub const fn meta(mut self, metadata: &'static [(&'static str, Meta)]) -> Self {
        if let Some(f) = &mut self.error {
            f.metadata = metadata;
        }
        self
    }

    /// The same, with this detail.
    pub const fn detail(mut self, detail: Detail) -> Self {
        if let Some(f) = &mut self.error {
            f.detail = detail;
        }
        self
    }

    /// The same, after `attempts` upstream requests.
    pub const fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }
}

/// The entry named `name`; panics if there is none.
pub fn entry(name: &str) -> &'static Entry {
    TABLE
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no error table entry {name:?}"))
}

/// The example `example` of the entry `entry`; panics if there is none.
pub fn example(entry_name: &str, example: &str) -> &'static Example {
    entry(entry_name).example(example)
}

impl Entry {
    /// The example named `name`; panics if there is none.
    pub fn example(&self, name: &str) -> &'static Example {
        self.examples
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no example {name:?} in error table entry {:?}", self.name))
    }

    /// Whether an HTTP answer of the result call with `status` can land on
    /// this entry.
    pub fn answers(&self, status: u16) -> bool {
        self.answers_call(UpstreamCall::Result, status)
    }

    /// Whether an HTTP answer of `call` with `status` can land on this entry.
    pub fn answers_call(&self, call: UpstreamCall, status: u16) -> bool {
        self.statuses_of(call).iter().any(|s| match *s {
            HttpStatus::Exact(x) => x == status,
            HttpStatus::Range(from, to) => (from..=to).contains(&status),
            HttpStatus::Other => !named_status(call, status),
        })
    }

    /// The statuses of `call` this entry answers.
    pub const fn statuses_of(&self, call: UpstreamCall) -> &'static [HttpStatus] {
        match call {
            UpstreamCall::Result => self.statuses,
            UpstreamCall::Submit => self.submit_statuses,
        }
    }
}

/// Whether some entry names `status` of `call` with `Exact` or `Range`.
fn named_status(call: UpstreamCall, status: u16) -> bool {
    TABLE
        .iter()
        .flat_map(|e| e.statuses_of(call))
        .any(|s| match *s {
            HttpStatus::Exact(x) => x == status,
            HttpStatus::Range(from, to) => (from..=to).contains(&status),
            HttpStatus::Other => false,
        })
}
