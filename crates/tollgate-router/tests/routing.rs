//! Retries, fallbacks, cooldowns and streams end to end: the router over the real transport,
//! against a scripted mock upstream on 127.0.0.1. Time that matters (cooldowns, backoff) is a
//! `ManualClock` and a `RecordingSleeper`: no test waits for a backoff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use support::{Mock, Reply};
use tollgate_core::{ChatRequest, ErrorKind, Message, TimeoutPhase};
use tollgate_router::{
    FailureReason, ManualClock, ModelFacts, RecordingSleeper, RequestOptions, Router, RouterConfig,
    StaticCatalog,
};

const T0: Duration = Duration::from_secs(1_700_000_000);

struct Env {
    mock: Mock,
    router: Router,
    clock: ManualClock,
    sleeper: RecordingSleeper,
}

/// `deps`: (group, name, extra litellm_params). Each deployment calls `mock.base(name)`.
async fn env(deps: &[(&str, &str, Value)], settings: Value) -> Env {
    env_with(deps, settings, StaticCatalog::new()).await
}

async fn env_with(deps: &[(&str, &str, Value)], settings: Value, catalog: StaticCatalog) -> Env {
    let mock = Mock::start().await;
    let list: Vec<Value> = deps
        .iter()
        .map(|(group, name, extra)| {
            let mut p = json!({"model": format!("test/{name}-model"), "api_base": mock.base(name)});
            for (k, v) in extra.as_object().unwrap() {
                p[k] = v.clone();
            }
            let mut d = json!({"model_name": group, "litellm_params": p});
            d["model_info"] = json!({"id": name});
            d
        })
        .collect();
    let mut s = json!({"retry_backoff_base": 0.5, "retry_backoff_max": 4});
    for (k, v) in settings.as_object().unwrap() {
        s[k] = v.clone();
    }
    let cfg: RouterConfig =
        serde_json::from_value(json!({"model_list": list, "router_settings": s})).unwrap();
    let clock = ManualClock::new(T0);
    let sleeper = RecordingSleeper::advancing(clock.clone());
    let router = Router::builder(cfg)
        .resolver(support::resolver)
        .clock(Arc::new(clock.clone()))
        .sleeper(Arc::new(sleeper.clone()))
        .catalog(Arc::new(catalog))
        .build()
        .unwrap();
    Env { mock, router, clock, sleeper }
}

fn req(model: &str) -> ChatRequest {
    ChatRequest::new(model, vec![Message::user("hi")])
}

fn no_opts() -> RequestOptions {
    RequestOptions::default()
}

fn ids(attempts: &[tollgate_router::Attempt]) -> Vec<String> {
    attempts.iter().map(|a| a.deployment_id.to_string()).collect()
}

#[tokio::test]
async fn success_reports_the_route_and_updates_state() {
    let e = env(&[("g", "a", json!({}))], json!({})).await;
    e.mock.always("a", Reply::ok("from a"));
    let r = e.router.chat(&req("g"), &no_opts()).await.unwrap();
    assert_eq!(r.response.first_text(), Some("from a"));
    assert_eq!((&*r.route.group, &*r.route.deployment_id, &*r.route.model), ("g", "a", "test/a-model"));
    assert_eq!(r.route.attempts.len(), 1);
    assert!(r.route.attempts[0].error.is_none());
    assert_eq!(r.route.fallbacks, 0);
    // The upstream got the provider's model name, not the group name.
    assert_eq!(e.mock.models("a"), vec!["a-model"]);
    let load = e.router.deployment_load("a").unwrap();
    assert_eq!((load.in_flight, load.rpm_used, load.tpm_used), (0, 1, 15));
}

#[tokio::test]
async fn retries_go_to_another_deployment_with_bounded_backoff() {
    let e =
        env(&[("g", "a", json!({"order": 1})), ("g", "b", json!({"order": 2}))], json!({"num_retries": 2}))
            .await;
    e.mock.always("a", Reply::error(500, "boom", "internal error"));
    e.mock.always("b", Reply::ok("from b"));
    let r = e.router.chat(&req("g"), &no_opts()).await.unwrap();
    assert_eq!(&*r.route.deployment_id, "b");
    assert_eq!(ids(&r.route.attempts), ["a", "b"]);
    let first = r.route.attempts[0].error.as_ref().unwrap();
    assert_eq!((first.kind, first.status), (ErrorKind::ServerError, Some(500)));
    let delays = e.sleeper.delays();
    assert!(delays.len() <= 1 && delays.iter().all(|d| *d <= Duration::from_millis(500)), "{delays:?}");
}

