//! Model diagnostics: FLOPs of attention against the linear layers as the sequence grows, and
//! histograms of the weights.
//!
//! The training monitor's [`draw_panel`](super::draw_panel) captions its x axis "step", so the
//! FLOPs chart is a small chart of its own: sequence length on a linear x axis, FLOPs on a log
//! y axis.

use super::gradients::{fit_text, format_number};
use super::{
    ChartError, Style, anchored, cell_span, clear, colormap, draw_message, draw_title, text_size,
};
use crate::analysis::diagnostics::{LengthFlops, SPARSITY_THRESHOLD, TensorStats, format_si};
use plotters::chart::{ChartBuilder, SeriesLabelPosition};
use plotters::coord::Shift;
use plotters::coord::combinators::IntoLogRange;
use plotters::drawing::DrawingArea;
use plotters::element::Rectangle;
use plotters::element::{EmptyElement, PathElement, Text};
use plotters::prelude::DrawingBackend;
use plotters::series::{DashedLineSeries, LineSeries};
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::{Color, RGBColor};

/// Title of the chart.
pub const TITLE: &str = "FLOPs of one forward pass by sequence length";

/// Legend entry of the attention line.
pub const ATTENTION_LABEL: &str = "attention (QK, softmax, AV)";

/// Legend entry of the linear-layer line.
pub const LINEAR_LABEL: &str = "linear layers";

/// Shown when there is nothing to draw.
const NO_DATA: &str = "no FLOPs to show";

/// Blank pixels around the chart inside its area.
const MARGIN: u32 = 6;

/// Blank pixels right of the plot, so that the last x tick label fits.
const RIGHT_MARGIN: u32 = 16;

/// Line colours on a light page: linear layers blue, attention red.
const LIGHT: (RGBColor, RGBColor) = (RGBColor(37, 99, 235), RGBColor(220, 38, 38));

/// Line colours on a dark page: the same hues, lighter.
const DARK: (RGBColor, RGBColor) = (RGBColor(96, 165, 250), RGBColor(248, 113, 113));

/// The colours of the linear and the attention line.
pub fn line_colours(style: &Style) -> (RGBColor, RGBColor) {
    if style.dark { DARK } else { LIGHT }
}

/// The label at the marker where attention overtakes the linear layers.
pub fn overtakes_label(seq: usize) -> String {
    format!("attention overtakes at {seq} tokens")
}

/// The note shown when attention overtakes only beyond the drawn lengths.
pub fn stays_below_note(max_seq: usize, overtakes: usize) -> String {
    format!(
        "attention stays below the linear layers up to {max_seq} tokens; it overtakes at {overtakes}"
    )
}

/// The whole decades around the positive values `lo..=hi`, at least one decade wide.
fn decade_range(lo: f64, hi: f64) -> (f64, f64) {
    let lo = 10f64.powf(lo.log10().floor());
    let mut hi = 10f64.powf(hi.log10().ceil());
    if hi <= lo {
        hi = lo * 10.0;
    }
    (lo, hi)
}

/// Draws attention FLOPs and linear-layer FLOPs against sequence length on a log y axis, with a
/// dashed marker where attention overtakes when that is within `max_seq`, or a note saying where
/// it overtakes when that is beyond.
pub fn draw_flops_over_length<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[LengthFlops],
    overtakes: Option<usize>,
    max_seq: usize,
    style: &Style,
) -> Result<(), ChartError> {
    clear(area, style)?;
    let mut top = draw_title(area, TITLE, style)?;
    let (width, height) = area.dim_in_pixel();

    let drawn: Vec<&LengthFlops> = points
        .iter()
        .filter(|p| p.seq >= 1 && p.seq <= max_seq.max(1))
        .collect();
    let positive = drawn
        .iter()
        .flat_map(|p| [p.attention, p.linear])
        .filter(|&flops| flops > 0);
    let (Some(lo), Some(hi)) = (positive.clone().min(), positive.max()) else {
        draw_message(area, NO_DATA, style)?;
        return Ok(());
    };

    let caption_font = style.caption_font();
    let label_font = style.label_font();
    let line_height = text_size(area, "Ag", &label_font)?.1;
    let marker = overtakes.filter(|&seq| seq <= max_seq);
    if let Some(seq) = overtakes.filter(|&seq| seq > max_seq) {
        let font = anchored(&caption_font, HPos::Center, VPos::Top);
        area.draw_text(
            &stays_below_note(max_seq, seq),
            &font,
            (width as i32 / 2, top),
        )?;
        top += line_height + 6;
    }
    if top + 40 >= height as i32 {
        return Ok(());
    }
    let (_, body) = area.split_vertically(top.max(0));

    let (y_lo, y_hi) = decade_range(lo as f64, hi as f64);
    let x_hi = max_seq.max(2) as f64;
    let x_lo = 1.0;
    let tick_width = text_size(area, &format_si(y_hi), &label_font)?.0;
    let mut chart = ChartBuilder::on(&body)
        .margin(MARGIN)
        .margin_right(RIGHT_MARGIN)
        .x_label_area_size(2 * line_height + 14)
        .y_label_area_size(tick_width + line_height + 16)
        .build_cartesian_2d(x_lo..x_hi, (y_lo..y_hi).log_scale())?;
    chart
        .configure_mesh()
        .bold_line_style(style.grid)
        .light_line_style(style.background)
        .axis_style(style.muted)
        .label_style(label_font.clone())
        .axis_desc_style(caption_font.clone())
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&|seq| format!("{}", seq.round() as i64))
        .y_label_formatter(&|flops| format_si(*flops))
        .x_desc("sequence length (tokens)")
        .y_desc("FLOPs")
        .draw()?;

    let (linear_colour, attention_colour) = line_colours(style);
    let line = |value: fn(&LengthFlops) -> u64| -> Vec<(f64, f64)> {
        drawn
            .iter()
            .map(|p| (p.seq as f64, value(p) as f64))
            .filter(|&(_, flops)| flops > 0.0)
            .collect()
    };
    for (label, colour, points) in [
        (ATTENTION_LABEL, attention_colour, line(|p| p.attention)),
        (LINEAR_LABEL, linear_colour, line(|p| p.linear)),
    ] {
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
    }

    if let Some(seq) = marker {
        let x = seq as f64;
        chart.draw_series(DashedLineSeries::new(
            [(x, y_lo), (x, y_hi)],
            6,
            4,
            style.foreground.mix(0.6).stroke_width(1),
        ))?;
        // The label sits right of the marker in the left half and left of it in the right half.
        let (h_pos, offset) = if x - x_lo < (x_hi - x_lo) / 2.0 {
            (HPos::Left, 4)
        } else {
            (HPos::Right, -4)
        };
        let font = anchored(&caption_font, h_pos, VPos::Top);
        chart.draw_series(std::iter::once(
            EmptyElement::at((x, y_hi)) + Text::new(overtakes_label(seq), (offset, 4), font),
        ))?;
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(style.background.mix(0.85).filled())
        .border_style(style.grid)
        .label_font(label_font)
        .draw()?;
    Ok(())
}

