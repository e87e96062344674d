//! Charts drawn with plotters on any `DrawingBackend`: heatmaps, head grids, similarity and flow.

pub mod activations;
pub mod colormap;
pub mod diagnostics;
pub mod flow;
pub mod gradients;
pub mod head_grid;
pub mod heatmap;
pub mod model_view;
pub mod record;
pub mod similarity;
pub mod style;
pub mod ticks;
pub mod training;

pub use activations::{ActivationGridLayout, draw_activation_grid, draw_dead_share, grid_rows};
pub use diagnostics::draw_flops_over_length;
pub use flow::{FlowData, draw_flow};
pub use gradients::{
    GradientHeatmapData, GradientHeatmapLayout, GradientPanelsData, GradientPanelsLayout,
    draw_gradient_heatmap, draw_gradient_panels, symlog, symlog_inverse,
};
pub use head_grid::{HeadGridData, HeadGridLayout, draw_head_grid};
pub use heatmap::{HeatmapData, HeatmapLayout, draw_heatmap, draw_minimap};
pub use model_view::{ModelViewData, ModelViewLayout, draw_model_view};
pub use record::{DisplayList, Recording};
pub use similarity::{SimilarityData, draw_similarity};
pub use style::Style;
pub use training::{PanelData, PanelLayout, Scale, Series, draw_monitor, draw_panel};

use plotters::coord::Shift;
use plotters::drawing::{DrawingArea, DrawingAreaErrorKind};
use plotters::element::{BitMapElement, PathElement, Rectangle};
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, RGBColor, TextStyle};

/// A chart could not be drawn; the message says why in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartError(pub String);

impl std::fmt::Display for ChartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "could not draw the chart: {}", self.0)
    }
}

impl std::error::Error for ChartError {}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(error: DrawingAreaErrorKind<E>) -> Self {
        Self(error.to_string())
    }
}

/// A rectangle in drawing-area pixels: left, top, width, height.
pub type PixelRect = (i32, i32, u32, u32);

/// Labels longer than this many characters are cut and end in an ellipsis.
const MAX_LABEL_CHARS: usize = 12;

/// Width of colour bars in pixels.
const BAR_WIDTH: i32 = 12;

/// The label of item `index`, cut to [`MAX_LABEL_CHARS`], or the index when there is no label.
fn label(labels: &[String], index: usize) -> String {
    let Some(text) = labels.get(index) else {
        return index.to_string();
    };
    if text.chars().count() <= MAX_LABEL_CHARS {
        return text.clone();
    }
    let mut cut: String = text.chars().take(MAX_LABEL_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// `style` anchored at the given horizontal and vertical position.
fn anchored(style: &TextStyle<'static>, h_pos: HPos, v_pos: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h_pos, v_pos))
}

/// Size of `text` in pixels as the backend would draw it.
fn text_size<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    font: &TextStyle,
) -> Result<(i32, i32), ChartError> {
    let (width, height) = area.estimate_text_size(text, font)?;
    Ok((width as i32, height as i32))
}

/// Widest of `texts` in pixels (0 when there are none).
fn max_text_width<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    texts: impl IntoIterator<Item = String>,
    font: &TextStyle,
) -> Result<i32, ChartError> {
    let mut widest = 0;
    for text in texts {
        widest = widest.max(text_size(area, &text, font)?.0);
    }
    Ok(widest)
}

/// Draws `title` centred at the top and returns the first free row below it.
fn draw_title<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    style: &Style,
) -> Result<i32, ChartError> {
    if title.is_empty() {
        return Ok(4);
    }
    let font = anchored(&style.title_font(), HPos::Center, VPos::Top);
    let (_, height) = text_size(area, title, &font)?;
    area.draw_text(title, &font, (area.dim_in_pixel().0 as i32 / 2, 4))?;
    Ok(height + 12)
}

/// Draws `message` centred in the area, for charts with nothing to show.
fn draw_message<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    message: &str,
    style: &Style,
) -> Result<(), ChartError> {
    let (width, height) = area.dim_in_pixel();
    let font = anchored(&style.caption_font(), HPos::Center, VPos::Center);
    area.draw_text(message, &font, (width as i32 / 2, height as i32 / 2))?;
    Ok(())
}

/// Every how many items a label fits, when items are `pitch` pixels apart and a label needs
/// `needed` pixels.
fn label_step(pitch: f64, needed: i32) -> usize {
    if pitch <= 0.0 {
        return usize::MAX;
    }
    (f64::from(needed) / pitch).ceil().max(1.0) as usize
}

/// Index of the cell that pixel `offset` falls in, when `count` cells share `length` pixels.
fn cell_index(offset: i32, count: usize, length: u32) -> Option<usize> {
    let offset = usize::try_from(offset).ok()?;
    let length = length as usize;
    (offset < length).then(|| offset * count / length)
}

/// The pixels `start..end` of cell `index` of `count` sharing `length` pixels, as
/// [`cell_index`] maps them.
fn cell_span(index: usize, count: usize, length: u32) -> (i32, i32) {
    let length = length as usize;
    let edge = |i: usize| i.saturating_mul(length).div_ceil(count.max(1)) as i32;
    (edge(index), edge(index + 1))
}

