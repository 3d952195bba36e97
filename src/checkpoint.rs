//! Named points of the rotation protocol where the test suite stops the process to
//! prove that a kill at any step loses nothing.
//!
//! In debug builds (what `cargo test` runs), setting `SIPROT_TEST_PAUSE_AT` to a point's
//! name makes siprot print `siprot: test pause at <point>` on standard error when it gets
//! there and then sleep until it is killed; or, when `SIPROT_TEST_RESUME_FILE` names a
//! path, until that file exists; or until a signal `rotate` catches arrives (then it goes
//! on, as if the signal had come during that step). Release builds compile [`reached`]
//! to nothing.

/// Marks a point of the protocol; see the module docs.
#[cfg(debug_assertions)]
pub fn reached(point: &str) {
    if std::env::var_os("SIPROT_TEST_PAUSE_AT").is_some_and(|wanted| wanted == point) {
        crate::output::to_stderr(&format!("siprot: test pause at {point}\n"));
        let resume = std::env::var_os("SIPROT_TEST_RESUME_FILE").map(std::path::PathBuf::from);
        loop {
            std::thread::sleep(std::time::Duration::from_millis(20));
            if resume.as_ref().is_some_and(|file| file.exists()) {
                return;
            }
            if let Some(signal) = crate::interrupt::received() {
                crate::output::to_stderr(&format!(
                    "siprot: test pause at {point} ended by {signal}\n"
                ));
                return;
            }
        }
    }
}

/// Marks a point of the protocol; does nothing in release builds.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn reached(_point: &str) {}
