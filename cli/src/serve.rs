//! `orders serve`: the whole service in one process.
//!
//! The command and query API share one port. On the embedded SQLite file (the default) the
//! projector and the publisher tail the store's change feed in-process, each from its own
//! checkpoint, and the publisher writes EventBridge-shaped entries to a JSON-lines file and
//! to the `GET /local/bus` SSE feed. On DynamoDB (`--backend dynamodb`) the API runs on the
//! three tables; the stream consumers are not part of this command yet, so the read model
//! only moves when something else projects it, and `minVersion` reads stay correct because
//! they fold the event store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use orders_handlers::{ApiConfig, Stores, api_router};
use orders_projections::LocalRuntime;
use orders_store::dynamodb::{self, DynamoStore, DynamoTables};
use orders_store::sqlite::SqliteStore;
use orders_store::{EventStore, IdempotencyStore, ReadModelStore};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Where the events, the read model and the idempotency keys live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// One embedded SQLite file (`--db`).
    Sqlite,
    /// The DynamoDB tables named by EVENTS_TABLE, ORDERS_TABLE and IDEMPOTENCY_TABLE.
    Dynamodb,
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Storage backend.
    #[arg(long, env = "ORDERS_BACKEND", value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,

    /// DynamoDB endpoint, e.g. DynamoDB Local's http://127.0.0.1:8000 [default: the AWS SDK's
    /// (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL, or AWS itself)].
    #[arg(long, env = "ORDERS_ENDPOINT_URL")]
    endpoint_url: Option<String>,

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
    let cursor_key = match args.cursor_key {
        Some(key) => key.into_bytes(),
        None => load_or_create_cursor_key(&data_dir.join("cursor.key"))?,
    };
    let config = ApiConfig {
        source: "orders.api".to_owned(),
        cursor_key,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let (app, local) = match args.backend {
        Backend::Sqlite => {
            let store = SqliteStore::open(&args.db)
                .with_context(|| format!("cannot open the database {}", args.db.display()))?;
            let bus_file = args.bus_file.unwrap_or_else(|| data_dir.join("bus.jsonl"));
            let local = LocalRuntime::start(&store, &bus_file, args.event_source, stop_rx).await?;
            tracing::info!(db = %args.db.display(), bus_file = %bus_file.display(), "embedded store opened");
            let app = api_router(stores_of(store), config).merge(local.bus_router());
            (app, Some(local))
        }
        Backend::Dynamodb => {
            let tables = DynamoTables::from_env();
            let store = DynamoStore::new(
                dynamodb::client(args.endpoint_url.as_deref()).await,
                tables.clone(),
            );
            tracing::info!(?tables, endpoint = ?args.endpoint_url, "using DynamoDB; the stream consumers do not run in this mode");
            (api_router(stores_of(store), config), None)
        }
    };

    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    // The one line meant for a person (and for scripts that start us on port 0).
    println!("orders listening on http://{addr}");

    let bus = local.as_ref().map(|local| local.bus().clone());
    let draining = async move {
        shutdown_signal().await;
        // Followers of /local/bus never hang up by themselves; end their streams so the
        // drain below only waits for real requests.
        if let Some(bus) = bus {
            bus.close();
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(draining)
        .await
        .context("the HTTP server failed")?;
    if let Some(local) = local {
        tracing::info!("HTTP server drained; stopping the projector and the publisher");
        let _ = stop_tx.send(true);
        local.stop().await;
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// One store behind all three ports.
fn stores_of<S>(store: S) -> Stores
where
    S: EventStore + IdempotencyStore + ReadModelStore + Clone + 'static,
{
    Stores {
        events: Arc::new(store.clone()),
        idempotency: Arc::new(store.clone()),
        read_model: Arc::new(store),
    }
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
