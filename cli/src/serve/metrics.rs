//! `GET /metrics`: the process's metrics in Prometheus text format (issue 16).
//!
//! The same metrics the Lambdas write as CloudWatch EMF lines ([`orders_lambda::metrics`]),
//! recorded at the same places, here kept by `metrics-exporter-prometheus`'s recorder (no
//! listener of its own: this router serves its text). The lags are histograms with
//! [`LAG_BUCKETS`](orders_lambda::metrics::LAG_BUCKETS), so a scraper can compute any quantile.

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::header;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use orders_lambda::metrics::{LAG_BUCKETS, PROJECTION_LAG_SECONDS, PUBLISH_LAG_SECONDS, describe};

/// The text format's content type, version 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// How often the recorder drains its histograms between scrapes, so that their samples do not
/// pile up in memory when nothing scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the process's metrics recorder (before anything records) and returns the router
/// that serves what it recorded.
pub fn install() -> anyhow::Result<Router> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(PROJECTION_LAG_SECONDS.to_owned()),
            &LAG_BUCKETS,
        )?
        .set_buckets_for_metric(Matcher::Full(PUBLISH_LAG_SECONDS.to_owned()), &LAG_BUCKETS)?
        .install_recorder()
        .context("installing the metrics recorder")?;
    describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(Router::new().route("/metrics", get(move || scrape(handle.clone()))))
}

async fn scrape(handle: PrometheusHandle) -> ([(header::HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render())
}
