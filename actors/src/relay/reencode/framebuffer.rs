//! One window's picture as the client should see it, in BGRX (4 bytes per pixel): raw rgb draws
//! are composited into it, `scroll` draws move its rows, and the whole of it is what the encoder
//! gets (reference `xpra-video.md` §2.7: a draw is a region, not a frame).

use bytes::Bytes;
use xgate_messages::encode::{PixelFormat, RawFrame};

/// Bytes per framebuffer pixel.
const BPP: usize = 4;

/// Why a draw could not be composited.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompositeError {
    /// The region lies (partly) outside the window.
    #[error("region {0}x{1}+{2}+{3} outside the {4}x{5} window")]
    OutOfBounds(u32, u32, i64, i64, u32, u32),
    /// The pixel data is shorter than rowstride and height say.
    #[error("{got} bytes of pixels for {rows} rows of stride {stride} ({need} needed)")]
    ShortData {
        /// Bytes received.
        got: usize,
        /// Rows in the region.
        rows: u32,
        /// Bytes per row.
        stride: usize,
        /// Bytes needed.
        need: usize,
    },
}

/// A window's framebuffer.
#[derive(Debug, Clone)]
pub struct Framebuffer {
    /// Width in pixels.
    width: u32,
    /// Height in pixels.
    height: u32,
    /// `width * height * 4` bytes, BGRX, rows without padding.
    pixels: Vec<u8>,
}

impl Framebuffer {
    /// A black framebuffer of `width`x`height`.
    pub fn new(width: u32, height: u32) -> Framebuffer {
        Framebuffer {
            width,
            height,
            pixels: vec![0; width as usize * height as usize * BPP],
        }
    }

    /// The size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Changes the size, keeping the overlapping top-left part (a resized window is redrawn by
    /// the server anyway; this only avoids showing garbage meanwhile).
    pub fn resize(&mut self, width: u32, height: u32) {
        if (width, height) == self.size() {
            return;
        }
        let mut next = Framebuffer::new(width, height);
        let row = self.width.min(width) as usize * BPP;
        for y in 0..self.height.min(height) as usize {
            let src = y * self.width as usize * BPP;
            let dst = y * width as usize * BPP;
            next.pixels[dst..dst + row].copy_from_slice(&self.pixels[src..src + row]);
        }
        *self = next;
    }

    fn check_region(&self, x: i64, y: i64, w: u32, h: u32) -> Result<(), CompositeError> {
        let inside = x >= 0
            && y >= 0
            && x + i64::from(w) <= i64::from(self.width)
            && y + i64::from(h) <= i64::from(self.height);
        if inside {
            Ok(())
        } else {
            Err(CompositeError::OutOfBounds(
                w,
                h,
                x,
                y,
                self.width,
                self.height,
            ))
        }
    }

    /// Paints a `w`x`h` region of raw pixels (`format`, `stride` bytes per row) at `x`,`y`.
    pub fn paint(
        &mut self,
        (x, y, w, h): (i64, i64, u32, u32),
        format: PixelFormat,
        stride: usize,
        data: &[u8],
    ) -> Result<(), CompositeError> {
        self.check_region(x, y, w, h)?;
        let bpp = format.bytes_per_pixel();
        let stride = if stride == 0 {
            w as usize * bpp
        } else {
            stride
        };
        let row = w as usize * bpp;
        let need = if h == 0 {
            0
        } else {
            stride * (h as usize - 1) + row
        };
        if data.len() < need || stride < row {
            return Err(CompositeError::ShortData {
                got: data.len(),
                rows: h,
                stride,
                need,
            });
        }
        let fb_stride = self.width as usize * BPP;
        for r in 0..h as usize {
            let src = &data[r * stride..r * stride + row];
            let at = (y as usize + r) * fb_stride + x as usize * BPP;
            let dst = &mut self.pixels[at..at + w as usize * BPP];
            convert_row(format, src, dst);
        }
        Ok(())
    }

    /// Applies one `scroll` entry: the `w`x`h` region at `x`,`y` moves by `dx`,`dy` (what
    /// xpra's client does with a `scroll` draw).
    pub fn scroll(
        &mut self,
        x: i64,
        y: i64,
        w: u32,
        h: u32,
        dx: i64,
        dy: i64,
    ) -> Result<(), CompositeError> {
        self.check_region(x, y, w, h)?;
        self.check_region(x + dx, y + dy, w, h)?;
        let fb_stride = self.width as usize * BPP;
        let row = w as usize * BPP;
        let copy_row = |pixels: &mut Vec<u8>, r: usize| {
            let src = (y as usize + r) * fb_stride + x as usize * BPP;
            let dst = ((y + dy) as usize + r) * fb_stride + (x + dx) as usize * BPP;
            pixels.copy_within(src..src + row, dst);
        };
        // Rows in the order that never reads a row already overwritten.
        if dy > 0 {
            for r in (0..h as usize).rev() {
                copy_row(&mut self.pixels, r);
            }
        } else {
            for r in 0..h as usize {
                copy_row(&mut self.pixels, r);
            }
        }
        Ok(())
    }

