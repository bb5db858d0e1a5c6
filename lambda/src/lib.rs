//! What every Lambda bootstrap of the service shares, whatever its trigger: its configuration
//! declared once, logging as Lambda's advanced logging controls ask for it, and INIT errors
//! reported to the Runtime API.
//!
//! - **Configuration.** Each function declares the environment variables it reads as
//!   [`EnvVar`]s (name, default, meaning): `orders_handlers::lambda::LambdaConfig::vars` for
//!   `command-api` and `query-api`, `orders_projections::lambda::PROJECTOR_VARS` and
//!   `PUBLISHER_VARS` for the stream functions, [`LOG_VARS`] for all four. Those
//!   declarations are the reference; the parsing, the error messages and the `configured`
//!   log line ([`init`]) all read them. The AWS SDK reads its own variables besides
//!   (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_EVENTBRIDGE`, `AWS_ENDPOINT_URL`, region
//!   and credentials; see `orders_store::aws::sdk_config`).
//! - **Logs.** `tracing` to stdout without ANSI colours: JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`
//!   (as Lambda's advanced logging controls set it), one object per line with the event's
//!   fields at the top level, `span` and `spans` (the runtime's `requestId` among them); plain
//!   text otherwise. The level comes from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG` (`Targets`
//!   syntax), else `INFO`.
//! - **INIT errors.** [`init`] reads a function's configuration once; a configuration it cannot
//!   start with is logged, posted to the Runtime API's `/init/error` as a [`Diagnostic`] with
//!   the error type [`CONFIG_ERROR_TYPE`] (`Orders.Config`), and returned, so the process exits
//!   and Lambda shows the error type and message.
//! - **Metrics.** [`init`] installs the CloudWatch EMF recorder ([`metrics::install_emf`]);
//!   each bootstrap wraps its handler in [`metrics::flushed`], so an invocation's metrics are
//!   log lines before it returns.

pub mod metrics;

use std::fmt;
use std::str::FromStr;

use lambda_runtime::Diagnostic;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use lambda_runtime::Error;

/// One environment variable a function reads at INIT, declared once: its name, its default
/// (none: the function cannot start without it) and what it is for. The function's parsing
/// reads the value through it, and [`init`]'s `configured` log line lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    pub name: &'static str,
    /// `None`: required. A function never falls back to a local default for a resource name.
    pub default: Option<&'static str>,
    pub meaning: &'static str,
    /// Logged as its length only, and read byte for byte (not trimmed).
    pub secret: bool,
}

impl EnvVar {
    pub const fn required(name: &'static str, meaning: &'static str) -> Self {
        Self {
            name,
            default: None,
            meaning,
            secret: false,
        }
    }

    pub const fn with_default(
        name: &'static str,
        default: &'static str,
        meaning: &'static str,
    ) -> Self {
        Self {
            name,
            default: Some(default),
            meaning,
            secret: false,
        }
    }

    pub const fn secret(self) -> Self {
        Self {
            secret: true,
            ..self
        }
    }

    /// The value `var` gives it: trimmed unless secret; blank counts as unset.
    pub fn get(&self, var: &impl Fn(&str) -> Option<String>) -> Option<String> {
        let value = var(self.name)?;
        let value = if self.secret {
            value
        } else {
            value.trim().to_owned()
        };
        (!value.is_empty()).then_some(value)
    }

    /// [`get`](Self::get), else the default.
    pub fn get_or_default(&self, var: &impl Fn(&str) -> Option<String>) -> Option<String> {
        self.get(var).or_else(|| self.default.map(str::to_owned))
    }
}

/// `EVENTS_TABLE`: every function but the publisher.
pub const EVENTS_TABLE: EnvVar = EnvVar::required(
    "EVENTS_TABLE",
    "the events table (the projector heals gaps from it)",
);
/// `ORDERS_TABLE`: the read model, for the APIs and the projector.
pub const ORDERS_TABLE: EnvVar = EnvVar::required("ORDERS_TABLE", "the read-model table");
/// `IDEMPOTENCY_TABLE`: the APIs' idempotency records.
pub const IDEMPOTENCY_TABLE: EnvVar =
    EnvVar::required("IDEMPOTENCY_TABLE", "the idempotency-key table");

