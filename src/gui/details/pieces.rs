//! Pieces tab: a map of every piece, drawn with the painter: have, downloading, missing.

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
    let width = ui.available_width().max(CELL);
    let per_row = ((width + GAP) / (CELL + GAP)).floor().max(1.0) as u32;
    // Many pieces share a cell when the map would not fit in the space left.
    let max_rows = ((ui.available_height().max(CELL * 4.0) + GAP) / (CELL + GAP))
        .floor()
        .max(1.0) as u32;
    let per_cell = t.piece_count.div_ceil(per_row * max_rows).max(1);
    let cells = t.piece_count.div_ceil(per_cell);
    let rows = cells.div_ceil(per_row);
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(width, rows as f32 * (CELL + GAP)),
        egui::Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    for cell in 0..cells {
        let first = cell * per_cell;
        let last = (first + per_cell).min(t.piece_count);
        let got = (first..last).filter(|&i| t.pieces.get(i)).count() as f32
            / (last - first).max(1) as f32;
        let busy = t.pieces_in_progress.iter().any(|&p| p >= first && p < last);
        let color = if busy {
            busy_color
        } else if got >= 1.0 {
            have_color
        } else if got > 0.0 {
            missing_color.lerp_to_gamma(have_color, got)
        } else {
            missing_color
        };
        let x = rect.left() + (cell % per_row) as f32 * (CELL + GAP);
        let y = rect.top() + (cell / per_row) as f32 * (CELL + GAP);
        painter.rect_filled(
            egui::Rect::from_min_size(egui::pos2(x, y), egui::vec2(CELL, CELL)),
            1.0,
            color,
        );
    }
}

fn legend(ui: &mut egui::Ui, color: egui::Color32, label: &str) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(CELL, CELL), egui::Sense::hover());
    ui.painter().rect_filled(rect, 1.0, color);
    ui.label(label);
}
