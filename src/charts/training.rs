//! The training monitor: line charts of loss, accuracy, learning rate, gradient norm and update ratio.

use super::ticks::{linear_ticks, trim_zeros};
use super::{ChartError, PixelRect, Style, anchored, clear, draw_message, draw_title, text_size};
use plotters::chart::{ChartBuilder, SeriesLabelPosition};
use plotters::coord::Shift;
use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::drawing::DrawingArea;
use plotters::element::{EmptyElement, PathElement, Rectangle, Text};
use plotters::prelude::DrawingBackend;
use plotters::series::{DashedLineSeries, LineSeries};
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::{Color, RGBColor};

/// One series of `(step, value)` points. Non-finite points are always skipped; on a log axis,
/// values ≤ 0 are skipped too.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Name shown in the legend, e.g. `train` or `validation`.
    pub label: String,
    /// The points in step order.
    pub points: Vec<(f64, f64)>,
}

/// How the y axis maps values to pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    /// Equal distances for equal differences.
    #[default]
    Linear,
    /// Equal distances for equal ratios; for values that span decades, such as a learning rate.
    Log,
}

/// What [`draw_panel`] draws: one chart of the training monitor.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PanelData {
    /// Title above the chart; empty for none.
    pub title: String,
    /// Caption of the y axis, e.g. `loss`.
    pub y_label: String,
    /// Linear or logarithmic y axis.
    pub scale: Scale,
    /// The lines, each in its own colour; a legend appears when there are two or more.
    pub series: Vec<Series>,
    /// Horizontal reference lines `(value, label)`, e.g. `(1e-3, "1e-3")` for the update ratio.
    pub reference_lines: Vec<(f64, String)>,
    /// Steps to show (zoom); `None` shows all data.
    pub x_range: Option<(f64, f64)>,
    /// Step under the pointer, marked with a vertical rule.
    pub cursor: Option<f64>,
}

/// Where [`draw_panel`] put the plot, for mapping the pointer back to a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PanelLayout {
    /// The plot (inside the axes) in area pixels: left, top, width, height.
    pub plot: PixelRect,
    /// The steps at the left and right edges of the plot.
    pub x_range: (f64, f64),
}

impl PanelLayout {
    /// The step under area column `x`: the x range's start at the plot's left pixel and its end at
    /// the right pixel; `None` outside the plot.
    pub fn step_at(&self, x: i32) -> Option<f64> {
        let (left, _, width, _) = self.plot;
        let offset = x.checked_sub(left)?;
        if offset < 0 || i64::from(offset) >= i64::from(width) {
            return None;
        }
        let (start, end) = self.x_range;
        if width == 1 {
            return Some(start);
        }
        Some(start + (end - start) * f64::from(offset) / f64::from(width - 1))
    }
}

/// Panels per row in [`draw_monitor`]: the seed chapter's `plt.subplots(2, 3)`.
const MONITOR_COLUMNS: usize = 3;

/// Shown in a panel without a single drawable point.
const NO_DATA: &str = "no data yet";

/// Shown when the zoom leaves out every point.
const NO_DATA_IN_RANGE: &str = "no data in this range";

/// Caption of the x axis.
const X_CAPTION: &str = "step";

/// Fraction of the value span added above and below the data.
const Y_PADDING: f64 = 0.05;

/// Blank pixels around the chart inside its area.
const MARGIN: i32 = 6;

/// Blank pixels right of the plot, so that the last x tick label fits.
const RIGHT_MARGIN: i32 = 14;

/// Line colours on a light page: blue and red first, as the seed chapter's train and
/// validation loss.
const LIGHT_PALETTE: [RGBColor; 5] = [
    RGBColor(37, 99, 235),
    RGBColor(220, 38, 38),
    RGBColor(22, 163, 74),
    RGBColor(147, 51, 234),
    RGBColor(234, 88, 12),
];

/// Line colours on a dark page: the same hues, lighter.
const DARK_PALETTE: [RGBColor; 5] = [
    RGBColor(96, 165, 250),
    RGBColor(248, 113, 113),
    RGBColor(74, 222, 128),
    RGBColor(192, 132, 252),
    RGBColor(251, 146, 60),
];

/// The colour of series `index`.
fn series_colour(style: &Style, index: usize) -> RGBColor {
    let palette = if style.dark {
        &DARK_PALETTE
    } else {
        &LIGHT_PALETTE
    };
    palette[index % palette.len()]
}

/// The panel's data made ready to draw: clipped to the x range, with the axis ranges.
struct Prepared {
    /// Steps at the left and right edges.
    x_range: (f64, f64),
    /// Value range of the y axis; `None` when nothing is drawn.
    y_range: Option<(f64, f64)>,
    /// Each series' points inside the x range, in order.
    lines: Vec<Vec<(f64, f64)>>,
    /// Why nothing is drawn, if so.
    message: Option<&'static str>,
}

/// Whether `value` can be drawn on `scale`.
fn drawable(value: f64, scale: Scale) -> bool {
    value.is_finite() && (scale == Scale::Linear || value > 0.0)
}

