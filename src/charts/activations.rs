//! Activations: the seed chapter's grid of per-module histograms, and the share of dead
//! feed-forward units per layer over training.

use super::gradients::{NO_STEPS, fit_text, format_number};
use super::training::{PanelData, Scale, Series, draw_panel};
use super::{
    ChartError, PixelRect, Style, anchored, cell_span, clear, colormap, draw_message, text_size,
};
use crate::analysis::{DeadHistory, ModuleActivation};
use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters::element::{PathElement, Rectangle};
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::{Color, RGBColor};

/// Histograms per row of the grid, as in the seed chapter.
pub const GRID_COLUMNS: usize = 4;

/// Shown instead of the grid when there are no modules.
pub const NO_ACTIVATIONS: &str = "no activations yet";

/// Shown instead of the grid when its cells would be too small to read.
pub const CANVAS_TOO_SMALL: &str = "make the canvas larger to show the activation histograms";

/// Title of [`draw_dead_share`].
pub const DEAD_SHARE_TITLE: &str = "Dead feed-forward units per layer";

/// Blank pixels around each cell's content.
const CELL_PADDING: i32 = 6;

/// Plots smaller than this many pixels either way are not drawn.
const MIN_PLOT: i32 = 8;

/// Rows of the grid for `modules` histograms, so the caller can size the canvas.
pub fn grid_rows(modules: usize) -> usize {
    modules.div_ceil(GRID_COLUMNS)
}

/// Where [`draw_activation_grid`] put each module, for hit-testing the pointer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActivationGridLayout {
    /// Each module's whole cell (title, histogram and labels) in area pixels, in module order;
    /// empty when nothing was drawn.
    pub cells: Vec<PixelRect>,
    /// Each module's histogram plot in area pixels, in module order.
    pub plots: Vec<PixelRect>,
    /// Rows of the grid.
    pub rows: usize,
}

impl ActivationGridLayout {
    /// The module whose cell holds area pixel `(x, y)`, if any.
    pub fn cell_at(&self, x: i32, y: i32) -> Option<usize> {
        self.cells.iter().position(|&(left, top, width, height)| {
            (left..left + width as i32).contains(&x) && (top..top + height as i32).contains(&y)
        })
    }
}

/// Colour of histogram bars: a mid viridis teal, apart from both the accent and the alarm.
fn bar_colour() -> RGBColor {
    colormap::sequential(0.5)
}

/// The title of a module's cell: its path (cut to fit) and its share of exact zeros, with a
/// leading `!` when it is sparse.
fn cell_title<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    module: &ModuleActivation,
    sparse: bool,
    font: &plotters::style::TextStyle,
    max_width: i32,
) -> Result<String, ChartError> {
    let marker = if sparse { "! " } else { "" };
    let suffix = format!(" (zeros {:.1}%)", 100.0 * module.zero_fraction);
    let room = max_width - text_size(area, &format!("{marker}{suffix}"), font)?.0;
    let path = fit_text(area, &module.path, font, room.max(0))?;
    Ok(format!("{marker}{path}{suffix}"))
}

