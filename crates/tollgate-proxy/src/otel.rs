//! OpenTelemetry traces: one span per call, exported over OTLP/HTTP with JSON encoding.
//!
//! Why not the OpenTelemetry SDK: the proxy needs one span per call, built from a
//! [`CallEvent`] it already has, so a full SDK (its own batch processor, runtime glue, protobuf
//! and gRPC stacks) would add much weight for little. The OTLP specification defines a JSON
//! encoding of `ExportTraceServiceRequest` over HTTP (`POST …/v1/traces`,
//! `Content-Type: application/json`; trace and span ids as hex strings, 64-bit integers as
//! strings, enums as numbers), which every OTLP/HTTP collector accepts. The batching, retries
//! and bounded queue are the shared ones of [`crate::callbacks::HttpBatchSink`].
//!
//! Environment (read through the config's environment lookup, as the spec names them):
//!
//! | variable | effect |
//! | --- | --- |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | the traces URL, used as is |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL; `/v1/traces` is appended |
//! | `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS` | `k=v,k2=v2` request headers (percent-decoded) |
//! | `OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT` | request timeout in ms (default 10 000) |
//! | `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` | only `http/json` is spoken; others get a warning |
//! | `OTEL_SERVICE_NAME` | `service.name` (default `tollgate`) |
//! | `OTEL_BSP_SCHEDULE_DELAY` / `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` / `OTEL_BSP_MAX_QUEUE_SIZE` | batching (5000 ms / 512 / 2048) |
//! | `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none` | no export |
//!
//! Export is on when either endpoint variable is set, or when a callback list names `otel`
//! (then the endpoint defaults to `http://localhost:4318/v1/traces`).
//!
//! Span: named `{gen_ai.operation.name} {gen_ai.request.model}`, kind CLIENT (the GenAI
//! conventions' kind for a model call), trace id = the call id's 128 bits, status ERROR with
//! the message on failure (unset otherwise). Attributes follow the GenAI semantic conventions
//! (`gen_ai.operation.name`, `gen_ai.provider.name` and the older `gen_ai.system`,
//! `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.input_tokens`,
//! `gen_ai.usage.output_tokens`, `gen_ai.usage.cache_read.input_tokens`,
//! `gen_ai.usage.cache_creation.input_tokens`, `error.type`) plus `http.response.status_code`
//! and `tollgate.*` (call id, model group, deployment, cost, retries, fallbacks, stream, status,
//! time to first token, reasoning tokens).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use serde_json::{Value, json};

use crate::callbacks::{BatchSettings, CallEvent, CallStatus, CallbackConfig, EventFilter, OtlpConfig};

/// The default OTLP/HTTP traces URL.
pub const DEFAULT_TRACES_ENDPOINT: &str = "http://localhost:4318/v1/traces";

/// OTLP `SpanKind` CLIENT.
const SPAN_KIND_CLIENT: u8 = 3;
/// OTLP `StatusCode` ERROR.
const STATUS_CODE_ERROR: u8 = 2;

fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|s| s.trim().eq_ignore_ascii_case("true"))
}

