//! Decoding errors: a structure from the wire was malformed.

/// A structure from the wire could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("{context}: truncated, need {needed} bytes, have {available}")]
    Truncated {
        context: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("{context}: invalid {field}: {reason}")]
    InvalidField {
        context: &'static str,
        field: &'static str,
        reason: &'static str,
    },
    #[error("{context}: {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        context: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("{context}: unexpected {what} {value:#x}")]
    Unexpected {
        context: &'static str,
        what: &'static str,
        value: u32,
    },
}
