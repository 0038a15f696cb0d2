//! What the gateway sends upstream.

use ktp_testkit::fake_upstream::Reply;
use serde_json::Value;

use ktp_gateway::config::ReferenceIdPlacement;

use crate::helpers::{API_KEY, APP_ID, TestApp, base_url, sample_success};

#[tokio::test]
async fn sends_get_with_credentials_accept_user_agent_and_id_in_query_and_body() {
    let app = TestApp::spawn().await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    app.call("ID_CHECK_123").await.expect("OK");
    let requests = app.upstream.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/ktp/id/extract-async/result");
    assert_eq!(r.header("app-id"), Some(APP_ID));
    assert_eq!(r.header("api-key"), Some(API_KEY));
    assert_eq!(r.header("accept"), Some("application/json"));
    assert_eq!(
        r.header("user-agent"),
        Some(concat!("ktp-gateway/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(r.query_value("reference_id"), Some("ID_CHECK_123"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&r.body).expect("JSON body");
    assert_eq!(body, serde_json::json!({"reference_id": "ID_CHECK_123"}));
}

#[tokio::test]
async fn reference_id_placement_is_configurable() {
    let app =
        TestApp::spawn_with(|s| s.upstream.reference_id_in = ReferenceIdPlacement::Query).await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    app.call("ONLY_QUERY").await.expect("OK");
    let r = &app.upstream.requests()[0];
    assert_eq!(r.query_value("reference_id"), Some("ONLY_QUERY"));
    assert!(r.body.is_empty(), "no body in query mode");

    let app =
        TestApp::spawn_with(|s| s.upstream.reference_id_in = ReferenceIdPlacement::Body).await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    app.call("ONLY_BODY").await.expect("OK");
    let r = &app.upstream.requests()[0];
    assert!(r.query.is_empty(), "no query in body mode");
    let body: Value = serde_json::from_slice(&r.body).expect("JSON body");
    assert_eq!(body["reference_id"], "ONLY_BODY");
}

#[tokio::test]
async fn reference_id_is_sent_exactly_and_safely_encoded() {
    let app = TestApp::spawn().await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    let id = r#"a b&c=d/é"?#"#;
    app.call(id).await.expect("OK");
    let r = &app.upstream.requests()[0];
    assert_eq!(r.path, "/ktp/id/extract-async/result");
    assert_eq!(r.query, vec![("reference_id".to_owned(), id.to_owned())]);
    let body: Value = serde_json::from_slice(&r.body).expect("JSON body");
    assert_eq!(body["reference_id"], id);
}

#[tokio::test]
async fn base_url_with_a_path_prefix_is_respected() {
    let upstream = ktp_testkit::fake_upstream::FakeUpstream::start().await;
    upstream.otherwise(Reply::Json(200, sample_success()));
    let base = format!("{}/prefix/", upstream.base_url());
    let app = TestApp::spawn_against(upstream, |s| s.upstream.base_url = base_url(&base)).await;
    app.call("P").await.expect("OK");
    assert_eq!(
        app.upstream.requests()[0].path,
        "/prefix/ktp/id/extract-async/result"
    );
}

#[tokio::test]
async fn connections_are_pooled_across_calls() {
    let app = TestApp::spawn().await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    for i in 0..20 {
        app.call(&format!("POOL_{i}")).await.expect("OK");
    }
    assert_eq!(app.upstream.requests().len(), 20);
    assert_eq!(
        app.upstream.connections(),
        1,
        "sequential calls reuse one connection"
    );
}

#[tokio::test]
async fn caller_request_id_is_echoed_and_used_in_details() {
    let app = TestApp::spawn().await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    let response = app
        .call_with("RID", |r| {
            r.metadata_mut()
                .insert("x-request-id", "caller-req-42".parse().unwrap());
        })
        .await
        .expect("OK");
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "caller-req-42"
    );

    let e = crate::helpers::expect_error(
        app.call_with("", |r| {
            r.metadata_mut()
                .insert("x-request-id", "caller-req-43".parse().unwrap());
        })
        .await,
    );
    assert_eq!(e.request_id(), "caller-req-43");
}

#[tokio::test]
async fn the_callers_w3c_trace_context_is_passed_upstream() {
    let app = TestApp::spawn().await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    app.call_with("TRACED", |r| {
        r.metadata_mut()
            .insert("traceparent", traceparent.parse().unwrap());
        r.metadata_mut()
            .insert("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
    })
    .await
    .expect("OK");
    app.call_with("BAD_TRACE", |r| {
        r.metadata_mut()
            .insert("traceparent", "not-a-traceparent".parse().unwrap());
    })
    .await
    .expect("OK");
    app.call("UNTRACED").await.expect("OK");
    let requests = app.upstream.requests();
    assert_eq!(requests[0].header("traceparent"), Some(traceparent));
    assert_eq!(requests[0].header("tracestate"), Some("congo=t61rcWkgMzE"));
    assert_eq!(
        requests[1].header("traceparent"),
        None,
        "malformed values are not passed on"
    );
    assert_eq!(requests[2].header("traceparent"), None);
}
