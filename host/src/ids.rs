//! Typed ids, as svix-server has them: each kind of id is its own type with a checked
//! prefix (`ws_…`, `conn_…`, `plg_…`), so passing a workspace id where a connection id is
//! expected is a compile error, and a malformed id from a request is refused at the edge.
//!
//! An id is `<prefix>_<26 lower-case ULID characters>`. Each type stores as text (through
//! sqlx's `Any` driver), serializes as a plain string, and documents itself in the OpenAPI
//! as a string with its prefix.

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {kind} id (expected `{prefix}_…`)")]
pub struct InvalidId {
    /// What kind was expected (e.g. `connection`).
    pub kind: &'static str,
    /// The expected prefix.
    pub prefix: &'static str,
    /// The rejected value (truncated).
    pub value: String,
}

/// Whether `value` is `<prefix>_` followed by 1–64 id characters (`[0-9a-z]`).
pub fn has_prefix(value: &str, prefix: &str) -> bool {
    value
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| {
            !body.is_empty() && body.len() <= 64 && body.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, random, time-ordered id.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, ulid::Ulid::new().to_string().to_ascii_lowercase()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;

            fn from_str(value: &str) -> Result<Self, InvalidId> {
                if has_prefix(value, $prefix) {
                    Ok(Self(value.to_string()))
                } else {
                    Err(InvalidId {
                        kind: $kind,
                        prefix: $prefix,
                        value: value.chars().take(80).collect(),
                    })
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "_[0-9a-z]{1,64}$")))
                    .description(Some(concat!("A ", $kind, " id (`", $prefix, "_…`).")))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        crate::store::text_column!($name);
    };
}

typed_id!(
    /// A workspace (tenant): `ws_…`.
    WorkspaceId,
    "ws",
    "workspace"
);
typed_id!(
    /// A connection: `conn_…`.
    ConnectionId,
    "conn",
    "connection"
);
typed_id!(
    /// An installed connector: `plg_…`.
    InstallationId,
    "plg",
    "connector"
);
typed_id!(
    /// An API key: `key_…`.
    ApiKeyId,
    "key",
    "API key"
);
typed_id!(
    /// A workspace member: `mem_…`.
    MemberId,
    "mem",
    "member"
);
typed_id!(
    /// An execution (of an action, or of a workflow): `exe_…`.
    ExecutionId,
    "exe",
    "execution"
);
typed_id!(
    /// A workflow: `wf_…`.
    WorkflowId,
    "wf",
    "workflow"
);
typed_id!(
    /// A workflow's trigger (incoming webhook or schedule): `trg_…`.
    TriggerId,
    "trg",
    "trigger"
);
typed_id!(
    /// An outbox event: `evt_…`.
    EventId,
    "evt",
    "event"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_check_their_prefix() {
        let id = ConnectionId::generate();
        assert!(id.as_str().starts_with("conn_"));
        assert_eq!(id.as_str().parse::<ConnectionId>(), Ok(id.clone()));
        let wrong = "ws_01h0000000000000000000000".parse::<ConnectionId>();
        assert_eq!(wrong.map_err(|e| e.prefix), Err("conn"));
        assert!("conn_".parse::<ConnectionId>().is_err());
        assert!("conn_ABC".parse::<ConnectionId>().is_err());
        assert!("conn_abc/../x".parse::<ConnectionId>().is_err());
        let json = serde_json::to_string(&id).expect("json");
        assert_eq!(serde_json::from_str::<ConnectionId>(&json).expect("back"), id);
        assert!(serde_json::from_str::<WorkspaceId>(&json).is_err());
    }
}
