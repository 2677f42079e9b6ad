//! A throwaway PostgreSQL server for tests, shared by every test of one binary (included
//! with `#[path]`): `initdb` and `pg_ctl` from the installed binaries, in a temp
//! directory, on a private loopback port, run as `nobody` when the tests run as root. A
//! watcher process stops it and removes the directory once the test process exits.
//! `PEMBA_TEST_POSTGRES` (a URL of a server that lets its user create databases) is used
//! instead when set. Without either, the tests fail: they never skip. Fault tests that
//! stop the server start one of their own ([`Server`]).

#![allow(
    clippy::panic,
    clippy::expect_used,
    reason = "test harness: a server that cannot start fails the tests that need it, loudly \
              (allow, not expect: inside a crate's own tests these lints are already off)"
)]
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
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
    let server = Server::start();
    let url = server.url();
    // Shared by every test of the binary until it exits; the watcher stops it then.
    std::mem::forget(server);
    url
}

/// A PostgreSQL server of its own, for tests that stop and restart it (never the shared
/// one, which other tests use meanwhile). Stopped when dropped, and by its watcher once
/// the test process exits, however it ends.
pub struct Server {
    bin: PathBuf,
    root: bool,
    dir: PathBuf,
    data: PathBuf,
    port: u16,
}

impl Server {
    /// `initdb`, then `pg_ctl start` on a free loopback port.
    pub fn start() -> Server {
        Self::start_configured(|_| {})
    }

    /// A server with `ssl=on`, the certificate chain `cert_pem` and key `key_pem`, that
    /// accepts TCP connections only over TLS (`hostssl` alone in `pg_hba.conf`).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Server {
        Self::start_ssl(cert_pem, key_pem, None)
    }

    /// [`Server::start_tls`] that also requires a client certificate signed by
    /// `client_ca_pem` whose common name is the user's (`cert` authentication).
    pub fn start_tls_client_auth(cert_pem: &str, key_pem: &str, client_ca_pem: &str) -> Server {
        Self::start_ssl(cert_pem, key_pem, Some(client_ca_pem))
    }

    fn start_ssl(cert_pem: &str, key_pem: &str, client_ca_pem: Option<&str>) -> Server {
        Self::start_configured(|server| {
            let write = |name: &str, text: &str| {
                let path = server.data.join(name);
                std::fs::write(&path, text).expect("write into the data directory");
                path
            };
            write("server.crt", cert_pem);
            let key = write("server.key", key_pem);
            // PostgreSQL refuses a key that others can read, or that its user does not own.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .expect("chmod the key");
            let mut conf_lines =
                "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                    .to_string();
            let method = match client_ca_pem {
                Some(ca) => {
                    write("client-ca.crt", ca);
                    conf_lines.push_str("ssl_ca_file = 'client-ca.crt'\n");
                    "cert"
                }
                None => "trust",
            };
            write(
                "pg_hba.conf",
                &format!("local all all trust\nhostssl all all 127.0.0.1/32 {method}\n"),
            );
            let conf = server.data.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
            text.push_str(&conf_lines);
            std::fs::write(&conf, text).expect("write postgresql.conf");
            if server.root {
                let status = Command::new("chown")
                    .args(["-R", "nobody"])
                    .arg(&server.data)
                    .status()
                    .expect("chown");
                assert!(
                    status.success(),
                    "chown of {} failed",
                    server.data.display()
                );
            }
        })
    }

    /// `initdb`, `configure` (the data directory exists, the server is not running), then
    /// `pg_ctl start` on a free loopback port.
    fn start_configured(configure: impl FnOnce(&Server)) -> Server {
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
        let server = Server {
            bin,
            root,
            dir,
            data,
            port,
        };
        configure(&server);
        server.pg_ctl_start();
        server.watch();
        server
    }

    /// `postgres://pemba@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://pemba@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m immediate`: the server dies at once, as in a crash.
    pub fn stop_immediately(&self) {
        let out = as_owner(self.bin.join("pg_ctl"), self.root)
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "immediate", "-w"])
            .output()
            .expect("run pg_ctl stop");
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the stopped server again on the same port and data.
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let out = as_owner(self.bin.join("pg_ctl"), self.root)
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-l"])
            .arg(self.dir.join("log"))
            .args(["-o", &options, "start"])
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A shell that stops the server and removes its directory once this process is
    /// gone, however it ends.
    fn watch(&self) {
        let stop = if self.root {
            format!("runuser -u nobody -- {}", self.bin.join("pg_ctl").display())
        } else {
            self.bin.join("pg_ctl").display().to_string()
        };
        let watcher = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} -D '{data}' stop -m immediate >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data.display(),
            dir = self.dir.display(),
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
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = as_owner(self.bin.join("pg_ctl"), self.root)
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "immediate"])
            .output();
    }
}