/// `range` ordered and at least a step wide, or `None` when it is not finite.
fn sanitize_range((a, b): (f64, f64)) -> Option<(f64, f64)> {
    if !a.is_finite() || !b.is_finite() {
        return None;
    }
    let (lo, hi) = (a.min(b), a.max(b));
    if hi - lo > f64::EPSILON * lo.abs().max(1.0) {
        Some((lo, hi))
    } else {
        Some((lo - 0.5, hi + 0.5))
    }
}

/// The point on segment `a → b` at step `x`; on a log axis the value is interpolated in log
/// space, which is where the drawn segment is straight.
fn interpolate(a: (f64, f64), b: (f64, f64), x: f64, scale: Scale) -> (f64, f64) {
    let t = (x - a.0) / (b.0 - a.0);
    let y = match scale {
        Scale::Linear => a.1 + t * (b.1 - a.1),
        Scale::Log => (a.1.ln() + t * (b.1.ln() - a.1.ln())).exp(),
    };
    (x, y)
}

/// The part of the line through `points` with steps in `lo..=hi`: points outside are dropped and
/// segments that cross an edge end at the edge, so a zoom between two far-apart points still
/// shows the line between them.
fn clip_to_range(points: &[(f64, f64)], (lo, hi): (f64, f64), scale: Scale) -> Vec<(f64, f64)> {
    let inside = |x: f64| (lo..=hi).contains(&x);
    let mut clipped = Vec::new();
    let mut previous: Option<(f64, f64)> = None;
    for &point in points {
        if let Some(before) = previous {
            match (inside(before.0), inside(point.0)) {
                (false, true) => {
                    let edge = if before.0 < lo { lo } else { hi };
                    if point.0 != edge {
                        clipped.push(interpolate(before, point, edge, scale));
                    }
                }
                (true, false) => {
                    let edge = if point.0 < lo { lo } else { hi };
                    if before.0 != edge {
                        clipped.push(interpolate(before, point, edge, scale));
                    }
                }
                (false, false) if (before.0 < lo) != (point.0 < lo) => {
                    // The segment jumps over the whole range.
                    let (first, second) = if before.0 < lo { (lo, hi) } else { (hi, lo) };
                    clipped.push(interpolate(before, point, first, scale));
                    clipped.push(interpolate(before, point, second, scale));
                }
                _ => {}
            }
        }
        if inside(point.0) {
            clipped.push(point);
        }
        previous = Some(point);
    }
    clipped
}

/// `points` (all with steps in `lo..=hi`) cut down to the lowest and highest point of each of
/// `columns` pixel columns, in their original order, when there are more points than columns.
/// The drawn line looks the same, and drawing costs at most two points per column.
fn decimate(points: &[(f64, f64)], (lo, hi): (f64, f64), columns: usize) -> Vec<(f64, f64)> {
    if columns == 0 || points.len() <= columns || hi <= lo {
        return points.to_vec();
    }
    let scale = columns as f64 / (hi - lo);
    // Index of the lowest and of the highest point in each column.
    let mut extremes: Vec<Option<(usize, usize)>> = vec![None; columns];
    for (index, &(x, y)) in points.iter().enumerate() {
        let column = (((x - lo) * scale).floor().max(0.0) as usize).min(columns - 1);
        let Some(slot) = extremes.get_mut(column) else {
            continue;
        };
        match slot {
            None => *slot = Some((index, index)),
            Some((low, high)) => {
                if y < points[*low].1 {
                    *low = index;
                }
                if y > points[*high].1 {
                    *high = index;
                }
            }
        }
    }
    let mut kept = Vec::with_capacity(2 * columns);
    for (low, high) in extremes.into_iter().flatten() {
        kept.push(points[low.min(high)]);
        if low != high {
            kept.push(points[low.max(high)]);
        }
    }
    kept
}

/// The y range that shows `values` with a little room above and below; a single value still
/// gives a range of non-zero height.
fn padded_range(lo: f64, hi: f64, scale: Scale) -> (f64, f64) {
    match scale {
        Scale::Linear => {
            let span = hi - lo;
            if span > f64::EPSILON * lo.abs().max(hi.abs()).max(1e-300) {
                (lo - Y_PADDING * span, hi + Y_PADDING * span)
            } else if lo == 0.0 {
                (-1.0, 1.0)
            } else {
                let room = 0.1 * lo.abs();
                (lo - room, hi + room)
            }
        }
        Scale::Log => {
            let span = (hi / lo).log10();
            if span > 1e-9 {
                let factor = 10f64.powf(Y_PADDING * span);
                (lo / factor, hi * factor)
            } else {
                (lo / 2.0, hi * 2.0)
            }
        }
    }
}

