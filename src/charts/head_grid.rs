//! Every head of a layer as a small titled heatmap in a near-square grid.

use super::heatmap::{HeatmapLayout, cell_colours, draw_pinned_outline, resolve_vmax};
use super::{ChartError, Style, anchored, blit_cells, clear, draw_message, text_size};
use crate::analysis::Matrix;
use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters::element::Rectangle;
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, VPos};

/// Padding around each panel in pixels.
const PANEL_PADDING: i32 = 6;

/// What [`draw_head_grid`] draws.
#[derive(Debug, Clone, Copy)]
pub struct HeadGridData<'a> {
    /// One map per head, in head order.
    pub maps: &'a [Matrix],
    /// One title per map, e.g. `head 3 · H 1.42`.
    pub titles: &'a [String],
    /// Value drawn in the top colour in every panel; `None` uses the largest value of all maps.
    pub vmax: Option<f32>,
    /// The selected token: its row and column are outlined in every map, as in
    /// [`super::draw_heatmap`]. Out-of-range indices are ignored.
    pub pinned: Option<usize>,
}

/// Where [`draw_head_grid`] put each panel, for hit-testing the pointer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeadGridLayout {
    /// The cell layout of each map, in the order of [`HeadGridData::maps`].
    pub panels: Vec<HeatmapLayout>,
}

impl HeadGridLayout {
    /// The index of the map under area pixel `(px, py)`, if any.
    pub fn panel_at(&self, px: i32, py: i32) -> Option<usize> {
        self.panels.iter().position(|panel| {
            let (x, y, width, height) = panel.plot;
            (x..x + width as i32).contains(&px) && (y..y + height as i32).contains(&py)
        })
    }
}

/// The number of grid columns that gives `count` panels the largest square in `width × height`,
/// when each panel also needs `title_height` pixels for its title.
fn grid_columns(count: usize, width: i32, height: i32, title_height: i32) -> usize {
    let side = |columns: usize| {
        let rows = count.div_ceil(columns) as i32;
        let across = width / columns as i32;
        let down = height / rows - title_height;
        across.min(down)
    };
    (1..=count.max(1))
        .max_by_key(|&columns| (side(columns), std::cmp::Reverse(columns)))
        .unwrap_or(1)
}