/// Draws one histogram per module in a grid [`GRID_COLUMNS`] wide: bars of the counts, a dashed
/// line at the mean with its value, and a title with the path and the share of zeros. Modules
/// with more than `sparse_threshold` zeros get the title in the alarm colour, marked with `!`.
pub fn draw_activation_grid<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    modules: &[ModuleActivation],
    sparse_threshold: f64,
    style: &Style,
) -> Result<ActivationGridLayout, ChartError> {
    clear(area, style)?;
    let rows = grid_rows(modules.len());
    let mut layout = ActivationGridLayout {
        rows,
        ..ActivationGridLayout::default()
    };
    if modules.is_empty() {
        draw_message(area, NO_ACTIVATIONS, style)?;
        return Ok(layout);
    }
    let (width, height) = area.dim_in_pixel();
    let label_size = style.font_size.saturating_sub(1).max(8);
    let label_font = style.label_font();
    let small_size = style.font_size.saturating_sub(2).max(8);
    let small_font = style.text_style(small_size, style.muted, false);
    let line_height = text_size(area, "Ag", &label_font)?.1;
    let small_height = text_size(area, "Ag", &small_font)?.1;

    // Every cell has the same layout; check the narrowest and shortest one.
    let cell_width = width as i32 / GRID_COLUMNS as i32;
    let cell_height = height as i32 / rows as i32;
    let plot_width = cell_width - 2 * CELL_PADDING;
    let plot_height = cell_height - 2 * CELL_PADDING - line_height - 4 - small_height - 2;
    if plot_width < MIN_PLOT || plot_height < MIN_PLOT {
        draw_message(area, CANVAS_TOO_SMALL, style)?;
        return Ok(layout);
    }

    for (index, module) in modules.iter().enumerate() {
        let (row, column) = (index / GRID_COLUMNS, index % GRID_COLUMNS);
        let (x0, x1) = cell_span(column, GRID_COLUMNS, width);
        let (y0, y1) = cell_span(row, rows, height);
        layout
            .cells
            .push((x0, y0, (x1 - x0) as u32, (y1 - y0) as u32));
        let sparse = module.is_sparse(sparse_threshold);

        // Title.
        let title_font = if sparse {
            style.text_style(label_size, style.alarm, true)
        } else {
            label_font.clone()
        };
        let title_font = anchored(&title_font, HPos::Center, VPos::Top);
        let title = cell_title(
            area,
            module,
            sparse,
            &title_font,
            x1 - x0 - 2 * CELL_PADDING,
        )?;
        area.draw_text(&title, &title_font, ((x0 + x1) / 2, y0 + CELL_PADDING))?;

        // Histogram plot.
        let left = x0 + CELL_PADDING;
        let right = x1 - CELL_PADDING;
        let top = y0 + CELL_PADDING + line_height + 4;
        let bottom = y1 - CELL_PADDING - small_height - 2;
        let plot = (left, top, (right - left) as u32, (bottom - top) as u32);
        layout.plots.push(plot);
        draw_histogram(area, module, plot, style)?;

        // The range below the plot.
        let histogram = &module.histogram;
        let below = bottom + 2;
        area.draw_text(
            &format_number(histogram.min),
            &anchored(&small_font, HPos::Left, VPos::Top),
            (left, below),
        )?;
        area.draw_text(
            &format_number(histogram.max),
            &anchored(&small_font, HPos::Right, VPos::Top),
            (right, below),
        )?;
    }
    Ok(layout)
}

/// Draws `module`'s histogram bars, frame and mean line into `plot`.
fn draw_histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    module: &ModuleActivation,
    (left, top, width, height): PixelRect,
    style: &Style,
) -> Result<(), ChartError> {
    let bottom = top + height as i32 - 1;
    let right = left + width as i32 - 1;
    let histogram = &module.histogram;
    let bins = histogram.counts.len();
    let tallest = histogram.counts.iter().copied().max().unwrap_or(0);
    if tallest > 0 {
        let fill = bar_colour().filled();
        for (bin, &count) in histogram.counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let (x0, x1) = cell_span(bin, bins, width);
            let bar = (f64::from(count) / f64::from(tallest) * f64::from(height - 1)).round();
            let bar_top = bottom - (bar as i32).max(1);
            area.draw(&Rectangle::new(
                [(left + x0, bar_top), (left + x1.max(x0 + 1), bottom)],
                fill,
            ))?;
        }
    }
    area.draw(&Rectangle::new([(left, top), (right, bottom)], style.grid))?;

    let span = histogram.max - histogram.min;
    if tallest == 0 || span.is_nan() || span <= 0.0 || !module.mean.is_finite() {
        return Ok(());
    }
    let share = ((module.mean - histogram.min) / span).clamp(0.0, 1.0);
    let x = left + (share * f64::from(width - 1)).round() as i32;
    // Dashes of four pixels with gaps of three.
    let mut y = top;
    while y < bottom {
        let end = (y + 4).min(bottom);
        area.draw(&PathElement::new(
            vec![(x, y), (x, end)],
            style.accent.stroke_width(1),
        ))?;
        y += 7;
    }
    let font = style.text_style(
        style.font_size.saturating_sub(2).max(8),
        style.accent,
        false,
    );
    let text = format!("mean {}", format_number(module.mean));
    let (font, text_x) = if share <= 0.5 {
        (anchored(&font, HPos::Left, VPos::Top), x + 3)
    } else {
        (anchored(&font, HPos::Right, VPos::Top), x - 3)
    };
    area.draw_text(&text, &font, (text_x, top + 2))?;
    Ok(())
}

