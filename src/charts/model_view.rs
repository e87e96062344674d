//! Every head of every layer at once (BertViz's "model view"): a layers × heads grid of small
//! attention maps, each in its own colour scale, so that the shape of every head shows.

use super::heatmap::{cell_colours, fill_ring, resolve_vmax};
use super::{
    ChartError, PixelRect, Style, anchored, blit_cells, clear, draw_message, draw_title, text_size,
};
use crate::analysis::Matrix;
use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters::element::Rectangle;
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, VPos};

/// Pixels between two cells.
const GAP: i32 = 3;

/// What [`draw_model_view`] draws.
#[derive(Debug, Clone, Copy)]
pub struct ModelViewData<'a> {
    /// Per layer, one map per head (thumbnails will do: each cell is a few dozen pixels).
    pub maps: &'a [Vec<Matrix>],
    /// The layer and head the explorer shows, outlined.
    pub selected: Option<(usize, usize)>,
    /// Title above the grid; empty for none.
    pub title: &'a str,
}

/// Where [`draw_model_view`] put the cells, for hit-testing the pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelViewLayout {
    /// Left and top of the first cell.
    pub origin: (i32, i32),
    /// Side of a cell in pixels.
    pub side: i32,
    /// Rows (layers).
    pub layers: usize,
    /// Columns (heads).
    pub heads: usize,
}

impl ModelViewLayout {
    /// The `(layer, head)` of the cell under area pixel `(px, py)`; `None` between cells.
    pub fn cell_at(&self, px: i32, py: i32) -> Option<(usize, usize)> {
        let pitch = self.side + GAP;
        if self.side <= 0 || px < self.origin.0 || py < self.origin.1 {
            return None;
        }
        let (dx, dy) = (px - self.origin.0, py - self.origin.1);
        let (head, layer) = ((dx / pitch) as usize, (dy / pitch) as usize);
        let inside = dx % pitch < self.side && dy % pitch < self.side;
        (inside && layer < self.layers && head < self.heads).then_some((layer, head))
    }

    /// The cell of `layer` and `head` in area pixels.
    pub fn cell(&self, layer: usize, head: usize) -> PixelRect {
        let pitch = self.side + GAP;
        (
            self.origin.0 + head as i32 * pitch,
            self.origin.1 + layer as i32 * pitch,
            self.side.max(0) as u32,
            self.side.max(0) as u32,
        )
    }
}

