//! `orders serve`: the whole service in one process.
//!
//! The command and query API share one port. On the embedded SQLite file (the default) the
//! projector and the publisher tail the store's change feed in-process, each from its own
//! checkpoint, and the publisher writes EventBridge-shaped entries to a JSON-lines file and
//! to the `GET /local/bus` SSE feed. On DynamoDB (`--backend dynamodb`) the API runs on the
//! three tables, and a local stream poller per consumer reads the events table's stream and
//! calls the `projector` and `publisher` handler functions with the payloads Lambda would
//! send (`orders_projections::poller`). The publisher sends to EventBridge with
//! `--event-bus NAME`, else to the same local bus file and feed as on SQLite. With
//! `--consumers none` only the API runs, as on AWS where the projector and the publisher are
//! separate functions.

mod console;
mod cursor_key;
mod metrics;
mod openapi;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use orders_handlers::{Api, ApiConfig, Stores, api_router};
use orders_projections::eventbridge::EventBridgeBus;
use orders_projections::poller::{PollerConfig, StreamHandler, StreamPoller, StreamReader};
use orders_projections::{
    Bus, DEFAULT_BUS_SOURCE, LocalBus, LocalRuntime, PROJECTOR_CONSUMER, PUBLISHER_CONSUMER,
    Projector, Publisher, PublisherConfig,
};
use orders_store::dynamodb::{self, DynamoStore};
use orders_store::sqlite::{SqliteOptions, SqliteStore};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store_args::{Backend, StoreArgs};
use cursor_key::{CursorKey, CursorKeyParser, load_or_create_cursor_key};

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,

    /// Address for the command and query API (port 0 picks a free port).
    #[arg(long, env = "ORDERS_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,

    /// `Source` of the bus entries the publisher sends.
    #[arg(long, env = "EVENT_SOURCE", default_value = DEFAULT_BUS_SOURCE)]
    event_source: String,

    /// JSON-lines file that receives the bus entries [default: bus.jsonl next to --db].
    #[arg(long, env = "ORDERS_BUS_FILE")]
    bus_file: Option<PathBuf>,

    /// EventBridge bus the publisher sends to (DynamoDB backend) [default: the local bus
    /// file and /local/bus feed].
    #[arg(long, env = "EVENT_BUS_NAME")]
    event_bus: Option<String>,

    /// EventBridge endpoint, e.g. a moto server's http://127.0.0.1:5000 [default: the AWS
    /// SDK's (AWS_ENDPOINT_URL_EVENTBRIDGE, AWS_ENDPOINT_URL, or AWS itself)].
    #[arg(long, env = "ORDERS_EVENTBRIDGE_ENDPOINT_URL")]
    eventbridge_endpoint_url: Option<String>,

    /// Records per batch the stream poller hands each consumer (DynamoDB backend), 1-1000:
    /// an event source mapping's BatchSize.
    #[arg(long, env = "ORDERS_STREAM_BATCH_SIZE", default_value_t = 100, value_parser = clap::value_parser!(i32).range(1..=1000))]
    stream_batch_size: i32,

    /// Secret that signs pagination cursors, at least 32 bytes [default: a random key kept
    /// in cursor.key next to --db (mode 0600), so cursors survive restarts].
    #[arg(long, env = "ORDERS_CURSOR_KEY", hide_env_values = true, value_parser = CursorKeyParser)]
    cursor_key: Option<CursorKey>,

    /// `all`: the projector and the publisher run in this process. `none`: the command and
    /// query API alone, as on AWS where the stream consumers are separate functions; nothing
    /// here updates the read model or the bus (`?minVersion=` reads still see every write).
    #[arg(long, env = "ORDERS_CONSUMERS", value_enum, default_value_t = LocalConsumers::All)]
    consumers: LocalConsumers,
}

