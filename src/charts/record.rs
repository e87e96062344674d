//! Records what a chart draws, so that the same picture can be written again as SVG.
//!
//! [`Recording`] wraps the backend a chart draws on (the page's canvas) and passes every call
//! through, keeping a copy in a [`DisplayList`]. [`DisplayList::to_svg`] replays those calls on
//! plotters' SVG backend: the lines, shapes and text the chart function drew, as vectors, at
//! the positions the canvas measured. Bitmaps (the cells of heatmaps and colour bars, which
//! are blitted as one image for speed) become one rectangle per run of equal pixels, so a
//! heatmap's cells are one `<rect>` each.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use plotters_backend::text_anchor::Pos;
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontFamily, FontStyle, FontTransform,
};
use plotters_svg::SVGBackend;

/// plotters-svg writes a text of size `s` as `font-size = s / 1.24`.
const SVG_FONT_SHRINK: f64 = 1.24;

/// A stroke or fill as it was drawn: colour and line width.
#[derive(Clone, Copy)]
pub struct Stroke {
    color: BackendColor,
    width: u32,
}

impl Stroke {
    fn of<S: BackendStyle>(style: &S) -> Self {
        Self {
            color: style.color(),
            width: style.stroke_width(),
        }
    }
}

impl BackendStyle for Stroke {
    fn color(&self) -> BackendColor {
        self.color
    }
    fn stroke_width(&self) -> u32 {
        self.width
    }
}

/// A text style as it was drawn.
#[derive(Clone)]
pub struct Font {
    color: BackendColor,
    size: f64,
    family: String,
    style: FontStyle,
    anchor: Pos,
    transform: FontTransform,
}

/// Recorded text carries no font data: it can be written out by a backend that draws text
/// itself (SVG, a canvas), not measured or rasterised by one that asks the style.
#[derive(Debug, Clone)]
pub struct NoGlyphs;

impl std::fmt::Display for NoGlyphs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("recorded text has no font data to measure or rasterise")
    }
}

impl std::error::Error for NoGlyphs {}

impl BackendTextStyle for Font {
    type FontError = NoGlyphs;

    fn color(&self) -> BackendColor {
        self.color
    }
    fn size(&self) -> f64 {
        self.size
    }
    fn transform(&self) -> FontTransform {
        self.transform.clone()
    }
    fn style(&self) -> FontStyle {
        self.style
    }
    fn anchor(&self) -> Pos {
        self.anchor
    }
    fn family(&self) -> FontFamily<'_> {
        FontFamily::from(self.family.as_str())
    }
    fn layout_box(&self, _text: &str) -> Result<((i32, i32), (i32, i32)), NoGlyphs> {
        Err(NoGlyphs)
    }
    fn draw<E, DrawFunc: FnMut(i32, i32, BackendColor) -> Result<(), E>>(
        &self,
        _text: &str,
        _pos: BackendCoord,
        _draw: DrawFunc,
    ) -> Result<Result<(), E>, NoGlyphs> {
        Err(NoGlyphs)
    }
}

/// One drawing call.
#[derive(Clone)]
enum Op {
    Pixel(BackendCoord, BackendColor),
    Line(BackendCoord, BackendCoord, Stroke),
    Rect(BackendCoord, BackendCoord, Stroke, bool),
    Path(Vec<BackendCoord>, Stroke),
    Circle(BackendCoord, u32, Stroke, bool),
    Polygon(Vec<BackendCoord>, Stroke),
    Text(String, Font, BackendCoord),
    /// An RGB image: position, size, pixels.
    Bitmap(BackendCoord, (u32, u32), Vec<u8>),
}

/// Every call one chart made, in order, on an area of `size` pixels.
#[derive(Clone, Default)]
pub struct DisplayList {
    size: (u32, u32),
    ops: Vec<Op>,
}