/// Draws the share of dead feed-forward units of each layer (in %) against step, one line per
/// layer with a legend, on the training monitor's line panel.
pub fn draw_dead_share<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    history: &DeadHistory,
    style: &Style,
) -> Result<(), ChartError> {
    if history.steps.is_empty() {
        clear(area, style)?;
        draw_message(area, NO_STEPS, style)?;
        return Ok(());
    }
    let layers = history.shares.iter().map(Vec::len).max().unwrap_or(0);
    let series = (0..layers)
        .map(|layer| Series {
            label: format!("layer {layer}"),
            points: history
                .steps
                .iter()
                .zip(&history.shares)
                .filter_map(|(&step, shares)| {
                    shares.get(layer).map(|&share| (step as f64, 100.0 * share))
                })
                .collect(),
        })
        .collect();
    let data = PanelData {
        title: DEAD_SHARE_TITLE.to_string(),
        y_label: "dead units (%)".to_string(),
        scale: Scale::Linear,
        series,
        // The panel fits its y axis to the data and its reference lines: these two keep the
        // whole 0–100 % in view (unlabelled, as the legend sits in the top right corner).
        reference_lines: vec![(0.0, String::new()), (100.0, String::new())],
        ..PanelData::default()
    };
    draw_panel(area, &data, style)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Histogram;
    use crate::charts::gradients::tests::{attr, hex, inside, rects};
    use crate::charts::test_support::svg_text_count;
    use plotters::prelude::IntoDrawingArea;
    use plotters_svg::SVGBackend;

    /// A module whose histogram is a ramp over `-1..3` with a mean of `mean`.
    fn module(path: &str, zero_fraction: f64, mean: f64) -> ModuleActivation {
        let values: Vec<f32> = (0..400).map(|i| -1.0 + i as f32 / 100.0).collect();
        ModuleActivation {
            site: None,
            path: path.to_string(),
            shape: vec![1, 4, 100],
            mean,
            std: 1.0,
            zero_fraction,
            histogram: Histogram::of(&values, 50),
        }
    }

    fn modules() -> Vec<ModuleActivation> {
        vec![
            module("embed", 0.0, 0.123),
            module("layers.0.attn", 0.0, 0.5),
            module("layers.0.ff.activation", 0.95, 0.01),
            module("layers.0.ff.linear2", 0.125, -0.25),
            module("layers.0.norm2", 0.0, 2.0),
            module("head", 0.0, 1.0),
        ]
    }

    fn grid_svg(modules: &[ModuleActivation], size: (u32, u32)) -> (String, ActivationGridLayout) {
        let mut out = String::new();
        let layout = {
            let area = SVGBackend::with_string(&mut out, size).into_drawing_area();
            draw_activation_grid(&area, modules, 0.9, &Style::light()).unwrap()
        };
        (out, layout)
    }

    /// The `fill` of the SVG text element holding exactly `text`.
    fn text_fill(svg: &str, text: &str) -> Option<String> {
        let end = svg.find(&format!(">\n{text}\n</text>"))?;
        let start = svg[..end].rfind("<text")?;
        attr(&svg[start..end], "fill").map(str::to_string)
    }

    #[test]
    fn grid_draws_a_titled_histogram_per_module() {
        let modules = modules();
        let style = Style::light();
        let (out, layout) = grid_svg(&modules, (1000, 480));
        assert_eq!(layout.rows, 2);
        assert_eq!(layout.cells.len(), 6);
        assert_eq!(layout.plots.len(), 6);
        for (index, title) in [
            "embed (zeros 0.0%)",
            "layers.0.attn (zeros 0.0%)",
            "! layers.0.ff.activation (zeros 95.0%)",
            "layers.0.ff.linear2 (zeros 12.5%)",
            "layers.0.norm2 (zeros 0.0%)",
            "head (zeros 0.0%)",
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(svg_text_count(&out, title), 1, "missing {title}");
            let expected = if index == 2 {
                style.alarm
            } else {
                style.foreground
            };
            assert_eq!(text_fill(&out, title), Some(hex(expected)), "{title}");
        }
        assert_eq!(svg_text_count(&out, "mean 0.123"), 1);
        assert_eq!(svg_text_count(&out, "mean -0.25"), 1);
        // Each plot holds its 50 bars (the ramp fills every bin) and nothing else does.
        let bars = rects(&out, bar_colour());
        assert_eq!(bars.len(), 6 * 50);
        for plot in &layout.plots {
            let inside_count = bars
                .iter()
                .filter(|&&(x, y, w, h)| inside(*plot, (x + w / 2, y + h / 2)))
                .count();
            assert_eq!(inside_count, 50);
        }
        // One dashed accent line per plot, at the mean.
        let accent = format!("stroke=\"{}\"", hex(style.accent));
        let dashes: Vec<(i32, i32)> = out
            .split("<polyline")
            .skip(1)
            .map(|tag| tag.split("/>").next().unwrap())
            .filter(|tag| tag.contains(&accent))
            .map(|tag| {
                let points = attr(tag, "points").unwrap();
                let (x, y) = points
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .split_once(',')
                    .unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        let in_second: Vec<i32> = dashes
            .iter()
            .filter(|&&point| inside(layout.plots[1], point))
            .map(|&(x, _)| x)
            .collect();
        assert!(in_second.len() > 3, "{in_second:?}");
        assert!(
            in_second.iter().all(|&x| x == in_second[0]),
            "one vertical line"
        );
        let (left, _, width, _) = layout.plots[1];
        let histogram = &modules[1].histogram;
        let share = (0.5 - histogram.min) / (histogram.max - histogram.min);
        let expected = left + (share * f64::from(width - 1)).round() as i32;
        assert!((in_second[0] - expected).abs() <= 1);
    }

    #[test]
    fn cell_at_finds_modules_and_grid_rows_sizes_the_canvas() {
        let modules = modules();
        let (_, layout) = grid_svg(&modules, (1000, 480));
        for (index, &(x, y, w, h)) in layout.cells.iter().enumerate() {
            assert_eq!(
                layout.cell_at(x + w as i32 / 2, y + h as i32 / 2),
                Some(index)
            );
            assert_eq!(layout.cell_at(x, y), Some(index));
        }
        // Second row, third and fourth columns hold no module.
        assert_eq!(layout.cell_at(625, 400), None);
        assert_eq!(layout.cell_at(-1, 10), None);
        assert_eq!(layout.cell_at(10, 480), None);
        assert_eq!([0, 1, 4, 5, 8, 9].map(grid_rows), [0, 1, 1, 2, 2, 3]);
    }

    #[test]
    fn long_paths_are_cut_to_fit_their_cell() {
        let modules = vec![module(
            "layers.11.attention.output.projection.activation",
            0.0,
            0.0,
        )];
        let (out, _) = grid_svg(&modules, (1200, 200));
        let title = out
            .split("</text>")
            .find(|text| text.contains("(zeros 0.0%)"))
            .unwrap();
        assert!(
            title.contains("\nlayers.1")
                && title.contains('…')
                && title.contains("activation (zeros 0.0%)"),
            "{title}"
        );
    }

    #[test]
    fn tiny_canvas_and_no_modules_draw_messages() {
        let modules = modules();
        let (out, layout) = grid_svg(&modules, (60, 40));
        assert_eq!(svg_text_count(&out, CANVAS_TOO_SMALL), 1);
        assert!(layout.cells.is_empty());
        assert_eq!(layout.rows, 2);
        assert_eq!(layout.cell_at(10, 10), None);
        assert!(rects(&out, bar_colour()).is_empty());

        let (out, layout) = grid_svg(&[], (600, 400));
        assert_eq!(svg_text_count(&out, NO_ACTIVATIONS), 1);
        assert_eq!(layout, ActivationGridLayout::default());
    }

    fn dead_svg(history: &DeadHistory) -> String {
        let mut out = String::new();
        {
            let area = SVGBackend::with_string(&mut out, (600, 360)).into_drawing_area();
            draw_dead_share(&area, history, &Style::light()).unwrap();
        }
        out
    }

    #[test]
    fn dead_share_draws_a_line_per_layer_in_percent() {
        let history = DeadHistory {
            steps: vec![0, 100, 200, 300],
            shares: vec![
                vec![0.0, 0.0],
                vec![0.1, 0.0],
                vec![0.2, 0.05],
                vec![0.4, 0.1],
            ],
        };
        let out = dead_svg(&history);
        for text in [
            DEAD_SHARE_TITLE,
            "dead units (%)",
            "step",
            "layer 0",
            "layer 1",
            "100",
            "0",
        ] {
            assert!(svg_text_count(&out, text) > 0, "missing {text}");
        }
        // Two lines of four points each (legend swatches are two-point lines).
        let lines: Vec<usize> = out
            .split("<polyline")
            .skip(1)
            .map(|tag| {
                let points = attr(tag.split("/>").next().unwrap(), "points").unwrap();
                points.split_whitespace().count()
            })
            .filter(|&count| count == 4)
            .collect();
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn dead_share_without_steps_says_so() {
        let out = dead_svg(&DeadHistory::default());
        assert_eq!(svg_text_count(&out, NO_STEPS), 1);
    }
}
