//! Scrubbing secret values out of everything a connector, a log or a trace can see.
//!
//! Each secret string is matched character by character, every character in whichever form
//! JSON and URL encoders write it: raw, `\uXXXX` (either hex case, surrogate pairs for
//! characters outside the BMP), `\/`, `\"` or `\\`, percent-encoded UTF-8 (either hex case)
//! or `+` for a space. Encoders differ in which characters they escape (.NET escapes `+<>&'`
//! and non-ASCII in upper case, Python only non-ASCII, PHP also `/`, Go only `<>&`), so a
//! list of fixed forms always misses some; per-character matching covers any mix.
//!
//! ASCII letters and digits are matched only as they are: no JSON or URL encoder escapes
//! them. That keeps scrubbing fast: the longest run of them in a secret must appear verbatim
//! in every match, so it is searched for with `memmem` and the rest matched outwards from it.
//!
//! Scrubbing has a work budget proportional to the text's length. A text built to make
//! per-character matching slow (many near-copies of a secret full of escapable characters)
//! exhausts it, and the rest of that text is scrubbed of the fixed forms only: the secret as
//! it is, fully percent-encoded and fully `\u`-escaped in either case, and with `\/`.

use memchr::memmem;
use std::borrow::Cow;

/// Placeholder written where a secret value was.
pub const REDACTED: &str = "[REDACTED]";

/// Most positions followed at once while matching one candidate.
const MAX_FRONTIER: usize = 4;

/// Matching steps allowed per byte of scrubbed text (plus a fixed allowance) before the
/// fixed forms take over.
const STEPS_PER_BYTE: usize = 32;
const BASE_STEPS: usize = 1 << 20;

/// Secrets shorter than this are not scrubbed (they would corrupt unrelated text); the vault
/// refuses nothing shorter, so in practice every real secret is covered.
const MIN_NEEDLE: usize = 4;

/// Replaces every occurrence of a connection's secret values, in any escaping.
#[derive(Clone, Default)]
pub struct Redactor {
    patterns: Vec<Pattern>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.patterns.len())
    }
}

impl Redactor {
    /// A redactor for these secret strings (longest first, so an encoding containing a
    /// shorter secret is replaced whole). Each is matched with any character escaped as
    /// described in the module docs.
    pub fn new(mut needles: Vec<Vec<u8>>) -> Self {
        needles.retain(|n| n.len() >= MIN_NEEDLE);
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Self {
            patterns: needles.into_iter().map(Pattern::new).collect(),
        }
    }

