use super::*;
use url::Url;

const MINIMAL: &str = r#"
id = "demo"
name = "Demo"
version = "1.2.3"
allowed_hosts = ["https://api.demo.test", "https://*.cdn.demo.test:8443", "{{ base }}"]

[variables.base]
description = "API origin"
default = "https://eu.demo.test"

[[auth]]
id = "key"
type = "api_key"
in = "header"
name = "X-Api-Key"
hosts = ["https://api.demo.test"]

[actions.ping]
description = "Ping"
input = { type = "object", required = ["n"], properties.n = { type = "integer" } }
"#;

fn err_field(text: &str) -> String {
    match Manifest::parse(text) {
        Err(ManifestError::Invalid { field, .. }) => field,
        Err(other) => panic!("expected a field error, got {other}"),
        Ok(_) => panic!("manifest unexpectedly accepted"),
    }
}

#[test]
fn parses_a_complete_manifest() {
    let m = Manifest::parse(MINIMAL).expect("valid manifest");
    assert_eq!(m.id, "demo");
    assert_eq!(m.version, semver::Version::new(1, 2, 3));
    assert_eq!(m.limits, Limits::default());
    let key = m.auth_scheme("key").expect("scheme");
    assert_eq!(key.injected_header().as_deref(), Some("x-api-key"));
    assert_eq!(m.actions["ping"].output, serde_json::Value::Bool(true));
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let text = MINIMAL.replace("name = \"Demo\"", "name = \"Demo\"\nhomepage = \"x\"");
    let err = Manifest::parse(&text).expect_err("unknown key");
    assert!(err.to_string().contains("homepage"), "{err}");
}

#[test]
fn wrong_type_names_the_field() {
    let text = MINIMAL.replace("[actions.ping]", "[limits]\nmemory_mb = \"lots\"\n\n[actions.ping]");
    let err = Manifest::parse(&text).expect_err("bad type");
    assert!(err.to_string().contains("memory_mb"), "{err}");
}

#[test]
fn semantic_errors_name_the_field() {
    assert_eq!(err_field(&MINIMAL.replace("id = \"demo\"", "id = \"Demo!\"")), "id");
    assert_eq!(err_field(&MINIMAL.replace("1.2.3", "one")), "version");
    assert_eq!(
        err_field(&MINIMAL.replace("https://api.demo.test\", \"https://*", "ftp://x\", \"https://*")),
        "allowed_hosts[0]"
    );
    assert_eq!(
        err_field(&MINIMAL.replace("\"{{ base }}\"", "\"{{ nope }}\"")),
        "allowed_hosts[2]"
    );
    assert_eq!(
        err_field(&MINIMAL.replace("hosts = [\"https://api.demo.test\"]", "hosts = []")),
        "auth[0].hosts"
    );
    assert_eq!(
        err_field(&MINIMAL.replace("in = \"header\"", "in = \"cookie\"")),
        "auth[0].in"
    );
    assert_eq!(
        err_field(&MINIMAL.replace("type = \"api_key\"", "type = \"magic\"")),
        "auth[0].type"
    );
    assert_eq!(
        err_field(&MINIMAL.replace("type = \"object\"", "type = \"objekt\"")),
        "actions.ping.input"
    );
}

#[test]
fn paths_in_host_patterns_are_refused() {
    let text = MINIMAL.replace(
        "\"https://api.demo.test\", \"https://*",
        "\"https://api.demo.test/v1\", \"https://*",
    );
    assert_eq!(err_field(&text), "allowed_hosts[0]");
}

#[test]
fn oauth2_scheme_defaults_and_type_specific_fields() {
    let text = MINIMAL.replace(
        "type = \"api_key\"\nin = \"header\"\nname = \"X-Api-Key\"",
        "type = \"oauth2\"\nauthorization_url = \"https://demo.test/authorize\"\ntoken_url = \"https://demo.test/token\"\nscopes = [\"read\"]",
    );
    let m = Manifest::parse(&text).expect("oauth2 manifest");
    let AuthKind::OAuth2(o) = &m.auth[0].kind else {
        panic!("not oauth2")
    };
    assert!(o.pkce);
    assert_eq!(o.token_auth_method, TokenAuthMethod::Basic);
    assert_eq!(o.refresh_margin_secs, 300);
    let bad = text.replace("scopes = [\"read\"]", "scopes = [\"read\"]\nprefix = \"x\"");
    assert_eq!(err_field(&bad), "auth[0].prefix");
}