/// Draws `rows × cols` cells coloured `colours` (row-major) into `rect` as one bitmap blit.
fn blit_cells<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    rect: PixelRect,
    rows: usize,
    cols: usize,
    colours: &[RGBColor],
) -> Result<(), ChartError> {
    let (x, y, width, height) = rect;
    if width == 0 || height == 0 || rows == 0 || cols == 0 || colours.len() != rows * cols {
        return Ok(());
    }
    // Each pixel column maps to one matrix column; compute that once per image.
    let col_of_pixel: Vec<usize> = (0..width as usize)
        .map(|px| px * cols / width as usize)
        .collect();
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for py in 0..height as usize {
        let row = &colours[py * rows / height as usize * cols..][..cols];
        for &col in &col_of_pixel {
            let RGBColor(r, g, b) = row[col];
            pixels.extend_from_slice(&[r, g, b]);
        }
    }
    let Some(image) = BitMapElement::with_owned_buffer((x, y), (width, height), pixels) else {
        return Err(ChartError(
            "the image buffer does not match its size".into(),
        ));
    };
    area.draw(&image)?;
    Ok(())
}

/// Draws a vertical colour bar in `rect`, `colour(t)` for `t` from 0 (bottom) to 1 (top),
/// with a labelled tick at each `(t, text)`.
fn draw_colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    rect: PixelRect,
    colour: impl Fn(f32) -> RGBColor,
    ticks: &[(f32, String)],
    style: &Style,
) -> Result<(), ChartError> {
    let (x, y, width, height) = rect;
    if height < 2 {
        return Ok(());
    }
    let colours: Vec<RGBColor> = (0..height)
        .map(|py| colour(1.0 - py as f32 / (height - 1) as f32))
        .collect();
    blit_cells(area, rect, height as usize, 1, &colours)?;
    let (right, bottom) = (x + width as i32, y + height as i32);
    area.draw(&Rectangle::new([(x, y), (right, bottom)], style.grid))?;
    let font = anchored(&style.label_font(), HPos::Left, VPos::Center);
    for (t, text) in ticks {
        let tick_y = y + ((1.0 - t.clamp(0.0, 1.0)) * (height - 1) as f32).round() as i32;
        area.draw(&PathElement::new(
            vec![(right, tick_y), (right + 3, tick_y)],
            style.foreground,
        ))?;
        area.draw_text(text, &font, (right + 5, tick_y))?;
    }
    Ok(())
}

/// Fills the whole area with the background colour.
fn clear<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    style: &Style,
) -> Result<(), ChartError> {
    area.fill(&style.background.to_rgba())?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A backend for tests that counts what a chart draws and records its text.

    use plotters_backend::{
        BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend,
        DrawingErrorKind,
    };
    use std::cell::RefCell;
    use std::rc::Rc;

    /// How many SVG `<text>` elements in `svg` hold exactly `text`.
    pub fn svg_text_count(svg: &str, text: &str) -> usize {
        svg.matches(&format!(">\n{text}\n</text>")).count()
    }

    /// What a [`Recorder`] saw.
    #[derive(Debug, Default)]
    pub struct Log {
        pub texts: Vec<String>,
        pub rects: usize,
        pub blits: usize,
        pub paths: usize,
        pub polygons: usize,
        pub pixels: usize,
    }

    /// Forwards every call to `inner` except text, which it only records, so that bitmap
    /// backends without a font rasteriser can be used.
    pub struct Recorder<DB> {
        pub inner: DB,
        pub log: Rc<RefCell<Log>>,
    }

    impl<DB: DrawingBackend> Recorder<DB> {
        pub fn new(inner: DB) -> (Self, Rc<RefCell<Log>>) {
            let log = Rc::new(RefCell::new(Log::default()));
            (
                Self {
                    inner,
                    log: log.clone(),
                },
                log,
            )
        }
    }

    impl<DB: DrawingBackend> DrawingBackend for Recorder<DB> {
        type ErrorType = DB::ErrorType;

        fn get_size(&self) -> (u32, u32) {
            self.inner.get_size()
        }
        fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.ensure_prepared()
        }
        fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.present()
        }
        fn draw_pixel(
            &mut self,
            point: BackendCoord,
            color: BackendColor,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.log.borrow_mut().pixels += 1;
            self.inner.draw_pixel(point, color)
        }
        fn draw_rect<S: BackendStyle>(
            &mut self,
            upper_left: BackendCoord,
            bottom_right: BackendCoord,
            style: &S,
            fill: bool,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.log.borrow_mut().rects += 1;
            self.inner.draw_rect(upper_left, bottom_right, style, fill)
        }
        fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            path: I,
            style: &S,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.log.borrow_mut().paths += 1;
            self.inner.draw_path(path, style)
        }
        fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            vert: I,
            style: &S,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.log.borrow_mut().polygons += 1;
            self.inner.fill_polygon(vert, style)
        }
        fn draw_text<S: BackendTextStyle>(
            &mut self,
            text: &str,
            _style: &S,
            _pos: BackendCoord,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.log.borrow_mut().texts.push(text.to_owned());
            Ok(())
        }
        fn blit_bitmap(
            &mut self,
            pos: BackendCoord,
            size: (u32, u32),
            src: &[u8],
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.log.borrow_mut().blits += 1;
            self.inner.blit_bitmap(pos, size, src)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_index_and_span_agree() {
        for (count, length) in [(3, 10), (7, 7), (5, 3), (64, 500)] {
            for index in 0..count {
                let (start, end) = cell_span(index, count, length);
                for px in start..end {
                    assert_eq!(cell_index(px, count, length), Some(index));
                }
            }
            assert_eq!(cell_span(count - 1, count, length).1, length as i32);
            assert_eq!(cell_index(length as i32, count, length), None);
            assert_eq!(cell_index(-1, count, length), None);
        }
    }

    #[test]
    fn labels_are_cut_or_numbered() {
        let labels = vec!["short".to_string(), "a_very_long_token_name".to_string()];
        assert_eq!(label(&labels, 0), "short");
        assert_eq!(label(&labels, 1), "a_very_long…");
        assert_eq!(label(&labels, 5), "5");
        assert_eq!(label_step(10.0, 25), 3);
        assert_eq!(label_step(30.0, 25), 1);
    }
}
