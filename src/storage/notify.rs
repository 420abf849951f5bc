//! A shard-local "something changed" signal: wake every waiting task, no lost wake-ups.
//!
//! Owns [`Notify`] and its future [`Notified`]. Used by the partition log to wake appenders
//! when their write lands, group-commit waiters when an fdatasync completes, and the
//! server's long-poll fetches when the log end offset or high watermark moves.
//!
//! `!Send` by design (`Rc`, `Cell`): a notifier lives on the shard that owns its partition.
//! Invariant: a [`Notified`] created before a `notify_all` resolves, even if it is first
//! polled after it (it remembers the generation it was created in), so "check the
//! condition, then wait" never misses a change as long as the listener is created before
//! the check or with no await in between.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Inner {
    generation: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

/// Wakes every task waiting on it.
#[derive(Clone, Default)]
pub struct Notify {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notify")
            .field("generation", &self.inner.generation.get())
            .field("waiters", &self.inner.wakers.borrow().len())
            .finish()
    }
}

impl Notify {
    pub fn new() -> Self {
        Self::default()
    }

    /// A future that resolves at the next `notify_all` after this call.
    pub fn listen(&self) -> Notified {
        Notified {
            inner: self.inner.clone(),
            generation: self.inner.generation.get(),
        }
    }

    /// Wakes every listener created before this call.
    pub fn notify_all(&self) {
        self.inner.generation.set(self.inner.generation.get() + 1);
        let wakers = std::mem::take(&mut *self.inner.wakers.borrow_mut());
        for waker in wakers {
            waker.wake();
        }
    }
}

/// Resolves once the [`Notify`] it came from has been notified since its creation.
#[must_use = "a listener does nothing unless awaited"]
pub struct Notified {
    inner: Rc<Inner>,
    generation: u64,
}

impl Future for Notified {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.generation.get() != self.generation {
            return Poll::Ready(());
        }
        let mut wakers = self.inner.wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::block_on;

    #[test]
    fn a_listener_created_before_notify_resolves_even_if_polled_later() {
        block_on(async {
            let notify = Notify::new();
            let listener = notify.listen();
            notify.notify_all();
            listener.await;
        });
    }

    #[test]
    fn notify_wakes_every_waiting_task() {
        block_on(async {
            let notify = Notify::new();
            let woken = Rc::new(Cell::new(0));
            let tasks: Vec<_> = (0..3)
                .map(|_| {
                    let listener = notify.listen();
                    let woken = woken.clone();
                    shards::rt::spawn(async move {
                        listener.await;
                        woken.set(woken.get() + 1);
                    })
                })
                .collect();
            shards::rt::yield_if_needed().await;
            notify.notify_all();
            for task in tasks {
                task.await;
            }
            assert_eq!(woken.get(), 3);
        });
    }
}
