//! Hot reload: the key directory is watched (inotify through notify) and
//! rescanned periodically; every change rebuilds the whole ring off the
//! request path and swaps it in.
//!
//! The directory is watched, not the files: a Kubernetes Secret update
//! is an atomic `..data` symlink swap whose events name no key file, and a
//! write-then-rename names the temporary file first. Any event but a read
//! (our own reads trigger `Access`) schedules a reload after a short quiet
//! period; the periodic rescan covers missed events and network
//! filesystems.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher as _};

use super::Keys;

/// Quiet time after the last event before reloading: a rotation writes
/// several files, and a Secret update several links.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// Watches and reloads until the task is dropped.
pub(crate) async fn run(keys: Arc<Keys>, rescan: Duration) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut dirs: Vec<PathBuf> = vec![keys.dir().to_path_buf()];
    if let Some(parent) = keys.deny_path().parent() {
        if !parent.as_os_str().is_empty() && parent != keys.dir() {
            dirs.push(parent.to_path_buf());
        }
    }
    // Kept alive for as long as this task runs.
    let _watcher = match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res {
            if !matches!(event.kind, EventKind::Access(_)) {
                let _ = tx.send(());
            }
        }
    }) {
        Ok(mut w) => {
            for d in &dirs {
                if let Err(e) = w.watch(d, RecursiveMode::NonRecursive) {
                    tracing::warn!(dir = %d.display(), error = %e, "cannot watch key directory; relying on the periodic rescan");
                }
            }
            Some(w)
        }
        Err(e) => {
            tracing::warn!(error = %e, "no file watcher; relying on the periodic rescan");
            None
        }
    };
    let mut ticker = tokio::time::interval(rescan);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        let cause = tokio::select! {
            ev = rx.recv() => {
                if ev.is_none() {
                    // The watcher is gone; keep rescanning.
                    loop {
                        ticker.tick().await;
                        reload(&keys, "rescan").await;
                    }
                }
                while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                "change"
            }
            _ = ticker.tick() => "rescan",
        };
        reload(&keys, cause).await;
    }
}

async fn reload(keys: &Arc<Keys>, cause: &'static str) {
    let k = keys.clone();
    let result = match tokio::task::spawn_blocking(move || k.reload()).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "key reload panicked");
            return;
        }
    };
    match result {
        Ok(r) => {
            for p in &r.problems {
                tracing::warn!(file = %p.file.display(), reason = %p.reason, "key file skipped");
            }
            if r.changed {
                crate::metrics::key_ring(r.generation);
                let ring = keys.load();
                tracing::info!(
                    cause,
                    generation = r.generation,
                    keys = ring.files.len(),
                    revoked = ring.deny.len(),
                    "key ring reloaded"
                );
            }
        }
        Err(e) => {
            crate::metrics::key_reload_failed();
            tracing::error!(cause, error = %e, "key reload failed; keeping the previous key ring and reporting not ready")
        }
    }
}
