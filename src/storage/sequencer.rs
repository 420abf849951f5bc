//! A FIFO turn-taking gate for the tasks of one shard (a ticket lock).
//!
//! Owns [`Sequencer`]: every caller of [`Sequencer::acquire`] takes a ticket when first
//! polled and gets its [`Turn`] strictly in ticket order. The partition log uses it to give
//! appends their offsets in call order even when an append has to wait for a segment roll
//! (the only await while offsets are being assigned), and to keep truncation and appends
//! apart. When nobody is ahead, `acquire` completes on its first poll without yielding.
//!
//! Cancellation: a task dropped while waiting gives its ticket up (the queue skips it); a
//! dropped [`Turn`] passes the turn on. `!Send`: lives on the partition's shard.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;

use super::notify::Notify;

#[derive(Debug, Default)]
pub(crate) struct Sequencer {
    next_ticket: Cell<u64>,
    serving: Cell<u64>,
    abandoned: RefCell<BTreeSet<u64>>,
    changed: Notify,
}

/// The right to act; the next ticket is served when this is dropped.
#[derive(Debug)]
pub(crate) struct Turn<'a> {
    sequencer: &'a Sequencer,
}

struct Waiting<'a> {
    sequencer: &'a Sequencer,
    ticket: u64,
    served: bool,
}

impl Sequencer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for this caller's turn, in the order callers first polled `acquire`.
    pub async fn acquire(&self) -> Turn<'_> {
        let ticket = self.next_ticket.get();
        self.next_ticket.set(ticket + 1);
        let mut waiting = Waiting {
            sequencer: self,
            ticket,
            served: false,
        };
        loop {
            let changed = self.changed.listen();
            if self.serving.get() == ticket {
                waiting.served = true;
                return Turn { sequencer: self };
            }
            changed.await;
        }
    }

    fn advance(&self) {
        let mut serving = self.serving.get() + 1;
        let mut abandoned = self.abandoned.borrow_mut();
        while abandoned.remove(&serving) {
            serving += 1;
        }
        self.serving.set(serving);
        drop(abandoned);
        self.changed.notify_all();
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.sequencer.advance();
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        if self.sequencer.serving.get() == self.ticket {
            self.sequencer.advance();
        } else {
            self.sequencer.abandoned.borrow_mut().insert(self.ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::block_on;
    use std::rc::Rc;

    #[test]
    fn turns_are_granted_in_ticket_order_and_abandoned_tickets_are_skipped() {
        block_on(async {
            let sequencer = Rc::new(Sequencer::new());
            let order = Rc::new(RefCell::new(Vec::new()));
            let first = sequencer.acquire().await;
            let mut tasks = Vec::new();
            for i in 0..4 {
                let sequencer = sequencer.clone();
                let order = order.clone();
                tasks.push(glommio::spawn_local(async move {
                    let _turn = sequencer.acquire().await;
                    order.borrow_mut().push(i);
                }));
                // Let the task take its ticket before the next one is spawned.
                glommio::executor().yield_now().await;
            }
            // Ticket 5 is abandoned while waiting.
            {
                let abandoned = sequencer.acquire();
                let mut abandoned = Box::pin(abandoned);
                let _ = futures_lite::future::poll_once(&mut abandoned).await;
            }
            drop(first);
            for task in tasks {
                task.await;
            }
            assert_eq!(*order.borrow(), vec![0, 1, 2, 3]);
            let _last = sequencer.acquire().await;
        });
    }
}
