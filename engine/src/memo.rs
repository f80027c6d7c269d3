//! What the engine keeps between requests, held by its handle and used by one service each:
//! cost facts and results, and the overview's last audit chain check.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use domain::audit::ChainVerifier;
use domain::cost::{EnvironmentCost, Facts};
use tokio::sync::Mutex;

/// Facts read from AWS per environment, with when they were read; the cost service reuses
/// them for a while.
pub type FactsCache = Arc<Mutex<HashMap<String, (Instant, Facts, Vec<String>)>>>;

/// Costs computed, by what they were computed from (spec, facts, prices, month): a change page
/// viewed by many computes its figures once. Held while computing, so that at most one runs.
pub type CostCache = Arc<Mutex<HashMap<u64, EnvironmentCost>>>;

/// The last intact check's verifier and when its full walk began.
pub(crate) type ChainChecked = Arc<Mutex<Option<(ChainVerifier, Instant)>>>;
