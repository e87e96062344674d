//! Head-by-head similarity as a small annotated matrix in a diverging colour map.

use super::heatmap::HeatmapLayout;
use super::{
    BAR_WIDTH, ChartError, Style, anchored, cell_span, clear, colormap, draw_colour_bar,
    draw_message, draw_title, label, max_text_width, text_size,
};
use crate::analysis::Matrix;
use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters::element::Rectangle;
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::{Color, FontTransform};

/// What [`draw_similarity`] draws.
#[derive(Debug, Clone, Copy)]
pub struct SimilarityData<'a> {
    /// A square `heads × heads` matrix of values in `-1..=1`.
    pub matrix: &'a Matrix,
    /// One label per head, used on both axes.
    pub labels: &'a [String],
    /// Title above the chart; empty for none.
    pub title: &'a str,
}

/// `value` with two decimals, without a minus sign on values that round to zero.
fn two_decimals(value: f32) -> String {
    if value.abs() < 0.005 {
        "0.00".to_string()
    } else {
        format!("{value:.2}")
    }
}

/// Draws the similarity matrix, each cell with its value, and returns where the cells are.
pub fn draw_similarity<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &SimilarityData,
    style: &Style,
) -> Result<HeatmapLayout, ChartError> {
    clear(area, style)?;
    let top = draw_title(area, data.title, style)?;
    let matrix = data.matrix;
    if matrix.rows == 0 || matrix.cols == 0 {
        draw_message(area, "no heads", style)?;
        return Ok(HeatmapLayout::empty());
    }
    let (width, height) = area.dim_in_pixel();
    let (width, height) = (width as i32, height as i32);
    let font = style.label_font();
    let line_height = text_size(area, "Ag", &font)?.1;
    let row_texts: Vec<String> = (0..matrix.rows).map(|r| label(data.labels, r)).collect();
    let col_texts: Vec<String> = (0..matrix.cols).map(|c| label(data.labels, c)).collect();
    let row_label_width = max_text_width(area, row_texts.iter().cloned(), &font)?;
    let col_label_width = max_text_width(area, col_texts.iter().cloned(), &font)?;
    let ticks = [
        (0.0, "-1".to_string()),
        (0.5, "0".to_string()),
        (1.0, "1".to_string()),
    ];
    let tick_width = max_text_width(area, ticks.iter().map(|(_, t)| t.clone()), &font)?;
    let left = 4 + row_label_width + 6;
    let right = 10 + BAR_WIDTH + 8 + tick_width + 4;

    // Square cells; key labels go below, rotated when they are wider than a cell.
    let fits_across =
        |side: i32| f64::from(col_label_width + 4) <= f64::from(side) / matrix.cols as f64;
    let side_for = |bottom: i32| (width - left - right).min(height - top - bottom).max(0);
    let mut bottom = line_height + 8;
    let mut side = side_for(bottom);
    let horizontal = fits_across(side);
    if !horizontal {
        bottom = col_label_width + 8;
        side = side_for(bottom);
    }
    let layout = HeatmapLayout {
        plot: (left, top, side as u32, side as u32),
        rows: matrix.rows,
        cols: matrix.cols,
    };
    if side == 0 {
        return Ok(layout);
    }

    let value_font = anchored(&font, HPos::Center, VPos::Center);
    let show_values = text_size(area, "-0.00", &font)?.0 + 2 <= side / matrix.cols as i32;
    for row in 0..matrix.rows {
        let (y0, y1) = cell_span(row, matrix.rows, side as u32);
        for col in 0..matrix.cols {
            let (x0, x1) = cell_span(col, matrix.cols, side as u32);
            let value = matrix.get(row, col).unwrap_or(f32::NAN);
            let colour = colormap::diverging(value);
            let corners = [(left + x0, top + y0), (left + x1 - 1, top + y1 - 1)];
            area.draw(&Rectangle::new(corners, colour.filled()))?;
            if show_values {
                let mut text_font = value_font.clone();
                text_font.color = colormap::contrasting_text(colour).to_backend_color();
                let centre = (left + (x0 + x1) / 2, top + (y0 + y1) / 2);
                area.draw_text(&two_decimals(value), &text_font, centre)?;
            }
        }
    }

    let row_font = anchored(&font, HPos::Right, VPos::Center);
    for (row, text) in row_texts.iter().enumerate() {
        if let Some((_, y)) = layout.cell_center(row, 0) {
            area.draw_text(text, &row_font, (left - 6, y))?;
        }
    }
    let col_font = if horizontal {
        anchored(&font, HPos::Center, VPos::Top)
    } else {
        anchored(
            &font.transform(FontTransform::Rotate270),
            HPos::Right,
            VPos::Center,
        )
    };
    for (col, text) in col_texts.iter().enumerate() {
        if let Some((x, _)) = layout.cell_center(0, col) {
            area.draw_text(text, &col_font, (x, top + side + 4))?;
        }
    }

    // The bar maps t in 0..=1 to values -1..=1.
    let bar = (left + side + 10, top, BAR_WIDTH as u32, side as u32);
    draw_colour_bar(
        area,
        bar,
        |t| colormap::diverging(2.0 * t - 1.0),
        &ticks,
        style,
    )?;
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::test_support::svg_text_count;
    use plotters::prelude::IntoDrawingArea;
    use plotters_svg::SVGBackend;

    #[test]
    fn values_labels_and_ticks_are_written() {
        let matrix = Matrix::new(
            3,
            3,
            vec![1.0, 0.25, -0.5, 0.25, 1.0, -0.001, -0.5, -0.001, 1.0],
        )
        .unwrap();
        let labels: Vec<String> = (0..3).map(|h| format!("h{h}")).collect();
        let data = SimilarityData {
            matrix: &matrix,
            labels: &labels,
            title: "head similarity",
        };
        let mut out = String::new();
        let layout = {
            let area = SVGBackend::with_string(&mut out, (320, 240)).into_drawing_area();
            draw_similarity(&area, &data, &Style::light()).unwrap()
        };
        assert_eq!(svg_text_count(&out, "1.00"), 3);
        assert_eq!(svg_text_count(&out, "0.25"), 2);
        assert_eq!(svg_text_count(&out, "-0.50"), 2);
        assert_eq!(svg_text_count(&out, "0.00"), 2);
        for text in ["h0", "h1", "h2", "head similarity", "-1", "0", "1"] {
            assert!(svg_text_count(&out, text) > 0, "missing {text}");
        }
        let (x, y) = layout.cell_center(2, 1).unwrap();
        assert_eq!(layout.cell_at(x, y), Some((2, 1)));
    }

    #[test]
    fn empty_matrix_says_no_heads() {
        let mut out = String::new();
        {
            let area = SVGBackend::with_string(&mut out, (200, 100)).into_drawing_area();
            let data = SimilarityData {
                matrix: &Matrix::zeros(0, 0),
                labels: &[],
                title: "",
            };
            draw_similarity(&area, &data, &Style::dark()).unwrap();
        }
        assert!(svg_text_count(&out, "no heads") > 0);
    }
}
