//! The floor: the least a reverse proxy can do. Every request is forwarded unchanged (method,
//! path, headers, streamed body) to one upstream over pooled keep-alive HTTP/1.1 connections, and
//! the upstream's response is streamed back. No parsing, no auth, no logging: what is left is the
//! cost of an HTTP hop, which is what a gateway's overhead is measured against.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Upstream = Client<HttpConnector, Incoming>;
type Body = Either<Incoming, Full<Bytes>>;

async fn forward(
    client: Upstream,
    upstream: SocketAddr,
    host: HeaderValue,
    req: Request<Incoming>,
) -> Result<Response<Body>, http::Error> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = Uri::builder().scheme("http").authority(upstream.to_string()).path_and_query(path).build()?;
    parts.headers.insert(header::HOST, host);
    match client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => Ok(resp.map(Either::Left)),
        Err(e) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Either::Right(Full::new(Bytes::from(format!("upstream error: {e}"))))),
    }
}

/// Serves the floor proxy on `listener`, forwarding to `upstream`, until the task is dropped.
pub async fn serve(listener: TcpListener, upstream: SocketAddr) -> io::Result<()> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream =
        Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build(connector);
    let host = HeaderValue::from_str(&upstream.to_string()).map_err(io::Error::other)?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (client, host) = (client.clone(), host.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| forward(client.clone(), upstream, host.clone(), req));
            let _ =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