#[tokio::test]
async fn retry_count_and_backoff_bounds_then_every_attempt_reported() {
    let e = env(&[("g", "a", json!({}))], json!({"num_retries": 4, "allowed_fails": 100})).await;
    e.mock.always("a", Reply::error(503, "overloaded", "try later"));
    let err = e.router.chat(&req("g"), &no_opts()).await.unwrap_err();
    assert_eq!(e.mock.hits("a"), 5, "1 call + 4 retries");
    assert_eq!((err.kind(), err.reason), (ErrorKind::Overloaded, FailureReason::AttemptsFailed));
    assert_eq!(err.attempt_errors().count(), 5);
    // Full jitter: retry n waits at most min(0.5 s · 2ⁿ, 4 s).
    let delays = e.sleeper.delays();
    assert!(delays.len() <= 4);
    for (n, d) in delays.iter().enumerate() {
        let cap = Duration::from_millis(500 * (1 << n)).min(Duration::from_secs(4));
        assert!(*d <= cap, "retry {n}: {d:?} > {cap:?}");
    }
    // Over many requests the jitter really spreads (not a constant).
    let e2 = env(&[("g", "a", json!({}))], json!({"num_retries": 1, "allowed_fails": 1000})).await;
    e2.mock.always("a", Reply::error(500, "x", "x"));
    for _ in 0..20 {
        let _ = e2.router.chat(&req("g"), &no_opts()).await;
    }
    let d = e2.sleeper.delays();
    assert!(d.len() >= 15 && d.iter().all(|d| *d <= Duration::from_millis(500)));
    assert!(d.iter().any(|x| *x != d[0]), "{d:?}");
    let msg = err.clone().into_provider_error().message;
    assert!(msg.contains("5 attempts"), "{msg}");
}

