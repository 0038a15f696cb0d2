//! Where log lines go: a queue bounded in bytes, emptied onto stdout by a
//! thread of its own, so that a log pipe nobody reads can never stall a
//! runtime worker. Lines that do not fit are dropped and counted.

use std::{
    io::{self, Write},
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    thread,
    time::Duration,
};

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::fmt::MakeWriter;

/// Bytes the queue may hold: a few thousand lines, enough to ride out a
/// collector's hiccup, small next to the pod's memory limit.
pub(super) const QUEUE_BYTES: usize = 1024 * 1024;

/// What a queued line costs besides its text (its `Vec` and channel slot), so
/// that a flood of short lines is bounded too.
const LINE_OVERHEAD: usize = 32;

/// Lines are charged as if at least this long (a call's line is about 300
/// bytes): the channel's slots, allocated up front, number
/// `limit / (MIN_LINE + LINE_OVERHEAD)`, not one per byte.
const MIN_LINE: usize = 96;

/// What queuing a line of `len` bytes takes from the budget.
fn cost(len: usize) -> usize {
    len.max(MIN_LINE) + LINE_OVERHEAD
}

/// How long the log thread rests after a write: lines logged meanwhile are
/// written together, one system call per pause rather than per line, and
/// the loggers need not wake it for each (the queue holds a megabyte).
const PAUSE: Duration = Duration::from_millis(5);

/// The name of the thread that writes stdout (seen in `top -H`, `/proc`).
pub(super) const THREAD_NAME: &str = "ktp-gateway-log";

/// The accounting shared by the loggers and the log thread.
#[derive(Debug)]
pub(super) struct Queue {
    /// What the lines queued or buffered, not yet written, cost ([`cost`]).
    queued: AtomicUsize,
    limit: usize,
    /// Lines dropped since the process started (the metric).
    dropped: AtomicU64,
    /// Lines dropped since the last WARN that said so.
    unreported: AtomicU64,
}

impl Queue {
    pub(super) const fn new(limit: usize) -> Self {
        Self {
            queued: AtomicUsize::new(0),
            limit,
            dropped: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
        }
    }

    /// Takes room for `cost` bytes, or counts a dropped line.
    fn reserve(&self, cost: usize) -> bool {
        let before = self.queued.fetch_add(cost, Ordering::Relaxed);
        if before + cost <= self.limit {
            return true;
        }
        self.queued.fetch_sub(cost, Ordering::Relaxed);
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.unreported.fetch_add(1, Ordering::Relaxed);
        false
    }

    fn release(&self, cost: usize) {
        self.queued.fetch_sub(cost, Ordering::Relaxed);
    }

    /// Lines dropped since the process started.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The subscriber's writer: each line is queued whole or dropped whole.
#[derive(Debug)]
pub(super) struct Sink {
    queue: &'static Queue,
    lines: NonBlocking,
}

impl Sink {
    /// A sink writing to `out` from the log thread; the guard, when dropped,
    /// writes what is still queued (waiting about a second at most, so a
    /// dead pipe cannot hang the exit).
    pub(super) fn new<W: Write + Send + 'static>(
        queue: &'static Queue,
        out: W,
    ) -> (Self, WorkerGuard) {
        let (lines, guard) = NonBlockingBuilder::default()
            .lossy(true)
            // Never reached: the byte budget binds first (each line costs at
            // least `cost(0)`), so the channel itself never drops a line that
            // was counted as queued.
            .buffered_lines_limit(queue.limit / cost(0) + 1)
            .thread_name(THREAD_NAME)
            .finish(Batch {
                queue,
                out,
                pending: Vec::new(),
                cost: 0,
            });
        (Self { queue, lines }, guard)
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(self)
    }
}

/// One formatted line (tracing's fmt layer writes each line in one call).
pub(super) struct Line<'a>(&'a Sink);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.0.queue.reserve(cost(buf.len())) {
            // Lossy and never full (see `Sink::new`): this does not block.
            self.0.lines.clone().write_all(buf)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The log thread's end: lines gathered while the queue has more, written
/// in one system call when it is empty (tracing-appender flushes then).
struct Batch<W> {
    queue: &'static Queue,
    out: W,
    pending: Vec<u8>,
    /// What the lines in `pending` were charged.
    cost: usize,
}

impl<W: Write> Write for Batch<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.cost += cost(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let written = self
            .out
            .write_all(&self.pending)
            .and_then(|()| self.out.flush());
        // Written or not (a closed pipe), these lines are gone: free their room.
        self.pending.clear();
        self.queue.release(std::mem::take(&mut self.cost));
        // Once the backlog is worked off (lines dropped only when the queue
        // was full; it is under a quarter full now), say what was lost: one
        // line per episode, not one per write. It is queued like any line.
        let caught_up = self.queue.queued.load(Ordering::Relaxed) <= self.queue.limit / 4;
        let lost = match caught_up {
            true => self.queue.unreported.swap(0, Ordering::Relaxed),
            false => 0,
        };
        if lost > 0 {
            tracing::warn!(
                log_lines_dropped = lost,
                "{lost} log lines were dropped: stdout was not read fast enough"
            );
        }
        #[expect(
            clippy::disallowed_methods,
            reason = "the log thread is no runtime worker"
        )]
        thread::sleep(PAUSE);
        written
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex, mpsc},
        time::{Duration, Instant},
    };

    use super::*;

    /// A stdout whose reader is away until the test says so.
    struct Stalled {
        go: mpsc::Receiver<()>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.go.recv_timeout(Duration::from_secs(30));
            self.out
                .lock()
                .map_err(|_| io::ErrorKind::Other)?
                .extend(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_stdout_drops_and_counts_lines_without_blocking() {
        let queue: &'static Queue = Box::leak(Box::new(Queue::new(4096)));
        let (go, wait) = mpsc::channel();
        let out = Arc::new(Mutex::new(Vec::new()));
        let (sink, guard) = Sink::new(
            queue,
            Stalled {
                go: wait,
                out: out.clone(),
            },
        );
        let line = [b'x'; 100];
        let started = Instant::now();
        for _ in 0..1000 {
            sink.make_writer().write_all(&line).expect("never fails");
        }
        // Not one write waited for the stalled reader (30 s).
        assert!(started.elapsed() < Duration::from_secs(20));
        let dropped = queue.dropped();
        // The first line went to the stalled thread; at most 4 KiB more wait
        // (31 lines of 100 bytes, each charged 132).
        assert!((950..1000).contains(&dropped), "{dropped}");
        for _ in 0..100 {
            let _ = go.send(());
        }
        drop(guard);
        let written = out.lock().map(|o| o.len()).unwrap_or(0);
        assert_eq!(written as u64, (1000 - dropped) * 100);
        assert_eq!(queue.queued.load(Ordering::Relaxed), 0);
    }
}
