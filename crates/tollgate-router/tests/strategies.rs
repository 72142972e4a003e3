//! Deployment selection: each strategy's distribution, priority tiers, limits, cooldowns, tags
//! and context checks. No upstream calls: `Router::pick_deployment` makes the routing decision
//! a request would make, against state the test sets directly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_core::{ChatRequest, ErrorKind, Message};
use tollgate_router::{
    Clock, DeploymentRef, FailureReason, InMemoryState, ManualClock, RequestOptions, Router, RouterConfig,
    RouterState, StaticCatalog, rng,
};

const T0: Duration = Duration::from_secs(1_700_000_000);

struct Fixture {
    router: Router,
    state: Arc<InMemoryState>,
    clock: ManualClock,
    ids: Vec<String>,
}

impl Fixture {
    fn new(model_list: Value, settings: Value) -> Fixture {
        let cfg: RouterConfig =
            serde_json::from_value(json!({"model_list": model_list, "router_settings": settings})).unwrap();
        let ids = cfg
            .model_list
            .iter()
            .enumerate()
            .map(|(i, d)| d.model_info.id.clone().unwrap_or_else(|| format!("{}#{i}", d.model_name)))
            .collect();
        let state = Arc::new(InMemoryState::new());
        let clock = ManualClock::new(T0);
        let router = Router::builder(cfg)
            .resolver(support::resolver)
            .state(state.clone())
            .clock(Arc::new(clock.clone()))
            .catalog(Arc::new(StaticCatalog::new()))
            .build()
            .unwrap();
        Fixture { router, state, clock, ids }
    }

    fn slot(&self, id: &str) -> DeploymentRef<'_> {
        let slot = self.ids.iter().position(|i| i == id).unwrap();
        DeploymentRef { slot, id: &self.ids[slot] }
    }

    fn picks(&self, model: &str, n: usize, opts: &RequestOptions) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for _ in 0..n {
            let id = self.router.pick_deployment(model, opts).unwrap();
            *counts.entry(id.to_string()).or_insert(0) += 1;
        }
        counts
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

fn dep(group: &str, id: &str, extra: Value) -> Value {
    let mut params = json!({"model": format!("test/{id}"), "api_base": "http://127.0.0.1:9"});
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    json!({"model_name": group, "litellm_params": params, "model_info": {"id": id}})
}

fn share(counts: &HashMap<String, usize>, id: &str, n: usize) -> f64 {
    *counts.get(id).unwrap_or(&0) as f64 / n as f64
}

#[test]
fn simple_shuffle_honours_weights() {
    rng::seed(1);
    let f = Fixture::new(
        json!([
            dep("g", "a", json!({"weight": 1})),
            dep("g", "b", json!({"weight": 2})),
            dep("g", "c", json!({"weight": 7}))
        ]),
        json!({}),
    );
    let n = 20_000;
    let c = f.picks("g", n, &RequestOptions::default());
    for (id, want) in [("a", 0.1), ("b", 0.2), ("c", 0.7)] {
        let got = share(&c, id, n);
        assert!((got - want).abs() < 0.02, "{id}: {got} vs {want} ({c:?})");
    }
}

#[test]
fn simple_shuffle_falls_back_to_rpm_then_uniform() {
    rng::seed(2);
    let f = Fixture::new(
        json!([
            dep("g", "a", json!({"rpm": 100})),
            dep("g", "b", json!({"rpm": 300})),
            dep("u", "x", json!({})),
            dep("u", "y", json!({}))
        ]),
        json!({}),
    );
    let n = 20_000;
    let c = f.picks("g", n, &RequestOptions::default());
    assert!((share(&c, "a", n) - 0.25).abs() < 0.02, "{c:?}");
    let c = f.picks("u", n, &RequestOptions::default());
    assert!((share(&c, "x", n) - 0.5).abs() < 0.02, "{c:?}");
}

#[test]
fn least_busy_picks_fewest_in_flight_and_spreads_ties() {
    rng::seed(3);
    let f = Fixture::new(
        json!([dep("g", "a", json!({})), dep("g", "b", json!({})), dep("g", "c", json!({}))]),
        json!({"routing_strategy": "least-busy"}),
    );
    let now = f.now_ms();
    for _ in 0..3 {
        f.state.begin(f.slot("a"), now);
    }
    f.state.begin(f.slot("b"), now);
    let c = f.picks("g", 1000, &RequestOptions::default());
    assert_eq!(c.get("c"), Some(&1000), "{c:?}");
    f.state.begin(f.slot("c"), now);
    // b and c tie at one in flight.
    let c = f.picks("g", 4000, &RequestOptions::default());
    assert_eq!(c.get("a"), None);
    assert!((share(&c, "b", 4000) - 0.5).abs() < 0.05, "{c:?}");
}

