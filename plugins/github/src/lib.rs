//! GitHub connector: open issues, comment on issues and pull requests, and list the signed-in
//! account's repositories over the GitHub REST API (version `2022-11-28`), with an OAuth app's
//! user token (auth scheme `oauth`) or a personal access token (auth scheme `token`).
//!
//! Every request carries `Accept: application/vnd.github+json`, `X-GitHub-Api-Version` and a
//! `User-Agent` (GitHub refuses requests without one). Owner and repository names are checked
//! against GitHub's character set before they become path segments, so no input can reach
//! another path. GitHub has no idempotency header: a retried `create_issue` or
//! `comment_on_issue` may create a second issue or comment.

use nexum_connector_sdk::prelude::*;

/// The API root when the connection sets no `api_base`.
const DEFAULT_API_BASE: &str = "https://api.github.com";
/// The auth schemes, in order of preference.
const SCHEMES: &[&str] = &["oauth", "token"];
/// The REST API version every request pins.
const API_VERSION: &str = "2022-11-28";
/// GitHub's media type for JSON answers.
const MEDIA_TYPE: &str = "application/vnd.github+json";
/// The `User-Agent` GitHub requires.
const USER_AGENT: &str = concat!("nexum-connector-github/", env!("CARGO_PKG_VERSION"));
/// The longest owner login GitHub allows.
const MAX_OWNER: usize = 39;
/// The longest repository name GitHub allows.
const MAX_REPO: usize = 100;
/// Reset times at or past this (year 5138) are not dates GitHub sends; [`utc`] never sees one.
const MAX_EPOCH: i64 = 100_000_000_000;

/// The GitHub connector.
struct GitHub;
connector!(GitHub);

impl Connector for GitHub {
    fn actions() -> Actions {
        Actions::new()
            .action("create_issue", create_issue)
            .action("comment_on_issue", comment_on_issue)
            .action("list_repositories", list_repositories)
    }

    /// The account behind the token (`GET /user`), with the scopes a classic or OAuth token
    /// was granted (`X-OAuth-Scopes`; fine-grained tokens have none).
    fn test_connection() -> Result<Value, Error> {
        let response = send(Request::get(url("/user")))?;
        let user: Value = response.json()?;
        let scopes: Option<Vec<&str>> = response
            .header("x-oauth-scopes")
            .map(|list| list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect());
        Ok(json!({
            "login": user["login"],
            "id": user["id"],
            "name": user["name"],
            "url": user["html_url"],
            "scopes": scopes,
        }))
    }
}

/// Input of `create_issue`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateIssue {
    /// Repository owner login.
    owner: String,
    /// Repository name.
    repo: String,
    /// Issue title.
    title: String,
    /// Markdown body.
    body: Option<String>,
    /// Label names.
    #[serde(default)]
    labels: Vec<String>,
    /// Logins to assign.
    #[serde(default)]
    assignees: Vec<String>,
}

/// `POST /repos/{owner}/{repo}/issues`.
fn create_issue(input: CreateIssue) -> Result<Value, Error> {
    let repo = repo_path(&input.owner, &input.repo)?;
    if input.title.trim().is_empty() {
        return Err(Error::invalid_input("`title` must not be blank"));
    }
    if let Some(login) = input.assignees.iter().find(|a| !valid_owner(a)) {
        return Err(Error::invalid_input(format!("`{login}` is not a GitHub login")));
    }
    let mut body = json!({ "title": input.title });
    if let Some(text) = input.body {
        body["body"] = json!(text);
    }
    if !input.labels.is_empty() {
        body["labels"] = json!(input.labels);
    }
    if !input.assignees.is_empty() {
        body["assignees"] = json!(input.assignees);
    }
    let issue: Value = send(Request::post(url(&format!("{repo}/issues"))).json(&body)?)?.json()?;
    Ok(json!({
        "id": issue["id"],
        "number": issue["number"],
        "url": issue["html_url"],
        "api_url": issue["url"],
        "state": issue["state"],
    }))
}

/// Input of `comment_on_issue`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentOnIssue {
    /// Repository owner login.
    owner: String,
    /// Repository name.
    repo: String,
    /// The issue's (or pull request's) number.
    issue_number: u64,
    /// Markdown body.
    body: String,
}

