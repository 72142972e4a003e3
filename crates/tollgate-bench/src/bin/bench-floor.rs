//! `bench-floor --upstream 127.0.0.1:PORT [--port P] [--threads N]`: the floor reverse proxy on
//! 127.0.0.1 (port 0 = any free port; the first stdout line says which).

use std::process::ExitCode;

use tollgate_bench::args::Args;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-floor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = Args::parse(std::env::args().skip(1))?;
    if let [first, ..] = args.unknown(&["port", "threads", "upstream"]).as_slice() {
        return Err(format!("unknown flag {first}"));
    }
    let upstream = tollgate_bench::loopback_addr(
        args.value("upstream").ok_or("usage: bench-floor --upstream 127.0.0.1:PORT [--port P]")?,
    )?;
    let port: u16 = args.parsed("port", 0)?;
    let threads: usize = args.parsed("threads", 0)?;
    let rt = tollgate_bench::runtime(threads).map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
        tollgate_bench::announce(listener.local_addr().map_err(|e| e.to_string())?);
        tollgate_bench::floor::serve(listener, upstream).await.map_err(|e| e.to_string())
    })
}
