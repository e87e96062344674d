//! Gradient flow: the seed chapter's 2×2 figure of per-tensor gradient statistics, and a
//! tensors × steps heatmap of gradient norms that marks where a gradient vanished or exploded.

use super::heatmap::HeatmapLayout;
use super::ticks::{linear_ticks, trim_zeros};
use super::{
    BAR_WIDTH, ChartError, PixelRect, Style, anchored, cell_index, cell_span, clear, colormap,
    draw_colour_bar, draw_message, draw_title, label_step, max_text_width, text_size,
};
use crate::analysis::gradients::structurally_zero;
use crate::analysis::{GradientHistory, GradientProblem, GradientThresholds, ParameterGradient};
use plotters::chart::{ChartBuilder, ChartContext, SeriesLabelPosition};
use plotters::coord::Shift;
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::types::RangedCoordf64;
use plotters::drawing::DrawingArea;
use plotters::element::{
    BitMapElement, Circle, EmptyElement, PathElement, Rectangle, Text, TriangleMarker,
};
use plotters::prelude::DrawingBackend;
use plotters::series::{DashedLineSeries, LineSeries};
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::{Color, FontTransform, RGBColor, TextStyle};

/// Shown instead of the four panels when there are no gradients.
pub const NO_GRADIENTS: &str = "no gradients yet — train a step or analyse a batch";

/// Shown instead of a history chart when nothing was recorded.
pub const NO_STEPS: &str = "no training steps recorded yet";

/// Titles of the four panels, left to right, top to bottom.
pub const PANEL_TITLES: [&str; 4] = [
    "Mean gradient per tensor",
    "Gradient norm per tensor",
    "Gradient std per tensor",
    "Gradient range per tensor",
];

/// Smallest symlog constant: values below it are drawn as if linear near zero.
pub const SYMLOG_FLOOR: f64 = 1e-8;

/// Caption of the x axis of the panels and of the heatmap's y axis.
const TENSOR_CAPTION: &str = "tensor";

/// Blank pixels around each panel's chart.
const MARGIN: i32 = 6;

/// Blank pixels right of a plot, so that the last x tick label fits.
const RIGHT_MARGIN: i32 = 14;

/// Fraction of the value span added above and below the data.
const Y_PADDING: f64 = 0.05;

/// Bars fill this share of their tensor's slot.
const BAR_SHARE: f64 = 0.8;

/// Plots smaller than this many pixels either way are not drawn.
const MIN_PLOT: i32 = 8;

/// `sign(x) · log10(1 + |x| / c)`: logarithmic for `|x| ≫ c`, linear near zero, odd, and
/// defined at 0, so that gradients of both signs and of many magnitudes share one axis.
pub fn symlog(x: f64, c: f64) -> f64 {
    x.signum() * (x.abs() / c).ln_1p() / std::f64::consts::LN_10
}

/// The inverse of [`symlog`]: `sign(y) · c · (10^|y| − 1)`.
pub fn symlog_inverse(y: f64, c: f64) -> f64 {
    y.signum() * c * (y.abs() * std::f64::consts::LN_10).exp_m1()
}

/// The symlog constant for `values`: the smallest non-zero finite magnitude, at least
/// [`SYMLOG_FLOOR`]; 1 when every value is zero or not finite.
pub fn symlog_constant(values: impl IntoIterator<Item = f64>) -> f64 {
    values
        .into_iter()
        .map(f64::abs)
        .filter(|v| v.is_finite() && *v > 0.0)
        .min_by(f64::total_cmp)
        .map_or(1.0, |smallest| smallest.max(SYMLOG_FLOOR))
}

/// `value` in at most three significant digits, in scientific notation outside `0.01..1000`:
/// `0.123`, `12.3`, `1e-6`, `-2.5e3`.
pub(crate) fn format_number(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    if (1e-2..1e3).contains(&magnitude) {
        let decimals = (2 - magnitude.log10().floor() as i32).clamp(0, 4) as usize;
        let text = format!("{value:.decimals$}");
        return trim_zeros(&text).to_string();
    }
    let text = format!("{value:.2e}");
    let Some((mantissa, exponent)) = text.split_once('e') else {
        return text;
    };
    format!("{}e{exponent}", trim_zeros(mantissa))
}

/// `text` cut in the middle with an ellipsis until it is at most `max_width` pixels wide, so
/// that both the start and the end of a module path stay readable.
pub(crate) fn fit_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    font: &TextStyle,
    max_width: i32,
) -> Result<String, ChartError> {
    if text_size(area, text, font)?.0 <= max_width {
        return Ok(text.to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    let mut keep = chars.len().saturating_sub(1);
    while keep > 0 {
        let head = keep.div_ceil(2);
        let tail = keep - head;
        let cut: String = chars[..head]
            .iter()
            .chain(std::iter::once(&'…'))
            .chain(&chars[chars.len() - tail..])
            .collect();
        if text_size(area, &cut, font)?.0 <= max_width {
            return Ok(cut);
        }
        keep -= 1;
    }
    Ok("…".to_string())
}

/// How a panel maps values to its linear plot coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Axis {
    /// The value itself.
    Linear,
    /// `log10(value)`.
    Log,
    /// [`symlog`] with this constant.
    SymLog(f64),
}

impl Axis {
    /// The plot coordinate of `value`.
    fn forward(self, value: f64) -> f64 {
        match self {
            Self::Linear => value,
            Self::Log => value.log10(),
            Self::SymLog(c) => symlog(value, c),
        }
    }

    /// The value at plot coordinate `y`.
    fn inverse(self, y: f64) -> f64 {
        match self {
            Self::Linear => y,
            Self::Log => 10f64.powf(y),
            Self::SymLog(c) => symlog_inverse(y, c),
        }
    }

    /// Plot coordinates of about `target` ticks in `lo..=hi` (plot coordinates): round values on
    /// a linear axis, powers of ten on a log axis, 0 and ± powers of ten on a symlog axis.
    fn ticks(self, lo: f64, hi: f64, target: usize) -> Vec<f64> {
        let target = target.max(2);
        let ticks = match self {
            Self::Linear => return linear_ticks(lo, hi, target),
            Self::Log => {
                let decades: Vec<f64> = ((lo.ceil() as i64)..=(hi.floor() as i64))
                    .map(|k| k as f64)
                    .collect();
                let every = decades.len().div_ceil(target).max(1);
                decades.into_iter().step_by(every).collect::<Vec<_>>()
            }
            Self::SymLog(c) => {
                // From the largest magnitude inwards, keep the decades at least `gap` from the
                // last kept tick and from 0; those near 0 would crowd in the linear part.
                let gap = (hi - lo) / (target as f64 + 1.0);
                let largest = self.inverse(lo).abs().max(self.inverse(hi).abs());
                let first = c.log10().ceil() as i64;
                // f64 spans about ±308 decades; the bound keeps the loop short whatever the input.
                let last = largest.log10().floor().min(400.0) as i64;
                let mut ticks = vec![0.0];
                for sign in [-1.0, 1.0] {
                    let mut previous = f64::INFINITY;
                    for k in (first..=last).rev() {
                        let y = symlog(10f64.powi(k as i32), c);
                        if (lo..=hi).contains(&(sign * y)) && previous - y >= gap && y >= gap {
                            ticks.push(sign * y);
                            previous = y;
                        }
                    }
                }
                ticks.sort_by(f64::total_cmp);
                ticks
            }
        };
        if ticks.len() >= 2 {
            ticks
        } else {
            linear_ticks(lo, hi, target.min(4))
        }
    }
}

/// `lo..hi` with a little room on both sides; a single value still gives a range of non-zero
/// height.
fn padded((lo, hi): (f64, f64)) -> (f64, f64) {
    let span = hi - lo;
    if span > 1e-12 * lo.abs().max(hi.abs()).max(1e-300) {
        (lo - Y_PADDING * span, hi + Y_PADDING * span)
    } else if lo == 0.0 {
        (-1.0, 1.0)
    } else {
        let room = 0.1 * lo.abs();
        (lo - room, hi + room)
    }
}

/// The range of the finite `values`, or `None` when there are none.
fn finite_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |range, v| match range {
            None => Some((v, v)),
            Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
        })
}

