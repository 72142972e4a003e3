//! The mock server over real loopback HTTP (HTTP/1.1 and h2c), with a plain reqwest client.

// Test helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tollgate_core::chat::{ChatChunk, ChatResponse, StreamAccumulator};
use tollgate_core::sse::SseDecoder;
use tollgate_testkit::{MockResponse, MockServer, OpenAiChatStream, RecordedRequest, sse_data, sse_event};

fn h1() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().http1_only().build().unwrap()
}

fn h2c() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().http2_prior_knowledge().build().unwrap()
}

/// Reads the body chunk by chunk as the client receives it.
async fn chunks(mut resp: reqwest::Response) -> Result<Vec<Vec<u8>>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(c) = resp.chunk().await? {
        out.push(c.to_vec());
    }
    Ok(out)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn sse_data_of(body: &[u8]) -> Vec<String> {
    let mut events = Vec::new();
    SseDecoder::new().feed(body, &mut events).unwrap();
    events.into_iter().map(|e| e.data).collect()
}

#[tokio::test]
async fn urls_use_an_ephemeral_loopback_port() {
    let a = MockServer::start().await;
    let b = MockServer::start().await;
    assert_eq!(a.addr().ip().to_string(), "127.0.0.1");
    assert_ne!(a.addr().port(), 0);
    assert_ne!(a.addr().port(), b.addr().port());
    assert_eq!(a.url(), format!("http://127.0.0.1:{}", a.addr().port()));
    assert_eq!(a.openai_base(), format!("{}/v1", a.url()));
}

#[tokio::test]
async fn scripted_responses_are_fifo_and_per_path_ones_go_first() {
    let server = MockServer::start().await;
    server.enqueue(MockResponse::bytes("text/plain", "any-1"));
    server.enqueue(MockResponse::bytes("text/plain", "any-2").status(201));
    server.enqueue_for("/v1/embeddings", MockResponse::bytes("text/plain", "emb-1"));
    server.enqueue_for("/v1/embeddings", MockResponse::bytes("text/plain", "emb-2"));
    assert_eq!(server.pending(), 4);
    let client = h1();
    let get = |path: &'static str| {
        let client = client.clone();
        let url = format!("{}{path}", server.url());
        async move {
            let r = client.post(url).body("{}").send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/v1/embeddings").await, (200, "emb-1".into()));
    assert_eq!(get("/v1/chat/completions").await, (200, "any-1".into()));
    assert_eq!(get("/v1/embeddings").await, (200, "emb-2".into()));
    // The embeddings queue is empty now: the shared queue answers.
    assert_eq!(get("/v1/embeddings").await, (201, "any-2".into()));
    assert_eq!(server.pending(), 0);
    // Nothing left and no responder: a 500 that says so.
    let r = client.post(format!("{}/v1/embeddings", server.url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 500);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "nothing_scripted");
    assert!(body["error"]["message"].as_str().unwrap().contains("POST /v1/embeddings"), "{body}");
}

#[tokio::test]
async fn always_answers_everything_after_the_queues() {
    let server = MockServer::start_openai().await;
    server.always(MockResponse::openai_error(503, "server_error", None, "down").retry_after(7));
    server.enqueue(MockResponse::openai_chat("first"));
    let client = h1();
    let url = format!("{}/v1/chat/completions", server.url());
    let first: Value = client.post(&url).body("{}").send().await.unwrap().json().await.unwrap();
    assert_eq!(first["choices"][0]["message"]["content"], "first");
    for _ in 0..3 {
        let r = client.post(&url).body("{}").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 503);
        assert_eq!(r.headers()["retry-after"], "7");
    }
    server.clear_always();
    // Back to the default responder, which refuses the empty body.
    assert_eq!(client.post(&url).body("{}").send().await.unwrap().status().as_u16(), 400);
}

