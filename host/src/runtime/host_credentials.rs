//! `nexum:connector/credentials`: opaque handles. Nothing here returns secret material; the
//! only operation that touches the secret, `hmac-sha256`, returns a MAC.

use super::bindings::nexum::connector::credentials::{Host, HostCredential};
use super::bindings::nexum::connector::types::CredentialKind;
use super::state::{CallState, CredentialHandle};
use crate::vault::Credential;
use hmac::{Hmac, KeyInit, Mac};
use nexum_manifest::AuthKind;
use sha2::Sha256;
use wasmtime::component::Resource;

impl CallState {
    /// The credential behind a handle the guest passed in.
    pub(crate) fn credential(&self, handle: &Resource<CredentialHandle>) -> wasmtime::Result<&Credential> {
        let index = self.table.get(handle)?.index;
        self.connection
            .credentials
            .get(index)
            .ok_or_else(|| wasmtime::format_err!("credential handle points at no credential"))
    }
}

impl Host for CallState {
    async fn get(&mut self, scheme: String) -> wasmtime::Result<Option<Resource<CredentialHandle>>> {
        let Some(index) = self.connection.credentials.iter().position(|c| c.scheme.id == scheme) else {
            return Ok(None);
        };
        self.handles_issued += 1;
        if self.handles_issued > self.limits.max_credential_handles {
            wasmtime::bail!(
                "connector requested more than {} credential handles in one call",
                self.limits.max_credential_handles
            );
        }
        Ok(Some(self.table.push(CredentialHandle { index })?))
    }
}

impl HostCredential for CallState {
    async fn kind(&mut self, handle: Resource<CredentialHandle>) -> wasmtime::Result<CredentialKind> {
        Ok(match self.credential(&handle)?.scheme.kind {
            // A signing-only secret reads as an API key: 0.1's `credential-kind` is frozen.
            AuthKind::ApiKey { .. } | AuthKind::Secret => CredentialKind::ApiKey,
            AuthKind::Bearer => CredentialKind::Bearer,
            AuthKind::Basic => CredentialKind::Basic,
            AuthKind::OAuth2(_) => CredentialKind::Oauth2,
        })
    }

    async fn scheme(&mut self, handle: Resource<CredentialHandle>) -> wasmtime::Result<String> {
        Ok(self.credential(&handle)?.scheme.id.clone())
    }

    async fn label(&mut self, handle: Resource<CredentialHandle>) -> wasmtime::Result<String> {
        let label = self.credential(&handle)?.label.clone();
        Ok(self.connection.egress.redactor.scrub(&label))
    }

    async fn hmac_sha256(&mut self, handle: Resource<CredentialHandle>, data: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        let credential = self.credential(&handle)?;
        if !credential.scheme.hmac || matches!(credential.scheme.kind, nexum_manifest::AuthKind::Basic) {
            return Err(wasmtime::format_err!(
                "auth scheme `{}` does not declare `hmac = true`; its secret cannot key an HMAC",
                credential.scheme.id
            ));
        }
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(credential.hmac_key())
            .map_err(|_| wasmtime::format_err!("credential cannot be used as an HMAC key"))?;
        mac.update(&data);
        Ok(mac.finalize().into_bytes().to_vec())
    }

    async fn drop(&mut self, handle: Resource<CredentialHandle>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}
