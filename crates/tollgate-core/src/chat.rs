//! Chat completions: the canonical request, response, stream chunk and usage types.
//!
//! The shapes follow OpenAI's `POST /v1/chat/completions` API reference. Every struct keeps the
//! fields it does not model in `extra`, so a request or response that passes through tollgate
//! unchanged serialises back to the same JSON values. Optional fields are omitted when absent.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::Extra;

// ---------------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------------

/// A chat completion request (`POST /v1/chat/completions`), with every documented OpenAI parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model as the caller wrote it (`gpt-4o-mini`, `groq/llama-3.3-70b-versatile`, a router group).
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<Extra>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    /// Deprecated by OpenAI in favour of `max_completion_tokens`, still what most vendors read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `minimal` / `low` / `medium` / `high` (kept as a string: vendors add their own levels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// Output modalities, e.g. `["text", "audio"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modalities: Option<Vec<String>>,
    /// Audio output parameters (`voice`, `format`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Extra>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// Predicted output (`{"type":"content","content":...}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search_options: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_identifier: Option<String>,
    /// Legacy function calling (`functions`), superseded by `tools`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<Vec<Value>>,
    /// Legacy function calling (`function_call`), superseded by `tool_choice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<Value>,
    /// Every field not modelled above, kept verbatim (vendor extensions, newer OpenAI parameters).
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChatRequest {
    /// A request with a model and messages and nothing else set.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self { model: model.into(), messages, ..Self::default() }
    }

    /// Whether the caller asked for a streamed response.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether a streamed response should end with a usage chunk (`stream_options.include_usage`).
    pub fn wants_stream_usage(&self) -> bool {
        self.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false)
    }

    /// The effective output-token cap: `max_completion_tokens`, else `max_tokens`.
    pub fn output_token_limit(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }
}

/// The author of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    /// Legacy function-calling result.
    Function,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Function => "function",
        }
    }
}

/// One message of the conversation. A single struct for every role keeps unknown roles' fields
/// and vendor extensions (`cache_control`, `reasoning_content`, …) without a lossy enum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    /// Text or content parts. `null` is legal for assistant messages that only call tools; it is
    /// always written (as OpenAI's own examples do), so absent and `null` both become `null`.
    #[serde(default)]
    pub content: Option<MessageContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// For `role: tool`: the call this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Reasoning text of an earlier assistant turn (LiteLLM / DeepSeek convention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Legacy function call of an assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Message {
    fn with_text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: Some(MessageContent::Text(text.into())),
            name: None,
            tool_calls: None,
            tool_call_id: None,
            refusal: None,
            reasoning_content: None,
            function_call: None,
            extra: Extra::new(),
        }
    }
    pub fn system(text: impl Into<String>) -> Self {
        Self::with_text(Role::System, text)
    }
    pub fn developer(text: impl Into<String>) -> Self {
        Self::with_text(Role::Developer, text)
    }
    pub fn user(text: impl Into<String>) -> Self {
        Self::with_text(Role::User, text)
    }
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::with_text(Role::Assistant, text)
    }
    /// A user message made of content parts (text, images, audio, files).
    pub fn user_parts(parts: Vec<ContentPart>) -> Self {
        let mut m = Self::with_text(Role::User, "");
        m.content = Some(MessageContent::Parts(parts));
        m
    }
    /// An assistant turn that called tools.
    pub fn assistant_tool_calls(tool_calls: Vec<ToolCall>) -> Self {
        let mut m = Self::with_text(Role::Assistant, "");
        m.content = None;
        m.tool_calls = Some(tool_calls);
        m
    }
    /// A tool result answering `tool_call_id`.
    pub fn tool_result(tool_call_id: impl Into<String>, text: impl Into<String>) -> Self {
        let mut m = Self::with_text(Role::Tool, text);
        m.tool_call_id = Some(tool_call_id.into());
        m
    }

    /// All text of the message concatenated (text parts only), for token counting and
    /// providers that take plain strings.
    pub fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(MessageContent::Text(t)) => t.clone(),
            Some(MessageContent::Parts(parts)) => {
                let mut out = String::new();
                for p in parts {
                    if let ContentPart::Text(t) = p {
                        out.push_str(&t.text);
                    }
                }
                out
            }
        }
    }
}

