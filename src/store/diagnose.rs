//! Why the OS keyring cannot be used, in words an operator can act on: no D-Bus session
//! bus, no Secret Service on it, or its collection locked. Used by `siprot doctor` and by
//! the keyring's own errors (which then point to `siprot doctor`). Nothing here writes,
//! unlocks or prompts.

use std::time::Duration;

/// The environment variable that names the D-Bus session bus.
pub const BUS_VAR: &str = "DBUS_SESSION_BUS_ADDRESS";

/// How to unlock a locked collection from a shell.
pub const UNLOCK_HINT: &str = "unlock it: log in to the desktop session, or from a shell \
    `gnome-keyring-daemon --replace --unlock --components=secrets` reading the password on standard input \
    (from a secret you control), or any `secret-tool lookup` that prompts";

/// Where the session bus is, if it can be reached: `Ok(description)` or `Err(why not)`.
/// Only `unix:path=` and `unix:abstract=` addresses are tried; any other transport is
/// taken as reachable (the Secret Service check then tells).
pub fn session_bus() -> Result<String, String> {
    let address = std::env::var(BUS_VAR).ok().filter(|a| !a.trim().is_empty());
    let Some(address) = address else {
        // zbus falls back to $XDG_RUNTIME_DIR/bus (else /run/user/UID/bus).
        let runtime = std::env::var_os("XDG_RUNTIME_DIR")
            .map(std::path::PathBuf::from)
            .or_else(default_runtime_dir);
        return match runtime.map(|dir| dir.join("bus")) {
            Some(path) if connects(&path) => Ok(format!("{} ({BUS_VAR} unset)", path.display())),
            Some(path) => Err(format!(
                "no D-Bus session bus: {BUS_VAR} is not set and {} does not answer",
                path.display()
            )),
            None => Err(format!("no D-Bus session bus: {BUS_VAR} is not set")),
        };
    };
    let first = address.split(';').next().unwrap_or_default();
    let Some(rest) = first.strip_prefix("unix:") else {
        return Ok(format!("{BUS_VAR} names a non-unix transport (not probed)"));
    };
    let mut path = None;
    let mut abstract_name = None;
    for pair in rest.split(',') {
        if let Some(p) = pair.strip_prefix("path=") {
            path = Some(p.to_owned());
        } else if let Some(a) = pair.strip_prefix("abstract=") {
            abstract_name = Some(a.to_owned());
        }
    }
    if let Some(path) = path {
        return if connects(std::path::Path::new(&path)) {
            Ok(format!("{path} (from {BUS_VAR})"))
        } else {
            Err(format!(
                "no D-Bus session bus: nothing answers at {path} (from {BUS_VAR})"
            ))
        };
    }
    if let Some(name) = abstract_name {
        return if connects_abstract(&name) {
            Ok(format!("abstract socket {name} (from {BUS_VAR})"))
        } else {
            Err(format!(
                "no D-Bus session bus: nothing answers at abstract socket {name} (from {BUS_VAR})"
            ))
        };
    }
    Ok(format!(
        "{BUS_VAR} names a unix transport siprot does not probe"
    ))
}

#[cfg(unix)]
fn default_runtime_dir() -> Option<std::path::PathBuf> {
    Some(std::path::PathBuf::from(format!(
        "/run/user/{}",
        rustix::process::getuid().as_raw()
    )))
}

#[cfg(not(unix))]
fn default_runtime_dir() -> Option<std::path::PathBuf> {
    None
}

#[cfg(unix)]
fn connects(path: &std::path::Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

#[cfg(not(unix))]
fn connects(_path: &std::path::Path) -> bool {
    false
}

#[cfg(target_os = "linux")]
fn connects_abstract(name: &str) -> bool {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .and_then(|addr| std::os::unix::net::UnixStream::connect_addr(&addr))
        .is_ok()
}

#[cfg(not(target_os = "linux"))]
fn connects_abstract(_name: &str) -> bool {
    false
}

/// What the Secret Service on the session bus says about its default collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collection {
    Unlocked(String),
    Locked(String),
    /// No default collection yet (the first write creates one).
    Missing,
}

/// Asks the Secret Service about the default collection (`Err`: no Secret Service, or
/// another failure, in words). Never unlocks or prompts; bounded by `timeout`.
#[cfg(target_os = "linux")]
pub fn secret_service(timeout: Duration) -> Result<Collection, String> {
    use secret_service::blocking::SecretService;
    use secret_service::{EncryptionType, Error};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = (|| {
            let service = SecretService::connect(EncryptionType::Plain).map_err(|e| match e {
                Error::Unavailable => "no Secret Service on the session bus".to_owned(),
                other => format!("no Secret Service on the session bus ({other})"),
            })?;
            let collection = match service.get_default_collection() {
                Ok(collection) => collection,
                Err(Error::NoResult) => return Ok(Collection::Missing),
                Err(e) => return Err(format!("the Secret Service failed: {e}")),
            };
            let label = collection.get_label().unwrap_or_else(|_| "default".into());
            match collection.is_locked() {
                Ok(true) => Ok(Collection::Locked(label)),
                Ok(false) => Ok(Collection::Unlocked(label)),
                Err(e) => Err(format!("the Secret Service failed: {e}")),
            }
        })();
        let _ = tx.send(result);
    });
    rx.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(format!(
            "the Secret Service did not answer within {timeout:?}"
        ))
    })
}

#[cfg(not(target_os = "linux"))]
pub fn secret_service(_timeout: Duration) -> Result<Collection, String> {
    Ok(Collection::Unlocked("the platform's keyring".into()))
}

/// The cause of a keyring error message from keyring-core or the Secret Service, in
/// words, with `siprot doctor` as the next step; `None` when it is none of the known
/// causes. May look at the session bus (to tell no bus from no Secret Service).
pub fn explain(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let cause = if lower.contains("no secret service provider or dbus session found") {
        match session_bus() {
            Err(why) => why,
            Ok(_) => "no Secret Service on the D-Bus session bus".to_owned(),
        }
    } else if lower.contains("serviceunknown") && lower.contains("org.freedesktop.secrets") {
        // The bus answered, but nothing owns (or can start) the Secret Service's name.
        "no Secret Service on the D-Bus session bus".to_owned()
    } else if lower.contains("prompt dismissed") || lower.contains("object locked") {
        "the keyring's collection is locked (unlock it, or log in to the desktop)".to_owned()
    } else {
        return None;
    };
    Some(format!("{cause} [{message}], see `siprot doctor`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_causes_are_named_and_point_to_doctor() {
        let locked =
            explain("Platform secure storage failure: SS error: prompt dismissed").unwrap();
        assert!(locked.contains("locked"), "{locked}");
        assert!(locked.ends_with("see `siprot doctor`"), "{locked}");
        let none = explain(
            "Platform failure: zbus error: org.freedesktop.DBus.Error.ServiceUnknown: The name \
             org.freedesktop.secrets was not provided by any .service files",
        )
        .unwrap();
        assert!(
            none.starts_with("no Secret Service on the D-Bus session bus ["),
            "{none}"
        );
        assert_eq!(explain("something else"), None);
    }
}