#[test]
fn variables_resolve_into_host_patterns() {
    let m = Manifest::parse(MINIMAL).expect("valid");
    let vars = m.resolve_variables(&Default::default()).expect("defaults");
    let hosts = m.resolve_allowed_hosts(&vars).expect("hosts");
    assert_eq!(hosts[2].to_string(), "https://eu.demo.test");

    let mut custom = std::collections::BTreeMap::new();
    custom.insert("base".to_string(), "http://127.0.0.1:9000/".to_string());
    let vars = m.resolve_variables(&custom).expect("custom");
    let hosts = m.resolve_allowed_hosts(&vars).expect("hosts");
    assert!(hosts[2].matches(&Url::parse("http://127.0.0.1:9000/api/x").expect("url")));

    custom.insert("unknown".into(), "x".into());
    assert!(m.resolve_variables(&custom).is_err());
}

#[test]
fn host_patterns_match_like_spin() {
    let p = |s: &str| HostPattern::parse(s).expect("pattern");
    let u = |s: &str| Url::parse(s).expect("url");
    assert!(p("https://api.x.test").matches(&u("https://api.x.test/a?b")));
    assert!(p("https://api.x.test").matches(&u("https://API.x.test:443/")));
    assert!(!p("https://api.x.test").matches(&u("http://api.x.test/")));
    assert!(!p("https://api.x.test").matches(&u("https://api.x.test:8443/")));
    assert!(!p("https://api.x.test").matches(&u("https://api.x.test.evil.test/")));
    assert!(p("https://*.x.test").matches(&u("https://a.b.x.test/")));
    assert!(!p("https://*.x.test").matches(&u("https://x.test/")));
    assert!(!p("https://*.x.test").matches(&u("https://evilx.test/")));
    assert!(p("http://127.0.0.1:*").matches(&u("http://127.0.0.1:1234/")));
    assert!(p("*://*:*").matches(&u("http://anything.test:1/")));
    assert!(p("http://[::1]:8080").matches(&u("http://[::1]:8080/")));
    assert!(HostPattern::parse("https://user@x.test").is_err());
    assert!(HostPattern::parse("https://").is_err());
    assert!(HostPattern::parse("https://x.test:99999").is_err());
}

#[test]
fn ip_literals_match_by_address() {
    let u = |s: &str| Url::parse(s).expect("url");
    let mapped = HostPattern::parse("http://[::ffff:169.254.169.254]").expect("pattern");
    assert!(mapped.matches(&u("http://[::ffff:a9fe:a9fe]/")));
    assert!(
        HostPattern::parse("http://127.0.0.1:*")
            .expect("p")
            .matches(&u("http://127.1:80/"))
    );
}

#[test]
fn secrets_cannot_be_bound_to_every_host() {
    let text = MINIMAL.replace("hosts = [\"https://api.demo.test\"]", "hosts = [\"*://*:*\"]");
    assert_eq!(err_field(&text), "auth[0].hosts[0]");
}

