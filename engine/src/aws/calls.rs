//! Counting what tierdeck sends to AWS: every request (each retry is one more) by service and
//! action for `/metrics`, and the requests one piece of work made (an observation) for its
//! report. An SDK interceptor on every client does the counting, and logs each attempt (with
//! its number) inside the adapter's `aws` span (service, action, resource).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Requests by (service, action) since the process started.
static TOTALS: Mutex<BTreeMap<(String, String), u64>> = Mutex::new(BTreeMap::new());

tokio::task_local! {
    static SCOPE: Arc<AtomicU64>;
}

/// Requests sent so far, by service and action (as the SDK names them: `AutoScaling`,
/// `DescribePolicies`).
pub fn totals() -> Vec<(String, String, u64)> {
    let totals = TOTALS.lock().unwrap_or_else(|p| p.into_inner());
    totals
        .iter()
        .map(|((service, action), n)| (service.clone(), action.clone(), *n))
        .collect()
}

/// Runs `work` and returns what it returned with the AWS requests it sent (its own, not those
/// of work running beside it).
pub async fn counted<F: Future>(work: F) -> (F::Output, u64) {
    let count = Arc::new(AtomicU64::new(0));
    let out = SCOPE.scope(count.clone(), work).await;
    (out, count.load(Ordering::Relaxed))
}

/// The interceptor every client carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountRequests;

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, action) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_owned(), m.name().to_owned()))
            .unwrap_or_else(|| ("unknown".to_owned(), "unknown".to_owned()));
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        // Inside the adapter's `aws` span, which names the resource.
        tracing::debug!(service, action, attempt, "AWS request");
        *TOTALS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((service, action))
            .or_default() += 1;
        // Outside a counted scope there is nothing else to count.
        let _ = SCOPE.try_with(|c| c.fetch_add(1, Ordering::Relaxed));
        Ok(())
    }
}