/// Message content: a plain string or a list of typed parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// A typed content part. Parts of a type tollgate does not know are kept verbatim in `Other`.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentPart {
    Text(TextPart),
    ImageUrl(ImagePart),
    InputAudio(AudioPart),
    File(FilePart),
    Refusal(RefusalPart),
    Other(Value),
}

impl ContentPart {
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text(TextPart { text: text.into(), extra: Extra::new() })
    }
    /// An image by URL or `data:` URI.
    pub fn image_url(url: impl Into<String>) -> Self {
        ContentPart::ImageUrl(ImagePart {
            image_url: ImageUrl { url: url.into(), detail: None, extra: Extra::new() },
            extra: Extra::new(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextPart {
    pub text: String,
    /// e.g. Anthropic's `cache_control`, passed through by adapters that understand it.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagePart {
    pub image_url: ImageUrl,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// `https://…` or `data:image/png;base64,…`.
    pub url: String,
    /// `auto` / `low` / `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioPart {
    pub input_audio: InputAudio,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputAudio {
    /// Base64-encoded audio.
    pub data: String,
    /// `wav` / `mp3`.
    pub format: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilePart {
    pub file: FileRef,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// Base64 data URI of the file (e.g. a PDF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusalPart {
    pub refusal: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Serialises a known part as `{"type": <tag>, ...fields}`.
fn tagged<S: Serializer, T: Serialize>(s: S, tag: &str, part: &T) -> Result<S::Ok, S::Error> {
    let mut v = serde_json::to_value(part).map_err(serde::ser::Error::custom)?;
    if let Value::Object(map) = &mut v {
        // Keep `type` first, as OpenAI writes it.
        let mut out = Extra::new();
        out.insert("type".into(), Value::String(tag.into()));
        out.append(map);
        return Value::Object(out).serialize(s);
    }
    Err(serde::ser::Error::custom("content part did not serialise to an object"))
}

impl Serialize for ContentPart {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ContentPart::Text(p) => tagged(s, "text", p),
            ContentPart::ImageUrl(p) => tagged(s, "image_url", p),
            ContentPart::InputAudio(p) => tagged(s, "input_audio", p),
            ContentPart::File(p) => tagged(s, "file", p),
            ContentPart::Refusal(p) => tagged(s, "refusal", p),
            ContentPart::Other(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ContentPart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut v = Value::deserialize(d)?;
        let Some(obj) = v.as_object_mut() else {
            return Err(D::Error::custom("a content part must be a JSON object"));
        };
        let Some(Value::String(tag)) = obj.get("type") else {
            return Err(D::Error::custom("a content part needs a string `type`"));
        };
        let tag = tag.clone();
        let known = matches!(tag.as_str(), "text" | "image_url" | "input_audio" | "file" | "refusal");
        if !known {
            return Ok(ContentPart::Other(v));
        }
        obj.remove("type");
        let err = |e: serde_json::Error| D::Error::custom(format!("invalid `{tag}` content part: {e}"));
        Ok(match tag.as_str() {
            "text" => ContentPart::Text(serde_json::from_value(v).map_err(err)?),
            "image_url" => ContentPart::ImageUrl(serde_json::from_value(v).map_err(err)?),
            "input_audio" => ContentPart::InputAudio(serde_json::from_value(v).map_err(err)?),
            "file" => ContentPart::File(serde_json::from_value(v).map_err(err)?),
            _ => ContentPart::Refusal(serde_json::from_value(v).map_err(err)?),
        })
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// `function` for every tool OpenAI documents today.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDefinition>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Tool {
    /// A function tool.
    pub fn function(name: impl Into<String>, description: impl Into<String>, parameters: Value) -> Self {
        Tool {
            kind: "function".into(),
            function: Some(FunctionDefinition {
                name: name.into(),
                description: Some(description.into()),
                parameters: Some(parameters),
                strict: None,
                extra: Extra::new(),
            }),
            extra: Extra::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `tool_choice`: a mode string or a named function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolChoice {
    Mode(ToolChoiceMode),
    Named(NamedToolChoice),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoiceMode {
    None,
    Auto,
    Required,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedToolChoice {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: NamedFunction,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedFunction {
    pub name: String,
}

/// `response_format`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchemaFormat {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `stop`: one sequence or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    /// The sequences as a list, whichever form the caller used.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------------

/// A non-streamed chat completion (`object: "chat.completion"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub id: String,
    #[serde(default = "chat_completion_object")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

fn chat_completion_object() -> String {
    "chat.completion".into()
}

impl ChatResponse {
    /// The text of the first choice, if any.
    pub fn first_text(&self) -> Option<&str> {
        self.choices.first()?.message.content.as_deref()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    /// OpenAI always writes the key (null while unknown); tollgate does the same.
    pub finish_reason: Option<FinishReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The assistant message inside a response choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssistantMessage {
    #[serde(default = "assistant_role")]
    pub role: Role,
    /// OpenAI writes `content: null` when the model only called tools; kept as a key.
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Reasoning / thinking text for providers that return it (Anthropic thinking, DeepSeek, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

fn assistant_role() -> Role {
    Role::Assistant
}

impl Default for AssistantMessage {
    fn default() -> Self {
        Self {
            role: Role::Assistant,
            content: None,
            refusal: None,
            tool_calls: None,
            reasoning_content: None,
            annotations: None,
            audio: None,
            function_call: None,
            extra: Extra::new(),
        }
    }
}

/// A tool call made by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    pub function: FunctionCall,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ToolCall {
    pub fn function(id: impl Into<String>, name: impl Into<String>, arguments: impl Into<String>) -> Self {
        ToolCall {
            id: id.into(),
            kind: "function".into(),
            function: FunctionCall { name: name.into(), arguments: arguments.into() },
            extra: Extra::new(),
        }
    }
}

fn function_kind() -> String {
    "function".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON-encoded arguments, exactly as the model produced them (possibly invalid JSON).
    pub arguments: String,
}

/// Why generation stopped. Unknown values from vendors are kept in `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    FunctionCall,
    Other(String),
}

impl FinishReason {
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::FunctionCall => "function_call",
            FinishReason::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "tool_calls" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            "function_call" => FinishReason::FunctionCall,
            other => FinishReason::Other(other.to_owned()),
        }
    }
}

impl Serialize for FinishReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FinishReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(FinishReason::parse(&s))
    }
}

// ---------------------------------------------------------------------------------------------
// Usage
// ---------------------------------------------------------------------------------------------

/// Token usage. **Invariant** (every adapter normalises to it, pricing relies on it):
/// `prompt_tokens` counts *all* input tokens, including cache reads and cache writes; the
/// details say how many of them were `cached_tokens` (read from cache) and
/// `cache_creation_tokens` (written to cache). `completion_tokens` includes reasoning tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Usage {
    /// Usage with prompt and completion counts and a matching total.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            ..Usage::default()
        }
    }

    /// Prompt tokens read from the provider's cache (a subset of `prompt_tokens`).
    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0)
    }

    /// Prompt tokens written to the provider's cache (a subset of `prompt_tokens`).
    pub fn cache_creation_tokens(&self) -> u64 {
        self.prompt_tokens_details.as_ref().and_then(|d| d.cache_creation_tokens).unwrap_or(0)
    }

    /// Reasoning tokens (a subset of `completion_tokens`).
    pub fn reasoning_tokens(&self) -> u64 {
        self.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Tokens served from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Tokens written to the prompt cache (all TTLs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_tokens: Option<u64>,
    /// Of `cache_creation_tokens`, those written with the 1-hour TTL (Anthropic), priced higher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_1h_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_tokens: Option<u64>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_prediction_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_prediction_tokens: Option<u64>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------------

/// One streamed chunk (`object: "chat.completion.chunk"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChunk {
    pub id: String,
    #[serde(default = "chunk_object")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    pub model: String,
    /// Empty on the final usage chunk (`stream_options.include_usage`).
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

fn chunk_object() -> String {
    "chat.completion.chunk".into()
}

impl ChatChunk {
    /// An empty chunk with the given identity, for decoders that build chunks themselves.
    pub fn new(id: impl Into<String>, model: impl Into<String>, created: u64) -> Self {
        ChatChunk {
            id: id.into(),
            object: chunk_object(),
            created,
            model: model.into(),
            choices: Vec::new(),
            usage: None,
            system_fingerprint: None,
            service_tier: None,
            extra: Extra::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    /// OpenAI always writes the key (null until the last delta of the choice).
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChunkChoice {
    pub fn new(index: u32, delta: Delta) -> Self {
        ChunkChoice { index, delta, finish_reason: None, logprobs: None, extra: Extra::new() }
    }
}

/// The incremental part of a streamed choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A fragment of a tool call: the first fragment of a call carries `id`, `type` and the
/// function name; later fragments with the same `index` append to `arguments`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCallDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Aggregation
// ---------------------------------------------------------------------------------------------

/// Folds stream chunks back into a [`ChatResponse`]: used to record usage/cost of streams, to
/// cache streamed responses and to test that a stream says the same as the non-streamed reply.
#[derive(Debug, Default)]
pub struct StreamAccumulator {
    id: String,
    model: String,
    created: u64,
    system_fingerprint: Option<String>,
    choices: Vec<AccChoice>,
    usage: Option<Usage>,
}

#[derive(Debug, Default)]
struct AccChoice {
    content: Option<String>,
    reasoning: Option<String>,
    refusal: Option<String>,
    tool_calls: Vec<ToolCall>,
    finish_reason: Option<FinishReason>,
}

impl StreamAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one chunk.
    pub fn push(&mut self, chunk: &ChatChunk) {
        if self.id.is_empty() {
            self.id.clone_from(&chunk.id);
            self.model.clone_from(&chunk.model);
            self.created = chunk.created;
        }
        if chunk.system_fingerprint.is_some() {
            self.system_fingerprint.clone_from(&chunk.system_fingerprint);
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        for c in &chunk.choices {
            let idx = c.index as usize;
            if self.choices.len() <= idx {
                self.choices.resize_with(idx + 1, AccChoice::default);
            }
            let acc = &mut self.choices[idx];
            append(&mut acc.content, c.delta.content.as_deref());
            append(&mut acc.reasoning, c.delta.reasoning_content.as_deref());
            append(&mut acc.refusal, c.delta.refusal.as_deref());
            for tc in c.delta.tool_calls.iter().flatten() {
                let ti = tc.index as usize;
                if acc.tool_calls.len() <= ti {
                    acc.tool_calls.resize_with(ti + 1, || ToolCall::function("", "", ""));
                }
                let call = &mut acc.tool_calls[ti];
                if let Some(id) = &tc.id {
                    call.id.clone_from(id);
                }
                if let Some(f) = &tc.function {
                    if let Some(n) = &f.name {
                        call.function.name.push_str(n);
                    }
                    if let Some(a) = &f.arguments {
                        call.function.arguments.push_str(a);
                    }
                }
            }
            if c.finish_reason.is_some() {
                acc.finish_reason.clone_from(&c.finish_reason);
            }
        }
    }

    /// Usage seen so far (the final usage chunk, when the stream had one).
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// The response the chunks add up to.
    pub fn finish(self) -> ChatResponse {
        let choices = self
            .choices
            .into_iter()
            .enumerate()
            .map(|(i, c)| Choice {
                index: i as u32,
                message: AssistantMessage {
                    content: c.content,
                    refusal: c.refusal,
                    reasoning_content: c.reasoning,
                    tool_calls: (!c.tool_calls.is_empty()).then_some(c.tool_calls),
                    ..AssistantMessage::default()
                },
                finish_reason: c.finish_reason,
                logprobs: None,
                extra: Extra::new(),
            })
            .collect();
        ChatResponse {
            id: self.id,
            object: chat_completion_object(),
            created: self.created,
            model: self.model,
            choices,
            usage: self.usage,
            system_fingerprint: self.system_fingerprint,
            service_tier: None,
            extra: Extra::new(),
        }
    }
}

fn append(slot: &mut Option<String>, piece: Option<&str>) {
    if let Some(p) = piece {
        slot.get_or_insert_with(String::new).push_str(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trips_every_parameter_and_unknown_fields() {
        let body = json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?", "cache_control": {"type": "ephemeral"}},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "high"}},
                    {"type": "input_audio", "input_audio": {"data": "AAA=", "format": "wav"}},
                    {"type": "file", "file": {"file_data": "data:application/pdf;base64,AA==", "filename": "a.pdf"}},
                    {"type": "video_url", "video_url": {"url": "https://v"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "42"}
            ],
            "frequency_penalty": 0.5, "presence_penalty": -0.5, "logit_bias": {"50256": -100},
            "logprobs": true, "top_logprobs": 3, "max_tokens": 10, "max_completion_tokens": 20,
            "n": 2, "seed": 7, "service_tier": "flex", "stop": ["a", "b"], "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.2, "top_p": 0.9,
            "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                "parameters": {"type": "object"}, "strict": true}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": false, "user": "u1", "reasoning_effort": "low",
            "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"},
            "metadata": {"k": "v"}, "store": true,
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": true}},
            "prediction": {"type": "content", "content": "x"},
            "web_search_options": {}, "verbosity": "low", "prompt_cache_key": "pk",
            "safety_identifier": "sid",
            "vendor_knob": {"deep": [1, 2, 3]}
        });
        let req: ChatRequest = serde_json::from_value(body.clone()).unwrap();
        assert!(req.is_stream());
        assert!(req.wants_stream_usage());
        assert_eq!(req.extra.get("vendor_knob"), Some(&json!({"deep": [1, 2, 3]})));
        match &req.messages[1].content {
            Some(MessageContent::Parts(p)) => {
                assert!(matches!(p[0], ContentPart::Text(_)));
                assert!(matches!(p[4], ContentPart::Other(_)));
            }
            other => panic!("unexpected content {other:?}"),
        }
        // Unknown content-part fields stay, unknown part types stay.
        assert_eq!(serde_json::to_value(&req).unwrap(), body);
    }

    #[test]
    fn tool_choice_modes_and_stop_forms() {
        let r: ChatRequest = serde_json::from_value(json!({
            "model": "m", "messages": [], "tool_choice": "required", "stop": "END"
        }))
        .unwrap();
        assert_eq!(r.tool_choice, Some(ToolChoice::Mode(ToolChoiceMode::Required)));
        assert_eq!(r.stop.unwrap().to_vec(), vec!["END".to_string()]);
    }

    #[test]
    fn invalid_content_parts_are_errors_not_panics() {
        for bad in [
            json!({"model": "m", "messages": [{"role": "user", "content": [42]}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": [{"text": "no type"}]}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}),
            json!({"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}),
        ] {
            assert!(serde_json::from_value::<ChatRequest>(bad).is_err());
        }
    }

    #[test]
    fn response_round_trips_with_null_content_and_unknown_finish_reason() {
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                "finish_reason": "tool_calls", "logprobs": null}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 2}},
            "system_fingerprint": "fp"
        });
        let r: ChatResponse = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(r.usage.as_ref().unwrap().cached_tokens(), 4);
        assert_eq!(r.usage.as_ref().unwrap().reasoning_tokens(), 2);
        let mut expected = body;
        // `logprobs: null` is dropped: absent and null mean the same to every OpenAI client.
        expected["choices"][0].as_object_mut().unwrap().remove("logprobs");
        assert_eq!(serde_json::to_value(&r).unwrap(), expected);
        let odd: FinishReason = serde_json::from_value(json!("eos")).unwrap();
        assert_eq!(odd, FinishReason::Other("eos".into()));
    }

    #[test]
    fn accumulator_rebuilds_text_and_interleaved_tool_calls() {
        let chunks = [
            json!({"id": "c1", "model": "m", "created": 3, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}),
            json!({"id": "c1", "model": "m", "created": 3, "choices": [{"index": 0, "delta": {"content": "lo", "tool_calls": [
                {"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{\"x\""}},
                {"index": 1, "id": "b", "type": "function", "function": {"name": "g", "arguments": ""}}]}}]}),
            json!({"id": "c1", "model": "m", "created": 3, "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 1, "function": {"arguments": "{}"}}, {"index": 0, "function": {"arguments": ":1}"}}]}, "finish_reason": "tool_calls"}]}),
            json!({"id": "c1", "model": "m", "created": 3, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}),
        ];
        let mut acc = StreamAccumulator::new();
        for c in chunks {
            acc.push(&serde_json::from_value(c).unwrap());
        }
        let r = acc.finish();
        assert_eq!(r.first_text(), Some("Hello"));
        let calls = r.choices[0].message.tool_calls.as_ref().unwrap();
        assert_eq!(calls[0].function.arguments, "{\"x\":1}");
        assert_eq!(calls[1].function.name, "g");
        assert_eq!(calls[1].function.arguments, "{}");
        assert_eq!(r.choices[0].finish_reason, Some(FinishReason::ToolCalls));
        assert_eq!(r.usage.unwrap().total_tokens, 7);
    }
}
