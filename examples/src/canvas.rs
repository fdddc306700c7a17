//! A small 32-bit framebuffer to draw demo content into.

/// A rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
}

impl Rect {
    /// The smallest rectangle covering both.
    pub fn union(self, other: Rect) -> Rect {
        let left = self.x.min(other.x);
        let top = self.y.min(other.y);
        let right = (self.x + self.width).max(other.x + other.width);
        let bottom = (self.y + self.height).max(other.y + other.height);
        Rect {
            x: left,
            y: top,
            width: right - left,
            height: bottom - top,
        }
    }
}

/// Pixels in memory order B, G, R, X; colours are given as `[r, g, b, a]`.
pub struct Canvas {
    width: u16,
    height: u16,
    pixels: Vec<u8>,
}

impl Canvas {
    pub fn new(width: u16, height: u16) -> Self {
        Self {
            width,
            height,
            pixels: vec![0; usize::from(width) * usize::from(height) * 4],
        }
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
    }

    pub fn stride(&self) -> usize {
        usize::from(self.width) * 4
    }

    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The background colour at (x, y): a diagonal gradient.
    pub fn gradient_at(&self, x: u16, y: u16) -> [u8; 4] {
        let r = (u32::from(x) * 255 / u32::from(self.width.max(1))) as u8;
        let g = (u32::from(y) * 255 / u32::from(self.height.max(1))) as u8;
        [r, g, 160, 255]
    }

    pub fn set(&mut self, x: u16, y: u16, [r, g, b, _]: [u8; 4]) {
        if x < self.width && y < self.height {
            let at = (usize::from(y) * usize::from(self.width) + usize::from(x)) * 4;
            self.pixels[at..at + 4].copy_from_slice(&[b, g, r, 0xFF]);
        }
    }

    pub fn fill_gradient(&mut self) {
        self.restore_gradient(Rect {
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
        });
    }

    pub fn restore_gradient(&mut self, rect: Rect) {
        for y in rect.y..rect.y.saturating_add(rect.height).min(self.height) {
            for x in rect.x..rect.x.saturating_add(rect.width).min(self.width) {
                let colour = self.gradient_at(x, y);
                self.set(x, y, colour);
            }
        }
    }

    pub fn fill_rect(&mut self, rect: Rect, colour: [u8; 4]) {
        for y in rect.y..rect.y.saturating_add(rect.height).min(self.height) {
            for x in rect.x..rect.x.saturating_add(rect.width).min(self.width) {
                self.set(x, y, colour);
            }
        }
    }

    /// A saturated colour for `hue` degrees.
    pub fn hue(hue: u16) -> [u8; 4] {
        let h = hue % 360;
        let rising = ((h % 60) * 255 / 60) as u8;
        let falling = 255 - rising;
        match h / 60 {
            0 => [255, rising, 0, 255],
            1 => [falling, 255, 0, 255],
            2 => [0, 255, rising, 255],
            3 => [0, falling, 255, 255],
            4 => [rising, 0, 255, 255],
            _ => [255, 0, falling, 255],
        }
    }

    /// Draws digits and ':' in a 5x7 pixel font, each font pixel `scale` wide,
    /// glyphs 6 font pixels apart. Other characters leave a gap.
    pub fn draw_text(&mut self, x: u16, y: u16, text: &str, scale: u16, colour: [u8; 4]) {
        for (index, character) in text.chars().enumerate() {
            let Some(rows) = glyph(character) else {
                continue;
            };
            let origin = x + index as u16 * 6 * scale;
            for (row, bits) in rows.iter().enumerate() {
                for column in 0..5u16 {
                    if bits & (0x10 >> column) != 0 {
                        self.fill_rect(
                            Rect {
                                x: origin + column * scale,
                                y: y + row as u16 * scale,
                                width: scale,
                                height: scale,
                            },
                            colour,
                        );
                    }
                }
            }
        }
    }

    /// A copy of `rect`'s pixels, tightly packed; returns the data and its stride.
    pub fn copy_rect(&self, rect: Rect) -> (Vec<u8>, usize) {
        let stride = usize::from(rect.width) * 4;
        let mut out = Vec::with_capacity(stride * usize::from(rect.height));
        for y in rect.y..rect.y + rect.height {
            let start = (usize::from(y) * usize::from(self.width) + usize::from(rect.x)) * 4;
            out.extend_from_slice(&self.pixels[start..start + stride]);
        }
        (out, stride)
    }
}

/// Rows of a 5x7 glyph, most significant of the low five bits leftmost.
fn glyph(character: char) -> Option<[u8; 7]> {
    Some(match character {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rect_packs_rows() {
        let mut canvas = Canvas::new(8, 4);
        canvas.set(2, 1, [1, 2, 3, 255]);
        let (data, stride) = canvas.copy_rect(Rect {
            x: 2,
            y: 1,
            width: 2,
            height: 2,
        });
        assert_eq!(stride, 8);
        assert_eq!(&data[..4], &[3, 2, 1, 0xFF]);
        assert_eq!(data.len(), 16);
    }

    #[test]
    fn union_covers_both() {
        let a = Rect {
            x: 10,
            y: 10,
            width: 5,
            height: 5,
        };
        let b = Rect {
            x: 12,
            y: 2,
            width: 10,
            height: 4,
        };
        assert_eq!(
            a.union(b),
            Rect {
                x: 10,
                y: 2,
                width: 12,
                height: 13
            }
        );
    }
}
