//! # tollgate (the command)
//!
//! `tollgate serve --config FILE [--host H] [--port P] [--log-format pretty|json]` runs the
//! gateway; `tollgate check-config FILE` validates a config without serving (exit code 0 when it
//! loads, 1 otherwise; problems and unsupported keys are printed). While serving, the config file
//! is reloaded when it changes (checked every second) or on SIGHUP, without dropping connections.
//!
//! `tollgate models` lists the price table, `tollgate cost` prices a usage or a request file on
//! one or several models, `tollgate chat` talks to a model (through a proxy or the SDK), and
//! `tollgate import-litellm-config` reports what of a LiteLLM config tollgate supports.
//!
//! **Must never depend on** anything but the tollgate crates (proxy, SDK, pricing, core) and plain
//! CLI/logging crates: all behaviour lives in the libraries, so it stays testable there.

mod chat;
mod import;
mod pricing_cmds;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tollgate_proxy::{Gateway, ProxyConfig};

#[derive(Debug, Parser)]
#[command(
    name = "tollgate",
    version,
    about = "An OpenAI-compatible LLM gateway (LiteLLM-compatible config)",
    after_help = "Exit codes:\n  0  success\n  1  failure (invalid config, request error, provider error)\n  2  usage mistake, or the model / item asked for is not known\n\nRun `tollgate <command> --help` for examples."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the gateway.
    Serve {
        /// The config file (LiteLLM's config.yaml schema).
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long, default_value = "0.0.0.0")]
        host: String,
        #[arg(long, short, default_value_t = 4000)]
        port: u16,
        /// Log format (default: pretty, or json when `litellm_settings.json_logs` is true).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Check a config file without serving: exit code 0 when it loads, 1 otherwise.
    #[command(after_help = "Example:\n  tollgate check-config config.yaml")]
    CheckConfig {
        /// The config file.
        file: PathBuf,
    },
    /// List models from the price table: provider, context window, prices, capabilities.
    #[command(
        after_help = "Examples:\n  tollgate models gpt-4o\n  tollgate models --provider anthropic --supports vision\n  tollgate models claude --mode chat --supports function_calling --supports prompt_caching\n  tollgate models --provider openai --mode embedding --json | jq '.[].model'\n\nPrices are USD per million tokens, exact. Exit code 2 when no model matches."
    )]
    Models {
        /// Only models whose name contains this text (case-insensitive).
        filter: Option<String>,
        /// Only this provider (`openai`, `anthropic`, `vertex_ai`, `bedrock`, …).
        #[arg(long)]
        provider: Option<String>,
        /// Only this mode (`chat`, `embedding`, `completion`, `image_generation`, `rerank`, …).
        #[arg(long)]
        mode: Option<String>,
        /// Only models with this capability (`function_calling`, `vision`, `reasoning`, …); repeatable.
        #[arg(long)]
        supports: Vec<String>,
        /// Print JSON (a list of objects) for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Price a usage (token counts) or an OpenAI chat request file on one or several models.
    #[command(
        after_help = "Examples:\n  tollgate cost gpt-4o --prompt-tokens 1000 --completion-tokens 500\n  tollgate cost gpt-4o,claude-sonnet-4-5 --prompt-tokens 200000 --completion-tokens 2000 --cached-tokens 150000\n  tollgate cost o3 --prompt-tokens 5000 --completion-tokens 4000 --reasoning-tokens 3000 --tier flex\n  tollgate cost gpt-4o-mini --request request.json --completion-tokens 300 --json\n\nToken counts follow OpenAI's usage: --cached-tokens and --cache-creation-tokens are part of\n--prompt-tokens, --reasoning-tokens is part of --completion-tokens. Amounts are exact USD.\nExit code 2 when no model named has a known price."
    )]
    Cost {
        /// Model name(s), comma-separated (`gpt-4o,anthropic/claude-sonnet-4-5`).
        models: String,
        /// Input tokens, cache reads and writes included.
        #[arg(long, required_unless_present = "request")]
        prompt_tokens: Option<u64>,
        /// Output tokens, reasoning included.
        #[arg(long, default_value_t = 0)]
        completion_tokens: u64,
        /// Prompt tokens read from the cache.
        #[arg(long, default_value_t = 0)]
        cached_tokens: u64,
        /// Prompt tokens written to the cache.
        #[arg(long, default_value_t = 0)]
        cache_creation_tokens: u64,
        /// Completion tokens spent on reasoning.
        #[arg(long, default_value_t = 0)]
        reasoning_tokens: u64,
        /// Service tier.
        #[arg(long, value_parser = ["batch", "priority", "flex"])]
        tier: Option<String>,
        /// An OpenAI chat request (JSON): its prompt tokens are counted with the tokenizer.
        #[arg(long, conflicts_with = "prompt_tokens")]
        request: Option<PathBuf>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Chat with a model: one-shot with MESSAGE, else interactive (one line per turn, `/exit` ends).
    #[command(
        after_help = "Examples:\n  tollgate chat gpt-4o-mini \"Say hi\"            # straight through the SDK, OPENAI_API_KEY from the env\n  tollgate chat anthropic/claude-sonnet-4-5     # interactive; ANTHROPIC_API_KEY from the env\n  tollgate chat my-group \"Hi\" --url http://localhost:4000 --key sk-1234   # through a running proxy\n  echo \"Hi\" | TOLLGATE_API_KEY=sk-1234 tollgate chat my-group --url http://localhost:4000\n\nReplies are streamed as they arrive. Errors print the provider's message and exit 1."
    )]
    Chat {
        /// The model (`gpt-4o`, `groq/llama-3.3-70b-versatile`), or a proxy model group with --url.
        model: String,
        /// Send this one message and exit; without it, read messages from stdin.
        message: Option<String>,
        /// A system message.
        #[arg(long)]
        system: Option<String>,
        /// A running tollgate (or other OpenAI-compatible) proxy, e.g. `http://localhost:4000`.
        #[arg(long)]
        url: Option<String>,
        /// The proxy key (default: `TOLLGATE_API_KEY`).
        #[arg(long, requires = "url")]
        key: Option<String>,
    },
    /// Read a LiteLLM config: what tollgate supports, what it ignores; optionally write a tollgate config.
    #[command(
        after_help = "Examples:\n  tollgate import-litellm-config litellm_config.yaml\n  tollgate import-litellm-config litellm_config.yaml --write tollgate.yaml && tollgate check-config tollgate.yaml\n\nExit code 0 when the config loads, 1 when it is invalid (problems are listed)."
    )]
    ImportLitellmConfig {
        /// The LiteLLM config file.
        file: PathBuf,
        /// Write a normalised tollgate config (unsupported keys removed) to this file.
        #[arg(long)]
        write: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::Models { filter, provider, mode, supports, json } => {
            pricing_cmds::models(&pricing_cmds::ModelsArgs {
                filter: filter.as_deref(),
                provider: provider.as_deref(),
                mode: mode.as_deref(),
                supports: &supports,
                json,
            })
        }
        Command::Cost {
            models,
            prompt_tokens,
            completion_tokens,
            cached_tokens,
            cache_creation_tokens,
            reasoning_tokens,
            tier,
            request,
            json,
        } => pricing_cmds::cost(&pricing_cmds::CostArgs {
            models: &models,
            prompt_tokens,
            completion_tokens,
            cached_tokens,
            cache_creation_tokens,
            reasoning_tokens,
            tier: tier.as_deref(),
            request: request.as_deref(),
            json,
        }),
        Command::Chat { model, message, system, url, key } => {
            chat::chat(chat::ChatArgs { model, message, system, url, key })
        }
        Command::ImportLitellmConfig { file, write } => import::import(&file, write.as_deref()),
        Command::Serve { config, host, port, log_format } => match serve(&config, &host, port, log_format) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match ProxyConfig::load(file) {
        Ok(cfg) => {
            println!(
                "{}: ok ({} model group(s): {})",
                file.display(),
                cfg.model_groups.len(),
                cfg.model_groups.join(", ")
            );
            if !cfg.unsupported_keys.is_empty() {
                println!("keys tollgate does not support yet (ignored):");
                for k in &cfg.unsupported_keys {
                    println!("  - {k}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: invalid configuration", file.display());
            for p in e.problems() {
                eprintln!("  - {p}");
            }
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

fn serve(
    config: &std::path::Path,
    host: &str,
    port: u16,
    log_format: Option<LogFormat>,
) -> anyhow::Result<()> {
    // Load first so the log format can come from the config; problems go to stderr either way.
    let cfg = ProxyConfig::load(config)?;
    let format = log_format.unwrap_or(if cfg.json_logs { LogFormat::Json } else { LogFormat::Pretty });
    init_logging(format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let gateway = Gateway::new(cfg)?;
        // Reload models and routing when the file changes (polled every second) or on SIGHUP.
        let mut watcher = gateway.reloader().watch(Some(std::time::Duration::from_secs(1)), true);
        watcher.ready().await;
        // Host names (`localhost`) are resolved; IPv6 literals may be written with or without brackets.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let listener = tokio::net::TcpListener::bind((host, port))
            .await
            .with_context(|| format!("cannot listen on {host}:{port}"))?;
        gateway.serve(listener, tollgate_proxy::shutdown_signal()).await?;
        Ok(())
    })
}
