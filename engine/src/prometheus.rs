//! A small client for Prometheus's HTTP API (`/api/v1/query`): timeouts, Prometheus's own
//! error messages passed on, and answers cached for a short time so many viewers of one page
//! ask Prometheus once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::Deserialize;

/// How tierdeck reaches Prometheus.
#[derive(Debug, Clone)]
pub struct PromSettings {
    pub url: String,
    pub timeout: Duration,
    /// How long an answer is reused.
    pub cache_for: Duration,
}

/// Why a query has no answer, in a sentence that names Prometheus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromError {
    #[error("Prometheus at {url} cannot be reached: {message}")]
    Unreachable { url: String, message: String },
    /// Prometheus took the query but gave no answer in time (a query too heavy for it, or
    /// Prometheus stalled): the query's failure, not Prometheus being away.
    #[error("Prometheus at {url} gave no answer within {secs} s")]
    Slow { url: String, secs: u64 },
    /// Prometheus answered with an error of its own (bad query, timeout inside Prometheus).
    #[error("Prometheus refused the query `{query}`: {message}")]
    Refused { query: String, message: String },
    #[error("Prometheus sent an answer tierdeck cannot read: {0}")]
    Unreadable(String),
}

#[derive(Debug, Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Sample>),
    Scalar((f64, String)),
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

#[derive(Debug, Deserialize)]
struct Sample {
    value: (f64, String),
}

#[derive(Debug, Deserialize)]
struct RangeAnswer {
    status: String,
    #[serde(default)]
    data: Option<RangeData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RangeData {
    result: Vec<RangeSeries>,
}

#[derive(Debug, Deserialize)]
struct RangeSeries {
    values: Vec<(f64, String)>,
}

/// The largest answer read from Prometheus. tierdeck's queries each yield one number or one
/// series of at most a few hundred points (a few KB); a query that matches many series could
/// send far more, and is refused past this instead of read whole.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Points of a range query: (Unix seconds, value).
pub type Points = Vec<(i64, f64)>;

type Cache = TtlCache<(String, Option<i64>), Option<f64>>;
type RangeCache = TtlCache<(String, i64, i64, i64), Points>;

/// Instant queries at a given time are asked (and cached) at whole minutes: times that callers
/// pick cannot multiply the queries or the cache.
const AT_GRANULARITY: i64 = 60;

/// Answers kept for a while, never more than `cap` of them.
#[derive(Debug)]
pub(crate) struct TtlCache<K, V> {
    map: HashMap<K, (Instant, V)>,
    cap: usize,
}

impl<K: std::hash::Hash + Eq, V: Clone> TtlCache<K, V> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap,
        }
    }

    pub(crate) fn get(&self, key: &K, ttl: Duration) -> Option<V> {
        self.map
            .get(key)
            .filter(|(when, _)| when.elapsed() < ttl)
            .map(|(_, v)| v.clone())
    }

    pub(crate) fn insert(&mut self, key: K, value: V, ttl: Duration) {
        if self.map.len() >= self.cap {
            self.map.retain(|_, (when, _)| when.elapsed() < ttl);
        }
        if self.map.len() >= self.cap {
            // Still full of live answers: start again rather than grow.
            self.map.clear();
        }
        self.map.insert(key, (Instant::now(), value));
    }
}

/// Prometheus's own error answer for `query`, passed on.
fn refused(query: &str, error_type: Option<String>, error: Option<String>) -> PromError {
    PromError::Refused {
        query: query.to_owned(),
        message: format!(
            "{}: {}",
            error_type.unwrap_or_else(|| "error".into()),
            error.unwrap_or_default()
        ),
    }
}

