//! The pid file (`DIR/pemba.pid`) that says which process holds a data directory's store.
//!
//! redb itself refuses a second open (a file lock) but cannot say who holds the file, so
//! whoever opens the store writes its pid here once redb's open succeeded, and removes it
//! on close. A process killed without closing leaves a stale file; the next successful
//! open overwrites it, and [`holder`] ignores a pid that is not running.

use std::path::{Path, PathBuf};

/// The pid file's name inside a data directory.
pub const PID_FILE: &str = "pemba.pid";

/// This process's claim on a store; removing the file on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes this process's pid into `dir`. Only a hint for error messages, so a failure
    /// to write it is not an error (`None`).
    pub fn write(dir: &Path) -> Option<PidFile> {
        let path = dir.join(PID_FILE);
        std::fs::write(&path, format!("{}\n", std::process::id())).ok()?;
        Some(PidFile { path })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only our own claim: another process may have taken the store since.
        if read_pid(&self.path) == Some(std::process::id()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The pid the data directory's pid file names, if that process is running (or, where
/// running processes cannot be listed, if the file names any pid).
pub fn holder(dir: &Path) -> Option<u32> {
    let pid = read_pid(&dir.join(PID_FILE))?;
    let proc = Path::new("/proc");
    if proc.join("self").exists() && !proc.join(pid.to_string()).exists() {
        return None;
    }
    Some(pid)
}