/// The logging variables every function reads (see [`LogConfig::from_vars`]).
pub const LOG_VARS: [EnvVar; 3] = [
    EnvVar::with_default(
        "AWS_LAMBDA_LOG_FORMAT",
        "Text",
        "`JSON` for one JSON object per line (Lambda's advanced logging controls set it)",
    ),
    EnvVar::with_default(
        "AWS_LAMBDA_LOG_LEVEL",
        "INFO",
        "TRACE, DEBUG, INFO, WARN, ERROR or FATAL; wins over RUST_LOG",
    ),
    EnvVar::with_default(
        "RUST_LOG",
        "info",
        "`[target=]level,...` directives, when AWS_LAMBDA_LOG_LEVEL is unset",
    ),
];

/// The `errorType` of a configuration a function cannot start with.
pub const CONFIG_ERROR_TYPE: &str = "Orders.Config";

/// A configuration error as the Runtime API's INIT error ([`CONFIG_ERROR_TYPE`]).
pub fn config_diagnostic(error: &dyn fmt::Display) -> Diagnostic {
    Diagnostic {
        error_type: CONFIG_ERROR_TYPE.into(),
        error_message: error.to_string(),
    }
}

/// Log line format: Lambda's advanced logging controls say which through `AWS_LAMBDA_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// Directives `[target=]level,...`, e.g. `info` or `orders_handlers=debug,info`. Parsed as
    /// `Targets`, not `EnvFilter`, which would link a regex engine into every bootstrap.
    pub filter: String,
}

