//! The torrent list: a virtualised, sortable table with multi-selection and a context menu.

use std::cmp::Ordering;
use std::sync::Arc;

use egui_extras::{Column, TableBuilder};

use std::collections::HashMap;

use crate::engine::{QueueMove, Severity, TorrentSnapshot, TorrentState};
use crate::ids::InfoHash;
use crate::units;

/// Marks a torrent whose Health tab has a warning or an error.
pub const WARNING_ICON: &str = "⚠";

use super::filters::TorrentFilter;
use super::selection::Selection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    /// The position in the session's queue.
    Queue,
    Name,
    Size,
    Progress,
    Status,
    Down,
    Up,
    Seeds,
    Peers,
    Ratio,
    Eta,
    Added,
}

const COLUMNS: [(SortColumn, &str); 12] = [
    (SortColumn::Queue, "#"),
    (SortColumn::Name, "Name"),
    (SortColumn::Size, "Size"),
    (SortColumn::Progress, "Progress"),
    (SortColumn::Status, "Status"),
    (SortColumn::Down, "Down"),
    (SortColumn::Up, "Up"),
    (SortColumn::Seeds, "Seeds"),
    (SortColumn::Peers, "Peers"),
    (SortColumn::Ratio, "Ratio"),
    (SortColumn::Eta, "ETA"),
    (SortColumn::Added, "Added"),
];

/// Something asked for from the context menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowAction {
    Pause,
    Resume,
    ToggleSeed,
    Remove,
    OpenFolder,
    CopyMagnet,
    /// Sequential order on or off, for the selected torrents.
    Sequential(bool),
    FirstLastFirst(bool),
    Queue(QueueMove),
    ForceStart(bool),
    /// Move the data to a folder the user picks.
    SetLocation,
}

pub struct TorrentTable {
    sort: SortColumn,
    ascending: bool,
    pub selection: Selection,
}

impl Default for TorrentTable {
    fn default() -> Self {
        Self {
            sort: SortColumn::Added,
            ascending: true,
            selection: Selection::default(),
        }
    }
}

impl TorrentTable {
    /// The torrents in display order; `torrents` is in queue order.
    pub fn sorted(&self, torrents: &[Arc<TorrentSnapshot>]) -> Vec<Arc<TorrentSnapshot>> {
        let position = queue_positions(torrents);
        let mut rows = torrents.to_vec();
        let key = self.sort;
        rows.sort_by(|a, b| {
            let order = if key == SortColumn::Queue {
                position.get(&a.id).cmp(&position.get(&b.id))
            } else {
                compare(key, a, b)
            };
            let order = order.then_with(|| a.name.cmp(&b.name));
            if self.ascending {
                order
            } else {
                order.reverse()
            }
        });
        rows
    }

