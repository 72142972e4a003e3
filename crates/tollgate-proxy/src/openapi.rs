//! `GET /openapi.json`: an OpenAPI 3.1 description of every endpoint the gateway serves.
//!
//! Written by hand (the wire types live in tollgate-core and are OpenAI's / Anthropic's own
//! shapes; the schemas here describe them at the level a client generator or a reader needs:
//! required fields, the common optional ones, and `additionalProperties` where the gateway
//! passes unknown fields through). `tests/openapi.rs` checks that every route the router
//! registers is documented and that every documented route exists.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use serde_json::{Map, Value, json};

/// `$ref` to a component schema.
fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_body(schema_name: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema(schema_name) } } })
}

/// The error answers every authenticated OpenAI-style endpoint can give.
fn error_responses(responses: &mut Map<String, Value>) {
    for (code, name) in [
        ("400", "BadRequest"),
        ("401", "Unauthorized"),
        ("404", "NotFound"),
        ("413", "PayloadTooLarge"),
        ("429", "RateLimited"),
        ("500", "ServerError"),
        ("502", "UpstreamError"),
        ("503", "Unavailable"),
        ("504", "Timeout"),
    ] {
        responses.insert(code.into(), json!({ "$ref": format!("#/components/responses/{name}") }));
    }
}

/// A POST operation with a JSON body whose 200 answer is JSON, or SSE when `stream` is true.
fn post_op(
    summary: &str,
    tag: &str,
    op_id: &str,
    request: &str,
    response: &str,
    stream_chunk: Option<&str>,
    params: Vec<Value>,
) -> Value {
    let mut ok = json!({ "application/json": { "schema": schema(response) } });
    if let Some(chunk) = stream_chunk {
        ok["text/event-stream"] = json!({
            "description": format!(
                "When the request sets `stream: true`: one `data: <{chunk}>` event per chunk, \
                 `data: [DONE]` at the end, `: ping` comments while idle; an error after the \
                 stream started is one `data: {{\"error\": …}}` event, then the end."
            ),
            "schema": { "type": "string" },
            "itemSchema": schema(chunk)
        });
    }
    let mut responses = Map::new();
    responses
        .insert("200".into(), json!({ "description": "Success.", "headers": call_headers(), "content": ok }));
    error_responses(&mut responses);
    let mut op = json!({
        "summary": summary,
        "tags": [tag],
        "operationId": op_id,
        "requestBody": json_body(request),
        "responses": responses,
    });
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    op
}

fn call_headers() -> Value {
    let h = |d: &str| json!({ "description": d, "schema": { "type": "string" } });
    json!({
        "x-tollgate-call-id": h("The call's id (also `x-litellm-call-id`)."),
        "x-tollgate-model-group": h("The model group that answered (also `x-litellm-model-group`)."),
        "x-tollgate-deployment-id": h("The deployment that answered a routed call (also `x-litellm-model-id`)."),
        "x-tollgate-attempted-retries": h("Retries made (also `x-litellm-attempted-retries`)."),
        "x-tollgate-attempted-fallbacks": h("Fallbacks made (also `x-litellm-attempted-fallbacks`)."),
        "x-tollgate-overhead-ms": h("Time spent in the gateway (also `x-litellm-overhead-duration-ms`)."),
        "x-tollgate-response-cost": h("Cost in USD when known (also `x-litellm-response-cost`).")
    })
}

fn get_op(summary: &str, tag: &str, op_id: &str, response: &str, authed: bool, params: Vec<Value>) -> Value {
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({ "description": "Success.", "content": { "application/json": { "schema": schema(response) } } }),
    );
    if authed {
        responses.insert("401".into(), json!({ "$ref": "#/components/responses/Unauthorized" }));
        responses.insert("404".into(), json!({ "$ref": "#/components/responses/NotFound" }));
    }
    let mut op = json!({ "summary": summary, "tags": [tag], "operationId": op_id, "responses": responses });
    if !authed {
        op["security"] = json!([]);
    }
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    op
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