#[test]
fn usage_based_picks_lowest_usage_and_skips_full_deployments() {
    rng::seed(4);
    let f = Fixture::new(
        json!([
            dep("g", "a", json!({"tpm": 1000, "rpm": 100})),
            dep("g", "b", json!({"tpm": 1000, "rpm": 2})),
            dep("g", "c", json!({"tpm": 1000, "rpm": 100}))
        ]),
        json!({"routing_strategy": "usage-based-routing-v2"}),
    );
    let now = f.now_ms();
    f.state.add_tokens(f.slot("a"), now, 500);
    f.state.add_tokens(f.slot("c"), now, 200);
    let c = f.picks("g", 500, &RequestOptions::default());
    assert_eq!(c.get("b"), Some(&500), "b has no usage: {c:?}");
    // b reaches its rpm: skipped although it has the fewest tokens.
    f.state.begin(f.slot("b"), now);
    f.state.begin(f.slot("b"), now);
    let c = f.picks("g", 500, &RequestOptions::default());
    assert_eq!(c.get("c"), Some(&500), "{c:?}");
    // c reaches its tpm: a is the only one left.
    f.state.add_tokens(f.slot("c"), now, 800);
    assert_eq!(&*f.router.pick_deployment("g", &RequestOptions::default()).unwrap(), "a");
    // a too: every deployment is full → RateLimited, retry at the next minute.
    f.state.add_tokens(f.slot("a"), now, 500);
    let e = f.router.pick_deployment("g", &RequestOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.reason, FailureReason::AllUnavailable);
    let wait = e.error.retry_after.unwrap();
    assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60), "{wait:?}");
    // A new minute: usage windows are empty again.
    f.clock.advance(Duration::from_secs(60));
    assert!(f.router.pick_deployment("g", &RequestOptions::default()).is_ok());
}

#[test]
fn latency_based_prefers_unmeasured_then_fastest() {
    rng::seed(5);
    let f = Fixture::new(
        json!([dep("g", "a", json!({})), dep("g", "b", json!({})), dep("g", "c", json!({}))]),
        json!({"routing_strategy": "latency-based-routing"}),
    );
    f.state.record_latency(f.slot("a"), Duration::from_millis(300), false, 0.3);
    f.state.record_latency(f.slot("b"), Duration::from_millis(80), false, 0.3);
    // c has no sample yet: explored first.
    assert_eq!(&*f.router.pick_deployment("g", &RequestOptions::default()).unwrap(), "c");
    f.state.record_latency(f.slot("c"), Duration::from_millis(120), false, 0.3);
    let c = f.picks("g", 500, &RequestOptions::default());
    assert_eq!(c.get("b"), Some(&500), "{c:?}");
    // b slows down (moving average): c becomes the fastest.
    for _ in 0..10 {
        f.state.record_latency(f.slot("b"), Duration::from_millis(1000), false, 0.3);
    }
    assert_eq!(&*f.router.pick_deployment("g", &RequestOptions::default()).unwrap(), "c");
}