/// The nearest round label step (1, 2, 5, 10, 20, …) at least `step`.
fn round_step(step: usize) -> usize {
    let mut magnitude = 1usize;
    loop {
        for m in [1, 2, 5] {
            let candidate = m * magnitude;
            if candidate >= step {
                return candidate;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// An axis with our own ticks: plotters cannot label a transformed axis at round values.
type Ticked = super::training::Ticked<RangedCoordf64>;

type PanelChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>;

/// Line and bar colours that are never the alarm colour: blue first, green second.
fn data_colours(style: &Style) -> [RGBColor; 2] {
    if style.dark {
        [RGBColor(96, 165, 250), RGBColor(74, 222, 128)]
    } else {
        [RGBColor(37, 99, 235), RGBColor(22, 163, 74)]
    }
}

/// What [`draw_gradient_panels`] draws.
#[derive(Debug, Clone)]
pub struct GradientPanelsData<'a> {
    /// One summary per parameter tensor, in model order.
    pub gradients: &'a [ParameterGradient],
    /// Flagged tensors as `(index into gradients, problem)`; drawn in the alarm colour with a
    /// marker at the top of every panel.
    pub flagged: Vec<(usize, GradientProblem)>,
    /// Where the norm panel's reference lines go.
    pub thresholds: GradientThresholds,
    /// Tensor to highlight with a band in every panel.
    pub selected: Option<usize>,
}

/// Where [`draw_gradient_panels`] put its four plots, for mapping the pointer to a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GradientPanelsLayout {
    /// Plot of each panel (inside the axes) in area pixels, in the order of [`PANEL_TITLES`];
    /// `(0, 0, 0, 0)` for a panel too small to draw.
    pub panels: [PixelRect; 4],
    /// Number of tensors across each plot.
    pub tensors: usize,
}

impl GradientPanelsLayout {
    /// The tensor nearest area pixel `(x, y)` when it is inside one of the plots.
    pub fn tensor_at(&self, x: i32, y: i32) -> Option<usize> {
        if self.tensors == 0 {
            return None;
        }
        let &(left, _, width, _) = self.panels.iter().find(|&&(left, top, width, height)| {
            (left..left + width as i32).contains(&x) && (top..top + height as i32).contains(&y)
        })?;
        // Plotters maps the x range -0.5..n-0.5 onto the pixels left..=left+width-1.
        let span = f64::from(width.saturating_sub(1).max(1));
        let value = -0.5 + self.tensors as f64 * f64::from(x - left) / span;
        Some((value.round().max(0.0) as usize).min(self.tensors - 1))
    }

    /// The area column of tensor `tensor`'s centre in panel `panel`.
    pub fn tensor_x(&self, panel: usize, tensor: usize) -> Option<i32> {
        let (left, _, width, _) = *self.panels.get(panel)?;
        if tensor >= self.tensors || width == 0 {
            return None;
        }
        let share = (tensor as f64 + 0.5) / self.tensors as f64;
        Some(left + (f64::from(width - 1) * share + 1e-3).floor() as i32)
    }
}

/// Whether each tensor is flagged, from the `(index, problem)` list (out-of-range indices are
/// ignored).
fn flag_lookup(tensors: usize, flagged: &[(usize, GradientProblem)]) -> Vec<bool> {
    let mut flags = vec![false; tensors];
    for &(index, _) in flagged {
        if let Some(slot) = flags.get_mut(index) {
            *slot = true;
        }
    }
    flags
}

/// A panel's y axis and the range it shows, in plot coordinates.
struct Frame {
    title: &'static str,
    y_caption: &'static str,
    axis: Axis,
    y_range: (f64, f64),
}

/// Builds the axes of `frame` on `body` (a panel below its title) and returns the chart and
/// where its plot is in `root` pixels; `None` when the panel is too small for a plot.
fn build_chart<'a, DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    body: &'a DrawingArea<DB, Shift>,
    frame: &Frame,
    tensors: usize,
    style: &Style,
) -> Result<Option<(PanelChart<'a, DB>, PixelRect)>, ChartError> {
    let label_font = style.label_font();
    let line_height = text_size(root, "Ag", &label_font)?.1;
    let (body_width, body_height) = body.dim_in_pixel();
    let x_label_area = 2 * line_height + 14;
    let plot_height = body_height as i32 - x_label_area - 2 * MARGIN;
    let y_target = (plot_height / (3 * line_height.max(1))).clamp(2, 6) as usize;
    let (lo, hi) = frame.y_range;
    let y_ticks = frame.axis.ticks(lo, hi, y_target);
    let tick_width = max_text_width(
        root,
        y_ticks
            .iter()
            .map(|&y| format_number(frame.axis.inverse(y))),
        &label_font,
    )?;
    let y_label_area = tick_width + line_height + 16;
    let plot_width = body_width as i32 - y_label_area - MARGIN - RIGHT_MARGIN;
    if plot_width < MIN_PLOT || plot_height < MIN_PLOT {
        return Ok(None);
    }
    let widest_index = text_size(root, &tensors.saturating_sub(1).to_string(), &label_font)?.0;
    let pitch = f64::from(plot_width) / tensors.max(1) as f64;
    let every = round_step(label_step(pitch, widest_index + 10));
    let x_ticks = (0..tensors).step_by(every).map(|i| i as f64).collect();

    let mut chart = ChartBuilder::on(body)
        .margin(MARGIN)
        .margin_right(RIGHT_MARGIN)
        .x_label_area_size(x_label_area)
        .y_label_area_size(y_label_area)
        .build_cartesian_2d(
            Ticked {
                inner: RangedCoordf64::from(-0.5..tensors as f64 - 0.5),
                ticks: x_ticks,
            },
            Ticked {
                inner: RangedCoordf64::from(lo..hi),
                ticks: y_ticks,
            },
        )?;
    let axis = frame.axis;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(style.grid)
        .light_line_style(style.background)
        .axis_style(style.muted)
        .label_style(label_font)
        .axis_desc_style(style.caption_font())
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .y_label_formatter(&|y| format_number(axis.inverse(*y)))
        .x_desc(TENSOR_CAPTION)
        .y_desc(frame.y_caption)
        .draw()?;

    let plot_area = chart.plotting_area().strip_coord_spec();
    let (plot_x, plot_y) = plot_area.get_base_pixel();
    let (plot_w, plot_h) = plot_area.dim_in_pixel();
    let (root_x, root_y) = root.get_base_pixel();
    plot_area.draw(&Rectangle::new(
        [(0, 0), (plot_w as i32 - 1, plot_h as i32 - 1)],
        style.grid,
    ))?;
    Ok(Some((
        chart,
        (plot_x - root_x, plot_y - root_y, plot_w, plot_h),
    )))
}

/// The four panels' axes and ranges, from the data.
fn frames(gradients: &[ParameterGradient], thresholds: &GradientThresholds) -> [Frame; 4] {
    let summaries = || gradients.iter().map(|g| &g.gradient);
    let mean_axis = Axis::SymLog(symlog_constant(summaries().map(|s| s.mean)));
    let mean_range = finite_range(summaries().map(|s| mean_axis.forward(s.mean)).chain([0.0]));
    let positive_norms = summaries()
        .map(|s| s.norm)
        .filter(|&norm| norm > 0.0)
        .chain([thresholds.vanishing, thresholds.exploding])
        .filter(|&value| value > 0.0)
        .map(f64::log10);
    let norm_range = finite_range(positive_norms);
    let std_range = finite_range(summaries().map(|s| s.std).chain([0.0]));
    let range_axis = Axis::SymLog(symlog_constant(summaries().flat_map(|s| [s.min, s.max])));
    let range_range = finite_range(
        summaries()
            .flat_map(|s| [s.min, s.max])
            .map(|v| range_axis.forward(v))
            .chain([0.0]),
    );
    let range = |range: Option<(f64, f64)>| padded(range.unwrap_or((0.0, 0.0)));
    [
        Frame {
            title: PANEL_TITLES[0],
            y_caption: "mean",
            axis: mean_axis,
            y_range: range(mean_range),
        },
        Frame {
            title: PANEL_TITLES[1],
            y_caption: "L2 norm",
            axis: Axis::Log,
            y_range: padded(norm_range.unwrap_or((-1.0, 1.0))),
        },
        Frame {
            title: PANEL_TITLES[2],
            y_caption: "std",
            axis: Axis::Linear,
            y_range: range(std_range),
        },
        Frame {
            title: PANEL_TITLES[3],
            y_caption: "min / max",
            axis: range_axis,
            y_range: range(range_range),
        },
    ]
}

/// Draws the seed chapter's 2×2 gradient figure: mean (symlog bars), L2 norm (log line with
/// points and threshold lines), std (bars) and min/max (symlog lines) per tensor. Flagged
/// tensors are drawn in the alarm colour with a triangle at the top of each plot.
pub fn draw_gradient_panels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &GradientPanelsData,
    style: &Style,
) -> Result<GradientPanelsLayout, ChartError> {
    clear(area, style)?;
    let gradients = data.gradients;
    let tensors = gradients.len();
    let mut layout = GradientPanelsLayout {
        panels: [(0, 0, 0, 0); 4],
        tensors,
    };
    if tensors == 0 {
        draw_message(area, NO_GRADIENTS, style)?;
        return Ok(layout);
    }
    let flags = flag_lookup(tensors, &data.flagged);
    let frames = frames(gradients, &data.thresholds);
    let cells = area.split_evenly((2, 2));
    for (index, (cell, frame)) in cells.iter().zip(&frames).enumerate() {
        let top = draw_title(cell, frame.title, style)?;
        let (_, body) = cell.split_vertically(top.max(0));
        let Some((mut chart, plot)) = build_chart(area, &body, frame, tensors, style)? else {
            continue;
        };
        layout.panels[index] = plot;
        let (y_lo, y_hi) = frame.y_range;
        if let Some(selected) = data.selected.filter(|&s| s < tensors) {
            let x = selected as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x - 0.5, y_lo), (x + 0.5, y_hi)],
                style.foreground.mix(0.1).filled(),
            )))?;
        }
        let axis = frame.axis;
        match index {
            0 => draw_bars(
                &mut chart,
                gradients.iter().map(|g| axis.forward(g.gradient.mean)),
                &flags,
                style,
            )?,
            1 => draw_norms(
                &mut chart,
                gradients,
                frame,
                &flags,
                &data.thresholds,
                style,
            )?,
            2 => draw_bars(
                &mut chart,
                gradients.iter().map(|g| g.gradient.std),
                &flags,
                style,
            )?,
            _ => draw_ranges(&mut chart, gradients, axis, &flags, style)?,
        }
        // A marker at the top of the plot over every flagged tensor.
        let alarm = style.alarm;
        chart.draw_series(
            flags
                .iter()
                .enumerate()
                .filter(|&(_, &flagged)| flagged)
                .map(|(i, _)| {
                    EmptyElement::at((i as f64, y_hi))
                        + TriangleMarker::new((0, 6), 4, alarm.filled())
                }),
        )?;
    }
    Ok(layout)
}