fn api_version_param() -> Value {
    json!({
        "name": "api-version", "in": "query", "required": false,
        "description": "Azure OpenAI API version; accepted and ignored (the gateway speaks one version).",
        "schema": { "type": "string", "examples": ["2024-10-21"] }
    })
}

/// `op_id` made unique per alias (`/v1/x` → `x`, `/x` → `x_no_v1`).
fn op_id(base: &str, prefix: &str) -> String {
    if prefix.is_empty() { format!("{base}_no_v1") } else { base.to_owned() }
}

fn paths() -> Map<String, Value> {
    let mut p = Map::new();
    for prefix in ["/v1", ""] {
        p.insert(
            format!("{prefix}/chat/completions"),
            json!({ "post": post_op(
                "Create a chat completion (OpenAI format), for any configured model group.",
                "openai", &op_id("createChatCompletion", prefix),
                "ChatCompletionRequest", "ChatCompletion", Some("ChatCompletionChunk"), vec![]) }),
        );
        p.insert(
            format!("{prefix}/completions"),
            json!({ "post": post_op(
                "Create a legacy text completion (OpenAI format).",
                "openai", &op_id("createCompletion", prefix),
                "CompletionRequest", "Completion", Some("Completion"), vec![]) }),
        );
        p.insert(
            format!("{prefix}/embeddings"),
            json!({ "post": post_op(
                "Create embeddings (OpenAI format).",
                "openai", &op_id("createEmbedding", prefix),
                "EmbeddingRequest", "EmbeddingResponse", None, vec![]) }),
        );
        p.insert(
            format!("{prefix}/models"),
            json!({ "get": get_op("List the configured model groups.", "openai",
                &op_id("listModels", prefix), "ModelList", true, vec![]) }),
        );
        p.insert(
            format!("{prefix}/models/{{id}}"),
            json!({ "get": get_op("Retrieve one model group (404 `model_not_found` when it is not configured).",
                "openai", &op_id("retrieveModel", prefix), "Model", true,
                vec![path_param("id", "The model group (may contain `/`).")]) }),
        );
        p.insert(
            format!("{prefix}/messages"),
            json!({ "post": anthropic_op(
                "Create a message (Anthropic Messages format), for any configured model group.",
                &op_id("createMessage", prefix), "AnthropicMessagesRequest", "AnthropicMessage", true) }),
        );
        p.insert(
            format!("{prefix}/messages/count_tokens"),
            json!({ "post": anthropic_op(
                "Count the input tokens of a Messages request.",
                &op_id("countMessageTokens", prefix), "AnthropicCountTokensRequest",
                "AnthropicCountTokensResponse", false) }),
        );
    }
    let dep = || path_param("deployment", "The Azure deployment name: a configured model group.");
    for (tail, op, req, resp, chunk, summary) in [
        (
            "chat/completions",
            "azureCreateChatCompletion",
            "ChatCompletionRequest",
            "ChatCompletion",
            Some("ChatCompletionChunk"),
            "Azure OpenAI route: chat completion for the deployment (model group).",
        ),
        (
            "completions",
            "azureCreateCompletion",
            "CompletionRequest",
            "Completion",
            Some("Completion"),
            "Azure OpenAI route: text completion for the deployment (model group).",
        ),
        (
            "embeddings",
            "azureCreateEmbedding",
            "EmbeddingRequest",
            "EmbeddingResponse",
            None,
            "Azure OpenAI route: embeddings for the deployment (model group).",
        ),
    ] {
        let mut o = post_op(summary, "azure", op, req, resp, chunk, vec![dep(), api_version_param()]);
        o["description"] = json!(
            "The deployment in the path is the model group; it replaces any `model` in the body \
             (which may be left out). Azure clients authenticate with the `api-key` header."
        );
        p.insert(format!("/openai/deployments/{{deployment}}/{tail}"), json!({ "post": o }));
    }
    for (path, op, summary) in [
        ("/health/liveliness", "liveliness", "Liveness probe: 200 while the process runs."),
        ("/health/liveness", "liveness", "Liveness probe (alias of /health/liveliness)."),
    ] {
        p.insert(path.into(), json!({ "get": get_op(summary, "health", op, "HealthStatus", false, vec![]) }));
    }
    let mut ready = get_op(
        "Readiness probe: 200 when serving, 503 while draining for shutdown.",
        "health",
        "readiness",
        "HealthStatus",
        false,
        vec![],
    );
    ready["responses"]["503"] = json!({
        "description": "Draining (shutting down).",
        "content": { "application/json": { "schema": schema("HealthStatus") } }
    });
    p.insert("/health/readiness".into(), json!({ "get": ready }));
    p.insert(
        "/health".into(),
        json!({ "get": get_op(
            "Health of every deployment: calls each one (LiteLLM's `/health` shape).",
            "health", "health", "DeploymentHealth", true, vec![]) }),
    );
    p.insert(
        "/metrics".into(),
        json!({ "get": {
            "summary": "Prometheus metrics (text exposition format).", "tags": ["meta"],
            "operationId": "metrics", "security": [],
            "responses": { "200": { "description": "Requests, failures, latency, time to first token, \
                gateway overhead, tokens, spend, deployment health, in-flight requests.",
                "content": { "text/plain": { "schema": { "type": "string" } } } } }
        } }),
    );
    p.insert(
        "/openapi.json".into(),
        json!({ "get": {
            "summary": "This document.", "tags": ["meta"], "operationId": "openapi", "security": [],
            "responses": { "200": { "description": "The OpenAPI 3.1 document.",
                "content": { "application/json": { "schema": { "type": "object" } } } } }
        } }),
    );
    p
}

