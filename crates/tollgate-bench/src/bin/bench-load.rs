//! `bench-load --url http://127.0.0.1:PORT/v1/chat/completions [options]`: closed-loop HTTP/1.1
//! keep-alive load; prints one JSON report on stdout (and a summary on stderr).
//!
//! Options: `--concurrency N` (1), `--duration SECS` or `--requests N` (default 1000 requests),
//! `--warmup SECS` (0), `--mode nonstream|stream|mixed`, `--model NAME` (`bench-model`),
//! `--header 'name: value'` (repeatable), `--disconnect-every N` (abandon every N-th request
//! after its response head), `--watch-pid PID` (sample CPU/RSS of the process under test),
//! `--rss-every-ms MS` (RSS samples during the run), `--progress`, `--threads N` (0 = per core).

use std::process::ExitCode;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tollgate_bench::args::Args;
use tollgate_bench::load::{self, Limit, LoadConfig, Mode};

const KNOWN: &[&str] = &[
    "url",
    "concurrency",
    "duration",
    "requests",
    "warmup",
    "mode",
    "model",
    "header",
    "disconnect-every",
    "watch-pid",
    "rss-every-ms",
    "progress",
    "threads",
];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn secs(args: &Args, name: &str) -> Result<Option<Duration>, String> {
    match args.value(name) {
        None => Ok(None),
        Some(v) => {
            let s: f64 = v.parse().map_err(|_| format!("--{name}: `{v}` is not a number of seconds"))?;
            Duration::try_from_secs_f64(s).map(Some).map_err(|e| format!("--{name}: {e}"))
        }
    }
}

fn run() -> Result<(), String> {
    let args = Args::parse(std::env::args().skip(1))?;
    if let [first, ..] = args.unknown(KNOWN).as_slice() {
        return Err(format!("unknown flag {first}"));
    }
    let url = args.value("url").ok_or("--url http://127.0.0.1:PORT/PATH is required")?;
    let rest = url.strip_prefix("http://").ok_or("--url must start with http://")?;
    let (authority, path) =
        rest.split_once('/').map_or((rest, "/"), |(a, p)| (a, &url[url.len() - p.len() - 1..]));
    let mut cfg = LoadConfig::new(tollgate_bench::loopback_addr(authority)?);
    cfg.path = path.to_owned();
    cfg.concurrency = args.parsed("concurrency", 1)?;
    cfg.limit = match (secs(&args, "duration")?, args.value("requests")) {
        (Some(_), Some(_)) => return Err("give --duration or --requests, not both".into()),
        (Some(d), None) => Limit::Duration(d),
        (None, _) => Limit::Requests(args.parsed("requests", 1_000)?),
    };
    cfg.warmup = secs(&args, "warmup")?.unwrap_or(Duration::ZERO);
    cfg.mode = match args.value("mode") {
        None => Mode::NonStream,
        Some(m) => Mode::parse(m).ok_or(format!("--mode: `{m}` is not nonstream, stream or mixed"))?,
    };
    if let Some(m) = args.value("model") {
        cfg.model = m.to_owned();
    }
    for h in args.values("header") {
        let (k, v) = h.split_once(':').ok_or(format!("--header `{h}` is not `name: value`"))?;
        let k = HeaderName::from_bytes(k.trim().as_bytes()).map_err(|e| format!("--header `{h}`: {e}"))?;
        let v = HeaderValue::from_str(v.trim()).map_err(|e| format!("--header `{h}`: {e}"))?;
        cfg.headers.push((k, v));
    }
    cfg.disconnect_every = args.parsed("disconnect-every", 0)?;
    cfg.watch_pid =
        args.value("watch-pid").map(|p| p.parse().map_err(|_| format!("--watch-pid `{p}`"))).transpose()?;
    cfg.rss_every = args
        .value("rss-every-ms")
        .map(|v| v.parse::<u64>().map(Duration::from_millis).map_err(|_| format!("--rss-every-ms `{v}`")))
        .transpose()?;
    cfg.progress = args.flag("progress");

    let rt = tollgate_bench::runtime(args.parsed("threads", 0)?).map_err(|e| e.to_string())?;
    let report = rt.block_on(load::run(cfg)).map_err(|e| e.to_string())?;
    let h = &report.latency;
    eprintln!(
        "{} c={}: {} ok, {} errors, {} aborted in {:.2}s = {:.0} req/s; p50 {:.1} µs, p99 {:.1} µs",
        report.mode.name(),
        report.concurrency,
        report.requests,
        report.errors,
        report.aborted,
        report.elapsed.as_secs_f64(),
        report.rps(),
        h.percentile(50.0) as f64 / 1e3,
        h.percentile(99.0) as f64 / 1e3,
    );
    for e in &report.error_samples {
        eprintln!("  error: {e}");
    }
    println!("{}", report.to_json());
    Ok(())
}
