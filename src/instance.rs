//! Single instance: the first `rivulet` listens on a local socket in the user's runtime folder;
//! a later `rivulet X.torrent` (what a double-click runs) hands its arguments over that socket
//! and exits, and the running window adds them.
//!
//! Wire format: one argument per line (absolute paths or magnet URIs), then an empty line; the
//! listener answers `ok`. A question (`rivulet doctor` asking about a torrent of the running
//! session) is one line that starts with `?` (no argument does), then an empty line; the
//! answer is text lines, then an empty line. A socket left behind by a crashed instance
//! refuses connections and is replaced.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// What starting up found.
pub enum Claim {
    /// Another instance took the arguments; this process should exit.
    Forwarded,
    /// This is the only instance; serve later ones with [`Listener::serve`].
    Primary(Listener),
}

/// The socket for this user: `$XDG_RUNTIME_DIR/rivulet/instance.sock` (or a private folder in
/// the temp dir where there is no runtime folder).
pub fn socket_path() -> PathBuf {
    let dir = directories::BaseDirs::new()
        .and_then(|b| b.runtime_dir().map(Path::to_path_buf))
        .unwrap_or_else(|| std::env::temp_dir().join(format!("rivulet-{}", user_id())));
    dir.join("rivulet").join("instance.sock")
}

#[cfg(unix)]
fn user_id() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

#[cfg(not(unix))]
fn user_id() -> u32 {
    0
}

/// Makes relative paths absolute (the running instance has another working folder) and turns
/// `file://` URIs (what file managers pass for `%U`) into paths.
pub fn absolute_args(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| {
            if a.starts_with("magnet:") {
                return a.clone();
            }
            if let Some(rest) = a.strip_prefix("file://") {
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                return percent_decode(path);
            }
            let path = Path::new(a);
            if path.is_absolute() {
                return a.clone();
            }
            std::env::current_dir()
                .map(|d| d.join(path).display().to_string())
                .unwrap_or_else(|_| a.clone())
        })
        .collect()
}

/// Decodes `%XX` escapes; malformed ones are kept as they are.
fn percent_decode(text: &str) -> String {
    String::from_utf8_lossy(&crate::percent::decode(text)).into_owned()
}

#[cfg(unix)]
mod imp {
    use std::os::unix::net::{UnixListener, UnixStream};

    use super::*;

    pub struct Listener {
        listener: UnixListener,
        path: PathBuf,
    }

    /// Hands `args` to a running instance, or becomes the instance.
    pub fn claim(socket: &Path, args: &[String]) -> std::io::Result<Claim> {
        if forward(socket, args).is_ok() {
            return Ok(Claim::Forwarded);
        }
        if let Some(dir) = socket.parent() {
            std::fs::create_dir_all(dir)?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        // Nobody answered: whatever is there is stale.
        let _ = std::fs::remove_file(socket);
        match UnixListener::bind(socket) {
            Ok(listener) => Ok(Claim::Primary(Listener {
                listener,
                path: socket.to_path_buf(),
            })),
            // Another instance bound it a moment ago: hand the arguments to it.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                forward(socket, args).map(|()| Claim::Forwarded)
            }
            Err(e) => Err(e),
        }
    }

