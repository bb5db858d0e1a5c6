//! What every Lambda bootstrap of the service shares, whatever its trigger: logging as
//! Lambda's advanced logging controls ask for it, and INIT errors reported to the Runtime API.
//!
//! - **Logs.** `tracing` to stdout without ANSI colours: JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`
//!   (as Lambda's advanced logging controls set it), one object per line with the event's
//!   fields at the top level, `span` and `spans` (the runtime's `requestId` among them); plain
//!   text otherwise. The level comes from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG` (`Targets`
//!   syntax), else `INFO`.
//! - **INIT errors.** [`init`] reads a function's configuration once; a configuration it cannot
//!   start with is logged, posted to the Runtime API's `/init/error` as a [`Diagnostic`], and
//!   returned, so the process exits and Lambda shows the error type and message.

use std::str::FromStr;

use lambda_runtime::Diagnostic;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use lambda_runtime::Error;

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

    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let format = match var("AWS_LAMBDA_LOG_FORMAT") {
            Some(f) if f.eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let filter = match var("AWS_LAMBDA_LOG_LEVEL") {
            // Lambda's levels are TRACE..ERROR plus FATAL, which tracing does not have.
            Some(level) if level.eq_ignore_ascii_case("fatal") => "error".to_owned(),
            Some(level) => LevelFilter::from_str(&level)
                .unwrap_or(LevelFilter::INFO)
                .to_string()
                .to_ascii_lowercase(),
            None => var("RUST_LOG")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| "info".to_owned()),
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

/// INIT of any function: logging, then `load` (its configuration, from the environment). An
/// error is logged, reported to the Runtime API's `/init/error` (see [`report_init_error`]),
/// and returned.
pub async fn init<C, E>(function: &str, load: impl FnOnce() -> Result<C, E>) -> Result<C, Error>
where
    E: std::error::Error + Clone + Into<Diagnostic> + Send + Sync + 'static,
{
    init_tracing(&LogConfig::from_env());
    match load() {
        Ok(config) => Ok(config),
        Err(error) => {
            tracing::error!(function, %error, "cannot start");
            report_init_error(error.clone().into()).await;
            Err(Box::new(error))
        }
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
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn log_config_follows_lambdas_advanced_logging_controls() {
        let log = LogConfig::from_vars(vars(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]));
        assert_eq!(log.format, LogFormat::Json);
        assert_eq!(log.filter, "info");

        let log = LogConfig::from_vars(vars(&[
            ("AWS_LAMBDA_LOG_FORMAT", "Text"),
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
            ("RUST_LOG", "trace"),
        ]));
        assert_eq!(log.format, LogFormat::Text);
        assert_eq!(
            log.filter, "debug",
            "AWS_LAMBDA_LOG_LEVEL wins over RUST_LOG"
        );

        let log = LogConfig::from_vars(vars(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]));
        assert_eq!(log.filter, "error");

        let log = LogConfig::from_vars(vars(&[("RUST_LOG", "orders_handlers=debug,warn")]));
        assert_eq!(log.filter, "orders_handlers=debug,warn");
        assert_eq!(log.format, LogFormat::Text);
    }
}
