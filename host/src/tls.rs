//! TLS setup: rustls with the `ring` provider (avoids building aws-lc-sys).

/// Install `ring` as the process-wide rustls provider, once. Safe to call repeatedly.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error only means another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
