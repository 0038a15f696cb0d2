//! The real `ktp-gateway` binary as a subprocess: its stdout and stderr are
//! collected by background threads, it is killed when dropped, and it can be
//! sent SIGTERM the way the kubelet stops a container.

use std::{
    io::{BufRead, BufReader, Read},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// A running child process and everything it printed so far.
pub struct Process {
    child: Child,
    lines: Receiver<(bool, String)>,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Process {
    /// Spawns `cmd` with piped output and no stdin.
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
        let (tx, lines) = mpsc::channel();
        let forward = |pipe: Box<dyn Read + Send>, is_stdout: bool| {
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((is_stdout, line)).is_err() {
                        break;
                    }
                }
            });
        };
        forward(Box::new(child.stdout.take().expect("piped stdout")), true);
        forward(Box::new(child.stderr.take().expect("piped stderr")), false);
        Self {
            child,
            lines,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    fn keep(&mut self, (is_stdout, line): (bool, String)) {
        if is_stdout {
            self.stdout.push(line);
        } else {
            self.stderr.push(line);
        }
    }

    /// Everything printed so far, for failure messages.
    pub fn output(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.keep(line);
        }
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.join("\n"),
            self.stderr.join("\n")
        )
    }

    /// The first stdout line that is a JSON object matching `pred`, waiting
    /// up to `timeout`; `Err` (with the output) if the process ends first or
    /// the time runs out.
    pub fn wait_for_json_line(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            let found = self.stdout[checked..]
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(&pred);
            if let Some(v) = found {
                return Ok(v);
            }
            checked = self.stdout.len();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "no such log line within {timeout:?}\n{}",
                    self.output()
                ));
            }
            match self.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(line) => self.keep(line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    return Err(format!(
                        "the process ended ({status:?}) before that log line\n{}",
                        self.output()
                    ));
                }
            }
        }
    }

    /// Sends SIGTERM, as the kubelet does once the preStop hook is done.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
    }

    /// Waits up to `timeout` for the exit; `None` (and a SIGKILL, as the
    /// kubelet would send) if it does not come.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
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
