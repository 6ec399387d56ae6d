//! `nexum:connector/http`: the guest's one way out. Requests are assembled header by header
//! (capped as they arrive) and handed to the [`Broker`] on `send`.
//!
//! [`Broker`]: crate::broker::Broker

use super::bindings::nexum::connector::http::{Host, HostRequest};
use super::bindings::nexum::connector::types::{self, HttpError, HttpResponse};
use super::state::{CallState, CredentialHandle, MAX_UNSENT_REQUESTS, OutgoingRequest, max_unsent_bytes};
use crate::broker::{BrokerError, OutboundRequest};
use nexum_manifest::AuthKind;
use reqwest::Method;
use wasmtime::component::Resource;

impl types::Host for CallState {}

impl HostRequest for CallState {
    async fn new(&mut self, method: types::Method, url: String) -> wasmtime::Result<Resource<OutgoingRequest>> {
        // A constructor cannot return an `http-error`; hoarding requests ends the call.
        if self.unsent_requests >= MAX_UNSENT_REQUESTS {
            return Err(wasmtime::Error::msg(format!(
                "a call may hold at most {MAX_UNSENT_REQUESTS} unsent requests"
            )));
        }
        let max_url_bytes = self.broker.config().max_url_bytes;
        if url.len() > max_url_bytes {
            return Err(wasmtime::Error::msg(format!(
                "URLs may be at most {max_url_bytes} bytes"
            )));
        }
        let max_unsent = max_unsent_bytes(self.broker.config().max_request_bytes);
        if self.unsent_bytes.saturating_add(url.len()) > max_unsent {
            return Err(wasmtime::Error::msg(format!(
                "unsent requests of one call may buffer at most {max_unsent} bytes"
            )));
        }
        self.unsent_requests += 1;
        self.unsent_bytes += url.len();
        let request = OutgoingRequest {
            method: to_method(method),
            url,
            headers: Vec::new(),
            header_bytes: 0,
            body: None,
        };
        Ok(self.table.push(request)?)
    }

    async fn header(
        &mut self,
        request: Resource<OutgoingRequest>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), HttpError>> {
        let caps = self.broker.config();
        let (max_headers, max_header_bytes) = (caps.max_request_headers, caps.max_request_header_bytes);
        let max_unsent = max_unsent_bytes(caps.max_request_bytes);
        let added = name.len() + value.len();
        if self.unsent_bytes.saturating_add(added) > max_unsent {
            return Ok(Err(unsent_bytes_exceeded(max_unsent)));
        }
        let request = self.table.get_mut(&request)?;
        let bytes = request.header_bytes + added;
        if request.headers.len() >= max_headers || bytes > max_header_bytes {
            return Ok(Err(HttpError::InvalidRequest(format!(
                "a request may carry at most {max_headers} headers and {max_header_bytes} bytes of them"
            ))));
        }
        request.header_bytes = bytes;
        self.unsent_bytes += added;
        request.headers.push((name, value));
        Ok(Ok(()))
    }

    async fn body(
        &mut self,
        request: Resource<OutgoingRequest>,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), HttpError>> {
        let limit = self.broker.config().max_request_bytes;
        if bytes.len() > limit {
            return Ok(Err(HttpError::RequestTooLarge(limit as u64)));
        }
        let max_unsent = max_unsent_bytes(limit);
        let request = self.table.get_mut(&request)?;
        let replaced = request.body.as_ref().map_or(0, Vec::len);
        let total = self.unsent_bytes.saturating_sub(replaced).saturating_add(bytes.len());
        if total > max_unsent {
            return Ok(Err(unsent_bytes_exceeded(max_unsent)));
        }
        request.body = Some(bytes);
        self.unsent_bytes = total;
        Ok(Ok(()))
    }

    async fn drop(&mut self, request: Resource<OutgoingRequest>) -> wasmtime::Result<()> {
        let request = self.table.delete(request)?;
        self.release_unsent(&request);
        Ok(())
    }
}

impl Host for CallState {
    async fn send(
        &mut self,
        request: Resource<OutgoingRequest>,
        auth: Option<Resource<CredentialHandle>>,
    ) -> wasmtime::Result<Result<HttpResponse, HttpError>> {
        let request = self.table.delete(request)?;
        self.release_unsent(&request);
        if let Some(refused) = self.request_cap_reached() {
            return Ok(Err(HttpError::InvalidRequest(refused)));
        }
        let max_url_bytes = self.broker.config().max_url_bytes;
        if request.url.len() > max_url_bytes {
            return Ok(Err(HttpError::InvalidRequest(format!(
                "URLs may be at most {max_url_bytes} bytes"
            ))));
        }
        let credential_index = self.credential_index(auth.as_ref())?;
        let outbound = OutboundRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        let broker = self.broker.clone();
        let mut connection = self.connection.clone();
        let mut result = broker
            .send(
                &connection.egress,
                outbound.clone(),
                credential_index.and_then(|i| connection.credentials.get(i)),
                self.deadline,
                &mut self.trace.http,
            )
            .await;
        // An OAuth2 token the upstream refuses is renewed once per call and the request sent
        // once more with the new token; a second 401 goes back to the connector as it is.
        let rejected_oauth = matches!(&result, Ok(r) if r.status == 401)
            && credential_index
                .and_then(|i| connection.credentials.get(i))
                .is_some_and(|c| matches!(c.scheme.kind, AuthKind::OAuth2(_)));
        if rejected_oauth
            && !self.refreshed_after_401
            && let Some(refresher) = connection.refresher.clone()
        {
            self.refreshed_after_401 = true;
            if let Some(fresh) = refresher.refresh_after_unauthorized(&connection).await {
                // The retry is scrubbed of the old token's values as well as the new one's.
                let mut rules = fresh.egress.clone();
                rules.redactor = crate::broker::Redactor::merged(&connection.egress.redactor, &fresh.egress.redactor);
                self.connection = fresh.clone();
                connection = fresh;
                result = broker
                    .send(
                        &rules,
                        outbound,
                        credential_index.and_then(|i| connection.credentials.get(i)),
                        self.deadline,
                        &mut self.trace.http,
                    )
                    .await;
            }
        }
        Ok(result
            .map(|r| HttpResponse {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
            .map_err(to_wit_error))
    }
}

impl CallState {
    /// A request left the guest's hands (sent or dropped): stop counting what it buffered.
    fn release_unsent(&mut self, request: &OutgoingRequest) {
        self.unsent_requests = self.unsent_requests.saturating_sub(1);
        self.unsent_bytes = self.unsent_bytes.saturating_sub(request.buffered_bytes());
    }
}

fn unsent_bytes_exceeded(limit: usize) -> HttpError {
    HttpError::InvalidRequest(format!(
        "unsent requests of one call may buffer at most {limit} bytes; send or drop some first"
    ))
}

fn to_method(m: types::Method) -> Method {
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