/// Whether `serve` runs the projector and the publisher next to the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LocalConsumers {
    /// The API, the projector and the publisher.
    All,
    /// The API alone.
    #[value(name = "none")]
    Off,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let metrics = metrics::install()?;
    let data_dir = data_dir(&args.store.db)?;
    let cursor_key = match &args.cursor_key {
        Some(CursorKey(key)) => key.clone(),
        None => load_or_create_cursor_key(&data_dir.join("cursor.key"))?,
    };
    let config = ApiConfig {
        source: Api::Both.source().to_owned(),
        cursor_key,
    };
    let (stop, stopped) = watch::channel(false);
    let (app, consumers) = match (args.store.backend, args.consumers) {
        (Backend::Sqlite, LocalConsumers::All) => {
            on_sqlite(&args, &data_dir, config, stopped).await?
        }
        (Backend::Dynamodb, LocalConsumers::All) => {
            on_dynamodb(&args, &data_dir, config, &stopped).await?
        }
        (backend, LocalConsumers::Off) => {
            (api_alone(&args, backend, config).await?, Consumers::Off)
        }
    };
    let app = app
        .merge(metrics)
        .merge(openapi::router())
        .merge(console::router());
    serve(args.addr, app, consumers, stop).await
}

/// The directory of `--db`, created if missing: the cursor key and the bus file go there too.
fn data_dir(db: &Path) -> anyhow::Result<PathBuf> {
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    Ok(dir.to_owned())
}

/// `--bus-file`, else `bus.jsonl` in the data directory.
fn bus_file(args: &ServeArgs, data_dir: &Path) -> PathBuf {
    args.bus_file
        .clone()
        .unwrap_or_else(|| data_dir.join("bus.jsonl"))
}

