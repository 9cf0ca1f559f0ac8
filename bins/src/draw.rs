//! A small RGB raster canvas for the command line's pictures: grayscale
//! images blown up by an integer factor, anti-aliased lines and arrows,
//! rectangles, a built-in 5×7 bitmap font, and atomic PNG output.
//!
//! Coordinates: pixel (i, j) covers [i, i+1) × [j, j+1), so its centre is at
//! (i + 0.5, j + 0.5); lines take continuous coordinates in that frame.
//! Drawing outside the canvas (or outside the clip rectangle) is ignored, so
//! callers never need to clip wild coordinates (a transformer's grid can point
//! far outside the image) themselves; NaN coordinates draw nothing.

use crate::error::{msg, CliError};
use std::path::Path;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// White.
pub const WHITE: Rgb = [255, 255, 255];
/// Black.
pub const BLACK: Rgb = [0, 0, 0];
/// The background of the pictures (dark blue-grey).
pub const BACKGROUND: Rgb = [24, 26, 32];
/// Light grey, for secondary text.
pub const GREY: Rgb = [170, 170, 180];
/// Yellow, for labels.
pub const YELLOW: Rgb = [255, 214, 10];
/// Green, for correct predictions.
pub const GREEN: Rgb = [80, 220, 100];
/// Red, for wrong predictions.
pub const RED: Rgb = [255, 80, 70];

/// Colours told apart easily on a grayscale digit, one per transformer.
pub const PALETTE: [Rgb; 4] = [[0, 200, 255], [255, 140, 0], [230, 60, 230], [120, 230, 40]];

/// Width and height of a glyph of the built-in font, in font pixels.
pub const GLYPH_W: usize = 5;
/// Height of a glyph of the built-in font.
pub const GLYPH_H: usize = 7;
/// Horizontal advance of one character (glyph plus one pixel of spacing).
pub const ADVANCE: usize = GLYPH_W + 1;
/// Rows below the baseline for the descenders of g, j, p, q, y.
pub const DESCENT: usize = 2;
/// Height of one line of text (glyph, descenders, one pixel of spacing).
pub const LINE_H: usize = GLYPH_H + DESCENT + 1;

/// An axis-aligned rectangle in canvas pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    /// Left column.
    pub x: i64,
    /// Top row.
    pub y: i64,
    /// Width in pixels.
    pub w: i64,
    /// Height in pixels.
    pub h: i64,
}

impl Rect {
    /// A rectangle from its top-left corner and size.
    pub fn new(x: i64, y: i64, w: i64, h: i64) -> Rect {
        Rect { x, y, w, h }
    }

    fn contains(&self, x: i64, y: i64) -> bool {
        x >= self.x && y >= self.y && x < self.x + self.w && y < self.y + self.h
    }
}

/// An RGB image being drawn on.
#[derive(Clone, Debug, PartialEq)]
pub struct Canvas {
    width: usize,
    height: usize,
    /// Row-major RGB bytes.
    pixels: Vec<u8>,
    /// Drawing is limited to this rectangle when set.
    clip: Option<Rect>,
}

