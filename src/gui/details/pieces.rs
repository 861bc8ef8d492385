//! Pieces tab: two maps of every piece, drawn with the painter: what we have (have,
//! downloading, missing), and the availability (how many connected peers have each piece), so
//! a gap nobody can fill shows.

use crate::engine::TorrentSnapshot;

const CELL: f32 = 8.0;
const GAP: f32 = 1.0;

pub fn ui(ui: &mut egui::Ui, t: &TorrentSnapshot) {
    let have_color = egui::Color32::from_rgb(60, 160, 90);
    let busy_color = egui::Color32::from_rgb(230, 170, 40);
    let missing_color = ui.visuals().faint_bg_color.gamma_multiply(2.0);
    ui.horizontal(|ui| {
        legend(ui, have_color, "have");
        legend(ui, busy_color, "downloading");
        legend(ui, missing_color, "missing");
        ui.weak(format!("{} pieces", t.piece_count));
    });
    // The two maps share the height.
    let map_height = (ui.available_height() - 3.0 * ui.spacing().interact_size.y) / 2.0;
    draw_map(ui, t.piece_count, map_height, |first, last| {
        let got = (first..last).filter(|&i| t.pieces.get(i)).count() as f32
            / (last - first).max(1) as f32;
        let busy = t.pieces_in_progress.iter().any(|&p| p >= first && p < last);
        if busy {
            busy_color
        } else if got >= 1.0 {
            have_color
        } else if got > 0.0 {
            missing_color.lerp_to_gamma(have_color, got)
        } else {
            missing_color
        }
    });
    ui.add_space(4.0);
    if t.availability.is_empty() {
        ui.weak("Availability (how many connected peers have each piece) shows while it runs.");
        return;
    }
    // Only a piece we lack and nobody has is a gap; one we have shows how many peers also
    // have it (none: faint, no gap).
    let nobody_color = ui.visuals().error_fg_color;
    let shade = |peers: u16| match peers {
        0 => nobody_color,
        n => egui::Color32::from_rgb(120, 170, 230).lerp_to_gamma(
            egui::Color32::from_rgb(30, 80, 170),
            ((f32::from(n) - 1.0) / 4.0).min(1.0),
        ),
    };
    let gap = |piece: u32| {
        !t.pieces.get(piece) && t.availability.get(piece as usize).is_none_or(|&a| a == 0)
    };
    let nobody = (0..t.piece_count).filter(|&i| gap(i)).count();
    ui.horizontal(|ui| {
        ui.strong("Availability");
        legend(ui, shade(0), "nobody");
        legend(ui, shade(1), "1 peer");
        legend(ui, shade(5), "5+ peers");
        ui.weak(match nobody {
            0 => "every piece is somewhere".to_string(),
            n => format!("{n} missing pieces nobody connected has"),
        });
    });
    draw_map(ui, t.piece_count, map_height, |first, last| {
        // A cell that stands for several pieces shows a gap if it holds one, else its rarest.
        if (first..last).any(gap) {
            return nobody_color;
        }
        match (first..last)
            .filter_map(|i| t.availability.get(i as usize))
            .min()
            .copied()
        {
            Some(0) | None => missing_color,
            Some(rarest) => shade(rarest),
        }
    });
}

/// A grid of cells for `count` pieces within `height`, several pieces to a cell when they
/// would not fit; `color` colours the cell of pieces `first..last`.
fn draw_map(ui: &mut egui::Ui, count: u32, height: f32, color: impl Fn(u32, u32) -> egui::Color32) {
    let width = ui.available_width().max(CELL);
    let per_row = ((width + GAP) / (CELL + GAP)).floor().max(1.0) as u32;
    let max_rows = ((height.max(CELL * 4.0) + GAP) / (CELL + GAP))
        .floor()
        .max(1.0) as u32;
    let per_cell = count.div_ceil(per_row * max_rows).max(1);
    let cells = count.div_ceil(per_cell);
    let rows = cells.div_ceil(per_row);
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(width, rows as f32 * (CELL + GAP)),
        egui::Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    for cell in 0..cells {
        let first = cell * per_cell;
        let last = (first + per_cell).min(count);
        let x = rect.left() + (cell % per_row) as f32 * (CELL + GAP);
        let y = rect.top() + (cell / per_row) as f32 * (CELL + GAP);
        painter.rect_filled(
            egui::Rect::from_min_size(egui::pos2(x, y), egui::vec2(CELL, CELL)),
            1.0,
            color(first, last),
        );
    }
}

fn legend(ui: &mut egui::Ui, color: egui::Color32, label: &str) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(CELL, CELL), egui::Sense::hover());
    ui.painter().rect_filled(rect, 1.0, color);
    ui.label(label);
}