fn anthropic_op(summary: &str, op_id: &str, request: &str, response: &str, streams: bool) -> Value {
    let mut ok = json!({ "application/json": { "schema": schema(response) } });
    if streams {
        ok["text/event-stream"] = json!({
            "description": "When the request sets `stream: true`: Anthropic's named events \
                (`message_start`, `content_block_start`, `content_block_delta`, `content_block_stop`, \
                `message_delta`, `message_stop`, `ping`; `error` on a failure after the start).",
            "schema": { "type": "string" }
        });
    }
    let err = |d: &str| {
        json!({ "description": d,
            "content": { "application/json": { "schema": schema("AnthropicError") } } })
    };
    json!({
        "summary": summary,
        "tags": ["anthropic"],
        "operationId": op_id,
        "description": "Authenticate with `x-api-key` (or any of the gateway's schemes); \
            `anthropic-version` and `anthropic-beta` headers are accepted.",
        "requestBody": json_body(request),
        "responses": {
            "200": { "description": "Success.", "content": ok },
            "400": err("Invalid request (`invalid_request_error`)."),
            "401": err("Missing or invalid key (`authentication_error`)."),
            "404": err("Unknown model group (`not_found_error`)."),
            "413": err("Request body too large."),
            "429": err("Rate limited (`rate_limit_error`)."),
            "500": err("Gateway error (`api_error`)."),
            "529": err("Upstream overloaded (`overloaded_error`).")
        }
    })
}

fn error_response(description: &str) -> Value {
    json!({ "description": description,
        "content": { "application/json": { "schema": schema("ErrorResponse") } } })
}