    /// The whole picture, as the EncoderPool takes it.
    pub fn frame(&self) -> RawFrame {
        RawFrame {
            width: self.width,
            height: self.height,
            stride: self.width as usize * BPP,
            format: PixelFormat::Bgrx,
            data: Bytes::copy_from_slice(&self.pixels),
        }
    }

    /// The pixels of a region, BGRX without padding (for the rgb edge strips next to an H.264
    /// frame cropped to even sizes).
    pub fn region(&self, x: u32, y: u32, w: u32, h: u32) -> Vec<u8> {
        let fb_stride = self.width as usize * BPP;
        let mut out = Vec::with_capacity(w as usize * h as usize * BPP);
        for r in y..(y + h).min(self.height) {
            let at = r as usize * fb_stride + x as usize * BPP;
            let end = at + (w.min(self.width.saturating_sub(x)) as usize) * BPP;
            out.extend_from_slice(&self.pixels[at..end]);
        }
        out
    }
}

/// Converts one row of `format` pixels into BGRX.
fn convert_row(format: PixelFormat, src: &[u8], dst: &mut [u8]) {
    match format {
        PixelFormat::Bgrx | PixelFormat::Bgra => dst.copy_from_slice(src),
        PixelFormat::Rgbx | PixelFormat::Rgba => {
            for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                d.copy_from_slice(&[s[2], s[1], s[0], s[3]]);
            }
        }
        PixelFormat::Rgb => {
            for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
                d.copy_from_slice(&[s[2], s[1], s[0], 0]);
            }
        }
        PixelFormat::Bgr => {
            for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(3)) {
                d.copy_from_slice(&[s[0], s[1], s[2], 0]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(fb: &Framebuffer, x: u32, y: u32) -> [u8; 4] {
        let d = fb.region(x, y, 1, 1);
        [d[0], d[1], d[2], d[3]]
    }

    #[test]
    fn paints_regions_in_every_format_with_padding() {
        let mut fb = Framebuffer::new(8, 4);
        // Two RGB pixels per row, rows padded to 8 bytes.
        let data = [1, 2, 3, 4, 5, 6, 0xee, 0xee, 7, 8, 9, 10, 11, 12];
        fb.paint((3, 1, 2, 2), PixelFormat::Rgb, 8, &data).unwrap();
        assert_eq!(pixel(&fb, 3, 1), [3, 2, 1, 0]);
        assert_eq!(pixel(&fb, 4, 2), [12, 11, 10, 0]);
        assert_eq!(pixel(&fb, 2, 1), [0, 0, 0, 0]);
        fb.paint((0, 0, 1, 1), PixelFormat::Rgbx, 0, &[1, 2, 3, 4])
            .unwrap();
        assert_eq!(pixel(&fb, 0, 0), [3, 2, 1, 4]);
        fb.paint((7, 3, 1, 1), PixelFormat::Bgrx, 4, &[9, 8, 7, 6])
            .unwrap();
        assert_eq!(pixel(&fb, 7, 3), [9, 8, 7, 6]);
    }

    #[test]
    fn refuses_regions_outside_and_short_data() {
        let mut fb = Framebuffer::new(4, 4);
        assert!(matches!(
            fb.paint((3, 3, 2, 1), PixelFormat::Bgrx, 8, &[0; 8]),
            Err(CompositeError::OutOfBounds(..))
        ));
        assert!(matches!(
            fb.paint((0, 0, 2, 2), PixelFormat::Bgrx, 8, &[0; 12]),
            Err(CompositeError::ShortData { .. })
        ));
    }

    #[test]
    fn scrolls_up_and_down_like_the_client() {
        let mut fb = Framebuffer::new(2, 4);
        for y in 0..4u8 {
            fb.paint((0, i64::from(y), 2, 1), PixelFormat::Bgrx, 8, &[y; 8])
                .unwrap();
        }
        // Rows 1..4 move up by one (a terminal scrolling).
        fb.scroll(0, 1, 2, 3, 0, -1).unwrap();
        let rows: Vec<u8> = (0..4).map(|y| pixel(&fb, 0, y)[0]).collect();
        assert_eq!(rows, vec![1, 2, 3, 3]);
        // Rows 0..3 move down by one.
        fb.scroll(0, 0, 2, 3, 0, 1).unwrap();
        let rows: Vec<u8> = (0..4).map(|y| pixel(&fb, 0, y)[0]).collect();
        assert_eq!(rows, vec![1, 1, 2, 3]);
        assert!(fb.scroll(0, 0, 2, 4, 0, 1).is_err());
    }

    #[test]
    fn resize_keeps_the_overlap_and_frame_is_whole() {
        let mut fb = Framebuffer::new(2, 2);
        fb.paint((1, 1, 1, 1), PixelFormat::Bgrx, 4, &[5, 6, 7, 8])
            .unwrap();
        fb.resize(3, 1);
        assert_eq!(fb.size(), (3, 1));
        assert_eq!(pixel(&fb, 0, 0), [0, 0, 0, 0]);
        fb.resize(4, 4);
        let f = fb.frame();
        assert_eq!((f.width, f.height, f.stride, f.data.len()), (4, 4, 16, 64));
    }
}