/// Draws one bar per tensor from 0 to its plot coordinate; flagged ones in the alarm colour.
fn draw_bars<DB: DrawingBackend>(
    chart: &mut PanelChart<DB>,
    heights: impl Iterator<Item = f64>,
    flags: &[bool],
    style: &Style,
) -> Result<(), ChartError> {
    let [colour, _] = data_colours(style);
    let half = BAR_SHARE / 2.0;
    let bars = heights
        .zip(flags)
        .enumerate()
        .filter(|(_, (height, _))| height.is_finite())
        .map(|(i, (height, &flagged))| {
            let fill = if flagged { style.alarm } else { colour };
            let x = i as f64;
            Rectangle::new([(x - half, 0.0), (x + half, height)], fill.filled())
        });
    chart.draw_series(bars)?;
    Ok(())
}

/// A point per tensor, flagged ones larger and in the alarm colour.
fn draw_points<DB: DrawingBackend>(
    chart: &mut PanelChart<DB>,
    points: &[(f64, f64)],
    colour: RGBColor,
    flags: &[bool],
    style: &Style,
) -> Result<(), ChartError> {
    let alarm = style.alarm;
    chart.draw_series(points.iter().map(|&(x, y)| {
        let flagged = flags.get(x as usize).copied().unwrap_or(false);
        if flagged {
            Circle::new((x, y), 4, alarm.filled())
        } else {
            Circle::new((x, y), 3, colour.filled())
        }
    }))?;
    Ok(())
}

/// The norm panel: threshold lines, then the norms as a line with points. Zero norms sit on the
/// bottom of the axis, non-finite ones on the top.
fn draw_norms<DB: DrawingBackend>(
    chart: &mut PanelChart<DB>,
    gradients: &[ParameterGradient],
    frame: &Frame,
    flags: &[bool],
    thresholds: &GradientThresholds,
    style: &Style,
) -> Result<(), ChartError> {
    let (y_lo, y_hi) = frame.y_range;
    let x_hi = gradients.len() as f64 - 0.5;
    let caption_font = style.caption_font();
    let line_height = style.font_size as i32 + 4;
    let plot_top = chart.backend_coord(&(x_hi, y_hi)).1;
    for (name, value) in [
        ("vanishing", thresholds.vanishing),
        ("exploding", thresholds.exploding),
    ] {
        if !(value > 0.0 && value.is_finite()) {
            continue;
        }
        let y = value.log10();
        chart.draw_series(DashedLineSeries::new(
            [(-0.5, y), (x_hi, y)],
            6,
            4,
            style.muted.stroke_width(1),
        ))?;
        // The label sits above the line at the right, or below it when the line is at the top.
        let line_y = chart.backend_coord(&(x_hi, y)).1 - plot_top;
        let (v_pos, offset) = if line_y < line_height + 4 {
            (VPos::Top, 3)
        } else {
            (VPos::Bottom, -3)
        };
        let font = anchored(&caption_font, HPos::Right, v_pos);
        let text = format!("{name} {}", format_number(value));
        chart.draw_series(std::iter::once(
            EmptyElement::at((x_hi, y)) + Text::new(text, (-4, offset), font),
        ))?;
    }
    let points: Vec<(f64, f64)> = gradients
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let norm = g.gradient.norm;
            let y = if !norm.is_finite() {
                y_hi
            } else if norm <= 0.0 {
                y_lo
            } else {
                norm.log10().clamp(y_lo, y_hi)
            };
            (i as f64, y)
        })
        .collect();
    let [colour, _] = data_colours(style);
    chart.draw_series(LineSeries::new(points.clone(), colour.stroke_width(1)))?;
    draw_points(chart, &points, colour, flags, style)
}