#[tokio::test]
async fn requests_are_recorded_before_the_response_is_sent() {
    for (client, version) in [(h1(), http::Version::HTTP_11), (h2c(), http::Version::HTTP_2)] {
        let server = MockServer::start().await;
        server.always(MockResponse::openai_chat("ok"));
        let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "héllo"}]});
        let r = client
            .post(format!("{}/openai/deployments/dep/chat/completions?api-version=2024-10-21", server.url()))
            .header("api-key", "secret-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), version);
        // Asserting right after the call returns, before the body is even read.
        assert_eq!(server.request_count(), 1);
        let rec: RecordedRequest = server.last_request().unwrap();
        assert_eq!(rec.seq, 0);
        assert_eq!(rec.method, http::Method::POST);
        assert_eq!(rec.path, "/openai/deployments/dep/chat/completions");
        assert_eq!(rec.query.as_deref(), Some("api-version=2024-10-21"));
        assert_eq!(rec.query_param("api-version"), Some("2024-10-21"));
        assert_eq!(rec.version, version);
        assert_eq!(rec.header("api-key"), Some("secret-key"));
        assert_eq!(rec.header("content-type"), Some("application/json"));
        assert_eq!(rec.json().unwrap(), body);
        r.bytes().await.unwrap();

        client.get(format!("{}/v1/models", server.url())).send().await.unwrap();
        let all = server.requests();
        assert_eq!(all.len(), 2);
        assert_eq!((all[1].seq, all[1].method.as_str(), all[1].path.as_str()), (1, "GET", "/v1/models"));
        assert!(all[1].body.is_empty());
        assert_eq!(server.requests_for("/v1/models").len(), 1);
        server.clear_requests();
        assert!(server.requests().is_empty());
        assert_eq!(server.request_count(), 2);
    }
}

#[tokio::test]
async fn recording_can_be_switched_off_but_requests_are_still_counted() {
    let server = MockServer::start_openai().await;
    server.set_recording(false);
    h1().get(format!("{}/v1/models", server.url())).send().await.unwrap();
    assert_eq!(server.request_count(), 1);
    assert!(server.last_request().is_none());
    server.set_recording(true);
    h1().get(format!("{}/models", server.url())).send().await.unwrap();
    assert_eq!(server.last_request().unwrap().seq, 1);
}

#[tokio::test]
async fn chunk_size_splits_the_body_on_the_wire() {
    let body = "data: {\"content\":\"héllo 🦀 wörld\"}\n\n".repeat(4).into_bytes();
    for client in [h1(), h2c()] {
        let server = MockServer::start().await;
        server.enqueue(
            MockResponse::sse_raw(body.clone()).chunk_size(5).delay_between_chunks(Duration::from_millis(2)),
        );
        let r = client.get(server.url()).send().await.unwrap();
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let got = chunks(r).await.unwrap();
        assert_eq!(got.concat(), body);
        // Never more than one scripted chunk per received chunk.
        assert!(
            got.iter().all(|c| !c.is_empty() && c.len() <= 5),
            "{:?}",
            got.iter().map(Vec::len).collect::<Vec<_>>()
        );
        assert!(got.len() >= body.len().div_ceil(5));
        // Some chunk ends inside a multi-byte code point.
        assert!(got.iter().any(|c| std::str::from_utf8(c).is_err()));
    }
}

#[tokio::test]
async fn explicit_chunks_and_raw_garbage_arrive_byte_for_byte() {
    let server = MockServer::start().await;
    let garbage: Vec<u8> = vec![0xff, 0xfe, 0x00, 0xc3];
    server.enqueue(MockResponse::bytes("application/octet-stream", garbage.clone()).status(502));
    server.enqueue(MockResponse::bytes("text/html", "<html><body>Bad Gateway</body></html>").status(502));
    server.enqueue(MockResponse::chunked(
        "application/vnd.amazon.eventstream",
        [&b"\x00\x00"[..], b"\x00\x1f", b"rest"],
    ));
    let client = h1();
    let r = client.get(server.url()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 502);
    assert_eq!(r.bytes().await.unwrap().to_vec(), garbage);
    let r = client.get(server.url()).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/html");
    assert_eq!(r.text().await.unwrap(), "<html><body>Bad Gateway</body></html>");
    let r = client.get(server.url()).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/vnd.amazon.eventstream");
    assert_eq!(chunks(r).await.unwrap().concat(), b"\x00\x00\x00\x1frest");
}

