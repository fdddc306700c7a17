//! Every lossless encoder on random sizes (1x1 up to 4096 wide, odd widths),
//! strides, sub-rectangles and contents: never a panic, always output the
//! matching test decoder accepts and turns back into the source pixels.

use rdpserve_codecs::{
    ColorDepth, Image, decode_interleaved, decode_planar, encode_interleaved, encode_planar,
    encode_planar_with_alpha, encode_uncompressed_32, padded_width,
};

/// A small xorshift generator: fixed seeds, reproducible failures.
struct Random(u32);

impl Random {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        self.next() as usize % bound
    }
}

/// A random image and a random rectangle inside it.
struct Case {
    width: usize,
    height: usize,
    stride: usize,
    data: Vec<u8>,
    rect: (usize, usize, usize, usize),
}

fn case(random: &mut Random) -> Case {
    let width = match random.below(4) {
        0 => 1 + random.below(8),
        1 => 4096 - random.below(3),
        _ => 1 + random.below(700),
    };
    let height = 1 + random.below(if width > 1000 { 3 } else { 40 });
    let stride = width * 4 + random.below(3) * 4 + random.below(4);
    // The last row need not be padded to the stride.
    let len = stride * (height - 1) + width * 4;
    let kind = random.below(4);
    let data = (0..len)
        .map(|i| match kind {
            0 => random.next() as u8,
            1 => (i / 64 % 3 * 100) as u8,
            2 => ((i % stride) / 4) as u8,
            _ => 7,
        })
        .collect();
    let (x, y) = (random.below(width), random.below(height));
    let rect = (
        x,
        y,
        1 + random.below(width - x),
        1 + random.below(height - y),
    );
    Case {
        width,
        height,
        stride,
        data,
        rect,
    }
}

fn source_bgr(case: &Case, x: usize, y: usize) -> [u8; 3] {
    let at = y * case.stride + x * 4;
    [case.data[at], case.data[at + 1], case.data[at + 2]]
}

#[test]
fn encoders_round_trip_random_inputs() {
    let mut random = Random(0x2545_F491);
    let (mut planes, mut converted, mut out) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..120 {
        let case = case(&mut random);
        let image = Image {
            width: case.width,
            height: case.height,
            stride: case.stride,
            data: &case.data,
        };
        let (x, y, width, height) = case.rect;
        let context = format!(
            "round {round}: {}x{} rect {:?}",
            case.width, case.height, case.rect
        );

        out.clear();
        encode_planar(&image, x, y, width, height, &mut planes, &mut out).expect(&context);
        let decoded = decode_planar(&out, width, height).expect(&context);
        for row in 0..height {
            for column in 0..width {
                let got = &decoded[(row * width + column) * 4..][..3];
                assert_eq!(
                    got,
                    source_bgr(&case, x + column, y + row),
                    "planar {context}"
                );
            }
        }

        out.clear();
        encode_planar_with_alpha(&image, x, y, width, height, &mut planes, &mut out)
            .expect(&context);
        let decoded = decode_planar(&out, width, height).expect(&context);
        for row in 0..height {
            for column in 0..width {
                let got = &decoded[(row * width + column) * 4..][..4];
                assert_eq!(
                    got[..3],
                    source_bgr(&case, x + column, y + row),
                    "{context}"
                );
                assert_eq!(got[3], 0xFF, "planar alpha {context}");
            }
        }

        out.clear();
        encode_uncompressed_32(&image, x, y, width, height, &mut out).expect(&context);
        assert_eq!(out.len(), width * height * 4, "uncompressed {context}");

        for depth in [ColorDepth::Bpp15, ColorDepth::Bpp16, ColorDepth::Bpp24] {
            out.clear();
            encode_interleaved(&image, x, y, width, height, depth, &mut converted, &mut out)
                .expect(&context);
            let padded = padded_width(width);
            let decoded = decode_interleaved(&out, padded, height, depth).expect(&context);
            for row in 0..height {
                for column in 0..width {
                    let [b, g, r] = source_bgr(&case, x + column, y + row);
                    // The test decoder undoes the bottom-up row order.
                    let got = decoded[row * padded + column];
                    assert_eq!(
                        got,
                        depth.convert(b, g, r),
                        "interleaved {depth:?} {context}"
                    );
                }
            }
        }

        // A rectangle reaching past the image is an error, not a panic.
        assert!(
            encode_planar(
                &image,
                x,
                y,
                width + case.width,
                height,
                &mut planes,
                &mut out
            )
            .is_err()
        );
    }
}
