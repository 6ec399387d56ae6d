//! `nexum:connector/http`: the guest's one way out, handed straight to the [`Broker`].
//!
//! [`Broker`]: crate::broker::Broker

use super::bindings::nexum::connector::http::Host;
use super::bindings::nexum::connector::types::{self, HttpError, HttpRequest, HttpResponse};
use super::state::{CallState, CredentialHandle};
use crate::broker::{BrokerError, OutboundRequest};
use reqwest::Method;
use wasmtime::component::Resource;

impl types::Host for CallState {}

impl Host for CallState {
    async fn send(
        &mut self,
        request: HttpRequest,
        auth: Option<Resource<CredentialHandle>>,
    ) -> wasmtime::Result<Result<HttpResponse, HttpError>> {
        if self.trace.http.len() >= self.limits.max_http_requests {
            return Ok(Err(HttpError::InvalidRequest(format!(
                "a call may make at most {} requests",
                self.limits.max_http_requests
            ))));
        }
        let credential_index = match &auth {
            Some(handle) => Some(self.table.get(handle)?.index),
            None => None,
        };
        let connection = self.connection.clone();
        let broker = self.broker.clone();
        let credential = credential_index.and_then(|i| connection.credentials.get(i));
        let outbound = OutboundRequest {
            method: method(request.method),
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        let result = broker
            .send(
                &connection.egress,
                outbound,
                credential,
                self.deadline,
                &mut self.trace.http,
            )
            .await;
        Ok(result
            .map(|r| HttpResponse {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
            .map_err(to_wit_error))
    }
}

fn method(m: types::Method) -> Method {
    match m {
        types::Method::Get => Method::GET,
        types::Method::Head => Method::HEAD,
        types::Method::Post => Method::POST,
        types::Method::Put => Method::PUT,
        types::Method::Patch => Method::PATCH,
        types::Method::Delete => Method::DELETE,
        types::Method::Options => Method::OPTIONS,
    }
}

fn to_wit_error(e: BrokerError) -> HttpError {
    let message = e.to_string();
    match e {
        BrokerError::HostNotAllowed { .. } => HttpError::HostNotAllowed(message),
        BrokerError::AddressBlocked(_) => HttpError::AddressBlocked(message),
        BrokerError::HeaderForbidden { .. } => HttpError::HeaderForbidden(message),
        BrokerError::CredentialNotBound { .. } => HttpError::CredentialNotBound(message),
        BrokerError::InvalidRequest(_) => HttpError::InvalidRequest(message),
        BrokerError::RequestTooLarge { limit } => HttpError::RequestTooLarge(limit),
        BrokerError::ResponseTooLarge { limit } => HttpError::ResponseTooLarge(limit),
        BrokerError::RateLimited { retry_after } => HttpError::RateLimited(retry_after.as_millis() as u64),
        BrokerError::Timeout => HttpError::Timeout,
        BrokerError::Transport(_) => HttpError::Transport(message),
    }
}