#[tokio::test]
async fn delay_before_headers_holds_the_status_line_back() {
    let server = MockServer::start().await;
    server.enqueue(MockResponse::openai_chat("late").delay_before_headers(Duration::from_millis(300)));
    let client = h1();
    let started = Instant::now();
    let r = client.post(format!("{}/v1/chat/completions", server.url())).body("{}").send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "headers after {:?}", started.elapsed());
    assert_eq!(r.status().as_u16(), 200);
    // The request was recorded on arrival, not after the delay.
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn delay_between_chunks_spaces_the_body() {
    let server = MockServer::start().await;
    server.enqueue(
        MockResponse::bytes("text/plain", "abcd")
            .chunk_size(1)
            .delay_between_chunks(Duration::from_millis(60)),
    );
    let r = h1().get(server.url()).send().await.unwrap();
    let started = Instant::now();
    let got = chunks(r).await.unwrap();
    assert_eq!(got.concat(), b"abcd");
    // Three gaps of 60ms between four chunks (the first may already have been waiting).
    assert!(started.elapsed() >= Duration::from_millis(120), "body after {:?}", started.elapsed());
}

#[tokio::test]
async fn stalled_bodies_never_end() {
    for client in [h1(), h2c()] {
        let server = MockServer::start().await;
        server.enqueue(
            MockResponse::sse_raw("data: 1\n\ndata: 2\n\ndata: 3\n\n").chunk_size(9).stall_after_chunks(2),
        );
        let mut r = client.get(server.url()).send().await.unwrap();
        let mut got = Vec::new();
        while got.len() < 18 {
            got.extend_from_slice(&r.chunk().await.unwrap().unwrap());
        }
        assert_eq!(got, b"data: 1\n\ndata: 2\n\n");
        let next = tokio::time::timeout(Duration::from_millis(300), r.chunk()).await;
        assert!(next.is_err(), "the stalled body produced {next:?}");
    }
}

#[tokio::test]
async fn cut_bodies_end_with_an_error_after_their_chunks() {
    for client in [h1(), h2c()] {
        let server = MockServer::start().await;
        server.enqueue(
            MockResponse::openai_stream_text(["Hel", "lo"], Some((3, 2))).chunk_size(40).cut_after_chunks(3),
        );
        let mut r = client.post(format!("{}/v1/chat/completions", server.url())).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let mut got = Vec::new();
        let err = loop {
            match r.chunk().await {
                Ok(Some(c)) => got.extend_from_slice(&c),
                Ok(None) => panic!("the body ended cleanly after {} bytes", got.len()),
                Err(e) => break e,
            }
        };
        assert!(err.is_body() || err.is_decode() || err.is_request(), "{err:?}");
        assert_eq!(got.len(), 120);
    }
    // A cut with the whole body sent still lacks the terminator.
    let server = MockServer::start().await;
    server.enqueue(MockResponse::bytes("application/json", "{\"a\":1}").chunk_size(100).cut_after_chunks(1));
    let r = h1().get(server.url()).send().await.unwrap();
    assert!(r.bytes().await.is_err());
}

#[tokio::test]
async fn hang_up_sends_no_response() {
    let server = MockServer::start().await;
    server.enqueue(MockResponse::hang_up());
    server.enqueue(MockResponse::ok());
    let err = h1().get(server.url()).send().await.unwrap_err();
    assert!(err.is_request() || err.is_connect(), "{err:?}");
    assert_eq!(server.request_count(), 1);
    // The server keeps serving other connections.
    assert_eq!(h1().get(server.url()).send().await.unwrap().status().as_u16(), 200);
}

