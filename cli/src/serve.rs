//! `orders serve`: the whole service in one process.
//!
//! The command and query API share one port. On the embedded SQLite file (the default) the
//! projector and the publisher tail the store's change feed in-process, each from its own
//! checkpoint, and the publisher writes EventBridge-shaped entries to a JSON-lines file and
//! to the `GET /local/bus` SSE feed. On DynamoDB (`--backend dynamodb`) the API runs on the
//! three tables, and a local stream poller per consumer reads the events table's stream and
//! calls the `projector` and `publisher` handler functions with the payloads Lambda would
//! send (`orders_projections::poller`). The publisher sends to EventBridge with
//! `--event-bus NAME`, else to the same local bus file and feed as on SQLite.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use orders_handlers::lambda::check_cursor_key;
use orders_handlers::{ApiConfig, Stores, api_router};
use orders_projections::eventbridge::EventBridgeBus;
use orders_projections::poller::{PollerConfig, StreamHandler, StreamPoller, StreamSource};
use orders_projections::{
    Bus, LocalBus, LocalRuntime, PROJECTOR_CONSUMER, PUBLISHER_CONSUMER, Projector, Publisher,
    PublisherConfig,
};
use orders_store::dynamodb::{self, DynamoStore};
use orders_store::sqlite::{SqliteOptions, SqliteStore};
use orders_store::{EventStore, IdempotencyStore, ReadModelStore};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store_args::{Backend, StoreArgs};

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,

    /// Address for the command and query API (port 0 picks a free port).
    #[arg(long, env = "ORDERS_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,

    /// `Source` of the bus entries the publisher sends.
    #[arg(long, env = "EVENT_SOURCE", default_value = "orders")]
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
}

/// A `--cursor-key` that passed the Lambdas' rule ([`check_cursor_key`]).
#[derive(Clone)]
struct CursorKey(Vec<u8>);

/// Refuses a weak `--cursor-key` while the arguments are parsed, so the process exits (2, as
/// for any bad argument) before it opens or creates anything. Hand-written rather than a
/// closure because clap's own "invalid value" message would print the secret.
#[derive(Clone)]
struct CursorKeyParser;

impl clap::builder::TypedValueParser for CursorKeyParser {
    type Value = CursorKey;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<CursorKey, clap::Error> {
        let key = value.as_encoded_bytes();
        check_cursor_key(key).map_err(|weak| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "--cursor-key (ORDERS_CURSOR_KEY) is {weak}. Give a random secret, e.g. \
                     `openssl rand -hex 32`, or none to have one kept in cursor.key\n"
                ),
            )
            .with_cmd(cmd)
        })?;
        Ok(CursorKey(key.to_vec()))
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = args
        .store
        .db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let cursor_key = match args.cursor_key {
        Some(CursorKey(key)) => key,
        None => load_or_create_cursor_key(&data_dir.join("cursor.key"))?,
    };
    let config = ApiConfig {
        source: "orders.api".to_owned(),
        cursor_key,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let (app, local) = match args.store.backend {
        Backend::Sqlite => {
            let db = &args.store.db;
            let options = SqliteOptions {
                read_model_table: args.store.live_table(),
                sync: args.store.sync.into(),
                ..SqliteOptions::default()
            };
            let store = SqliteStore::open_with(db, options)
                .with_context(|| format!("cannot open the database {}", db.display()))?;
            let bus_file = args.bus_file.unwrap_or_else(|| data_dir.join("bus.jsonl"));
            let local = LocalRuntime::start(&store, &bus_file, args.event_source, stop_rx).await?;
            tracing::info!(db = %db.display(), read_model = %store.read_model_table(), bus_file = %bus_file.display(), "embedded store opened");
            let app = api_router(stores_of(store), config).merge(local.bus_router());
            (app, Some(Consumers::Feed(local)))
        }
        Backend::Dynamodb => {
            let tables = args.store.dynamo_tables();
            let endpoint = args.store.endpoint_url.as_deref();
            let store = DynamoStore::new(dynamodb::client(endpoint).await, tables.clone());
            let (bus, local_bus): (Arc<dyn Bus>, Option<LocalBus>) = match &args.event_bus {
                Some(_) => {
                    let bus =
                        EventBridgeBus::connect(args.eventbridge_endpoint_url.as_deref()).await;
                    (Arc::new(bus), None)
                }
                None => {
                    let bus_file = args.bus_file.unwrap_or_else(|| data_dir.join("bus.jsonl"));
                    let bus = LocalBus::open(&bus_file).await.with_context(|| {
                        format!("cannot open the bus file {}", bus_file.display())
                    })?;
                    (Arc::new(bus.clone()), Some(bus))
                }
            };
            let source = StreamSource::connect(endpoint, tables.events.clone()).await;
            source
                .stream_arn()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
                .context("cannot read the events table's stream")?;
            let consumers = spawn_stream_pollers(
                source,
                &store,
                bus,
                PublisherConfig {
                    source: args.event_source,
                    event_bus_name: args.event_bus.clone(),
                    ..PublisherConfig::default()
                },
                args.stream_batch_size,
                &stop_rx,
            );
            tracing::info!(?tables, endpoint = ?args.store.endpoint_url, event_bus = ?args.event_bus, "using DynamoDB; polling the events stream");
            let mut app = api_router(stores_of(store), config);
            if let Some(bus) = &local_bus {
                app = app.merge(orders_projections::router(bus.clone()));
            }
            (
                app,
                Some(Consumers::Stream {
                    consumers,
                    local_bus,
                }),
            )
        }
    };

    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    // The one line meant for a person (and for scripts that start us on port 0).
    println!("orders listening on http://{addr}");

    let bus = local.as_ref().and_then(Consumers::local_bus);
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
    if let Some(local) = local {
        tracing::info!("HTTP server drained; stopping the projector and the publisher");
        let _ = stop_tx.send(true);
        local.stop().await;
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The projector and the publisher of this process.
enum Consumers {
    /// On SQLite: change-feed consumers and the local bus.
    Feed(LocalRuntime),
    /// On DynamoDB: one stream poller per consumer; the local bus unless `--event-bus`.
    Stream {
        consumers: Vec<JoinHandle<()>>,
        local_bus: Option<LocalBus>,
    },
}

impl Consumers {
    fn local_bus(&self) -> Option<LocalBus> {
        match self {
            Consumers::Feed(local) => Some(local.bus().clone()),
            Consumers::Stream { local_bus, .. } => local_bus.clone(),
        }
    }

    /// Waits until they have stopped (set the stop flag first).
    async fn stop(self) {
        match self {
            Consumers::Feed(local) => local.stop().await,
            Consumers::Stream { consumers, .. } => {
                for consumer in consumers {
                    if let Err(error) = consumer.await {
                        tracing::error!(%error, "a stream poller failed");
                    }
                }
            }
        }
    }
}

/// A poller for the projector and one for the publisher, each with its own shard positions,
/// as two event source mappings on the stream.
fn spawn_stream_pollers(
    source: StreamSource,
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
            let poller = StreamPoller::new(source.clone(), config);
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

/// The cursor key kept at `path`, made on first use: 32 random bytes, readable by the owner
/// only. A key file others can read is tightened to 0600 with a warning (whoever holds the key
/// can forge cursors); one shorter than the rule allows is an error, not silently replaced,
/// because replacing it would invalidate every cursor already handed out.
fn load_or_create_cursor_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(key) => {
            restrict_to_owner(path)?;
            check_cursor_key(&key).map_err(|weak| {
                anyhow::anyhow!(
                    "the cursor key {} is {weak}: delete the file to have a new one made, or \
                     give --cursor-key",
                    path.display()
                )
            })?;
            Ok(key)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => create_cursor_key(path),
        Err(error) => {
            Err(error).with_context(|| format!("cannot read the cursor key {}", path.display()))
        }
    }
}

/// Writes a new key to a private temporary file, then links it into place: the key file is
/// never visible with wider permissions or half written, and if another process made one
/// meanwhile, that one wins and is used.
fn create_cursor_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;

    let key: [u8; 32] = rand::random();
    let temporary = path.with_extension(format!("key.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = private_file_options().open(&temporary)?;
        file.write_all(&key)?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "made a new cursor key");
            Ok(key.to_vec())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            load_or_create_cursor_key(path)
        }
        Err(error) => {
            Err(error).with_context(|| format!("cannot write the cursor key {}", path.display()))
        }
    }
}

