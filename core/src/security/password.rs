//! A secret string that never shows in logs.

use std::fmt;

/// A secret string. `Debug` never shows it and there is no `Display`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares without stopping at the first differing byte, so the time
    /// taken does not reveal how much of a guess was right.
    pub fn matches(&self, other: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), other.as_bytes());
        let mut difference = a.len() ^ b.len();
        for (index, &byte) in a.iter().enumerate() {
            difference |= usize::from(byte ^ b.get(index).copied().unwrap_or(!byte));
        }
        difference == 0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