/// What the services ask Prometheus: the HTTP client below, or (in the engine's tests) answers
/// a test chooses.
pub trait PromApi: Send + Sync + std::fmt::Debug {
    /// The value of an instant query that yields one number; `None`: no data.
    fn value<'a>(
        &'a self,
        query: &'a str,
        at: Option<i64>,
    ) -> BoxFuture<'a, Result<Option<f64>, PromError>>;

    /// The one series of a range query.
    fn range<'a>(
        &'a self,
        query: &'a str,
        start: i64,
        end: i64,
        step: i64,
    ) -> BoxFuture<'a, Result<Points, PromError>>;
}

impl PromApi for Prometheus {
    fn value<'a>(
        &'a self,
        query: &'a str,
        at: Option<i64>,
    ) -> BoxFuture<'a, Result<Option<f64>, PromError>> {
        Box::pin(Prometheus::value(self, query, at))
    }

    fn range<'a>(
        &'a self,
        query: &'a str,
        start: i64,
        end: i64,
        step: i64,
    ) -> BoxFuture<'a, Result<Points, PromError>> {
        Box::pin(Prometheus::range(self, query, start, end, step))
    }
}

/// An answer's body as text, refused once it passes `limit` bytes (before more is read).
async fn read_bounded(mut res: reqwest::Response, limit: usize) -> Result<String, PromError> {
    let too_large = || {
        PromError::Unreadable(format!(
            "its answer is larger than {} KiB, more than any of tierdeck's queries needs (does the query match many series?)",
            limit >> 10
        ))
    };
    if res.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| PromError::Unreadable(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| PromError::Unreadable("its answer is not UTF-8".into()))
}

/// A Prometheus client; cheap to clone.
#[derive(Debug, Clone)]
pub struct Prometheus {
    settings: PromSettings,
    http: reqwest::Client,
    cache: Arc<Mutex<Cache>>,
    ranges: Arc<Mutex<RangeCache>>,
}