#[test]
fn variable_values_cannot_smuggle_wildcards() {
    let m = Manifest::parse(MINIMAL).expect("valid");
    let mut values = std::collections::BTreeMap::new();
    values.insert("base".to_string(), "*://*:*".to_string());
    let vars = m.resolve_variables(&values).expect("variables");
    match m.resolve_allowed_hosts(&vars) {
        Err(ManifestError::Invalid { field, .. }) => assert_eq!(field, "variables.base"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn oauth_endpoints_may_be_templates_over_declared_variables() {
    let base = "id = \"demo\"\nname = \"Demo\"\nversion = \"0.1.0\"\ndescription = \"d\"\ncategory = \"c\"\nallowed_hosts = [\"{{ api }}\"]\n[variables.api]\ndefault = \"https://demo.test\"\n[[auth]]\nid = \"o\"\ntype = \"oauth2\"\nhosts = [\"{{ api }}\"]\n";
    let ok = format!(
        "{base}authorization_url = \"{{{{ api }}}}/authorize\"\ntoken_url = \"{{{{ api }}}}/token\"\n[actions.ping]\ndescription = \"p\"\n"
    );
    let m = Manifest::parse(&ok).expect("templated endpoints");
    let AuthKind::OAuth2(o) = &m.auth[0].kind else {
        panic!("not oauth2")
    };
    let vars = std::collections::BTreeMap::from([("api".to_string(), "http://127.0.0.1:9".to_string())]);
    assert_eq!(
        o.token_url_for(&vars).expect("url").as_str(),
        "http://127.0.0.1:9/token"
    );
    let undeclared = format!("{base}token_url = \"{{{{ nope }}}}/token\"\n[actions.ping]\ndescription = \"p\"\n");
    let e = Manifest::parse(&undeclared).expect_err("undeclared variable");
    assert!(e.to_string().contains("auth[0].token_url"), "{e}");
    let not_http = format!("{base}token_url = \"ftp://demo.test/token\"\n[actions.ping]\ndescription = \"p\"\n");
    assert!(Manifest::parse(&not_http).is_err());
}

#[test]
fn a_basic_scheme_cannot_key_an_hmac() {
    let text = MINIMAL.replace(
        "type = \"api_key\"\nin = \"header\"\nname = \"X-Api-Key\"",
        "type = \"basic\"\nhmac = true",
    );
    assert_eq!(err_field(&text), "auth[0].hmac");
    // An API key may, when it says so.
    let text = MINIMAL.replace("name = \"X-Api-Key\"", "name = \"X-Api-Key\"\nhmac = true");
    assert!(Manifest::parse(&text).expect("valid").auth[0].hmac);
}

#[test]
fn webhooks_scheme_is_one_the_host_verifies() {
    let text = format!("{MINIMAL}\n[webhooks]\nscheme = \"stripe\"\n");
    let manifest = Manifest::parse(&text).expect("valid");
    assert_eq!(manifest.webhooks.map(|w| w.scheme).as_deref(), Some("stripe"));
    let text = format!("{MINIMAL}\n[webhooks]\nscheme = \"md5\"\n");
    assert_eq!(err_field(&text), "webhooks.scheme");
    assert!(Manifest::parse(MINIMAL).expect("valid").webhooks.is_none());
}

#[test]
fn a_path_key_names_the_path_it_completes() {
    let path = |name: &str| {
        MINIMAL.replace(
            "in = \"header\"\nname = \"X-Api-Key\"",
            &format!("in = \"path\"\nname = \"{name}\""),
        )
    };
    let m = Manifest::parse(&path("/services/")).expect("valid");
    assert!(m.auth[0].injected_header().is_none());
    for bad in ["services/", "/services", "/a//b/", "/../x/", "/a b/", "/%2e/"] {
        assert_eq!(err_field(&path(bad)), "auth[0].name", "{bad}");
    }
    // A prefix is for headers only.
    let text = path("/services/").replace(
        "hosts = [\"https://api.demo.test\"]",
        "prefix = \"x\"\nhosts = [\"https://api.demo.test\"]",
    );
    assert_eq!(err_field(&text), "auth[0].prefix");

    assert_eq!(path_key("/services/", "T1/B2/xyz").as_deref(), Some("T1/B2/xyz"));
    assert_eq!(
        path_key("/services/", "https://hooks.slack.com/services/T1/B2/xyz").as_deref(),
        Some("T1/B2/xyz")
    );
    for bad in [
        "",
        "../x",
        "a//b",
        "a/./b",
        "a/b/",
        "a?b",
        "a%2fb",
        "https://hooks.slack.com/other/T1",
        "https://hooks.slack.com/services/T1?x=1",
    ] {
        assert_eq!(path_key("/services/", bad), None, "{bad}");
    }
}

#[test]
fn a_signing_secret_goes_nowhere_and_always_keys_hmacs() {
    let secret = MINIMAL.replace(
        "type = \"api_key\"\nin = \"header\"\nname = \"X-Api-Key\"\nhosts = [\"https://api.demo.test\"]",
        "type = \"secret\"",
    );
    let m = Manifest::parse(&secret).expect("valid");
    assert!(m.auth[0].hmac && m.auth[0].hosts.is_empty() && m.auth[0].injected_header().is_none());
    assert_eq!(m.auth[0].secret_fields(), ["secret"]);
    let with_hosts = MINIMAL.replace(
        "type = \"api_key\"\nin = \"header\"\nname = \"X-Api-Key\"",
        "type = \"secret\"",
    );
    assert_eq!(err_field(&with_hosts), "auth[0].hosts");
}

#[test]
fn a_wildcard_next_to_a_variable_cannot_widen_a_secret_or_a_mail_server() {
    // `{{ s }}://*:*` slips past checks on literal patterns; it is refused outright.
    let secret = MINIMAL
        .replace("hosts = [\"https://api.demo.test\"]", "hosts = [\"{{ s }}://*:*\"]")
        .replace(
            "[variables.base]",
            "[variables.s]\ndescription = \"s\"\ndefault = \"https\"\n\n[variables.base]",
        );
    assert_eq!(err_field(&secret), "auth[0].hosts[0]");
    let mail = MINIMAL
        .replace(
            "allowed_hosts = [",
            "mail_servers = [\"{{ s }}://*:465\"]\nallowed_hosts = [",
        )
        .replace(
            "[variables.base]",
            "[variables.s]\ndescription = \"s\"\ndefault = \"smtps\"\n\n[variables.base]",
        );
    assert_eq!(err_field(&mail), "mail_servers[0]");
    for literal in [
        "smtps://*.demo.test:465",
        "smtp://mail.demo.test:*",
        "https://mail.demo.test:465",
    ] {
        let text = MINIMAL.replace(
            "allowed_hosts = [",
            &format!("mail_servers = [\"{literal}\"]\nallowed_hosts = ["),
        );
        assert_eq!(err_field(&text), "mail_servers[0]", "{literal}");
    }
    // A mail server is never an HTTP host, nor an HTTP host a mail server.
    let text = MINIMAL.replace("\"https://api.demo.test\", ", "\"smtp://mail.demo.test:587\", ");
    assert_eq!(err_field(&text), "allowed_hosts[0]");
    let ok = MINIMAL.replace(
        "allowed_hosts = [",
        "mail_servers = [\"smtp://mail.demo.test:587\"]\nallowed_hosts = [",
    );
    let m = Manifest::parse(&ok).expect("valid");
    let servers = m.resolve_mail_servers(&Default::default()).expect("servers");
    assert!(servers[0].matches(&Url::parse("smtp://mail.demo.test:587").expect("url")));
    assert!(!servers[0].matches(&Url::parse("smtps://mail.demo.test:587").expect("url")));
    assert!(!servers[0].matches(&Url::parse("http://mail.demo.test:587").expect("url")));
    let any = HostPattern::parse("*://*:*").expect("any");
    assert!(!any.matches(&Url::parse("smtp://mail.demo.test:587").expect("url")));
    // An address is an address, although `smtp:` URLs keep their host as text.
    let ip = HostPattern::parse("smtp://127.0.0.1:2525").expect("ip");
    assert!(ip.matches(&Url::parse("smtp://127.0.0.1:2525").expect("url")));
}

#[test]
fn a_full_url_variable_stands_for_its_origin_in_host_templates() {
    let m = Manifest::parse(MINIMAL).expect("valid");
    let vars = std::collections::BTreeMap::from([(
        "base".to_string(),
        "https://hooks.demo.test:8443/in/path?q=1".to_string(),
    )]);
    let hosts = m.resolve_allowed_hosts(&vars).expect("hosts");
    assert!(hosts[2].matches(&Url::parse("https://hooks.demo.test:8443/other").expect("url")));
    for bad in [
        "https://user@evil.test/x",
        "https://evil.test\\@demo.test/",
        "https://*.demo.test/x",
    ] {
        let vars = std::collections::BTreeMap::from([("base".to_string(), bad.to_string())]);
        assert!(m.resolve_allowed_hosts(&vars).is_err(), "{bad}");
    }
}

#[test]
fn token_response_variables_name_declared_non_secret_fields_outside_the_endpoints() {
    let manifest = |mapping: &str| {
        format!(
            "id = \"demo\"\nname = \"Demo\"\nversion = \"0.1.0\"\ndescription = \"d\"\nallowed_hosts = [\"{{{{ instance_url }}}}\"]\n\
             [variables.instance_url]\ndefault = \"https://login.demo.test\"\n[variables.login]\ndefault = \"https://login.demo.test\"\n\
             [[auth]]\nid = \"o\"\ntype = \"oauth2\"\nhosts = [\"{{{{ instance_url }}}}\"]\n\
             authorization_url = \"{{{{ login }}}}/authorize\"\ntoken_url = \"{{{{ login }}}}/token\"\n\
             token_response_variables = {mapping}\n[actions.ping]\ndescription = \"p\"\n"
        )
    };
    let m = Manifest::parse(&manifest("{ instance_url = \"instance_url\" }")).expect("valid");
    let AuthKind::OAuth2(o) = &m.auth[0].kind else {
        panic!("not oauth2")
    };
    assert_eq!(o.token_response_variables["instance_url"], "instance_url");
    for (mapping, why) in [
        ("{ nope = \"instance_url\" }", "undeclared variable"),
        ("{ instance_url = \"access_token\" }", "a token"),
        ("{ instance_url = \"id_token\" }", "a token"),
        ("{ instance_url = \"a.b\" }", "not a plain field"),
        ("{ login = \"instance_url\" }", "an endpoint's own variable"),
    ] {
        assert_eq!(
            err_field(&manifest(mapping)).split('.').next(),
            Some("auth[0]"),
            "{why}"
        );
    }
    // Only for oauth2.
    let text = MINIMAL.replace(
        "hosts = [\"https://api.demo.test\"]",
        "hosts = [\"https://api.demo.test\"]\ntoken_response_variables = { base = \"instance_url\" }",
    );
    assert!(Manifest::parse(&text).is_err());
}
