//! Start at login: the XDG autostart entry
//! (`~/.config/autostart/org.rivulet.Rivulet.desktop`, running `rivulet --minimized`), written
//! or removed to match the setting, off the UI thread.

use std::io;
use std::path::{Path, PathBuf};

/// Where the desktop looks for programs to start at login (`$XDG_CONFIG_HOME/autostart`).
pub fn entry_path() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|dirs| {
        dirs.config_dir()
            .join("autostart")
            .join(format!("{}.desktop", super::APP_ID))
    })
}

/// Writes (atomically) or removes the entry at `path`; a missing entry is already removed.
pub fn apply(enabled: bool, path: &Path) -> io::Result<()> {
    if enabled {
        crate::engine::write_atomically(path, entry(&launcher()).as_bytes())
    } else {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// [`apply`] on a helper thread; a failure is logged.
pub fn apply_in_background(enabled: bool) {
    let Some(path) = entry_path() else {
        tracing::warn!("no config folder for the autostart entry");
        return;
    };
    std::thread::spawn(move || {
        if let Err(e) = apply(enabled, &path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot update the autostart entry");
        }
    });
}

/// The desktop entry that starts `program` hidden in the tray.
pub fn entry(program: &str) -> String {
    format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name=Rivulet\n\
         Comment=Keep downloading and seeding in the background\n\
         Exec={program} --minimized\n\
         Icon={}\n\
         Terminal=false\n\
         X-GNOME-Autostart-enabled=true\n",
        super::APP_ID
    )
}

/// `rivulet` when that name on `PATH` is this program (an installed Rivulet), otherwise this
/// program's full path, quoted as the desktop entry spec asks.
fn launcher() -> String {
    let this = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("rivulet"))
            .find(|p| p.is_file())
            .and_then(|p| p.canonicalize().ok())
    });
    match this {
        Some(this) if on_path.as_ref() != Some(&this) => quote_exec(&this.to_string_lossy()),
        _ => "rivulet".into(),
    }
}

/// An `Exec` argument: quoted, with `"`, `` ` ``, `$` and `\` escaped, when it needs it.
fn quote_exec(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+".contains(c);
    if arg.chars().all(plain) {
        return arg.to_string();
    }
    let mut quoted = String::from("\"");
    for c in arg.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted.replace('%', "%%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_removes_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join("autostart")
            .join("org.rivulet.Rivulet.desktop");
        apply(true, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(" --minimized\n"), "{text}");
        assert!(text.starts_with("[Desktop Entry]\n"));
        apply(false, &path).unwrap();
        assert!(!path.exists());
        apply(false, &path).unwrap();
    }

    #[test]
    fn the_entry_is_valid_for_desktop_file_validate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("org.rivulet.Rivulet.desktop");
        std::fs::write(&path, entry("rivulet")).unwrap();
        match std::process::Command::new("desktop-file-validate")
            .arg(&path)
            .output()
        {
            Ok(out) => assert!(
                out.status.success() && out.stdout.is_empty(),
                "desktop-file-validate: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(_) => eprintln!("skipped: desktop-file-validate is not installed"),
        }
        assert!(entry("rivulet").contains("\nExec=rivulet --minimized\n"));
    }

    #[test]
    fn exec_arguments_are_quoted_when_needed() {
        assert_eq!(quote_exec("/usr/bin/rivulet"), "/usr/bin/rivulet");
        assert_eq!(
            quote_exec("/home/a b/$x/100%/rivulet"),
            "\"/home/a b/\\$x/100%%/rivulet\""
        );
    }
}
