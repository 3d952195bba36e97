//! Files siprot reads settings from, and whether they can be trusted.
//!
//! Reading ([`read_small`], every platform): only a regular file (a symbolic link is
//! followed to one) of at most a given size is read. A FIFO is opened non-blocking, so it
//! is refused instead of waited on; a FIFO, device, directory or socket is refused before
//! a byte of it is read, and a file that grows past the limit while it is read is refused
//! too. This covers the inventory, the config file, `~/.vault-token`, `VAULT_CACERT`,
//! `VAULT_CLIENT_CERT` and `VAULT_CLIENT_KEY`.
//!
//! Trust ([`Trust::Owner`], Unix), for the files that can run a command or send a key
//! elsewhere (the inventory's `exec` and `store`, the config file's `base_url`): as ssh
//! treats its configuration, the file (a symbolic link's target) must be owned by the
//! user or root and writable by nobody else (neither group nor others), and so must each
//! directory above it up to the home directory (`$HOME`, or `$XDG_CONFIG_HOME`), that one
//! included. Directories above `$HOME` and sticky directories (such as `/tmp`, where no
//! one can replace another's file) are not judged. An untrusted file is refused before
//! anything is read from it, with the `chmod` or `chown` that fixes it. The state
//! directory's stricter rules (owned by the user alone, no links) are in
//! [`crate::state`].
//!
//! Windows has no Unix owners or modes: there files are only required to be regular and
//! small; who may write them is the access list of the folder they are in.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

/// Whether a file must also be trusted (Unix owner and modes) before it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Only regular and small (certificates, the vault token).
    Any,
    /// Also owned by the user or root and writable by nobody else, nor its directories.
    Owner,
}

/// A file read whole: its bytes (wiped when dropped) and what `fstat` said of it.
pub struct SmallFile {
    pub bytes: Zeroizing<Vec<u8>>,
    pub metadata: Metadata,
}

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// There is no such file.
    Missing(std::io::Error),
    /// It cannot be opened or read, is not a regular file, or is too large: why.
    Unreadable(String),
    /// It (or a directory above it) may be changed by someone else: why, and the fix.
    Untrusted(String),
}

impl ReadError {
    /// The one-line message for `what` (`the inventory fleet.toml`): `cannot read WHAT:
    /// WHY`, or `WHAT is not trusted: WHY`.
    pub fn message(&self, what: &str) -> String {
        match self {
            ReadError::Missing(e) => format!("cannot read {what}: {e}"),
            ReadError::Unreadable(why) => format!("cannot read {what}: {why}"),
            ReadError::Untrusted(why) => format!("{what} is not trusted: {why}"),
        }
    }
}

/// Reads the file at `path` if it is a regular file of at most `limit` bytes (and, with
/// [`Trust::Owner`], a trusted one); see the module docs.
pub fn read_small(path: &Path, limit: u64, trust: Trust) -> Result<SmallFile, ReadError> {
    let file = open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReadError::Missing(e),
        _ => ReadError::Unreadable(e.to_string()),
    })?;
    let metadata = file
        .metadata()
        .map_err(|e| ReadError::Unreadable(e.to_string()))?;
    if !metadata.is_file() {
        return Err(ReadError::Unreadable(format!(
            "it is {}, not a regular file",
            file_kind(&metadata.file_type())
        )));
    }
    let shown_limit = format!("the limit of {}", size(limit));
    if metadata.len() > limit {
        return Err(ReadError::Unreadable(format!(
            "it is {} bytes, over {shown_limit}",
            metadata.len()
        )));
    }
    if trust == Trust::Owner {
        check_trusted(path, &metadata).map_err(ReadError::Untrusted)?;
    }
    // Sized up front, so that no reallocation leaves a copy of a secret behind.
    let capacity = usize::try_from(metadata.len()).unwrap_or(0) + 1;
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    // The size was checked above, but the file may grow while it is read.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Unreadable(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::Unreadable(format!(
            "it grew over {shown_limit} while it was read"
        )));
    }
    Ok(SmallFile { bytes, metadata })
}

/// Opens for reading without waiting: a FIFO opened non-blocking opens at once (and is
/// then refused as not a regular file); regular files read as usual.
fn open(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    options.open(path)
}

/// `16 MiB`, `64 KiB` or `100 bytes`.
fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// What a file that is not a regular file is, for the message refusing it.
pub fn file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

