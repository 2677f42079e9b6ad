//! A throwaway PostgreSQL server for tests, shared by every test of one binary (included
//! with `#[path]`): `initdb` and `pg_ctl` from the installed binaries, in a temp
//! directory, on a private loopback port, run as `nobody` when the tests run as root. A
//! watcher process stops it and removes the directory once the test process exits.
//! `PEMBA_TEST_POSTGRES` (a URL of a server that lets its user create databases) is used
//! instead when set. Without either, the tests fail: they never skip.

#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "test harness: a server that cannot start fails the tests that need it, loudly"
)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

static SERVER: OnceLock<String> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The URL of a fresh, empty database on the shared server.
pub fn fresh_database() -> String {
    let server = SERVER.get_or_init(start);
    let name = format!(
        "pemba_test_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::SeqCst)
    );
    let mut client = postgres::Client::connect(server, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    let (base, _) = server.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{name}")
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (/usr/lib/postgresql is missing): apt-get install postgresql, or set PEMBA_TEST_POSTGRES")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("no initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args` as the unprivileged user when root (PostgreSQL refuses to run as root).
fn as_owner(program: PathBuf, root: bool) -> Command {
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "nobody", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn start() -> String {
    if let Ok(url) = std::env::var("PEMBA_TEST_POSTGRES") {
        return url;
    }
    let bin = bin_dir();
    let root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("pemba-pg-")
        .tempdir()
        .expect("temp dir")
        .keep();
    if root {
        let status = Command::new("chown")
            .args(["-R", "nobody"])
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(status.success(), "chown of {} failed", dir.display());
    }
    let data = dir.join("data");
    let out = as_owner(bin.join("initdb"), root)
        .arg("-D")
        .arg(&data)
        .args(["-U", "pemba", "--auth=trust", "-E", "UTF8", "--no-sync"])
        .output()
        .expect("run initdb");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
        dir.display()
    );
    let out = as_owner(bin.join("pg_ctl"), root)
        .arg("-D")
        .arg(&data)
        .args(["-w", "-l"])
        .arg(dir.join("log"))
        .args(["-o", &options, "start"])
        .output()
        .expect("run pg_ctl");
    assert!(
        out.status.success(),
        "pg_ctl start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Stops the server once this process is gone, however it ends.
    let stop = if root {
        format!("runuser -u nobody -- {}", bin.join("pg_ctl").display())
    } else {
        bin.join("pg_ctl").display().to_string()
    };
    let watcher = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} -D '{data}' stop -m immediate >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        data = data.display(),
        dir = dir.display(),
    );
    #[expect(
        clippy::zombie_processes,
        reason = "the watcher outlives this process by design: it stops the server after it"
    )]
    Command::new("sh")
        .args(["-c", &watcher])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the watcher");
    format!("postgres://pemba@127.0.0.1:{port}/postgres")
}
