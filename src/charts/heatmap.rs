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
use plotters::style::{FontTransform, RGBColor};

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

/// `vmax` when it is a positive number, else the largest value when positive, else 1.
pub(crate) fn resolve_vmax(vmax: Option<f32>, data_max: Option<f32>) -> f32 {
    [vmax, data_max]
        .into_iter()
        .flatten()
        .find(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(1.0)
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
    let row_label_width = max_text_width(area, row_texts.iter().cloned(), &font)?.min(width / 4);
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
    let col_label_width = max_text_width(area, col_texts.iter().cloned(), &font)?;
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

    // Query labels, thinned to every k-th row when rows are shorter than a line.
    let row_pitch = f64::from(plot_height) / matrix.rows as f64;
    let row_font = anchored(&font, HPos::Right, VPos::Center);
    for (row, text) in row_texts
        .iter()
        .enumerate()
        .step_by(label_step(row_pitch, line_height + 2))
    {
        if let Some((_, y)) = layout.cell_center(row, 0) {
            area.draw_text(text, &row_font, (left - 6, y))?;
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
    let labels_top = top + plot_height + 4;
    for (col, text) in col_texts
        .iter()
        .enumerate()
        .step_by(label_step(col_pitch, needed))
    {
        if let Some((x, _)) = layout.cell_center(0, col) {
            area.draw_text(text, &col_font, (x, labels_top))?;
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
        let mut out = String::new();
        let data = HeatmapData {
            matrix,
            row_labels: labels,
            col_labels: labels,
            title: "layer 0 · mean",
            vmax: None,
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
        };
        let mut buffer = vec![0u8; 800 * 800 * 3];
        let (backend, log) = Recorder::new(BitMapBackend::with_buffer(&mut buffer, (800, 800)));
        let layout = draw_heatmap(&backend.into_drawing_area(), &data, &Style::light()).unwrap();
        assert_eq!((layout.rows, layout.cols), (n, n));
        let texts = log.borrow().texts.len();
        assert!(texts < 200, "{texts} labels drawn for {n} tokens");
        assert!(log.borrow().texts.iter().any(|t| t == "tok0"));
    }
}
