//! The vault store's listing against a hostile server (issue 23 item 4): a fake KV
//! version 2 server (axum, in the test) whose LIST answers never end (thousands of keys,
//! folders in folders, slow answers) or carry names with control characters. `recover`
//! and `doctor` exit 8 and `status` warns, each naming the bound that was hit, after a
//! bounded number of requests (the server counts them); names are escaped before they
//! reach the terminal. The server turns harmless after a number of LIST requests
//! ([`Mode::hostile_for`]), so that a siprot without bounds finishes (and fails these
//! tests) instead of hanging.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::support::{Run, TestEnv};

/// What the server's LIST answers hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The prefix holds 60 folders of 2,000 secrets each: 120,060 keys.
    Wide,
    /// Every folder holds a secret and a folder: deeper without end.
    Deep,
    /// Every answer takes 500 ms and holds two folders.
    Slow,
    /// `.pending/telepath/` holds one claim whose name has control characters.
    Names,
}

impl Mode {
    /// LIST requests answered as the mode says; every later one answers "no such folder".
    fn hostile_for(self) -> usize {
        match self {
            Mode::Slow => 12,
            _ => 200,
        }
    }
}

/// The name of [`Mode::Names`]'s entry: an escape sequence that sets the terminal's title.
const HOSTILE_NAME: &str = "ev\u{1b}]0;owned\u{7}il";

#[derive(Clone)]
struct Server {
    mode: Mode,
    lists: Arc<AtomicUsize>,
}

/// The fake server, on a loopback port, and the LIST requests it has answered.
struct Hostile {
    addr: String,
    lists: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl Hostile {
    fn start(mode: Mode) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let lists = Arc::new(AtomicUsize::new(0));
        let server = Server {
            mode,
            lists: lists.clone(),
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(answer).with_state(server);
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            addr: format!("http://{addr}"),
            lists,
            _runtime: runtime,
        }
    }

    /// LIST requests since the last call.
    fn lists(&self) -> usize {
        self.lists.swap(0, Ordering::SeqCst)
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn keys(keys: Vec<String>) -> Response {
    json(StatusCode::OK, serde_json::json!({"data": {"keys": keys}}))
}

fn absent() -> Response {
    json(StatusCode::NOT_FOUND, serde_json::json!({"errors": []}))
}

async fn answer(State(server): State<Server>, uri: Uri) -> Response {
    let path = uri.path();
    // A mount check, should siprot make one: `secret` is a KV version 2 mount.
    if path.starts_with("/v1/sys/") {
        let mount =
            serde_json::json!({"type": "kv", "options": {"version": "2"}, "path": "secret/"});
        return json(
            StatusCode::OK,
            serde_json::json!({"data": mount, "secret/": mount}),
        );
    }
    if let Some(slot) = path.strip_prefix("/v1/secret/data/siprot/.pending/") {
        return match server.mode {
            Mode::Names if slot.starts_with("telepath/") => json(
                StatusCode::OK,
                serde_json::json!({"data": {
                    "data": {"password": "Hostile-Claim-Pass-1", "provider": "telepath", "credential": "x"},
                    "metadata": {"version": 1, "deletion_time": "", "destroyed": false}}}),
            ),
            _ => absent(),
        };
    }
    let listed = uri.query().is_some_and(|q| q.contains("list=true"));
    let Some(folder) = path.strip_prefix("/v1/secret/metadata/siprot/") else {
        return absent();
    };
    if !listed {
        return absent();
    }
    if server.lists.fetch_add(1, Ordering::SeqCst) >= server.mode.hostile_for() {
        return absent();
    }
    let slots = folder.starts_with(".pending/") || folder.starts_with(".previous/");
    match server.mode {
        Mode::Wide if folder.is_empty() => keys((0..60).map(|i| format!("f{i}/")).collect()),
        Mode::Wide if !slots => keys((0..2000).map(|i| format!("conn_{i:04}")).collect()),
        Mode::Deep if !slots => keys(vec!["conn_x".into(), "a/".into()]),
        Mode::Slow if !slots => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            keys(vec!["a/".into(), "b/".into()])
        }
        Mode::Names if folder == ".pending/" => keys(vec!["telepath/".into()]),
        Mode::Names if folder == ".pending/telepath/" => keys(vec![HOSTILE_NAME.into()]),
        _ => absent(),
    }
}

/// A world with no keyring whose vault store is `server`.
fn world(server: &Hostile) -> TestEnv {
    let mut env = TestEnv::without_keyring();
    env.set_env("VAULT_ADDR", &server.addr);
    env.set_env("VAULT_TOKEN", "s.hostile-listing-token-0123");
    env.set_env("SIPROT_STORE", "vault");
    env
}

/// An inventory of one Telepath trunk, for `status`.
fn inventory(env: &TestEnv) -> String {
    let path = env.state.path().join("one.toml");
    std::fs::write(
        &path,
        "[[credential]]\nprovider = \"telepath\"\nid = \"conn_1\"\n",
    )
    .unwrap();
    path.display().to_string()
}

#[track_caller]
fn assert_names_the_bound(run: &Run, bound: &str) {
    assert!(
        run.stderr.contains(bound) || run.stdout.contains(bound),
        "{bound}: {}{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn an_endless_vault_listing_is_cut_off_by_its_bounds_in_recover_doctor_and_status() {
    for (mode, bound, most) in [
        (Mode::Wide, "more than 100000 keys", 60),
        (Mode::Deep, "more than 8 deep", 12),
        (Mode::Slow, "did not finish within the store's timeout", 8),
    ] {
        let server = Hostile::start(mode);
        let env = world(&server);
        let path = inventory(&env);
        let timeout = ["--keyring-timeout", "2"];

        let run = env.run(&[&["recover"][..], &timeout].concat(), None);
        run.assert_code(8).assert_one_line_error(bound);
        let lists = server.lists();
        assert!(
            lists <= most,
            "{mode:?}: recover sent {lists} LIST requests"
        );

        let run = env.run(&[&["doctor"][..], &timeout].concat(), None);
        run.assert_code(8);
        assert!(run.stdout.contains("fail  vault store"), "{}", run.stdout);
        assert_names_the_bound(&run, bound);
        let lists = server.lists();
        assert!(lists <= most, "{mode:?}: doctor sent {lists} LIST requests");

        let run = env.run(
            &[&["status", "--inventory", &path][..], &timeout].concat(),
            None,
        );
        run.assert_code(0);
        assert!(
            run.stderr.contains("warning") && run.stderr.contains("pending entries are not shown"),
            "{}",
            run.stderr
        );
        assert_names_the_bound(&run, bound);
        let lists = server.lists();
        assert!(lists <= most, "{mode:?}: status sent {lists} LIST requests");
    }
}

#[test]
fn entry_names_from_a_listing_reach_the_terminal_escaped() {
    let server = Hostile::start(Mode::Names);
    let env = world(&server);
    let shown = HOSTILE_NAME.escape_default().to_string();
    for args in [&["recover"][..], &["doctor"][..]] {
        let run = env.run(args, None);
        for output in [&run.stdout, &run.stderr] {
            assert!(
                !output.contains('\u{1b}') && !output.contains('\u{7}'),
                "{args:?} printed a control character: {output:?}"
            );
        }
        assert!(
            run.stdout.contains(&shown),
            "{args:?} does not name the entry: {}",
            run.stdout
        );
    }
}
