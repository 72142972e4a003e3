//! Canonical [`ChatRequest`] → Gemini `GenerateContentRequest` JSON.
//!
//! * roles: `user` stays `user`, `assistant` becomes `model`; `system` and `developer` messages
//!   (wherever they are) are joined into `systemInstruction`; consecutive contents of one role are
//!   merged (parallel tool results become one `user` content with several `functionResponse`s);
//! * assistant `tool_calls` → `functionCall` parts (`args` parsed from the JSON string; a thought
//!   signature folded into the call id by [`crate::response`] is restored as `thoughtSignature`);
//! * `tool` messages → `functionResponse` parts, the function name found through the earlier
//!   call with that id; a JSON-object result is sent as the `response` object, anything else as
//!   `{"content": <text>}`;
//! * content parts: text; `data:` URIs → `inlineData`; `gs://`, `http(s)://` and file ids →
//!   `fileData` with a MIME type guessed from the extension (see [`guess_mime`]; images default
//!   to `image/jpeg`, override with LiteLLM's `image_url.format`); `input_audio` → `inlineData`
//!   `audio/<format>`; `file` (`file_data` URI or `file_id`) → `inlineData` / `fileData`;
//! * tools → `tools[0].functionDeclarations` with parameters converted by [`crate::schema`];
//!   `tool_choice` → `toolConfig.functionCallingConfig` (`none` → NONE, `auto` → AUTO,
//!   `required` → ANY, a named function → ANY + `allowedFunctionNames`);
//! * `generationConfig`: `temperature`, `topP`, `maxOutputTokens`, `stopSequences`,
//!   `candidateCount` (`n`), `seed`, `presencePenalty`, `frequencyPenalty`, `responseLogprobs` /
//!   `logprobs` (`top_logprobs`), `responseMimeType` + `responseSchema` (`response_format`),
//!   `thinkingConfig` (`reasoning_effort`, or Anthropic-style `thinking` in the request extras),
//!   `topK` (extra `top_k`);
//! * request extras passed through: `safety_settings`/`safetySettings`,
//!   `cached_content`/`cachedContent`, `labels`; `cfg.extra_body` is merged last and wins.
//!
//! Parameters Gemini has no equivalent for and that change the output (`logit_bias`,
//! `prediction`, `audio`, `web_search_options`, `verbosity`, legacy `functions`/`function_call`,
//! non-text `modalities`, non-function tools) fail with the unsupported-parameter error unless
//! `drop_params` is set. Parameters that only describe the call (`user`, `metadata`, `store`,
//! `service_tier`, `parallel_tool_calls`, `prompt_cache_key`, `safety_identifier`,
//! `stream_options`) are ignored.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use tollgate_core::chat::{
    ContentPart, ImageUrl, MessageContent, ResponseFormat, ToolChoice, ToolChoiceMode,
};
use tollgate_core::{ChatRequest, Message, ProviderError, Role, UpstreamConfig};

use crate::schema::{is_empty_object, to_gemini_schema};

/// Separator between a tool-call id and the Gemini thought signature folded into it.
pub const THOUGHT_SIGNATURE_SEPARATOR: &str = "__thought__";

/// `reasoning_effort` → `thinkingBudget` for Gemini 2.x models (Gemini 3 models get
/// `thinkingLevel` instead). `none`/`disable` turn thinking off (budget 0).
pub fn thinking_budget(effort: &str) -> Option<i64> {
    Some(match effort {
        "none" | "disable" | "disabled" => 0,
        "minimal" => 128,
        "low" => 1024,
        "medium" => 2048,
        "high" => 4096,
        _ => return None,
    })
}

const UNSUPPORTED: &[&str] =
    &["logit_bias", "prediction", "audio", "web_search_options", "verbosity", "functions", "function_call"];