fn components() -> Value {
    let any_obj = json!({ "type": "object", "additionalProperties": true });
    json!({
        "securitySchemes": {
            "bearer": { "type": "http", "scheme": "bearer",
                "description": "`Authorization: Bearer <key>`: the master key (or a virtual key)." },
            "x-api-key": { "type": "apiKey", "in": "header", "name": "x-api-key",
                "description": "The key in `x-api-key` (what Anthropic clients send)." },
            "api-key": { "type": "apiKey", "in": "header", "name": "api-key",
                "description": "The key in `api-key` (what Azure OpenAI clients send)." }
        },
        "responses": {
            "BadRequest": error_response("Invalid request: bad JSON, missing fields, context window exceeded (`context_length_exceeded`)."),
            "Unauthorized": error_response("Missing or invalid key (`authentication_error`)."),
            "NotFound": error_response("Unknown model group (`model_not_found`)."),
            "PayloadTooLarge": error_response("The request body is larger than the configured limit."),
            "RateLimited": {
                "description": "Rate limited upstream (`rate_limit_error`).",
                "headers": { "retry-after": { "description": "Seconds to wait.", "schema": { "type": "string" } } },
                "content": { "application/json": { "schema": schema("ErrorResponse") } }
            },
            "ServerError": error_response("Gateway or upstream error."),
            "UpstreamError": error_response("The upstream could not be reached or answered badly."),
            "Unavailable": error_response("Upstream unavailable or overloaded."),
            "Timeout": error_response("The upstream timed out.")
        },
        "schemas": {
            "ErrorResponse": {
                "type": "object", "required": ["error"],
                "description": "OpenAI's error envelope.",
                "properties": { "error": {
                    "type": "object", "required": ["message", "type"],
                    "properties": {
                        "message": { "type": "string" },
                        "type": { "type": "string", "examples": ["invalid_request_error", "authentication_error", "rate_limit_error"] },
                        "param": { "type": ["string", "null"] },
                        "code": { "type": ["string", "null"], "examples": ["model_not_found", "context_length_exceeded"] }
                    }
                } }
            },
            "AnthropicError": {
                "type": "object", "required": ["type", "error"],
                "properties": {
                    "type": { "const": "error" },
                    "error": { "type": "object", "required": ["type", "message"], "properties": {
                        "type": { "type": "string" }, "message": { "type": "string" } } },
                    "request_id": { "type": "string" }
                }
            },
            "ChatMessage": {
                "type": "object", "required": ["role"], "additionalProperties": true,
                "properties": {
                    "role": { "enum": ["system", "developer", "user", "assistant", "tool", "function"] },
                    "content": { "description": "Text, or an array of content parts (text, image_url, input_audio, file).",
                        "oneOf": [ { "type": "string" }, { "type": "array", "items": any_obj }, { "type": "null" } ] },
                    "name": { "type": "string" },
                    "tool_calls": { "type": "array", "items": schema("ToolCall") },
                    "tool_call_id": { "type": "string" }
                }
            },
            "ToolCall": {
                "type": "object", "required": ["id", "type", "function"],
                "properties": {
                    "id": { "type": "string" }, "type": { "const": "function" },
                    "function": { "type": "object", "required": ["name", "arguments"], "properties": {
                        "name": { "type": "string" }, "arguments": { "type": "string" } } }
                }
            },
            "ChatCompletionRequest": {
                "type": "object", "required": ["model", "messages"], "additionalProperties": true,
                "description": "OpenAI's chat request. `model` is a configured model group (optional on the Azure deployment routes). Unknown fields are passed on.",
                "properties": {
                    "model": { "type": "string" },
                    "messages": { "type": "array", "items": schema("ChatMessage") },
                    "stream": { "type": "boolean" },
                    "stream_options": { "type": "object", "properties": { "include_usage": { "type": "boolean" } } },
                    "temperature": { "type": "number" }, "top_p": { "type": "number" },
                    "max_tokens": { "type": "integer" }, "max_completion_tokens": { "type": "integer" },
                    "n": { "type": "integer" }, "stop": { "oneOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ] },
                    "presence_penalty": { "type": "number" }, "frequency_penalty": { "type": "number" },
                    "seed": { "type": "integer" }, "user": { "type": "string" },
                    "tools": { "type": "array", "items": any_obj },
                    "tool_choice": { "oneOf": [ { "type": "string" }, { "type": "object" } ] },
                    "parallel_tool_calls": { "type": "boolean" },
                    "response_format": any_obj,
                    "reasoning_effort": { "type": "string" },
                    "logprobs": { "type": "boolean" }, "top_logprobs": { "type": "integer" }
                }
            },
            "Usage": {
                "type": "object", "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
                "properties": {
                    "prompt_tokens": { "type": "integer" }, "completion_tokens": { "type": "integer" },
                    "total_tokens": { "type": "integer" },
                    "prompt_tokens_details": any_obj, "completion_tokens_details": any_obj
                }
            },
            "ChatCompletion": {
                "type": "object", "required": ["id", "object", "created", "model", "choices"],
                "properties": {
                    "id": { "type": "string" }, "object": { "const": "chat.completion" },
                    "created": { "type": "integer" }, "model": { "type": "string" },
                    "choices": { "type": "array", "items": { "type": "object", "properties": {
                        "index": { "type": "integer" }, "message": schema("ChatMessage"),
                        "finish_reason": { "type": ["string", "null"] } } } },
                    "usage": schema("Usage"),
                    "system_fingerprint": { "type": ["string", "null"] }
                }
            },
            "ChatCompletionChunk": {
                "type": "object", "required": ["id", "object", "created", "model", "choices"],
                "properties": {
                    "id": { "type": "string" }, "object": { "const": "chat.completion.chunk" },
                    "created": { "type": "integer" }, "model": { "type": "string" },
                    "choices": { "type": "array", "items": { "type": "object", "properties": {
                        "index": { "type": "integer" }, "delta": any_obj,
                        "finish_reason": { "type": ["string", "null"] } } } },
                    "usage": { "description": "Only on the last chunk (with `choices: []`) when `stream_options.include_usage` is set.",
                        "oneOf": [ schema("Usage"), { "type": "null" } ] }
                }
            },
            "CompletionRequest": {
                "type": "object", "required": ["model", "prompt"], "additionalProperties": true,
                "properties": {
                    "model": { "type": "string" },
                    "prompt": { "oneOf": [ { "type": "string" }, { "type": "array" } ] },
                    "max_tokens": { "type": "integer" }, "temperature": { "type": "number" },
                    "top_p": { "type": "number" }, "n": { "type": "integer" }, "stream": { "type": "boolean" },
                    "stop": { "oneOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ] },
                    "suffix": { "type": "string" }, "echo": { "type": "boolean" }, "user": { "type": "string" }
                }
            },
            "Completion": {
                "type": "object", "required": ["id", "object", "created", "model", "choices"],
                "properties": {
                    "id": { "type": "string" }, "object": { "const": "text_completion" },
                    "created": { "type": "integer" }, "model": { "type": "string" },
                    "choices": { "type": "array", "items": { "type": "object", "properties": {
                        "index": { "type": "integer" }, "text": { "type": "string" },
                        "finish_reason": { "type": ["string", "null"] } } } },
                    "usage": schema("Usage")
                }
            },
            "EmbeddingRequest": {
                "type": "object", "required": ["model", "input"], "additionalProperties": true,
                "properties": {
                    "model": { "type": "string" },
                    "input": { "oneOf": [ { "type": "string" }, { "type": "array" } ] },
                    "encoding_format": { "enum": ["float", "base64"] },
                    "dimensions": { "type": "integer" }, "user": { "type": "string" }
                }
            },
            "EmbeddingResponse": {
                "type": "object", "required": ["object", "data", "model"],
                "properties": {
                    "object": { "const": "list" },
                    "data": { "type": "array", "items": { "type": "object", "properties": {
                        "object": { "const": "embedding" }, "index": { "type": "integer" },
                        "embedding": { "oneOf": [ { "type": "array", "items": { "type": "number" } }, { "type": "string" } ] } } } },
                    "model": { "type": "string" },
                    "usage": { "type": "object", "properties": {
                        "prompt_tokens": { "type": "integer" }, "total_tokens": { "type": "integer" } } }
                }
            },
            "Model": {
                "type": "object", "required": ["id", "object", "created", "owned_by"],
                "properties": { "id": { "type": "string" }, "object": { "const": "model" },
                    "created": { "type": "integer" }, "owned_by": { "type": "string" } }
            },
            "ModelList": {
                "type": "object", "required": ["object", "data"],
                "properties": { "object": { "const": "list" }, "data": { "type": "array", "items": schema("Model") } }
            },
            "HealthStatus": {
                "type": "object", "required": ["status"], "additionalProperties": true,
                "properties": { "status": { "type": "string", "examples": ["healthy", "draining"] } }
            },
            "DeploymentHealth": {
                "type": "object", "required": ["healthy_endpoints", "unhealthy_endpoints"],
                "properties": {
                    "healthy_endpoints": { "type": "array", "items": any_obj },
                    "unhealthy_endpoints": { "type": "array", "items": any_obj },
                    "healthy_count": { "type": "integer" },
                    "unhealthy_count": { "type": "integer" }
                }
            },
            "AnthropicMessagesRequest": {
                "type": "object", "required": ["model", "messages", "max_tokens"], "additionalProperties": true,
                "properties": {
                    "model": { "type": "string", "description": "A configured model group." },
                    "messages": { "type": "array", "items": { "type": "object", "required": ["role", "content"],
                        "properties": { "role": { "enum": ["user", "assistant"] },
                            "content": { "oneOf": [ { "type": "string" }, { "type": "array", "items": any_obj } ] } } } },
                    "system": { "oneOf": [ { "type": "string" }, { "type": "array", "items": any_obj } ] },
                    "max_tokens": { "type": "integer" }, "stream": { "type": "boolean" },
                    "temperature": { "type": "number" }, "top_p": { "type": "number" }, "top_k": { "type": "integer" },
                    "stop_sequences": { "type": "array", "items": { "type": "string" } },
                    "tools": { "type": "array", "items": any_obj }, "tool_choice": any_obj,
                    "thinking": any_obj, "metadata": any_obj
                }
            },
            "AnthropicMessage": {
                "type": "object", "required": ["id", "type", "role", "content", "model"],
                "properties": {
                    "id": { "type": "string" }, "type": { "const": "message" }, "role": { "const": "assistant" },
                    "content": { "type": "array", "items": any_obj }, "model": { "type": "string" },
                    "stop_reason": { "type": ["string", "null"] }, "stop_sequence": { "type": ["string", "null"] },
                    "usage": { "type": "object", "properties": {
                        "input_tokens": { "type": "integer" }, "output_tokens": { "type": "integer" },
                        "cache_read_input_tokens": { "type": "integer" },
                        "cache_creation_input_tokens": { "type": "integer" } } }
                }
            },
            "AnthropicCountTokensRequest": {
                "type": "object", "required": ["model", "messages"], "additionalProperties": true,
                "properties": { "model": { "type": "string" }, "messages": { "type": "array", "items": any_obj },
                    "system": { "oneOf": [ { "type": "string" }, { "type": "array" } ] },
                    "tools": { "type": "array", "items": any_obj } }
            },
            "AnthropicCountTokensResponse": {
                "type": "object", "required": ["input_tokens"],
                "properties": { "input_tokens": { "type": "integer" } }
            }
        }
    })
}

/// The OpenAPI 3.1 document of the gateway.
pub fn openapi_document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "tollgate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "An LLM gateway: OpenAI-compatible (also Azure OpenAI deployment routes) and \
                Anthropic-compatible endpoints in front of every configured model group. Errors use \
                OpenAI's envelope (Anthropic's on /v1/messages). Every OpenAI path is also served \
                without the `/v1` prefix."
        },
        "security": [ { "bearer": [] }, { "x-api-key": [] }, { "api-key": [] } ],
        "tags": [
            { "name": "openai", "description": "OpenAI-compatible endpoints." },
            { "name": "azure", "description": "Azure OpenAI deployment routes." },
            { "name": "anthropic", "description": "Anthropic-compatible endpoints." },
            { "name": "health", "description": "Probes (no key needed)." },
            { "name": "meta", "description": "About the API." }
        ],
        "paths": paths(),
        "components": components()
    })
}

pub(crate) async fn openapi_json() -> Response {
    let mut resp = axum::Json(openapi_document()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
