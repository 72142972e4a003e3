//! Config reload without dropping connections.
//!
//! The part of the gateway a config file can change while it serves (model groups, the router
//! with its deployments and settings, the mock groups, `drop_params`, timeouts, stream
//! keep-alive) lives behind one pointer (`Live`). Every request reads that pointer once, at
//! the start, and keeps what it read until it ends: in-flight requests and streams finish on the
//! state they started with, new requests see the new one.
//!
//! A reload ([`Reloader::reload`]) loads and checks the file; when it is valid, a new SDK client
//! (router) is built and swapped in; when it is not, the old state keeps serving and every
//! problem is logged with its path inside the file. Settings that cannot change while the
//! server runs (the master key, the body size limit, the drain timeout, the log format; host and
//! port are command-line flags) are reported as needing a restart and keep their old values.
//!
//! [`Reloader::watch`] polls the file (modification time, size and a hash of its content, every
//! `poll` interval) and, on Unix, listens for SIGHUP; either triggers a reload.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tollgate::Client;

use crate::ProxyError;
use crate::config::{ConfigError, ProxyConfig};

/// What a config file can change while the gateway serves.
pub(crate) struct Live {
    pub(crate) client: Client,
    pub(crate) config: Arc<ProxyConfig>,
}

/// The pointer every request reads once.
pub(crate) type LiveCell = RwLock<Arc<Live>>;

/// The current live state (a cheap `Arc` clone under a read lock held for no longer than that).
pub(crate) fn current(cell: &LiveCell) -> Arc<Live> {
    match cell.read() {
        Ok(g) => Arc::clone(&g),
        Err(poisoned) => Arc::clone(&poisoned.into_inner()),
    }
}

fn store(cell: &LiveCell, live: Live) {
    let live = Arc::new(live);
    match cell.write() {
        Ok(mut g) => *g = live,
        Err(poisoned) => *poisoned.into_inner() = live,
    }
}

/// Builds the SDK client of a config: the router over its deployments, credentials from the
/// config's environment lookup.
pub(crate) fn build_client(config: &ProxyConfig) -> Result<Client, ProxyError> {
    let env = config.env_lookup();
    let mut builder = Client::builder()
        .env(move |name| env(name))
        .drop_params(config.drop_params)
        .router(config.router.clone());
    if let Some(t) = config.request_timeout {
        builder = builder.timeout(t);
    }
    builder.build().map_err(ProxyError::Client)
}

/// Logs the `litellm_params` request defaults that cannot be applied (see `defaults.rs`).
pub(crate) fn warn_default_conflicts(config: &ProxyConfig) {
    let conflicts = crate::defaults::conflicts(config);
    if !conflicts.is_empty() {
        tracing::warn!(
            file = %config.file,
            "request defaults in litellm_params that differ between deployments of a group are not \
             applied: {}",
            conflicts.join(", ")
        );
    }
}

/// What a reload did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// The new config is serving.
    Applied(ReloadReport),
    /// The file was invalid (or the client could not be built): the old config keeps serving.
    Rejected(ProxyError),
}

impl ReloadOutcome {
    pub fn is_applied(&self) -> bool {
        matches!(self, ReloadOutcome::Applied(_))
    }
}

/// The differences a successful reload made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Model groups that did not exist before.
    pub added_groups: Vec<String>,
    /// Model groups that are gone (their requests now get 404 `model_not_found`).
    pub removed_groups: Vec<String>,
    /// Settings that changed in the file but only take effect after a restart (their old values
    /// stay in force), by config path.
    pub restart_required: Vec<String>,
}

/// Reloads a gateway's config from its file. Cheap to clone; all clones share one gateway.
#[derive(Clone)]
pub struct Reloader {
    path: PathBuf,
    cell: Arc<LiveCell>,
    /// The fingerprint of the file content last looked at (applied or rejected), so an invalid
    /// file is reported once, not at every poll.
    seen: Arc<Mutex<Option<Fingerprint>>>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Modification time, size and content hash of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    hash: u64,
}

fn fingerprint(path: &Path) -> Option<(Fingerprint, String)> {
    let meta = std::fs::metadata(path).ok()?;
    let text = std::fs::read_to_string(path).ok()?;
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    Some((Fingerprint { modified: meta.modified().ok(), len: meta.len(), hash: h.finish() }, text))
}

impl Reloader {
    pub(crate) fn new(path: PathBuf, cell: Arc<LiveCell>) -> Self {
        let seen = fingerprint(&path).map(|(f, _)| f);
        Reloader { path, cell, seen: Arc::new(Mutex::new(seen)) }
    }

    /// The config file this reloader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The config serving new requests now.
    pub fn current_config(&self) -> Arc<ProxyConfig> {
        Arc::clone(&current(&self.cell).config)
    }

    /// Reads, checks and (when valid) applies the file now, whether or not it changed. Logs
    /// the outcome: the changes, or every problem of an invalid file with its path.
    pub fn reload(&self) -> ReloadOutcome {
        let (seen, text) = match fingerprint(&self.path) {
            Some((f, t)) => (Some(f), Ok(t)),
            None => (None, std::fs::read_to_string(&self.path)),
        };
        self.set_seen(seen);
        let file = self.path.display().to_string();
        let old = current(&self.cell).config.clone();
        let loaded = text
            .map_err(|error| ConfigError::Read { file: file.clone(), error })
            .and_then(|t| ProxyConfig::from_yaml_str(&t, &file, old.base_env()));
        let outcome = match loaded {
            Ok(new) => self.apply(new),
            Err(e) => ReloadOutcome::Rejected(ProxyError::Config(e)),
        };
        match &outcome {
            ReloadOutcome::Applied(r) => tracing::info!(
                file = %file,
                added = %r.added_groups.join(", "),
                removed = %r.removed_groups.join(", "),
                restart_required = %r.restart_required.join(", "),
                "config reloaded"
            ),
            ReloadOutcome::Rejected(ProxyError::Config(e)) => tracing::error!(
                file = %file,
                problems = %e.problems().join("; "),
                "config reload rejected, the previous config keeps serving: {e}"
            ),
            ReloadOutcome::Rejected(e) => {
                tracing::error!(file = %file, "config reload rejected, the previous config keeps serving: {e}")
            }
        }
        outcome
    }