#[tokio::test]
async fn invalid_scripts_answer_500_instead_of_panicking() {
    let server = MockServer::start().await;
    server.enqueue(MockResponse::ok().status(1000));
    server.enqueue(MockResponse::ok().header("bad header", "x"));
    server.enqueue(MockResponse::ok().header("x-ok", "line\nbreak"));
    for _ in 0..3 {
        let r = h1().get(server.url()).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 500);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_script");
    }
}

#[tokio::test]
async fn default_chat_response_matches_the_golden_fixture() {
    let server = MockServer::start_openai().await;
    let request = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": "say "}, {"type": "text", "text": "something nice"}]}
        ]
    });
    let r = h1()
        .post(format!("{}/v1/chat/completions", server.openai_base().trim_end_matches("/v1")))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["x-request-id"], "req_mock_0");
    let got: Value = r.json().await.unwrap();
    let want: Value = serde_json::from_slice(&fixture("openai_chat_default.json")).unwrap();
    assert_eq!(got, want);
    // And it is a valid canonical response.
    let parsed: ChatResponse = serde_json::from_value(got).unwrap();
    assert_eq!(parsed.first_text(), Some("echo: say something nice"));
}

#[tokio::test]
async fn default_chat_stream_matches_the_golden_fixture_and_the_non_streamed_answer() {
    let server = MockServer::start_openai().await;
    let mut request = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "stream me please"}],
        "stream": true,
        "stream_options": {"include_usage": true}
    });
    let r = h2c().post(format!("{}/chat/completions", server.url())).json(&request).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let body = r.bytes().await.unwrap();
    assert!(body.starts_with(b"data: {") && body.ends_with(b"\n\ndata: [DONE]\n\n"));
    let data = sse_data_of(&body);
    // Value-for-value per event (JSON key order is not part of the format).
    let want = sse_data_of(&fixture("openai_chat_stream_default.sse"));
    assert_eq!(data.len(), want.len());
    for (got, want) in data.iter().zip(&want) {
        if want == "[DONE]" {
            assert_eq!(got, want);
        } else {
            assert_eq!(
                serde_json::from_str::<Value>(got).unwrap(),
                serde_json::from_str::<Value>(want).unwrap()
            );
        }
    }

    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let mut acc = StreamAccumulator::new();
    for d in &data[..data.len() - 1] {
        let chunk: ChatChunk = serde_json::from_str(d).unwrap();
        assert_eq!(chunk.id, "chatcmpl-mock-0");
        acc.push(&chunk);
    }
    let streamed = acc.finish();

    request["stream"] = json!(false);
    request.as_object_mut().unwrap().remove("stream_options");
    let whole: ChatResponse = h1()
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(streamed.first_text(), whole.first_text());
    assert_eq!(streamed.first_text(), Some("echo: stream me please"));
    assert_eq!(streamed.usage.as_ref().map(|u| (u.prompt_tokens, u.completion_tokens)), Some((3, 4)));
    assert_eq!(streamed.usage, whole.usage);
    assert_eq!(streamed.choices[0].finish_reason, whole.choices[0].finish_reason);
}

#[tokio::test]
async fn default_stream_without_include_usage_has_no_usage_chunk() {
    let server = MockServer::start_openai().await;
    let request = json!({"model": "m", "messages": [{"role": "user", "content": "a b"}], "stream": true});
    let body = h1()
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(&request)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let data = sse_data_of(&body);
    // role, "echo:", " a", " b", finish, [DONE]
    assert_eq!(data.len(), 6);
    for d in &data[..5] {
        let v: Value = serde_json::from_str(d).unwrap();
        assert!(v.get("usage").is_none(), "{v}");
        assert_eq!(v["model"], "m");
    }
    let first: Value = serde_json::from_str(&data[0]).unwrap();
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let last: Value = serde_json::from_str(&data[4]).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["delta"], json!({}));
}