/// Shown instead of the weight histograms before the weights are read.
pub const NO_WEIGHTS: &str = "no weights read yet";

/// What a weight histogram's title says is counted: values below the sparsity threshold in
/// magnitude, not exact zeros.
pub fn near_zero_label(share: f64) -> String {
    format!("|w| < {SPARSITY_THRESHOLD:e}: {:.2}%", 100.0 * share)
}

/// Draws one histogram per tensor side by side: bars of the counts, a frame, the range below,
/// and a title with the path and the share of values with `|w|` below [`SPARSITY_THRESHOLD`].
pub fn draw_weight_histograms<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    tensors: &[&TensorStats],
    style: &Style,
) -> Result<(), ChartError> {
    clear(area, style)?;
    if tensors.is_empty() {
        return draw_message(area, NO_WEIGHTS, style);
    }
    let (width, height) = area.dim_in_pixel();
    let font = style.label_font();
    let small = style.text_style(style.font_size.saturating_sub(2).max(8), style.muted, false);
    let line = text_size(area, "Ag", &font)?.1;
    let small_line = text_size(area, "Ag", &small)?.1;
    let title_font = anchored(&font, HPos::Center, VPos::Top);
    for (index, stats) in tensors.iter().enumerate() {
        let (x0, x1) = cell_span(index, tensors.len(), width);
        let (left, right) = (x0 + 2 * MARGIN as i32, x1 - 2 * MARGIN as i32);
        let top = MARGIN as i32 + line + 4;
        let bottom = height as i32 - MARGIN as i32 - small_line - 2;
        if right - left < 8 || bottom - top < 8 {
            return draw_message(area, "make the canvas larger to show the weights", style);
        }
        let suffix = format!(" ({})", near_zero_label(stats.sparsity));
        let room = right - left - text_size(area, &suffix, &title_font)?.0;
        let path = fit_text(area, &stats.path, &title_font, room.max(0))?;
        area.draw_text(
            &format!("{path}{suffix}"),
            &title_font,
            ((x0 + x1) / 2, MARGIN as i32),
        )?;
        let histogram = &stats.histogram;
        let tallest = histogram.counts.iter().copied().max().unwrap_or(0);
        let fill = colormap::sequential(0.5).filled();
        let plot_width = (right - left) as u32;
        for (bin, &count) in histogram.counts.iter().enumerate() {
            if count == 0 || tallest == 0 {
                continue;
            }
            let (b0, b1) = cell_span(bin, histogram.counts.len(), plot_width);
            let bar = (f64::from(count) / f64::from(tallest) * f64::from(bottom - top)).round();
            area.draw(&Rectangle::new(
                [
                    (left + b0, bottom - (bar as i32).max(1)),
                    (left + b1.max(b0 + 1), bottom),
                ],
                fill,
            ))?;
        }
        area.draw(&Rectangle::new([(left, top), (right, bottom)], style.grid))?;
        let below = bottom + 2;
        for (value, h_pos, x) in [
            (histogram.min, HPos::Left, left),
            (histogram.max, HPos::Right, right),
        ] {
            area.draw_text(
                &format_number(value),
                &anchored(&small, h_pos, VPos::Top),
                (x, below),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::diagnostics::{attention_overtakes, flops_over_lengths};
    use crate::charts::test_support::svg_text_count;
    use crate::structure::TransformerConfig;
    use plotters::prelude::IntoDrawingArea;
    use plotters_svg::SVGBackend;

    fn svg(points: &[LengthFlops], overtakes: Option<usize>, max_seq: usize) -> String {
        let mut out = String::new();
        {
            let area = SVGBackend::with_string(&mut out, (640, 400)).into_drawing_area();
            draw_flops_over_length(&area, points, overtakes, max_seq, &Style::light()).unwrap();
        }
        out
    }

    /// How many polylines are stroked in `colour`.
    fn lines_in(svg: &str, colour: RGBColor) -> usize {
        let stroke = format!(
            "stroke=\"#{:02X}{:02X}{:02X}\"",
            colour.0, colour.1, colour.2
        );
        svg.split("<polyline")
            .skip(1)
            .filter(|tag| tag.split("/>").next().unwrap().contains(&stroke))
            .count()
    }

    #[test]
    fn draws_both_lines_and_the_crossover_marker() {
        // vocab 10, d 4, 2 heads, d_ff 8, 1 layer: attention overtakes at 13 tokens.
        let config = TransformerConfig::new(10, 4, 2, 8, 1);
        let overtakes = attention_overtakes(&config, 2);
        assert_eq!(overtakes, Some(13));
        let out = svg(&flops_over_lengths(&config, 2, 32), overtakes, 32);
        assert_eq!(svg_text_count(&out, TITLE), 1);
        assert_eq!(svg_text_count(&out, ATTENTION_LABEL), 1);
        assert_eq!(svg_text_count(&out, LINEAR_LABEL), 1);
        assert_eq!(svg_text_count(&out, &overtakes_label(13)), 1);
        assert_eq!(svg_text_count(&out, &stays_below_note(32, 13)), 0);
        let (linear, attention) = LIGHT;
        // The line and its legend sample.
        assert_eq!(lines_in(&out, attention), 2);
        assert_eq!(lines_in(&out, linear), 2);
    }

    #[test]
    fn a_crossover_beyond_the_range_is_a_note() {
        let seed = TransformerConfig::seed();
        let overtakes = attention_overtakes(&seed, 1);
        assert_eq!(overtakes, Some(1599));
        let out = svg(&flops_over_lengths(&seed, 1, 512), overtakes, 512);
        assert_eq!(svg_text_count(&out, &stays_below_note(512, 1599)), 1);
        assert_eq!(svg_text_count(&out, &overtakes_label(1599)), 0);
        assert_eq!(svg_text_count(&out, ATTENTION_LABEL), 1);
        assert_eq!(svg_text_count(&out, LINEAR_LABEL), 1);
    }

    #[test]
    fn nothing_to_draw_says_so() {
        let out = svg(&[], None, 16);
        assert_eq!(svg_text_count(&out, NO_DATA), 1);
        let zeros = [LengthFlops {
            seq: 1,
            attention: 0,
            linear: 0,
        }];
        assert_eq!(svg_text_count(&svg(&zeros, None, 1), NO_DATA), 1);
        // A tiny area does not fail.
        let mut out = String::new();
        let area = SVGBackend::with_string(&mut out, (20, 10)).into_drawing_area();
        let config = TransformerConfig::new(10, 4, 2, 8, 1);
        draw_flops_over_length(
            &area,
            &flops_over_lengths(&config, 1, 4),
            Some(13),
            4,
            &Style::dark(),
        )
        .unwrap();
    }

    #[test]
    fn decades_enclose_the_values() {
        assert_eq!(decade_range(3.0, 70.0), (1.0, 100.0));
        assert_eq!(decade_range(10.0, 10.0), (10.0, 100.0));
    }

    #[test]
    fn weight_histograms_say_what_counts_as_zero() {
        use crate::analysis::diagnostics::tensor_stats;
        let stats = tensor_stats(
            "layers.0.ff.linear1.weight",
            &[2, 2],
            &[0.0, 1e-7, -2.0, 2.0],
        );
        let mut out = String::new();
        {
            let area = SVGBackend::with_string(&mut out, (800, 200)).into_drawing_area();
            draw_weight_histograms(&area, &[&stats, &stats], &Style::light()).unwrap();
        }
        assert_eq!(near_zero_label(0.5), "|w| < 1e-6: 50.00%");
        assert_eq!(
            // The SVG escapes `<`.
            svg_text_count(&out, "layers.0.ff.linear1.weight (|w| &lt; 1e-6: 50.00%)"),
            2,
            "{out}"
        );
        assert!(!out.contains("zeros"));
        // Bars of the histogram: three non-empty bins in each of two cells.
        assert!(out.matches("<rect").count() >= 2 * 3 + 2);
        let mut empty = String::new();
        {
            let area = SVGBackend::with_string(&mut empty, (800, 200)).into_drawing_area();
            draw_weight_histograms(&area, &[], &Style::light()).unwrap();
        }
        assert_eq!(svg_text_count(&empty, NO_WEIGHTS), 1);
    }
}
