//! What a connector component may import: this package's interfaces, and the few WASI
//! interfaces Rust's standard library pulls in (all granted nothing). Anything else, such as
//! `wasi:filesystem` or `wasi:sockets`, is refused at load, naming the import.

use super::LoadError;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The WIT package version this host implements.
pub const NEXUM_PACKAGE: &str = "nexum:connector";
/// Versions of [`NEXUM_PACKAGE`] this host links, oldest first (one set of bindings serves
/// the whole 0.1 line: wasmtime links `…@0.1.0` imports to `…@0.1.1` definitions).
pub const NEXUM_VERSIONS: &[&str] = &["0.1.0", "0.1.1", "0.1.2"];

/// Each interface of the package and the version that introduced it.
const NEXUM_INTERFACES: &[(&str, &str)] = &[
    ("types", "0.1.0"),
    ("credentials", "0.1.0"),
    ("http", "0.1.0"),
    ("config", "0.1.0"),
    ("log", "0.1.0"),
    ("execution", "0.1.1"),
    ("mail", "0.1.2"),
];

/// WASI 0.2 interfaces linked with an empty context (no files, sockets, env or args).
const WASI_ALLOWED: &[&str] = &[
    "wasi:io/poll",
    "wasi:io/error",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// Refuse a component whose imports reach beyond the connector world.
pub fn check_imports(engine: &Engine, component: &Component) -> Result<(), LoadError> {
    for (name, _) in component.component_type().imports(engine) {
        check_import(name)?;
    }
    Ok(())
}

fn check_import(name: &str) -> Result<(), LoadError> {
    let forbidden = |reason: String| LoadError::ForbiddenImport {
        import: name.to_string(),
        reason,
    };
    let (path, version) = name.split_once('@').unwrap_or((name, ""));
    if let Some(interface) = path.strip_prefix("nexum:connector/") {
        let Some(&(_, since)) = NEXUM_INTERFACES.iter().find(|(i, _)| *i == interface) else {
            return Err(forbidden(format!("nexum:connector has no interface `{interface}`")));
        };
        let Some(at) = NEXUM_VERSIONS.iter().position(|v| *v == version) else {
            return Err(forbidden(format!(
                "this host implements nexum:connector@{}",
                NEXUM_VERSIONS.join(", @")
            )));
        };
        if NEXUM_VERSIONS.iter().position(|v| *v == since) > Some(at) {
            return Err(forbidden(format!("`{interface}` was added in nexum:connector@{since}")));
        }
        return Ok(());
    }
    if WASI_ALLOWED.contains(&path) {
        if version.starts_with("0.2.") {
            return Ok(());
        }
        return Err(forbidden("only WASI 0.2 is supported".into()));
    }
    Err(forbidden(
        "connectors get brokered HTTP, credential handles, config and log only; no files, sockets or other host access"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connector_world_and_std_wasi_are_allowed() {
        for ok in [
            "nexum:connector/http@0.1.0",
            "nexum:connector/http@0.1.1",
            "nexum:connector/execution@0.1.1",
            "wasi:io/streams@0.2.4",
            "wasi:cli/environment@0.2.0",
            "wasi:random/insecure-seed@0.2.3",
        ] {
            assert!(check_import(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn every_interface_names_a_linked_version() {
        for (interface, since) in NEXUM_INTERFACES {
            assert!(NEXUM_VERSIONS.contains(since), "{interface}");
        }
    }

    #[test]
    fn everything_else_is_refused_by_name() {
        for bad in [
            "wasi:filesystem/preopens@0.2.4",
            "wasi:sockets/tcp@0.2.4",
            "wasi:http/outgoing-handler@0.2.4",
            "nexum:connector/http@0.2.0",
            "nexum:connector/secrets@0.1.0",
            "nexum:connector/execution@0.1.0",
            "evil:thing/x",
        ] {
            let err = check_import(bad).expect_err(bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
