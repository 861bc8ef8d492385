//! Speed tab: download and upload rates over the last minutes (egui_plot).

use std::collections::VecDeque;

use egui_plot::{Legend, Line, Plot, PlotPoints};

use crate::gui::history::Sample;

pub fn ui(ui: &mut egui::Ui, samples: &VecDeque<Sample>, title: &str) {
    ui.label(title);
    let down: PlotPoints = samples.iter().map(|s| [s[0], s[1] / 1024.0]).collect();
    let up: PlotPoints = samples.iter().map(|s| [s[0], s[2] / 1024.0]).collect();
    Plot::new("speed")
        .legend(Legend::default())
        .allow_scroll(false)
        .y_axis_label("KiB/s")
        .x_axis_formatter(|mark, _| format!("{:.0}s", mark.value))
        .include_y(0.0)
        .show(ui, |plot| {
            plot.line(Line::new("Download", down));
            plot.line(Line::new("Upload", up));
        });
}