/// Builds the JSON body of a `generateContent` / `streamGenerateContent` call.
pub fn generate_content_body(
    req: &ChatRequest,
    cfg: &UpstreamConfig,
    provider: &str,
) -> Result<Value, ProviderError> {
    check_unsupported(req, cfg, provider)?;
    let bad = |m: String| ProviderError::bad_request(m).with_provider(provider);

    // Tool-call id → function name, for tool results.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for m in &req.messages {
        for tc in m.tool_calls.iter().flatten() {
            call_names.insert(tc.id.as_str(), tc.function.name.as_str());
        }
    }

    let mut system_parts: Vec<Value> = Vec::new();
    let mut contents: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::System | Role::Developer => {
                let text = m.text();
                if !text.is_empty() {
                    system_parts.push(json!({"text": text}));
                }
            }
            Role::User => {
                let parts = user_parts(m, provider)?;
                push_content(&mut contents, "user", parts);
            }
            Role::Assistant => {
                let mut parts = Vec::new();
                let text = m.text();
                if !text.is_empty() {
                    parts.push(json!({"text": text}));
                }
                for tc in m.tool_calls.iter().flatten() {
                    let args: Value = if tc.function.arguments.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&tc.function.arguments).map_err(|e| {
                            bad(format!("messages[{i}]: tool call {} has invalid JSON arguments: {e}", tc.id))
                        })?
                    };
                    let mut part = json!({"functionCall": {"name": tc.function.name, "args": args}});
                    if let Some((_, sig)) = tc.id.split_once(THOUGHT_SIGNATURE_SEPARATOR) {
                        part["thoughtSignature"] = Value::String(sig.to_owned());
                    }
                    parts.push(part);
                }
                push_content(&mut contents, "model", parts);
            }
            Role::Tool | Role::Function => {
                let name = match (m.role, m.tool_call_id.as_deref()) {
                    (Role::Tool, Some(id)) => call_names.get(id).copied().or(m.name.as_deref()),
                    _ => m.name.as_deref(),
                };
                let Some(name) = name else {
                    return Err(bad(format!(
                        "messages[{i}]: tool result for tool_call_id {:?} does not answer any earlier tool call",
                        m.tool_call_id.as_deref().unwrap_or("")
                    )));
                };
                let text = m.text();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(obj @ Value::Object(_)) => obj,
                    _ => json!({"content": text}),
                };
                push_content(
                    &mut contents,
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                );
            }
        }
    }

    let mut body = Map::new();
    body.insert(
        "contents".into(),
        Value::Array(
            contents.into_iter().map(|(role, parts)| json!({"role": role, "parts": parts})).collect(),
        ),
    );
    if !system_parts.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system_parts}));
    }

    if let Some(tools) = &req.tools {
        let mut decls = Vec::new();
        for t in tools {
            match (&t.kind[..], &t.function) {
                ("function", Some(f)) => {
                    let mut d = Map::new();
                    d.insert("name".into(), Value::String(f.name.clone()));
                    if let Some(desc) = &f.description {
                        d.insert("description".into(), Value::String(desc.clone()));
                    }
                    if let Some(p) = &f.parameters {
                        let converted = to_gemini_schema(p);
                        if !is_empty_object(&converted) {
                            d.insert("parameters".into(), converted);
                        }
                    }
                    decls.push(Value::Object(d));
                }
                (kind, _) if !cfg.drop_params => {
                    return Err(ProviderError::unsupported_params(provider, &cfg.model, &["tools"])
                        .with_param(format!("tools[type={kind}]")));
                }
                _ => {}
            }
        }
        if !decls.is_empty() {
            body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        }
    }
    if let Some(choice) = &req.tool_choice {
        let cfg_json = match choice {
            ToolChoice::Mode(ToolChoiceMode::None) => json!({"mode": "NONE"}),
            ToolChoice::Mode(ToolChoiceMode::Auto) => json!({"mode": "AUTO"}),
            ToolChoice::Mode(ToolChoiceMode::Required) => json!({"mode": "ANY"}),
            ToolChoice::Named(n) => json!({"mode": "ANY", "allowedFunctionNames": [n.function.name]}),
        };
        body.insert("toolConfig".into(), json!({"functionCallingConfig": cfg_json}));
    }

    let gen_cfg = generation_config(req, cfg);
    if !gen_cfg.is_empty() {
        body.insert("generationConfig".into(), Value::Object(gen_cfg));
    }

    for (keys, target) in [
        (&["safety_settings", "safetySettings"][..], "safetySettings"),
        (&["cached_content", "cachedContent"][..], "cachedContent"),
        (&["labels"][..], "labels"),
    ] {
        if let Some(v) = keys.iter().find_map(|k| req.extra.get(*k)) {
            body.insert(target.into(), v.clone());
        }
    }
    for (k, v) in &cfg.extra_body {
        body.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(body))
}

