//! One seeded credential per provider, so that a test can run the same scenario against
//! every provider and read back what the provider and the keyring hold.

use super::{EXOTEL_SID, FakeProvider, Run, TestEnv};

/// A credential at one of the fake providers.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub provider: FakeProvider,
    pub name: &'static str,
    pub id: &'static str,
    /// The second part of the id (Exotel's device, Twilio's credential list), given with
    /// the option and inventory key the provider's registration names ([`Target::id_args`],
    /// [`Target::id_toml`]).
    pub device: Option<&'static str>,
    /// The password the fake starts with.
    pub initial: &'static str,
    /// Creates the credential at the fake with the initial password.
    pub create: fn(&Target, &TestEnv),
    /// The keyring entry of the current password.
    pub entry: fn(&Target, &TestEnv) -> String,
    /// The password the provider holds now, if the credential exists.
    pub live: fn(&Target, &TestEnv) -> Option<String>,
}

impl Target {
    pub const TELEPATH: Target = Target {
        provider: FakeProvider::Telepath,
        name: "telepath",
        id: "conn_target01",
        device: None,
        initial: "Initial-Telepath-Pass-1",
        create: |t, env| env.fake.add_telepath_trunk(t.id, "sipuser01", t.initial),
        entry: |t, _| format!("telepath/{}", t.id),
        live: |t, env| env.fake.telepath_password(t.id),
    };
    pub const EXOTEL: Target = Target {
        provider: FakeProvider::Exotel,
        name: "exotel",
        id: "0a1b2c3d-user-target",
        device: Some("dev_target"),
        initial: "Initial-Exotel-Pass-1",
        create: |t, env| {
            env.fake
                .add_exotel_device(t.id, t.device.unwrap_or_default(), t.initial)
        },
        entry: |t, _| {
            let device = t.device.unwrap_or_default();
            format!("exotel/{EXOTEL_SID}/{}/{device}", t.id)
        },
        live: |t, env| env.fake.exotel_password(t.id, t.device.unwrap_or_default()),
    };
    pub const VOBIZ: Target = Target {
        provider: FakeProvider::Vobiz,
        name: "vobiz",
        id: "cred-target-0001",
        device: None,
        initial: "Initial-Vobiz-Pass-1",
        create: |t, env| env.fake.add_vobiz_credential(t.id, "sipuser01", t.initial),
        entry: |t, env| format!("vobiz/{}/{}", env.fake.config().vobiz_auth_id, t.id),
        live: |t, env| env.fake.vobiz_credential(t.id).map(|c| c.password),
    };
    pub const TELNYX: Target = Target {
        provider: FakeProvider::Telnyx,
        name: "telnyx",
        id: "2718281828459045235",
        device: None,
        initial: "Initial-Telnyx-Pass-1",
        create: |t, env| env.fake.add_telnyx_connection(t.id, "sipuser01", t.initial),
        entry: |t, _| format!("telnyx/{}", t.id),
        live: |t, env| env.fake.telnyx_connection(t.id).map(|c| c.password),
    };
    pub const PLIVO: Target = Target {
        provider: FakeProvider::Plivo,
        name: "plivo",
        id: "39452475478853",
        device: None,
        initial: "Initial-Plivo-Pass-1",
        create: |t, env| env.fake.add_plivo_endpoint(t.id, "sipuser01", t.initial),
        entry: |t, env| format!("plivo/{}/{}", env.fake.config().plivo_auth_id, t.id),
        live: |t, env| env.fake.plivo_endpoint(t.id).map(|e| e.password),
    };
    pub const TWILIO: Target = Target {
        provider: FakeProvider::Twilio,
        name: "twilio",
        id: "CR0000000000000000000000000000a001",
        device: Some("CL0000000000000000000000000000b001"),
        initial: "Initial-Twilio-Pass-1",
        create: |t, env| {
            let list = t.device.unwrap_or_default();
            env.fake
                .add_twilio_credential(list, t.id, "sipuser01", t.initial)
        },
        entry: |t, env| {
            let list = t.device.unwrap_or_default();
            let account = &env.fake.config().twilio_account_sid;
            format!("twilio/{account}/{list}/{}", t.id)
        },
        live: |t, env| {
            env.fake
                .twilio_credential(t.device.unwrap_or_default(), t.id)
                .map(|c| c.password)
        },
    };

