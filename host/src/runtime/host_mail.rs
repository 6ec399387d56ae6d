//! `nexum:connector/mail` (since 0.1.2): outbound mail through a declared SMTP server. The
//! guest hands over the message and a credential handle; the [`Broker`] polices the server,
//! logs in with the secret itself and speaks SMTP. A 0.1.0 or 0.1.1 component never imports
//! it.
//!
//! [`Broker`]: crate::broker::Broker

use super::bindings::nexum::connector::mail::{Host, MailError, Message, Sent};
use super::state::{CallState, CredentialHandle};
use crate::broker::{self, MailAttachment, MailMessage};
use wasmtime::component::Resource;

impl Host for CallState {
    async fn send(
        &mut self,
        server: String,
        message: Message,
        auth: Option<Resource<CredentialHandle>>,
    ) -> wasmtime::Result<Result<Sent, MailError>> {
        if let Some(refused) = self.request_cap_reached() {
            return Ok(Err(MailError::InvalidMessage(refused)));
        }
        let index = self.credential_index(auth.as_ref())?;
        let connection = self.connection.clone();
        let credential = index.and_then(|i| connection.credentials.get(i));
        let message = MailMessage {
            from: message.from,
            to: message.to,
            cc: message.cc,
            bcc: message.bcc,
            reply_to: message.reply_to,
            subject: message.subject,
            text: message.text,
            html: message.html,
            attachments: message
                .attachments
                .into_iter()
                .map(|a| MailAttachment {
                    filename: a.filename,
                    content_type: a.content_type,
                    data: a.data,
                })
                .collect(),
        };
        let result = self
            .broker
            .clone()
            .send_mail(
                &connection.egress,
                &server,
                message,
                credential,
                self.deadline,
                &mut self.trace.http,
            )
            .await;
        Ok(result
            .map(|sent| Sent {
                message_id: sent.message_id,
                response: sent.response,
            })
            .map_err(to_wit_error))
    }

    async fn check(
        &mut self,
        server: String,
        auth: Option<Resource<CredentialHandle>>,
    ) -> wasmtime::Result<Result<String, MailError>> {
        if let Some(refused) = self.request_cap_reached() {
            return Ok(Err(MailError::InvalidMessage(refused)));
        }
        let index = self.credential_index(auth.as_ref())?;
        let connection = self.connection.clone();
        let credential = index.and_then(|i| connection.credentials.get(i));
        let result = self
            .broker
            .clone()
            .check_mail(
                &connection.egress,
                &server,
                credential,
                self.deadline,
                &mut self.trace.http,
            )
            .await;
        Ok(result.map_err(to_wit_error))
    }
}

fn to_wit_error(e: broker::MailError) -> MailError {
    let message = e.to_string();
    match e {
        broker::MailError::ServerNotAllowed(_) => MailError::ServerNotAllowed(message),
        broker::MailError::AddressBlocked(_) => MailError::AddressBlocked(message),
        broker::MailError::CredentialNotBound(_) => MailError::CredentialNotBound(message),
        broker::MailError::InvalidMessage(_) => MailError::InvalidMessage(message),
        broker::MailError::AuthFailed(_) => MailError::AuthFailed(message),
        broker::MailError::Rejected(_) => MailError::Rejected(message),
        broker::MailError::Temporary(_) => MailError::Temporary(message),
    }
}
