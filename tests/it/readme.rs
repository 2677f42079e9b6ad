//! The README's walk-throughs, run as written against a fresh `pemba serve`, every
//! documented response compared (issue 16: they cannot drift again).
//!
//! The convention, stated in the README: a shell block preceded by
//! `<!-- readme-test -->` is run (in the order they appear, in one data directory's parent
//! as the working directory, one bash per block, sharing variables through nothing but the
//! server); after each command come its expected output lines, each as `# → TEXT`, where
//! `…` stands for any text (ids and tokens the server picks). A command with no `# →` lines
//! must print nothing. A block preceded by `<!-- readme-test: stays open -->` (a watch)
//! runs in the background, the way a reader leaves it open in one shell while running the
//! next block in a second; once that next block is done, it is stopped as soon as it has
//! printed as many lines as it documents (waiting at most 30 s) and its output compared.
//! `localhost:8080` is replaced by the address the server bound, and `pemba` is the binary
//! under test (its directory first on `PATH`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::binary;

/// One command (with its comments) and the output documented after it.
#[derive(Debug)]
struct Step {
    script: String,
    expected: Vec<String>,
}

/// A block to run.
#[derive(Debug)]
struct Block {
    /// The README line the block starts at.
    line: usize,
    background: bool,
    steps: Vec<Step>,
}

const MARK: &str = "<!-- readme-test -->";
const MARK_BACKGROUND: &str = "<!-- readme-test: stays open -->";
const EXPECT: &str = "# → ";
/// Printed between steps so each step's output can be told apart.
const SEPARATOR: &str = "@@pemba-readme-step@@";

fn blocks(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut found = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index].trim();
        let background = line == MARK_BACKGROUND;
        if line != MARK && !background {
            index += 1;
            continue;
        }
        assert!(
            lines.get(index + 1).is_some_and(|l| l.starts_with("```sh")),
            "README line {}: a readme-test mark must come right before a ```sh block",
            index + 1
        );
        let start = index + 2;
        let mut steps = Vec::new();
        let mut script = String::new();
        let mut expected = Vec::new();
        index = start;
        while index < lines.len() && !lines[index].starts_with("```") {
            let text = lines[index];
            if let Some(output) = text.strip_prefix(EXPECT) {
                expected.push(output.to_string());
            } else {
                if !expected.is_empty() {
                    steps.push(Step {
                        script: std::mem::take(&mut script),
                        expected: std::mem::take(&mut expected),
                    });
                }
                script.push_str(text);
                script.push('\n');
            }
            index += 1;
        }
        steps.push(Step { script, expected });
        found.push(Block {
            line: start,
            background,
            steps,
        });
    }
    found
}

/// Whether `actual` matches `pattern`, in which `…` stands for any text.
fn matches(pattern: &str, actual: &str) -> bool {
    let mut parts = pattern.split('…');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// The block as one bash script, a separator line printed before each step.
fn script(block: &Block, address: &str) -> String {
    let mut text = String::from("set -u\n");
    for step in &block.steps {
        text.push_str(&format!("echo {SEPARATOR}\n"));
        text.push_str(&step.script.replace("localhost:8080", address));
    }
    text
}

/// Compares each step's output with its documented lines.
fn compare(block: &Block, output: &str) {
    let separator = format!("{SEPARATOR}\n");
    let mut outputs = output.split(&separator);
    let before = outputs.next().unwrap_or("");
    assert!(
        before.is_empty(),
        "README block at line {}: output before the first step: {before}",
        block.line
    );
    for step in &block.steps {
        let actual: Vec<&str> = outputs.next().unwrap_or("").lines().collect();
        let ok = actual.len() == step.expected.len()
            && actual
                .iter()
                .zip(&step.expected)
                .all(|(a, e)| matches(e, a));
        assert!(
            ok,
            "README block at line {}: the command\n{}\nprinted\n{}\nbut the README says\n{}",
            block.line,
            step.script.trim_end(),
            actual.join("\n"),
            step.expected.join("\n"),
        );
    }
}

fn bash(script: &str, cwd: &Path) -> Command {
    // `pemba` in the README is the binary these tests run.
    let bin = Path::new(&binary()).parent().unwrap().to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let mut command = Command::new("bash");
    command
        .env("PATH", path)
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .env_remove("PEMBA_KEY")
        .stdin(Stdio::null());
    command
}

#[test]
fn the_readme_walk_throughs_run_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks = blocks(&readme);
    assert!(
        blocks.len() >= 3,
        "the README's walk-throughs lost their readme-test marks"
    );
    for tool in ["bash", "curl", "jq"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "`{tool}` is needed to run the README's walk-throughs (`.ci/run` installs it)"
        );
    }

    // A fresh server as the README starts it: data (and its generated key) in ./pemba-data.
    let cwd = tempfile::tempdir().unwrap();
    let mut server = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(cwd.path())
        .env_remove("PEMBA_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(server.stderr.take().unwrap());
    let address = loop {
        let mut line = String::new();
        let read = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(read > 0, "pemba serve exited before serving");
        if let Some(rest) = line.strip_prefix("pemba serving http://") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
    });

    let mut open: Option<(&Block, Running)> = None;
    for block in &blocks {
        let text = script(block, &address);
        if block.background {
            assert!(
                open.is_none(),
                "README block at line {}: two blocks stay open at once",
                block.line
            );
            open = Some((block, Running::start(bash(&text, cwd.path()))));
            continue;
        }
        let output = bash(&text, cwd.path()).output().unwrap();
        assert!(
            output.status.success(),
            "README block at line {} failed: {}\n{}",
            block.line,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        compare(block, &String::from_utf8_lossy(&output.stdout));
        // The block that stays open documents what it prints while this one runs.
        if let Some((open_block, running)) = open.take() {
            let wanted: usize = open_block.steps.iter().map(|s| s.expected.len() + 1).sum();
            compare(open_block, &running.stop_after(wanted));
        }
    }
    assert!(
        open.is_none(),
        "the README's last block stays open: nothing runs beside it"
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// A block that stays open (a watch), its output gathered line by line.
struct Running {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Running {
    fn start(mut command: Command) -> Self {
        // Its own process group, so stopping it stops the curl it started too.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { return };
                sink.lock().unwrap().push(line);
            }
        });
        Running { child, lines }
    }

    /// Waits (boundedly) for `wanted` lines, stops the block, and returns what it printed.
    fn stop_after(mut self, wanted: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.lines.lock().unwrap().len() < wanted && Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
        // A moment for the reader to take the last lines from the pipe.
        std::thread::sleep(Duration::from_millis(50));
        let lines = self.lines.lock().unwrap();
        lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

#[test]
fn expected_lines_match_with_ellipses() {
    let cases = [
        ("abc", "abc", true),
        ("abc", "abcd", false),
        ("a…c", "abbbc", true),
        ("a…c", "abbb", false),
        ("{\"id\":\"…\",\"n\":1}", "{\"id\":\"g1f\",\"n\":1}", true),
        ("…", "", true),
        ("x…y…z", "x1y2z", true),
        ("x…y…z", "x1z", false),
    ];
    for (pattern, actual, expected) in cases {
        assert_eq!(matches(pattern, actual), expected, "{pattern} ~ {actual}");
    }
}
