//! `tollgate chat`: one-shot or interactive, streamed, through a proxy or straight through the SDK.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use futures_util::StreamExt;
use tollgate::{ChatRequest, Client, Message};

pub(crate) struct ChatArgs {
    pub model: String,
    pub message: Option<String>,
    pub system: Option<String>,
    pub url: Option<String>,
    pub key: Option<String>,
}

/// The SDK client and the model string to send: through a proxy, the proxy's model group is
/// sent as-is to its OpenAI-compatible API (`openai/` selects that wire format).
fn client_for(args: &ChatArgs) -> Result<(Client, String), tollgate::Error> {
    match &args.url {
        Some(url) => {
            let base = url.trim_end_matches('/');
            let base = if base.ends_with("/v1") { base.to_owned() } else { format!("{base}/v1") };
            let mut builder = Client::builder().no_env().api_base("openai", base);
            // A proxy without a master key needs none; send a key only when one is given.
            if let Some(key) = args.key.clone().or_else(|| std::env::var("TOLLGATE_API_KEY").ok()) {
                builder = builder.api_key("openai", key);
            }
            let client = builder.build()?;
            Ok((client, format!("openai/{}", args.model)))
        }
        None => Ok((Client::from_env()?, args.model.clone())),
    }
}

/// Streams one reply to stdout and returns its text.
async fn turn(client: &Client, model: &str, messages: &[Message]) -> Result<String, tollgate::Error> {
    let mut stream = client.stream(ChatRequest::new(model, messages.to_vec())).await?;
    let mut reply = String::new();
    let mut out = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        for choice in &chunk.choices {
            if let Some(text) = &choice.delta.content {
                reply.push_str(text);
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
        }
    }
    let _ = writeln!(out);
    Ok(reply)
}

pub(crate) fn chat(args: ChatArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let (client, model) = client_for(&args)?;
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(Message::system(system.clone()));
        }
        if let Some(message) = &args.message {
            messages.push(Message::user(message.clone()));
            turn(&client, &model, &messages).await?;
            return Ok(());
        }
        let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
        let stdin = std::io::stdin();
        let mut lines = stdin.lock().lines();
        loop {
            if interactive {
                print!("> ");
                let _ = std::io::stdout().flush();
            }
            let Some(Ok(line)) = lines.next() else { break };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if line == "/exit" || line == "/quit" {
                break;
            }
            messages.push(Message::user(line));
            let reply = turn(&client, &model, &messages).await?;
            messages.push(Message::assistant(reply));
        }
        Ok::<(), tollgate::Error>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match (&args.url, e.status) {
                // Through a proxy the SDK's provider is the proxy, so name it rather than `openai`.
                (Some(url), Some(status)) => {
                    eprintln!("error: the proxy at {url} returned {status} ({:?}): {}", e.kind, e.message)
                }
                _ => eprintln!("error: {e}"),
            }
            if e.kind == tollgate::ErrorKind::Authentication {
                match &args.url {
                    Some(_) => eprintln!("hint: pass a key the proxy accepts with --key or TOLLGATE_API_KEY"),
                    None => eprintln!("hint: set the provider's API key variable (e.g. OPENAI_API_KEY)"),
                }
            }
            ExitCode::FAILURE
        }
    }
}
