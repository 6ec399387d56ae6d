//! Talking to a provider's token endpoint (through the `oauth2` crate): code exchange,
//! refresh and client credentials. Requests go through the broker's address policy; answers
//! are size-capped; every error is scrubbed of the secrets that were sent, since providers
//! echo parameters back in `error_description`.

use crate::broker::{Outbound, Redactor};
use base64::Engine as _;
use nexum_manifest::{OAuth2Endpoints, TokenAuthMethod};
use oauth2::basic::{
    BasicClient, BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Largest token endpoint answer read.
const MAX_TOKEN_RESPONSE_BYTES: usize = 256 * 1024;
/// Longest provider error description kept.
const MAX_DESCRIPTION: usize = 300;

/// An OAuth client (app) registered with the provider.
pub struct ClientApp {
    /// Public client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretString,
}

impl std::fmt::Debug for ClientApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientApp({}, [REDACTED])", self.client_id)
    }
}

/// Tokens as the provider issued them.
pub struct IssuedTokens {
    /// The access token.
    pub access_token: SecretString,
    /// A (possibly rotated) refresh token, when the provider sent one.
    pub refresh_token: Option<SecretString>,
    /// Lifetime of the access token, when the provider said.
    pub expires_in: Option<Duration>,
    /// The connection variables the manifest's `token_response_variables` take from the
    /// answer (string fields only; never a token, which the manifest refuses).
    pub variables: BTreeMap<String, String>,
}

/// The token response's other top-level fields, kept only to read the ones a manifest
/// maps to connection variables. Not printed: it may hold an `id_token`.
#[derive(Clone, serde::Deserialize, serde::Serialize)]
pub struct OtherFields {
    #[serde(flatten)]
    fields: BTreeMap<String, serde_json::Value>,
}

impl std::fmt::Debug for OtherFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OtherFields({} fields)", self.fields.len())
    }
}

impl oauth2::ExtraTokenFields for OtherFields {}

/// A token answer with its other fields.
type ProviderTokenResponse = StandardTokenResponse<OtherFields, BasicTokenType>;

/// Why the token endpoint did not issue tokens. Messages never contain a secret.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    /// `invalid_grant`: the code or refresh token is expired, revoked or already used.
    #[error("the provider refused the grant (invalid_grant){}", describe(.0))]
    InvalidGrant(Option<String>),
    /// Another OAuth error (`invalid_client`, `unauthorized_client`, …).
    #[error("the provider refused the request ({code}){}", describe(.description))]
    Rejected {
        /// The OAuth error code.
        code: String,
        /// The provider's description, scrubbed and shortened.
        description: Option<String>,
    },
    /// The endpoint could not be reached, timed out or answered 5xx/429: worth retrying.
    #[error("the token endpoint is unavailable: {0}")]
    Unavailable(String),
    /// The endpoint answered something that is not an OAuth2 token response.
    #[error("the token endpoint's answer is not an OAuth2 token response: {0}")]
    Malformed(String),
}

impl ProviderError {
    /// Whether trying again later may succeed without the user's help.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProviderError::Unavailable(_))
    }
}

fn describe(d: &Option<String>) -> String {
    d.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
}

/// The HTTP side of token requests: the host's [`Outbound`] client (its resolver enforces
/// the address policy) with a per-request timeout.
pub struct TokenClient {
    outbound: Arc<Outbound>,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

type TokenEndpointClient = oauth2::Client<
    BasicErrorResponse,
    ProviderTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

impl TokenClient {
    /// Token requests through `outbound`, each given at most `timeout`.
    pub fn new(outbound: Arc<Outbound>, timeout: Duration) -> Self {
        Self { outbound, timeout }
    }

    /// Exchange an authorization code (with its PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        endpoints: &OAuth2Endpoints,
        token_url: &Url,
        redirect_uri: &str,
        app: &ClientApp,
        code: &str,
        verifier: Option<&str>,
    ) -> Result<IssuedTokens, ProviderError> {
        let mut sent = vec![code.to_string()];
        sent.extend(verifier.map(str::to_string));
        let redactor = redactor_for(app, &sent);
        let client = token_client(endpoints, token_url, app)?.set_redirect_uri(
            RedirectUrl::new(redirect_uri.to_string()).map_err(|e| ProviderError::Malformed(e.to_string()))?,
        );
        let mut request = client.exchange_code(AuthorizationCode::new(code.to_string()));
        if let Some(v) = verifier {
            request = request.set_pkce_verifier(PkceCodeVerifier::new(v.to_string()));
        }
        for (k, v) in &endpoints.extra_token_params {
            request = request.add_extra_param(k.clone(), v.clone());
        }
        self.check_address(token_url)?;
        let http = PolicedHttp(self.outbound.client(), self.timeout);
        finish(
            request.request_async(&http).await,
            &redactor,
            endpoints,
            Mapped::Required,
        )
    }