/// One number read off a tensor's gradient summary.
type Statistic = fn(&ParameterGradient) -> f64;

/// The range panel: the max and the min of each tensor as two lines with points, and a legend.
fn draw_ranges<'a, DB: DrawingBackend + 'a>(
    chart: &mut PanelChart<'a, DB>,
    gradients: &[ParameterGradient],
    axis: Axis,
    flags: &[bool],
    style: &Style,
) -> Result<(), ChartError> {
    let colours = data_colours(style);
    let lines: [(&str, Statistic); 2] = [("max", |g| g.gradient.max), ("min", |g| g.gradient.min)];
    for ((name, value), colour) in lines.into_iter().zip(colours) {
        let points: Vec<(f64, f64)> = gradients
            .iter()
            .enumerate()
            .map(|(i, g)| (i as f64, axis.forward(value(g))))
            .filter(|(_, y)| y.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(1)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
        draw_points(chart, &points, colour, flags, style)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(style.background.mix(0.85).filled())
        .border_style(style.grid)
        .label_font(style.label_font())
        .draw()?;
    Ok(())
}

/// What [`draw_gradient_heatmap`] draws.
#[derive(Debug, Clone, Copy)]
pub struct GradientHeatmapData<'a> {
    /// Gradient norm of every tensor at each recorded step.
    pub history: &'a GradientHistory,
    /// Cells with a norm below `vanishing` or above `exploding` are marked.
    pub thresholds: GradientThresholds,
    /// `(tensor, column)` under the pointer, outlined.
    pub cursor: Option<(usize, usize)>,
}

/// Where [`draw_gradient_heatmap`] put the cells, for hit-testing the pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GradientHeatmapLayout {
    /// The cell image in area pixels.
    pub plot: PixelRect,
    /// Rows: one per tensor (0 when nothing was drawn).
    pub tensors: usize,
    /// Columns: one per recorded step.
    pub columns: usize,
}

impl GradientHeatmapLayout {
    /// A layout with no cells, which no pixel hits.
    pub fn empty() -> Self {
        Self {
            plot: (0, 0, 0, 0),
            tensors: 0,
            columns: 0,
        }
    }

    /// The same grid as a heatmap layout: rows are tensors, columns recorded steps.
    fn grid(&self) -> HeatmapLayout {
        HeatmapLayout {
            plot: self.plot,
            rows: self.tensors,
            cols: self.columns,
        }
    }

    /// The `(tensor, column)` of the cell under area pixel `(x, y)`, if any.
    pub fn cell_at(&self, x: i32, y: i32) -> Option<(usize, usize)> {
        self.grid().cell_at(x, y)
    }

    /// The area pixel at the middle of cell `(tensor, column)`; `None` when out of range or
    /// narrower than a pixel.
    pub fn cell_center(&self, tensor: usize, column: usize) -> Option<(i32, i32)> {
        self.grid().cell_center(tensor, column)
    }
}

/// Whether `norm` is outside the thresholds (or not finite): the cell gets a mark.
fn out_of_bounds(norm: f32, thresholds: &GradientThresholds) -> bool {
    let norm = f64::from(norm);
    !norm.is_finite() || norm < thresholds.vanishing || norm > thresholds.exploding
}

/// Cells smaller than this either way get a band of the alarm colour instead of an outline.
const MIN_OUTLINED_CELL: i32 = 8;

/// For each of `length` pixels split among `count` cells: the cell, the pixel's distance to the
/// nearest edge of its cell, and the cell's size.
fn cell_geometry(count: usize, length: u32) -> Vec<(usize, i32, i32)> {
    (0..length as i32)
        .map(|px| {
            let cell = cell_index(px, count, length).unwrap_or(0);
            let (start, end) = cell_span(cell, count, length);
            (cell, (px - start).min(end - 1 - px), end - start)
        })
        .collect()
}

/// The RGB pixels of `rows × cols` cells in a `width × height` image: each cell in its colour,
/// marked cells outlined in `alarm` (1–3 pixels, by cell size). A marked cell smaller than
/// [`MIN_OUTLINED_CELL`] gets a band across its middle third instead, so that runs of marked
/// steps read as a line that still shows the norm's colour above and below; when its row is
/// under 6 pixels, it is filled.
fn cell_pixels(
    (width, height): (u32, u32),
    (rows, cols): (usize, usize),
    colours: &[RGBColor],
    marked: &[bool],
    alarm: RGBColor,
) -> Vec<u8> {
    let across = cell_geometry(cols, width);
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for (row, row_edge, row_size) in cell_geometry(rows, height) {
        for &(col, col_edge, col_size) in &across {
            let cell = row * cols + col;
            let size = row_size.min(col_size);
            let alarmed = marked[cell]
                && if size >= MIN_OUTLINED_CELL {
                    row_edge.min(col_edge) < (size / 12).clamp(1, 3)
                } else {
                    row_size < 6 || row_edge >= row_size / 3
                };
            let RGBColor(r, g, b) = if alarmed { alarm } else { colours[cell] };
            pixels.extend_from_slice(&[r, g, b]);
        }
    }
    pixels
}