    /// The torrents the filter shows, in display order.
    pub fn shown(
        &self,
        torrents: &[Arc<TorrentSnapshot>],
        filter: &TorrentFilter,
    ) -> Vec<Arc<TorrentSnapshot>> {
        let mut rows = self.sorted(torrents);
        rows.retain(|t| filter.matches(t));
        rows
    }

    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        torrents: &[Arc<TorrentSnapshot>],
        filter: &TorrentFilter,
    ) -> Option<RowAction> {
        let rows = self.shown(torrents, filter);
        let order: Vec<InfoHash> = rows.iter().map(|t| t.id).collect();
        let position = queue_positions(torrents);
        let mut action = None;
        let row_height = ui.spacing().interact_size.y + 4.0;
        // Clicks on a row's text select the row, not the text.
        ui.style_mut().interaction.selectable_labels = false;
        let mut table = TableBuilder::new(ui)
            .id_salt("torrents")
            .striped(true)
            .resizable(true)
            .sense(egui::Sense::click())
            .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
            .column(Column::auto().at_least(24.0))
            .column(Column::initial(220.0).at_least(120.0).clip(true));
        for _ in 3..COLUMNS.len() {
            table = table.column(Column::auto().at_least(56.0));
        }
        table = table.column(Column::remainder().at_least(120.0));
        table
            .header(22.0, |mut header| {
                for (column, title) in COLUMNS {
                    header.col(|ui| {
                        let sorted = self.sort == column;
                        let button = ui.add(egui::Button::new(title).frame(false));
                        if sorted {
                            sort_arrow(ui, button.rect, self.ascending);
                        }
                        if button.clicked() {
                            if sorted {
                                self.ascending = !self.ascending;
                            } else {
                                self.sort = column;
                                self.ascending = true;
                            }
                        }
                    });
                }
            })
            .body(|body| {
                body.rows(row_height, rows.len(), |mut row| {
                    let Some(t) = rows.get(row.index()) else {
                        return;
                    };
                    let selected = self.selection.contains(&t.id);
                    row.set_selected(selected);
                    row.col(|ui| {
                        ui.weak(position.get(&t.id).map_or(String::new(), |p| p.to_string()));
                    });
                    row_cells(&mut row, t, selected);
                    let response = row.response();
                    if response.clicked() {
                        let (ctrl, shift) = response
                            .ctx
                            .input(|i| (i.modifiers.command, i.modifiers.shift));
                        self.selection.click(t.id, &order, ctrl, shift);
                    }
                    if response.secondary_clicked() {
                        self.selection.secondary_click(t.id);
                    }
                    response.context_menu(|ui| {
                        for (label, choice) in [
                            ("Pause", RowAction::Pause),
                            ("Resume", RowAction::Resume),
                            ("Toggle seeding", RowAction::ToggleSeed),
                            ("Open folder", RowAction::OpenFolder),
                            ("Set location…", RowAction::SetLocation),
                            ("Copy magnet link", RowAction::CopyMagnet),
                            ("Remove…", RowAction::Remove),
                        ] {
                            if ui.button(label).clicked() {
                                action = Some(choice);
                                ui.close();
                            }
                        }
                        ui.separator();
                        ui.menu_button("Queue", |ui| {
                            for (label, to) in [
                                ("Move up", QueueMove::Up),
                                ("Move down", QueueMove::Down),
                                ("Move to top", QueueMove::Top),
                                ("Move to bottom", QueueMove::Bottom),
                            ] {
                                if ui.button(label).clicked() {
                                    action = Some(RowAction::Queue(to));
                                    ui.close();
                                }
                            }
                        });
                        if ui
                            .add(egui::Button::selectable(t.forced, "Force start"))
                            .on_hover_text("Run it now, whatever the queue says")
                            .clicked()
                        {
                            action = Some(RowAction::ForceStart(!t.forced));
                            ui.close();
                        }
                        ui.separator();
                        for (on, label, choice) in [
                            (
                                t.sequential,
                                "Download in sequential order",
                                RowAction::Sequential(!t.sequential),
                            ),
                            (
                                t.first_last_first,
                                "First and last pieces first",
                                RowAction::FirstLastFirst(!t.first_last_first),
                            ),
                        ] {
                            if ui.add(egui::Button::selectable(on, label)).clicked() {
                                action = Some(choice);
                                ui.close();
                            }
                        }
                    });
                });
            });
        action
    }
}

fn row_cells(row: &mut egui_extras::TableRow<'_, '_>, t: &TorrentSnapshot, selected: bool) {
    row.col(|ui| {
        ui.add(egui::Label::new(&t.name).truncate());
    });
    row.col(|ui| {
        ui.label(units::bytes(t.total_size));
    });
    row.col(|ui| {
        let mut bar = egui::ProgressBar::new(t.progress)
            .desired_width(110.0)
            .text(format!("{:.1}%", t.progress * 100.0));
        if selected {
            // The bar's usual fill is the selection colour: on a selected row it would vanish.
            bar = bar.fill(ui.visuals().selection.stroke.color.gamma_multiply(0.55));
        }
        ui.add(bar);
    });
    row.col(|ui| {
        let text = status_text(t);
        match &t.state {
            TorrentState::Error(error) => {
                ui.colored_label(ui.visuals().error_fg_color, text)
                    .on_hover_text(error.to_string());
            }
            TorrentState::Offline(_) => {
                ui.colored_label(ui.visuals().warn_fg_color, text)
                    .on_hover_text(
                        "The network interface Rivulet is bound to (Settings) is down; the \
                     torrent goes on when it is back.",
                    );
            }
            _ => match t.worst_finding() {
                // The swarm doctor found something that holds the torrent back.
                Some(finding) => {
                    let color = match finding.severity {
                        Severity::Error => ui.visuals().error_fg_color,
                        _ => ui.visuals().warn_fg_color,
                    };
                    ui.colored_label(color, format!("{WARNING_ICON} {text}"))
                        .on_hover_text(format!("{}\n(Health tab)", finding.message));
                }
                None => {
                    ui.label(text);
                }
            },
        }
    });
    row.col(|ui| {
        ui.label(rate_or_blank(t.down_rate));
    });
    row.col(|ui| {
        ui.label(rate_or_blank(t.up_rate));
    });
    row.col(|ui| {
        ui.label(with_swarm(t.connected_seeds, t.swarm_seeders));
    });
    row.col(|ui| {
        ui.label(with_swarm(t.connected_peers, t.swarm_leechers));
    });
    row.col(|ui| {
        ui.label(format!("{:.2}", t.ratio));
    });
    row.col(|ui| {
        ui.label(eta_text(t));
    });
    row.col(|ui| {
        ui.label(units::date(t.added_at));
    });
}

