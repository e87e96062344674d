//! One attention map as a heatmap: queries down, keys across, drawn as a single image.

use super::{
    BAR_WIDTH, ChartError, PixelRect, Style, anchored, blit_cells, cell_index, cell_span, clear,
    colormap, draw_colour_bar, draw_message, draw_title, label, label_step, max_text_width,
    text_size,
};
use crate::analysis::Matrix;
use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters::element::Rectangle;
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::{Color, FontTransform, RGBColor, TextStyle};

/// Thickness in pixels of the accent outline around the pinned token's row and column.
pub(crate) const PIN_WIDTH: i32 = 2;

/// What [`draw_heatmap`] draws.
#[derive(Debug, Clone, Copy)]
pub struct HeatmapData<'a> {
    /// The map; rows are queries and columns are keys.
    pub matrix: &'a Matrix,
    /// One label per row (query tokens), shown on the y axis.
    pub row_labels: &'a [String],
    /// One label per column (key tokens), shown on the x axis.
    pub col_labels: &'a [String],
    /// Title above the chart; empty for none.
    pub title: &'a str,
    /// Value drawn in the top colour; `None` uses the matrix maximum. The bottom colour is 0.
    pub vmax: Option<f32>,
    /// The selected token: its row (as query) and column (as key) are outlined in the accent
    /// colour and its labels drawn bold in the accent colour. Out-of-range indices are ignored.
    /// It counts from the full map's first token, as `offset` does.
    pub pinned: Option<usize>,
    /// Where `matrix` sits in the full map, `(first row, first column)`: `(0, 0)` unless the view
    /// is zoomed into a window of it. The labels are the window's own.
    pub offset: (usize, usize),
}

/// Where [`draw_heatmap`] put the cells, for hit-testing the pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeatmapLayout {
    /// The cell image in area pixels.
    pub plot: PixelRect,
    /// Number of rows drawn (0 when the matrix was empty).
    pub rows: usize,
    /// Number of columns drawn.
    pub cols: usize,
}

impl HeatmapLayout {
    /// A layout with no cells, which no pixel hits.
    pub fn empty() -> Self {
        Self {
            plot: (0, 0, 0, 0),
            rows: 0,
            cols: 0,
        }
    }

    /// The `(row, col)` of the cell under area pixel `(px, py)`, if any.
    pub fn cell_at(&self, px: i32, py: i32) -> Option<(usize, usize)> {
        let (x, y, width, height) = self.plot;
        if self.rows == 0 || self.cols == 0 {
            return None;
        }
        let row = cell_index(py - y, self.rows, height)?;
        let col = cell_index(px - x, self.cols, width)?;
        Some((row, col))
    }

    /// The area pixel at the middle of cell `(row, col)`; `None` when out of range or when the
    /// cell is narrower than a pixel and was not drawn.
    pub fn cell_center(&self, row: usize, col: usize) -> Option<(i32, i32)> {
        let (x, y, width, height) = self.plot;
        if row >= self.rows || col >= self.cols {
            return None;
        }
        let (left, right) = cell_span(col, self.cols, width);
        let (top, bottom) = cell_span(row, self.rows, height);
        if left >= right || top >= bottom {
            return None;
        }
        Some((x + (left + right - 1) / 2, y + (top + bottom - 1) / 2))
    }
}

/// The colour of every cell of `matrix` (row-major), with `vmax` in the top colour.
pub(crate) fn cell_colours(matrix: &Matrix, vmax: f32) -> Vec<RGBColor> {
    matrix
        .values
        .iter()
        .map(|&v| colormap::sequential(v / vmax))
        .collect()
}

/// The pixel rectangles `(left, top, right, bottom)`, right and bottom exclusive, of row
/// `pinned` and column `pinned` of `layout`; a row or column out of range is left out.
pub(crate) fn pinned_bands(layout: &HeatmapLayout, pinned: Option<usize>) -> Vec<[i32; 4]> {
    pinned_cross(layout, pinned, pinned)
}