/// `POST /repos/{owner}/{repo}/issues/{issue_number}/comments`.
fn comment_on_issue(input: CommentOnIssue) -> Result<Value, Error> {
    let repo = repo_path(&input.owner, &input.repo)?;
    if input.issue_number == 0 {
        return Err(Error::invalid_input("`issue_number` starts at 1"));
    }
    if input.body.trim().is_empty() {
        return Err(Error::invalid_input("`body` must not be blank"));
    }
    let path = format!("{repo}/issues/{}/comments", input.issue_number);
    let comment: Value = send(Request::post(url(&path)).json(&json!({ "body": input.body }))?)?.json()?;
    Ok(json!({ "id": comment["id"], "url": comment["html_url"], "created_at": comment["created_at"] }))
}

/// Input of `list_repositories`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListRepositories {
    /// `all`, `public` or `private`.
    visibility: Option<String>,
    /// Any of `owner`, `collaborator`, `organization_member`.
    #[serde(default)]
    affiliation: Vec<String>,
    /// `created`, `updated`, `pushed` or `full_name`.
    sort: Option<String>,
    /// `asc` or `desc`.
    direction: Option<String>,
    /// Page size, 1–100.
    per_page: Option<u32>,
    /// Page number, from 1.
    page: Option<u32>,
}

/// `GET /user/repos`; the next page's number comes from the `Link` header.
fn list_repositories(input: ListRepositories) -> Result<Value, Error> {
    check_choice("visibility", input.visibility.as_deref(), &["all", "public", "private"])?;
    check_choice(
        "sort",
        input.sort.as_deref(),
        &["created", "updated", "pushed", "full_name"],
    )?;
    check_choice("direction", input.direction.as_deref(), &["asc", "desc"])?;
    for affiliation in &input.affiliation {
        check_choice(
            "affiliation",
            Some(affiliation.as_str()),
            &["owner", "collaborator", "organization_member"],
        )?;
    }
    if input.per_page.is_some_and(|n| !(1..=100).contains(&n)) {
        return Err(Error::invalid_input("`per_page` must be between 1 and 100"));
    }
    if input.page == Some(0) {
        return Err(Error::invalid_input("`page` starts at 1"));
    }
    let affiliation = (!input.affiliation.is_empty()).then(|| input.affiliation.join(","));
    let request = Request::get(url("/user/repos"))
        .query_opt("visibility", input.visibility.as_deref())
        .query_opt("affiliation", affiliation.as_deref())
        .query_opt("sort", input.sort.as_deref())
        .query_opt("direction", input.direction.as_deref())
        .query_opt("per_page", input.per_page)
        .query_opt("page", input.page);
    let response = send(request)?;
    let page: Value = response.json()?;
    let repositories: Vec<Value> = page
        .as_array()
        .ok_or_else(|| Error::new("invalid_response", "GitHub did not answer a list of repositories"))?
        .iter()
        .map(|r| {
            json!({
                "id": r["id"],
                "name": r["name"],
                "full_name": r["full_name"],
                "owner": r["owner"]["login"],
                "private": r["private"],
                "visibility": r["visibility"],
                "description": r["description"],
                "url": r["html_url"],
                "default_branch": r["default_branch"],
                "fork": r["fork"],
                "archived": r["archived"],
                "pushed_at": r["pushed_at"],
                "updated_at": r["updated_at"],
            })
        })
        .collect();
    Ok(json!({ "repositories": repositories, "next_page": next_page(response.header("link")) }))
}

/// Refuse `value` unless it is one of `allowed`.
fn check_choice(field: &str, value: Option<&str>, allowed: &[&str]) -> Result<(), Error> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(Error::invalid_input(format!(
            "`{field}` must be one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// The page number of the `rel="next"` link in a `Link` header, e.g.
/// `<https://api.github.com/user/repos?page=2>; rel="next", <…?page=5>; rel="last"`.
fn next_page(link: Option<&str>) -> Option<u64> {
    link?.split(',').find_map(|entry| {
        let (target, params) = entry.split_once(';')?;
        let next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "").eq_ignore_ascii_case("rel=\"next\""));
        if !next {
            return None;
        }
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let query = target.split_once('?')?.1.split('#').next()?;
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("page=")?.parse().ok())
    })
}