#[tokio::test]
async fn request_errors_are_never_retried_nor_fallen_back_from() {
    let e = env(
        &[("g", "a", json!({})), ("f", "fb", json!({}))],
        json!({"num_retries": 3, "fallbacks": [{"g": ["f"]}]}),
    )
    .await;
    e.mock.always("a", Reply::error(400, "invalid_request", "bad temperature"));
    e.mock.always("fb", Reply::ok("fb"));
    let err = e.router.chat(&req("g"), &no_opts()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadRequest);
    assert_eq!((e.mock.hits("a"), e.mock.hits("fb")), (1, 0));
    assert!(e.sleeper.delays().is_empty());
    // Client errors never cool a deployment down.
    let e = env(&[("g", "a", json!({}))], json!({"allowed_fails": 0})).await;
    e.mock.always("a", Reply::error(400, "invalid_request", "bad"));
    for _ in 0..3 {
        let _ = e.router.chat(&req("g"), &no_opts()).await;
    }
    assert!(!e.router.is_cooling_down("a"));
    assert_eq!(e.mock.hits("a"), 3);
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_the_cap() {
    let e = env(&[("g", "a", json!({}))], json!({"num_retries": 2, "max_retry_after": 10})).await;
    e.mock.script(
        "a",
        vec![
            Reply::error(429, "rate_limit_exceeded", "slow down").with_header("retry-after", "7"),
            Reply::error(429, "rate_limit_exceeded", "slow down").with_header("retry-after", "120"),
        ],
    );
    e.mock.always("a", Reply::ok("finally"));
    let r = e.router.chat(&req("g"), &no_opts()).await.unwrap();
    assert_eq!(r.response.first_text(), Some("finally"));
    let d = e.sleeper.delays();
    assert_eq!(d.len(), 2);
    assert!(d[0] >= Duration::from_secs(7) && d[0] < Duration::from_secs(8), "{d:?}");
    assert_eq!(d[1], Duration::from_secs(10), "capped");
    assert_eq!(r.route.attempts[0].error.as_ref().unwrap().retry_after, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn generic_fallback_answers_after_retries() {
    let e = env(
        &[("g", "a", json!({})), ("f", "fb", json!({}))],
        json!({"num_retries": 1, "fallbacks": [{"g": ["missing", "f"]}], "allowed_fails": 100}),
    )
    .await;
    e.mock.always("a", Reply::error(502, "bad_gateway", "upstream down"));
    e.mock.always("fb", Reply::ok("from fallback"));
    let r = e.router.chat(&req("g"), &no_opts()).await.unwrap();
    assert_eq!(r.response.first_text(), Some("from fallback"));
    assert_eq!((&*r.route.group, r.route.fallbacks, r.route.requested.as_str()), ("f", 1, "g"));
    assert_eq!(ids(&r.route.attempts), ["a", "a", "fb"]);
    // disable_fallbacks stops at the group.
    let err =
        e.router.chat(&req("g"), &RequestOptions { disable_fallbacks: true, ..no_opts() }).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ServerError);
}

#[tokio::test]
async fn default_fallbacks_apply_to_groups_without_their_own() {
    let e = env(
        &[("g", "a", json!({})), ("d", "dflt", json!({}))],
        json!({"num_retries": 0, "default_fallbacks": ["d"]}),
    )
    .await;
    e.mock.always("a", Reply::error(500, "x", "down"));
    e.mock.always("dflt", Reply::ok("default"));
    let r = e.router.chat(&req("g"), &no_opts()).await.unwrap();
    assert_eq!(&*r.route.group, "d");
}

#[tokio::test]
async fn context_window_error_uses_context_window_fallbacks() {
    let e = env(
        &[("small", "s", json!({})), ("big", "b", json!({})), ("other", "o", json!({}))],
        json!({"context_window_fallbacks": [{"small": ["big"]}], "fallbacks": [{"small": ["other"]}]}),
    )
    .await;
    e.mock.always(
        "s",
        Reply::error(400, "context_length_exceeded", "This model's maximum context length is 8192 tokens"),
    );
    e.mock.always("b", Reply::ok("big window"));
    e.mock.always("o", Reply::ok("other"));
    let r = e.router.chat(&req("small"), &no_opts()).await.unwrap();
    assert_eq!(&*r.route.group, "big");
    assert_eq!((e.mock.hits("s"), e.mock.hits("o")), (1, 0), "not retried; generic list unused");
    assert_eq!(r.route.attempts[0].error.as_ref().unwrap().kind, ErrorKind::ContextWindowExceeded);
}

#[tokio::test]
async fn pre_call_check_skips_small_windows_or_goes_straight_to_the_fallback() {
    let catalog = StaticCatalog::new()
        .with("test/tiny-model", ModelFacts { context_window: Some(50), ..ModelFacts::default() })
        .with("test/large-model", ModelFacts { context_window: Some(100_000), ..ModelFacts::default() });
    let e = env_with(
        &[("g", "tiny", json!({})), ("g", "large", json!({}))],
        json!({"enable_pre_call_checks": true}),
        catalog,
    )
    .await;
    e.mock.always("tiny", Reply::ok("tiny"));
    e.mock.always("large", Reply::ok("large"));
    let long = ChatRequest::new("g", vec![Message::user("word ".repeat(200))]);
    for _ in 0..10 {
        let r = e.router.chat(&long, &no_opts()).await.unwrap();
        assert_eq!(&*r.route.deployment_id, "large");
    }
    assert_eq!(e.mock.hits("tiny"), 0);

    let mock = Mock::start().await;
    let cfg: RouterConfig = serde_json::from_value(json!({
        "model_list": [
            {"model_name": "small", "litellm_params": {"model": "test/s", "api_base": mock.base("s")},
             "model_info": {"id": "s", "max_input_tokens": 100}},
            {"model_name": "big", "litellm_params": {"model": "test/b", "api_base": mock.base("b")},
             "model_info": {"id": "b", "max_input_tokens": 100000}}
        ],
        "router_settings": {"enable_pre_call_checks": true, "context_window_fallbacks": [{"small": ["big"]}]}
    }))
    .unwrap();
    let router = Router::builder(cfg)
        .resolver(support::resolver)
        .catalog(Arc::new(StaticCatalog::new()))
        .build()
        .unwrap();
    mock.always("b", Reply::ok("big"));
    let mut long = long.clone();
    long.model = "small".into();
    let r = router.chat(&long, &no_opts()).await.unwrap();
    assert_eq!((&*r.route.group, r.route.fallbacks), ("big", 1));
    assert_eq!(mock.hits("s"), 0, "never called");
    assert_eq!(ids(&r.route.attempts), ["b"]);
    // Without a fallback the pre-call check fails the request before any call.
    let err = router.chat(&long, &RequestOptions { disable_fallbacks: true, ..no_opts() }).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.reason),
        (ErrorKind::ContextWindowExceeded, FailureReason::NoEligibleDeployment)
    );
    assert!(err.attempts.is_empty());
}