    /// Trade a refresh token for new tokens.
    pub async fn refresh(
        &self,
        endpoints: &OAuth2Endpoints,
        token_url: &Url,
        app: &ClientApp,
        refresh_token: &str,
    ) -> Result<IssuedTokens, ProviderError> {
        let redactor = redactor_for(app, &[refresh_token.to_string()]);
        let client = token_client(endpoints, token_url, app)?;
        let token = RefreshToken::new(refresh_token.to_string());
        let mut request = client.exchange_refresh_token(&token);
        for (k, v) in &endpoints.extra_token_params {
            request = request.add_extra_param(k.clone(), v.clone());
        }
        self.check_address(token_url)?;
        let http = PolicedHttp(self.outbound.client(), self.timeout);
        finish(
            request.request_async(&http).await,
            &redactor,
            endpoints,
            Mapped::IfPresent,
        )
    }

    /// Client-credentials grant: tokens for the app itself.
    pub async fn client_credentials(
        &self,
        endpoints: &OAuth2Endpoints,
        token_url: &Url,
        app: &ClientApp,
    ) -> Result<IssuedTokens, ProviderError> {
        let redactor = redactor_for(app, &[]);
        let client = token_client(endpoints, token_url, app)?;
        let mut request = client.exchange_client_credentials();
        if !endpoints.scopes.is_empty() {
            request = request.add_extra_param("scope", endpoints.joined_scopes(&endpoints.scopes));
        }
        for (k, v) in &endpoints.extra_token_params {
            request = request.add_extra_param(k.clone(), v.clone());
        }
        self.check_address(token_url)?;
        let http = PolicedHttp(self.outbound.client(), self.timeout);
        finish(
            request.request_async(&http).await,
            &redactor,
            endpoints,
            Mapped::IfPresent,
        )
    }

    fn check_address(&self, url: &Url) -> Result<(), ProviderError> {
        self.outbound
            .policy()
            .check_url(url)
            .map_err(|e| ProviderError::Unavailable(e.to_string()))
    }
}

/// The provider URL the user is sent to, with state, PKCE challenge, scopes and extras.
/// Returns the URL and the PKCE verifier to keep (when PKCE is on).
pub fn authorization_url(
    endpoints: &OAuth2Endpoints,
    authorization_url: &Url,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    scopes: &[String],
) -> Result<(Url, Option<SecretString>), ProviderError> {
    let client = BasicClient::new(ClientId::new(client_id.to_string()))
        .set_auth_uri(AuthUrl::from_url(authorization_url.clone()))
        .set_redirect_uri(
            RedirectUrl::new(redirect_uri.to_string()).map_err(|e| ProviderError::Malformed(e.to_string()))?,
        );
    let state = state.to_string();
    let mut request = client.authorize_url(move || CsrfToken::new(state));
    let mut verifier = None;
    if endpoints.pkce {
        let (challenge, v) = PkceCodeChallenge::new_random_sha256();
        request = request.set_pkce_challenge(challenge);
        verifier = Some(SecretString::from(v.secret().clone()));
    }
    if !scopes.is_empty() {
        request = request.add_extra_param("scope", endpoints.joined_scopes(scopes));
    }
    for (k, v) in &endpoints.extra_authorize_params {
        request = request.add_extra_param(k.clone(), v.clone());
    }
    let (url, _) = request.url();
    Ok((url, verifier))
}

fn token_client(
    endpoints: &OAuth2Endpoints,
    token_url: &Url,
    app: &ClientApp,
) -> Result<TokenEndpointClient, ProviderError> {
    Ok(oauth2::Client::<
        BasicErrorResponse,
        ProviderTokenResponse,
        BasicTokenIntrospectionResponse,
        StandardRevocableToken,
        BasicRevocationErrorResponse,
    >::new(ClientId::new(app.client_id.clone()))
    .set_client_secret(ClientSecret::new(app.client_secret.expose_secret().to_string()))
    .set_token_uri(TokenUrl::from_url(token_url.clone()))
    .set_auth_type(match endpoints.token_auth_method {
        TokenAuthMethod::Basic => AuthType::BasicAuth,
        TokenAuthMethod::Body => AuthType::RequestBody,
    }))
}

fn redactor_for(app: &ClientApp, sent: &[String]) -> Redactor {
    let secret = app.client_secret.expose_secret();
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", encode(&app.client_id), encode(secret)));
    let mut needles: Vec<Vec<u8>> = vec![
        secret.as_bytes().to_vec(),
        encode(secret).into_bytes(),
        basic.into_bytes(),
    ];
    for s in sent {
        needles.push(s.as_bytes().to_vec());
        needles.push(
            url::form_urlencoded::byte_serialize(s.as_bytes())
                .collect::<String>()
                .into_bytes(),
        );
    }
    Redactor::new(needles)
}

