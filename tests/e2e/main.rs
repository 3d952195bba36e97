//! End-to-end tests: the real `siprot` binary against the in-repo fake providers and a
//! real Secret Service (run them with `scripts/test.sh`).

#[path = "../support/mod.rs"]
mod support;

mod check_password;
mod config;
mod confirm;
mod conformance;
#[cfg(unix)]
mod contrib;
mod conventions;
mod demo_verify;
mod docs;
mod doctor;
mod duplicates;
mod exotel;
mod fleet;
mod fleet_verify;
mod generate;
#[cfg(unix)]
mod hook;
mod hostile;
mod inventory;
mod keyring_faults;
mod kills;
mod logging;
mod login;
mod outputs;
#[cfg(unix)]
mod phone;
mod plivo;
mod project;
mod proxy;
mod recover;
mod retries;
mod sdk;
mod secret;
mod signals;
#[cfg(unix)]
mod state_dir;
mod store_conformance;
mod telepath;
mod telnyx;
#[cfg(unix)]
mod trust;
mod try_it;
mod twilio;
mod vault;
mod vault_listing;
mod vault_protocol;
mod verify;
mod vobiz;