fn check_unsupported(req: &ChatRequest, cfg: &UpstreamConfig, provider: &str) -> Result<(), ProviderError> {
    if cfg.drop_params {
        return Ok(());
    }
    let mut found: Vec<&str> = UNSUPPORTED.iter().copied().filter(|p| req.has_param(p)).collect();
    if req.modalities.as_ref().is_some_and(|m| m.iter().any(|x| x != "text")) {
        found.push("modalities");
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(ProviderError::unsupported_params(provider, &cfg.model, &found))
    }
}

fn generation_config(req: &ChatRequest, cfg: &UpstreamConfig) -> Map<String, Value> {
    let mut g = Map::new();
    let mut put = |k: &str, v: Value| {
        g.insert(k.to_owned(), v);
    };
    if let Some(v) = req.temperature {
        put("temperature", json!(v));
    }
    if let Some(v) = req.top_p {
        put("topP", json!(v));
    }
    if let Some(v) = req.extra.get("top_k").or_else(|| req.extra.get("topK")) {
        put("topK", v.clone());
    }
    if let Some(v) = req.output_token_limit() {
        put("maxOutputTokens", json!(v));
    }
    if let Some(stop) = &req.stop {
        put("stopSequences", json!(stop.to_vec()));
    }
    if let Some(n) = req.n {
        put("candidateCount", json!(n));
    }
    if let Some(s) = req.seed {
        put("seed", json!(s));
    }
    if let Some(p) = req.presence_penalty {
        put("presencePenalty", json!(p));
    }
    if let Some(p) = req.frequency_penalty {
        put("frequencyPenalty", json!(p));
    }
    if req.logprobs == Some(true) {
        put("responseLogprobs", json!(true));
        if let Some(n) = req.top_logprobs {
            put("logprobs", json!(n));
        }
    }
    match &req.response_format {
        Some(ResponseFormat::JsonObject) => put("responseMimeType", json!("application/json")),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            put("responseMimeType", json!("application/json"));
            if let Some(schema) = &json_schema.schema {
                put("responseSchema", to_gemini_schema(schema));
            }
        }
        Some(ResponseFormat::Text) | None => {}
    }
    if let Some(t) = thinking_config(req, &cfg.model) {
        put("thinkingConfig", t);
    }
    g
}

fn thinking_config(req: &ChatRequest, model: &str) -> Option<Value> {
    if let Some(effort) = req.reasoning_effort.as_deref() {
        let off = matches!(effort, "none" | "disable" | "disabled");
        if crate::endpoint::bare_model(model).starts_with("gemini-3") && !off {
            return Some(json!({"thinkingLevel": effort, "includeThoughts": true}));
        }
        let budget = thinking_budget(effort)?;
        return Some(if budget == 0 {
            json!({"thinkingBudget": 0})
        } else {
            json!({"thinkingBudget": budget, "includeThoughts": true})
        });
    }
    // Anthropic-style `thinking: {"type": "enabled", "budget_tokens": N}`, as LiteLLM accepts.
    let thinking = req.extra.get("thinking")?;
    match thinking.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = thinking.get("budget_tokens").cloned().unwrap_or(json!(-1));
            Some(json!({"thinkingBudget": budget, "includeThoughts": true}))
        }
        Some("disabled") => Some(json!({"thinkingBudget": 0})),
        _ => None,
    }
}

fn push_content(contents: &mut Vec<(&'static str, Vec<Value>)>, role: &'static str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some((last_role, last_parts)) if *last_role == role => last_parts.extend(parts),
        _ => contents.push((role, parts)),
    }
}

