//! The pages' resources: what a server function loads, rendered into the page by the server
//! and read back from it by the browser when it hydrates.
//!
//! The same JSON as Leptos's default codec, but read from bytes (`serde_json::from_slice`) as
//! `server_fn` reads the server functions' responses: each type's deserializer is then
//! compiled into the wasm once, not once for a `&str` reader and again for a byte reader.

use std::future::Future;

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::{de::DeserializeOwned, Serialize};

/// JSON, read from bytes.
pub struct Json;

impl<T: Serialize> Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(val)
    }
}

impl<T: DeserializeOwned> Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(val.as_bytes())
    }
}

/// What a server function loads, as a page reads it.
pub type Loading<T> = Resource<Result<T, ServerFnError>, Json>;

/// `Resource::new` with [`Json`].
#[track_caller]
pub fn resource<S, T, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T, Json>
where
    S: PartialEq + Clone + Send + Sync + 'static,
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

/// For an island: data the server loaded with the page (the island's prop), loaded again in
/// the browser by `load` each time `trigger` changes (after the island's forms act). Only the
/// latest load's answer is kept, should two overlap.
pub fn reloaded<T, S, Fut>(
    initial: T,
    trigger: impl Fn() -> S + 'static,
    load: impl Fn() -> Fut + 'static,
) -> ReadSignal<Result<T, ServerFnError>>
where
    T: Send + Sync + 'static,
    S: 'static,
    Fut: Future<Output = Result<T, ServerFnError>> + 'static,
{
    let (data, set_data) = signal(Ok(initial));
    let latest = StoredValue::new(0u64);
    Effect::watch(
        trigger,
        move |_, _, _| {
            latest.update_value(|n| *n += 1);
            let this = latest.get_value();
            let answer = load();
            leptos::task::spawn_local(async move {
                let answer = answer.await;
                if latest.try_get_value() == Some(this) {
                    set_data.set(answer);
                }
            });
        },
        false,
    );
    data
}