    fn forward(socket: &Path, args: &[String]) -> std::io::Result<()> {
        let mut stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut message = String::new();
        for arg in args {
            message.push_str(&arg.replace('\n', " "));
            message.push('\n');
        }
        message.push('\n');
        stream.write_all(message.as_bytes())?;
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply)?;
        if reply.trim() == "ok" {
            Ok(())
        } else {
            Err(std::io::Error::other("no answer from the running instance"))
        }
    }

    /// Asks the running instance `question`; its answer, or an error when none runs.
    pub fn ask(socket: &Path, question: &str) -> std::io::Result<String> {
        let mut stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.write_all(format!("?{}\n\n", question.replace('\n', " ")).as_bytes())?;
        let mut answer = String::new();
        for line in BufReader::new(stream).lines() {
            let line = line?;
            if line.is_empty() {
                return Ok(answer);
            }
            answer.push_str(&line);
            answer.push('\n');
        }
        Err(std::io::Error::other(
            "the running instance did not finish its answer",
        ))
    }

    impl Listener {
        /// Answers later instances on a thread of its own; `on_args` gets each one's arguments,
        /// `on_question` answers each question (a text without empty lines).
        pub fn serve(
            self,
            on_args: impl Fn(Vec<String>) + Send + 'static,
            on_question: impl Fn(&str) -> String + Send + 'static,
        ) {
            std::thread::Builder::new()
                .name("rivulet-instance".into())
                .spawn(move || {
                    for stream in self.listener.incoming() {
                        let Ok(stream) = stream else { continue };
                        match receive(&stream) {
                            Some(Message::Args(args)) => {
                                let _ = (&stream).write_all(b"ok\n");
                                on_args(args);
                            }
                            Some(Message::Question(question)) => {
                                let answer = framed(&on_question(&question));
                                let _ = (&stream).write_all(answer.as_bytes());
                            }
                            None => {}
                        }
                    }
                    let _ = std::fs::remove_file(&self.path);
                })
                .map(|_| ())
                .unwrap_or_else(|e| tracing::warn!(error = %e, "cannot serve other instances"));
        }
    }

    /// An answer as sent: its lines without control characters (a torrent's name or a
    /// tracker's words come from outside) and without empty ones, then the empty line that
    /// ends it.
    fn framed(answer: &str) -> String {
        let mut framed = String::new();
        for line in answer.lines() {
            let line: String = line
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            if !line.trim().is_empty() {
                framed.push_str(&line);
                framed.push('\n');
            }
        }
        framed.push('\n');
        framed
    }

    /// What a later instance sends.
    enum Message {
        Args(Vec<String>),
        Question(String),
    }

    fn receive(stream: &UnixStream) -> Option<Message> {
        stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
        stream.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
        let mut reader = BufReader::new(stream.try_clone().ok()?);
        let mut args = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 {
                break;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            args.push(line.to_string());
            if args.len() > 10_000 {
                return None;
            }
        }
        match args.as_slice() {
            [one] if one.starts_with('?') => Some(Message::Question(one[1..].to_string())),
            _ => Some(Message::Args(args)),
        }
    }
}

#[cfg(not(unix))]
mod imp {
    use super::*;

    /// Without Unix sockets every start is its own instance.
    pub struct Listener;

    pub fn claim(_socket: &Path, _args: &[String]) -> std::io::Result<Claim> {
        Ok(Claim::Primary(Listener))
    }

    pub fn ask(_socket: &Path, _question: &str) -> std::io::Result<String> {
        Err(std::io::Error::other("no running instance to ask"))
    }

    impl Listener {
        pub fn serve(
            self,
            _on_args: impl Fn(Vec<String>) + Send + 'static,
            _on_question: impl Fn(&str) -> String + Send + 'static,
        ) {
        }
    }
}

pub use imp::{Listener, ask, claim};

#[cfg(all(test, unix))]
mod tests {
    use std::sync::mpsc::channel;

    use super::*;

    #[test]
    fn second_instance_hands_over_its_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/instance.sock");
        let Claim::Primary(listener) = claim(&socket, &[]).unwrap() else {
            panic!("first is primary")
        };
        let (tx, rx) = channel();
        listener.serve(
            move |args| {
                let _ = tx.send(args);
            },
            |question| format!("asked: {question}\n\n\r\nsecond\rline\n"),
        );
        assert_eq!(
            ask(&socket, "doctor 00ff").unwrap(),
            "asked: doctor 00ff\nsecond line\n",
            "empty lines and control characters do not cut the answer short"
        );
        let args = vec![
            "/tmp/a.torrent".to_string(),
            "magnet:?xt=urn:btih:00".to_string(),
        ];
        assert!(matches!(claim(&socket, &args).unwrap(), Claim::Forwarded));
        assert_eq!(rx.recv_timeout(Duration::from_secs(2)).unwrap(), args);
    }

    #[test]
    fn stale_socket_does_not_block_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("instance.sock");
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        assert!(socket.exists(), "a crashed instance left its socket behind");
        assert!(matches!(
            claim(&socket, &["/x.torrent".into()]).unwrap(),
            Claim::Primary(_)
        ));
    }

    #[test]
    fn relative_paths_become_absolute() {
        let args = absolute_args(&[
            "a.torrent".into(),
            "/b.torrent".into(),
            "magnet:?xt=1".into(),
        ]);
        assert!(Path::new(&args[0]).is_absolute());
        assert_eq!(args[1], "/b.torrent");
        assert_eq!(args[2], "magnet:?xt=1");
        let uris = absolute_args(&[
            "file:///home/me/My%20Films/a%C3%A9.torrent".into(),
            "file://localhost/x.torrent".into(),
        ]);
        assert_eq!(
            uris,
            vec![
                "/home/me/My Films/a\u{e9}.torrent".to_string(),
                "/x.torrent".to_string()
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
    }
}
