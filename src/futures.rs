//! Three future combinators the broker needs and glommio does not provide.
//!
//! `join_all` polls every future in order on each poll, so all of them are first polled
//! together, in order: appends started by one request take their places in their logs
//! before any later request's. `race` resolves with the first of several futures.
//! `timed` adds up the time spent inside a future's polls (a partition's busy time).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Waits for every future; results in input order.
pub async fn join_all<'a, T: 'a>(futures: Vec<Boxed<'a, T>>) -> Vec<T> {
    let mut pending: Vec<Option<Boxed<'a, T>>> = futures.into_iter().map(Some).collect();
    let mut results: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *result = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(
                results
                    .iter_mut()
                    .map(|r| r.take().expect("every future finished"))
                    .collect(),
            )
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Resolves with the output of whichever future finishes first (the earliest in the
/// list when several are ready). Never resolves for an empty list.
pub async fn race<'a, T: 'a>(mut futures: Vec<Boxed<'a, T>>) -> T {
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        for future in futures.iter_mut() {
            if let Poll::Ready(value) = future.as_mut().poll(cx) {
                return Poll::Ready(value);
            }
        }
        Poll::Pending
    })
    .await
}

/// Runs `inner`, adding the wall-clock time spent inside each of its polls to a counter
/// of nanoseconds: the time the polling thread worked on it, not the time it waited.
/// Costs two reads of the monotonic clock (vDSO, no system call) per poll.
pub async fn timed<F: Future>(inner: F, busy_ns: &Cell<u64>) -> F::Output {
    let mut inner = std::pin::pin!(inner);
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        let started = Instant::now();
        let poll = inner.as_mut().poll(cx);
        let spent = started.elapsed().as_nanos() as u64;
        busy_ns.set(busy_ns.get().saturating_add(spent));
        poll
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn join_all_starts_every_future_in_order_and_keeps_result_order() {
        let order = Rc::new(RefCell::new(Vec::new()));
        let futures: Vec<Boxed<'_, usize>> = (0..3usize)
            .map(|i| {
                let order = order.clone();
                Box::pin(async move {
                    order.borrow_mut().push(i);
                    futures_lite::future::yield_now().await;
                    i * 10
                }) as Boxed<'_, usize>
            })
            .collect();
        let results = futures_lite::future::block_on(join_all(futures));
        assert_eq!(results, vec![0, 10, 20]);
        assert_eq!(*order.borrow(), vec![0, 1, 2]);
    }

    #[test]
    fn race_returns_the_first_ready() {
        let futures: Vec<Boxed<'_, u8>> = vec![
            Box::pin(std::future::pending()),
            Box::pin(async { 2 }),
            Box::pin(async { 3 }),
        ];
        assert_eq!(futures_lite::future::block_on(race(futures)), 2);
    }

    #[test]
    fn timed_counts_the_time_inside_polls_and_passes_the_output_through() {
        let busy = Cell::new(0);
        let output = futures_lite::future::block_on(timed(
            async {
                let started = Instant::now();
                while started.elapsed() < std::time::Duration::from_millis(2) {}
                futures_lite::future::yield_now().await;
                7
            },
            &busy,
        ));
        assert_eq!(output, 7);
        assert!(busy.get() >= 2_000_000, "{} ns", busy.get());
    }
}