/// Clips every series to the x range and finds the axis ranges.
fn prepare(data: &PanelData) -> Prepared {
    let scale = data.scale;
    let valid: Vec<Vec<(f64, f64)>> = data
        .series
        .iter()
        .map(|series| {
            series
                .points
                .iter()
                .copied()
                .filter(|&(x, y)| x.is_finite() && drawable(y, scale))
                .collect()
        })
        .collect();
    let steps = valid.iter().flatten().map(|&(x, _)| x);
    let data_x = steps
        .clone()
        .fold(None, |range: Option<(f64, f64)>, x| match range {
            None => Some((x, x)),
            Some((lo, hi)) => Some((lo.min(x), hi.max(x))),
        });
    let x_range = data
        .x_range
        .and_then(sanitize_range)
        .or_else(|| data_x.and_then(sanitize_range))
        .unwrap_or((0.0, 1.0));
    let lines: Vec<Vec<(f64, f64)>> = valid
        .iter()
        .map(|points| clip_to_range(points, x_range, scale))
        .collect();

    let message = if data_x.is_none() {
        Some(NO_DATA)
    } else if lines.iter().all(Vec::is_empty) {
        Some(NO_DATA_IN_RANGE)
    } else {
        None
    };
    let y_range = if message.is_some() {
        None
    } else {
        // Reference lines are part of the range, so the line they mark is always in view.
        let references = data
            .reference_lines
            .iter()
            .map(|(value, _)| *value)
            .filter(|&value| drawable(value, scale));
        lines
            .iter()
            .flatten()
            .map(|&(_, y)| y)
            .chain(references)
            .fold(None, |range: Option<(f64, f64)>, y| match range {
                None => Some((y, y)),
                Some((lo, hi)) => Some((lo.min(y), hi.max(y))),
            })
            .map(|(lo, hi)| padded_range(lo, hi, scale))
    };
    Prepared {
        x_range,
        y_range,
        lines,
        message,
    }
}

/// Ticks for a log axis over `lo..=hi` (both positive): powers of ten when the range spans
/// decades, else 1-2-5 or 1…9 times a power of ten, else round linear ticks; at most `target`.
fn log_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let target = target.max(2);
    let first_decade = lo.log10().floor() as i32;
    let last_decade = hi.log10().ceil() as i32;
    let mantissa_sets: [&[f64]; 3] = [
        &[1.0],
        &[1.0, 2.0, 5.0],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    ];
    for mantissas in mantissa_sets {
        let ticks: Vec<f64> = (first_decade..=last_decade)
            .flat_map(|decade| mantissas.iter().map(move |m| m * 10f64.powi(decade)))
            .filter(|&tick| tick >= lo * (1.0 - 1e-9) && tick <= hi * (1.0 + 1e-9))
            .collect();
        if ticks.len() >= 2 {
            let every = ticks.len().div_ceil(target);
            return ticks.into_iter().step_by(every).collect();
        }
    }
    linear_ticks(lo, hi, target.min(4))
}

/// `value` in at most four significant digits, in scientific notation when very large or small:
/// `0.001`, `2.35`, `1e-4`, `2.5e6`.
fn format_value(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let magnitude = value.abs();
    if !(1e-3..1e5).contains(&magnitude) {
        let text = format!("{value:.2e}");
        let Some((mantissa, exponent)) = text.split_once('e') else {
            return text;
        };
        return format!("{}e{exponent}", trim_zeros(mantissa));
    }
    let decimals = (3 - magnitude.log10().floor() as i32).clamp(0, 6) as usize;
    trim_zeros(&format!("{value:.decimals$}")).to_string()
}

/// A step count, shortened with `k` and `M`: `500`, `12.5k`, `2M`.
fn format_step(step: f64) -> String {
    let magnitude = step.abs();
    if magnitude >= 1e6 {
        format!("{}M", format_value(step / 1e6))
    } else if magnitude >= 1e4 {
        format!("{}k", format_value(step / 1e3))
    } else {
        format_value(step)
    }
}

/// Draws one panel: title, axes, a line per series, reference lines, cursor and legend, and
/// returns where the plot is.
pub fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PanelData,
    style: &Style,
) -> Result<PanelLayout, ChartError> {
    clear(area, style)?;
    let top = draw_title(area, &data.title, style)?;
    let prepared = prepare(data);
    let (_, body) = area.split_vertically(top.max(0));
    let (body_width, body_height) = body.dim_in_pixel();
    let line_height = text_size(area, "Ag", &style.label_font())?.1;
    let x_label_area = 2 * line_height + 14;
    // Room for about one tick label every three lines.
    let plot_height_guess = body_height as i32 - x_label_area - MARGIN;
    let y_target = (plot_height_guess / (3 * line_height.max(1))).clamp(2, 6) as usize;

    let frame = Frame {
        body: &body,
        body_size: (body_width, body_height),
        line_height,
        x_label_area,
    };
    // Without data the axes get no ticks, and these ranges only place the frame.
    match data.scale {
        Scale::Linear => {
            let (lo, hi) = prepared.y_range.unwrap_or((0.0, 1.0));
            let ticks = match prepared.y_range {
                Some(_) => linear_ticks(lo, hi, y_target),
                None => Vec::new(),
            };
            let y_axis = Ticked {
                inner: RangedCoordf64::from(lo..hi),
                ticks,
            };
            draw_chart(area, &frame, data, &prepared, y_axis, style)
        }
        Scale::Log => {
            let (lo, hi) = prepared.y_range.unwrap_or((1.0, 10.0));
            let ticks = match prepared.y_range {
                Some(_) => log_ticks(lo, hi, y_target),
                None => Vec::new(),
            };
            let y_axis = Ticked {
                inner: LogCoord::from((lo..hi).log_scale()),
                ticks,
            };
            draw_chart(area, &frame, data, &prepared, y_axis, style)
        }
    }
}

