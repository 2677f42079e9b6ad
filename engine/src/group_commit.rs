//! [`GroupCommit`]: concurrent writers share one durable commit.
//!
//! While one thread (the leader) commits, others queue their items and wait; when it is
//! done, one of the waiters becomes the next leader and commits everything queued at once.
//! One fsync then serves many writers, and no writer is answered before its commit is done.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

/// Where one queued item's outcome goes; filled by the leader that commits it.
type Slot<O> = Arc<Mutex<Option<O>>>;

struct Queued<T, O> {
    item: T,
    slot: Slot<O>,
}

struct State<T, O> {
    queue: Vec<Queued<T, O>>,
    /// Whether some thread is committing; at most one is.
    leader_active: bool,
}

/// A queue of items (transactions) committed in groups by whichever submitter is free.
///
/// Waiters sleep on one condition variable that the leader signals when its group is done,
/// so all of them wake at once rather than one by one.
pub(crate) struct GroupCommit<T, O> {
    state: Mutex<State<T, O>>,
    done: Condvar,
}

impl<T, O> Default for GroupCommit<T, O> {
    fn default() -> Self {
        GroupCommit {
            state: Mutex::new(State {
                queue: Vec::new(),
                leader_active: false,
            }),
            done: Condvar::new(),
        }
    }
}

/// Hands leadership on when dropped, so a leader that panics does not leave every later
/// writer waiting for ever.
struct Leadership<'g, T, O> {
    group: &'g GroupCommit<T, O>,
}

impl<T, O> Drop for Leadership<'_, T, O> {
    fn drop(&mut self) {
        self.group.state.lock().leader_active = false;
        self.group.done.notify_all();
    }
}

impl<T, O> GroupCommit<T, O> {
    /// Submits `item` and returns its outcome once committed.
    ///
    /// `commit` receives a group of items in submission order (this one among them) and
    /// returns one outcome per item, in the same order; it runs on the calling thread
    /// when this caller leads, and not at all when another leader takes the item. An
    /// item `commit` gives no outcome for gets `lost()`.
    pub(crate) fn submit(
        &self,
        item: T,
        commit: impl FnOnce(Vec<T>) -> Vec<O>,
        lost: impl Fn() -> O,
    ) -> O {
        let slot: Slot<O> = Arc::new(Mutex::new(None));
        let mut state = self.state.lock();
        state.queue.push(Queued {
            item,
            slot: slot.clone(),
        });
        while state.leader_active {
            self.done.wait(&mut state);
            if let Some(outcome) = slot.lock().take() {
                return outcome;
            }
        }
        state.leader_active = true;
        let group = std::mem::take(&mut state.queue);
        drop(state);
        let leadership = Leadership { group: self };
        let (items, slots): (Vec<T>, Vec<Slot<O>>) =
            group.into_iter().map(|q| (q.item, q.slot)).unzip();
        let mut outcomes = commit(items).into_iter();
        for queued in &slots {
            *queued.lock() = Some(outcomes.next().unwrap_or_else(&lost));
        }
        drop(leadership);
        let outcome = slot.lock().take();
        outcome.unwrap_or_else(lost)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;

    use super::*;

    #[test]
    fn an_uncontended_submit_commits_alone() {
        let group = GroupCommit::<u32, u32>::default();
        let outcome = group.submit(
            7,
            |items| {
                assert_eq!(items, vec![7]);
                items.iter().map(|i| i * 2).collect()
            },
            || 0,
        );
        assert_eq!(outcome, 14);
    }

    #[test]
    fn concurrent_submitters_share_commits_and_each_gets_its_own_outcome() {
        let group = Arc::new(GroupCommit::<usize, usize>::default());
        let commits = Arc::new(AtomicUsize::new(0));
        let threads = 16;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (group, commits, barrier) = (group.clone(), commits.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    group.submit(
                        i,
                        |items| {
                            commits.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(5));
                            items.iter().map(|i| i + 1000).collect()
                        },
                        || usize::MAX,
                    )
                })
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join().unwrap(), i + 1000);
        }
        let commits = commits.load(Ordering::SeqCst);
        assert!(commits < threads, "{commits} commits for {threads} writers");
    }

    #[test]
    fn a_missing_outcome_is_reported_as_lost() {
        let group = GroupCommit::<u8, Option<u8>>::default();
        assert_eq!(group.submit(1, |_| Vec::new(), || None), None);
    }

    #[test]
    fn a_panicking_leader_hands_leadership_on() {
        let group = Arc::new(GroupCommit::<u8, u8>::default());
        let panicking = group.clone();
        let joined = std::thread::spawn(move || {
            panicking.submit(1, |_| panic!("commit failed"), || 0);
        })
        .join();
        assert!(joined.is_err());
        assert_eq!(group.submit(2, |items| items, || 0), 2);
    }
}
