//! Calls an OpenAI-compatible vendor chosen by its model prefix (`groq/…`), with the base URL
//! taken from the vendor's environment variable (`GROQ_API_BASE`).
//!
//! ```sh
//! cargo run -p tollgate --example vendor_by_prefix
//! ```
//!
//! The example points `GROQ_API_BASE` at the in-repo mock through the client's environment
//! lookup (the process environment with two variables overlaid), so it runs offline. With a real
//! `GROQ_API_KEY` exported and no overlay, the same code calls Groq.

use std::collections::HashMap;

use tollgate::{ChatRequest, Client, Message};
use tollgate_testkit::MockServer;

/// Runs the example; returns the reply and the path the vendor request went to.
pub(crate) async fn run() -> Result<(String, String), Box<dyn std::error::Error>> {
    let mock = MockServer::start_openai().await;
    let overlay: HashMap<&'static str, String> =
        HashMap::from([("GROQ_API_BASE", mock.openai_base()), ("GROQ_API_KEY", "gsk-mock".to_owned())]);
    let client = Client::builder()
        .env(move |name| overlay.get(name).cloned().or_else(|| std::env::var(name).ok()))
        .build()?;

    let req = ChatRequest::new("groq/llama-3.3-70b-versatile", vec![Message::user("hello from tollgate")]);
    let resp = client.completion(req).await?;
    let reply = resp.first_text().unwrap_or_default().to_owned();
    println!("groq answered: {reply}");

    let seen = mock.last_request().ok_or("the mock saw no request")?;
    println!("sent to {} with model {}", seen.path, seen.json()?["model"]);
    Ok((reply, seen.path))
}

#[allow(dead_code)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run().await.map(|_| ())
}
