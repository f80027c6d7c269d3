//! The browser entry point: hydrates the server-rendered page's islands.

// Leptos views are deeply nested types; the release build of the wasm needs more room.
#![recursion_limit = "512"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    app::hydrate();
}
