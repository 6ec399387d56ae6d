//! Scrubbing secret values out of everything a connector, a log or a trace can see.

use memchr::memmem;
use std::borrow::Cow;

/// Placeholder written where a secret value was.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not scrubbed (they would corrupt unrelated text); the vault
/// refuses nothing shorter, so in practice every real secret is covered.
const MIN_NEEDLE: usize = 4;

/// Replaces every exact occurrence of a connection's secret values.
#[derive(Clone, Default)]
pub struct Redactor {
    needles: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.needles.len())
    }
}

impl Redactor {
    /// A redactor for these secret byte strings (longest first, so an encoding containing a
    /// shorter secret is replaced whole).
    pub fn new(mut needles: Vec<Vec<u8>>) -> Self {
        needles.retain(|n| n.len() >= MIN_NEEDLE);
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Self { needles }
    }

    /// A redactor scrubbing the secrets of both (an old and a renewed credential).
    pub fn merged(a: &Redactor, b: &Redactor) -> Self {
        Self::new(a.needles.iter().chain(b.needles.iter()).cloned().collect())
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Whether `text` contains any secret value.
    pub fn contains(&self, text: &str) -> bool {
        self.needles.iter().any(|n| memmem::find(text.as_bytes(), n).is_some())
    }

    /// `bytes` with every secret replaced by [`REDACTED`].
    pub fn scrub_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out: Cow<'a, [u8]> = Cow::Borrowed(bytes);
        for needle in &self.needles {
            let finder = memmem::Finder::new(needle);
            if finder.find(&out).is_none() {
                continue;
            }
            let mut replaced = Vec::with_capacity(out.len());
            let mut last = 0;
            for at in finder.find_iter(&out) {
                replaced.extend_from_slice(&out[last..at]);
                replaced.extend_from_slice(REDACTED.as_bytes());
                last = at + needle.len();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_occurrence_longest_first() {
        let r = Redactor::new(vec![b"s3cret".to_vec(), b"Bearer s3cret-long".to_vec(), b"ab".to_vec()]);
        assert_eq!(r.scrub("x s3cret y s3cret"), "x [REDACTED] y [REDACTED]");
        assert_eq!(r.scrub("auth: Bearer s3cret-long"), "auth: [REDACTED]");
        assert_eq!(r.scrub("ab stays"), "ab stays");
        assert!(matches!(r.scrub_bytes(b"nothing here"), Cow::Borrowed(_)));
    }
}
