//! SIGINT, SIGTERM and SIGHUP while siprot changes passwords.
//!
//! A signal that killed siprot while a Telepath POST was in flight would lose the password
//! the provider has just made (it kills the old one at once), so `rotate` catches these
//! three signals ([`catch`]) instead of dying. The first one is recorded: the rotation in
//! flight is carried to a safe point (its answer stored, or kept in `#pending` or a
//! recovery file, or its request known not to have been sent) within its own `--timeout`
//! and `--deadline`; a rotation that has not sent its request yet does not send it
//! ([`received`] is checked just before the request and before every retry of a
//! provider's request); a fleet starts no new credential. Nothing else stops: the store's
//! calls, keyring and vault alike (the vault store's HTTP client is
//! [`crate::http::OnSignal::Finish`]), still go out within their own bound, because they
//! are what makes a password the provider accepted safe (its promotion to current, the
//! removal of `#pending`, the release of a claim). siprot then exits with the signal's conventional code
//! ([`final_code`]: 130 SIGINT, 143 SIGTERM, 129 SIGHUP), or 9 when something is left to
//! recover. A second signal is reported and changes nothing: the step in flight still
//! finishes within its bound (SIGKILL stops at once; `siprot status` then says "outcome
//! unknown" with the next step).
//!
//! The signals are watched by a thread of their own, so the flag is set at once even
//! while the command's own thread is busy or blocked. On Windows the console's control
//! events stand for them (see `install`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::{Error, ExitCode, Result, exit};

/// The signal type lives in [`crate::error`], which carries it in
/// [`Error::Interrupted`]; this module depends on `error`, not the other way round.
pub use crate::error::Signal;

/// The signal as stored in [`FIRST`] (0 is none).
fn to_u8(signal: Signal) -> u8 {
    match signal {
        Signal::Hangup => 1,
        Signal::Interrupt => 2,
        Signal::Terminate => 3,
    }
}

fn from_u8(value: u8) -> Option<Signal> {
    match value {
        1 => Some(Signal::Hangup),
        2 => Some(Signal::Interrupt),
        3 => Some(Signal::Terminate),
        _ => None,
    }
}

/// The first signal received (0: none yet).
static FIRST: AtomicU8 = AtomicU8::new(0);

/// Wakes the tasks waiting in [`signalled`].
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// The first of SIGINT, SIGTERM and SIGHUP received since [`catch`], if any.
pub fn received() -> Option<Signal> {
    from_u8(FIRST.load(Ordering::SeqCst))
}

/// Returns once a signal has been received (at once if one already was): for waits that
/// a signal should cut short, such as the pause before a retry.
pub async fn signalled() {
    let notified = WAKE.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    if received().is_some() {
        return;
    }
    notified.await;
}

/// The exit code of a command that ended with `code`: unchanged when no signal came, or
/// when it is 9 (something is left to recover, which matters more); otherwise the
/// signal's conventional code.
pub fn final_code(code: ExitCode) -> ExitCode {
    match received() {
        Some(signal) if code != exit::UNCONFIRMED => signal.exit_code(),
        _ => code,
    }
}

/// A failure as the command reports it once a signal came: it keeps exit 9 (the password
/// may be live and something is left to recover), otherwise it becomes
/// [`Error::Interrupted`] with the signal's exit code, its message kept.
pub fn wrap(error: Error) -> Error {
    match received() {
        Some(signal)
            if error.exit_code() != exit::UNCONFIRMED
                && !matches!(error, Error::Interrupted { .. }) =>
        {
            Error::Interrupted {
                signal,
                message: format!("{error} (interrupted by {signal})"),
            }
        }
        _ => error,
    }
}

/// Starts catching SIGINT, SIGTERM and SIGHUP for the rest of the process (once; later
/// calls do nothing). Returns when the handlers are in place.
pub fn catch() -> Result<()> {
    static CAUGHT: OnceLock<Result<(), String>> = OnceLock::new();
    CAUGHT
        .get_or_init(install)
        .clone()
        .map_err(|e| Error::Unexpected(format!("cannot catch signals: {e}")))
}

