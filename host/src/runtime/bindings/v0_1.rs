//! Bindings for the 0.1 line of `nexum:connector` (world `connector`), generated from its
//! newest release, `wit/0.1.2/`.
//!
//! 0.1.1 only adds the `execution` interface to 0.1.0, and 0.1.2 only the `mail` interface. wasmtime's linker and export lookup
//! match semver-compatible names (`…@0.1.0` is satisfied by `…@0.1.1`), so these bindings
//! serve 0.1.0 components unchanged; a 0.1.0 component simply never imports `execution`, nor a 0.1.1 one `mail`.
//! A breaking version (0.2) gets a sibling module generated from its own directory; see
//! `wit/README.md`.

wasmtime::component::bindgen!({
    path: "../wit/0.1.2",
    world: "connector",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "nexum:connector/credentials.credential": crate::runtime::state::CredentialHandle,
        "nexum:connector/http.request": crate::runtime::state::OutgoingRequest,
    },
});