/// Fills `cfg.otel` from `listed` (the callback lists naming `otel`) and the `OTEL_*` variables.
pub(crate) fn load(listed: EventFilter, env: &dyn Fn(&str) -> Option<String>, cfg: &mut CallbackConfig) {
    let get = |name: &str| env(name).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let traces_endpoint = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let base_endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT");
    let from_env = traces_endpoint.is_some() || base_endpoint.is_some();
    let listed_any = listed.success || listed.failure;
    if !from_env && !listed_any {
        return;
    }
    let disabled = truthy(get("OTEL_SDK_DISABLED"))
        || get("OTEL_TRACES_EXPORTER").is_some_and(|e| e.eq_ignore_ascii_case("none"));
    if disabled {
        if listed_any {
            cfg.warnings.push(
                "the `otel` callback is configured but OTEL_SDK_DISABLED / OTEL_TRACES_EXPORTER=none turn \
                 trace export off"
                    .to_owned(),
            );
        }
        return;
    }
    let endpoint = match (traces_endpoint, base_endpoint) {
        (Some(t), _) => t,
        (None, Some(b)) => format!("{}/v1/traces", b.trim_end_matches('/')),
        (None, None) => DEFAULT_TRACES_ENDPOINT.to_owned(),
    };
    if let Some(p) = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"))
        && p != "http/json"
    {
        cfg.warnings.push(format!(
            "OTLP protocol `{p}` is not supported: tollgate exports traces as OTLP/HTTP JSON (http/json) \
                 to {endpoint}"
        ));
    }
    let headers = get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        .or_else(|| get("OTEL_EXPORTER_OTLP_HEADERS"))
        .map(|h| crate::callbacks::parse_header_list(&h))
        .unwrap_or_default();
    let number = |name: &str, warnings: &mut Vec<String>| -> Option<u64> {
        let v = get(name)?;
        match v.parse::<u64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                warnings.push(format!("{name}=`{v}` is not a positive whole number; ignored"));
                None
            }
        }
    };
    let mut batch = BatchSettings {
        batch_size: 512,
        flush_interval: Duration::from_millis(5000),
        queue_capacity: 2048,
        ..BatchSettings::default()
    };
    let w = &mut cfg.warnings;
    if let Some(ms) =
        number("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", w).or_else(|| number("OTEL_EXPORTER_OTLP_TIMEOUT", w))
    {
        batch.request_timeout = Duration::from_millis(ms);
    }
    if let Some(ms) = number("OTEL_BSP_SCHEDULE_DELAY", w) {
        batch.flush_interval = Duration::from_millis(ms);
    }
    if let Some(n) = number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", w) {
        batch.batch_size = n as usize;
    }
    if let Some(n) = number("OTEL_BSP_MAX_QUEUE_SIZE", w) {
        batch.queue_capacity = n as usize;
    }
    let events = if from_env { EventFilter::ALL } else { listed };
    cfg.otel = Some(OtlpConfig {
        endpoint,
        headers,
        service_name: get("OTEL_SERVICE_NAME").unwrap_or_else(|| "tollgate".to_owned()),
        events,
        batch,
    });
}

fn hash64(s: &str, salt: u8) -> u64 {
    let mut h = DefaultHasher::new();
    salt.hash(&mut h);
    s.hash(&mut h);
    h.finish()
}

/// The trace id of a call: its id's 32 hex digits when it is a UUID, else a hash.
pub fn trace_id(call_id: &str) -> String {
    let hex: String = call_id.chars().filter(|c| *c != '-').collect();
    if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) && hex.chars().any(|c| c != '0') {
        hex.to_ascii_lowercase()
    } else {
        format!("{:016x}{:016x}", hash64(call_id, 1), hash64(call_id, 2) | 1)
    }
}

/// The span id of a call (a stable hash of its id, never zero).
pub fn span_id(call_id: &str) -> String {
    format!("{:016x}", hash64(call_id, 3) | 1)
}

fn operation(endpoint: &str) -> &'static str {
    match endpoint {
        "completions" => "text_completion",
        "embeddings" => "embeddings",
        _ => "chat",
    }
}

fn kv(key: &str, value: Value) -> Value {
    json!({"key": key, "value": value})
}

fn s(v: &str) -> Value {
    json!({"stringValue": v})
}

fn int(v: u64) -> Value {
    json!({"intValue": v.to_string()})
}

fn double(v: f64) -> Value {
    json!({"doubleValue": v})
}