#[tokio::test]
async fn content_policy_fallbacks() {
    let e = env(
        &[("g", "a", json!({})), ("lenient", "l", json!({}))],
        json!({"num_retries": 3, "content_policy_fallbacks": [{"g": ["lenient"]}]}),
    )
    .await;
    e.mock.always("a", Reply::error(400, "content_filter", "flagged by the safety system"));
    e.mock.always("l", Reply::ok("lenient"));
    let r = e.router.chat(&req("g"), &no_opts()).await.unwrap();
    assert_eq!(&*r.route.group, "lenient");
    assert_eq!(e.mock.hits("a"), 1, "content filter errors are not retried");
    assert_eq!(r.route.attempts[0].error.as_ref().unwrap().kind, ErrorKind::ContentFiltered);
}

#[tokio::test]
async fn max_fallbacks_limits_the_chain() {
    let e = env(
        &[("g", "a", json!({})), ("f1", "f1", json!({})), ("f2", "f2", json!({})), ("f3", "f3", json!({}))],
        json!({"num_retries": 0, "max_fallbacks": 2, "fallbacks": [{"g": ["f1", "f2", "f3"]}]}),
    )
    .await;
    for n in ["a", "f1", "f2"] {
        e.mock.always(n, Reply::error(500, "x", &format!("{n} down")));
    }
    e.mock.always("f3", Reply::ok("f3"));
    let err = e.router.chat(&req("g"), &no_opts()).await.unwrap_err();
    assert_eq!(ids(&err.attempts), ["a", "f1", "f2"]);
    assert_eq!(e.mock.hits("f3"), 0);
    assert_eq!(err.error.message, "f2 down", "the last error is the one reported");
}

#[tokio::test]
async fn all_deployments_failed_carries_every_attempt_error() {
    let e = env(
        &[("g", "a", json!({})), ("g", "b", json!({})), ("g", "c", json!({}))],
        json!({"num_retries": 2, "allowed_fails": 100}),
    )
    .await;
    e.mock.always("a", Reply::error(500, "x", "a is broken"));
    e.mock.always("b", Reply::error(503, "x", "b is overloaded"));
    e.mock.always("c", Reply::error(429, "x", "c is rate limited"));
    let err = e.router.chat(&req("g"), &no_opts()).await.unwrap_err();
    assert_eq!(err.reason, FailureReason::AttemptsFailed);
    let mut seen = ids(&err.attempts);
    seen.sort();
    assert_eq!(seen, ["a", "b", "c"], "each retry went to a different deployment");
    let mut kinds: Vec<(String, ErrorKind, String)> = err
        .attempts
        .iter()
        .map(|a| {
            let e = a.error.as_ref().unwrap();
            (a.deployment_id.to_string(), e.kind, e.message.clone())
        })
        .collect();
    kinds.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        kinds,
        vec![
            ("a".into(), ErrorKind::ServerError, "a is broken".into()),
            ("b".into(), ErrorKind::Overloaded, "b is overloaded".into()),
            ("c".into(), ErrorKind::RateLimited, "c is rate limited".into()),
        ]
    );
    let text = err.to_string();
    assert!(
        text.contains("a is broken")
            && text.contains("b is overloaded")
            && text.contains("c is rate limited")
    );
}

#[tokio::test]
async fn cooldown_entry_and_exit() {
    let e = env(
        &[("g", "a", json!({"order": 1})), ("g", "b", json!({"order": 2}))],
        json!({"num_retries": 1, "allowed_fails": 1, "cooldown_time": 30, "retry_backoff_base": 0}),
    )
    .await;
    e.mock.always("a", Reply::error(500, "x", "a down"));
    e.mock.always("b", Reply::ok("b"));
    // First failure: allowed. Second: a cools down for 30 s.
    for n in 1..=2 {
        let r = e.router.chat(&req("g"), &no_opts()).await.unwrap();
        assert_eq!(ids(&r.route.attempts), ["a", "b"]);
        assert_eq!(e.router.is_cooling_down("a"), n == 2);
    }
    // Out of rotation: requests go straight to b.
    for _ in 0..3 {
        let r = e.router.chat(&req("g"), &no_opts()).await.unwrap();
        assert_eq!(ids(&r.route.attempts), ["b"]);
    }
    assert_eq!(e.mock.hits("a"), 2);
    e.clock.advance(Duration::from_secs(29));
    assert!(e.router.is_cooling_down("a"));
    e.clock.advance(Duration::from_secs(1));
    assert!(!e.router.is_cooling_down("a"));
    // Back in rotation (and a healthy a answers again).
    e.mock.script("a", vec![Reply::ok("a is back")]);
    let r = e.router.chat(&req("g"), &no_opts()).await.unwrap();
    assert_eq!(r.response.first_text(), Some("a is back"));
}