/// A small triangle right of a header: up when ascending.
fn sort_arrow(ui: &egui::Ui, rect: egui::Rect, ascending: bool) {
    let c = egui::pos2(rect.right() + 7.0, rect.center().y);
    let (tip, base) = if ascending { (-3.5, 3.0) } else { (3.5, -3.0) };
    let points = vec![
        egui::pos2(c.x, c.y + tip),
        egui::pos2(c.x - 4.0, c.y + base),
        egui::pos2(c.x + 4.0, c.y + base),
    ];
    ui.painter().add(egui::Shape::convex_polygon(
        points,
        ui.visuals().text_color(),
        egui::Stroke::NONE,
    ));
}

/// The state, with the seeding choice where it matters ("Downloading · then seed"), and a
/// magnet link's peers while its metadata is fetched.
pub fn status_text(t: &TorrentSnapshot) -> String {
    match &t.state {
        TorrentState::Checking(p) => format!("Checking {:.0}%", p * 100.0),
        TorrentState::Moving(p) => format!("Moving {:.0}%", p * 100.0),
        TorrentState::FetchingMetadata => match t.connected_peers {
            1 => "Fetching metadata · 1 peer".into(),
            n => format!("Fetching metadata · {n} peers"),
        },
        TorrentState::Downloading if t.seeding_enabled => "Downloading · then seed".into(),
        TorrentState::Paused if t.progress >= 1.0 && t.seeding_enabled => "Paused · seed".into(),
        TorrentState::Offline(reason) => format!("Offline · {reason}"),
        other if t.forced => format!("[F] {}", other.label()),
        other => other.label().into(),
    }
}

/// The time left while downloading ("∞" with nothing coming in); blank otherwise.
fn eta_text(t: &TorrentSnapshot) -> String {
    match (t.eta, &t.state) {
        (Some(eta), _) => units::duration(eta),
        (None, TorrentState::Downloading) => "∞".into(),
        (None, _) => String::new(),
    }
}

/// Each torrent's place in the queue, from 1 (`torrents` is in queue order).
fn queue_positions(torrents: &[Arc<TorrentSnapshot>]) -> HashMap<InfoHash, usize> {
    torrents
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id, i + 1))
        .collect()
}

fn rate_or_blank(rate: u64) -> String {
    if rate == 0 {
        String::new()
    } else {
        units::rate(rate)
    }
}

fn with_swarm(connected: u32, swarm: Option<u32>) -> String {
    match swarm {
        Some(n) => format!("{connected} ({n})"),
        None => connected.to_string(),
    }
}

fn compare(column: SortColumn, a: &TorrentSnapshot, b: &TorrentSnapshot) -> Ordering {
    let f = |x: f32, y: f32| x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    match column {
        SortColumn::Queue => Ordering::Equal,
        SortColumn::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
        SortColumn::Size => a.total_size.cmp(&b.total_size),
        SortColumn::Progress => f(a.progress, b.progress),
        SortColumn::Status => status_text(a).cmp(&status_text(b)),
        SortColumn::Down => a.down_rate.cmp(&b.down_rate),
        SortColumn::Up => a.up_rate.cmp(&b.up_rate),
        SortColumn::Seeds => a.connected_seeds.cmp(&b.connected_seeds),
        SortColumn::Peers => a.connected_peers.cmp(&b.connected_peers),
        SortColumn::Ratio => f(a.ratio, b.ratio),
        SortColumn::Eta => a
            .eta
            .unwrap_or(std::time::Duration::MAX)
            .cmp(&b.eta.unwrap_or(std::time::Duration::MAX)),
        SortColumn::Added => a.added_at.cmp(&b.added_at),
    }
}
