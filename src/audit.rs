//! The vocabulary of the audit log (`audit.jsonl`): what a line records ([`AuditAction`])
//! and how it ended ([`AuditOutcome`]).
//!
//! The strings are a contract: lines written by earlier versions must still read, so each
//! variant serializes to exactly the string siprot has always written. A line written by
//! a newer or foreign program may carry an action or outcome this version does not know:
//! it is read as [`AuditAction::Other`] / [`AuditOutcome::Other`], kept verbatim, and
//! never breaks reading the log. The records themselves and the file live in
//! [`crate::state`]; these types are apart so that the commands that judge a history
//! (status, fleet, rotation) need no file handling to name an outcome.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What an audit line records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditAction {
    /// A password rotation (`rotate`, or one credential of `fleet rotate`).
    Rotate,
    /// `siprot enable`.
    Enable,
    /// `siprot disable`.
    Disable,
    /// A SIP REGISTER of the stored password (`verify`, `rotate --verify`); its outcome
    /// is [`AuditOutcome::Verified`], `Rejected`, `Unreachable`, `NotVerified` or `Failed`.
    Verify,
    /// The post-rotation hook (`rotate --exec`, an inventory's `exec`, `siprot exec`):
    /// its outcome is `ok`, `failed` or `timed-out`.
    Hook,
    /// An action this version does not know, as written.
    Other(String),
}

/// How an audited action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutcome {
    /// A rotation that set a new password.
    Rotated,
    /// A rotation an earlier run began, finished: a `#pending` password resent, or (by
    /// `siprot recover`, no request sent) a recovery file's password stored as current.
    Resumed,
    /// `enable` or `disable` done.
    Done,
    /// The action failed and nothing is left unknown.
    Failed,
    /// The provider may hold a password the keyring does not confirm as current.
    Unconfirmed,
    /// Written just before a request that may change a password; the rotation's final
    /// record (a later line) supersedes it. Left as an entry's last attempt, it means that
    /// rotation was cut off (SIGKILL, power loss) and its outcome is unknown.
    InProgress,
    /// A rotation stopped by a signal before its request was sent.
    Interrupted,
    /// A verification: the registrar accepted the current password.
    Verified,
    /// A verification: the registrar refused the current password.
    Rejected,
    /// A verification: no answer, or the registrar said it is unavailable.
    Unreachable,
    /// A verification that proved nothing: the registrar never asked for a password, it
    /// still accepts the previous one, or the check could not start.
    NotVerified,
    /// A hook that exited 0.
    Ok,
    /// A hook still running at its timeout (its process group was killed).
    TimedOut,
    /// An outcome this version does not know, as written.
    Other(String),
}

impl AuditAction {
    pub fn as_str(&self) -> &str {
        match self {
            AuditAction::Rotate => "rotate",
            AuditAction::Enable => "enable",
            AuditAction::Disable => "disable",
            AuditAction::Verify => "verify",
            AuditAction::Hook => "hook",
            AuditAction::Other(other) => other,
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "rotate" => AuditAction::Rotate,
            "enable" => AuditAction::Enable,
            "disable" => AuditAction::Disable,
            "verify" => AuditAction::Verify,
            "hook" => AuditAction::Hook,
            other => AuditAction::Other(other.to_owned()),
        }
    }
}

impl AuditOutcome {
    pub fn as_str(&self) -> &str {
        match self {
            AuditOutcome::Rotated => "rotated",
            AuditOutcome::Resumed => "resumed",
            AuditOutcome::Done => "done",
            AuditOutcome::Failed => "failed",
            AuditOutcome::Unconfirmed => "unconfirmed",
            AuditOutcome::InProgress => "in-progress",
            AuditOutcome::Interrupted => "interrupted",
            AuditOutcome::Verified => "verified",
            AuditOutcome::Rejected => "rejected",
            AuditOutcome::Unreachable => "unreachable",
            AuditOutcome::NotVerified => "not-verified",
            AuditOutcome::Ok => "ok",
            AuditOutcome::TimedOut => "timed-out",
            AuditOutcome::Other(other) => other,
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "rotated" => AuditOutcome::Rotated,
            "resumed" => AuditOutcome::Resumed,
            "done" => AuditOutcome::Done,
            "failed" => AuditOutcome::Failed,
            "unconfirmed" => AuditOutcome::Unconfirmed,
            "in-progress" => AuditOutcome::InProgress,
            "interrupted" => AuditOutcome::Interrupted,
            "verified" => AuditOutcome::Verified,
            "rejected" => AuditOutcome::Rejected,
            "unreachable" => AuditOutcome::Unreachable,
            "not-verified" => AuditOutcome::NotVerified,
            "ok" => AuditOutcome::Ok,
            "timed-out" => AuditOutcome::TimedOut,
            other => AuditOutcome::Other(other.to_owned()),
        }
    }

    /// A rotation that ended with the provider's password current in the keyring.
    pub fn is_rotation(&self) -> bool {
        matches!(self, AuditOutcome::Rotated | AuditOutcome::Resumed)
    }

    /// An attempt that failed (for sure, or with its outcome unconfirmed).
    pub fn is_failure(&self) -> bool {
        matches!(self, AuditOutcome::Failed | AuditOutcome::Unconfirmed)
    }
}

macro_rules! as_string {
    ($type:ty) => {
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Ok(Self::parse(&text))
            }
        }
    };
}

as_string!(AuditAction);
as_string!(AuditOutcome);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_keeps_its_string_and_reads_back() {
        let known = [
            (AuditOutcome::Rotated, "rotated"),
            (AuditOutcome::Resumed, "resumed"),
            (AuditOutcome::Done, "done"),
            (AuditOutcome::Failed, "failed"),
            (AuditOutcome::Unconfirmed, "unconfirmed"),
            (AuditOutcome::InProgress, "in-progress"),
            (AuditOutcome::Interrupted, "interrupted"),
            (AuditOutcome::Verified, "verified"),
            (AuditOutcome::Rejected, "rejected"),
            (AuditOutcome::Unreachable, "unreachable"),
            (AuditOutcome::NotVerified, "not-verified"),
            (AuditOutcome::Ok, "ok"),
            (AuditOutcome::TimedOut, "timed-out"),
        ];
        for (outcome, text) in known {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<AuditOutcome>(&json).unwrap(),
                outcome
            );
        }
        for (action, text) in [
            (AuditAction::Rotate, "rotate"),
            (AuditAction::Enable, "enable"),
            (AuditAction::Disable, "disable"),
            (AuditAction::Verify, "verify"),
            (AuditAction::Hook, "hook"),
        ] {
            let json = serde_json::to_string(&action).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<AuditAction>(&json).unwrap(), action);
        }
    }

    #[test]
    fn unknown_strings_are_kept_not_rejected() {
        let outcome: AuditOutcome = serde_json::from_str("\"rolled-back\"").unwrap();
        assert_eq!(outcome, AuditOutcome::Other("rolled-back".into()));
        assert_eq!(serde_json::to_string(&outcome).unwrap(), "\"rolled-back\"");
        assert!(!outcome.is_rotation() && !outcome.is_failure());
        let action: AuditAction = serde_json::from_str("\"rekey\"").unwrap();
        assert_eq!(action, AuditAction::Other("rekey".into()));
        // Escaped strings (not borrowable from the input) read too.
        let escaped: AuditOutcome = serde_json::from_str("\"rot\\u0061ted\"").unwrap();
        assert_eq!(escaped, AuditOutcome::Rotated);
    }
}
