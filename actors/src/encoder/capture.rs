//! A frame source: the root window of an X display (Xvfb in tests and benchmarks), read with
//! x11rb's `GetImage` in ZPixmap format. A 24-bit display with 32 bits per pixel in LSB-first byte
//! order gives BGRX, the layout xpra servers send as `rgb24` with `rgb_format="BGRX"`.

use bytes::Bytes;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, ImageOrder, Window};
use x11rb::rust_connection::RustConnection;
use xgate_messages::encode::{PixelFormat, RawFrame};

use super::error::CaptureError;

/// A connection to an X display that captures its root window.
pub struct X11Capture {
    /// The X connection.
    conn: RustConnection,
    /// The root window of the default screen.
    root: Window,
    /// Screen width in pixels.
    width: u16,
    /// Screen height in pixels.
    height: u16,
}

impl X11Capture {
    /// Connects to `display` (`":99"`; `None`: `$DISPLAY`) and checks that its pixels are BGRX.
    pub fn connect(display: Option<&str>) -> Result<X11Capture, CaptureError> {
        let (conn, screen_num) =
            x11rb::connect(display).map_err(|source| CaptureError::Connect {
                display: display
                    .map(str::to_string)
                    .or_else(|| std::env::var("DISPLAY").ok())
                    .unwrap_or_default(),
                source,
            })?;
        let setup = conn.setup();
        let screen = setup
            .roots
            .get(screen_num)
            .ok_or_else(|| CaptureError::Unsupported(format!("no screen {screen_num}")))?;
        let depth = screen.root_depth;
        let bpp = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .map(|f| f.bits_per_pixel)
            .unwrap_or(0);
        if depth != 24 || bpp != 32 || setup.image_byte_order != ImageOrder::LSB_FIRST {
            return Err(CaptureError::Unsupported(format!(
                "depth {depth}, {bpp} bits per pixel, byte order {:?} (want 24, 32, LSB first)",
                setup.image_byte_order
            )));
        }
        Ok(X11Capture {
            root: screen.root,
            width: screen.width_in_pixels,
            height: screen.height_in_pixels,
            conn,
        })
    }

    /// The screen size.
    pub fn size(&self) -> (u32, u32) {
        (u32::from(self.width), u32::from(self.height))
    }

    /// Captures the whole screen.
    pub fn capture(&self) -> Result<RawFrame, CaptureError> {
        self.capture_area(0, 0, self.width, self.height)
    }

    /// Captures an area of the screen as a BGRX frame (stride `width * 4`).
    pub fn capture_area(
        &self,
        x: i16,
        y: i16,
        width: u16,
        height: u16,
    ) -> Result<RawFrame, CaptureError> {
        let reply = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, self.root, x, y, width, height, !0)?
            .reply()?;
        let stride = usize::from(width) * 4;
        let need = stride * usize::from(height);
        if reply.data.len() < need {
            return Err(CaptureError::Unsupported(format!(
                "GetImage returned {} bytes for {width}x{height} (want {need})",
                reply.data.len()
            )));
        }
        Ok(RawFrame {
            width: u32::from(width),
            height: u32::from(height),
            stride,
            format: PixelFormat::Bgrx,
            data: Bytes::from(reply.data),
        })
    }
}

impl std::fmt::Debug for X11Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11Capture")
            .field("root", &self.root)
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}