/// Draws one titled mini heatmap per map and returns where each one went.
pub fn draw_head_grid<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &HeadGridData,
    style: &Style,
) -> Result<HeadGridLayout, ChartError> {
    clear(area, style)?;
    if data.maps.is_empty() {
        draw_message(area, "no heads", style)?;
        return Ok(HeadGridLayout::default());
    }
    let (width, height) = area.dim_in_pixel();
    let (width, height) = (width as i32, height as i32);
    let font = anchored(&style.label_font(), HPos::Center, VPos::Top);
    let title_height = text_size(area, "Ag", &font)?.1 + 4;
    let count = data.maps.len();
    let columns = grid_columns(count, width, height, title_height);
    let rows = count.div_ceil(columns) as i32;
    // Every map is a square of the same side; the grid of panels is centred in the area.
    let side = (width / columns as i32 - 2 * PANEL_PADDING)
        .min(height / rows - title_height - PANEL_PADDING)
        .max(0);
    let (panel_width, panel_height) = (
        side + 2 * PANEL_PADDING,
        title_height + side + PANEL_PADDING,
    );
    let left = (width - columns as i32 * panel_width) / 2;
    let top = (height - rows * panel_height) / 2;
    let data_max = data.maps.iter().filter_map(Matrix::max).reduce(f32::max);
    let vmax = resolve_vmax(data.vmax, data_max);

    let mut panels = Vec::with_capacity(count);
    for (index, map) in data.maps.iter().enumerate() {
        let panel_x = left + (index % columns) as i32 * panel_width;
        let panel_y = top + (index / columns) as i32 * panel_height;
        if let Some(title) = data.titles.get(index) {
            area.draw_text(title, &font, (panel_x + panel_width / 2, panel_y + 2))?;
        }
        let (x, y) = (panel_x + PANEL_PADDING, panel_y + title_height);
        let plot = (x, y, side as u32, side as u32);
        if side == 0 || map.is_empty() {
            panels.push(HeatmapLayout {
                plot: (x, y, 0, 0),
                rows: map.rows,
                cols: map.cols,
            });
            continue;
        }
        blit_cells(area, plot, map.rows, map.cols, &cell_colours(map, vmax))?;
        area.draw(&Rectangle::new(
            [(x - 1, y - 1), (x + side, y + side)],
            style.grid,
        ))?;
        let panel = HeatmapLayout {
            plot,
            rows: map.rows,
            cols: map.cols,
        };
        draw_pinned_outline(area, &panel, data.pinned, style)?;
        panels.push(panel);
    }
    Ok(HeadGridLayout { panels })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::test_support::Recorder;
    use crate::charts::test_support::svg_text_count;
    use plotters::prelude::{BitMapBackend, IntoDrawingArea};
    use plotters_svg::SVGBackend;

    fn maps(count: usize) -> (Vec<Matrix>, Vec<String>) {
        let maps = (0..count)
            .map(|h| Matrix::new(2, 2, vec![h as f32, 0.0, 0.0, 1.0]).unwrap())
            .collect();
        let titles = (0..count).map(|h| format!("head {h} · H 0.{h}")).collect();
        (maps, titles)
    }

    #[test]
    fn grid_is_near_square() {
        // Eight panels in a square area: 3 columns × 3 rows beat 2 × 4 and 4 × 2.
        assert_eq!(grid_columns(8, 600, 600, 0), 3);
        // A wide strip puts everything on one row.
        assert_eq!(grid_columns(4, 1000, 200, 0), 4);
        assert_eq!(grid_columns(1, 100, 100, 10), 1);
    }

    #[test]
    fn titles_and_one_blit_per_head() {
        let (maps, titles) = maps(6);
        let data = HeadGridData {
            maps: &maps,
            titles: &titles,
            vmax: None,
            pinned: None,
        };
        let mut out = String::new();
        {
            let area = SVGBackend::with_string(&mut out, (300, 200)).into_drawing_area();
            draw_head_grid(&area, &data, &Style::light()).unwrap();
        }
        for title in &titles {
            assert!(svg_text_count(&out, title) > 0, "missing {title}");
        }
        let mut buffer = vec![0u8; 300 * 200 * 3];
        let (backend, log) = Recorder::new(BitMapBackend::with_buffer(&mut buffer, (300, 200)));
        let layout = draw_head_grid(&backend.into_drawing_area(), &data, &Style::dark()).unwrap();
        assert_eq!(log.borrow().blits, 6);
        assert_eq!(layout.panels.len(), 6);
        for (index, panel) in layout.panels.iter().enumerate() {
            let (x, y) = panel.cell_center(1, 1).unwrap();
            assert_eq!(layout.panel_at(x, y), Some(index));
        }
        assert_eq!(layout.panel_at(-5, -5), None);
    }

    #[test]
    fn no_maps_says_no_heads() {
        let mut out = String::new();
        let layout = {
            let area = SVGBackend::with_string(&mut out, (200, 100)).into_drawing_area();
            let data = HeadGridData {
                maps: &[],
                titles: &[],
                vmax: None,
                pinned: None,
            };
            draw_head_grid(&area, &data, &Style::light()).unwrap()
        };
        assert!(svg_text_count(&out, "no heads") > 0);
        assert!(layout.panels.is_empty());
    }

    /// Four 3 × 3 maps with `pinned`, drawn into a 300 × 200 bitmap: its pixels and layout.
    fn bitmap_pinned(pinned: Option<usize>, style: &Style) -> (Vec<u8>, HeadGridLayout) {
        let maps: Vec<Matrix> = (0..4)
            .map(|h| Matrix::new(3, 3, (0..9).map(|i| (i + h) as f32 / 12.0).collect()).unwrap())
            .collect();
        let titles: Vec<String> = (0..4).map(|h| format!("head {h}")).collect();
        let data = HeadGridData {
            maps: &maps,
            titles: &titles,
            vmax: None,
            pinned,
        };
        let mut buffer = vec![0u8; 300 * 200 * 3];
        let layout = {
            let (backend, _) = Recorder::new(BitMapBackend::with_buffer(&mut buffer, (300, 200)));
            draw_head_grid(&backend.into_drawing_area(), &data, style).unwrap()
        };
        (buffer, layout)
    }

    #[test]
    fn pinned_row_and_column_are_outlined_in_every_head() {
        use crate::charts::heatmap::pin_test_support::{assert_outlined, bands_from_layout};
        for style in [Style::light(), Style::dark()] {
            let (buffer, layout) = bitmap_pinned(Some(1), &style);
            assert_eq!(layout.panels.len(), 4);
            for panel in &layout.panels {
                let bands = bands_from_layout(panel, 1, 1);
                assert_outlined(&buffer, 300, panel, &bands, style.accent);
            }
        }
    }

    #[test]
    fn unpinned_or_out_of_range_draws_no_outline() {
        let style = Style::light();
        let (none, layout) = bitmap_pinned(None, &style);
        let accent = [style.accent.0, style.accent.1, style.accent.2];
        assert!(!none.chunks(3).any(|p| p == accent));
        for pinned in [3, 100] {
            let (buffer, other) = bitmap_pinned(Some(pinned), &style);
            assert_eq!(other, layout);
            assert!(buffer == none, "pinned {pinned} differs from none");
        }
    }
}