impl Canvas {
    /// A `width`×`height` canvas filled with `background`.
    pub fn new(width: usize, height: usize, background: Rgb) -> Canvas {
        let mut pixels = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            pixels.extend_from_slice(&background);
        }
        Canvas {
            width,
            height,
            pixels,
            clip: None,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The RGB bytes, row-major.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Limits all drawing to `rect` (or lifts the limit with `None`).
    pub fn set_clip(&mut self, rect: Option<Rect>) {
        self.clip = rect;
    }

    /// The colour at (x, y).
    ///
    /// # Panics
    /// If (x, y) is outside the canvas.
    pub fn get(&self, x: usize, y: usize) -> Rgb {
        assert!(
            x < self.width && y < self.height,
            "Canvas::get: ({x}, {y}) outside {}×{}",
            self.width,
            self.height
        );
        let i = (y * self.width + x) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    fn index(&self, x: i64, y: i64) -> Option<usize> {
        let inside = x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height;
        let clipped = self.clip.is_some_and(|c| !c.contains(x, y));
        (inside && !clipped).then(|| (y as usize * self.width + x as usize) * 3)
    }

    /// Sets one pixel (ignored outside the canvas or clip rectangle).
    pub fn put(&mut self, x: i64, y: i64, c: Rgb) {
        if let Some(i) = self.index(x, y) {
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    /// Mixes `c` into one pixel with opacity `alpha` in [0, 1].
    pub fn blend(&mut self, x: i64, y: i64, c: Rgb, alpha: f32) {
        let a = if alpha.is_nan() {
            0.0
        } else {
            alpha.clamp(0.0, 1.0)
        };
        if a <= 0.0 {
            return;
        }
        if let Some(i) = self.index(x, y) {
            for (p, &new) in self.pixels[i..i + 3].iter_mut().zip(&c) {
                let old = *p as f32;
                *p = (old + (new as f32 - old) * a).round() as u8;
            }
        }
    }

    /// Fills a rectangle.
    pub fn fill_rect(&mut self, r: Rect, c: Rgb) {
        for y in r.y..r.y + r.h {
            for x in r.x..r.x + r.w {
                self.put(x, y, c);
            }
        }
    }

    /// Draws a rectangle's one-pixel outline (inside the rectangle).
    pub fn rect(&mut self, r: Rect, c: Rgb) {
        if r.w <= 0 || r.h <= 0 {
            return;
        }
        for x in r.x..r.x + r.w {
            self.put(x, r.y, c);
            self.put(x, r.y + r.h - 1, c);
        }
        for y in r.y..r.y + r.h {
            self.put(r.x, y, c);
            self.put(r.x + r.w - 1, y, c);
        }
    }

    /// Draws a `w`×`h` grayscale image (row-major, values in [0, 1], clamped;
    /// NaN is drawn black) with its top-left corner at (x0, y0), every pixel
    /// blown up to a `scale`×`scale` block (nearest neighbour).
    ///
    /// # Panics
    /// If `gray` does not hold `w * h` values.
    pub fn blit_gray(&mut self, x0: i64, y0: i64, gray: &[f32], w: usize, h: usize, scale: usize) {
        assert_eq!(
            gray.len(),
            w * h,
            "blit_gray: {} values for a {w}×{h} image",
            gray.len()
        );
        let s = scale as i64;
        for (j, row) in gray.chunks(w.max(1)).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
                let g = (v * 255.0).round() as u8;
                let r = Rect::new(x0 + i as i64 * s, y0 + j as i64 * s, s, s);
                self.fill_rect(r, [g, g, g]);
            }
        }
    }

    /// Copies another canvas with its top-left corner at (x0, y0).
    pub fn blit(&mut self, other: &Canvas, x0: i64, y0: i64) {
        for y in 0..other.height {
            for x in 0..other.width {
                self.put(x0 + x as i64, y0 + y as i64, other.get(x, y));
            }
        }
    }

    /// An anti-aliased line of the given width from (x0, y0) to (x1, y1),
    /// in continuous coordinates (pixel centres at +0.5). Each pixel gets the
    /// colour with opacity `alpha` × its coverage (from its distance to the
    /// segment), so overlapping lines stay smooth.
    #[allow(clippy::too_many_arguments)]
    pub fn line_width(
        &mut self,
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
        width: f32,
        c: Rgb,
        alpha: f32,
    ) {
        if ![x0, y0, x1, y1, width].iter().all(|v| v.is_finite()) {
            return;
        }
        let half = width.max(0.5) / 2.0;
        let pad = half + 1.0;
        // Only pixels near the canvas matter: clamp the box, so a line to a
        // far-away point costs no more than one across the canvas.
        let (w, h) = (self.width as f32, self.height as f32);
        let bx0 = (x0.min(x1) - pad).floor().max(0.0);
        let bx1 = (x0.max(x1) + pad).ceil().min(w);
        let by0 = (y0.min(y1) - pad).floor().max(0.0);
        let by1 = (y0.max(y1) + pad).ceil().min(h);
        if bx0 >= bx1 || by0 >= by1 {
            return;
        }
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len2 = dx * dx + dy * dy;
        for py in by0 as i64..by1 as i64 {
            for px in bx0 as i64..bx1 as i64 {
                let (cx, cy) = (px as f32 + 0.5, py as f32 + 0.5);
                let t = if len2 > 0.0 {
                    (((cx - x0) * dx + (cy - y0) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (qx, qy) = (x0 + t * dx - cx, y0 + t * dy - cy);
                let d = (qx * qx + qy * qy).sqrt();
                let cover = (half + 0.5 - d).clamp(0.0, 1.0);
                if cover > 0.0 {
                    self.blend(px, py, c, alpha * cover);
                }
            }
        }
    }

    /// A one-pixel anti-aliased line (see [`Canvas::line_width`]).
    pub fn line(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, c: Rgb, alpha: f32) {
        self.line_width(x0, y0, x1, y1, 1.0, c, alpha);
    }

    /// A filled anti-aliased disc of radius `r` centred at (cx, cy).
    pub fn disc(&mut self, cx: f32, cy: f32, r: f32, c: Rgb, alpha: f32) {
        // A zero-length segment of width 2r is exactly a disc.
        self.line_width(cx, cy, cx, cy, 2.0 * r, c, alpha);
    }

    /// A polyline through `points` (no segment to or from a NaN point).
    pub fn polyline(&mut self, points: &[(f32, f32)], width: f32, c: Rgb, alpha: f32) {
        for w in points.windows(2) {
            self.line_width(w[0].0, w[0].1, w[1].0, w[1].1, width, c, alpha);
        }
    }

    /// An arrow from (x0, y0) to its tip (x1, y1); the head's sides are
    /// `head` pixels long (at most half the arrow), 28° off the shaft.
    #[allow(clippy::too_many_arguments)]
    pub fn arrow(
        &mut self,
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
        width: f32,
        head: f32,
        c: Rgb,
        alpha: f32,
    ) {
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len = (dx * dx + dy * dy).sqrt();
        if !len.is_finite() {
            return;
        }
        self.line_width(x0, y0, x1, y1, width, c, alpha);
        if len < 1e-3 {
            return;
        }
        let h = head.min(len / 2.0);
        let (ux, uy) = (dx / len, dy / len);
        let (sin, cos) = 28f32.to_radians().sin_cos();
        for s in [-1.0f32, 1.0] {
            // The shaft direction reversed, turned by ±28°.
            let hx = -(ux * cos - s * uy * sin);
            let hy = -(s * ux * sin + uy * cos);
            self.line_width(x1, y1, x1 + h * hx, y1 + h * hy, width, c, alpha);
        }
    }

    /// Draws `text` with the built-in 5×7 font, each font pixel a
    /// `scale`×`scale` block, top-left corner at (x, y); `\n` starts a new
    /// line. Characters without a glyph are drawn as a box. Returns the
    /// width drawn (of the longest line).
    pub fn text(&mut self, x: i64, y: i64, text: &str, c: Rgb, scale: usize) -> usize {
        let s = scale.max(1) as i64;
        for (line_no, line) in text.split('\n').enumerate() {
            let ly = y + line_no as i64 * LINE_H as i64 * s;
            for (k, ch) in line.chars().enumerate() {
                let gx = x + k as i64 * ADVANCE as i64 * s;
                for (row, bits) in glyph(ch).iter().enumerate() {
                    for col in 0..GLYPH_W {
                        if bits >> (GLYPH_W - 1 - col) & 1 == 1 {
                            let r = Rect::new(gx + col as i64 * s, ly + row as i64 * s, s, s);
                            self.fill_rect(r, c);
                        }
                    }
                }
            }
        }
        text_size(text, scale).0
    }

    /// Text on a filled box (padding of `scale` pixels), for labels drawn
    /// over images. Returns the box.
    pub fn label(&mut self, x: i64, y: i64, text: &str, fg: Rgb, bg: Rgb, scale: usize) -> Rect {
        let (w, h) = text_size(text, scale);
        let s = scale.max(1) as i64;
        let r = Rect::new(x, y, w as i64 + 2 * s, h as i64 + 2 * s);
        self.fill_rect(r, bg);
        self.text(x + s, y + s, text, fg, scale);
        r
    }

    /// The canvas as PNG bytes (8-bit RGB).
    pub fn encode_png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Best);
            let mut w = enc.write_header()?;
            w.write_image_data(self.pixels())?;
            w.finish()?;
        }
        Ok(out)
    }

    /// Writes the canvas as a PNG file, atomically: a temporary file in the
    /// same folder, then a rename, so a reader never sees half a picture.
    pub fn save_png(&self, path: &Path) -> Result<(), CliError> {
        let fail = |e: &dyn std::fmt::Display| msg(format!("cannot write {}: {e}", path.display()));
        if self.width == 0 || self.height == 0 {
            return Err(fail(&"the picture is empty"));
        }
        let bytes = self.encode_png().map_err(|e| fail(&e))?;
        engine::fsio::write_atomic(path, |w| std::io::Write::write_all(w, &bytes))
            .map_err(|e| fail(&e))
    }
}

/// Width and height in pixels of `text` drawn at `scale` (multi-line aware;
/// the height includes the descender rows, not the trailing spacing).
pub fn text_size(text: &str, scale: usize) -> (usize, usize) {
    let s = scale.max(1);
    let lines: Vec<&str> = text.split('\n').collect();
    let longest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let w = if longest == 0 {
        0
    } else {
        (longest * ADVANCE - 1) * s
    };
    let h = (lines.len() * LINE_H - 1) * s;
    (w, h)
}

/// The rows of a character's glyph, each the 5 low bits (bit 4 = left):
/// 7 rows down to the baseline, then [`DESCENT`] rows below it.
fn glyph(c: char) -> [u8; GLYPH_H + DESCENT] {
    let descender: Option<[u8; 9]> = match c {
        'g' => Some([0x00, 0x00, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E]),
        'j' => Some([0x02, 0x00, 0x06, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C]),
        'p' => Some([0x00, 0x00, 0x1E, 0x11, 0x11, 0x11, 0x1E, 0x10, 0x10]),
        'q' => Some([0x00, 0x00, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x01]),
        'y' => Some([0x00, 0x00, 0x11, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E]),
        ',' => Some([0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C, 0x04, 0x08]),
        ';' => Some([0x00, 0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x04, 0x08]),
        _ => None,
    };
    if let Some(g) = descender {
        return g;
    }
    let g = upper_glyph(c);
    [g[0], g[1], g[2], g[3], g[4], g[5], g[6], 0, 0]
}

/// The 7 rows above the baseline of a character without a descender.
fn upper_glyph(c: char) -> [u8; GLYPH_H] {
    match c {
        ' ' => [0; 7],
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
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        'a' => [0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F],
        'b' => [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E],
        'c' => [0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E],
        'd' => [0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F],
        'e' => [0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E],
        'f' => [0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08],
        'h' => [0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11],
        'i' => [0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E],
        'k' => [0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12],
        'l' => [0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'm' => [0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11],
        'n' => [0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11],
        'o' => [0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E],
        'r' => [0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10],
        's' => [0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E],
        't' => [0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06],
        'u' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D],
        'v' => [0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'w' => [0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A],
        'x' => [0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11],
        'z' => [0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '-' | '−' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '[' => [0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E],
        ']' => [0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '!' => [0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04],
        '?' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '<' => [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        '>' => [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
        '\'' => [0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00],
        '"' => [0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00],
        '*' => [0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        '|' => [0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        '×' => [0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x00],
        '·' => [0x00, 0x00, 0x00, 0x0C, 0x0C, 0x00, 0x00],
        'θ' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x0E],
        '∂' => [0x06, 0x01, 0x01, 0x0F, 0x11, 0x11, 0x0E],
        '→' => [0x00, 0x04, 0x02, 0x1F, 0x02, 0x04, 0x00],
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn new_canvas_is_filled_and_put_ignores_outside() {
        let mut c = Canvas::new(4, 3, [1, 2, 3]);
        assert_eq!(c.pixels().len(), 4 * 3 * 3);
        assert_eq!(c.get(3, 2), [1, 2, 3]);
        c.put(-1, 0, WHITE);
        c.put(4, 0, WHITE);
        c.put(0, 3, WHITE);
        assert!(c.pixels().chunks(3).all(|p| p == [1, 2, 3]));
        c.put(2, 1, WHITE);
        assert_eq!(c.get(2, 1), WHITE);
    }

    #[test]
    fn blend_mixes_by_alpha() {
        let mut c = Canvas::new(1, 1, BLACK);
        c.blend(0, 0, [200, 100, 0], 0.5);
        assert_eq!(c.get(0, 0), [100, 50, 0]);
        c.blend(0, 0, WHITE, 0.0);
        c.blend(0, 0, WHITE, f32::NAN);
        assert_eq!(c.get(0, 0), [100, 50, 0]);
        c.blend(0, 0, WHITE, 7.0);
        assert_eq!(c.get(0, 0), WHITE);
    }

    #[test]
    fn blit_gray_scales_by_nearest_blocks() {
        let mut c = Canvas::new(8, 6, BLACK);
        // 2×1 image at ×3: left block black-ish, right block white.
        c.blit_gray(1, 2, &[0.5, 1.0], 2, 1, 3);
        for y in 2..5 {
            for x in 1..4 {
                assert_eq!(c.get(x, y), [128, 128, 128], "({x},{y})");
            }
            for x in 4..7 {
                assert_eq!(c.get(x, y), WHITE);
            }
        }
        assert_eq!(c.get(0, 2), BLACK);
        assert_eq!(c.get(7, 2), BLACK);
        assert_eq!(c.get(1, 1), BLACK);
        assert_eq!(c.get(1, 5), BLACK);
        // Out-of-range and NaN values are clamped, never a panic.
        c.blit_gray(0, 0, &[-3.0, f32::NAN, 9.0], 3, 1, 1);
        assert_eq!(c.get(0, 0), BLACK);
        assert_eq!(c.get(1, 0), BLACK);
        assert_eq!(c.get(2, 0), WHITE);
    }

    #[test]
    fn horizontal_line_covers_its_row_only() {
        let mut c = Canvas::new(10, 5, BLACK);
        c.line(1.5, 2.5, 8.5, 2.5, WHITE, 1.0);
        for x in 1..=8 {
            assert_eq!(c.get(x, 2), WHITE, "x={x}");
            assert_eq!(c.get(x, 0), BLACK);
            assert_eq!(c.get(x, 4), BLACK);
        }
        assert_eq!(c.get(0, 2), BLACK);
        assert_eq!(c.get(9, 2), BLACK);
    }

    #[test]
    fn diagonal_line_passes_through_the_diagonal() {
        let mut c = Canvas::new(9, 9, BLACK);
        c.line(0.5, 0.5, 8.5, 8.5, WHITE, 1.0);
        for i in 0..9 {
            assert_eq!(c.get(i, i), WHITE, "({i},{i})");
        }
        // Far corners are untouched.
        assert_eq!(c.get(8, 0), BLACK);
        assert_eq!(c.get(0, 8), BLACK);
    }

    #[test]
    fn lines_to_wild_points_are_clipped_not_panics() {
        let mut c = Canvas::new(5, 5, BLACK);
        c.line(2.5, 2.5, 1e9, -1e9, WHITE, 1.0);
        c.line(f32::NAN, 0.0, 3.0, 3.0, WHITE, 1.0);
        c.line(f32::INFINITY, 0.0, 3.0, 3.0, WHITE, 1.0);
        c.arrow(-100.0, -100.0, -50.0, -50.0, 1.0, 4.0, WHITE, 1.0);
        assert_eq!(c.get(2, 2), WHITE);
        assert_eq!(c.get(0, 4), BLACK);
    }

    #[test]
    fn disc_covers_its_radius() {
        let mut c = Canvas::new(11, 11, BLACK);
        c.disc(5.5, 5.5, 3.0, WHITE, 1.0);
        assert_eq!(c.get(5, 5), WHITE);
        assert_eq!(c.get(7, 5), WHITE);
        assert_eq!(c.get(5, 3), WHITE);
        assert_eq!(c.get(0, 0), BLACK);
        assert_eq!(c.get(9, 5), BLACK);
    }

    #[test]
    fn clip_rect_limits_drawing() {
        let mut c = Canvas::new(6, 6, BLACK);
        c.set_clip(Some(Rect::new(2, 2, 2, 2)));
        c.fill_rect(Rect::new(0, 0, 6, 6), WHITE);
        c.set_clip(None);
        let white: usize = (0..6)
            .flat_map(|y| (0..6).map(move |x| (x, y)))
            .filter(|&(x, y)| c.get(x, y) == WHITE)
            .count();
        assert_eq!(white, 4);
        assert_eq!(c.get(2, 2), WHITE);
        assert_eq!(c.get(3, 3), WHITE);
    }

    #[test]
    fn arrow_has_a_head_at_the_tip() {
        let mut c = Canvas::new(30, 30, BLACK);
        c.arrow(2.5, 15.5, 25.5, 15.5, 1.0, 6.0, WHITE, 1.0);
        // Shaft along row 15; head sides reach rows above and below the tip.
        assert_eq!(c.get(10, 15), WHITE);
        let lit = |x: usize, y: usize| c.get(x, y) != BLACK;
        assert!(lit(22, 13) && lit(22, 17), "head sides drawn");
        assert!(!lit(10, 12) && !lit(10, 18), "nothing beside the shaft");
    }

    #[test]
    fn rect_outline_and_fill() {
        let mut c = Canvas::new(6, 6, BLACK);
        c.rect(Rect::new(1, 1, 4, 4), WHITE);
        assert_eq!(c.get(1, 1), WHITE);
        assert_eq!(c.get(4, 4), WHITE);
        assert_eq!(c.get(4, 1), WHITE);
        assert_eq!(c.get(2, 2), BLACK, "outline only");
        c.fill_rect(Rect::new(2, 2, 2, 2), RED);
        assert_eq!(c.get(3, 3), RED);
        assert_eq!(c.get(4, 3), WHITE);
    }

    #[test]
    fn text_draws_the_glyph_bits() {
        let mut c = Canvas::new(20, 10, BLACK);
        let w = c.text(1, 1, "1", WHITE, 1);
        assert_eq!(w, 5);
        // '1': rows 04 0C 04 04 04 04 0E → column 2 lit on every row.
        for row in 0..7 {
            assert_eq!(c.get(1 + 2, 1 + row), WHITE, "row {row}");
        }
        assert_eq!(c.get(1 + 1, 1 + 1), WHITE, "the flag of the 1");
        assert_eq!(c.get(1 + 1, 1 + 3), BLACK);
        assert_eq!(c.get(1, 1 + 6), BLACK, "base is columns 1..=3");
        assert_eq!(c.get(1 + 1, 1 + 6), WHITE);
        // Scaled text: each font pixel becomes a 2×2 block.
        let mut c2 = Canvas::new(20, 20, BLACK);
        c2.text(0, 0, "1", WHITE, 2);
        assert_eq!(c2.get(4, 0), WHITE);
        assert_eq!(c2.get(5, 1), WHITE);
        assert_eq!(c2.get(3, 0), BLACK);
    }

    #[test]
    fn text_size_counts_lines_and_chars() {
        assert_eq!(text_size("ab", 1), (11, 9));
        assert_eq!(text_size("ab\nxyz", 2), (34, 38));
        assert_eq!(text_size("", 1), (0, 9));
    }

    #[test]
    fn every_listed_character_has_a_glyph() {
        let boxed = glyph('\u{1}');
        let chars = ('0'..='9')
            .chain('A'..='Z')
            .chain('a'..='z')
            .chain(".,:;-+=()[]/%!?_<>'\"*#|×·θ∂→−".chars());
        for ch in chars {
            assert_ne!(glyph(ch), boxed, "{ch:?} has no glyph");
            assert!(glyph(ch).iter().all(|&r| r < 32), "{ch:?} wider than 5");
            assert!(
                glyph(ch)[..7].iter().any(|&r| r != 0),
                "{ch:?} empty above the baseline"
            );
        }
        assert_eq!(glyph(' '), [0; 9]);
        // Descenders go below the baseline, capitals do not.
        assert_ne!(glyph('g')[7..], [0, 0]);
        assert_eq!(glyph('G')[7..], [0, 0]);
    }

    #[test]
    fn png_round_trips_through_the_decoder() {
        let mut c = Canvas::new(13, 7, BACKGROUND);
        c.put(0, 0, RED);
        c.put(12, 6, GREEN);
        c.text(1, 0, "Ab", YELLOW, 1);
        let dir = std::env::temp_dir().join(format!("warpgrad-draw-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.png");
        c.save_png(&path).unwrap();
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "t.png")
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
        let dec = png::Decoder::new(fs::File::open(&path).unwrap());
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (13, 7));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(&buf[..info.buffer_size()], c.pixels());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_png_reports_a_bad_path_in_one_line() {
        let c = Canvas::new(2, 2, BLACK);
        let path = Path::new("/nonexistent-warpgrad-dir/x.png");
        let e = c.save_png(path).unwrap_err().to_string();
        assert!(e.contains("/nonexistent-warpgrad-dir/x.png"), "{e}");
        assert!(!e.contains('\n'));
    }
}