/// Runs `listen` for the rest of the process on a thread of its own, with a runtime of
/// its own; returns once `listen` has said (through the sender it is given) whether its
/// handlers are in place.
#[cfg(any(unix, windows))]
fn spawn_listener<F, Fut>(listen: F) -> Result<(), String>
where
    F: FnOnce(std::sync::mpsc::Sender<Result<(), String>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (ready, installed) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("siprot-signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready.send(Err(e.to_string()));
                    return;
                }
            };
            runtime.block_on(listen(ready));
        });
    if let Err(e) = spawned {
        return Err(e.to_string());
    }
    installed
        .recv()
        .unwrap_or_else(|_| Err("the signal thread ended".into()))
}

#[cfg(unix)]
fn install() -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};

    spawn_listener(|ready| async move {
        let streams = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        );
        let (mut int, mut term, mut hup) = match streams {
            (Ok(int), Ok(term), Ok(hup)) => (int, term, hup),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        loop {
            let signal = tokio::select! {
                Some(()) = int.recv() => Signal::Interrupt,
                Some(()) = term.recv() => Signal::Terminate,
                Some(()) = hup.recv() => Signal::Hangup,
                else => break,
            };
            note(signal);
        }
    })
}

/// Windows has console control events instead of signals: Ctrl+C and Ctrl+Break count as
/// SIGINT, closing the console window and logging off as SIGHUP, shutting down as
/// SIGTERM. Windows ends the process anyway once its grace period after a close, logoff
/// or shutdown event is over (5 s for a closed window), as a SIGKILL would.
#[cfg(windows)]
fn install() -> Result<(), String> {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_logoff, ctrl_shutdown};

    spawn_listener(|ready| async move {
        let events = (
            ctrl_c(),
            ctrl_break(),
            ctrl_close(),
            ctrl_logoff(),
            ctrl_shutdown(),
        );
        let (mut c, mut brk, mut close, mut logoff, mut shutdown) = match events {
            (Ok(c), Ok(brk), Ok(close), Ok(logoff), Ok(shutdown)) => {
                (c, brk, close, logoff, shutdown)
            }
            (Err(e), ..)
            | (_, Err(e), ..)
            | (_, _, Err(e), ..)
            | (.., Err(e), _)
            | (.., Err(e)) => {
                let _ = ready.send(Err(e.to_string()));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        loop {
            let signal = tokio::select! {
                Some(()) = c.recv() => Signal::Interrupt,
                Some(()) = brk.recv() => Signal::Interrupt,
                Some(()) = close.recv() => Signal::Hangup,
                Some(()) = logoff.recv() => Signal::Hangup,
                Some(()) = shutdown.recv() => Signal::Terminate,
                else => break,
            };
            note(signal);
        }
    })
}

#[cfg(not(any(unix, windows)))]
fn install() -> Result<(), String> {
    Err("this operating system has no signals siprot can catch".into())
}

/// Records a signal and says on standard error what siprot does about it.
fn note(signal: Signal) {
    let first = FIRST
        .compare_exchange(0, to_u8(signal), Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    WAKE.notify_waiters();
    if first {
        crate::output::warning(&format!(
            "{signal} received: finishing the step in flight (within its --timeout and \
             --deadline) so that no password is lost, starting nothing new, then exiting"
        ));
    } else {
        crate::output::warning(&format!(
            "{signal} received again: still finishing the step in flight within its bound \
             (SIGKILL would stop at once, leaving an outcome that `siprot status` reports as unknown)"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_have_their_conventional_exit_codes() {
        assert_eq!(Signal::Interrupt.exit_code().code(), 130);
        assert_eq!(Signal::Terminate.exit_code().code(), 143);
        assert_eq!(Signal::Hangup.exit_code().code(), 129);
        for signal in [Signal::Interrupt, Signal::Terminate, Signal::Hangup] {
            assert_eq!(from_u8(to_u8(signal)), Some(signal));
        }
        assert_eq!(received(), None);
        assert_eq!(
            final_code(exit::TRANSIENT),
            exit::TRANSIENT,
            "no signal: the command's own code"
        );
    }
}
