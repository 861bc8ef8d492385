//! The window manager's side of the app's window in kittest: asking it to close, and the
//! viewport commands the app answered with.

use egui_kittest::Harness;
use rivulet::gui::RivuletApp;

/// Asks the window to close (its close button), runs one frame, and returns the app's answer.
pub fn close_window(harness: &mut Harness<'_, RivuletApp>) -> Vec<egui::ViewportCommand> {
    harness
        .input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
    harness.step();
    window_commands(harness)
}

/// The viewport commands of the last frame.
pub fn window_commands(harness: &Harness<'_, RivuletApp>) -> Vec<egui::ViewportCommand> {
    harness
        .output()
        .viewport_output
        .get(&egui::ViewportId::ROOT)
        .map(|v| v.commands.clone())
        .unwrap_or_default()
}
