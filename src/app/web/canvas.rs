//! A plotters backend for an HTML canvas that blits a bitmap with one `putImageData`.
//!
//! plotters-canvas draws a bitmap pixel by pixel (one `fillRect` each); a 512×512 attention
//! map would be 262,144 calls. This wrapper delegates everything else to it.

use plotters::prelude::DrawingBackend;
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};
use plotters_canvas::CanvasBackend;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageData};

thread_local! {
    /// The RGBA pixels of the last blit, reused by the next.
    static RGBA: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A drawing error on the page's canvas, in words.
#[derive(Debug)]
pub struct CanvasError(String);

impl std::fmt::Display for CanvasError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "canvas: {}", self.0)
    }
}

impl std::error::Error for CanvasError {}

/// plotters-canvas with a fast `blit_bitmap`.
pub struct CanvasDrawing {
    inner: CanvasBackend,
    context: CanvasRenderingContext2d,
}

impl CanvasDrawing {
    /// Wraps `canvas`; `None` when it has no 2D context.
    pub fn new(canvas: &HtmlCanvasElement) -> Option<Self> {
        let context = canvas
            .get_context("2d")
            .ok()??
            .dyn_into::<CanvasRenderingContext2d>()
            .ok()?;
        let inner = CanvasBackend::with_canvas_object(canvas.clone())?;
        Some(Self { inner, context })
    }
}

fn convert<E: std::error::Error + Send + Sync>(
    error: DrawingErrorKind<E>,
) -> DrawingErrorKind<CanvasError> {
    match error {
        DrawingErrorKind::DrawingError(inner) => {
            DrawingErrorKind::DrawingError(CanvasError(inner.to_string()))
        }
        DrawingErrorKind::FontError(inner) => DrawingErrorKind::FontError(inner),
    }
}

impl DrawingBackend for CanvasDrawing {
    type ErrorType = CanvasError;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<CanvasError>> {
        self.inner.ensure_prepared().map_err(convert)
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<CanvasError>> {
        self.inner.present().map_err(convert)
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<CanvasError>> {
        self.inner.draw_pixel(point, color).map_err(convert)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<CanvasError>> {
        self.inner.draw_line(from, to, style).map_err(convert)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<CanvasError>> {
        self.inner
            .draw_rect(upper_left, bottom_right, style, fill)
            .map_err(convert)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<CanvasError>> {
        self.inner.draw_path(path, style).map_err(convert)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<CanvasError>> {
        self.inner
            .draw_circle(center, radius, style, fill)
            .map_err(convert)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vertices: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<CanvasError>> {
        self.inner.fill_polygon(vertices, style).map_err(convert)
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<CanvasError>> {
        self.inner.draw_text(text, style, pos).map_err(convert)
    }

    fn estimate_text_size<T: BackendTextStyle>(
        &self,
        text: &str,
        style: &T,
    ) -> Result<(u32, u32), DrawingErrorKind<CanvasError>> {
        // Measure with the canvas itself: the naive font plotters falls back to guesses widths.
        let font = format!("{}px {}", style.size(), style.family().as_str());
        self.context.set_font(&font);
        let width = self
            .context
            .measure_text(text)
            .map(|metrics| metrics.width())
            .unwrap_or(style.size() * 0.6 * text.chars().count() as f64);
        Ok((width.ceil() as u32, style.size().ceil() as u32))
    }

    fn blit_bitmap(
        &mut self,
        (x, y): BackendCoord,
        (width, height): (u32, u32),
        rgb: &[u8],
    ) -> Result<(), DrawingErrorKind<CanvasError>> {
        // plotters hands over RGB; ImageData wants RGBA: one copy, into a buffer every blit
        // reuses (it grows to the largest canvas and stays).
        let image = RGBA
            .with(|buffer| {
                let mut rgba = buffer.borrow_mut();
                rgba.clear();
                rgba.reserve(width as usize * height as usize * 4);
                for pixel in rgb.chunks_exact(3) {
                    rgba.extend_from_slice(pixel);
                    rgba.push(255);
                }
                ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), width, height)
            })
            .map_err(|e| DrawingErrorKind::DrawingError(CanvasError(format!("{e:?}"))))?;
        self.context
            .put_image_data(&image, f64::from(x), f64::from(y))
            .map_err(|e| DrawingErrorKind::DrawingError(CanvasError(format!("{e:?}"))))
    }
}

/// Sets the height `canvas` has on the page, in CSS pixels (its width stays), for charts whose
/// height follows their data; [`fit_to_pixel_ratio`] scales it at the next draw.
pub fn set_css_height(canvas: &HtmlCanvasElement, height: u32) {
    let width = canvas
        .get_attribute("data-css-size")
        .and_then(|size| {
            size.split_once(' ')
                .and_then(|(w, _)| w.parse::<u32>().ok())
        })
        .unwrap_or_else(|| canvas.width());
    let _ = canvas.set_attribute("data-css-size", &format!("{width} {height}"));
}

/// Gives `canvas` one backing pixel per device pixel: its declared `width` × `height` (kept in
/// `data-css-size` the first time) stay its size on the page, in CSS pixels, and the backing
/// store is that times `devicePixelRatio`, so that charts are sharp on HiDPI and 4K screens.
pub fn fit_to_pixel_ratio(canvas: &HtmlCanvasElement) {
    let declared = canvas
        .get_attribute("data-css-size")
        .and_then(|size| {
            let (width, height) = size.split_once(' ')?;
            Some((width.parse::<u32>().ok()?, height.parse::<u32>().ok()?))
        })
        .unwrap_or_else(|| {
            let size = (canvas.width(), canvas.height());
            let _ = canvas.set_attribute("data-css-size", &format!("{} {}", size.0, size.1));
            size
        });
    let ratio = super::pixel_ratio();
    let scaled = |css: u32| (f64::from(css) * ratio).round() as u32;
    let (width, height) = (scaled(declared.0), scaled(declared.1));
    if canvas.width() != width || canvas.height() != height {
        canvas.set_width(width);
        canvas.set_height(height);
    }
    if ratio != 1.0 || canvas.has_attribute("style") {
        let _ = canvas.set_attribute("style", &format!("width: {}px", declared.0));
    }
}
