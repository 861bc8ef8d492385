//! Short messages for the user (an invalid file, a duplicate, a finished download), shown under
//! the toolbar until dismissed or until they age out.

use std::time::{Duration, Instant};

/// How long a message stays.
const LIFETIME: Duration = Duration::from_secs(12);
const MAX_SHOWN: usize = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    at: Instant,
}

#[derive(Default)]
pub struct Notices {
    list: Vec<Notice>,
}

impl Notices {
    pub fn info(&mut self, text: impl Into<String>) {
        self.push(text.into(), false);
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.push(text.into(), true);
    }

    fn push(&mut self, text: String, error: bool) {
        self.list.push(Notice {
            text,
            error,
            at: Instant::now(),
        });
        if self.list.len() > MAX_SHOWN {
            self.list.remove(0);
        }
    }

    pub fn all(&self) -> &[Notice] {
        &self.list
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.list.retain(|n| n.at.elapsed() < LIFETIME);
        if let Some(oldest) = self.list.iter().map(|n| n.at).min() {
            ui.ctx()
                .request_repaint_after(LIFETIME.saturating_sub(oldest.elapsed()));
        }
        let mut dismissed = None;
        for (i, notice) in self.list.iter().enumerate() {
            ui.horizontal(|ui| {
                let color = if notice.error {
                    ui.visuals().error_fg_color
                } else {
                    ui.visuals().text_color()
                };
                ui.colored_label(color, &notice.text);
                if ui.small_button("×").on_hover_text("Dismiss").clicked() {
                    dismissed = Some(i);
                }
            });
        }
        if let Some(i) = dismissed {
            self.list.remove(i);
        }
    }
}
