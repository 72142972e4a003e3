//! `models`, `cost`, `chat` and `import-litellm-config`, driven through the built binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use serde_json::Value;
use tollgate_core::chat::{ChatRequest, CompletionTokensDetails, PromptTokensDetails, Usage};
use tollgate_pricing::{CostOptions, ServiceTier};

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("TOLLGATE_API_KEY").output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tollgate-cli-cmd-{name}"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn models_table_filters_and_aligns() {
    let out = run(&["models", "gpt-4o", "--provider", "openai"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("MODEL"), "{text}");
    // No colour codes when stdout is a pipe.
    assert!(!text.contains('\x1b'), "{text}");
    let row = lines.iter().find(|l| l.split_whitespace().next() == Some("gpt-4o")).expect("gpt-4o row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..6], ["openai", "128000", "16384", "2.5", "10"], "{row}");
    assert!(cells[6].contains("function_calling") && cells[6].contains("vision"), "{row}");
    // Aligned: every row's PROVIDER column starts at the same offset as the header's.
    let col = lines[0].find("PROVIDER").unwrap();
    for l in &lines[1..lines.len() - 1] {
        assert_eq!(&l[col..col + "openai".len()], "openai", "{l}");
        assert!(l.contains("gpt-4o"), "{l}");
    }
    assert!(lines.last().unwrap().ends_with("model(s)"));
}

#[test]
fn models_json_parses_and_honours_every_filter() {
    let out = run(&["models", "--provider", "openai", "--mode", "chat", "--supports", "vision", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.len() > 5);
    for m in &list {
        assert_eq!(m["provider"], "openai", "{m}");
        assert_eq!(m["mode"], "chat", "{m}");
        assert!(m["capabilities"].as_array().unwrap().iter().any(|c| c == "vision"), "{m}");
    }
    let gpt4o = list.iter().find(|m| m["model"] == "gpt-4o").expect("gpt-4o listed");
    assert_eq!(gpt4o["context_window"], 128000);
    assert_eq!(gpt4o["input_cost_per_million_tokens"], "2.5");
    assert_eq!(gpt4o["output_cost_per_million_tokens"], "10");
    // An embedding model is not a chat model.
    assert!(list.iter().all(|m| m["model"] != "text-embedding-3-small"));

    let out = run(&["models", "--supports", "telepathy"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown capability `telepathy`"), "{}", stderr(&out));
    let out = run(&["models", "no-such-model-anywhere-xyz"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cost_gpt4o_hand_checked() {
    // 800 uncached × $2.50/1M + 200 cached × $1.25/1M + 500 output × $10/1M = 0.002 + 0.00025 + 0.005.
    let out = run(&[
        "cost",
        "gpt-4o",
        "--prompt-tokens",
        "1000",
        "--completion-tokens",
        "500",
        "--cached-tokens",
        "200",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("gpt-4o: 1000 prompt + 500 completion tokens"), "{text}");
    assert!(text.contains("input              $0.002\n"), "{text}");
    assert!(text.contains("cache_read         $0.00025\n"), "{text}");
    assert!(text.contains("output             $0.005\n"), "{text}");
    assert!(text.contains("total              $0.00725\n"), "{text}");
}

#[test]
fn cost_json_matches_the_pricing_crate_for_several_models_and_a_tier() {
    let models = ["gpt-4o", "claude-sonnet-4-5", "o3"];
    let out = run(&[
        "cost",
        &models.join(","),
        "--prompt-tokens",
        "250000",
        "--completion-tokens",
        "4000",
        "--cached-tokens",
        "100000",
        "--cache-creation-tokens",
        "50000",
        "--reasoning-tokens",
        "3000",
        "--tier",
        "priority",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let costs = v["costs"].as_array().unwrap();
    assert_eq!(costs.len(), models.len());
    let mut usage = Usage::new(250_000, 4000);
    usage.prompt_tokens_details = Some(PromptTokensDetails {
        cached_tokens: Some(100_000),
        cache_creation_tokens: Some(50_000),
        ..Default::default()
    });
    usage.completion_tokens_details =
        Some(CompletionTokensDetails { reasoning_tokens: Some(3000), ..Default::default() });
    for (model, got) in models.iter().zip(costs) {
        let want =
            tollgate_pricing::cost_with(model, &usage, &CostOptions::tier(ServiceTier::Priority)).unwrap();
        assert_eq!(got["model"], *model);
        assert_eq!(got["total"], want.total.to_string(), "{model}");
        assert_eq!(got["input"], want.input.to_string(), "{model}");
        assert_eq!(got["cache_read"], want.cache_read.to_string(), "{model}");
        assert_eq!(got["output"], want.output.to_string(), "{model}");
        assert!(!want.total.is_zero());
    }
    assert_eq!(v["errors"], Value::Array(vec![]));
}

#[test]
fn cost_unknown_model_exits_2_unless_another_is_priced() {
    let out = run(&["cost", "no-such-model-xyz", "--prompt-tokens", "10", "--completion-tokens", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no price known for model `no-such-model-xyz`"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());

    let out = run(&["cost", "no-such-model-xyz,gpt-4o", "--prompt-tokens", "10", "--completion-tokens", "5"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("note: no price known for model `no-such-model-xyz`"), "{}", stderr(&out));
    assert!(stdout(&out).contains("gpt-4o: 10 prompt + 5 completion tokens"));

    // Neither counts nor a request file: a usage error.
    let out = run(&["cost", "gpt-4o"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cost_of_a_request_file_counts_prompt_tokens_with_the_tokenizer() {
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Summarise the plot of Hamlet in two sentences, please."}]}"#;
    let path = tmp("request.json", body);
    let out = Command::new(BIN)
        .args(["cost", "gpt-4o-mini", "--completion-tokens", "300", "--request"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let req: ChatRequest = serde_json::from_str(body).unwrap();
    let prompt = tollgate_pricing::tokens::count_chat("gpt-4o-mini", &req.messages, &[]).tokens;
    assert!(prompt > 10);
    let want = tollgate_pricing::cost("gpt-4o-mini", &Usage::new(prompt, 300)).unwrap();
    let text = stdout(&out);
    assert!(text.contains(&format!("gpt-4o-mini: {prompt} prompt + 300 completion tokens")), "{text}");
    assert!(text.contains(&format!("total              ${}\n", want.total)), "{text}");

    let bad = tmp("bad-request.json", "{\"messages\": 3}");
    let out = Command::new(BIN).args(["cost", "gpt-4o", "--request"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not an OpenAI chat request"), "{}", stderr(&out));
}

/// A proxy with a mock `echo` group and master key `sk-master`, on 127.0.0.1:0, in a thread.
struct Proxy {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start_proxy() -> Proxy {
    let yaml = "model_list:\n  - model_name: echo\n    litellm_params: {model: mock/echo}\ngeneral_settings:\n  master_key: sk-master\n";
    let env: HashMap<String, String> = HashMap::new();
    let cfg =
        tollgate_proxy::ProxyConfig::from_yaml_str(yaml, "test.yaml", Arc::new(move |n| env.get(n).cloned()))
            .unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            tollgate_proxy::serve_on(listener, cfg, async move {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
        });
    });
    let addr = addr_rx.recv().unwrap();
    Proxy { url: format!("http://{addr}"), stop: Some(stop_tx), thread: Some(thread) }
}

#[test]
fn chat_one_shot_through_a_proxy_prints_the_streamed_reply() {
    let proxy = start_proxy();
    let out = run(&["chat", "echo", "hello from the cli", "--url", &proxy.url, "--key", "sk-master"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello from the cli\n");

    // The key may come from TOLLGATE_API_KEY instead of --key.
    let out = Command::new(BIN)
        .args(["chat", "echo", "via env", "--url", &proxy.url])
        .env("TOLLGATE_API_KEY", "sk-master")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "via env\n");
}

#[test]
fn chat_interactive_keeps_reading_turns_until_exit() {
    let proxy = start_proxy();
    let mut child = Command::new(BIN)
        .args(["chat", "echo", "--system", "be brief", "--url", &proxy.url, "--key", "sk-master"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"first turn\n\nsecond turn here\n/exit\nnever sent\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "first turn\nsecond turn here\n");
}

#[test]
fn chat_with_a_wrong_key_exits_1_with_a_clear_message() {
    let proxy = start_proxy();
    let out = run(&["chat", "echo", "hi", "--url", &proxy.url, "--key", "sk-wrong"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("error: the proxy at {} returned 401", proxy.url)), "{err}");
    assert!(err.contains("--key or TOLLGATE_API_KEY"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn import_litellm_config_reports_and_writes_a_loadable_config() {
    let litellm = "\
model_list:
  - model_name: echo
    litellm_params:
      model: mock/echo
      mock_response: hi
general_settings:
  master_key: sk-1234
  alerting: [slack]
litellm_settings:
  drop_params: true
  cache: true
  success_callback: [langfuse]
";
    let path = tmp("litellm.yaml", litellm);
    let out = Command::new(BIN).arg("import-litellm-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("supported: 1 model group(s): echo"), "{report}");
    for key in ["general_settings.alerting", "litellm_settings.cache", "litellm_settings.success_callback"] {
        assert!(report.contains(&format!("  - {key}: ")), "{key} missing from {report}");
    }
    assert!(report.contains("litellm_settings.cache: response caching is not implemented"), "{report}");
    assert!(report.contains("success_callback: this callback integration is not built in"), "{report}");

    let written = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tollgate-cli-cmd-written.yaml");
    let _ = std::fs::remove_file(&written);
    let out = Command::new(BIN)
        .arg("import-litellm-config")
        .arg(&path)
        .arg("--write")
        .arg(&written)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(text.starts_with("# tollgate config"), "{text}");
    assert!(text.contains("#   - litellm_settings.cache\n"), "{text}");
    let body: String = text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    assert!(!body.contains("cache") && !body.contains("langfuse") && !body.contains("alerting"), "{body}");
    assert!(body.contains("drop_params: true") && body.contains("mock_response: hi"), "{body}");

    let check = Command::new(BIN).arg("check-config").arg(&written).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    let check_out = stdout(&check);
    assert!(check_out.contains("ok (1 model group(s): echo)"), "{check_out}");
    assert!(!check_out.contains("does not support"), "{check_out}");

    let bad = tmp(
        "litellm-bad.yaml",
        "model_list:\n  - model_name: m\n    litellm_params: {model: mock/m, rpm: many}\n",
    );
    let out = Command::new(BIN).arg("import-litellm-config").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("model_list[0].litellm_params.rpm"), "{}", stderr(&out));
}

#[test]
fn help_teaches_with_examples_and_exit_codes() {
    let top = stdout(&run(&["--help"]));
    assert!(top.contains("Exit codes:") && top.contains("2  usage mistake"), "{top}");
    for cmd in ["models", "cost", "chat", "import-litellm-config"] {
        let out = run(&[cmd, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        let help = stdout(&out);
        assert!(help.contains("Example"), "{cmd}: {help}");
        assert!(help.contains(&format!("tollgate {cmd} ")), "{cmd}: {help}");
    }
}

#[test]
fn chat_without_url_goes_straight_through_the_sdk_and_keeps_the_conversation() {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let server = tollgate_testkit::MockServer::start_openai().await;
            tx.send(server.openai_base()).unwrap();
            let _ = stop_rx.await;
            server.requests_for("/v1/chat/completions")
        })
    });
    let base = rx.recv().unwrap();
    let mut child = Command::new(BIN)
        .args(["chat", "gpt-4o-mini", "--system", "be brief"])
        .env("OPENAI_API_KEY", "sk-upstream-test")
        .env("OPENAI_BASE_URL", &base)
        .env_remove("OPENAI_API_BASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"one\ntwo\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let _ = stop_tx.send(());
    let requests = thread.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "echo: one\necho: two\n");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].header("authorization"), Some("Bearer sk-upstream-test"));
    let second = requests[1].json().unwrap();
    let turns: Vec<(String, String)> = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap().to_owned(), m["content"].as_str().unwrap().to_owned()))
        .collect();
    let want = [("system", "be brief"), ("user", "one"), ("assistant", "echo: one"), ("user", "two")];
    assert_eq!(turns, want.map(|(r, c)| (r.to_owned(), c.to_owned())));
}

#[test]
fn chat_without_credentials_exits_1_and_says_what_to_set() {
    let out = Command::new(BIN)
        .args(["chat", "gpt-4o-mini", "hi"])
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_BASE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("OPENAI_API_KEY"), "{err}");
}