/// The embedded SQLite file; the projector and the publisher tail its change feed, the
/// publisher into the local bus.
async fn on_sqlite(
    args: &ServeArgs,
    data_dir: &Path,
    config: ApiConfig,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<(Router, Consumers)> {
    let db = &args.store.db;
    let store = open_sqlite(args)?;
    let bus_file = bus_file(args, data_dir);
    let local = LocalRuntime::start(&store, &bus_file, args.event_source.clone(), stopped).await?;
    tracing::info!(db = %db.display(), read_model = %store.read_model_table(), bus_file = %bus_file.display(), "embedded store opened");
    let app = api_router(Stores::shared(store), config).merge(local.bus_router());
    Ok((app, Consumers::Feed(local)))
}

/// `--db` with `--read-model-table` and `--sync`.
fn open_sqlite(args: &ServeArgs) -> anyhow::Result<SqliteStore> {
    let db = &args.store.db;
    let options = SqliteOptions {
        read_model_table: args.store.live_table(),
        sync: args.store.sync.into(),
        ..SqliteOptions::default()
    };
    SqliteStore::open_with(db, options)
        .with_context(|| format!("cannot open the database {}", db.display()))
}

/// The DynamoDB tables; a stream poller per consumer, the publisher into EventBridge with
/// `--event-bus`, else into the local bus.
async fn on_dynamodb(
    args: &ServeArgs,
    data_dir: &Path,
    config: ApiConfig,
    stopped: &watch::Receiver<bool>,
) -> anyhow::Result<(Router, Consumers)> {
    let tables = args.store.dynamo_tables();
    let endpoint = args.store.endpoint_url.as_deref();
    let store = DynamoStore::new(dynamodb::client(endpoint).await, tables.clone());
    let (bus, local_bus): (Arc<dyn Bus>, Option<LocalBus>) = match &args.event_bus {
        Some(_) => {
            let bus = EventBridgeBus::connect(args.eventbridge_endpoint_url.as_deref()).await;
            (Arc::new(bus), None)
        }
        None => {
            let bus_file = bus_file(args, data_dir);
            let bus = LocalBus::open(&bus_file)
                .await
                .with_context(|| format!("cannot open the bus file {}", bus_file.display()))?;
            (Arc::new(bus.clone()), Some(bus))
        }
    };
    let reader = StreamReader::connect(endpoint, tables.events.clone()).await;
    reader
        .stream_arn()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("cannot read the events table's stream")?;
    let publisher = PublisherConfig {
        bus_source: args.event_source.clone(),
        event_bus_name: args.event_bus.clone(),
        ..PublisherConfig::default()
    };
    let pollers = spawn_stream_pollers(
        reader,
        &store,
        bus,
        publisher,
        args.stream_batch_size,
        stopped,
    );
    tracing::info!(?tables, endpoint = ?args.store.endpoint_url, event_bus = ?args.event_bus, "using DynamoDB; polling the events stream");
    let mut app = api_router(Stores::shared(store), config);
    if let Some(bus) = &local_bus {
        app = app.merge(orders_projections::router(bus.clone()));
    }
    Ok((app, Consumers::Stream { pollers, local_bus }))
}

/// `--consumers none`: the API on the store, with no projector, publisher or bus.
async fn api_alone(
    args: &ServeArgs,
    backend: Backend,
    config: ApiConfig,
) -> anyhow::Result<Router> {
    let stores = match backend {
        Backend::Sqlite => Stores::shared(open_sqlite(args)?),
        Backend::Dynamodb => {
            let endpoint = args.store.endpoint_url.as_deref();
            let client = dynamodb::client(endpoint).await;
            Stores::shared(DynamoStore::new(client, args.store.dynamo_tables()))
        }
    };
    tracing::info!(
        ?backend,
        "the API alone: no projector or publisher in this process"
    );
    Ok(api_router(stores, config))
}

/// Serves `app` on `addr` until a shutdown signal; then drains the HTTP server and stops the
/// consumers.
#[allow(
    clippy::print_stdout,
    reason = "the listening address is the command's output, for scripts"
)]
async fn serve(
    addr: SocketAddr,
    app: Router,
    consumers: Consumers,
    stop: watch::Sender<bool>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    // The one line meant for a person (and for scripts that start us on port 0).
    println!("orders listening on http://{addr}");

    let bus = consumers.local_bus();
    let draining = async move {
        crate::signal::shutdown_requested().await;
        tracing::info!("shutdown requested: finishing in-flight requests");
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
    tracing::info!("HTTP server drained; stopping the projector and the publisher");
    let _ = stop.send(true);
    consumers.stop().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The projector and the publisher of this process.
enum Consumers {
    /// On SQLite: change-feed consumers and the local bus.
    Feed(LocalRuntime),
    /// On DynamoDB: one stream poller per consumer; the local bus unless `--event-bus`.
    Stream {
        pollers: Vec<JoinHandle<()>>,
        local_bus: Option<LocalBus>,
    },
    /// `--consumers none`: neither.
    Off,
}

impl Consumers {
    fn local_bus(&self) -> Option<LocalBus> {
        match self {
            Consumers::Feed(local) => Some(local.bus().clone()),
            Consumers::Stream { local_bus, .. } => local_bus.clone(),
            Consumers::Off => None,
        }
    }

    /// Waits until they have stopped (set the stop flag first).
    async fn stop(self) {
        match self {
            Consumers::Feed(local) => local.stop().await,
            Consumers::Stream { pollers, .. } => {
                for poller in pollers {
                    if let Err(error) = poller.await {
                        tracing::error!(%error, "a stream poller failed");
                    }
                }
            }
            Consumers::Off => {}
        }
    }
}

/// A poller for the projector and one for the publisher, each with its own shard positions,
/// as two event source mappings on the stream.
fn spawn_stream_pollers(
    reader: StreamReader,
    store: &DynamoStore,
    bus: Arc<dyn Bus>,
    publisher: PublisherConfig,
    batch_size: i32,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let store = Arc::new(store.clone());
    let handlers: [(&str, Arc<dyn StreamHandler>); 2] = [
        (
            PROJECTOR_CONSUMER,
            Arc::new(Projector::new(store.clone(), store)),
        ),
        (PUBLISHER_CONSUMER, Arc::new(Publisher::new(bus, publisher))),
    ];
    handlers
        .into_iter()
        .map(|(name, handler)| {
            let mut config = PollerConfig::new(name);
            config.batch_size = batch_size;
            let poller = StreamPoller::new(reader.clone(), config);
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let stopped = async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                };
                if let Err(error) = poller.run(handler, stopped).await {
                    tracing::error!(consumer = name, %error, "the stream poller stopped");
                }
            })
        })
        .collect()
}
