//! A waiting call's future: its size is held for the whole wait, thousands
//! of times over (`bench/README.md`, "waiting calls").

use super::*;

fn api() -> KtpApi {
    let settings = crate::config::Settings::default();
    let metrics = crate::metrics::Metrics::new().unwrap();
    let upstream = Upstream::new(&settings.upstream, &settings.wait, metrics).unwrap();
    KtpApi::new(
        upstream,
        Limits {
            max_image_bytes: 1024,
            max_wait: Duration::from_secs(30),
            waiting: InFlightLimit::new(10),
        },
    )
}

/// The boxed future tonic holds for a waiting call is sized by the wait,
/// not by the request, a fetch or a submit (2.2-2.8 KiB before they were
/// kept out of it; about 0.85-1 KiB in a debug build with the wait's own
/// timer and shutdown signal, 536 bytes since the scheduler and the polls
/// pass those on).
#[tokio::test]
async fn a_waiting_calls_future_holds_the_wait_and_little_else() {
    let api = api();
    let get = Request::new(GetKtpResultRequest {
        reference_id: "job".to_owned(),
        wait: true,
        read_mask: None,
    });
    let waiting = KtpService::get_ktp_result(&api, get);
    let size = std::mem::size_of_val(&*waiting);
    assert!(size <= 640, "GetKtpResult's future: {size} bytes");
    let extract = KtpService::extract_ktp(&api, Request::new(ExtractKtpRequest::default()));
    let size = std::mem::size_of_val(&*extract);
    assert!(size <= 1280, "ExtractKtp's future: {size} bytes");
}

/// Every call's `Call` lives as long as the call: with its reference
/// count, it fits jemalloc's 256-byte class.
#[test]
fn a_calls_state_fits_256_bytes() {
    let size = std::mem::size_of::<Call>() + 2 * std::mem::size_of::<usize>();
    assert!(size <= 256, "Arc<Call>: {size} bytes");
}