/// [`pinned_bands`] of row `row` and column `col`, which differ in a zoomed window.
pub(crate) fn pinned_cross(
    layout: &HeatmapLayout,
    row: Option<usize>,
    col: Option<usize>,
) -> Vec<[i32; 4]> {
    let (x, y, width, height) = layout.plot;
    if width == 0 || height == 0 {
        return Vec::new();
    }
    let (right, bottom) = (x + width as i32, y + height as i32);
    let mut bands = Vec::with_capacity(2);
    if let Some(index) = row.filter(|&index| index < layout.rows) {
        let (start, end) = cell_span(index, layout.rows, height);
        bands.push([x, y + start, right, y + end]);
    }
    if let Some(index) = col.filter(|&index| index < layout.cols) {
        let (start, end) = cell_span(index, layout.cols, width);
        bands.push([x + start, y, x + end, bottom]);
    }
    bands
}

/// Fills a ring `thickness` pixels wide just outside `band` (right and bottom exclusive).
pub(crate) fn fill_ring<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    [left, top, right, bottom]: [i32; 4],
    thickness: i32,
    colour: RGBColor,
) -> Result<(), ChartError> {
    let (outer_left, outer_right) = (left - thickness, right + thickness);
    // Filled rectangles cover their upper left corner up to, not including, the bottom right.
    let bars = [
        [(outer_left, top - thickness), (outer_right, top)],
        [(outer_left, bottom), (outer_right, bottom + thickness)],
        [(outer_left, top), (left, bottom)],
        [(right, top), (outer_right, bottom)],
    ];
    for [a, b] in bars {
        if a.0 < b.0 && a.1 < b.1 {
            area.draw(&Rectangle::new([a, b], colour.filled()))?;
        }
    }
    Ok(())
}

/// Outlines row and column `pinned` of the cells at `layout` across the whole plot: an accent
/// ring [`PIN_WIDTH`] pixels wide just outside each, with a one-pixel halo in the background
/// colour so that it stands out on every cell colour. `None` or an index out of range draws
/// nothing.
pub(crate) fn draw_pinned_outline<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    layout: &HeatmapLayout,
    pinned: Option<usize>,
    style: &Style,
) -> Result<(), ChartError> {
    draw_pinned_cross(area, &pinned_bands(layout, pinned), style)
}

/// Draws the outlines of `bands` ([`pinned_cross`]).
fn draw_pinned_cross<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    bands: &[[i32; 4]],
    style: &Style,
) -> Result<(), ChartError> {
    // Both halos first, so that neither covers the other's accent where they cross.
    for &band in bands {
        fill_ring(area, band, PIN_WIDTH + 1, style.background)?;
    }
    for &band in bands {
        fill_ring(area, band, PIN_WIDTH, style.accent)?;
    }
    Ok(())
}