impl Prometheus {
    pub fn new(settings: PromSettings) -> Result<Self, PromError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| PromError::Unreachable {
                url: domain::redact::url(&settings.url),
                message: e.without_url().to_string(),
            })?;
        Ok(Self {
            settings,
            http,
            cache: Arc::new(Mutex::new(TtlCache::new(4096))),
            ranges: Arc::new(Mutex::new(TtlCache::new(1024))),
        })
    }

    pub fn url(&self) -> &str {
        &self.settings.url
    }

    /// The value of an instant query that yields one number (`sum(…)`, a scalar): `None` when
    /// the vector is empty (no data). `at` is a Unix time; `None` means now.
    pub async fn value(&self, query: &str, at: Option<i64>) -> Result<Option<f64>, PromError> {
        let at = at.map(|t| t - t.rem_euclid(AT_GRANULARITY));
        let key = (query.to_owned(), at);
        let ttl = self.settings.cache_for;
        if let Some(v) = self.cache.lock().expect("cache lock").get(&key, ttl) {
            return Ok(v);
        }
        let v = self.fetch(query, at).await?;
        self.cache.lock().expect("cache lock").insert(key, v, ttl);
        Ok(v)
    }

    /// The one series of a range query from `start` to `end` every `step` seconds (empty when
    /// there is no data). Answers are cached like instant ones.
    pub async fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Points, PromError> {
        let key = (query.to_owned(), start, end, step);
        let ttl = self.settings.cache_for;
        if let Some(v) = self.ranges.lock().expect("cache lock").get(&key, ttl) {
            return Ok(v);
        }
        let form = [
            ("query", query.to_owned()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step.max(1).to_string()),
        ];
        let text = self.post("query_range", &form).await?;
        let answer: RangeAnswer = serde_json::from_str(&text)
            .map_err(|_| PromError::Unreadable(text.chars().take(200).collect::<String>()))?;
        if answer.status != "success" {
            return Err(refused(query, answer.error_type, answer.error));
        }
        let series = answer.data.map(|d| d.result).unwrap_or_default();
        if series.len() > 1 {
            return Err(PromError::Refused {
                query: query.to_owned(),
                message: format!(
                    "it returned {} series where one was expected; wrap it in sum() or avg()",
                    series.len()
                ),
            });
        }
        let points: Points = series
            .into_iter()
            .flat_map(|s| s.values)
            .filter_map(|(t, v)| Some((t as i64, v.parse::<f64>().ok().filter(|v| v.is_finite())?)))
            .collect();
        self.ranges
            .lock()
            .expect("cache lock")
            .insert(key, points.clone(), ttl);
        Ok(points)
    }

    async fn post(&self, endpoint: &str, form: &[(&str, String)]) -> Result<String, PromError> {
        let url = format!(
            "{}/api/v1/{endpoint}",
            self.settings.url.trim_end_matches('/')
        );
        let res = self.http.post(&url).form(form).send().await.map_err(|e| {
            let url = domain::redact::url(&self.settings.url);
            if e.is_timeout() {
                PromError::Slow {
                    url,
                    secs: self.settings.timeout.as_secs(),
                }
            } else {
                PromError::Unreachable {
                    url,
                    message: e.without_url().to_string(),
                }
            }
        })?;
        read_bounded(res, MAX_ANSWER_BYTES).await
    }

    async fn fetch(&self, query: &str, at: Option<i64>) -> Result<Option<f64>, PromError> {
        let mut form = vec![("query", query.to_owned())];
        if let Some(t) = at {
            form.push(("time", t.to_string()));
        }
        let text = self.post("query", &form).await?;
        let answer: Answer = serde_json::from_str(&text)
            .map_err(|_| PromError::Unreadable(text.chars().take(200).collect::<String>()))?;
        if answer.status != "success" {
            return Err(refused(query, answer.error_type, answer.error));
        }
        let number = |s: &str| {
            s.parse::<f64>()
                .map_err(|_| PromError::Unreadable(format!("`{s}` is not a number")))
        };
        match answer.data {
            Some(Data::Vector(samples)) => match samples.as_slice() {
                [] => Ok(None),
                [one] => number(&one.value.1).map(|v| v.is_finite().then_some(v)),
                many => Err(PromError::Refused {
                    query: query.to_owned(),
                    message: format!(
                        "it returned {} series where one was expected; wrap it in sum()",
                        many.len()
                    ),
                }),
            },
            Some(Data::Scalar((_, v))) => number(&v).map(|v| v.is_finite().then_some(v)),
            _ => Err(PromError::Refused {
                query: query.to_owned(),
                message: "it did not return a number".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback server that answers every request with `body_bytes` of JSON-looking bytes,
    /// without a length (as a stream), then closes.
    async fn flooding_server(body_bytes: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b'['; 64 << 10];
                    let mut sent = 0;
                    while sent < body_bytes {
                        if socket.write_all(&chunk).await.is_err() {
                            return;
                        }
                        sent += chunk.len();
                    }
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn an_answer_past_the_bound_is_refused_before_it_is_read_whole() {
        // The client's TLS needs a crypto provider, as the panel installs one (plain HTTP here).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let url = flooding_server(64 << 20).await;
        let prom = Prometheus::new(PromSettings {
            url,
            timeout: Duration::from_secs(60),
            cache_for: Duration::ZERO,
        })
        .unwrap();
        let e = prom.value("up", None).await.unwrap_err();
        assert!(
            matches!(&e, PromError::Unreadable(m) if m.starts_with("its answer is larger than 4096 KiB")),
            "{e}"
        );
        let e = prom.range("up", 0, 3600, 60).await.unwrap_err();
        assert!(e.to_string().contains("larger than 4096 KiB"), "{e}");
    }

    #[test]
    fn the_cache_never_holds_more_than_its_cap_even_of_live_answers() {
        let ttl = Duration::from_secs(3600);
        let mut c: TtlCache<i64, u8> = TtlCache::new(100);
        for k in 0..1000 {
            c.insert(k, 1, ttl);
            assert!(c.map.len() <= 100);
        }
        assert_eq!(c.get(&999, ttl), Some(1));
        assert_eq!(c.get(&999, Duration::ZERO), None, "expired");
    }
}
