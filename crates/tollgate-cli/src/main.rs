//! # tollgate (the command)
//!
//! `tollgate serve --config FILE [--host H] [--port P] [--log-format pretty|json]` runs the
//! gateway; `tollgate check-config FILE` validates a config without serving (exit code 0 when it
//! loads, 1 otherwise; problems and unsupported keys are printed). While serving, the config file
//! is reloaded when it changes (checked every second) or on SIGHUP, without dropping connections.
//!
//! **Must never depend on** anything but the proxy and plain CLI/logging crates: all behaviour
//! lives in `tollgate-proxy`, so it stays testable as a library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tollgate_proxy::{Gateway, ProxyConfig};

#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about = "An OpenAI-compatible LLM gateway (LiteLLM-compatible config)")]
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
    CheckConfig {
        /// The config file.
        file: PathBuf,
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