/// An axis with our own tick values: plotters' log axis finds no ticks at all in a range
/// narrower than a decade, and its labels cannot be measured before the chart is built.
pub(crate) struct Ticked<R> {
    /// The axis that maps values to pixels.
    pub(crate) inner: R,
    /// The values that get a tick, a grid line and a label.
    pub(crate) ticks: Vec<f64>,
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Only bold ticks: light grid lines would clutter a small panel.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }

    fn axis_pixel_range(&self, limit: (i32, i32)) -> std::ops::Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

/// The part of a panel below its title, and the sizes measured for it.
struct Frame<'a, DB: DrawingBackend> {
    /// The panel area below the title.
    body: &'a DrawingArea<DB, Shift>,
    /// Size of `body` in pixels.
    body_size: (u32, u32),
    /// Height of one line of label text.
    line_height: i32,
    /// Height of the band below the plot for x tick labels and the x caption.
    x_label_area: i32,
}

/// Draws the axes and everything inside them, with `y_axis` as the y axis.
fn draw_chart<DB, R>(
    area: &DrawingArea<DB, Shift>,
    frame: &Frame<DB>,
    data: &PanelData,
    prepared: &Prepared,
    y_axis: Ticked<R>,
    style: &Style,
) -> Result<PanelLayout, ChartError>
where
    DB: DrawingBackend,
    R: Ranged<ValueType = f64>,
{
    let label_font = style.label_font();
    let caption_font = style.caption_font();
    let (x_lo, x_hi) = prepared.x_range;
    let y_range = y_axis.range();
    let (y_lo, y_hi) = (y_range.start, y_range.end);
    let mut tick_width = 0;
    for tick in &y_axis.ticks {
        tick_width = tick_width.max(text_size(area, &format_value(*tick), &label_font)?.0);
    }
    let y_label_area = tick_width + frame.line_height + 16;
    let (body_width, body_height) = frame.body_size;
    let plot_width = body_width as i32 - y_label_area - MARGIN - RIGHT_MARGIN;
    let plot_height = body_height as i32 - frame.x_label_area - 2 * MARGIN;
    let (area_x, area_y) = area.get_base_pixel();
    if plot_width < 8 || plot_height < 8 {
        // Too small for axes: say why nothing is drawn, if there is a reason.
        if let Some(message) = prepared.message {
            draw_message(area, message, style)?;
        }
        return Ok(PanelLayout {
            plot: (0, 0, 0, 0),
            x_range: prepared.x_range,
        });
    }

    let x_ticks = if prepared.message.is_some() {
        Vec::new()
    } else {
        x_ticks_that_fit(area, prepared.x_range, plot_width, &label_font)?
    };
    let mut chart = ChartBuilder::on(frame.body)
        .margin(MARGIN)
        .margin_right(RIGHT_MARGIN)
        .x_label_area_size(frame.x_label_area)
        .y_label_area_size(y_label_area)
        .build_cartesian_2d(
            Ticked {
                inner: RangedCoordf64::from(x_lo..x_hi),
                ticks: x_ticks,
            },
            y_axis,
        )?;
    chart
        .configure_mesh()
        .bold_line_style(style.grid)
        .light_line_style(style.background)
        .axis_style(style.muted)
        .label_style(label_font.clone())
        .axis_desc_style(caption_font.clone())
        .x_label_formatter(&|step| format_step(*step))
        .y_label_formatter(&|value| format_value(*value))
        .x_desc(X_CAPTION)
        .y_desc(data.y_label.as_str())
        .draw()?;

    let plot_area = chart.plotting_area().strip_coord_spec();
    let (plot_x, plot_y) = plot_area.get_base_pixel();
    let (plot_w, plot_h) = plot_area.dim_in_pixel();
    let layout = PanelLayout {
        plot: (plot_x - area_x, plot_y - area_y, plot_w, plot_h),
        x_range: prepared.x_range,
    };
    let frame_corners = [(0, 0), (plot_w as i32 - 1, plot_h as i32 - 1)];
    plot_area.draw(&Rectangle::new(frame_corners, style.grid))?;
    if let Some(message) = prepared.message {
        draw_message(&plot_area, message, style)?;
        return Ok(layout);
    }

    for (value, label) in &data.reference_lines {
        if !drawable(*value, data.scale) {
            continue;
        }
        chart.draw_series(DashedLineSeries::new(
            [(x_lo, *value), (x_hi, *value)],
            6,
            4,
            style.muted.stroke_width(1),
        ))?;
        // The label sits above the line at the right, or below it when the line is at the top.
        let line_y = chart.backend_coord(&(x_hi, *value)).1 - plot_y;
        let (v_pos, offset) = if line_y < frame.line_height + 4 {
            (VPos::Top, 3)
        } else {
            (VPos::Bottom, -3)
        };
        let font = anchored(&caption_font, HPos::Right, v_pos);
        chart.draw_series(std::iter::once(
            EmptyElement::at((x_hi, *value)) + Text::new(label.clone(), (-4, offset), font),
        ))?;
    }

    let columns = plot_w as usize;
    for (index, (series, line)) in data.series.iter().zip(&prepared.lines).enumerate() {
        let colour = series_colour(style, index);
        let points = decimate(line, prepared.x_range, columns);
        let annotation = chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?;
        annotation
            .label(series.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
    }

    if let Some(step) = data.cursor.filter(|step| (x_lo..=x_hi).contains(step)) {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(step, y_lo), (step, y_hi)],
            style.foreground.mix(0.6).stroke_width(1),
        )))?;
    }

    if data.series.len() >= 2 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(style.background.mix(0.85).filled())
            .border_style(style.grid)
            .label_font(label_font)
            .draw()?;
    }
    Ok(layout)
}