/// The font of the pinned token's labels: like [`Style::label_font`], bold, in the accent
/// colour, anchored like `like`.
pub(crate) fn pinned_label_font(style: &Style, like: &TextStyle<'static>) -> TextStyle<'static> {
    style
        .text_style(style.font_size.saturating_sub(1).max(8), style.accent, true)
        .transform(like.font.get_transform())
        .pos(like.pos)
}

/// The indices of `0..count` that get a label when every `step`-th one fits. A pinned index in
/// range always gets one, drawn last, and the others closer than `step` to it are left out so
/// that nothing overlaps it; with no pinned index this is every `step`-th index.
pub(crate) fn labelled_indices(count: usize, step: usize, pinned: Option<usize>) -> Vec<usize> {
    let pinned = pinned.filter(|&p| p < count);
    (0..count)
        .step_by(step.max(1))
        .filter(|&i| pinned.is_none_or(|p| i.abs_diff(p) >= step))
        .chain(pinned)
        .collect()
}

/// `vmax` when it is a positive number, else the largest value when positive, else 1.
pub(crate) fn resolve_vmax(vmax: Option<f32>, data_max: Option<f32>) -> f32 {
    [vmax, data_max]
        .into_iter()
        .flatten()
        .find(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(1.0)
}

/// How many of the longest labels (by characters) are measured: measuring all 1,024 labels of
/// a long text on every redraw costs more than drawing the cells.
const MEASURED_LABELS: usize = 8;

/// The width of the widest of `labels`, measuring only the [`MEASURED_LABELS`] longest by
/// characters (labels are cut to 12 characters, so the widest is among the longest).
fn widest_label<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: &[String],
    font: &TextStyle,
) -> Result<i32, ChartError> {
    let mut longest: Vec<&String> = labels.iter().collect();
    longest.sort_by_key(|label| std::cmp::Reverse(label.chars().count()));
    longest.truncate(MEASURED_LABELS);
    max_text_width(area, longest.into_iter().cloned(), font)
}

/// Draws a labelled heatmap of `data.matrix` with a colour bar and returns where the cells are.
pub fn draw_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &HeatmapData,
    style: &Style,
) -> Result<HeatmapLayout, ChartError> {
    clear(area, style)?;
    let top = draw_title(area, data.title, style)?;
    let matrix = data.matrix;
    if matrix.rows == 0 || matrix.cols == 0 {
        draw_message(area, "no tokens", style)?;
        return Ok(HeatmapLayout::empty());
    }
    let (width, height) = area.dim_in_pixel();
    let (width, height) = (width as i32, height as i32);
    let font = style.label_font();
    let caption_font = style.caption_font();
    let line_height = text_size(area, "Ag", &font)?.1;
    let caption_band = line_height + 6;

    // Left: rotated caption, then right-aligned query labels.
    let row_texts: Vec<String> = (0..matrix.rows)
        .map(|r| label(data.row_labels, r))
        .collect();
    let row_label_width = widest_label(area, &row_texts, &font)?.min(width / 4);
    let left = 4 + caption_band + row_label_width + 6;
    // Right: the colour bar and its tick labels.
    let vmax = resolve_vmax(data.vmax, matrix.max());
    let ticks = [(1.0, format!("{vmax:.2}")), (0.0, "0".to_string())];
    let tick_width = max_text_width(area, ticks.iter().map(|(_, t)| t.clone()), &font)?;
    let right = 10 + BAR_WIDTH + 8 + tick_width + 4;
    let plot_width = (width - left - right).max(0);

    // Bottom: key labels, horizontal when they fit their column, else rotated; then the caption.
    let col_texts: Vec<String> = (0..matrix.cols)
        .map(|c| label(data.col_labels, c))
        .collect();
    let col_label_width = widest_label(area, &col_texts, &font)?;
    let col_pitch = f64::from(plot_width) / matrix.cols as f64;
    let horizontal = f64::from(col_label_width + 4) <= col_pitch;
    let col_label_extent = if horizontal {
        line_height
    } else {
        col_label_width.min(height / 3)
    };
    let bottom = 4 + col_label_extent + 4 + caption_band;
    let plot_height = (height - top - bottom).max(0);
    let layout = HeatmapLayout {
        plot: (left, top, plot_width as u32, plot_height as u32),
        rows: matrix.rows,
        cols: matrix.cols,
    };
    if plot_width == 0 || plot_height == 0 {
        return Ok(HeatmapLayout {
            plot: (left, top, 0, 0),
            ..layout
        });
    }

    // The cells: one image, one blit.
    blit_cells(
        area,
        layout.plot,
        matrix.rows,
        matrix.cols,
        &cell_colours(matrix, vmax),
    )?;
    let frame = [(left - 1, top - 1), (left + plot_width, top + plot_height)];
    area.draw(&Rectangle::new(frame, style.grid))?;
    // The pinned token's row and column in this window of the map.
    let pinned_row = data.pinned.and_then(|p| p.checked_sub(data.offset.0));
    let pinned_col = data.pinned.and_then(|p| p.checked_sub(data.offset.1));
    draw_pinned_cross(area, &pinned_cross(&layout, pinned_row, pinned_col), style)?;

    // Query labels, thinned to every k-th row when rows are shorter than a line.
    let row_pitch = f64::from(plot_height) / matrix.rows as f64;
    let row_font = anchored(&font, HPos::Right, VPos::Center);
    let pinned_row_font = pinned_label_font(style, &row_font);
    let row_step = label_step(row_pitch, line_height + 2);
    for row in labelled_indices(matrix.rows, row_step, pinned_row) {
        let font = if Some(row) == pinned_row {
            &pinned_row_font
        } else {
            &row_font
        };
        if let Some((_, y)) = layout.cell_center(row, 0) {
            area.draw_text(&row_texts[row], font, (left - 6, y))?;
        }
    }

    // Key labels below the cells.
    let (col_font, needed) = if horizontal {
        (
            anchored(&font, HPos::Center, VPos::Top),
            col_label_width + 4,
        )
    } else {
        let rotated = font.transform(FontTransform::Rotate270);
        (
            anchored(&rotated, HPos::Right, VPos::Center),
            line_height + 2,
        )
    };
    let pinned_col_font = pinned_label_font(style, &col_font);
    let labels_top = top + plot_height + 4;
    for col in labelled_indices(matrix.cols, label_step(col_pitch, needed), pinned_col) {
        let font = if Some(col) == pinned_col {
            &pinned_col_font
        } else {
            &col_font
        };
        if let Some((x, _)) = layout.cell_center(0, col) {
            area.draw_text(&col_texts[col], font, (x, labels_top))?;
        }
    }

    // Axis captions.
    let x_caption = anchored(&caption_font, HPos::Center, VPos::Bottom);
    area.draw_text(
        "key (attended to)",
        &x_caption,
        (left + plot_width / 2, height - 4),
    )?;
    let y_caption = anchored(
        &caption_font.transform(FontTransform::Rotate270),
        HPos::Center,
        VPos::Center,
    );
    let caption_x = 4 + caption_band / 2;
    area.draw_text(
        "query (attending from)",
        &y_caption,
        (caption_x, top + plot_height / 2),
    )?;

    let bar = (
        left + plot_width + 10,
        top,
        BAR_WIDTH as u32,
        plot_height as u32,
    );
    draw_colour_bar(area, bar, colormap::sequential, &ticks, style)?;
    Ok(layout)
}