#[tokio::test]
async fn when_every_deployment_is_cooling_the_error_says_so() {
    let e = env(
        &[("g", "a", json!({})), ("g", "b", json!({}))],
        json!({"num_retries": 1, "allowed_fails": 0, "cooldown_time": 20, "retry_backoff_base": 0}),
    )
    .await;
    e.mock.always("a", Reply::error(500, "x", "a down"));
    e.mock.always("b", Reply::error(500, "x", "b down"));
    let err = e.router.chat(&req("g"), &no_opts()).await.unwrap_err();
    assert_eq!(err.reason, FailureReason::AttemptsFailed);
    assert_eq!(err.attempts.len(), 2);
    e.clock.advance(Duration::from_secs(5));
    let err = e.router.chat(&req("g"), &no_opts()).await.unwrap_err();
    assert_eq!((err.kind(), err.reason), (ErrorKind::Overloaded, FailureReason::AllUnavailable));
    assert!(err.attempts.is_empty());
    let wait = err.error.retry_after.unwrap();
    assert_eq!(wait, Duration::from_secs(15), "the soonest return");
    assert_eq!((e.mock.hits("a"), e.mock.hits("b")), (1, 1));
}

#[tokio::test]
async fn deployment_specific_errors_move_to_another_deployment() {
    let e = env(&[("g", "a", json!({"order": 1})), ("g", "b", json!({"order": 2}))], json!({})).await;
    e.mock.always("a", Reply::error(401, "invalid_api_key", "bad key"));
    e.mock.always("b", Reply::ok("b"));
    let r = e.router.chat(&req("g"), &no_opts()).await.unwrap();
    assert_eq!(ids(&r.route.attempts), ["a", "b"]);
    assert!(e.sleeper.delays().is_empty(), "no backoff for a switch");
    // With nowhere else to go, an authentication error is not retried.
    let e = env(&[("g", "a", json!({}))], json!({"num_retries": 3})).await;
    e.mock.always("a", Reply::error(401, "invalid_api_key", "bad key"));
    let err = e.router.chat(&req("g"), &no_opts()).await.unwrap_err();
    assert_eq!((err.kind(), e.mock.hits("a")), (ErrorKind::Authentication, 1));
}

#[tokio::test]
async fn stalled_stream_falls_back_before_the_first_byte() {
    let e = env(
        &[("g", "stall", json!({"stream_timeout": 0.2})), ("f", "fb", json!({}))],
        json!({"num_retries": 0, "fallbacks": [{"g": ["f"]}]}),
    )
    .await;
    e.mock.always("stall", Reply::Stall);
    e.mock.always("fb", Reply::stream(&["Hel", "lo"]));
    let r = e.router.chat_stream(&req("g"), &no_opts()).await.unwrap();
    assert_eq!(&*r.route.group, "f");
    let first = r.route.attempts[0].error.as_ref().unwrap();
    assert_eq!(first.kind, ErrorKind::Timeout(TimeoutPhase::FirstToken));
    let chunks: Vec<_> = r.response.collect().await;
    let text: String = chunks
        .iter()
        .map(|c| c.as_ref().unwrap().choices[0].delta.content.clone().unwrap_or_default())
        .collect();
    assert_eq!(text, "Hello");
    assert_eq!(e.router.deployment_load("fb").unwrap().in_flight, 0);
    assert_eq!(e.router.deployment_load("stall").unwrap().in_flight, 0);
}

#[tokio::test]
async fn a_stream_cut_after_the_first_chunk_ends_with_one_error() {
    let e = env(&[("g", "a", json!({}))], json!({})).await;
    e.mock.always("a", Reply::SseCut(vec![support::chunk("partial")]));
    let r = e.router.chat_stream(&req("g"), &no_opts()).await.unwrap();
    assert_eq!(e.router.deployment_load("a").unwrap().in_flight, 1, "held while streaming");
    let items: Vec<_> = r.response.collect().await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[0].is_ok());
    assert_eq!(items[1].as_ref().unwrap_err().kind, ErrorKind::Decode);
    assert_eq!(e.router.deployment_load("a").unwrap().in_flight, 0);
    assert_eq!(e.mock.hits("a"), 1, "no retry once committed");
}