/// Draws the tensors × steps heatmap of `log10` gradient norms with a colour bar; cells below
/// the vanishing or above the exploding threshold (or not finite) are marked in the alarm
/// colour, except for tensors whose gradient is zero by construction.
pub fn draw_gradient_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &GradientHeatmapData,
    style: &Style,
) -> Result<GradientHeatmapLayout, ChartError> {
    clear(area, style)?;
    let history = data.history;
    let (tensors, columns) = (history.paths().len(), history.len());
    if tensors == 0 || columns == 0 {
        draw_message(area, NO_STEPS, style)?;
        return Ok(GradientHeatmapLayout::empty());
    }
    let top = draw_title(area, "Gradient norm per tensor and step", style)?;
    let (width, height) = area.dim_in_pixel();
    let (width, height) = (width as i32, height as i32);
    let font = style.label_font();
    let caption_font = style.caption_font();
    let line_height = text_size(area, "Ag", &font)?.1;
    let caption_band = line_height + 6;

    // Colours over the log range of the positive finite norms.
    let norms: Vec<f32> = (0..columns)
        .flat_map(|column| (0..tensors).map(move |tensor| (tensor, column)))
        .map(|(tensor, column)| history.norm(tensor, column).unwrap_or(f32::NAN))
        .collect();
    let logs = norms
        .iter()
        .map(|&norm| f64::from(norm))
        .filter(|&norm| norm > 0.0 && norm.is_finite())
        .map(f64::log10);
    let threshold_logs = [data.thresholds.vanishing, data.thresholds.exploding].map(f64::log10);
    let (mut lo, mut hi) = finite_range(logs)
        .or_else(|| finite_range(threshold_logs))
        .unwrap_or((-1.0, 1.0));
    if hi - lo <= 1e-9 {
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let colour_of = |norm: f32| {
        if norm.is_nan() {
            return colormap::NAN_COLOR;
        }
        let log = f64::from(norm).log10();
        colormap::sequential(((log - lo) / (hi - lo)) as f32)
    };
    // Row-major: tensors down, steps across.
    let mut colours = Vec::with_capacity(tensors * columns);
    let mut marked = Vec::with_capacity(tensors * columns);
    for tensor in 0..tensors {
        let exempt = structurally_zero(&history.paths()[tensor]);
        for column in 0..columns {
            let norm = norms[column * tensors + tensor];
            colours.push(colour_of(norm));
            marked.push(!exempt && out_of_bounds(norm, &data.thresholds));
        }
    }

    // Left: rotated caption, then right-aligned tensor paths fitted to a quarter of the width.
    let mut row_texts = Vec::with_capacity(tensors);
    for path in history.paths() {
        row_texts.push(fit_text(area, path, &font, width / 4)?);
    }
    let row_label_width = max_text_width(area, row_texts.iter().cloned(), &font)?;
    let left = 4 + caption_band + row_label_width + 6;
    // Right: the colour bar and its decade ticks.
    let mut ticks: Vec<(f32, String)> = ((lo.ceil() as i64)..=(hi.floor() as i64))
        .map(|k| {
            let t = ((k as f64 - lo) / (hi - lo)) as f32;
            (t, format_number(10f64.powi(k as i32)))
        })
        .collect();
    if ticks.len() < 2 {
        ticks = vec![
            (0.0, format_number(10f64.powf(lo))),
            (1.0, format_number(10f64.powf(hi))),
        ];
    }
    let bar_ticks = ticks.len().div_ceil(8).max(1);
    let ticks: Vec<(f32, String)> = ticks.into_iter().step_by(bar_ticks).collect();
    let tick_width = max_text_width(area, ticks.iter().map(|(_, t)| t.clone()), &font)?;
    let right = 10 + BAR_WIDTH + 8 + tick_width + 4;
    let plot_width = (width - left - right).max(0);
    // Bottom: step labels, the caption, and the key to the marks.
    let bottom = 4 + line_height + 4 + 2 * caption_band;
    let plot_height = (height - top - bottom).max(0);
    let layout = GradientHeatmapLayout {
        plot: (left, top, plot_width as u32, plot_height as u32),
        tensors,
        columns,
    };
    if plot_width == 0 || plot_height == 0 {
        return Ok(GradientHeatmapLayout {
            plot: (left, top, 0, 0),
            ..layout
        });
    }

    let pixels = cell_pixels(
        (plot_width as u32, plot_height as u32),
        (tensors, columns),
        &colours,
        &marked,
        style.alarm,
    );
    let Some(image) = BitMapElement::with_owned_buffer(
        (left, top),
        (plot_width as u32, plot_height as u32),
        pixels,
    ) else {
        return Err(ChartError(
            "the image buffer does not match its size".into(),
        ));
    };
    area.draw(&image)?;
    area.draw(&Rectangle::new(
        [(left - 1, top - 1), (left + plot_width, top + plot_height)],
        style.grid,
    ))?;

    if let Some((tensor, column)) = data.cursor {
        let (x0, x1) = cell_span(column, columns, plot_width as u32);
        let (y0, y1) = cell_span(tensor, tensors, plot_height as u32);
        if tensor < tensors && column < columns {
            area.draw(&Rectangle::new(
                [(left + x0 - 2, top + y0 - 2), (left + x1 + 1, top + y1 + 1)],
                style.foreground.stroke_width(2),
            ))?;
        }
    }

    // Tensor paths, thinned to every k-th row when rows are shorter than a line.
    let row_pitch = f64::from(plot_height) / tensors as f64;
    let row_font = anchored(&font, HPos::Right, VPos::Center);
    for (tensor, text) in row_texts
        .iter()
        .enumerate()
        .step_by(label_step(row_pitch, line_height + 2))
    {
        if let Some((_, y)) = layout.cell_center(tensor, 0) {
            area.draw_text(text, &row_font, (left - 6, y))?;
        }
    }

    // Step numbers below the cells.
    let steps = history.steps();
    let widest_step = max_text_width(area, steps.iter().map(usize::to_string), &font)?;
    let column_pitch = f64::from(plot_width) / columns as f64;
    let column_font = anchored(&font, HPos::Center, VPos::Top);
    let labels_top = top + plot_height + 4;
    for (column, step) in steps
        .iter()
        .enumerate()
        .step_by(label_step(column_pitch, widest_step + 8))
    {
        if let Some((x, _)) = layout.cell_center(0, column) {
            area.draw_text(&step.to_string(), &column_font, (x, labels_top))?;
        }
    }

    // Captions and the key to the marks.
    let x_caption = anchored(&caption_font, HPos::Center, VPos::Top);
    let caption_top = labels_top + line_height + 4;
    area.draw_text("step", &x_caption, (left + plot_width / 2, caption_top))?;
    let key = format!(
        "marked: gradient norm < {} or > {}",
        format_number(data.thresholds.vanishing),
        format_number(data.thresholds.exploding)
    );
    let key_font = anchored(
        &style.text_style(style.font_size.saturating_sub(1).max(8), style.alarm, false),
        HPos::Center,
        VPos::Top,
    );
    area.draw_text(
        &key,
        &key_font,
        (left + plot_width / 2, caption_top + caption_band),
    )?;
    let y_caption = anchored(
        &caption_font.transform(FontTransform::Rotate270),
        HPos::Center,
        VPos::Center,
    );
    area.draw_text(
        TENSOR_CAPTION,
        &y_caption,
        (4 + caption_band / 2, top + plot_height / 2),
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
pub(crate) mod tests {
    use super::*;
    use crate::analysis::Summary;
    use crate::charts::test_support::{Recorder, svg_text_count};
    use plotters::prelude::{BitMapBackend, IntoDrawingArea};
    use plotters_svg::SVGBackend;

    /// The hex form SVG uses for `colour`, e.g. `#2563EB`.
    pub(crate) fn hex(colour: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2)
    }

    /// The value of attribute `name` in the tag `tag`.
    pub(crate) fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        tag[start..].split('"').next()
    }

    /// Every SVG element `element` (e.g. `rect`) whose `fill` is `colour`, as its tag text.
    pub(crate) fn tags<'a>(svg: &'a str, element: &str, colour: RGBColor) -> Vec<&'a str> {
        let fill = hex(colour);
        svg.split(&format!("<{element}"))
            .skip(1)
            .map(|tag| tag.split("/>").next().unwrap())
            .filter(|tag| attr(tag, "fill") == Some(fill.as_str()))
            .collect()
    }

    /// Filled rectangles of `colour` as `(x, y, width, height)`.
    pub(crate) fn rects(svg: &str, colour: RGBColor) -> Vec<(i32, i32, i32, i32)> {
        tags(svg, "rect", colour)
            .into_iter()
            .map(|tag| {
                let n = |name| attr(tag, name).unwrap().parse::<i32>().unwrap();
                (n("x"), n("y"), n("width"), n("height"))
            })
            .collect()
    }

    /// Filled circles of `colour` as `(cx, cy, r)`.
    fn circles(svg: &str, colour: RGBColor) -> Vec<(i32, i32, i32)> {
        tags(svg, "circle", colour)
            .into_iter()
            .map(|tag| {
                let n = |name| attr(tag, name).unwrap().parse::<i32>().unwrap();
                (n("cx"), n("cy"), n("r"))
            })
            .collect()
    }

    /// Whether `(x, y)` lies in `rect`.
    pub(crate) fn inside((left, top, width, height): PixelRect, (x, y): (i32, i32)) -> bool {
        (left..left + width as i32).contains(&x) && (top..top + height as i32).contains(&y)
    }

    fn gradient(path: &str, mean: f64, std: f64, norm: f64) -> ParameterGradient {
        ParameterGradient {
            path: path.to_string(),
            shape: vec![8],
            gradient: Summary {
                count: 8,
                mean,
                std,
                min: mean - 2.0 * std,
                max: mean + 2.0 * std,
                norm,
            },
            weight_norm: 1.0,
        }
    }

    /// Six tensors of varied sign and size; tensor 1 vanishes, tensor 4 explodes.
    fn six() -> Vec<ParameterGradient> {
        vec![
            gradient("embed.weight", 2e-3, 1e-2, 0.5),
            gradient("layers.0.attn.query.weight", 1e-9, 1e-9, 5e-8),
            gradient("layers.0.attn.query.bias", -3e-2, 2e-2, 0.2),
            gradient("layers.0.ff.linear1.weight", 1e-4, 5e-3, 1.5),
            gradient("layers.0.ff.linear2.weight", 4.0, 30.0, 2e3),
            gradient("head.weight", -1e-3, 1e-2, 0.8),
        ]
    }

    fn panels_svg(data: &GradientPanelsData, size: (u32, u32)) -> (String, GradientPanelsLayout) {
        let mut out = String::new();
        let layout = {
            let area = SVGBackend::with_string(&mut out, size).into_drawing_area();
            draw_gradient_panels(&area, data, &Style::light()).unwrap()
        };
        (out, layout)
    }

    fn flagged_data(gradients: &[ParameterGradient]) -> GradientPanelsData<'_> {
        GradientPanelsData {
            gradients,
            flagged: vec![
                (1, GradientProblem::Vanishing),
                (4, GradientProblem::Exploding),
            ],
            thresholds: GradientThresholds::default(),
            selected: None,
        }
    }

    #[test]
    fn symlog_round_trips_is_odd_and_monotonic() {
        let xs: Vec<f64> = [
            -1e3, -2.5, -1e-3, -1e-7, -1e-9, 0.0, 1e-9, 1e-7, 1e-3, 2.5, 1e3,
        ]
        .into_iter()
        .collect();
        for c in [1e-8, 1e-3, 1.0] {
            for &x in &xs {
                let back = symlog_inverse(symlog(x, c), c);
                assert!(
                    (back - x).abs() <= 1e-9 * x.abs().max(c),
                    "{x} → {back} (c {c})"
                );
                assert_eq!(symlog(-x, c), -symlog(x, c), "odd at {x}");
            }
            let ys: Vec<f64> = xs.iter().map(|&x| symlog(x, c)).collect();
            assert!(ys.windows(2).all(|pair| pair[0] < pair[1]), "{ys:?}");
            assert_eq!(symlog(0.0, c), 0.0);
            assert!((symlog(c, c) - 2f64.log10()).abs() < 1e-12);
            // Logarithmic far from zero: a decade more is one unit more.
            let decade = symlog(1e6 * c, c) - symlog(1e5 * c, c);
            assert!((decade - 1.0).abs() < 1e-4, "{decade}");
        }
        assert_eq!(symlog_constant([0.0, -1e-3, 5e-2, f64::NAN]), 1e-3);
        assert_eq!(symlog_constant([0.0, 1e-12]), SYMLOG_FLOOR);
        assert_eq!(symlog_constant([0.0, f64::INFINITY]), 1.0);
    }

    #[test]
    fn numbers_and_ticks_are_round() {
        assert_eq!(format_number(1e-6), "1e-6");
        assert_eq!(format_number(1e3), "1e3");
        assert_eq!(format_number(0.123_45), "0.123");
        assert_eq!(format_number(-12.34), "-12.3");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(2.5e-4), "2.5e-4");
        assert_eq!(
            linear_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        // Symlog ticks are 0 and ± powers of ten.
        let axis = Axis::SymLog(1e-3);
        let ticks = axis.ticks(axis.forward(-0.5), axis.forward(50.0), 6);
        let values: Vec<String> = ticks
            .iter()
            .map(|&y| format_number(axis.inverse(y)))
            .collect();
        assert!(values.contains(&"0".to_string()), "{values:?}");
        let is_decade = |v: &String| {
            let magnitude = v.parse::<f64>().unwrap().abs();
            magnitude == 0.0 || (magnitude.log10() - magnitude.log10().round()).abs() < 1e-9
        };
        assert!(values.iter().all(is_decade), "{values:?}");
        assert!(values.iter().any(|v| v.starts_with('-')), "{values:?}");
        // Log ticks are whole decades.
        assert_eq!(
            Axis::Log.ticks(-6.2, 3.1, 10),
            (-6..=3).map(f64::from).collect::<Vec<_>>()
        );
    }

    #[test]
    fn flagged_tensors_use_the_alarm_colour_and_others_do_not() {
        let gradients = six();
        let style = Style::light();
        let [blue, green] = data_colours(&style);
        let (out, layout) = panels_svg(&flagged_data(&gradients), (900, 640));
        for title in PANEL_TITLES {
            assert_eq!(svg_text_count(&out, title), 1, "{title}");
        }
        let in_panel = |panel: usize, (x, y): (i32, i32)| inside(layout.panels[panel], (x, y));
        // Bars (mean, std): the flagged tensors' bars are alarm-red, the rest blue.
        for panel in [0, 2] {
            let bar_index = |&(x, y, w, h): &(i32, i32, i32, i32)| {
                let centre = (x + w / 2, y + h / 2);
                in_panel(panel, centre).then(|| layout.tensor_at(centre.0, centre.1).unwrap())
            };
            let mut red: Vec<usize> = rects(&out, style.alarm)
                .iter()
                .filter_map(bar_index)
                .collect();
            red.sort();
            assert_eq!(red, vec![1, 4], "panel {panel}");
            let mut others: Vec<usize> = rects(&out, blue).iter().filter_map(bar_index).collect();
            others.sort();
            assert_eq!(others, vec![0, 2, 3, 5], "panel {panel}");
        }
        // Points (norm, range): flagged points red, one per line.
        let points_in = |panel: usize, colour| {
            circles(&out, colour)
                .into_iter()
                .filter(|&(x, y, _)| in_panel(panel, (x, y)))
                .map(|(x, y, _)| layout.tensor_at(x, y).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(points_in(1, style.alarm), vec![1, 4]);
        assert_eq!(points_in(1, blue), vec![0, 2, 3, 5]);
        let mut red = points_in(3, style.alarm);
        red.sort();
        assert_eq!(red, vec![1, 1, 4, 4], "max and min lines");
        assert_eq!(points_in(3, blue).len() + points_in(3, green).len(), 8);
        // A triangle over each flagged tensor in each panel.
        let triangles = tags(&out, "polygon", style.alarm);
        assert_eq!(triangles.len(), 8);
        // The min/max panel has a legend.
        assert!(svg_text_count(&out, "max") > 0 && svg_text_count(&out, "min") > 0);

        // Without flags nothing is alarm-coloured.
        let calm = GradientPanelsData {
            flagged: Vec::new(),
            ..flagged_data(&gradients)
        };
        let (out, _) = panels_svg(&calm, (900, 640));
        assert!(!out.contains(&hex(style.alarm)));
    }

    #[test]
    fn zero_and_non_finite_norms_are_clamped_not_dropped() {
        let mut gradients = six();
        gradients[2].gradient.norm = 0.0;
        gradients[3].gradient.norm = f64::INFINITY;
        let data = GradientPanelsData {
            flagged: Vec::new(),
            ..flagged_data(&gradients)
        };
        let (out, layout) = panels_svg(&data, (900, 640));
        let [blue, _] = data_colours(&Style::light());
        let (_, top, _, height) = layout.panels[1];
        let points: Vec<(i32, i32, i32)> = circles(&out, blue)
            .into_iter()
            .filter(|&(x, y, _)| inside(layout.panels[1], (x, y)))
            .collect();
        assert_eq!(points.len(), 6, "every tensor has a point");
        let y_of = |tensor: usize| {
            points
                .iter()
                .find(|&&(x, y, _)| layout.tensor_at(x, y) == Some(tensor))
                .unwrap()
                .1
        };
        assert_eq!(
            y_of(2),
            top + height as i32 - 1,
            "zero sits on the axis bottom"
        );
        assert_eq!(y_of(3), top, "infinity sits on the top");
        assert!((top..top + height as i32 - 1).contains(&y_of(0)));
        // Threshold lines with their labels, drawn dashed.
        assert_eq!(svg_text_count(&out, "vanishing 1e-6"), 1);
        assert_eq!(svg_text_count(&out, "exploding 1e3"), 1);
        assert!(
            out.matches(&format!("stroke=\"{}\"", hex(Style::light().muted)))
                .count()
                > 40
        );
    }

    #[test]
    fn tensor_at_maps_drawn_tensors_back_and_misses_outside() {
        let gradients: Vec<ParameterGradient> = (0..40)
            .map(|i| {
                gradient(
                    &format!("t{i}"),
                    1e-3 * (i as f64 - 20.0),
                    1e-2,
                    0.1 + i as f64,
                )
            })
            .collect();
        let data = GradientPanelsData {
            flagged: Vec::new(),
            selected: Some(17),
            ..flagged_data(&gradients)
        };
        let (out, layout) = panels_svg(&data, (1000, 700));
        assert_eq!(layout.tensors, 40);
        for (panel, &(left, top, width, height)) in layout.panels.iter().enumerate() {
            assert!(
                width > 100 && height > 100,
                "panel {panel}: {:?}",
                layout.panels
            );
            let middle = top + height as i32 / 2;
            for tensor in 0..40 {
                let x = layout.tensor_x(panel, tensor).unwrap();
                assert_eq!(layout.tensor_at(x, middle), Some(tensor), "panel {panel}");
            }
            assert_eq!(layout.tensor_at(left, middle), Some(0));
            assert_eq!(layout.tensor_at(left + width as i32 - 1, middle), Some(39));
            assert_eq!(layout.tensor_at(left - 1, middle), None);
            assert_eq!(layout.tensor_at(left + width as i32, middle), None);
            assert_eq!(layout.tensor_at(left + 5, top - 1), None);
            assert_eq!(layout.tensor_at(left + 5, top + height as i32), None);
        }
        // The std bars' centres map to their tensors in order.
        let [blue, _] = data_colours(&Style::light());
        let mut bars: Vec<(i32, i32, i32, i32)> = rects(&out, blue)
            .into_iter()
            .filter(|&(x, y, w, h)| inside(layout.panels[2], (x + w / 2, y + h / 2)))
            .collect();
        bars.sort();
        assert_eq!(bars.len(), 40);
        for (tensor, &(x, y, w, h)) in bars.iter().enumerate() {
            assert_eq!(layout.tensor_at(x + w / 2, y + h / 2), Some(tensor));
        }
        // The selected tensor is banded in every panel.
        let bands: Vec<_> = rects(&out, Style::light().foreground)
            .into_iter()
            .filter(|&(x, y, w, h)| {
                w > 2 && h > 50 && layout.tensor_at(x + w / 2, y + h / 2) == Some(17)
            })
            .collect();
        assert_eq!(bands.len(), 4, "{bands:?}");
    }

    #[test]
    fn symlog_panels_label_zero_and_powers_of_ten() {
        let gradients = six();
        let (out, _) = panels_svg(&flagged_data(&gradients), (900, 640));
        assert!(svg_text_count(&out, "0") >= 2);
        let decades = ["1e-6", "1e-4", "0.01", "1", "100"];
        assert!(
            decades
                .iter()
                .any(|tick| svg_text_count(&out, &format!("-{tick}")) > 0)
        );
        assert!(
            decades
                .iter()
                .filter(|tick| svg_text_count(&out, tick) > 0)
                .count()
                >= 2
        );
        assert!(svg_text_count(&out, "tensor") >= 4);
    }

    #[test]
    fn no_gradients_says_so() {
        let data = GradientPanelsData {
            gradients: &[],
            flagged: vec![(0, GradientProblem::Vanishing)],
            thresholds: GradientThresholds::default(),
            selected: Some(0),
        };
        let (out, layout) = panels_svg(&data, (600, 400));
        assert_eq!(svg_text_count(&out, NO_GRADIENTS), 1);
        assert_eq!(layout.tensor_at(300, 200), None);
        // Tiny areas draw without failing.
        for size in [(1, 1), (40, 30)] {
            let gradients = six();
            let (_, layout) = panels_svg(&flagged_data(&gradients), size);
            assert_eq!(layout.tensor_at(0, 0), None);
        }
    }

    #[test]
    fn extreme_values_draw_without_failing() {
        let mut gradients = six();
        gradients[0].gradient = Summary {
            count: 8,
            mean: 1e300,
            std: f64::INFINITY,
            min: -1e300,
            max: f64::NAN,
            norm: 1e300,
        };
        gradients[1].gradient.mean = f64::NAN;
        gradients[2].gradient.norm = f64::NAN;
        let data = GradientPanelsData {
            thresholds: GradientThresholds {
                vanishing: 0.0,
                exploding: f64::INFINITY,
                ..GradientThresholds::default()
            },
            ..flagged_data(&gradients)
        };
        let (out, layout) = panels_svg(&data, (900, 640));
        assert!(layout.panels.iter().all(|panel| panel.2 > 100));
        assert_eq!(
            svg_text_count(&out, "vanishing 0"),
            0,
            "no line at a zero threshold"
        );
        let axis = Axis::SymLog(1e-8);
        assert!(axis.ticks(-400.0, 400.0, 6).len() <= 16);
    }

    /// `a.weight` vanishes at column 1, `b.weight` explodes at column 3 and is NaN at column 2,
    /// the key bias is zero throughout (by construction, so never marked).
    fn history() -> GradientHistory {
        let paths = ["a.weight", "b.weight", "layers.0.attn.key.bias"];
        let mut history = GradientHistory::new(paths.map(String::from).to_vec(), 64);
        let rows = [
            [1e-2, 1.0, 0.0],
            [1e-7, 1.0, 0.0],
            [1e-2, f64::NAN, 0.0],
            [1e-2, 5e3, 0.0],
        ];
        for (column, row) in rows.iter().enumerate() {
            assert!(history.push(10 * column, row));
        }
        history
    }

    fn heatmap_bitmap(
        history: &GradientHistory,
        size: (u32, u32),
    ) -> (
        Vec<u8>,
        GradientHeatmapLayout,
        crate::charts::test_support::Log,
    ) {
        let mut buffer = vec![0u8; (size.0 * size.1 * 3) as usize];
        let (layout, log) = {
            let (backend, log) = Recorder::new(BitMapBackend::with_buffer(&mut buffer, size));
            let data = GradientHeatmapData {
                history,
                thresholds: GradientThresholds::default(),
                cursor: None,
            };
            let layout =
                draw_gradient_heatmap(&backend.into_drawing_area(), &data, &Style::dark()).unwrap();
            (layout, log)
        };
        let log = std::rc::Rc::try_unwrap(log).unwrap().into_inner();
        (buffer, layout, log)
    }

    #[test]
    fn heatmap_marks_only_cells_outside_the_thresholds() {
        let history = history();
        let size = (500, 320);
        let (buffer, layout, log) = heatmap_bitmap(&history, size);
        assert_eq!((layout.tensors, layout.columns), (3, 4));
        let pixel = |(x, y): (i32, i32)| {
            let i = (y as usize * size.0 as usize + x as usize) * 3;
            RGBColor(buffer[i], buffer[i + 1], buffer[i + 2])
        };
        let alarm = Style::dark().alarm;
        let (left, _, width, _) = layout.plot;
        let marked = [(0, 1), (1, 2), (1, 3)];
        for tensor in 0..3 {
            for column in 0..4 {
                let (cx, cy) = layout.cell_center(tensor, column).unwrap();
                assert_eq!(layout.cell_at(cx, cy), Some((tensor, column)));
                let (x0, _) = cell_span(column, 4, width);
                let edge = pixel((left + x0, cy));
                let is_marked = marked.contains(&(tensor, column));
                assert_eq!(edge == alarm, is_marked, "cell ({tensor}, {column}) edge");
                assert_ne!(pixel((cx, cy)), alarm, "the centre keeps the norm's colour");
            }
        }
        // Colours follow log10 of the norm: 1e-7 is the lowest, 5e3 the highest.
        assert_eq!(
            pixel(layout.cell_center(0, 1).unwrap()),
            colormap::sequential(0.0)
        );
        assert_eq!(
            pixel(layout.cell_center(1, 3).unwrap()),
            colormap::sequential(1.0)
        );
        assert_eq!(
            pixel(layout.cell_center(1, 2).unwrap()),
            colormap::NAN_COLOR
        );
        // Labels: paths, steps and decade ticks on the colour bar.
        for text in [
            "a.weight", "b.weight", "0", "30", "step", "tensor", "1e-6", "1",
        ] {
            assert!(
                log.texts.iter().any(|t| t == text),
                "missing {text}: {:?}",
                log.texts
            );
        }
        assert!(
            log.texts
                .iter()
                .any(|t| t == "marked: gradient norm < 1e-6 or > 1e3")
        );
        // Outside the cells.
        let (x, y, w, h) = layout.plot;
        assert_eq!(layout.cell_at(x - 1, y), None);
        assert_eq!(layout.cell_at(x, y + h as i32), None);
        assert_eq!(layout.cell_at(x + w as i32, y), None);
    }

    #[test]
    fn heatmap_of_40_tensors_by_512_steps_is_one_image() {
        let paths: Vec<String> = (0..40)
            .map(|i| format!("layers.{}.ff.linear1.weight", i / 4))
            .collect();
        let mut history = GradientHistory::new(paths, 512);
        for step in 0..512 {
            let norms: Vec<f64> = (0..40)
                .map(|tensor| {
                    if tensor == 7 && step >= 300 {
                        0.0
                    } else {
                        1e-3 * (1.0 + tensor as f64) * (1.0 + step as f64 / 100.0)
                    }
                })
                .collect();
            history.push(step * 5, &norms);
        }
        assert_eq!(history.len(), 512);
        let size = (900, 600);
        let (buffer, layout, log) = heatmap_bitmap(&history, size);
        // The cells and the colour bar are one blit each; marks add no rectangles.
        assert_eq!(log.blits, 2);
        assert!(log.rects < 10, "{} rectangles", log.rects);
        assert!(log.texts.len() < 150, "{} labels", log.texts.len());
        let pixel = |(x, y): (i32, i32)| {
            let i = (y as usize * size.0 as usize + x as usize) * 3;
            RGBColor(buffer[i], buffer[i + 1], buffer[i + 2])
        };
        let alarm = Style::dark().alarm;
        // Cells are narrower than an outline: marked ones get a band through the centre.
        for column in [299, 300, 400, 511] {
            let Some(centre) = layout.cell_center(7, column) else {
                continue;
            };
            assert_eq!(pixel(centre) == alarm, column >= 300, "column {column}");
            assert_ne!(pixel(layout.cell_center(8, column).unwrap()), alarm);
            // The top row of the cell keeps the norm's colour (zero: the lowest).
            let (row_top, _) = cell_span(7, 40, layout.plot.3);
            let above = pixel((centre.0, layout.plot.1 + row_top));
            assert_ne!(above, alarm);
            if column >= 300 {
                assert_eq!(above, colormap::sequential(0.0));
            }
        }
        // Hovering finds the cell whatever its size.
        let (x, y, w, h) = layout.plot;
        assert_eq!(layout.cell_at(x, y), Some((0, 0)));
        assert_eq!(
            layout.cell_at(x + w as i32 - 1, y + h as i32 - 1),
            Some((39, 511))
        );
    }

    #[test]
    fn empty_history_says_so() {
        let history = GradientHistory::new(vec!["a".into()], 16);
        let mut out = String::new();
        let layout = {
            let area = SVGBackend::with_string(&mut out, (400, 300)).into_drawing_area();
            let data = GradientHeatmapData {
                history: &history,
                thresholds: GradientThresholds::default(),
                cursor: Some((0, 0)),
            };
            draw_gradient_heatmap(&area, &data, &Style::light()).unwrap()
        };
        assert_eq!(svg_text_count(&out, NO_STEPS), 1);
        assert_eq!(layout, GradientHeatmapLayout::empty());
        assert_eq!(layout.cell_at(100, 100), None);
    }

    #[test]
    fn heatmap_cursor_is_outlined() {
        let history = history();
        let mut out = String::new();
        let style = Style::light();
        let layout = {
            let area = SVGBackend::with_string(&mut out, (500, 320)).into_drawing_area();
            let data = GradientHeatmapData {
                history: &history,
                thresholds: GradientThresholds::default(),
                cursor: Some((2, 1)),
            };
            draw_gradient_heatmap(&area, &data, &style).unwrap()
        };
        let outline = format!("stroke=\"{}\"", hex(style.foreground));
        let outlines: Vec<&str> = out
            .split("<rect")
            .skip(1)
            .filter(|tag| tag.split("/>").next().unwrap().contains(&outline))
            .collect();
        assert_eq!(outlines.len(), 1);
        let n = |name| attr(outlines[0], name).unwrap().parse::<i32>().unwrap();
        let centre = (n("x") + n("width") / 2, n("y") + n("height") / 2);
        assert_eq!(layout.cell_at(centre.0, centre.1), Some((2, 1)));
    }
}