/// Draws the layers × heads grid, layer labels down the left and head labels across the top.
pub fn draw_model_view<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &ModelViewData,
    style: &Style,
) -> Result<ModelViewLayout, ChartError> {
    clear(area, style)?;
    let layers = data.maps.len();
    let heads = data.maps.iter().map(Vec::len).max().unwrap_or(0);
    if layers == 0 || heads == 0 {
        draw_message(area, "no attention to show", style)?;
        return Ok(ModelViewLayout::default());
    }
    let top = draw_title(area, data.title, style)?;
    let (width, height) = area.dim_in_pixel();
    let (width, height) = (width as i32, height as i32);
    let font = style.label_font();
    let row_label = format!("L{}", layers - 1);
    let (label_width, label_height) = text_size(area, &row_label, &font)?;
    let left_margin = label_width + 8;
    let top_margin = top + label_height + 4;
    let side = ((width - left_margin - 4) / heads as i32)
        .min((height - top_margin - 4) / layers as i32)
        - GAP;
    let layout = ModelViewLayout {
        origin: (left_margin, top_margin),
        side: side.max(0),
        layers,
        heads,
    };
    if side <= 0 {
        return Ok(layout);
    }
    let column_font = anchored(&font, HPos::Center, VPos::Bottom);
    for head in 0..heads {
        let (x, _, _, _) = layout.cell(0, head);
        area.draw_text(
            &format!("h{head}"),
            &column_font,
            (x + side / 2, top_margin - 2),
        )?;
    }
    let row_font = anchored(&font, HPos::Right, VPos::Center);
    for (layer, maps) in data.maps.iter().enumerate() {
        let (_, y, _, _) = layout.cell(layer, 0);
        area.draw_text(
            &format!("L{layer}"),
            &row_font,
            (left_margin - 6, y + side / 2),
        )?;
        for (head, map) in maps.iter().enumerate() {
            let plot = layout.cell(layer, head);
            if map.is_empty() {
                continue;
            }
            // Each head in its own scale: a diffuse head's structure shows beside a sharp one.
            let vmax = resolve_vmax(None, map.max());
            blit_cells(area, plot, map.rows, map.cols, &cell_colours(map, vmax))?;
        }
    }
    if let Some((layer, head)) = data.selected
        && layer < layers
        && head < heads
    {
        let (x, y, side, _) = layout.cell(layer, head);
        let band = [x, y, x + side as i32, y + side as i32];
        fill_ring(area, band, 3, style.background)?;
        fill_ring(area, band, 2, style.accent)?;
    }
    area.draw(&Rectangle::new(
        [
            (left_margin - 1, top_margin - 1),
            (
                left_margin + heads as i32 * (side + GAP) - GAP,
                top_margin + layers as i32 * (side + GAP) - GAP,
            ),
        ],
        style.grid,
    ))?;
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::heatmap::pin_test_support::pixel;
    use crate::charts::test_support::Recorder;
    use plotters::prelude::{BitMapBackend, IntoDrawingArea};
    use plotters::style::RGBColor;

    /// Layer `l`, head `h` is one-hot at key `(l + h) % n` for every query.
    fn maps(layers: usize, heads: usize, n: usize) -> Vec<Vec<Matrix>> {
        (0..layers)
            .map(|layer| {
                (0..heads)
                    .map(|head| {
                        let key = (layer + head) % n;
                        let values = (0..n * n)
                            .map(|i| if i % n == key { 1.0 } else { 0.0 })
                            .collect();
                        Matrix::new(n, n, values).unwrap()
                    })
                    .collect()
            })
            .collect()
    }

    fn draw(data: &ModelViewData) -> (Vec<u8>, ModelViewLayout) {
        let (width, height) = (760u32, 700u32);
        let mut buffer = vec![0u8; (width * height * 3) as usize];
        let layout = {
            let (backend, _) =
                Recorder::new(BitMapBackend::with_buffer(&mut buffer, (width, height)));
            draw_model_view(&backend.into_drawing_area(), data, &Style::light()).unwrap()
        };
        (buffer, layout)
    }

    #[test]
    fn every_head_of_every_layer_gets_a_cell_that_shows_its_own_map() {
        let (layers, heads, n) = (12, 12, 4);
        let maps = maps(layers, heads, n);
        let (buffer, layout) = draw(&ModelViewData {
            maps: &maps,
            selected: None,
            title: "",
        });
        assert_eq!((layout.layers, layout.heads), (12, 12));
        assert!(layout.side >= 40, "cells of {} px", layout.side);
        let top = cell_colours(&Matrix::new(1, 1, vec![1.0]).unwrap(), 1.0)[0];
        for layer in 0..layers {
            for head in 0..heads {
                let (x, y, side, _) = layout.cell(layer, head);
                let column = |key: usize| x + (2 * key as i32 + 1) * side as i32 / (2 * n as i32);
                let row_y = y + side as i32 / (2 * n as i32);
                let hot = (layer + head) % n;
                assert_eq!(
                    pixel(&buffer, 760, (column(hot), row_y)),
                    top,
                    "L{layer} h{head}"
                );
                let cold = (hot + 1) % n;
                assert_ne!(pixel(&buffer, 760, (column(cold), row_y)), top);
                assert_eq!(
                    layout.cell_at(x + side as i32 / 2, y + side as i32 / 2),
                    Some((layer, head))
                );
            }
        }
        assert_eq!(layout.cell_at(0, 0), None);
    }

    #[test]
    fn the_selected_head_is_outlined() {
        let maps = maps(2, 3, 4);
        let (buffer, layout) = draw(&ModelViewData {
            maps: &maps,
            selected: Some((1, 2)),
            title: "model view",
        });
        let (x, y, side, _) = layout.cell(1, 2);
        let accent: RGBColor = Style::light().accent;
        assert_eq!(pixel(&buffer, 760, (x - 1, y + side as i32 / 2)), accent);
        let (x, y, _, _) = layout.cell(0, 0);
        assert_ne!(pixel(&buffer, 760, (x - 1, y + 2)), accent);
    }

    #[test]
    fn nothing_to_show_says_so() {
        let (_, layout) = draw(&ModelViewData {
            maps: &[],
            selected: None,
            title: "",
        });
        assert_eq!(layout, ModelViewLayout::default());
    }
}