    /// Applies an already loaded config (the file is not read). Settings that need a restart
    /// keep their old values and are listed in the report.
    pub fn apply(&self, new: ProxyConfig) -> ReloadOutcome {
        let old = current(&self.cell).config.clone();
        let mut new = new;
        let mut restart_required = Vec::new();
        if new.master_key != old.master_key {
            restart_required.push("general_settings.master_key".to_owned());
            new.master_key = old.master_key.clone();
        }
        if new.server.max_request_body_bytes != old.server.max_request_body_bytes {
            restart_required.push("general_settings.max_request_size_mb".to_owned());
            new.server.max_request_body_bytes = old.server.max_request_body_bytes;
        }
        if new.server.drain_timeout != old.server.drain_timeout {
            restart_required.push("server.drain_timeout".to_owned());
            new.server.drain_timeout = old.server.drain_timeout;
        }
        if new.callbacks != old.callbacks {
            // The callback sinks are built once, at start-up (`callbacks.rs`).
            restart_required.push("litellm_settings.callbacks (and the webhook settings)".to_owned());
            new.callbacks = old.callbacks.clone();
        }
        if new.json_logs != old.json_logs {
            restart_required.push("litellm_settings.json_logs".to_owned());
            new.json_logs = old.json_logs;
        }
        let client = match build_client(&new) {
            Ok(c) => c,
            Err(e) => return ReloadOutcome::Rejected(e),
        };
        if !new.unsupported_keys.is_empty() && new.unsupported_keys != old.unsupported_keys {
            tracing::warn!(
                file = %new.file,
                keys = %new.unsupported_keys.join(", "),
                "config keys tollgate does not support yet are ignored: {}",
                new.unsupported_keys.join(", ")
            );
        }
        warn_default_conflicts(&new);
        let added_groups =
            new.model_groups.iter().filter(|g| !old.model_groups.contains(g)).cloned().collect();
        let removed_groups =
            old.model_groups.iter().filter(|g| !new.model_groups.contains(g)).cloned().collect();
        store(&self.cell, Live { client, config: Arc::new(new) });
        ReloadOutcome::Applied(ReloadReport { added_groups, removed_groups, restart_required })
    }

    fn set_seen(&self, f: Option<Fingerprint>) {
        match self.seen.lock() {
            Ok(mut g) => *g = f,
            Err(p) => *p.into_inner() = f,
        }
    }

    /// Reloads when the file's fingerprint differs from the one last looked at; `None` when it
    /// did not change (or cannot be read right now: a rewrite in progress is retried next time).
    pub fn reload_if_changed(&self) -> Option<ReloadOutcome> {
        let (now, _) = fingerprint(&self.path)?;
        let changed = match self.seen.lock() {
            Ok(g) => g.as_ref() != Some(&now),
            Err(p) => p.into_inner().as_ref() != Some(&now),
        };
        changed.then(|| self.reload())
    }

    /// Starts a background task that reloads when the file changes (checked every `poll`;
    /// `None` turns polling off) and, on Unix when `sighup` is set, on SIGHUP. The task stops
    /// when the returned handle is dropped. Must be called inside a tokio runtime.
    pub fn watch(&self, poll: Option<Duration>, sighup: bool) -> WatchHandle {
        let me = self.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup = if sighup {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!("cannot listen for SIGHUP (config reload on signal is off): {e}");
                        None
                    }
                }
            } else {
                None
            };
            #[cfg(not(unix))]
            let _ = sighup;
            let _ = ready_tx.send(());
            let mut tick = poll.map(|p| {
                let mut t = tokio::time::interval(p.max(Duration::from_millis(10)));
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            loop {
                let tick_fut = async {
                    match tick.as_mut() {
                        Some(t) => {
                            t.tick().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                #[cfg(unix)]
                let hup_fut = async {
                    match hup.as_mut() {
                        Some(s) => s.recv().await.is_some(),
                        None => std::future::pending::<bool>().await,
                    }
                };
                #[cfg(not(unix))]
                let hup_fut = std::future::pending::<bool>();
                tokio::select! {
                    () = tick_fut => {
                        let r = me.clone();
                        let _ = tokio::task::spawn_blocking(move || r.reload_if_changed()).await;
                    }
                    got = hup_fut => {
                        if got {
                            tracing::info!(file = %me.path.display(), "SIGHUP: reloading the config");
                            let r = me.clone();
                            let _ = tokio::task::spawn_blocking(move || r.reload()).await;
                        }
                    }
                }
            }
        });
        WatchHandle { task, ready: Some(ready_rx) }
    }
}

/// A running config watcher; dropping it stops the watcher.
#[derive(Debug)]
pub struct WatchHandle {
    task: tokio::task::JoinHandle<()>,
    ready: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl WatchHandle {
    /// Completes once the watcher listens (its signal handler is installed).
    pub async fn ready(&mut self) {
        if let Some(rx) = self.ready.take() {
            let _ = rx.await;
        }
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