#[tokio::test]
async fn streams_retry_before_the_first_byte() {
    let e = env(&[("g", "a", json!({}))], json!({"num_retries": 2})).await;
    e.mock.script("a", vec![Reply::error(503, "x", "busy")]);
    e.mock.always("a", Reply::stream(&["ok"]));
    let r = e.router.chat_stream(&req("g"), &no_opts()).await.unwrap();
    assert_eq!(r.route.attempts.len(), 2);
    let items: Vec<_> = r.response.collect().await;
    assert_eq!(items.len(), 1);
}

#[tokio::test]
async fn wildcard_groups_pass_the_model_through() {
    let mock = Mock::start().await;
    let cfg: RouterConfig = serde_json::from_value(json!({
        "model_list": [{"model_name": "test/*", "litellm_params": {"model": "test/*", "api_base": mock.base("w")}}]
    }))
    .unwrap();
    let router = Router::builder(cfg).resolver(support::resolver).build().unwrap();
    mock.always("w", Reply::ok("wild"));
    let r = router.chat(&req("test/some-model-v2"), &no_opts()).await.unwrap();
    assert_eq!(&*r.route.model, "test/some-model-v2");
    assert_eq!(mock.models("w"), vec!["some-model-v2"]);
}

#[tokio::test]
async fn unknown_model_is_not_found() {
    let e = env(&[("g", "a", json!({}))], json!({})).await;
    let err = e.router.chat(&req("nope"), &no_opts()).await.unwrap_err();
    assert_eq!((err.kind(), err.reason), (ErrorKind::NotFound, FailureReason::UnknownModel));
}

#[tokio::test]
async fn request_tags_come_from_metadata() {
    let mut r = req("g");
    r.metadata = Some(serde_json::from_value(json!({"tags": ["eu", 3, "paid"]})).unwrap());
    assert_eq!(RequestOptions::from_chat(&r).tags, vec!["eu", "paid"]);
}

#[tokio::test]
async fn stream_usage_counts_against_tpm() {
    let e = env(&[("g", "a", json!({}))], json!({})).await;
    let usage = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
        "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}
    })
    .to_string();
    e.mock.always("a", Reply::Sse(vec![support::chunk("x"), usage]));
    let r = e.router.chat_stream(&req("g"), &no_opts()).await.unwrap();
    assert_eq!(r.response.collect::<Vec<_>>().await.len(), 2);
    let load = e.router.deployment_load("a").unwrap();
    assert_eq!((load.tpm_used, load.rpm_used, load.in_flight), (27, 1, 0));
}

/// The routed futures can be spawned (the proxy runs them on a multi-threaded runtime).
#[tokio::test]
async fn routed_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let e = env(&[("g", "a", json!({}))], json!({})).await;
    e.mock.always("a", Reply::ok("spawned"));
    let router = e.router.clone();
    let handle = tokio::spawn(async move {
        let r = req("g");
        let opts = RequestOptions::default();
        let fut = router.chat(&r, &opts);
        assert_send(&fut);
        fut.await.map(|r| r.response.first_text().map(str::to_owned))
    });
    assert_eq!(handle.await.unwrap().unwrap().as_deref(), Some("spawned"));
    let router = e.router.clone();
    let s = tokio::spawn(async move {
        let r = req("g");
        let opts = RequestOptions::default();
        let fut = router.chat_stream(&r, &opts);
        assert_send(&fut);
        fut.await.is_err()
    });
    assert!(s.await.unwrap(), "the mock answers JSON, not a stream");
}

#[tokio::test]
async fn total_timeout_is_retried_on_another_deployment() {
    let e = env(
        &[("g", "slow", json!({"order": 1, "timeout": 0.2})), ("g", "fast", json!({"order": 2}))],
        json!({"num_retries": 1}),
    )
    .await;
    e.mock.always("slow", Reply::Stall);
    e.mock.always("fast", Reply::ok("fast"));
    let r = e.router.chat(&req("g"), &no_opts()).await.unwrap();
    assert_eq!(ids(&r.route.attempts), ["slow", "fast"]);
    assert_eq!(r.route.attempts[0].error.as_ref().unwrap().kind, ErrorKind::Timeout(TimeoutPhase::Total));
    assert_eq!(e.router.deployment_load("slow").unwrap().in_flight, 0);
}
