//! A child process seen from outside: its stdout and stderr lines are
//! collected by background threads, it can be waited for (a JSON log line,
//! its exit) and sent SIGTERM the way Kubernetes stops a pod, and it is
//! killed when dropped, even when the test panics.

use std::{
    io::{BufRead, BufReader, Read},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError, Sender},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// How long a process that is expected to end may take to do so.
pub(crate) const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for a log line that should already be on its way.
pub(crate) const LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipe {
    Stdout,
    Stderr,
}

/// A child process whose stdout and stderr lines are read by background
/// threads and kept. Killed on drop if still running.
pub(crate) struct Process {
    name: String,
    child: Child,
    lines: Receiver<(Pipe, String)>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    pipes_closed: bool,
}

impl Process {
    /// Spawns `cmd` with piped output (and no stdin).
    pub(crate) fn spawn(cmd: Command) -> Self {
        Self::spawn_with_stdin(cmd, Stdio::null())
    }

    /// Spawns `cmd` reading `stdin`, with piped output.
    pub(crate) fn spawn_with_stdin(mut cmd: Command, stdin: Stdio) -> Self {
        let name = format!("{cmd:?}");
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {name}: {e}"));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        forward_lines(stdout, Pipe::Stdout, tx.clone());
        forward_lines(stderr, Pipe::Stderr, tx);
        Self {
            name,
            child,
            lines: rx,
            stdout: Vec::new(),
            stderr: Vec::new(),
            pipes_closed: false,
        }
    }

    /// The operating-system process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lines printed on stdout so far (as far as they have been collected).
    pub(crate) fn stdout(&self) -> &[String] {
        &self.stdout
    }

    /// Lines printed on stderr so far.
    pub(crate) fn stderr(&self) -> &[String] {
        &self.stderr
    }

    /// Everything printed so far, for assertion messages.
    pub(crate) fn output(&mut self) -> String {
        self.collect();
        self.render()
    }

    fn render(&self) -> String {
        format!(
            "--- stdout of {} ---\n{}\n--- stderr ---\n{}",
            self.name,
            self.stdout.join("\n"),
            self.stderr.join("\n")
        )
    }

    /// Collects lines already printed, without waiting.
    pub(crate) fn collect(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.keep(line);
        }
    }

    /// Waits up to `timeout` for one more line; false if none came.
    fn collect_one(&mut self, timeout: Duration) -> bool {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.keep(line);
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                self.pipes_closed = true;
                false
            }
        }
    }

    fn keep(&mut self, (pipe, line): (Pipe, String)) {
        match pipe {
            Pipe::Stdout => self.stdout.push(line),
            Pipe::Stderr => self.stderr.push(line),
        }
    }

    /// The stdout lines printed so far, parsed as JSON; panics on a line
    /// that is not JSON (the gateway is run with JSON logs).
    pub(crate) fn json_logs(&mut self) -> Vec<Value> {
        self.collect();
        let mut logs = Vec::new();
        for line in &self.stdout {
            match serde_json::from_str(line) {
                Ok(v) => logs.push(v),
                Err(e) => panic!("stdout line is not JSON ({e}): {line}\n{}", self.render()),
            }
        }
        logs
    }

    /// Whether the process has installed a handler for SIGTERM (Linux:
    /// the `SigCgt` mask in `/proc/PID/status`).
    pub(crate) fn catches_sigterm(&self) -> bool {
        const SIGTERM_BIT: u64 = 1 << (15 - 1);
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|status| {
                let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
                u64::from_str_radix(mask.trim(), 16).ok()
            })
            .is_some_and(|mask| mask & SIGTERM_BIT != 0)
    }

    /// The first JSON log line matching `pred`, waiting up to `timeout` for
    /// it to be printed; panics with everything printed when it never comes.
    /// Blocks the thread: call it from a multi-threaded runtime, or when no
    /// other task needs to make progress.
    pub(crate) fn wait_for_log(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        self.try_wait_for_log(what, timeout, pred)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::wait_for_log`], but a line that never comes is an `Err`
    /// (saying so, with everything printed) instead of a panic.
    pub(crate) fn try_wait_for_log(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            let found = self.stdout[checked..]
                .iter()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(&pred);
            if let Some(v) = found {
                return Ok(v);
            }
            checked = self.stdout.len();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (self.pipes_closed && !self.collect_one(Duration::ZERO)) {
                let exited = match self.child.try_wait() {
                    Ok(Some(status)) => format!("; the process exited ({status})"),
                    _ => String::new(),
                };
                return Err(format!(
                    "no log line {what} within {timeout:?} (or the output ended){exited}\n{}",
                    self.output()
                ));
            }
            self.collect_one(left.min(Duration::from_millis(100)));
        }
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM, the way Kubernetes stops a pod.
    pub(crate) fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to exit and for its output to
    /// end, then returns the exit status. Kills it and panics on timeout.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.try_wait_exit(timeout).unwrap_or_else(|| {
            panic!(
                "process did not exit within {timeout:?}; killed it\n{}",
                self.output()
            )
        })
    }

    /// [`Self::wait_exit`], but on timeout it kills the process (as the
    /// kubelet would send SIGKILL) and returns `None`.
    pub(crate) fn try_wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            self.collect();
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    #[expect(
                        clippy::disallowed_methods,
                        reason = "the harness is synchronous; async tests call it in block_in_place"
                    )]
                    thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return None;
                }
                Err(e) => panic!("cannot wait for the process: {e}\n{}", self.output()),
            }
        };
        // The pipes close with the process; wait a little for the last lines.
        let drain_deadline = Instant::now() + LOG_TIMEOUT;
        while !self.pipes_closed && Instant::now() < drain_deadline {
            self.collect_one(Duration::from_millis(100));
        }
        Some(status)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn forward_lines(pipe: impl Read + Send + 'static, which: Pipe, tx: Sender<(Pipe, String)>) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send((which, line)).is_err() {
                break;
            }
        }
    });
}

/// How a process that was expected to end, ended.
pub(crate) struct Exited {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Exited {
    /// Both pipes, for assertion messages and leak checks.
    pub(crate) fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.join("\n"),
            self.stderr.join("\n")
        )
    }
}

/// Runs `cmd` to completion (killed after [`EXIT_TIMEOUT`]).
pub(crate) fn run_to_exit(cmd: Command) -> Exited {
    let mut process = Process::spawn(cmd);
    let status = process.wait_exit(EXIT_TIMEOUT);
    Exited {
        status,
        stdout: std::mem::take(&mut process.stdout),
        stderr: std::mem::take(&mut process.stderr),
    }
}

/// A bare child process (its stdout the test's own to read), killed if the
/// test ends before it does.
pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
