//! Scopes an API key can hold.

use serde::{Deserialize, Serialize};

/// A permission carried by an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Scope {
    /// Read connectors, connections, usage.
    #[serde(rename = "connections:read")]
    ConnectionsRead,
    /// Install connectors; create, change, test and delete connections.
    #[serde(rename = "connections:write")]
    ConnectionsWrite,
    /// Execute connector actions.
    #[serde(rename = "actions:execute")]
    ActionsExecute,
    /// Publish to the marketplace.
    #[serde(rename = "marketplace:publish")]
    MarketplacePublish,
    /// Subscribe to events: manage webhook endpoints and REST hooks (`/webhooks`, `/hooks`).
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
    /// Create, change and delete workflows.
    #[serde(rename = "workflows:write")]
    WorkflowsWrite,
    /// Manage members, API keys and the audit log of the workspace.
    #[serde(rename = "admin")]
    Admin,
    /// Create new workspaces (operator keys only).
    #[serde(rename = "workspaces:create")]
    WorkspacesCreate,
}

/// Every scope, for the bootstrap key.
pub const ALL_SCOPES: &[Scope] = &[
    Scope::ConnectionsRead,
    Scope::ConnectionsWrite,
    Scope::ActionsExecute,
    Scope::MarketplacePublish,
    Scope::WebhooksWrite,
    Scope::WorkflowsWrite,
    Scope::Admin,
    Scope::WorkspacesCreate,
];

impl Scope {
    /// The wire name, e.g. `connections:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ConnectionsRead => "connections:read",
            Scope::ConnectionsWrite => "connections:write",
            Scope::ActionsExecute => "actions:execute",
            Scope::MarketplacePublish => "marketplace:publish",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::WorkflowsWrite => "workflows:write",
            Scope::Admin => "admin",
            Scope::WorkspacesCreate => "workspaces:create",
        }
    }

    /// Parse a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        ALL_SCOPES.iter().copied().find(|scope| scope.as_str() == s)
    }

    /// Parse a space-separated stored list (unknown names are ignored).
    pub fn parse_list(s: &str) -> Vec<Self> {
        s.split_whitespace().filter_map(Self::parse).collect()
    }

    /// Join scopes for storage.
    pub fn join(scopes: &[Scope]) -> String {
        scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
    }
}

/// Whether a member with `role` may use `scope` at all: a key acts with the scopes it holds
/// that its member's role allows. Owners and admins may use every scope; members use and
/// manage connections, run actions and subscribe to events; viewers only read.
pub fn role_allows(role: crate::store::Role, scope: Scope) -> bool {
    use crate::store::Role;
    match role {
        Role::Owner | Role::Admin => true,
        Role::Member => matches!(
            scope,
            Scope::ConnectionsRead
                | Scope::ConnectionsWrite
                | Scope::ActionsExecute
                | Scope::WebhooksWrite
                | Scope::WorkflowsWrite
        ),
        Role::Viewer => scope == Scope::ConnectionsRead,
    }
}