impl LogConfig {
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`LOG_VARS`], looked up with `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let [format, level, rust_log] = LOG_VARS;
        // Read through the declarations, as the `configured` line shows them (trimmed).
        let format = match format.get(&var) {
            Some(f) if f.eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let filter = match level.get(&var) {
            // Lambda's levels are TRACE..ERROR plus FATAL, which tracing does not have.
            Some(level) if level.eq_ignore_ascii_case("fatal") => "error".to_owned(),
            Some(level) => LevelFilter::from_str(&level)
                .unwrap_or(LevelFilter::INFO)
                .to_string()
                .to_ascii_lowercase(),
            None => rust_log
                .get_or_default(&var)
                .expect("RUST_LOG has a default"),
        };
        Self { format, filter }
    }
}

/// Installs the global `tracing` subscriber (stdout, no ANSI colours; see the module docs).
/// A second call does nothing.
pub fn init_tracing(log: &LogConfig) {
    init_tracing_to(log, std::io::stdout);
}

/// [`init_tracing`] with another writer (the benchmark formats its log lines into a sink).
pub fn init_tracing_to<W>(log: &LogConfig, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter: Targets = log
        .filter
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match log.format {
        LogFormat::Json => registry
            .with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(true),
            )
            .try_init(),
        // CloudWatch stamps every line; the text format leaves the time out.
        LogFormat::Text => registry.with(layer.without_time()).try_init(),
    };
}

/// INIT of any function: logging, then `load` (its configuration, from the environment).
/// Success is logged as one `configured` line listing `vars` and [`LOG_VARS`] as read (secrets
/// by length only);
/// an error is logged, reported to the Runtime API's `/init/error` (see
/// [`report_init_error`]), and returned.
pub async fn init<C, E>(
    function: &str,
    vars: &[EnvVar],
    load: impl FnOnce() -> Result<C, E>,
) -> Result<C, Error>
where
    E: std::error::Error + Clone + Into<Diagnostic> + Send + Sync + 'static,
{
    init_tracing(&LogConfig::from_env());
    metrics::install_emf();
    match load() {
        Ok(config) => {
            let env = |name: &str| std::env::var(name).ok();
            tracing::info!(function, settings = %Settings { vars, var: &env }, "configured");
            Ok(config)
        }
        Err(error) => {
            tracing::error!(function, %error, "cannot start");
            report_init_error(error.clone().into()).await;
            Err(Box::new(error))
        }
    }
}

/// `NAME=value` for each variable, then the logging ones, space-separated: `(default)` after a default, a secret as
/// its length.
struct Settings<'a, F> {
    vars: &'a [EnvVar],
    var: &'a F,
}

impl<F: Fn(&str) -> Option<String>> fmt::Display for Settings<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, env_var) in self.vars.iter().chain(&LOG_VARS).enumerate() {
            let separator = if i == 0 { "" } else { " " };
            let name = env_var.name;
            match (env_var.get(self.var), env_var.default) {
                (Some(value), _) if env_var.secret => {
                    write!(f, "{separator}{name}=<{} bytes>", value.len())?
                }
                (Some(value), _) => write!(f, "{separator}{name}={value}")?,
                (None, Some(default)) => write!(f, "{separator}{name}={default} (default)")?,
                (None, None) => write!(f, "{separator}{name} unset")?,
            }
        }
        Ok(())
    }
}

/// Posts `diagnostic` to `/runtime/init/error`. Best effort: outside Lambda (no
/// `AWS_LAMBDA_RUNTIME_API`) or if the call fails, the error has been logged all the same.
pub async fn report_init_error(diagnostic: Diagnostic) {
    use lambda_runtime_api_client::{PooledClient, body::Body as ApiBody, build_request};

    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return;
    }
    let body = match serde_json::to_vec(&diagnostic) {
        Ok(body) => body,
        Err(_) => return,
    };
    let request = build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .header("content-type", "application/json")
        .body(ApiBody::from(body));
    let Ok(request) = request else { return };
    if let Err(error) = PooledClient::builder().build().call(request).await {
        tracing::warn!(%error, "could not report the INIT error to the Runtime API");
    }
}

#[cfg(test)]
mod tests {
    use orders_testkit::env::env_of;

    use super::*;

    #[test]
    fn log_config_follows_lambdas_advanced_logging_controls() {
        let log = LogConfig::from_vars(env_of(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]));
        assert_eq!(log.format, LogFormat::Json);
        assert_eq!(log.filter, "info");

        let log = LogConfig::from_vars(env_of(&[
            ("AWS_LAMBDA_LOG_FORMAT", "Text"),
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
            ("RUST_LOG", "trace"),
        ]));
        assert_eq!(log.format, LogFormat::Text);
        assert_eq!(
            log.filter, "debug",
            "AWS_LAMBDA_LOG_LEVEL wins over RUST_LOG"
        );

        let log = LogConfig::from_vars(env_of(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]));
        assert_eq!(log.filter, "error");

        let log = LogConfig::from_vars(env_of(&[("RUST_LOG", "orders_handlers=debug,warn")]));
        assert_eq!(log.filter, "orders_handlers=debug,warn");
        assert_eq!(log.format, LogFormat::Text);
    }

    #[test]
    fn the_configured_line_lists_each_variable_as_read() {
        let vars = [
            EnvVar::required("TABLE", "a table"),
            EnvVar::with_default("SOURCE", "orders", "a source"),
            EnvVar::required("KEY", "a secret").secret(),
            EnvVar::required("MISSING", "unset"),
        ];
        let env = env_of(&[
            ("TABLE", " t "),
            ("KEY", "0123456789"),
            ("RUST_LOG", "debug"),
        ]);
        let line = Settings {
            vars: &vars,
            var: &env,
        }
        .to_string();
        assert_eq!(
            line,
            "TABLE=t SOURCE=orders (default) KEY=<10 bytes> MISSING unset \
             AWS_LAMBDA_LOG_FORMAT=Text (default) AWS_LAMBDA_LOG_LEVEL=INFO (default) \
             RUST_LOG=debug"
        );
        assert_eq!(config_diagnostic(&"bad").error_type, "Orders.Config");
    }
}
