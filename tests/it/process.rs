//! `pemba serve` as a real child process: started on a data directory, killed with
//! SIGKILL or stopped with SIGTERM, its stderr kept for inspection.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The key the child processes use (given through `PEMBA_KEY`).
pub const PROCESS_KEY: &str = "crash-key-7f3a9c21d4e8b605";

/// The `pemba` binary cargo built for these tests, or `PEMBA_BIN` (to run the crash test
/// against a release build, or a copy that later builds will not replace).
pub fn binary() -> String {
    std::env::var("PEMBA_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_pemba").to_string())
}

/// A running `pemba serve`.
pub struct ServeProcess {
    child: Child,
    /// `http://ADDR` it listens on.
    pub base: String,
    /// Every stderr line it printed so far (a reader thread appends).
    pub log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// How a start ended when the server did not come up.
#[derive(Debug)]
pub struct StartFailure {
    /// Exit status, if it exited.
    pub status: Option<std::process::ExitStatus>,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl ServeProcess {
    /// Starts `pemba serve --data-dir DIR --listen 127.0.0.1:0` with [`PROCESS_KEY`] and
    /// returns once it prints its serving line (the store is open and the socket bound).
    pub fn spawn(data_dir: &Path, extra_env: &[(&str, &str)], args: &[&str]) -> Self {
        Self::try_spawn(data_dir, extra_env, args).unwrap_or_else(|failure| {
            panic!(
                "pemba serve did not start: {:?}\n{}",
                failure.status, failure.stderr
            )
        })
    }

    /// As [`ServeProcess::spawn`], or how it failed (it exited before listening).
    pub fn try_spawn(
        data_dir: &Path,
        extra_env: &[(&str, &str)],
        args: &[&str],
    ) -> Result<Self, StartFailure> {
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--grpc-listen")
            .arg("127.0.0.1:0")
            .args(args)
            .env("PEMBA_KEY", PROCESS_KEY)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn pemba serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let reader = {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { return };
                    if let Some(rest) = line.strip_prefix("pemba serving ") {
                        let base = rest.split_whitespace().next().unwrap_or("").to_string();
                        let _ = address_tx.send(base);
                    }
                    log.lock().unwrap().push(line);
                }
            })
        };
        match address_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(base) => Ok(ServeProcess {
                child,
                base,
                log,
                reader: Some(reader),
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let _ = reader.join();
                let stderr = log.lock().unwrap().join("\n");
                Err(StartFailure { status, stderr })
            }
        }
    }

    /// Waits until `/healthz` answers 200 (the store is open); its body, with the revision
    /// (the key is presented). `None` if the
    /// process exited first or `limit` passed.
    pub fn wait_healthy(&mut self, limit: Duration) -> Option<Value> {
        let agent = agent(Duration::from_secs(2));
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return None;
            }
            let request = agent
                .get(&format!("{}/healthz", self.base))
                .header("Authorization", &format!("Bearer {PROCESS_KEY}"));
            if let Ok(mut response) = request.call() {
                if response.status().as_u16() == 200 {
                    let text = response.body_mut().read_to_string().unwrap_or_default();
                    return serde_json::from_str(&text).ok();
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Starts `pemba serve` and returns at once, while it may still be opening the store
    /// (`base` is empty): for killing it during start-up.
    pub fn spawn_starting(data_dir: &Path) -> Self {
        let child = Command::new(binary())
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--grpc-listen")
            .arg("127.0.0.1:0")
            .env("PEMBA_KEY", PROCESS_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pemba serve");
        ServeProcess {
            child,
            base: String::new(),
            log: Arc::new(Mutex::new(Vec::new())),
            reader: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finish()
    }

    /// SIGTERM (graceful shutdown), then reap; the exit status and the log.
    pub fn terminate(self) -> (std::process::ExitStatus, Vec<String>) {
        self.signal("-TERM")
    }

    /// `kill SIGNAL` (`-TERM`, `-INT`), then reap; the exit status and the log.
    pub fn signal(mut self, signal: &str) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args([signal, &pid]).status();
        let status = self.child.wait().expect("wait");
        (status, self.finish())
    }

    fn finish(&mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A ureq agent that reports statuses instead of failing on them, with a global timeout.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// The revision number of a `pb1.N` token.
pub fn token_revision(token: &str) -> u64 {
    token
        .rsplit('.')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a revision token: `{token}`"))
}
