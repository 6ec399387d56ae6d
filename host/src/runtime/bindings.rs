//! Host bindings generated from `wit/` (`nexum:connector@0.1.0`, world `connector`).
//!
//! When `0.2` ships it gets a sibling module generated from its own WIT directory, and the
//! runtime links both; see `wit/README.md`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "connector",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "nexum:connector/credentials.credential": super::state::CredentialHandle,
        "nexum:connector/http.request": super::state::OutgoingRequest,
    },
});
