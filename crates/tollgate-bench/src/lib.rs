//! # tollgate-bench
//!
//! Dev-only benchmark tools, driven by `cargo xtask bench` (see `docs/benchmarks.md`):
//!
//! * [`upstream`] / `bench-upstream`: an instant mock OpenAI upstream (a fixed chat completion,
//!   or a fixed SSE stream when the request has `"stream": true`).
//! * [`floor`] / `bench-floor`: the baseline, a minimal hyper reverse proxy with pooled upstream
//!   connections that does nothing else.
//! * [`load`] / `bench-load`: a closed-loop HTTP/1.1 keep-alive load generator with a latency
//!   [`hist::Histogram`] and `/proc` sampling ([`procfs`]) of the process under test.
//!
//! The servers print `listening on http://ADDR` as their first stdout line, so a driver can bind
//! port 0 and read the port back. Load is only ever sent to loopback addresses.
//!
//! **Must never depend on** any tollgate crate: the tools measure the gateway from outside, the
//! same way they measure the floor. Nothing may depend on this crate except dev tooling.

pub mod args;
pub mod floor;
pub mod hist;
pub mod load;
pub mod procfs;
pub mod upstream;

use std::io::Write;
use std::net::SocketAddr;

/// Prints the line drivers wait for (`listening on http://ADDR`) and flushes stdout.
pub fn announce(addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = out.flush();
}

/// A tokio runtime with `threads` workers (0 = one per core).
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all();
    if threads > 0 {
        b.worker_threads(threads);
    }
    b.build()
}

/// Parses a `HOST:PORT` that must be a loopback address.
pub fn loopback_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.strip_prefix("http://").unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let s = s.replace("localhost", "127.0.0.1");
    let addr: SocketAddr = s.parse().map_err(|_| format!("`{s}` is not an IP:PORT address"))?;
    if addr.ip().is_loopback() { Ok(addr) } else { Err(format!("{addr} is not a loopback address")) }
}
