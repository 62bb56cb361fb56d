//! Files the tool reads from paths the operator gives, and files it writes that may hold
//! operational detail. Reading: only regular files (a FIFO, a device or `/dev/zero` would hang
//! or exhaust memory), opened without blocking, and never more than a stated size. Writing:
//! created 0600, whatever the umask; an existing file that others may read is tightened.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Open `path` for reading if it is a regular file. The open itself does not block on a FIFO
/// (O_NONBLOCK), and the type is checked on the opened file, not on the path.
pub fn open_regular(path: &Path) -> Result<File, String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a pipe, socket or device)"
        };
        return Err(format!(
            "{} is {kind}: give the path of a regular file",
            path.display()
        ));
    }
    Ok(f)
}

/// A regular file's text, refused when larger than `cap` bytes; bytes that are not UTF-8 are
/// an error naming the file (a configuration must be read exactly).
pub fn read_text_capped(path: &Path, cap: u64, what: &str) -> Result<String, ReadError> {
    let f = open_regular(path).map_err(|e| match std::fs::metadata(path) {
        Err(m) if m.kind() == std::io::ErrorKind::NotFound => ReadError::NotFound(e),
        _ => ReadError::Other(e),
    })?;
    let mut bytes = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Other(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::Other(format!(
            "{} is larger than {} kB, which no {what} is: check the path",
            path.display(),
            cap / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        ReadError::Other(format!(
            "{} is not UTF-8 text (invalid byte at offset {}): save it as UTF-8",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    NotFound(String),
    Other(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotFound(e) | ReadError::Other(e) => f.write_str(e),
        }
    }
}

/// Replace `path` whole with `bytes`, private to this user: written beside it and renamed over
/// it, so a reader finds the old content or the new, never a part.
pub fn replace_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = append_private(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Open `path` for appending, creating it (and its directory, 0700) private to this user.
pub fn append_private(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    // O_NONBLOCK: opening a FIFO for writing would otherwise wait for a reader forever.
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    // A file made earlier (or by another tool) with wider access is tightened, not trusted.
    if meta.permissions().mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

#[cfg(test)]
#[allow(unsafe_code)] // mkfifo, to prove a FIFO is refused
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read_and_never_too_much() {
        let d = tempfile::tempdir().unwrap();
        let e = open_regular(d.path()).unwrap_err();
        assert!(e.contains("a directory"), "{e}");
        let e = read_text_capped(Path::new("/dev/zero"), 1024, "configuration").unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_regular(&fifo).unwrap_err();
        assert!(e.contains("pipe"), "{e}");
        let big = d.path().join("big");
        std::fs::write(&big, vec![b'a'; 5000]).unwrap();
        let e = read_text_capped(&big, 4096, "configuration").unwrap_err();
        assert!(e.to_string().contains("larger than 4 kB"), "{e}");
        assert!(matches!(
            read_text_capped(&d.path().join("none"), 10, "x"),
            Err(ReadError::NotFound(_))
        ));
        std::fs::write(&big, b"ok \xff").unwrap();
        let e = read_text_capped(&big, 4096, "configuration").unwrap_err();
        assert!(e.to_string().contains("offset 3"), "{e}");
    }

    #[test]
    fn private_files_are_0600_even_when_they_existed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/dir/journal.jsonl");
        append_private(&p).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(p.parent().unwrap()), 0o700);
        let old = d.path().join("old.log");
        std::fs::write(&old, "x").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        append_private(&old).unwrap();
        assert_eq!(mode(&old), 0o600);
        assert!(append_private(d.path()).is_err());
        assert!(append_private(Path::new("/dev/null")).is_err(), "a device");
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(append_private(&fifo).is_err(), "a FIFO, at once");
    }
}
