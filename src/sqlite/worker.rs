//! The thread that owns a store's SQLite connection.
//!
//! SQLite calls block: on the disk, and for up to the busy timeout while
//! another process holds the write lock. Running them on a thread of their
//! own keeps async callers' executors free, needs no particular runtime (the
//! answer comes back through a oneshot channel, which any executor can
//! await), and serialises the calls of one process on its one connection.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use futures::channel::oneshot;
use rusqlite::Connection;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Runs jobs on one connection, one at a time, in the order they were sent.
pub(super) struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Moves `connection` to a new thread named `name`.
    pub(super) fn start(connection: Connection, name: &str) -> std::io::Result<Worker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut connection = connection;
                for job in queue {
                    // A job that panics drops its reply sender, so its caller
                    // gets an error; an open transaction rolls back as it
                    // drops, and the next jobs still run.
                    let _ = catch_unwind(AssertUnwindSafe(|| job(&mut connection)));
                }
                // Every handle is gone: the connection closes here, which
                // checkpoints the write-ahead log into the file.
            })?;
        Ok(Worker {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `job` on the connection; `None` if the worker stopped or the job
    /// panicked.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            // The caller may have stopped waiting; the work is done anyway,
            // as a request already sent to a server would be.
            let _ = reply.send(job(connection));
        });
        self.jobs.as_ref()?.send(job).ok()?;
        answer.await.ok()
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("running", &self.thread.is_some())
            .finish()
    }
}

impl Drop for Worker {
    /// Waits for the thread to finish its queue and close the file, so a
    /// dropped store has released the file when the drop returns.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            // Never join from the worker itself (it would wait forever).
            if thread.thread().id() != thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}