/// The `oauth2` crate's view of the policed client, with the per-request timeout.
struct PolicedHttp<'a>(&'a reqwest::Client, Duration);

impl<'c> oauth2::AsyncHttpClient<'c> for PolicedHttp<'_> {
    type Error = TransportError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, TransportError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(send(self.0, self.1, request))
    }
}

/// Send one token request with the policed client; 5xx and 429 count as unavailable.
async fn send(
    client: &reqwest::Client,
    timeout: Duration,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, TransportError> {
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .timeout(timeout)
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| TransportError(crate::broker::classify(e).to_string()))?;
    let status = response.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(TransportError(format!("the token endpoint answered {status}")));
    }
    let mut builder = http::Response::builder().status(status);
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| TransportError(crate::broker::classify(e).to_string()))?
    {
        if body.len() + chunk.len() > MAX_TOKEN_RESPONSE_BYTES {
            return Err(TransportError(format!(
                "the token endpoint's answer exceeds {MAX_TOKEN_RESPONSE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    builder.body(body).map_err(|e| TransportError(e.to_string()))
}

type TokenResult = Result<
    ProviderTokenResponse,
    RequestTokenError<TransportError, oauth2::StandardErrorResponse<oauth2::basic::BasicErrorResponseType>>,
>;

/// Whether the token answer must carry every field the manifest maps to a variable: at
/// sign-in it must (the connection needs them); a refresh may leave them out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mapped {
    Required,
    IfPresent,
}

fn finish(
    result: TokenResult,
    redactor: &Redactor,
    endpoints: &OAuth2Endpoints,
    mapped: Mapped,
) -> Result<IssuedTokens, ProviderError> {
    // Scrub first, then shorten: a cut must never leave half a secret behind.
    let scrub = |s: &str| redactor.scrub(s).chars().take(MAX_DESCRIPTION).collect::<String>();
    match result {
        Ok(tokens) => {
            if tokens.access_token().secret().is_empty() {
                return Err(ProviderError::Malformed("empty access_token".into()));
            }
            Ok(IssuedTokens {
                access_token: SecretString::from(tokens.access_token().secret().clone()),
                refresh_token: tokens
                    .refresh_token()
                    .filter(|t| !t.secret().is_empty())
                    .map(|t| SecretString::from(t.secret().clone())),
                expires_in: tokens.expires_in(),
                variables: mapped_variables(endpoints, &tokens.extra_fields().fields, mapped)?,
            })
        }
        Err(RequestTokenError::ServerResponse(e)) => {
            let code = e.error().to_string();
            let description = e.error_description().map(|d| scrub(d));
            Err(classify_oauth_error(&scrub(&code), description))
        }
        Err(RequestTokenError::Request(e)) => Err(ProviderError::Unavailable(scrub(&e.0))),
        Err(RequestTokenError::Parse(_, body)) => {
            // Some providers (Slack) answer 200 with `{"ok": false, "error": "…"}`.
            let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
            match parsed.as_ref().and_then(|v| v["error"].as_str()) {
                Some(code) => {
                    let description = parsed
                        .as_ref()
                        .and_then(|v| v["error_description"].as_str())
                        .map(&scrub);
                    Err(classify_oauth_error(&scrub(code), description))
                }
                None => Err(ProviderError::Malformed(
                    "expected JSON with `access_token` or `error`".into(),
                )),
            }
        }
        Err(RequestTokenError::Other(m)) => Err(ProviderError::Malformed(scrub(&m))),
    }
}

/// The variables `endpoints` maps from the answer's `fields`. A mapped field that is
/// missing or not a string is a malformed answer: the connection would not work without it.
fn mapped_variables(
    endpoints: &OAuth2Endpoints,
    fields: &BTreeMap<String, serde_json::Value>,
    mapped: Mapped,
) -> Result<BTreeMap<String, String>, ProviderError> {
    let mut variables = BTreeMap::new();
    for (variable, field) in &endpoints.token_response_variables {
        match fields.get(field).and_then(serde_json::Value::as_str) {
            Some(value) if !value.is_empty() && value.len() <= 2048 => {
                variables.insert(variable.clone(), value.to_string());
            }
            _ if mapped == Mapped::IfPresent => {}
            _ => {
                return Err(ProviderError::Malformed(format!(
                    "the answer lacks `{field}` (a string), which sets the connection's `{variable}`"
                )));
            }
        }
    }
    Ok(variables)
}

fn classify_oauth_error(code: &str, description: Option<String>) -> ProviderError {
    // GitHub names its invalid grants `bad_verification_code` and `bad_refresh_token`.
    if matches!(
        code,
        "invalid_grant" | "invalid_refresh_token" | "invalid_code" | "bad_verification_code" | "bad_refresh_token"
    ) {
        ProviderError::InvalidGrant(description)
    } else {
        ProviderError::Rejected {
            code: code.chars().take(64).collect(),
            description,
        }
    }
}