/// `create_new`, and on Unix mode 0600 from the moment the file exists.
fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read the permissions of {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "the cursor key was readable by others: setting it to 0600"
        );
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private (chmod 600)", path.display()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use clap::Parser;
    use clap::error::ErrorKind;
    use orders_handlers::lambda::MIN_CURSOR_KEY_LEN;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).map(|c| c.serve)
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_short_or_empty_cursor_key_is_a_usage_error_that_does_not_echo_it() {
        let too_short = "k".repeat(MIN_CURSOR_KEY_LEN - 1);
        for key in ["", "short-secret", too_short.as_str()] {
            let Err(error) = parse(&["--cursor-key", key]) else {
                panic!("a {}-byte key was accepted", key.len());
            };
            assert_eq!(error.kind(), ErrorKind::ValueValidation);
            assert_eq!(error.exit_code(), 2);
            let message = error.to_string();
            for named in ["--cursor-key", "ORDERS_CURSOR_KEY", "at least 32 bytes"] {
                assert!(message.contains(named), "{named} in {message}");
            }
            assert!(
                key.is_empty() || !message.contains(key),
                "the secret is echoed: {message}"
            );
        }

        let strong = "k".repeat(MIN_CURSOR_KEY_LEN);
        let args = parse(&["--cursor-key", &strong]).unwrap();
        assert_eq!(args.cursor_key.unwrap().0, strong.as_bytes());
    }

    #[test]
    fn a_new_key_file_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.key");
        let key = load_or_create_cursor_key(&path).unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(load_or_create_cursor_key(&path).unwrap(), key);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind: {left:?}");
    }

    #[test]
    fn a_key_file_others_can_read_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.key");
        let key = [7u8; 40];
        std::fs::write(&path, key).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load_or_create_cursor_key(&path).unwrap(), key);
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_short_key_file_is_an_error_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.key");
        std::fs::write(&path, b"short").unwrap();
        let message = format!("{:#}", load_or_create_cursor_key(&path).unwrap_err());
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("5 bytes long"), "{message}");
        assert!(message.contains("at least 32 bytes"), "{message}");
        assert_eq!(std::fs::read(&path).unwrap(), b"short");
    }
}