#[test]
fn cost_based_picks_cheapest_available() {
    rng::seed(6);
    let f = Fixture::new(
        json!([
            dep("g", "pricey", json!({"input_cost_per_token": 5e-6, "output_cost_per_token": 15e-6})),
            dep("g", "cheap", json!({"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7})),
            dep("g", "mid", json!({"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6})),
            dep("g", "unknown", json!({}))
        ]),
        json!({"routing_strategy": "cost-based-routing"}),
    );
    let c = f.picks("g", 200, &RequestOptions::default());
    assert_eq!(c.get("cheap"), Some(&200), "{c:?}");
    f.state.set_cooldown(f.slot("cheap"), f.now_ms() + 10_000);
    assert_eq!(&*f.router.pick_deployment("g", &RequestOptions::default()).unwrap(), "mid");
}

#[test]
fn priority_tiers_and_cooling_deployments() {
    rng::seed(7);
    let f = Fixture::new(
        json!([
            dep("g", "backup", json!({"order": 2})),
            dep("g", "p1", json!({"order": 1})),
            dep("g", "p2", json!({"order": 1})),
            dep("g", "unordered", json!({}))
        ]),
        json!({}),
    );
    let c = f.picks("g", 2000, &RequestOptions::default());
    assert_eq!(c.len(), 2, "only tier 1: {c:?}");
    assert!((share(&c, "p1", 2000) - 0.5).abs() < 0.05);
    let now = f.now_ms();
    f.state.set_cooldown(f.slot("p1"), now + 5_000);
    let c = f.picks("g", 200, &RequestOptions::default());
    assert_eq!(c.get("p2"), Some(&200), "{c:?}");
    f.state.set_cooldown(f.slot("p2"), now + 3_000);
    assert_eq!(&*f.router.pick_deployment("g", &RequestOptions::default()).unwrap(), "backup");
    f.state.set_cooldown(f.slot("backup"), now + 4_000);
    assert_eq!(&*f.router.pick_deployment("g", &RequestOptions::default()).unwrap(), "unordered");
    f.state.set_cooldown(f.slot("unordered"), now + 9_000);
    let e = f.router.pick_deployment("g", &RequestOptions::default()).unwrap_err();
    assert_eq!((e.kind(), e.reason), (ErrorKind::Overloaded, FailureReason::AllUnavailable));
    assert_eq!(e.error.retry_after, Some(Duration::from_secs(3)), "the soonest return");
    assert!(e.error.message.contains("cooling down"), "{}", e.error.message);
    // Cooldowns end with time.
    f.clock.advance(Duration::from_secs(3));
    assert_eq!(&*f.router.pick_deployment("g", &RequestOptions::default()).unwrap(), "p2");
}

#[test]
fn max_parallel_requests_is_a_hard_limit() {
    let f = Fixture::new(
        json!([
            dep("g", "a", json!({"max_parallel_requests": 2, "order": 1})),
            dep("g", "b", json!({"order": 2}))
        ]),
        json!({}),
    );
    let now = f.now_ms();
    f.state.begin(f.slot("a"), now);
    assert_eq!(&*f.router.pick_deployment("g", &RequestOptions::default()).unwrap(), "a");
    f.state.begin(f.slot("a"), now);
    assert_eq!(&*f.router.pick_deployment("g", &RequestOptions::default()).unwrap(), "b");
    f.state.end(f.slot("a"));
    assert_eq!(&*f.router.pick_deployment("g", &RequestOptions::default()).unwrap(), "a");
}

#[test]
fn tag_rule() {
    rng::seed(8);
    let f = Fixture::new(
        json!([
            dep("g", "eu", json!({"tags": ["eu", "paid"]})),
            dep("g", "us", json!({"tags": ["us", "paid"]})),
            dep("g", "free", json!({"tags": ["free", "default"]})),
            dep("h", "h1", json!({"tags": ["x"]})),
            dep("h", "h2", json!({}))
        ]),
        json!({"enable_tag_filtering": true}),
    );
    let tags =
        |t: &[&str]| RequestOptions { tags: t.iter().map(|s| s.to_string()).collect(), ..Default::default() };
    // All request tags must be on the deployment.
    assert_eq!(f.picks("g", 200, &tags(&["eu", "paid"])).get("eu"), Some(&200));
    let c = f.picks("g", 400, &tags(&["paid"]));
    assert!(c.contains_key("eu") && c.contains_key("us") && !c.contains_key("free"), "{c:?}");
    // Untagged and unmatched requests go to `default` deployments.
    assert_eq!(f.picks("g", 100, &tags(&[])).get("free"), Some(&100));
    assert_eq!(f.picks("g", 100, &tags(&["eu", "us"])).get("free"), Some(&100));
    // A group without `default`: untagged requests may use every deployment, unmatched fail.
    let c = f.picks("h", 400, &tags(&[]));
    assert_eq!(c.len(), 2, "{c:?}");
    let e = f.router.pick_deployment("h", &tags(&["y"])).unwrap_err();
    assert_eq!((e.kind(), e.reason), (ErrorKind::BadRequest, FailureReason::NoEligibleDeployment));
}

#[test]
fn tags_are_ignored_without_tag_filtering() {
    let f = Fixture::new(json!([dep("g", "a", json!({"tags": ["x"]}))]), json!({}));
    let opts = RequestOptions { tags: vec!["other".into()], ..Default::default() };
    assert_eq!(&*f.router.pick_deployment("g", &opts).unwrap(), "a");
}

#[test]
fn wildcard_and_unknown_groups() {
    let f = Fixture::new(
        json!([
            {"model_name": "test/*", "litellm_params": {"model": "test/*"}, "model_info": {"id": "wild"}},
            {"model_name": "test/special-*", "litellm_params": {"model": "test/s-*"}, "model_info": {"id": "special"}},
            dep("test/exact", "exact", json!({}))
        ]),
        json!({}),
    );
    assert_eq!(&*f.router.pick_deployment("test/anything", &RequestOptions::default()).unwrap(), "wild");
    assert_eq!(&*f.router.pick_deployment("test/special-1", &RequestOptions::default()).unwrap(), "special");
    assert_eq!(&*f.router.pick_deployment("test/exact", &RequestOptions::default()).unwrap(), "exact");
    let e = f.router.pick_deployment("other/x", &RequestOptions::default()).unwrap_err();
    assert_eq!((e.kind(), e.reason), (ErrorKind::NotFound, FailureReason::UnknownModel));
    assert!(f.router.has_model("test/zzz") && !f.router.has_model("nope"));
}

#[test]
fn config_errors() {
    let build = |list: Value| {
        let cfg: RouterConfig = serde_json::from_value(json!({"model_list": list})).unwrap();
        Router::builder(cfg).resolver(support::resolver).build()
    };
    assert!(build(json!([dep("g", "a", json!({})), dep("g", "a", json!({}))])).is_err(), "duplicate id");
    assert!(
        build(json!([{"model_name": "g", "litellm_params": {"model": "nope/x"}}])).is_err(),
        "unresolvable"
    );
    assert!(
        build(json!([{"model_name": "g", "litellm_params": {"model": "test/*"}}])).is_err(),
        "`*` in exact group"
    );
    let cfg = RouterConfig::default();
    assert!(Router::builder(cfg).build().is_err(), "no resolver");
}

#[test]
fn static_catalog_estimates_prompt_tokens() {
    let req = ChatRequest::new("g", vec![Message::user("x".repeat(400))]);
    assert_eq!(StaticCatalog::estimate_tokens(&req), 104);
}
