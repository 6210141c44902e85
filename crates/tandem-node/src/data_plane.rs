//! The data plane's threads: one single-threaded tokio runtime per thread
//! (a shard), instead of one work-stealing runtime over all of them.
//!
//! Each attendee's connection, its QUIC connection driver and its tasks live
//! on one shard, picked as the one serving the fewest tasks when the
//! connection arrives (ties to the lowest index: shard 0 also drives the
//! endpoint, so a lone attendee shares its thread with the packets it
//! receives). Why not work stealing: with one attendee on a typing desktop,
//! every update woke two workers, the one that ran it and a sibling woken
//! to steal from it, and the sibling's wake-ups cost a third of the data
//! plane's CPU (20 s of typing at 10 keys/s: 57 ms and 990 context switches
//! on two workers, 37 ms and 470 sharded). Under hundreds of attendees
//! the shards share them evenly and an update wakes each shard once.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The shards, each a thread running a current-thread runtime until the
/// data plane is dropped.
pub struct DataPlane {
    shards: Vec<Shard>,
}

struct Shard {
    handle: Handle,
    /// Tasks spawned with [`DataPlane::spawn_balanced`] still running here.
    tasks: Arc<AtomicUsize>,
    /// Dropping it ends the shard's thread (and its tasks with its runtime).
    _stop: oneshot::Sender<()>,
}

impl DataPlane {
    /// Starts `threads` shards (at least one), named `tandem-quic`.
    pub fn start(threads: usize) -> std::io::Result<DataPlane> {
        let mut shards = Vec::new();
        for _ in 0..threads.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name("tandem-quic".into())
                .spawn(move || {
                    // Either a stop or the sender dropped ends the shard.
                    let _ = runtime.block_on(stopped);
                    // On this thread, outside any runtime: dropping the
                    // runtime cancels the tasks left.
                    drop(runtime);
                })?;
            shards.push(Shard {
                handle,
                tasks: Arc::new(AtomicUsize::new(0)),
                _stop: stop,
            });
        }
        Ok(DataPlane { shards })
    }

    /// Shard 0, which drives the endpoint (and accepts on it).
    pub fn endpoint_shard(&self) -> &Handle {
        &self.shards[0].handle
    }

    /// The last shard: long-lived work that is not one attendee's (relay
    /// links) goes there, away from the endpoint's shard when there are two.
    pub fn last_shard(&self) -> &Handle {
        &self.shards[self.shards.len() - 1].handle
    }

    /// Runs `task` on the shard with the fewest balanced tasks; the count
    /// drops when the task ends (or is cancelled).
    pub fn spawn_balanced<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let shard = self
            .shards
            .iter()
            .min_by_key(|s| s.tasks.load(Ordering::Relaxed))
            .unwrap_or(&self.shards[0]);
        let held = TaskCount::hold(shard.tasks.clone());
        shard.handle.spawn(async move {
            let _held = held;
            task.await
        })
    }
}

/// One task counted on its shard until dropped.
struct TaskCount(Arc<AtomicUsize>);

impl TaskCount {
    fn hold(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        TaskCount(count)
    }
}

impl Drop for TaskCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_go_to_the_least_busy_shard_and_are_counted_until_they_end() {
        let plane = DataPlane::start(2).unwrap();
        let thread_of = |plane: &DataPlane| {
            let (tx, rx) = std::sync::mpsc::channel();
            let (release, wait) = oneshot::channel::<()>();
            plane.spawn_balanced(async move {
                tx.send(std::thread::current().id()).unwrap();
                let _ = wait.await;
            });
            (rx.recv().unwrap(), release)
        };
        // Two running tasks: one per shard, on two threads.
        let (first, release_first) = thread_of(&plane);
        let (second, _release_second) = thread_of(&plane);
        assert_ne!(first, second);
        // The first ends: its shard is the least busy again.
        drop(release_first);
        while plane.shards[0].tasks.load(Ordering::Relaxed) != 0 {
            std::thread::yield_now();
        }
        let (third, _release_third) = thread_of(&plane);
        assert_eq!(third, first);
    }
}