    pub const ALL: [Target; 6] = [
        Target::TELEPATH,
        Target::EXOTEL,
        Target::VOBIZ,
        Target::TELNYX,
        Target::PLIVO,
        Target::TWILIO,
    ];
    /// The providers that take a password siprot chooses (they use `#pending`).
    pub const CLIENT_SET: [Target; 5] = [
        Target::EXOTEL,
        Target::VOBIZ,
        Target::TELNYX,
        Target::PLIVO,
        Target::TWILIO,
    ];

    /// The target of the provider siprot registers as `name`, if there is one (the
    /// conformance suite looks every registered provider up here).
    pub fn for_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|target| target.name == name)
    }

    /// Creates the credential at the fake with its initial password, and stores that
    /// password in the keyring as current, as after an earlier rotation.
    pub fn seed(&self, env: &TestEnv) {
        (self.create)(self, env);
        env.store(&self.entry(env), self.initial);
    }

    /// The keyring entry of the current password.
    pub fn entry(&self, env: &TestEnv) -> String {
        (self.entry)(self, env)
    }

    pub fn slot(&self, env: &TestEnv, suffix: &str) -> String {
        format!("{}{suffix}", self.entry(env))
    }

    /// The password the provider holds now.
    pub fn live(&self, env: &TestEnv) -> String {
        (self.live)(self, env).expect("the credential exists at the fake")
    }

    /// The second part of the id as the registration names it: its option, its inventory
    /// key and the target's value.
    pub fn part(&self) -> Option<(&'static str, &'static str, &'static str)> {
        let kind = siprot::providers::ProviderKind::from_name(self.name)?;
        let part = kind.registration().second_part?;
        Some((part.flag, part.key, self.device?))
    }

    /// The credential on a command line: `ID` and its second part's option, if any
    /// (`ID --device D`).
    pub fn id_args(&self) -> Vec<&'static str> {
        let mut args = vec![self.id];
        if let Some((flag, _, value)) = self.part() {
            args.extend([flag, value]);
        }
        args
    }

    /// The credential's second part as an inventory line (`device = "D"\n`), if any.
    pub fn id_toml(&self) -> String {
        self.part()
            .map(|(_, key, value)| format!("{key} = \"{value}\"\n"))
            .unwrap_or_default()
    }

    /// A new test world holding this target's credential at the provider and in the keyring.
    pub fn seeded(&self) -> TestEnv {
        let env = TestEnv::start();
        self.seed(&env);
        env
    }

    /// `rotate --provider NAME ID [--device D]` followed by `extra`.
    pub fn rotate_args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["rotate", "--provider", self.name];
        args.extend(self.id_args());
        args.extend_from_slice(extra);
        args
    }

    pub fn rotate(&self, env: &TestEnv, extra: &[&str]) -> Run {
        env.run(&self.rotate_args(extra), None)
    }

    /// Asserts the one property that matters after any fault and any recovery: the
    /// keyring's current password is the one the provider holds, and nothing is pending.
    #[track_caller]
    pub fn assert_consistent(&self, env: &TestEnv) {
        let live = self.live(env);
        assert_eq!(
            env.lookup(&self.entry(env)).as_deref(),
            Some(live.as_str()),
            "{}: the keyring's current password is not the provider's",
            self.name
        );
        assert_eq!(
            env.lookup(&self.slot(env, "#pending")),
            None,
            "{}: a pending entry is left",
            self.name
        );
    }
}
