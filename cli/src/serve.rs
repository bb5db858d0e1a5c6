//! `orders serve`: the whole service in one process on an embedded SQLite file.
//!
//! The command and query API share one port; the projector and the publisher tail the
//! store's change feed in-process, each from its own checkpoint, and the publisher writes
//! EventBridge-shaped entries to a JSON-lines file and to the `GET /local/bus` SSE feed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use orders_handlers::{ApiConfig, Stores, api_router};
use orders_projections::LocalRuntime;
use orders_store::sqlite::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// SQLite database file; created, with its directory, if missing.
    #[arg(long, env = "ORDERS_DB", default_value = "./.orders/orders.db")]
    db: PathBuf,

    /// Address for the command and query API (port 0 picks a free port).
    #[arg(long, env = "ORDERS_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,

    /// `Source` of the bus entries the publisher sends.
    #[arg(long, env = "EVENT_SOURCE", default_value = "orders")]
    event_source: String,

    /// JSON-lines file that receives the bus entries [default: bus.jsonl next to --db].
    #[arg(long, env = "ORDERS_BUS_FILE")]
    bus_file: Option<PathBuf>,

    /// Secret that signs pagination cursors [default: a random key kept in cursor.key next
    /// to --db, so cursors survive restarts].
    #[arg(long, env = "ORDERS_CURSOR_KEY", hide_env_values = true)]
    cursor_key: Option<String>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = args
        .db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let store = SqliteStore::open(&args.db)
        .with_context(|| format!("cannot open the database {}", args.db.display()))?;
    let cursor_key = match args.cursor_key {
        Some(key) => key.into_bytes(),
        None => load_or_create_cursor_key(&data_dir.join("cursor.key"))?,
    };
    let bus_file = args.bus_file.unwrap_or_else(|| data_dir.join("bus.jsonl"));

    let (stop_tx, stop_rx) = watch::channel(false);
    let local = LocalRuntime::start(&store, &bus_file, args.event_source, stop_rx).await?;

    let stores = Stores {
        events: Arc::new(store.clone()),
        idempotency: Arc::new(store.clone()),
        read_model: Arc::new(store.clone()),
    };
    let config = ApiConfig {
        source: "orders.api".to_owned(),
        cursor_key,
    };
    let app = api_router(stores, config).merge(local.bus_router());

    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(db = %args.db.display(), bus_file = %bus_file.display(), "orders serve started");
    // The one line meant for a person (and for scripts that start us on port 0).
    println!("orders listening on http://{addr}");

    let bus = local.bus().clone();
    let draining = async move {
        shutdown_signal().await;
        // Followers of /local/bus never hang up by themselves; end their streams so the
        // drain below only waits for real requests.
        bus.close();
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(draining)
        .await
        .context("the HTTP server failed")?;
    tracing::info!("HTTP server drained; stopping the projector and the publisher");
    let _ = stop_tx.send(true);
    local.stop().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested: finishing in-flight requests");
}

fn load_or_create_cursor_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(key) = std::fs::read(path)
        && key.len() >= 32
    {
        return Ok(key);
    }
    let key: [u8; 32] = rand::random();
    std::fs::write(path, key).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key.to_vec())
}