impl DisplayList {
    /// Width and height of the area drawn on.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// Whether nothing was drawn.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The picture as an SVG document, drawn by plotters' SVG backend.
    pub fn to_svg(&self) -> String {
        let mut out = String::new();
        {
            let mut svg = SVGBackend::with_string(&mut out, self.size);
            // plotters' SVG backend writes `font-size` as the size / 1.24, the canvas backend
            // draws the size itself: scaled back, the text is as large as it was on screen.
            // SVG writing into a String has no failure of its own to report.
            let _ = self.replay_scaled(&mut svg, true, SVG_FONT_SHRINK);
            let _ = svg.present();
        }
        out
    }

    /// Makes the same calls on `backend`. With `vector_bitmaps`, each bitmap is drawn as
    /// filled rectangles, one per block of equal pixels, instead of as an image.
    pub fn replay<DB: DrawingBackend>(
        &self,
        backend: &mut DB,
        vector_bitmaps: bool,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.replay_scaled(backend, vector_bitmaps, 1.0)
    }

    /// [`Self::replay`] with every text's size multiplied by `text_scale`.
    fn replay_scaled<DB: DrawingBackend>(
        &self,
        backend: &mut DB,
        vector_bitmaps: bool,
        text_scale: f64,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        for op in &self.ops {
            match op {
                Op::Pixel(point, color) => backend.draw_pixel(*point, *color)?,
                Op::Line(from, to, stroke) => backend.draw_line(*from, *to, stroke)?,
                Op::Rect(from, to, stroke, fill) => backend.draw_rect(*from, *to, stroke, *fill)?,
                Op::Path(points, stroke) => backend.draw_path(points.iter().copied(), stroke)?,
                Op::Circle(centre, radius, stroke, fill) => {
                    backend.draw_circle(*centre, *radius, stroke, *fill)?
                }
                Op::Polygon(points, stroke) => {
                    backend.fill_polygon(points.iter().copied(), stroke)?
                }
                Op::Text(text, font, pos) if text_scale == 1.0 => {
                    backend.draw_text(text, font, *pos)?
                }
                Op::Text(text, font, pos) => {
                    let scaled = Font {
                        size: font.size * text_scale,
                        ..font.clone()
                    };
                    backend.draw_text(text, &scaled, *pos)?
                }
                Op::Bitmap(pos, size, pixels) if vector_bitmaps => {
                    for (left_top, right_bottom, rgb) in pixel_blocks(*pos, *size, pixels) {
                        let stroke = Stroke {
                            color: BackendColor { alpha: 1.0, rgb },
                            width: 0,
                        };
                        backend.draw_rect(left_top, right_bottom, &stroke, true)?;
                    }
                }
                Op::Bitmap(pos, size, pixels) => backend.blit_bitmap(*pos, *size, pixels)?,
            }
        }
        Ok(())
    }
}

/// A pixel colour.
type Rgb = (u8, u8, u8);

/// Pixels `start..end` of one row, all of one colour.
type Run = (usize, usize, Rgb);

/// An RGB image at `pos` as filled rectangles `(left_top, right_bottom, colour)`, corners
/// exclusive at the bottom right: equal pixels in a row join into a run, and a run repeated
/// exactly on the rows below joins into one rectangle. Every pixel is covered exactly once.
fn pixel_blocks(
    pos: BackendCoord,
    (width, height): (u32, u32),
    pixels: &[u8],
) -> Vec<(BackendCoord, BackendCoord, Rgb)> {
    let (width, height) = (width as usize, height as usize);
    if pixels.len() < width * height * 3 {
        return Vec::new();
    }
    let rgb = |x: usize, y: usize| {
        let at = (y * width + x) * 3;
        (pixels[at], pixels[at + 1], pixels[at + 2])
    };
    let mut blocks = Vec::new();
    // Runs still growing downwards: (start x, end x, colour) → first row.
    let mut open: HashMap<Run, usize> = HashMap::new();
    let close = |run: Run, top: usize, bottom: usize| {
        (
            (pos.0 + run.0 as i32, pos.1 + top as i32),
            (pos.0 + run.1 as i32, pos.1 + bottom as i32),
            run.2,
        )
    };
    for y in 0..height {
        let mut next = HashMap::with_capacity(open.len());
        let mut x = 0;
        while x < width {
            let colour = rgb(x, y);
            let start = x;
            while x < width && rgb(x, y) == colour {
                x += 1;
            }
            let run = (start, x, colour);
            let top = open.remove(&run).unwrap_or(y);
            next.insert(run, top);
        }
        for (run, top) in open.drain() {
            blocks.push(close(run, top, y));
        }
        open = next;
    }
    for (run, top) in open {
        blocks.push(close(run, top, height));
    }
    // A fixed order, so the same picture always gives the same file.
    blocks.sort_by_key(|&((x, y), _, _)| (y, x));
    blocks
}