/// The whole map shrunk to the area, with the window a zoomed heatmap shows outlined:
/// `window` is `(first row, first column, span)` as shares of the map's side.
pub fn draw_minimap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    matrix: &Matrix,
    (row, col, span): (f64, f64, f64),
    style: &Style,
) -> Result<(), ChartError> {
    clear(area, style)?;
    if matrix.is_empty() {
        return Ok(());
    }
    let (width, height) = area.dim_in_pixel();
    let side = width.min(height).saturating_sub(4) as i32;
    let plot = (2, 2, side as u32, side as u32);
    let vmax = resolve_vmax(None, matrix.max());
    blit_cells(
        area,
        plot,
        matrix.rows,
        matrix.cols,
        &cell_colours(matrix, vmax),
    )?;
    let at = |share: f64| 2 + (share * f64::from(side)).round() as i32;
    let frame = [at(col), at(row), at(col + span), at(row + span)];
    fill_ring(area, frame, 2, style.background)?;
    fill_ring(
        area,
        [frame[0] + 1, frame[1] + 1, frame[2] - 1, frame[3] - 1],
        1,
        style.accent,
    )?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod pin_test_support {
    //! Checks of the pinned outline shared by the heatmap and head grid tests.

    use super::{HeatmapLayout, PIN_WIDTH};
    use plotters::style::RGBColor;

    /// The colour of pixel `(x, y)` of an RGB `buffer` `width` pixels wide.
    pub fn pixel(buffer: &[u8], width: u32, (x, y): (i32, i32)) -> RGBColor {
        let i = (y as usize * width as usize + x as usize) * 3;
        RGBColor(buffer[i], buffer[i + 1], buffer[i + 2])
    }

    /// `(left, top, right, bottom)`, right and bottom exclusive, of the pixels of `layout` that
    /// [`HeatmapLayout::cell_at`] maps to row `row` and to column `col`.
    pub fn bands_from_layout(layout: &HeatmapLayout, row: usize, col: usize) -> [[i32; 4]; 2] {
        let (x, y, width, height) = layout.plot;
        let (right, bottom) = (x + width as i32, y + height as i32);
        let ys: Vec<i32> = (y..bottom)
            .filter(|&py| layout.cell_at(x, py).is_some_and(|(r, _)| r == row))
            .collect();
        let xs: Vec<i32> = (x..right)
            .filter(|&px| layout.cell_at(px, y).is_some_and(|(_, c)| c == col))
            .collect();
        let (top, end_y) = (ys[0], ys[ys.len() - 1] + 1);
        let (left, end_x) = (xs[0], xs[xs.len() - 1] + 1);
        [[x, top, right, end_y], [left, y, end_x, bottom]]
    }

    /// Whether `(px, py)` lies in the ring [`PIN_WIDTH`] pixels wide just outside `band`.
    pub fn in_ring([left, top, right, bottom]: [i32; 4], (px, py): (i32, i32)) -> bool {
        let w = PIN_WIDTH;
        let outer = (left - w..right + w).contains(&px) && (top - w..bottom + w).contains(&py);
        let inner = (left..right).contains(&px) && (top..bottom).contains(&py);
        outer && !inner
    }

    /// Asserts that around the cells of `layout`, exactly the pixels in the rings of `bands`
    /// have the colour `accent`.
    pub fn assert_outlined(
        buffer: &[u8],
        width: u32,
        layout: &HeatmapLayout,
        bands: &[[i32; 4]],
        accent: RGBColor,
    ) {
        let (x, y, w, h) = layout.plot;
        let margin = PIN_WIDTH + 2;
        for py in y - margin..y + h as i32 + margin {
            for px in x - margin..x + w as i32 + margin {
                let expected = bands.iter().any(|&band| in_ring(band, (px, py)));
                let actual = pixel(buffer, width, (px, py)) == accent;
                assert_eq!(actual, expected, "pixel ({px}, {py})");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::test_support::Recorder;
    use crate::charts::test_support::svg_text_count;
    use plotters::prelude::{BitMapBackend, IntoDrawingArea};
    use plotters_svg::SVGBackend;

    const WIDTH: u32 = 400;
    const HEIGHT: u32 = 300;

    fn tokens(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("tok{i}")).collect()
    }

    /// A `rows × cols` map whose cell `(r, c)` is `(r + c) / (rows + cols - 2)`, so `(0, 0)` is 0
    /// and the last cell is 1.
    fn ramp(rows: usize, cols: usize) -> Matrix {
        let scale = (rows + cols - 2).max(1) as f32;
        let values = (0..rows * cols)
            .map(|i| (i / cols + i % cols) as f32 / scale)
            .collect();
        Matrix::new(rows, cols, values).unwrap()
    }

    fn svg(matrix: &Matrix, labels: &[String]) -> (String, HeatmapLayout) {
        svg_pinned(matrix, labels, None)
    }

    fn svg_pinned(
        matrix: &Matrix,
        labels: &[String],
        pinned: Option<usize>,
    ) -> (String, HeatmapLayout) {
        let mut out = String::new();
        let data = HeatmapData {
            matrix,
            row_labels: labels,
            col_labels: labels,
            title: "layer 0 · mean",
            vmax: None,
            pinned,
            offset: (0, 0),
        };
        let layout = {
            let area = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
            draw_heatmap(&area, &data, &Style::light()).unwrap()
        };
        (out, layout)
    }

    #[test]
    fn svg_has_labels_title_and_captions() {
        let labels = vec!["the".to_string(), "cat".to_string(), "sat".to_string()];
        let (out, layout) = svg(&ramp(3, 3), &labels);
        for text in [
            "the",
            "cat",
            "sat",
            "layer 0 · mean",
            "key (attended to)",
            "query (attending from)",
        ] {
            assert!(svg_text_count(&out, text) > 0, "missing {text}");
        }
        // Colour bar ticks: 0 and the maximum, 1.
        assert!(svg_text_count(&out, "1.00") > 0 && svg_text_count(&out, "0") > 0);
        assert_eq!((layout.rows, layout.cols), (3, 3));
    }

    #[test]
    fn empty_matrix_says_no_tokens() {
        let (out, layout) = svg(&Matrix::zeros(0, 0), &[]);
        assert!(svg_text_count(&out, "no tokens") > 0);
        assert_eq!(layout, HeatmapLayout::empty());
        assert_eq!(layout.cell_at(10, 10), None);
    }

    #[test]
    fn bitmap_pixels_match_cells() {
        let matrix = ramp(4, 5);
        let labels = tokens(5);
        let data = HeatmapData {
            matrix: &matrix,
            row_labels: &labels,
            col_labels: &labels,
            title: "t",
            vmax: None,
            pinned: None,
            offset: (0, 0),
        };
        let mut buffer = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
        let layout = {
            let (backend, _) =
                Recorder::new(BitMapBackend::with_buffer(&mut buffer, (WIDTH, HEIGHT)));
            draw_heatmap(&backend.into_drawing_area(), &data, &Style::dark()).unwrap()
        };
        let pixel = |(x, y): (i32, i32)| {
            let i = (y as usize * WIDTH as usize + x as usize) * 3;
            RGBColor(buffer[i], buffer[i + 1], buffer[i + 2])
        };
        // The maximum (3, 4) is vmax, so the top colour; (0, 0) is 0, so the bottom colour.
        assert_eq!(
            pixel(layout.cell_center(3, 4).unwrap()),
            colormap::sequential(1.0)
        );
        assert_eq!(
            pixel(layout.cell_center(0, 0).unwrap()),
            colormap::sequential(0.0)
        );
        for row in 0..4 {
            for col in 0..5 {
                let (x, y) = layout.cell_center(row, col).unwrap();
                assert_eq!(layout.cell_at(x, y), Some((row, col)));
            }
        }
        assert_eq!(layout.cell_center(4, 0), None);
        let (x, y, width, height) = layout.plot;
        assert_eq!(layout.cell_at(x - 1, y), None);
        assert_eq!(
            layout.cell_at(x + width as i32, y + height as i32 - 1),
            None
        );
    }

    #[test]
    fn cells_are_one_blit_not_rectangles() {
        let count = |n: usize| {
            let matrix = ramp(n, n);
            let labels = tokens(n);
            let data = HeatmapData {
                matrix: &matrix,
                row_labels: &labels,
                col_labels: &labels,
                title: "",
                vmax: Some(1.0),
                pinned: None,
                offset: (0, 0),
            };
            let mut buffer = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
            let (backend, log) =
                Recorder::new(BitMapBackend::with_buffer(&mut buffer, (WIDTH, HEIGHT)));
            draw_heatmap(&backend.into_drawing_area(), &data, &Style::light()).unwrap();
            let log = log.borrow();
            (log.rects, log.blits, log.pixels)
        };
        let (small_rects, small_blits, _) = count(4);
        let (large_rects, large_blits, large_pixels) = count(64);
        assert_eq!(small_rects, large_rects);
        // One blit for the cells and one for the colour bar, whatever the size.
        assert_eq!((small_blits, large_blits), (2, 2));
        assert_eq!(large_pixels, 0);
    }

    #[test]
    fn large_matrix_thins_labels() {
        let n = 512;
        let matrix = ramp(n, n);
        let labels = tokens(n);
        let data = HeatmapData {
            matrix: &matrix,
            row_labels: &labels,
            col_labels: &labels,
            title: "big",
            vmax: None,
            pinned: None,
            offset: (0, 0),
        };
        let mut buffer = vec![0u8; 800 * 800 * 3];
        let (backend, log) = Recorder::new(BitMapBackend::with_buffer(&mut buffer, (800, 800)));
        let layout = draw_heatmap(&backend.into_drawing_area(), &data, &Style::light()).unwrap();
        assert_eq!((layout.rows, layout.cols), (n, n));
        let texts = log.borrow().texts.len();
        assert!(texts < 200, "{texts} labels drawn for {n} tokens");
        assert!(log.borrow().texts.iter().any(|t| t == "tok0"));
    }

    /// `ramp(rows, cols)` with `pinned`, drawn into a bitmap: its pixels and layout.
    fn bitmap_pinned(
        rows: usize,
        cols: usize,
        pinned: Option<usize>,
        style: &Style,
    ) -> (Vec<u8>, HeatmapLayout) {
        let matrix = ramp(rows, cols);
        let labels = tokens(rows.max(cols));
        let data = HeatmapData {
            matrix: &matrix,
            row_labels: &labels,
            col_labels: &labels,
            title: "t",
            vmax: None,
            pinned,
            offset: (0, 0),
        };
        let mut buffer = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
        let layout = {
            let (backend, _) =
                Recorder::new(BitMapBackend::with_buffer(&mut buffer, (WIDTH, HEIGHT)));
            draw_heatmap(&backend.into_drawing_area(), &data, style).unwrap()
        };
        (buffer, layout)
    }

    fn hex(RGBColor(r, g, b): RGBColor) -> String {
        format!("#{r:02X}{g:02X}{b:02X}")
    }

    /// The opening tags of the SVG `<text>` elements that hold exactly `text`.
    fn text_tags<'s>(svg: &'s str, text: &str) -> Vec<&'s str> {
        svg.match_indices(&format!(">\n{text}\n</text>"))
            .map(|(end, _)| &svg[svg[..end].rfind("<text").unwrap()..end])
            .collect()
    }

    #[test]
    fn pinned_row_and_column_are_outlined_in_the_accent() {
        use super::pin_test_support::{assert_outlined, bands_from_layout, pixel};
        for style in [Style::light(), Style::dark()] {
            let (buffer, layout) = bitmap_pinned(5, 6, Some(2), &style);
            let [row, col] = bands_from_layout(&layout, 2, 2);
            // Exactly the rings just outside row 2 and column 2 are accent, nothing else.
            assert_outlined(&buffer, WIDTH, &layout, &[row, col], style.accent);
            // The row outline runs across the whole plot, the column outline down all of it.
            let (x, y, width, height) = layout.plot;
            let (_, row_y) = layout.cell_center(2, 0).unwrap();
            let (col_x, _) = layout.cell_center(0, 2).unwrap();
            for point in [
                (x - 1, row_y),
                (x + width as i32, row_y),
                (col_x, y - 1),
                (col_x, y + height as i32),
                (layout.cell_center(0, 5).unwrap().0, row[1] - 1),
                (layout.cell_center(0, 5).unwrap().0, row[3]),
                (col[0] - 1, layout.cell_center(4, 0).unwrap().1),
                (col[2], layout.cell_center(4, 0).unwrap().1),
            ] {
                assert_eq!(pixel(&buffer, WIDTH, point), style.accent, "{point:?}");
            }
            // The pinned cells themselves keep their colours.
            let scale = 1.0 / 9.0;
            assert_eq!(
                pixel(&buffer, WIDTH, layout.cell_center(2, 2).unwrap()),
                colormap::sequential(4.0 * scale)
            );
        }
    }

    #[test]
    fn pinned_index_of_only_a_column_outlines_the_column() {
        use super::pin_test_support::{assert_outlined, bands_from_layout};
        let style = Style::light();
        let (buffer, layout) = bitmap_pinned(3, 6, Some(4), &style);
        let [_, col] = bands_from_layout(&layout, 0, 4);
        assert_outlined(&buffer, WIDTH, &layout, &[col], style.accent);
    }

    #[test]
    fn unpinned_or_out_of_range_draws_no_outline() {
        let style = Style::light();
        let (none, layout) = bitmap_pinned(5, 6, None, &style);
        let accent = [style.accent.0, style.accent.1, style.accent.2];
        assert!(!none.chunks(3).any(|p| p == accent));
        for out_of_range in [6, 7, usize::MAX] {
            let (buffer, other) = bitmap_pinned(5, 6, Some(out_of_range), &style);
            assert_eq!(other, layout);
            assert!(buffer == none, "pinned {out_of_range} differs from none");
        }
        let matrix = ramp(3, 3);
        let labels = tokens(3);
        assert_eq!(svg_pinned(&matrix, &labels, Some(3)), svg(&matrix, &labels));
        assert!(!svg(&matrix, &labels).0.contains(&hex(style.accent)));
    }

    #[test]
    fn pinned_labels_are_bold_and_accent() {
        let labels = vec!["the".to_string(), "cat".to_string(), "sat".to_string()];
        let accent = format!("fill=\"{}\"", hex(Style::light().accent));
        let (out, _) = svg_pinned(&ramp(3, 3), &labels, Some(1));
        // "cat" as query (row) and as key (column).
        let tags = text_tags(&out, "cat");
        assert_eq!(tags.len(), 2);
        for tag in tags {
            assert!(
                tag.contains(&accent) && tag.contains("font-weight=\"bold\""),
                "{tag}"
            );
        }
        for text in ["the", "sat"] {
            let tags = text_tags(&out, text);
            assert_eq!(tags.len(), 2);
            for tag in tags {
                assert!(!tag.contains(&accent) && !tag.contains("bold"), "{tag}");
            }
        }
        let (plain, _) = svg(&ramp(3, 3), &labels);
        for tag in text_tags(&plain, "cat") {
            assert!(!tag.contains(&accent) && !tag.contains("bold"), "{tag}");
        }
    }

    #[test]
    fn pinned_label_is_kept_when_labels_thin() {
        let n = 512;
        let matrix = ramp(n, n);
        let labels = tokens(n);
        let draw = |pinned| {
            let data = HeatmapData {
                matrix: &matrix,
                row_labels: &labels,
                col_labels: &labels,
                title: "big",
                vmax: None,
                pinned,
                offset: (0, 0),
            };
            let mut buffer = vec![0u8; 800 * 800 * 3];
            let (backend, log) = Recorder::new(BitMapBackend::with_buffer(&mut buffer, (800, 800)));
            draw_heatmap(&backend.into_drawing_area(), &data, &Style::light()).unwrap();
            log.borrow().texts.clone()
        };
        let plain = draw(None);
        assert!(!plain.iter().any(|t| t == "tok301"));
        let pinned = draw(Some(301));
        assert_eq!(pinned.iter().filter(|t| *t == "tok301").count(), 2);
        assert!(pinned.len() <= plain.len() + 2);
    }

    #[test]
    fn labelled_indices_thin_around_the_pinned_one() {
        assert_eq!(labelled_indices(7, 2, None), vec![0, 2, 4, 6]);
        assert_eq!(labelled_indices(7, 2, Some(3)), vec![0, 6, 3]);
        assert_eq!(labelled_indices(7, 2, Some(4)), vec![0, 2, 6, 4]);
        assert_eq!(labelled_indices(7, 2, Some(7)), vec![0, 2, 4, 6]);
        assert_eq!(labelled_indices(3, 1, Some(1)), vec![0, 2, 1]);
    }
}