    /// A redactor scrubbing the secrets of both (an old and a renewed credential).
    pub fn merged(a: &Redactor, b: &Redactor) -> Self {
        Self::new(a.patterns.iter().chain(&b.patterns).map(|p| p.raw.clone()).collect())
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `text` contains any secret value.
    pub fn contains(&self, text: &str) -> bool {
        let mut scratch = Scratch::for_len(text.len());
        self.patterns
            .iter()
            .any(|p| p.find(text.as_bytes(), 0, &mut scratch).is_some())
    }

    /// `bytes` with every secret replaced by [`REDACTED`].
    pub fn scrub_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out: Cow<'a, [u8]> = Cow::Borrowed(bytes);
        let mut scratch = Scratch::for_len(bytes.len());
        for pattern in &self.patterns {
            let Some(first) = pattern.find(&out, 0, &mut scratch) else {
                continue;
            };
            let mut replaced = Vec::with_capacity(out.len());
            let mut last = 0;
            let mut next = Some(first);
            while let Some((start, end)) = next {
                replaced.extend_from_slice(&out[last..start]);
                replaced.extend_from_slice(REDACTED.as_bytes());
                last = end;
                next = pattern.find(&out, end, &mut scratch);
            }
            replaced.extend_from_slice(&out[last..]);
            out = Cow::Owned(replaced);
        }
        out
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn scrub(&self, text: &str) -> String {
        match self.scrub_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => text.to_string(),
            Cow::Owned(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Scrub a byte buffer in place (reallocating only when a secret is present).
    pub fn scrub_vec(&self, bytes: Vec<u8>) -> Vec<u8> {
        match self.scrub_bytes(&bytes) {
            Cow::Borrowed(_) => bytes,
            Cow::Owned(scrubbed) => scrubbed,
        }
    }
}

/// One secret string, matched character by character.
#[derive(Clone)]
struct Pattern {
    raw: Vec<u8>,
    chars: Vec<SecretChar>,
    /// The characters of the longest run of ASCII letters and digits (empty when there is
    /// none: then every place the first character may start is a candidate).
    anchor: std::ops::Range<usize>,
    finder: memmem::Finder<'static>,
    /// The fixed forms, used once the work budget is spent.
    fixed: Vec<memmem::Finder<'static>>,
}

/// One character of a secret.
#[derive(Clone)]
struct SecretChar {
    utf8: Vec<u8>,
    /// UTF-16 units, for `\uXXXX`; empty for a byte that is not valid UTF-8.
    utf16: Vec<u16>,
    /// An ASCII letter or digit: only ever written as it is.
    verbatim: bool,
    /// Byte lengths its forms can have.
    lengths: Vec<usize>,
}

/// Positions reachable so far while matching, reused across candidates, and the work left.
#[derive(Default)]
struct Scratch {
    at: Vec<usize>,
    next: Vec<usize>,
    steps_left: usize,
}

impl Scratch {
    fn for_len(len: usize) -> Self {
        Self {
            steps_left: len.saturating_mul(STEPS_PER_BYTE).saturating_add(BASE_STEPS),
            ..Self::default()
        }
    }
}

impl Pattern {
    fn new(raw: Vec<u8>) -> Self {
        let mut chars = Vec::with_capacity(raw.len());
        for chunk in raw.utf8_chunks() {
            for c in chunk.valid().chars() {
                let mut utf16 = [0u16; 2];
                chars.push(SecretChar::new(
                    c.to_string().into_bytes(),
                    c.encode_utf16(&mut utf16).to_vec(),
                ));
            }
            chars.extend(chunk.invalid().iter().map(|&b| SecretChar::new(vec![b], Vec::new())));
        }
        let mut anchor = 0..0;
        let mut run_start = 0;
        for (i, c) in chars.iter().enumerate() {
            if !c.verbatim {
                run_start = i + 1;
            } else if i + 1 - run_start > anchor.len() {
                anchor = run_start..i + 1;
            }
        }
        let needle: Vec<u8> = chars[anchor.clone()].iter().flat_map(|c| c.utf8.clone()).collect();
        let fixed = fixed_forms(&chars)
            .iter()
            .map(|f| memmem::Finder::new(f).into_owned())
            .collect();
        Self {
            finder: memmem::Finder::new(&needle).into_owned(),
            raw,
            chars,
            anchor,
            fixed,
        }
    }

    /// The earliest fixed form at or after `from`.
    fn find_fixed(&self, hay: &[u8], from: usize) -> Option<(usize, usize)> {
        self.fixed
            .iter()
            .filter_map(|f| {
                f.find(hay.get(from..)?)
                    .map(|i| (from + i, from + i + f.needle().len()))
            })
            .min()
    }

    /// The first match at or after `from`, as `(start, end)`, extended as far as it goes.
    fn find(&self, hay: &[u8], from: usize, scratch: &mut Scratch) -> Option<(usize, usize)> {
        let mut at = from;
        while at < hay.len() {
            if scratch.steps_left == 0 {
                return self.find_fixed(hay, at);
            }
            let hit = match self.chars.first() {
                // No anchor: a match starts with the first character raw, `\…` or `%…`.
                Some(c) if self.anchor.is_empty() && c.utf8 != b" " => {
                    at + memchr::memchr3(c.utf8[0], b'\\', b'%', &hay[at..])?
                }
                _ => at + self.finder.find(&hay[at..])?,
            };
            let after = hit + self.finder.needle().len();
            if let Some(end) = extend(hay, after, &self.chars[self.anchor.end..], false, from, scratch)
                && let Some(start) = extend(hay, hit, &self.chars[..self.anchor.start], true, from, scratch)
            {
                return Some((start, end));
            }
            at = hit + 1;
        }
        None
    }
}

impl SecretChar {
    fn new(utf8: Vec<u8>, utf16: Vec<u16>) -> Self {
        let verbatim = matches!(utf8[..], [b] if b.is_ascii_alphanumeric());
        let mut lengths = vec![utf8.len()];
        if !verbatim {
            lengths.extend([2, 6 * utf16.len(), 3 * utf8.len(), 1]);
            lengths.retain(|&l| l > 0);
            lengths.sort_unstable();
            lengths.dedup();
        }
        Self {
            utf8,
            utf16,
            verbatim,
            lengths,
        }
    }

    /// Whether `form` is exactly one way of writing this character.
    fn is_form(&self, form: &[u8]) -> bool {
        if form == self.utf8 {
            return true;
        }
        if self.verbatim {
            return false;
        }
        let unicode = !self.utf16.is_empty()
            && form.len() == 6 * self.utf16.len()
            && form
                .chunks(6)
                .zip(&self.utf16)
                .all(|(e, &unit)| e.starts_with(b"\\u") && hex_value(&e[2..]) == Some(u32::from(unit)));
        let percent = form.len() == 3 * self.utf8.len()
            && form
                .chunks(3)
                .zip(&self.utf8)
                .all(|(e, &b)| e[0] == b'%' && hex_value(&e[1..]) == Some(u32::from(b)));
        let backslashed = matches!((form, &self.utf8[..]), ([b'\\', e], [c @ (b'/' | b'"' | b'\\')]) if e == c);
        unicode || percent || backslashed || (form == b"+" && self.utf8 == b" ")
    }
}

/// Match `chars` forwards from `pos` (or backwards, ending at `pos`) and return the
/// farthest position reached, never going below `floor`. Several forms of one character
/// can match at once (`%` and `%25`), so every reachable position is followed.
fn extend(
    hay: &[u8],
    pos: usize,
    chars: &[SecretChar],
    backwards: bool,
    floor: usize,
    scratch: &mut Scratch,
) -> Option<usize> {
    let Scratch { at, next, steps_left } = scratch;
    at.clear();
    at.push(pos);
    for i in 0..chars.len() {
        let c = &chars[if backwards { chars.len() - 1 - i } else { i }];
        next.clear();
        for &p in at.iter() {
            for &len in &c.lengths {
                if *steps_left == 0 {
                    return None;
                }
                *steps_left -= 1;
                let span = if backwards {
                    p.checked_sub(len).map(|s| s..p)
                } else {
                    Some(p..p + len)
                };
                if let Some(span) = span.filter(|s| s.start >= floor)
                    && hay.get(span.clone()).is_some_and(|form| c.is_form(form))
                {
                    next.push(if backwards { span.start } else { span.end });
                }
            }
        }
        if next.is_empty() {
            return None;
        }
        next.sort_unstable();
        next.dedup();
        // Keep the nearest and the farthest few (mostly-raw and mostly-escaped paths): real
        // encoders mix at most a form or two.
        if next.len() > MAX_FRONTIER {
            let keep = MAX_FRONTIER / 2;
            next.drain(keep..next.len() - keep);
        }
        std::mem::swap(at, next);
    }
    if backwards {
        at.first().copied()
    } else {
        at.last().copied()
    }
}

/// The secret written whole in each common form: raw; every character that is not a letter
/// or digit percent-encoded, or `\u`-escaped, in upper and in lower case; `/` as `\/`.
fn fixed_forms(chars: &[SecretChar]) -> Vec<Vec<u8>> {
    let each = |f: &dyn Fn(&SecretChar) -> Vec<u8>| -> Vec<u8> {
        chars
            .iter()
            .flat_map(|c| if c.verbatim { c.utf8.clone() } else { f(c) })
            .collect()
    };
    let percent = |upper: bool| {
        move |c: &SecretChar| -> Vec<u8> {
            c.utf8
                .iter()
                .flat_map(|b| {
                    let text = if upper {
                        format!("%{b:02X}")
                    } else {
                        format!("%{b:02x}")
                    };
                    text.into_bytes()
                })
                .collect()
        }
    };
    let unicode = |upper: bool| {
        move |c: &SecretChar| -> Vec<u8> {
            if c.utf16.is_empty() {
                return c.utf8.clone();
            }
            c.utf16
                .iter()
                .flat_map(|u| {
                    let text = if upper {
                        format!("\\u{u:04X}")
                    } else {
                        format!("\\u{u:04x}")
                    };
                    text.into_bytes()
                })
                .collect()
        }
    };
    let slash = |c: &SecretChar| -> Vec<u8> {
        if c.utf8 == b"/" {
            b"\\/".to_vec()
        } else {
            c.utf8.clone()
        }
    };
    let mut forms = vec![
        each(&|c: &SecretChar| c.utf8.clone()),
        each(&percent(true)),
        each(&percent(false)),
        each(&unicode(true)),
        each(&unicode(false)),
        each(&slash),
    ];
    forms.sort();
    forms.dedup();
    forms
}

/// The value of hex digits in either case, or `None` if any is not a hex digit.
fn hex_value(digits: &[u8]) -> Option<u32> {
    digits
        .iter()
        .try_fold(0, |value, &d| Some(value * 16 + char::from(d).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_built_to_be_slow_runs_out_of_budget_and_still_loses_the_raw_secret() {
        // Every `\\` may be the secret's `\` raw or escaped: without a budget and a frontier
        // cap this is quadratic per candidate.
        let secret = format!("a{}", "\\".repeat(2000));
        let r = Redactor::new(vec![secret.clone().into_bytes()]);
        let mut body = "a".to_string() + &"\\".repeat(1 << 19);
        body.push_str(" then the secret itself: ");
        body.push_str(&secret);
        let scrubbed = r.scrub(&body);
        // The leading run is the secret JSON-escaped; the trailing copy is the secret raw.
        assert!(scrubbed.starts_with("[REDACTED]"));
        assert!(
            scrubbed.ends_with("then the secret itself: [REDACTED]"),
            "{}",
            &scrubbed[scrubbed.len() - 60..]
        );
    }

    #[test]
    fn replaces_every_occurrence_longest_first() {
        let r = Redactor::new(vec![b"s3cret".to_vec(), b"Bearer s3cret-long".to_vec(), b"ab".to_vec()]);
        assert_eq!(r.scrub("x s3cret y s3cret"), "x [REDACTED] y [REDACTED]");
        assert_eq!(r.scrub("auth: Bearer s3cret-long"), "auth: [REDACTED]");
        assert_eq!(r.scrub("ab stays"), "ab stays");
        assert!(matches!(r.scrub_bytes(b"nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn any_mix_of_escapes_and_hex_cases_matches() {
        let r = Redactor::new(vec!["a%b/c d\\e\u{1F600}".as_bytes().to_vec()]);
        for form in [
            "a%b/c d\\e\u{1F600}",
            r"a%25b\/c+d\\e\uD83D\ude00",
            r"a\u0025b%2fc%20d%5Ce%F0%9f%98%80",
            r#"a%b/c\u0020d\u005ce\ud83d\uDE00"#,
        ] {
            assert_eq!(r.scrub(&format!("<{form}>")), "<[REDACTED]>", "{form}");
        }
        // Without a letter or digit to anchor on, every place the first character may start is tried.
        let punctuation = Redactor::new(vec![b"/+=?/+=?".to_vec()]);
        assert_eq!(punctuation.scrub(r"x\/%2B%3d?\/+=%3Fx"), "x[REDACTED]x");
        for near_miss in [r"a%b/c d\e", r"a%2b/c d\\e\uD83D\ude01", r"a%b\/c%2 d\\e"] {
            assert!(!r.contains(near_miss), "{near_miss}");
        }
    }
}