/// Round x ticks over `range` whose labels fit side by side in `plot_width` pixels.
fn x_ticks_that_fit<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (lo, hi): (f64, f64),
    plot_width: i32,
    font: &plotters::style::TextStyle,
) -> Result<Vec<f64>, ChartError> {
    let mut target = (plot_width / 60).clamp(2, 10) as usize;
    loop {
        let ticks = linear_ticks(lo, hi, target);
        let mut widest = 0;
        for tick in &ticks {
            widest = widest.max(text_size(area, &format_step(*tick), font)?.0);
        }
        let pitch = plot_width / ticks.len().max(1) as i32;
        if widest + 12 <= pitch || target <= 2 {
            return Ok(ticks);
        }
        target -= 1;
    }
}

/// Draws the panels in a grid three wide (the seed chapter's two rows of three for six panels)
/// and returns each panel's layout, in area pixels, in the order given.
pub fn draw_monitor<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panels: &[PanelData],
    style: &Style,
) -> Result<Vec<PanelLayout>, ChartError> {
    clear(area, style)?;
    if panels.is_empty() {
        draw_message(area, NO_DATA, style)?;
        return Ok(Vec::new());
    }
    let columns = panels.len().min(MONITOR_COLUMNS);
    let rows = panels.len().div_ceil(columns);
    let cells = area.split_evenly((rows, columns));
    let (area_x, area_y) = area.get_base_pixel();
    let mut layouts = Vec::with_capacity(panels.len());
    for (panel, cell) in panels.iter().zip(&cells) {
        let layout = draw_panel(cell, panel, style)?;
        let (cell_x, cell_y) = cell.get_base_pixel();
        let (left, top, width, height) = layout.plot;
        layouts.push(PanelLayout {
            plot: (left + cell_x - area_x, top + cell_y - area_y, width, height),
            ..layout
        });
    }
    Ok(layouts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::test_support::{Recorder, svg_text_count};
    use plotters::prelude::{BitMapBackend, IntoDrawingArea};
    use plotters_svg::SVGBackend;

    fn series(label: &str, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.to_string(),
            points,
        }
    }

    /// A panel with one series called `train`.
    fn panel(scale: Scale, points: Vec<(f64, f64)>) -> PanelData {
        PanelData {
            title: "panel".to_string(),
            y_label: "value".to_string(),
            scale,
            series: vec![series("train", points)],
            ..PanelData::default()
        }
    }

    /// A falling loss curve with `n` points at steps `0..n`.
    fn loss_curve(n: usize) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| (i as f64, 2.0 + 3.0 / (1.0 + i as f64 / 50.0)))
            .collect()
    }

    fn svg(data: &PanelData, size: (u32, u32)) -> (String, PanelLayout) {
        let mut out = String::new();
        let layout = {
            let area = SVGBackend::with_string(&mut out, size).into_drawing_area();
            draw_panel(&area, data, &Style::light()).unwrap()
        };
        (out, layout)
    }

    /// The points of every SVG polyline stroked in `colour`.
    fn polylines(svg: &str, colour: RGBColor) -> Vec<Vec<(i32, i32)>> {
        let stroke = format!(
            "stroke=\"#{:02X}{:02X}{:02X}\"",
            colour.0, colour.1, colour.2
        );
        svg.split("<polyline")
            .skip(1)
            .filter(|tag| tag.split("/>").next().unwrap().contains(&stroke))
            .map(|tag| {
                let points = tag.split("points=\"").nth(1).unwrap();
                let points = points.split('"').next().unwrap();
                points
                    .split_whitespace()
                    .map(|pair| {
                        let (x, y) = pair.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    fn first_line(svg: &str) -> Vec<(i32, i32)> {
        let lines = polylines(svg, LIGHT_PALETTE[0]);
        assert_eq!(lines.len(), 1, "expected one line in the first colour");
        lines.into_iter().next().unwrap()
    }

    #[test]
    fn title_axis_captions_and_legend_are_written() {
        let data = PanelData {
            title: "Training and Validation Loss".to_string(),
            y_label: "loss".to_string(),
            series: vec![
                series("train", loss_curve(200)),
                series("validation", vec![(0.0, 5.0), (100.0, 3.0), (199.0, 2.8)]),
            ],
            ..PanelData::default()
        };
        let (out, _) = svg(&data, (480, 320));
        for text in [
            "Training and Validation Loss",
            "loss",
            "step",
            "train",
            "validation",
        ] {
            assert!(svg_text_count(&out, text) > 0, "missing {text}");
        }
        assert_eq!(
            polylines(&out, LIGHT_PALETTE[0]).len(),
            2,
            "line and legend"
        );
        assert_eq!(
            polylines(&out, LIGHT_PALETTE[1]).len(),
            2,
            "line and legend"
        );
    }

    #[test]
    fn one_series_has_no_legend() {
        let (out, _) = svg(&panel(Scale::Linear, loss_curve(50)), (400, 300));
        assert_eq!(svg_text_count(&out, "train"), 0);
        assert_eq!(polylines(&out, LIGHT_PALETTE[0]).len(), 1);
    }

    #[test]
    fn log_panel_skips_values_that_are_not_positive() {
        let points = vec![
            (0.0, 1e-2),
            (1.0, 0.0),
            (2.0, -3.0),
            (3.0, 1e-3),
            (4.0, f64::NAN),
            (f64::INFINITY, 1.0),
            (5.0, f64::INFINITY),
            (6.0, 1e-4),
        ];
        let (out, _) = svg(&panel(Scale::Log, points.clone()), (400, 300));
        assert_eq!(first_line(&out).len(), 3);
        // Decades get labelled ticks.
        for tick in ["1e-4", "0.001", "0.01"] {
            assert!(svg_text_count(&out, tick) > 0, "missing tick {tick}");
        }
        // On a linear axis only the non-finite points go.
        let (out, _) = svg(&panel(Scale::Linear, points), (400, 300));
        assert_eq!(first_line(&out).len(), 5);
    }

    #[test]
    fn log_panel_narrower_than_a_decade_still_has_ticks() {
        let points = vec![(0.0, 2.1e-4), (10.0, 2.9e-4), (20.0, 2.5e-4)];
        let (out, _) = svg(&panel(Scale::Log, points), (400, 300));
        assert!(svg_text_count(&out, "2.5e-4") > 0 || svg_text_count(&out, "2.2e-4") > 0);
    }

    #[test]
    fn reference_line_is_dashed_and_labelled() {
        let mut data = panel(
            Scale::Log,
            (1..100).map(|i| (i as f64, 1e-2 / i as f64)).collect(),
        );
        data.reference_lines = vec![(1e-3, "1e-3 (typical)".to_string())];
        let (out, layout) = svg(&data, (400, 300));
        assert!(svg_text_count(&out, "1e-3 (typical)") > 0);
        // A dashed line is many short muted paths inside the plot (tick marks are outside).
        let left = layout.plot.0;
        let is_dash = |line: &Vec<(i32, i32)>| {
            let (first, last) = (line[0], line[line.len() - 1]);
            first.1 == last.1 && (last.0 - first.0).abs() <= 6 && first.0 >= left
        };
        let dashes: Vec<_> = polylines(&out, Style::light().muted)
            .into_iter()
            .filter(is_dash)
            .collect();
        assert!(dashes.len() > 20, "{} dashes", dashes.len());
        assert!(dashes.iter().all(|dash| dash[0].1 == dashes[0][0].1));
    }

    #[test]
    fn reference_line_is_kept_in_view() {
        // The ratio stays near 1e-5, the reference is at 1e-3: the axis must reach it.
        let mut data = panel(Scale::Log, vec![(0.0, 1e-5), (10.0, 2e-5)]);
        data.reference_lines = vec![(1e-3, "1e-3".to_string())];
        let (out, _) = svg(&data, (400, 300));
        assert!(svg_text_count(&out, "1e-3") > 0);
        assert!(!polylines(&out, Style::light().muted).is_empty());
    }

    #[test]
    fn empty_panels_say_no_data_yet() {
        let no_series = PanelData {
            title: "Validation Accuracy".to_string(),
            ..PanelData::default()
        };
        let no_points = panel(Scale::Linear, Vec::new());
        let nothing_positive = panel(Scale::Log, vec![(0.0, 0.0), (1.0, -1.0)]);
        for data in [no_series, no_points, nothing_positive] {
            let (out, layout) = svg(&data, (400, 300));
            assert!(svg_text_count(&out, NO_DATA) > 0, "{data:?}");
            let (_, _, width, height) = layout.plot;
            assert!(
                width > 100 && height > 100,
                "the frame is drawn: {layout:?}"
            );
            assert!(polylines(&out, LIGHT_PALETTE[0]).is_empty());
        }
    }

    #[test]
    fn zoom_outside_the_data_says_so() {
        let mut data = panel(Scale::Linear, loss_curve(100));
        data.x_range = Some((500.0, 600.0));
        let (out, layout) = svg(&data, (400, 300));
        assert!(svg_text_count(&out, NO_DATA_IN_RANGE) > 0);
        assert_eq!(layout.x_range, (500.0, 600.0));
    }

    #[test]
    fn single_point_and_flat_series_draw() {
        for points in [
            vec![(5.0, 2.0)],
            vec![(0.0, 1.0), (10.0, 1.0)],
            vec![(3.0, 0.0)],
        ] {
            for scale in [Scale::Linear, Scale::Log] {
                let (out, layout) = svg(&panel(scale, points.clone()), (400, 300));
                let (lo, hi) = layout.x_range;
                assert!(hi > lo);
                let positive = points.iter().filter(|p| p.1 > 0.0).count();
                let expected = if scale == Scale::Log {
                    positive
                } else {
                    points.len()
                };
                if expected > 0 {
                    assert_eq!(first_line(&out).len(), expected, "{points:?} {scale:?}");
                }
            }
        }
    }

    #[test]
    fn step_at_maps_plot_edges_to_the_x_range() {
        let (out, layout) = svg(&panel(Scale::Linear, loss_curve(1000)), (640, 360));
        let (left, _, width, _) = layout.plot;
        let right = left + width as i32 - 1;
        assert_eq!(layout.x_range, (0.0, 999.0));
        let step_per_pixel = 999.0 / f64::from(width - 1);
        assert!((layout.step_at(left).unwrap() - 0.0).abs() <= 1.0);
        assert!((layout.step_at(right).unwrap() - 999.0).abs() <= 1.0);
        assert_eq!(layout.step_at(left - 1), None);
        assert_eq!(layout.step_at(right + 1), None);
        assert_eq!(layout.step_at(i32::MIN), None);
        // The line starts and ends at the plot edges, where step_at says its steps are.
        let line = first_line(&out);
        let (first, last) = (line[0], line[line.len() - 1]);
        assert_eq!((first.0, last.0), (left, right));
        let middle = line[line.len() / 2];
        let step = layout.step_at(middle.0).unwrap();
        let drawn_step = 999.0 * (line.len() / 2) as f64 / (line.len() - 1) as f64;
        assert!((step - drawn_step).abs() <= 2.0 * step_per_pixel + 1.0);
    }

    #[test]
    fn zoom_draws_only_the_points_in_range() {
        let mut data = panel(Scale::Linear, loss_curve(1000));
        let (full, _) = svg(&data, (1400, 400));
        data.x_range = Some((100.0, 200.0));
        let (zoomed, layout) = svg(&data, (1400, 400));
        assert_eq!(layout.x_range, (100.0, 200.0));
        let full = first_line(&full);
        let zoomed = first_line(&zoomed);
        assert_eq!(full.len(), 1000, "the full line fits without thinning");
        assert_eq!(zoomed.len(), 101);
        let (left, _, width, _) = layout.plot;
        assert!(
            zoomed
                .iter()
                .all(|p| p.0 >= left && p.0 < left + width as i32)
        );
    }

    #[test]
    fn zoom_between_two_points_shows_the_segment() {
        let mut data = panel(Scale::Linear, vec![(0.0, 1.0), (100.0, 2.0)]);
        data.x_range = Some((40.0, 60.0));
        let (out, layout) = svg(&data, (400, 300));
        let line = first_line(&out);
        let (left, _, width, _) = layout.plot;
        assert_eq!(line.len(), 2);
        assert_eq!((line[0].0, line[1].0), (left, left + width as i32 - 1));
    }

    #[test]
    fn a_hundred_thousand_points_draw_at_most_two_per_column() {
        let n = 100_000;
        let mut points: Vec<(f64, f64)> = (0..n)
            .map(|i| (i as f64, 1.0 + ((i * 7919) % 1000) as f64 / 1000.0))
            .collect();
        points[54_321].1 = 10.0; // A spike that must survive thinning.
        let (out, layout) = svg(&panel(Scale::Linear, points.clone()), (600, 300));
        let (_, top, width, _) = layout.plot;
        let line = first_line(&out);
        assert!(line.len() <= 2 * width as usize, "{} points", line.len());
        assert!(line.len() >= width as usize);
        assert!(
            line.windows(2).all(|pair| pair[0].0 <= pair[1].0),
            "in order"
        );
        let highest = line.iter().map(|p| p.1).min().unwrap();
        assert!(highest <= top + 16, "the spike is drawn near the top");

        // Drawing cost does not grow with the points: one path for the line either way.
        let paths = |points: Vec<(f64, f64)>| {
            let mut buffer = vec![0u8; 600 * 300 * 3];
            let (backend, log) = Recorder::new(BitMapBackend::with_buffer(&mut buffer, (600, 300)));
            draw_panel(
                &backend.into_drawing_area(),
                &panel(Scale::Log, points),
                &Style::dark(),
            )
            .unwrap();
            log.borrow().paths
        };
        let fewer: Vec<(f64, f64)> = points.iter().step_by(100).copied().collect();
        assert_eq!(paths(points), paths(fewer));
    }

    #[test]
    fn decimate_keeps_extremes_in_order() {
        let points = vec![
            (0.0, 5.0),
            (0.1, 9.0),
            (0.2, 1.0),
            (0.3, 4.0),
            (1.5, 3.0),
            (1.6, 2.0),
        ];
        let kept = decimate(&points, (0.0, 2.0), 2);
        assert_eq!(kept, vec![(0.1, 9.0), (0.2, 1.0), (1.5, 3.0), (1.6, 2.0)]);
        assert_eq!(decimate(&points, (0.0, 2.0), 10), points);
    }

    #[test]
    fn clipping_interpolates_at_the_edges() {
        let points = [(0.0, 0.0), (10.0, 10.0), (20.0, 0.0)];
        let clipped = clip_to_range(&points, (5.0, 15.0), Scale::Linear);
        assert_eq!(clipped, vec![(5.0, 5.0), (10.0, 10.0), (15.0, 5.0)]);
        let clipped = clip_to_range(&[(0.0, 1.0), (10.0, 100.0)], (5.0, 6.0), Scale::Log);
        assert_eq!(clipped.len(), 2);
        assert!(
            (clipped[0].1 - 10.0).abs() < 1e-9,
            "halfway in log space is 10"
        );
    }

    #[test]
    fn cursor_draws_a_rule_inside_the_range_only() {
        let rules = |cursor: Option<f64>| {
            let mut data = panel(Scale::Linear, loss_curve(100));
            data.cursor = cursor;
            let (out, layout) = svg(&data, (400, 300));
            let rule_colour = {
                let style = Style::light();
                let mixed = style.foreground.mix(0.6).to_rgba();
                RGBColor(mixed.0, mixed.1, mixed.2)
            };
            let rules = polylines(&out, rule_colour);
            (rules, layout)
        };
        assert!(rules(None).0.is_empty());
        assert!(rules(Some(1000.0)).0.is_empty());
        let (found, layout) = rules(Some(50.0));
        assert_eq!(found.len(), 1);
        let x = found[0][0].0;
        assert!((layout.step_at(x).unwrap() - 50.0).abs() <= 1.0);
    }

    #[test]
    fn monitor_lays_out_six_panels_without_overlap() {
        let titles = [
            "Training and Validation Loss",
            "Validation Accuracy",
            "Learning Rate Schedule",
            "Average Gradient Norm",
            "Weight Update Ratio",
            "Batch Loss",
        ];
        let panels: Vec<PanelData> = titles
            .iter()
            .enumerate()
            .map(|(i, title)| PanelData {
                title: title.to_string(),
                scale: if (2..5).contains(&i) {
                    Scale::Log
                } else {
                    Scale::Linear
                },
                ..panel(Scale::Linear, loss_curve(10 + 100 * i))
            })
            .collect();
        let mut out = String::new();
        let layouts = {
            let area = SVGBackend::with_string(&mut out, (1200, 700)).into_drawing_area();
            draw_monitor(&area, &panels, &Style::light()).unwrap()
        };
        assert_eq!(layouts.len(), 6);
        for title in titles {
            assert_eq!(svg_text_count(&out, title), 1, "{title}");
        }
        for (i, a) in layouts.iter().enumerate() {
            let (x, y, w, h) = a.plot;
            assert!(w > 100 && h > 100, "panel {i} is too small: {a:?}");
            assert!(x >= 0 && y >= 0 && x + w as i32 <= 1200 && y + h as i32 <= 700);
            for b in &layouts[i + 1..] {
                let (bx, by, bw, bh) = b.plot;
                let apart = x + w as i32 <= bx
                    || bx + bw as i32 <= x
                    || y + h as i32 <= by
                    || by + bh as i32 <= y;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
        // Two rows of three: panels 0..3 share a top, as do 3..6.
        assert!(layouts[..3].iter().all(|l| l.plot.1 == layouts[0].plot.1));
        assert!(layouts[3..].iter().all(|l| l.plot.1 == layouts[3].plot.1));
        assert!(layouts[3].plot.1 > layouts[0].plot.1);
        // Layouts are in monitor pixels: the fifth panel's left edge maps to its first step.
        let (left, ..) = layouts[4].plot;
        assert_eq!(layouts[4].step_at(left), Some(layouts[4].x_range.0));
    }

    #[test]
    fn monitor_without_panels_and_tiny_areas_do_not_fail() {
        let mut out = String::new();
        {
            let area = SVGBackend::with_string(&mut out, (300, 200)).into_drawing_area();
            assert!(draw_monitor(&area, &[], &Style::dark()).unwrap().is_empty());
        }
        assert!(svg_text_count(&out, NO_DATA) > 0);
        for size in [(1, 1), (20, 10), (60, 40)] {
            let (_, layout) = svg(&panel(Scale::Log, loss_curve(100)), size);
            assert_eq!(layout.step_at(0), None);
        }
    }

    #[test]
    fn ticks_and_numbers_are_round() {
        assert_eq!(format_value(0.001), "0.001");
        assert_eq!(format_value(2.35), "2.35");
        assert_eq!(format_value(1e-4), "1e-4");
        assert_eq!(format_value(0.30000000000000004), "0.3");
        assert_eq!(format_value(3.0000000000000003e-4), "3e-4");
        assert_eq!(format_value(-0.5), "-0.5");
        assert_eq!(format_step(12_500.0), "12.5k");
        assert_eq!(format_step(2_000_000.0), "2M");
        assert_eq!(format_step(900.0), "900");
        assert_eq!(
            linear_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(linear_ticks(-0.25, 0.25, 2), vec![-0.2, 0.0, 0.2]);
        let ticks = linear_ticks(0.3, 0.6, 2);
        assert_eq!(ticks.len(), 2);
        assert!((ticks[0] - 0.4).abs() < 1e-12 && (ticks[1] - 0.6).abs() < 1e-12);
        assert_eq!(
            log_ticks(1e-5, 1.0, 6),
            vec![1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
        );
        assert_eq!(log_ticks(1e-8, 1.0, 4).len(), 3);
        assert_eq!(log_ticks(1.5, 12.0, 6), vec![2.0, 5.0, 10.0]);
        assert!(log_ticks(2.1e-4, 2.9e-4, 4).len() >= 2);
        let (lo, hi) = padded_range(2.0, 2.0, Scale::Linear);
        assert!(lo < 2.0 && hi > 2.0);
        let (lo, hi) = padded_range(0.0, 0.0, Scale::Linear);
        assert!(lo < 0.0 && hi > 0.0);
        let (lo, hi) = padded_range(1e-3, 1e-3, Scale::Log);
        assert!(lo > 0.0 && lo < 1e-3 && hi > 1e-3);
    }
}