/// A backend that draws on `inner` and records every call into a shared [`DisplayList`].
pub struct Recording<DB> {
    inner: DB,
    list: Rc<RefCell<DisplayList>>,
}

impl<DB: DrawingBackend> Recording<DB> {
    /// Wraps `inner`; the list fills as the chart draws.
    pub fn new(inner: DB) -> (Self, Rc<RefCell<DisplayList>>) {
        let list = Rc::new(RefCell::new(DisplayList {
            size: inner.get_size(),
            ops: Vec::new(),
        }));
        (
            Self {
                inner,
                list: list.clone(),
            },
            list,
        )
    }

    fn push(&self, op: Op) {
        self.list.borrow_mut().ops.push(op);
    }
}

impl<DB: DrawingBackend> DrawingBackend for Recording<DB> {
    type ErrorType = DB::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.inner.present()
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.push(Op::Pixel(point, color));
        self.inner.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.push(Op::Line(from, to, Stroke::of(style)));
        self.inner.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.push(Op::Rect(upper_left, bottom_right, Stroke::of(style), fill));
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let points: Vec<BackendCoord> = path.into_iter().collect();
        self.push(Op::Path(points.clone(), Stroke::of(style)));
        self.inner.draw_path(points, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.push(Op::Circle(center, radius, Stroke::of(style), fill));
        self.inner.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let points: Vec<BackendCoord> = vert.into_iter().collect();
        self.push(Op::Polygon(points.clone(), Stroke::of(style)));
        self.inner.fill_polygon(points, style)
    }
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let font = Font {
            color: style.color(),
            size: style.size(),
            family: style.family().as_str().to_string(),
            style: style.style(),
            anchor: style.anchor(),
            transform: style.transform(),
        };
        self.push(Op::Text(text.to_string(), font, pos));
        self.inner.draw_text(text, style, pos)
    }
    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<DB::ErrorType>> {
        self.inner.estimate_text_size(text, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.push(Op::Bitmap(pos, size, src.to_vec()));
        self.inner.blit_bitmap(pos, size, src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Matrix;
    use crate::charts::heatmap::{cell_colours, resolve_vmax};
    use crate::charts::test_support::{Recorder, svg_text_count};
    use crate::charts::{HeatmapData, Style, cell_span, draw_heatmap};
    use plotters::prelude::{BitMapBackend, IntoDrawingArea};

    fn heatmap_matrix(n: usize) -> Matrix {
        // Every cell a different weight, so no two cells share a colour.
        let values = (0..n * n).map(|i| i as f32 / (n * n) as f32).collect();
        Matrix::new(n, n, values).unwrap()
    }

    fn draw_recorded<DB: DrawingBackend>(
        backend: DB,
        matrix: &Matrix,
        labels: &[String],
        pinned: Option<usize>,
    ) -> (crate::charts::HeatmapLayout, DisplayList) {
        let (recording, list) = Recording::new(backend);
        let area = recording.into_drawing_area();
        let layout = draw_heatmap(
            &area,
            &HeatmapData {
                matrix,
                row_labels: labels,
                col_labels: labels,
                title: "Layer 0 · head 1",
                vmax: None,
                pinned,
                offset: (0, 0),
            },
            &Style::light(),
        )
        .unwrap();
        area.present().unwrap();
        drop(area);
        let list = list.borrow().clone();
        (layout, list)
    }

    #[test]
    fn replaying_with_vector_cells_gives_the_same_pixels() {
        let (width, height) = (420u32, 380u32);
        let matrix = heatmap_matrix(7);
        let labels: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
        let mut direct = vec![0u8; (width * height * 3) as usize];
        let list = {
            let (recorder, _) =
                Recorder::new(BitMapBackend::with_buffer(&mut direct, (width, height)));
            draw_recorded(recorder, &matrix, &labels, Some(2)).1
        };
        assert!(list.ops.iter().any(|op| matches!(op, Op::Bitmap(..))));
        let mut replayed = vec![0u8; (width * height * 3) as usize];
        {
            let (mut recorder, _) =
                Recorder::new(BitMapBackend::with_buffer(&mut replayed, (width, height)));
            list.replay(&mut recorder, true).unwrap();
            recorder.present().unwrap();
        }
        let differing = direct
            .chunks(3)
            .zip(replayed.chunks(3))
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, 0, "pixels that differ after the vector replay");
    }

    #[test]
    fn the_svg_has_one_rect_per_cell_and_every_label_as_text() {
        let n = 6;
        let matrix = heatmap_matrix(n);
        let labels: Vec<String> = (0..n).map(|i| format!("tok{i}")).collect();
        let mut sink = String::new();
        let (layout, list) = draw_recorded(
            SVGBackend::with_string(&mut sink, (500, 460)),
            &matrix,
            &labels,
            None,
        );
        let svg = list.to_svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(
            svg.contains(r#"width="500" height="460""#),
            "{}",
            &svg[..200]
        );
        for label in &labels {
            // Each token labels a row and a column.
            assert_eq!(svg_text_count(&svg, label), 2, "{label}");
        }
        assert_eq!(svg_text_count(&svg, "Layer 0 · head 1"), 1);
        let colours = cell_colours(&matrix, resolve_vmax(None, matrix.max()));
        let (x, y, width, height) = layout.plot;
        for row in 0..n {
            for col in 0..n {
                let rgb = colours[row * n + col];
                let (left, right) = cell_span(col, n, width);
                let (top, bottom) = cell_span(row, n, height);
                let rect = format!(
                    r##"<rect x="{}" y="{}" width="{}" height="{}" opacity="1" fill="#{:02X}{:02X}{:02X}""##,
                    x + left,
                    y + top,
                    right - left,
                    bottom - top,
                    rgb.0,
                    rgb.1,
                    rgb.2
                );
                assert_eq!(svg.matches(&rect).count(), 1, "cell {row},{col}: {rect}");
            }
        }
        // No image and no per-pixel rectangles: the file stays small.
        assert!(!svg.contains("<image"));
        assert!(svg.len() < 40_000, "{} bytes", svg.len());
    }

    #[test]
    fn pixel_blocks_cover_every_pixel_once() {
        let (width, height) = (5u32, 4u32);
        let colours = [(1u8, 2u8, 3u8), (9, 9, 9)];
        let pattern = [0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0];
        let pixels: Vec<u8> = pattern
            .iter()
            .flat_map(|&i| [colours[i].0, colours[i].1, colours[i].2])
            .collect();
        let blocks = pixel_blocks((10, 20), (width, height), &pixels);
        let mut covered = vec![0; (width * height) as usize];
        for ((left, top), (right, bottom), rgb) in &blocks {
            for y in *top..*bottom {
                for x in *left..*right {
                    let index = ((y - 20) * width as i32 + (x - 10)) as usize;
                    covered[index] += 1;
                    assert_eq!(colours[pattern[index]], *rgb);
                }
            }
        }
        assert!(covered.iter().all(|&count| count == 1), "{covered:?}");
        // Rows 0 and 1 share their three runs, row 2 is one run, row 3 has three again.
        assert_eq!(blocks.len(), 7, "{blocks:?}");
    }
}
