//! The fixed prefix codes of RDP 8.0 compression (MS-RDPEGFX 3.1.9.1.2):
//! a token is a prefix, then `value_bits` bits added to `base`. A literal
//! token names a byte; a match token names a distance, followed by the
//! match length's own code.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Literal,
    Match,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Token {
    pub prefix_length: u8,
    pub prefix: u16,
    pub value_bits: u8,
    pub kind: Kind,
    pub base: u32,
}

const fn literal(prefix_length: u8, prefix: u16, byte: u8) -> Token {
    Token {
        prefix_length,
        prefix,
        value_bits: 0,
        kind: Kind::Literal,
        base: byte as u32,
    }
}

const fn distance(prefix_length: u8, prefix: u16, value_bits: u8, base: u32) -> Token {
    Token {
        prefix_length,
        prefix,
        value_bits,
        kind: Kind::Match,
        base,
    }
}

/// Every token, shortest prefix first. A distance of 0 (the first match
/// token with value 0) is not a match: it introduces unencoded bytes.
pub(super) const TOKENS: [Token; 37] = [
    // "0" and any byte in 8 bits.
    Token {
        prefix_length: 1,
        prefix: 0b0,
        value_bits: 8,
        kind: Kind::Literal,
        base: 0,
    },
    distance(5, 0b10001, 5, 0),
    distance(5, 0b10010, 7, 32),
    distance(5, 0b10011, 9, 160),
    distance(5, 0b10100, 10, 672),
    distance(5, 0b10101, 12, 1696),
    literal(5, 0b11000, 0x00),
    literal(5, 0b11001, 0x01),
    distance(6, 0b101100, 14, 5792),
    distance(6, 0b101101, 15, 22176),
    literal(6, 0b110100, 0x02),
    literal(6, 0b110101, 0x03),
    literal(6, 0b110110, 0xFF),
    distance(7, 0b1011100, 18, 54944),
    distance(7, 0b1011101, 20, 317088),
    literal(7, 0b1101110, 0x04),
    literal(7, 0b1101111, 0x05),
    literal(7, 0b1110000, 0x06),
    literal(7, 0b1110001, 0x07),
    literal(7, 0b1110010, 0x08),
    literal(7, 0b1110011, 0x09),
    literal(7, 0b1110100, 0x0A),
    literal(7, 0b1110101, 0x0B),
    literal(7, 0b1110110, 0x3A),
    literal(7, 0b1110111, 0x3B),
    literal(7, 0b1111000, 0x3C),
    literal(7, 0b1111001, 0x3D),
    literal(7, 0b1111010, 0x3E),
    literal(7, 0b1111011, 0x3F),
    literal(7, 0b1111100, 0x40),
    literal(7, 0b1111101, 0x80),
    distance(8, 0b10111100, 20, 1365664),
    distance(8, 0b10111101, 21, 2414240),
    literal(8, 0b11111100, 0x0C),
    literal(8, 0b11111101, 0x38),
    literal(8, 0b11111110, 0x39),
    literal(8, 0b11111111, 0x66),
];

/// The shortest code of each byte as a literal: (code, length in bits).
pub(super) const LITERAL_CODES: [(u16, u8); 256] = {
    let mut codes = [(0u16, 9u8); 256];
    let mut byte = 0;
    while byte < 256 {
        // "0" then the byte: the byte's value itself, in 9 bits.
        codes[byte] = (byte as u16, 9);
        byte += 1;
    }
    let mut at = 0;
    while at < TOKENS.len() {
        let token = TOKENS[at];
        if matches!(token.kind, Kind::Literal) && token.value_bits == 0 {
            codes[token.base as usize] = (token.prefix, token.prefix_length);
        }
        at += 1;
    }
    codes
};

/// The distance tokens in order of base.
pub(super) const DISTANCES: [Token; 11] = {
    let mut distances = [TOKENS[1]; 11];
    let mut count = 0;
    let mut at = 0;
    while at < TOKENS.len() {
        if matches!(TOKENS[at].kind, Kind::Match) {
            distances[count] = TOKENS[at];
            count += 1;
        }
        at += 1;
    }
    // TOKENS lists the distance tokens by prefix length, which is also
    // the order of their bases (a test checks).
    distances
};

/// The token that carries `distance` (1 or more): the one with the largest
/// base not above it.
pub(super) fn distance_token(distance: u32) -> Token {
    let mut chosen = DISTANCES[0];
    for token in DISTANCES {
        if token.base <= distance {
            chosen = token;
        }
    }
    chosen
}

/// The length code of a match of `length` (3 or more) bytes: (code, bits).
/// 3 is "0"; a length in [2^m, 2^(m+1)) for m >= 2 is m - 1 ones, a zero,
/// then m bits of length - 2^m.
pub(super) fn length_code(length: u32) -> (u32, u32) {
    debug_assert!(length >= 3);
    if length == 3 {
        return (0, 1);
    }
    let m = 31 - length.leading_zeros();
    let ones = m - 1;
    let prefix = ((1u32 << ones) - 1) << 1;
    let code = (prefix << m) | (length - (1 << m));
    (code, ones + 1 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_sorted_and_contiguous() {
        for pair in DISTANCES.windows(2) {
            assert_eq!(pair[0].base + (1 << pair[0].value_bits), pair[1].base);
        }
        assert_eq!(distance_token(1).base, 0);
        assert_eq!(distance_token(31).base, 0);
        assert_eq!(distance_token(32).base, 32);
        assert_eq!(distance_token(2_499_999).base, 2_414_240);
    }

    #[test]
    fn prefixes_are_a_prefix_code() {
        for (i, a) in TOKENS.iter().enumerate() {
            for b in &TOKENS[i + 1..] {
                let shorter = a.prefix_length.min(b.prefix_length);
                assert_ne!(
                    a.prefix >> (a.prefix_length - shorter),
                    b.prefix >> (b.prefix_length - shorter),
                    "{a:?} and {b:?}"
                );
            }
        }
    }

    #[test]
    fn length_codes_follow_the_spec() {
        assert_eq!(length_code(3), (0b0, 1));
        assert_eq!(length_code(4), (0b1000, 4));
        assert_eq!(length_code(7), (0b1011, 4));
        assert_eq!(length_code(8), (0b110000, 6));
        // MS-RDPEDYC 4.3.3: 1594 is nine ones, a zero, then 570 in 10 bits.
        assert_eq!(length_code(1594), (0b1111111110_1000111010, 20));
    }
}
