//! Streams a chat completion from the in-repo mock upstream and prints the deltas as they arrive.
//!
//! ```sh
//! cargo run -p tollgate --example stream_from_mock
//! ```
//!
//! Against the real OpenAI API, drop the mock and the `api_base` line: the key then comes from
//! `OPENAI_API_KEY`.

use std::io::Write;

use futures_util::StreamExt;
use tollgate::{ChatRequest, Client, Message};
use tollgate_testkit::MockServer;

/// Runs the example; returns the streamed text (the test suite runs this too).
pub(crate) async fn run() -> Result<String, Box<dyn std::error::Error>> {
    // An OpenAI-compatible mock on 127.0.0.1:<random port> that echoes the last user message.
    let mock = MockServer::start_openai().await;
    let client = Client::builder()
        .no_env()
        .api_base("openai", mock.openai_base())
        .api_key("openai", "sk-mock")
        .build()?;

    let req = ChatRequest::new("gpt-4o-mini", vec![Message::user("tell me about toll gates")]);
    let mut stream = client.stream(req).await?;
    let mut text = String::new();
    let mut out = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        for choice in &chunk.choices {
            if let Some(piece) = &choice.delta.content {
                text.push_str(piece);
                write!(out, "{piece}")?;
                out.flush()?;
            }
        }
    }
    writeln!(out)?;
    if let Some(usage) = stream.usage() {
        writeln!(out, "[{} prompt + {} completion tokens]", usage.prompt_tokens, usage.completion_tokens)?;
    }
    Ok(text)
}

#[allow(dead_code)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run().await.map(|_| ())
}
