//! tierdeck's own metrics for Prometheus, and the liveness check.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use engine::Engine;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Latency buckets in seconds; 0.4 s is the panel's own latency objective line.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.4, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AwsLabels {
    service: String,
    action: String,
}

/// The requests sent to AWS, read from the engine's count at each scrape.
#[derive(Debug)]
struct AwsCalls;

impl Collector for AwsCalls {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals = engine::aws::calls::totals();
        let mut family = encoder.encode_descriptor(
            "aws_calls",
            "Requests sent to AWS by service and action, each retry counted",
            None,
            MetricType::Counter,
        )?;
        for (service, action, n) in totals {
            let labels = AwsLabels { service, action };
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LoginLabels {
    outcome: String,
}

pub struct Metrics {
    registry: Registry,
    /// 1 while this replica leads the periodic work.
    leading: prometheus_client::metrics::gauge::Gauge,
    /// Leader terms this replica saw begin (its own included).
    leader_changes: Counter,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    logins: Family<LoginLabels, Counter>,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tierdeck");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register("logins", "Sign-in attempts by outcome", logins.clone());
        registry.register_collector(Box::new(AwsCalls));
        let leading = prometheus_client::metrics::gauge::Gauge::default();
        let leader_changes = Counter::default();
        registry.register(
            "leader",
            "1 while this replica leads the periodic work (watcher, pollers)",
            leading.clone(),
        );
        registry.register(
            "leader_changes",
            "Leader terms this replica saw begin, its own included",
            leader_changes.clone(),
        );
        Self {
            registry,
            leading,
            leader_changes,
            requests,
            latency,
            logins,
        }
    }

    pub fn login(&self, outcome: &str) {
        self.logins
            .get_or_create(&LoginLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

/// The method as a label: the standard ones by name, anything else as `other` (a client may send
/// any token as a method).
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Counts and times every request by its route pattern (never the raw path: that would let
/// anyone grow the label set).
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method()).to_owned();
    let route = if req.uri().path().starts_with("/pkg/") {
        "/pkg/*".to_owned()
    } else {
        match req.extensions().get::<MatchedPath>() {
            Some(p) => p.as_str().to_owned(),
            None => "unmatched".to_owned(),
        }
    };
    let res = next.run(req).await;
    metrics
        .latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: res.status().as_u16(),
        })
        .inc();
    res
}

pub async fn render(State(metrics): State<Arc<Metrics>>, State(engine): State<Engine>) -> Response {
    metrics
        .leading
        .set(i64::from(engine.cluster.leadership().leading));
    let seen = engine.cluster.leader_changes();
    let counted = metrics.leader_changes.get();
    if seen > counted {
        metrics.leader_changes.inc_by(seen - counted);
    }
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &metrics.registry) {
        tracing::error!(error = %e, "encoding metrics");
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// Liveness, plus whether the database answers: `ok`, the back end, and whether this replica
/// leads the periodic work (`leader` or `follower`).
pub async fn healthz(State(engine): State<Engine>) -> Response {
    match sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(engine.store.pool())
        .await
    {
        Ok(_) => {
            let role = if engine.cluster.leadership().leading {
                "leader"
            } else {
                "follower"
            };
            let backend = engine.store.backend().as_str();
            (axum::http::StatusCode::OK, format!("ok {backend} {role}\n")).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "health check: database");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        use axum::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        for i in 0..3 {
            let m = Method::from_bytes(format!("RANDOM{i}").as_bytes()).unwrap();
            assert_eq!(method_label(&m), "other");
        }
    }
}
