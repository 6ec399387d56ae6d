//! Deserialization error messages without the input values they quote.
//!
//! serde repeats what it could not accept (`invalid type: string "…", expected a map`,
//! ``unknown variant `…` ``, ``"`…` is not a connection id"``). A secret sent in the wrong
//! place (a signing secret where an object belongs, an API key typed into a scheme field)
//! must not come back in the error, nor reach a log that records it, so every message built
//! from request input passes through [`without_input_values`]. Field names and paths stay:
//! they say where the problem is.

/// `message` with each quoted input value replaced: `string "…"` by `a string`,
/// ``unknown variant `…` `` by `unknown variant`, and an id's `` `…` is not `` by
/// `the value is not`.
pub fn without_input_values(message: &str) -> String {
    let message = replace_quoted(message, "string \"", '"', "a string");
    let message = replace_quoted(&message, "unknown variant `", '`', "unknown variant");
    replace_leading_id(&message)
}

/// Replace every `opening…closing` (backslash escapes honoured) with `replacement`.
fn replace_quoted(message: &str, opening: &str, closing: char, replacement: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(opening) {
        out.push_str(&rest[..at]);
        out.push_str(replacement);
        let quoted = &rest[at + opening.len()..];
        let mut end = quoted.len();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '\\' {
                chars.next();
            } else if c == closing {
                end = i + c.len_utf8();
                break;
            }
        }
        rest = &quoted[end..];
    }
    out.push_str(rest);
    out
}

/// ``"`value` is not a connection id"`` (the typed ids' error) without the value.
fn replace_leading_id(message: &str) -> String {
    const MARK: &str = "` is not a ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        match rest[..at].rfind('`') {
            Some(open) => {
                out.push_str(&rest[..open]);
                out.push_str("the value is not a ");
            }
            None => {
                out.push_str(&rest[..at + MARK.len()]);
            }
        }
        rest = &rest[at + MARK.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::without_input_values;

    #[test]
    fn json_errors_do_not_repeat_the_values_sent() {
        let message = r#"Failed to deserialize the JSON body into the target type: trigger_secrets: invalid type: string "whsec_c2VjcmV0\"x", expected a sequence at line 1 column 40"#;
        let shown = without_input_values(message);
        assert!(!shown.contains("whsec_"), "{shown}");
        assert!(
            shown.ends_with("trigger_secrets: invalid type: a string, expected a sequence at line 1 column 40"),
            "{shown}"
        );
        let variant = without_input_values("scheme: unknown variant `sk_live_123`, expected one of `github`, `stripe`");
        assert_eq!(variant, "scheme: unknown variant, expected one of `github`, `stripe`");
        let id = without_input_values("connection: `sk_live_123` is not a connection id (expected `conn_…`)");
        assert_eq!(id, "connection: the value is not a connection id (expected `conn_…`)");
        assert_eq!(without_input_values("unknown field `x`"), "unknown field `x`");
    }
}
