//! An in-memory provider for tests: the protocol's counterpart without HTTP.
//!
//! [`MemoryProvider`] stands in for a real provider of a registered [`ProviderKind`]
//! (Telepath for a server-generated password, Exotel or Vobiz for a client-set one), so
//! that `rotation` branches on [`ProviderKind::origin`] exactly as in production. It holds
//! the password the provider would accept now and answers each request with the next
//! [`Outcome`] of a scripted queue ([`Outcome::Accept`] once the queue is empty):
//! - [`Outcome::Accept`]: the password changes (to the one sent, or to a new generated
//!   one) and the answer arrives;
//! - [`Outcome::Refuse`]: a failure for sure with the error a provider maps that HTTP
//!   status to (401, 403, 404, 400 and other 4xx, 429); nothing changes;
//! - [`Outcome::NotSent`]: the request never left (a refused connection): transient,
//!   nothing changes;
//! - [`Outcome::LostAnswer`]: the provider commits the change, then the answer is lost
//!   ([`Error::OutcomeUnknown`]);
//! - [`Outcome::UnknownUnchanged`]: the answer is lost and the provider did not commit
//!   (a timeout before it acted): [`Error::OutcomeUnknown`], nothing changed.
//!
//! Every request is recorded ([`MemoryProvider::received`]); passwords stay
//! [`SecretString`]s, so nothing here prints one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::{CredentialRef, PasswordOrigin, Provider, ProviderKind, RotateRequest, Rotated};
use crate::error::{Error, Result};
use crate::http::Attempts;

/// How the provider answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The password changes and the answer arrives.
    Accept,
    /// Fails for sure with the error of this HTTP status; nothing changes.
    Refuse(u16),
    /// The request never left; nothing changes.
    NotSent,
    /// The provider commits the change, then the answer is lost.
    LostAnswer,
    /// The answer is lost and the provider did not commit.
    UnknownUnchanged,
}

/// One request the provider received.
#[derive(Debug)]
pub struct Received {
    pub credential: CredentialRef,
    /// The password a client-set request carried; `None` for a server-generated one.
    pub password: Option<SecretString>,
    pub description: Option<String>,
    pub outcome: Outcome,
}

#[derive(Debug, Default)]
struct State {
    password: Option<SecretString>,
    script: VecDeque<Outcome>,
    received: Vec<Received>,
    generated: u32,
}

/// Called when a request arrives, before it is answered.
type Hook = Arc<dyn Fn() + Send + Sync>;

/// An in-memory provider of a registered kind; clones share one state.
#[derive(Clone)]
pub struct MemoryProvider {
    kind: ProviderKind,
    label: Arc<str>,
    state: Arc<Mutex<State>>,
    on_request: Arc<Mutex<Option<Hook>>>,
}

impl std::fmt::Debug for MemoryProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryProvider")
            .field("kind", &self.kind)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl MemoryProvider {
    /// A provider of `kind` that accepts `password` now (`None`: no password yet).
    /// `label` makes its generated passwords unique across providers of one test run.
    pub fn new(kind: ProviderKind, label: &str, password: Option<SecretString>) -> Self {
        Self {
            kind,
            label: Arc::from(label),
            state: Arc::new(Mutex::new(State {
                password,
                ..State::default()
            })),
            on_request: Arc::default(),
        }
    }

    /// Calls `hook` whenever a request arrives, before it is answered (e.g. to note where
    /// in a sequence of keyring calls the request came).
    pub fn on_request(&self, hook: impl Fn() + Send + Sync + 'static) {
        *self.on_request.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(hook));
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues the answers to the next requests, in order.
    pub fn script(&self, outcomes: impl IntoIterator<Item = Outcome>) {
        self.state().script.extend(outcomes);
    }

    /// Forgets the answers not used yet.
    pub fn clear_script(&self) {
        self.state().script.clear();
    }

    /// The password the provider accepts now.
    pub fn password(&self) -> Option<SecretString> {
        self.state().password.clone()
    }

    /// Whether the provider accepts exactly `password` now.
    pub fn accepts(&self, password: Option<&SecretString>) -> bool {
        match (&self.state().password, password) {
            (Some(have), Some(given)) => have.expose_secret() == given.expose_secret(),
            (None, None) => true,
            _ => false,
        }
    }

    /// How many requests it received.
    pub fn requests(&self) -> usize {
        self.state().received.len()
    }

    /// Runs `f` over the requests received so far.
    pub fn received<T>(&self, f: impl FnOnce(&[Received]) -> T) -> T {
        f(&self.state().received)
    }

    /// The error a provider maps a failure-for-sure status to.
    fn refusal(&self, status: u16) -> Error {
        let provider = self.kind.name();
        let message = format!("the in-memory provider answered HTTP {status}");
        match status {
            401 | 403 => Error::Auth {
                provider,
                status,
                message,
            },
            404 => Error::NotFound { provider, message },
            429 | 503 => Error::Transient(format!("{provider}: {message}")),
            _ => Error::Rejected {
                provider,
                status,
                message,
            },
        }
    }
}

#[async_trait]
impl Provider for MemoryProvider {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn describe_rotation(&self, credential: &CredentialRef) -> Result<String> {
        let verb = match self.kind.origin() {
            PasswordOrigin::ServerGenerated => "POST",
            PasswordOrigin::ClientSupplied => "PUT",
        };
        Ok(format!(
            "{verb} memory://{}/{}",
            self.kind,
            credential.display()
        ))
    }