/// Whether the file opened at `path` (`metadata` from its open handle) and the directories
/// above it may be trusted; the error says what to fix.
#[cfg(unix)]
fn check_trusted(path: &Path, metadata: &Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let real = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve its path: {e}"))?;
    // The path still leads to the file that was opened (not swapped in between).
    let again = std::fs::metadata(&real).map_err(|e| format!("cannot inspect it: {e}"))?;
    if (again.dev(), again.ino()) != (metadata.dev(), metadata.ino()) {
        return Err("it was replaced while siprot checked it: try again".into());
    }
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let subject = if is_link {
        format!("it is a link to {}, which", real.display())
    } else {
        "it".to_owned()
    };
    let me = rustix::process::geteuid().as_raw();
    judge(&subject, &real, metadata, me)?;
    let homes = Homes::here();
    for dir in real.ancestors().skip(1) {
        if homes.is_above(dir) {
            break;
        }
        let meta = std::fs::metadata(dir)
            .map_err(|e| format!("cannot inspect its directory {}: {e}", dir.display()))?;
        // Sticky (like /tmp): no one can replace or rename another's file in it.
        if meta.mode() & 0o1000 == 0 {
            let subject = format!("its directory {}", dir.display());
            judge(&subject, dir, &meta, me)?;
        }
        if homes.is_home(dir) {
            break;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_trusted(_path: &Path, _metadata: &Metadata) -> Result<(), String> {
    Ok(())
}

/// Refuses a file or directory owned by someone other than the user (`me`) or root, or
/// writable by group or others.
#[cfg(unix)]
fn judge(subject: &str, path: &Path, metadata: &Metadata, me: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display();
    let owner = metadata.uid();
    if owner != me && owner != 0 {
        return Err(format!(
            "{subject} is owned by uid {owner}, not by you (uid {me}) or root: check it, then \
             chown {me} {shown} (or use a copy of your own)"
        ));
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "{subject} is writable by group or others (mode {mode:o}): check it, then chmod \
             go-w {shown}"
        ));
    }
    Ok(())
}

/// The home directories a walk up from a file stops at: `$HOME` and `$XDG_CONFIG_HOME`,
/// as their real paths.
#[cfg(unix)]
struct Homes {
    homes: Vec<std::path::PathBuf>,
}

#[cfg(unix)]
impl Homes {
    fn here() -> Self {
        let homes = ["HOME", "XDG_CONFIG_HOME"]
            .into_iter()
            .filter_map(std::env::var_os)
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_absolute())
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect();
        Self { homes }
    }

    fn is_home(&self, dir: &Path) -> bool {
        self.homes.iter().any(|home| home == dir)
    }

    /// Whether `dir` is above `$HOME` (or `$XDG_CONFIG_HOME`): one of its parents.
    fn is_above(&self, dir: &Path) -> bool {
        self.homes
            .iter()
            .any(|home| home != dir && home.starts_with(dir))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_fifo_or_device_is_refused_without_waiting_and_a_large_file_by_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let error = read_small(&fifo, 1024, Trust::Any).err().unwrap();
        assert_eq!(
            error.message("x"),
            "cannot read x: it is a FIFO, not a regular file"
        );
        let error = read_small(Path::new("/dev/zero"), 1024, Trust::Any)
            .err()
            .unwrap();
        assert!(error.message("x").contains("a character device"));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 1025]).unwrap();
        let error = read_small(&big, 1024, Trust::Any).err().unwrap();
        assert_eq!(
            error.message("x"),
            "cannot read x: it is 1025 bytes, over the limit of 1 KiB"
        );
        let small = dir.path().join("small");
        std::fs::write(&small, "ok").unwrap();
        assert_eq!(
            &**read_small(&small, 1024, Trust::Any).unwrap().bytes,
            b"ok"
        );
        assert!(matches!(
            read_small(&dir.path().join("none"), 1024, Trust::Any),
            Err(ReadError::Missing(_))
        ));
    }

    #[test]
    fn a_file_or_directory_writable_by_others_is_untrusted_a_sticky_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("config.toml");
        std::fs::write(&file, "x").unwrap();
        chmod(&file, 0o644);
        chmod(&sub, 0o755);
        assert!(read_small(&file, 10, Trust::Owner).is_ok());
        chmod(&file, 0o664);
        let error = read_small(&file, 10, Trust::Owner).err().unwrap();
        assert!(matches!(error, ReadError::Untrusted(_)));
        let text = error.message("the config file");
        assert!(
            text.contains(&format!("chmod go-w {}", file.display())),
            "{text}"
        );
        // Trust::Any does not judge it.
        assert!(read_small(&file, 10, Trust::Any).is_ok());
        chmod(&file, 0o644);
        chmod(&sub, 0o777);
        let text = read_small(&file, 10, Trust::Owner)
            .err()
            .unwrap()
            .message("f");
        assert!(
            text.contains(&format!("its directory {} is writable", sub.display())),
            "{text}"
        );
        chmod(&sub, 0o1777);
        assert!(read_small(&file, 10, Trust::Owner).is_ok());
    }
}