fn user_parts(m: &Message, provider: &str) -> Result<Vec<Value>, ProviderError> {
    let bad = |msg: String| ProviderError::bad_request(msg).with_provider(provider);
    let parts = match &m.content {
        None => return Ok(Vec::new()),
        Some(MessageContent::Text(t)) => return Ok(vec![json!({"text": t})]),
        Some(MessageContent::Parts(p)) => p,
    };
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            ContentPart::Text(t) => out.push(json!({"text": t.text})),
            ContentPart::ImageUrl(img) => out.push(
                media_part(&img.image_url.url, image_mime_override(&img.image_url), "image/jpeg")
                    .map_err(bad)?,
            ),
            ContentPart::InputAudio(a) => {
                let mime = match a.input_audio.format.as_str() {
                    "mp3" | "mpeg" => "audio/mp3".to_owned(),
                    other => format!("audio/{other}"),
                };
                out.push(json!({"inlineData": {"mimeType": mime, "data": a.input_audio.data}}));
            }
            ContentPart::File(f) => {
                if let Some(data) = &f.file.file_data {
                    out.push(media_part(data, None, "application/pdf").map_err(bad)?);
                } else if let Some(id) = &f.file.file_id {
                    let mime = f.file.filename.as_deref().and_then(guess_mime).or_else(|| guess_mime(id));
                    let mut fd = json!({"fileUri": id});
                    if let Some(mime) = mime {
                        fd["mimeType"] = Value::String(mime.to_owned());
                    }
                    out.push(json!({"fileData": fd}));
                } else {
                    return Err(bad("a file content part needs `file_data` or `file_id`".into()));
                }
            }
            ContentPart::Refusal(_) => {}
            ContentPart::Other(v) => {
                let kind = v.get("type").and_then(Value::as_str).unwrap_or("?");
                return Err(bad(format!("content parts of type `{kind}` are not supported by Gemini")));
            }
        }
    }
    Ok(out)
}

fn image_mime_override(u: &ImageUrl) -> Option<&str> {
    u.extra.get("format").and_then(Value::as_str)
}

/// A `data:` URI → `inlineData`; anything else (gs://, https://, Files API URIs) → `fileData`.
fn media_part(url: &str, mime_override: Option<&str>, default_mime: &str) -> Result<Value, String> {
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((meta, data)) = rest.split_once(',') else {
            return Err("malformed data URI: no `,`".into());
        };
        let Some(mime) = meta.strip_suffix(";base64") else {
            return Err("only base64 data URIs are supported".into());
        };
        let mime = mime_override.unwrap_or(if mime.is_empty() { default_mime } else { mime });
        return Ok(json!({"inlineData": {"mimeType": mime, "data": data}}));
    }
    let mime = mime_override.or_else(|| guess_mime(url)).unwrap_or(default_mime);
    Ok(json!({"fileData": {"mimeType": mime, "fileUri": url}}))
}

/// Guesses a MIME type from a URL's or file name's extension (query and fragment ignored).
/// Known: png, jpg/jpeg, webp, gif, heic, heif, pdf, txt, html, csv, md, mp4, mpeg, mov, webm,
/// avi, wmv, flv, 3gp, mp3, wav, aac, flac, ogg, m4a, aiff.
pub fn guess_mime(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let ext = file.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "md" => "text/md",
        "mp4" => "video/mp4",
        "mpeg" | "mpg" => "video/mpeg",
        "mov" => "video/mov",
        "webm" => "video/webm",
        "avi" => "video/avi",
        "wmv" => "video/wmv",
        "flv" => "video/x-flv",
        "3gp" => "video/3gpp",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "aac" => "audio/aac",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "m4a" => "audio/m4a",
        "aiff" | "aif" => "audio/aiff",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_guessing() {
        assert_eq!(guess_mime("gs://b/cat.PNG"), Some("image/png"));
        assert_eq!(guess_mime("https://x/a.jpeg?sig=1#f"), Some("image/jpeg"));
        assert_eq!(guess_mime("https://x/noext"), None);
        assert_eq!(guess_mime("https://x.com/dir.v2/file"), None);
    }

    #[test]
    fn data_uri_errors_are_messages() {
        assert!(media_part("data:image/png,abc", None, "image/jpeg").is_err());
        assert!(media_part("data:image/png;base64", None, "image/jpeg").is_err());
        assert_eq!(
            media_part("data:;base64,QQ==", None, "image/jpeg").unwrap(),
            json!({"inlineData": {"mimeType": "image/jpeg", "data": "QQ=="}})
        );
    }
}
