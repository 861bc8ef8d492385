//! "Add magnet link": a field for one link or several (one a line), checked as they are
//! typed or pasted; each error names its line and what is wrong.

use crate::magnet::MagnetLink;

/// What the user decided.
#[derive(Debug, PartialEq, Eq)]
pub enum MagnetAnswer {
    /// The links to add, each one checked.
    Add(Vec<String>),
    Cancel,
}

#[derive(Default)]
pub struct MagnetDialog {
    text: String,
}

impl MagnetDialog {
    /// The links in `text`, one a line, or the first line that is not one and why.
    fn links(text: &str) -> Result<Vec<String>, String> {
        let mut links = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            MagnetLink::parse(line).map_err(|e| format!("Line {}: {e}", n + 1))?;
            links.push(line.to_string());
        }
        Ok(links)
    }

    pub fn ui(&mut self, ctx: &egui::Context) -> Option<MagnetAnswer> {
        let mut answer = None;
        let modal = egui::Modal::new(egui::Id::unique("add-magnet")).show(ctx, |ui| {
            ui.set_width(520.0);
            ui.heading("Add magnet link");
            let label = ui.label("Magnet links, one a line");
            let field = ui
                .add(
                    egui::TextEdit::multiline(&mut self.text)
                        .hint_text("magnet:?xt=urn:btih:…")
                        .desired_rows(3)
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(label.id);
            if !field.has_focus() && self.text.is_empty() {
                field.request_focus();
            }
            let links = Self::links(&self.text);
            match &links {
                Err(why) => {
                    ui.colored_label(ui.visuals().error_fg_color, why);
                }
                Ok(links) if links.is_empty() => {
                    ui.weak("The metadata is fetched from peers; then you choose where to save.");
                }
                Ok(links) => {
                    ui.weak(match links.len() {
                        1 => "1 link".to_string(),
                        n => format!("{n} links"),
                    });
                }
            }
            ui.horizontal(|ui| {
                let ready = links.as_ref().ok().filter(|l| !l.is_empty());
                let add = ui.add_enabled(ready.is_some(), egui::Button::new("Add"));
                if add.clicked()
                    && let Some(links) = ready
                {
                    answer = Some(MagnetAnswer::Add(links.clone()));
                }
                if ui.button("Cancel").clicked() {
                    answer = Some(MagnetAnswer::Cancel);
                }
            });
        });
        if modal.should_close() && answer.is_none() {
            answer = Some(MagnetAnswer::Cancel);
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_a_link_or_an_error_naming_it() {
        let hash = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
        let text = format!("magnet:?xt=urn:btih:{hash}\n\n  magnet:?xt=urn:btih:{hash}&dn=x  \n");
        assert_eq!(MagnetDialog::links(&text).unwrap().len(), 2);
        let bad = format!("magnet:?xt=urn:btih:{hash}\nmagnet:?dn=x");
        let why = MagnetDialog::links(&bad).unwrap_err();
        assert!(why.starts_with("Line 2: "), "{why}");
        assert_eq!(MagnetDialog::links("  \n").unwrap(), Vec::<String>::new());
    }
}