#[tokio::test]
async fn default_embeddings_models_and_text_completions() {
    let server = MockServer::start_openai().await;
    let client = h1();
    let emb: Value = client
        .post(format!("{}/embeddings", server.openai_base()))
        .json(&json!({"model": "text-embedding-3-small", "input": ["one", "two words", "three"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(emb, serde_json::from_slice::<Value>(&fixture("openai_embeddings_default.json")).unwrap());

    let models: Value =
        client.get(format!("{}/models", server.openai_base())).send().await.unwrap().json().await.unwrap();
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> =
        models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["gpt-4o-mini", "text-embedding-3-small", "gpt-3.5-turbo-instruct"]);
    assert!(models["data"].as_array().unwrap().iter().all(|m| m["object"] == "model"));

    let text: Value = client
        .post(format!("{}/openai/deployments/instruct/completions?api-version=2024-10-21", server.url()))
        .json(&json!({"prompt": "complete this"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(text["object"], "text_completion");
    assert_eq!(text["model"], "instruct");
    assert_eq!(text["choices"][0]["text"], "echo: complete this");
    assert_eq!(text["usage"], json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}));
}

#[tokio::test]
async fn the_default_responder_refuses_bad_bodies_with_400() {
    let server = MockServer::start_openai().await;
    for body in ["", "{", "[1,2]", "\u{0}\u{1}", r#"{"model":"m","messages":[{"role":"nobody"}]}"#] {
        let r = h1().post(format!("{}/v1/chat/completions", server.url())).body(body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    let r = h1().delete(format!("{}/v1/chat/completions", server.url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // Still serving normally.
    let ok = h1().get(format!("{}/v1/models", server.url())).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}

#[tokio::test]
async fn sse_events_and_the_stream_builder_go_over_the_wire() {
    let server = MockServer::start().await;
    server.enqueue(MockResponse::sse([
        sse_event("message_start", "{\"type\":\"message_start\"}"),
        sse_data("x"),
    ]));
    server.enqueue(
        OpenAiChatStream::new("chatcmpl-9", "gpt-x")
            .role()
            .content("a")
            .finish("length")
            .into_response()
            .chunk_size(7),
    );
    let client = h1();
    let body = client.get(server.url()).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&body[..], b"event: message_start\ndata: {\"type\":\"message_start\"}\n\ndata: x\n\n");
    let body = client.get(server.url()).send().await.unwrap().bytes().await.unwrap();
    let data = sse_data_of(&body);
    assert_eq!(data.len(), 4);
    let last: ChatChunk = serde_json::from_str(&data[2]).unwrap();
    assert_eq!(last.choices[0].finish_reason.as_ref().map(|f| f.as_str()), Some("length"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_requests_are_all_answered_and_recorded() {
    let server = MockServer::start_openai().await;
    let client = h1();
    let h2 = h2c();
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let client = if i % 2 == 0 { client.clone() } else { h2.clone() };
        let url = format!("{}/v1/chat/completions", server.url());
        tasks.push(tokio::spawn(async move {
            let body = json!({"model": "m", "messages": [{"role": "user", "content": format!("n{i}")}]});
            let v: Value = client.post(url).json(&body).send().await.unwrap().json().await.unwrap();
            assert_eq!(v["choices"][0]["message"]["content"], format!("echo: n{i}"));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(server.request_count(), 64);
    let mut seqs: Vec<u64> = server.requests().iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..64).collect::<Vec<_>>());
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let server = MockServer::start_openai().await;
    let addr = server.addr();
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn dropping_the_server_ends_stalled_connections() {
    for client in [h1(), h2c()] {
        let server = MockServer::start().await;
        server.enqueue(MockResponse::bytes("text/plain", "abc").chunk_size(1).stall_after_chunks(1));
        let mut r = client.get(server.url()).send().await.unwrap();
        assert_eq!(&r.chunk().await.unwrap().unwrap()[..], b"a");
        drop(server);
        // Generous guard only: the point is that the body ends (with an error), not how fast.
        let end = tokio::time::timeout(Duration::from_secs(20), r.chunk()).await.expect("the body ended");
        assert!(end.is_err(), "{end:?}");
    }
}
