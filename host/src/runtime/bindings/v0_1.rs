//! Bindings for `nexum:connector@0.1.0` (world `connector`), generated from `wit/0.1/`.
//!
//! 0.1.0 is released and frozen: this module promises exactly what a 0.1 component may
//! import and must export, nothing more (Zed's `since_v0_1_0`). A later version gets a
//! sibling module generated from its own directory (`v0_2.rs` from `wit/0.2/`); see
//! `wit/README.md`.

wasmtime::component::bindgen!({
    path: "../wit/0.1",
    world: "connector",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "nexum:connector/credentials.credential": crate::runtime::state::CredentialHandle,
        "nexum:connector/http.request": crate::runtime::state::OutgoingRequest,
    },
});