/// Whether `login` can be a GitHub account name: letters, digits and `-` (and `_`, which
/// Enterprise Managed Users have), not starting with `-` or `_`.
fn valid_owner(login: &str) -> bool {
    login.len() <= MAX_OWNER
        && login.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `/repos/{owner}/{repo}`, after checking both against GitHub's character sets: nothing that
/// could end a path segment (`/`, `?`, `#`, `%`) or walk out of one (`.`, `..`).
fn repo_path(owner: &str, repo: &str) -> Result<String, Error> {
    if !valid_owner(owner) {
        return Err(Error::invalid_input(format!(
            "`owner` must be a GitHub login (letters, digits, `-`, `_`; at most {MAX_OWNER}), got `{owner}`"
        )));
    }
    let valid_repo = !repo.is_empty()
        && repo.len() <= MAX_REPO
        && repo != "."
        && repo != ".."
        && repo
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid_repo {
        return Err(Error::invalid_input(format!(
            "`repo` must be a repository name (letters, digits, `-`, `_`, `.`; not `.` or `..`; at most {MAX_REPO}), got `{repo}`"
        )));
    }
    Ok(format!("/repos/{owner}/{repo}"))
}

/// `<api_base><path>`.
fn url(path: &str) -> String {
    let base = var("api_base").unwrap_or_else(|| DEFAULT_API_BASE.into());
    format!("{}{path}", base.trim_end_matches('/'))
}

/// Send with GitHub's headers and the connection's token; a non-2xx answer becomes
/// [`api_error`].
fn send(request: Request<'_>) -> Result<Response, Error> {
    let token = any_credential(SCHEMES)?;
    let response = request
        .header("Accept", MEDIA_TYPE)
        .header("X-GitHub-Api-Version", API_VERSION)
        .header("User-Agent", USER_AGENT)
        .auth(&token)
        .send()?;
    if response.is_success() {
        Ok(response)
    } else {
        Err(api_error(&response))
    }
}

/// GitHub's `{message, errors[], documentation_url}` under a stable code: a 403 with
/// `x-ratelimit-remaining: 0` or a `retry-after` (the primary and secondary rate limits) and
/// a 429 are `rate_limited` (retryable, with when to retry in the message); 401
/// `unauthorized`, 403 `forbidden`, 404 `not_found` (GitHub also answers 404 for a private
/// repository the token cannot see), 410 `gone` (e.g. issues disabled), 422
/// `validation_failed` naming each field GitHub refused, 5xx `upstream_error` (retryable).
fn api_error(response: &Response) -> Error {
    let detail: Value = response.json().unwrap_or(Value::Null);
    let status = response.status;
    let said = detail["message"].as_str().map(str::trim).filter(|m| !m.is_empty());
    let retry_after = response
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok());
    let exhausted = response.header("x-ratelimit-remaining").map(str::trim) == Some("0");
    if status == 429 || (status == 403 && (exhausted || retry_after.is_some())) {
        let mut message = format!("GitHub rate limit: {}", said.unwrap_or("too many requests"));
        if let Some(secs) = retry_after {
            message.push_str(&format!("; retry after {secs} s"));
        } else if let Some(reset) = response
            .header("x-ratelimit-reset")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|r| (0..MAX_EPOCH).contains(r))
        {
            message.push_str(&format!(
                "; the limit resets at {} (x-ratelimit-reset {reset})",
                utc(reset)
            ));
        }
        return Error::new("rate_limited", message).with_retryable(true);
    }
    let mapped = Error::from_status(status, &response.body);
    let (code, retryable) = match status {
        410 => ("gone", false),
        422 => ("validation_failed", false),
        _ => (mapped.code.as_str(), mapped.retryable),
    };
    let mut message = match said {
        Some(text) => format!("GitHub {status}: {text}"),
        None => mapped.message.clone(),
    };
    let problems = field_errors(&detail["errors"]);
    if !problems.is_empty() {
        message.push_str(&format!(" ({problems})"));
    }
    if let Some(docs) = detail["documentation_url"].as_str() {
        message.push_str(&format!("; see {docs}"));
    }
    Error::new(code, message).with_retryable(retryable)
}

/// GitHub's `errors` list as text: `Issue.title missing_field; Issue.assignees invalid: …`.
fn field_errors(errors: &Value) -> String {
    let Some(list) = errors.as_array() else {
        return String::new();
    };
    list.iter()
        .take(20)
        .map(|e| {
            if let Some(text) = e.as_str() {
                return text.to_string();
            }
            let mut item = match (e["resource"].as_str(), e["field"].as_str()) {
                (Some(resource), Some(field)) => format!("{resource}.{field}"),
                (None, Some(field)) => field.to_string(),
                (Some(resource), None) => resource.to_string(),
                (None, None) => String::new(),
            };
            if let Some(code) = e["code"].as_str() {
                item = format!("{item} {code}").trim().to_string();
            }
            if let Some(text) = e["message"].as_str() {
                item = format!("{item}: {text}").trim_start_matches(": ").to_string();
            }
            item
        })
        .filter(|item| !item.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `epoch` (seconds since 1970, UTC) as `YYYY-MM-DDTHH:MM:SSZ` (Howard Hinnant's
/// civil-from-days; the sandbox has no calendar library).
fn utc(epoch: i64) -> String {
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}