/// The OTLP span of one event.
pub fn span(ev: &CallEvent) -> Value {
    let op = operation(&ev.endpoint);
    let requested = ev.requested_model.as_deref().or(ev.model_group.as_deref()).unwrap_or("unknown");
    let mut attrs = vec![kv("gen_ai.operation.name", s(op)), kv("gen_ai.request.model", s(requested))];
    if let Some(p) = &ev.provider {
        attrs.push(kv("gen_ai.provider.name", s(p)));
        attrs.push(kv("gen_ai.system", s(p)));
    }
    let response_model = match &ev.model {
        Some(m) => Some(m.split_once('/').map_or(m.as_str(), |(_, rest)| rest)),
        None if ev.status == CallStatus::Success => ev.model_group.as_deref(),
        None => None,
    };
    if let Some(m) = response_model {
        attrs.push(kv("gen_ai.response.model", s(m)));
    }
    if ev.usage_known || ev.usage_estimated {
        if ev.usage_estimated {
            attrs.push(kv("tollgate.usage_estimated", json!({"boolValue": true})));
        }
        attrs.push(kv("gen_ai.usage.input_tokens", int(ev.prompt_tokens)));
        attrs.push(kv("gen_ai.usage.output_tokens", int(ev.completion_tokens)));
        if ev.cached_tokens > 0 {
            attrs.push(kv("gen_ai.usage.cache_read.input_tokens", int(ev.cached_tokens)));
        }
        if ev.cache_creation_tokens > 0 {
            attrs.push(kv("gen_ai.usage.cache_creation.input_tokens", int(ev.cache_creation_tokens)));
        }
        if ev.reasoning_tokens > 0 {
            attrs.push(kv("tollgate.usage.reasoning_tokens", int(ev.reasoning_tokens)));
        }
    }
    if let Some(e) = &ev.error {
        attrs.push(kv("error.type", s(&e.kind)));
    }
    attrs.push(kv("http.response.status_code", int(u64::from(ev.http_status))));
    attrs.push(kv("tollgate.call_id", s(&ev.call_id)));
    attrs.push(kv("tollgate.status", s(ev.status.as_str())));
    attrs.push(kv("tollgate.stream", json!({"boolValue": ev.stream})));
    if let Some(g) = &ev.model_group {
        attrs.push(kv("tollgate.model_group", s(g)));
    }
    if let Some(d) = &ev.deployment_id {
        attrs.push(kv("tollgate.deployment_id", s(d)));
    }
    if let Some(c) = ev.cost_usd {
        attrs.push(kv("tollgate.cost_usd", double(c)));
    }
    if let Some(t) = ev.time_to_first_token_ms {
        attrs.push(kv("tollgate.time_to_first_token_ms", double(t)));
    }
    attrs.push(kv("tollgate.retries", int(u64::from(ev.retries))));
    attrs.push(kv("tollgate.fallbacks", int(u64::from(ev.fallbacks))));

    let mut span = json!({
        "traceId": trace_id(&ev.call_id),
        "spanId": span_id(&ev.call_id),
        "name": format!("{op} {requested}"),
        "kind": SPAN_KIND_CLIENT,
        "startTimeUnixNano": ev.start_time_unix_nano.to_string(),
        "endTimeUnixNano": ev.end_time_unix_nano.to_string(),
        "attributes": attrs,
    });
    if let Some(e) = &ev.error {
        span["status"] = json!({"code": STATUS_CODE_ERROR, "message": e.message});
    } else if ev.status == CallStatus::Failure {
        span["status"] = json!({"code": STATUS_CODE_ERROR});
    }
    span
}

/// An `ExportTraceServiceRequest` (JSON mapping) of `events`, one span each.
pub fn export_request(service_name: &str, events: &[CallEvent]) -> Value {
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                kv("service.name", s(service_name)),
                kv("telemetry.sdk.name", s("tollgate")),
                kv("telemetry.sdk.language", s("rust")),
                kv("telemetry.sdk.version", s(env!("CARGO_PKG_VERSION"))),
            ]},
            "scopeSpans": [{
                "scope": {"name": "tollgate-proxy", "version": env!("CARGO_PKG_VERSION")},
                "spans": events.iter().map(span).collect::<Vec<_>>(),
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_of_the_right_length() {
        let t = trace_id("0b7c4f1e-9a2d-4c3b-8e5f-1a2b3c4d5e6f");
        assert_eq!(t, "0b7c4f1e9a2d4c3b8e5f1a2b3c4d5e6f");
        let t2 = trace_id("not-a-uuid");
        assert_eq!(t2.len(), 32);
        assert!(t2.chars().all(|c| c.is_ascii_hexdigit()));
        let sp = span_id("x");
        assert_eq!(sp.len(), 16);
        assert_ne!(sp, "0000000000000000");
        assert_eq!(span_id("x"), sp, "stable");
        assert_ne!(span_id("y"), sp);
    }

    #[test]
    fn endpoint_variables_pick_the_url() {
        let mut cfg = CallbackConfig::default();
        load(
            EventFilter::default(),
            &|n| (n == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://c:4318/".to_owned()),
            &mut cfg,
        );
        assert_eq!(cfg.otel.as_ref().unwrap().endpoint, "http://c:4318/v1/traces");
        assert_eq!(cfg.otel.as_ref().unwrap().events, EventFilter::ALL);

        let mut cfg = CallbackConfig::default();
        load(EventFilter::default(), &|_| None, &mut cfg);
        assert!(cfg.otel.is_none(), "nothing set, nothing listed");

        let mut cfg = CallbackConfig::default();
        let listed = EventFilter { success: false, failure: true };
        load(listed, &|n| (n == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "grpc".to_owned()), &mut cfg);
        let o = cfg.otel.unwrap();
        assert_eq!(o.endpoint, DEFAULT_TRACES_ENDPOINT);
        assert_eq!(o.events, listed);
        assert_eq!(cfg.warnings.len(), 1, "{:?}", cfg.warnings);

        let mut cfg = CallbackConfig::default();
        load(
            EventFilter::ALL,
            &|n| match n {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => Some("http://t/x".to_owned()),
                "OTEL_SDK_DISABLED" => Some("true".to_owned()),
                _ => None,
            },
            &mut cfg,
        );
        assert!(cfg.otel.is_none());
    }
}