    async fn rotate(
        &self,
        credential: &CredentialRef,
        request: RotateRequest,
        _attempts: &Attempts,
    ) -> Result<Rotated> {
        let hook = self
            .on_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(hook) = hook {
            hook();
        }
        let mut state = self.state();
        let outcome = state.script.pop_front().unwrap_or(Outcome::Accept);
        let (sent, description) = match (self.kind.origin(), request) {
            (PasswordOrigin::ServerGenerated, RotateRequest::Generate) => (None, None),
            (
                PasswordOrigin::ClientSupplied,
                RotateRequest::Set {
                    password,
                    description,
                },
            ) => (Some(password), description),
            (_, request) => {
                return Err(Error::Unexpected(format!(
                    "{} got a request of the other protocol: {request:?}",
                    self.kind
                )));
            }
        };
        state.received.push(Received {
            credential: credential.clone(),
            password: sent.clone(),
            description,
            outcome,
        });
        let commit = |state: &mut State| match &sent {
            Some(password) => password.clone(),
            None => {
                state.generated += 1;
                let password =
                    SecretString::from(format!("{}-generated-{}-Aa1", self.label, state.generated));
                state.password = Some(password.clone());
                password
            }
        };
        match outcome {
            Outcome::Accept => {
                let password = commit(&mut state);
                state.password = Some(password.clone());
                let n = state.received.len();
                Ok(Rotated {
                    password: sent.is_none().then_some(password),
                    username: Some(format!("{}-user", self.label)),
                    request_id: Some(format!("memory-{n}")),
                    rotated_at: None,
                })
            }
            Outcome::Refuse(status) => Err(self.refusal(status)),
            Outcome::NotSent => Err(Error::Transient(format!(
                "{}: the request never reached the in-memory provider",
                self.kind
            ))),
            Outcome::LostAnswer => {
                let password = commit(&mut state);
                state.password = Some(password);
                Err(Error::OutcomeUnknown {
                    provider: self.kind.name(),
                    message: "the answer was lost after the in-memory provider committed".into(),
                })
            }
            Outcome::UnknownUnchanged => Err(Error::OutcomeUnknown {
                provider: self.kind.name(),
                message: "the answer was lost before the in-memory provider committed".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> ProviderKind {
        ProviderKind::from_name(name).unwrap()
    }

    fn set(password: &str) -> RotateRequest {
        RotateRequest::Set {
            password: SecretString::from(password),
            description: None,
        }
    }

    #[tokio::test]
    async fn a_client_set_provider_takes_the_sent_password_only_when_it_accepts() {
        let provider = MemoryProvider::new(kind("vobiz"), "t1", Some("old-pw".into()));
        let credential = CredentialRef::new(kind("vobiz"), "cred-1", &[]).unwrap();
        provider.script([
            Outcome::Refuse(401),
            Outcome::Refuse(404),
            Outcome::Refuse(400),
            Outcome::Refuse(429),
            Outcome::NotSent,
            Outcome::UnknownUnchanged,
        ]);
        let attempts = Attempts::new();
        let mut codes = Vec::new();
        for _ in 0..6 {
            let error = provider
                .rotate(&credential, set("new-pw"), &attempts)
                .await
                .unwrap_err();
            codes.push(error.exit_code().code());
            assert!(!error.to_string().contains("new-pw"), "{error}");
            assert!(provider.accepts(Some(&"old-pw".into())));
        }
        assert_eq!(codes, [5, 6, 1, 7, 7, 9]);

        provider.script([Outcome::LostAnswer]);
        let lost = provider
            .rotate(&credential, set("lost-pw"), &attempts)
            .await;
        assert_eq!(lost.unwrap_err().exit_code().code(), 9);
        assert!(provider.accepts(Some(&"lost-pw".into())));

        let rotated = provider
            .rotate(&credential, set("new-pw"), &attempts)
            .await
            .unwrap();
        assert!(rotated.password.is_none());
        assert!(provider.accepts(Some(&"new-pw".into())));
        assert_eq!(provider.requests(), 8);
        let recorded = provider.received(|r| format!("{r:?}"));
        assert!(!recorded.contains("new-pw"), "{recorded}");
    }

    #[tokio::test]
    async fn a_server_generated_provider_returns_a_new_password_once() {
        let provider = MemoryProvider::new(kind("telepath"), "t2", Some("old-pw".into()));
        let credential = CredentialRef::new(kind("telepath"), "conn_1", &[]).unwrap();
        let attempts = Attempts::new();
        let first = provider
            .rotate(&credential, RotateRequest::Generate, &attempts)
            .await
            .unwrap()
            .password
            .unwrap();
        assert!(provider.accepts(Some(&first)));
        provider.script([Outcome::LostAnswer]);
        let lost = provider
            .rotate(&credential, RotateRequest::Generate, &attempts)
            .await;
        assert_eq!(lost.unwrap_err().exit_code().code(), 9);
        assert!(
            !provider.accepts(Some(&first)),
            "the lost answer changed it"
        );

        let wrong = provider.rotate(&credential, set("x"), &attempts).await;
        assert_eq!(wrong.unwrap_err().exit_code().code(), 1);
    }
}
