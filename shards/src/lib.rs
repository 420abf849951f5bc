//! shards: corelog's thread-per-core runtime. It knows nothing about Kafka.
//!
//! - `runtime`: one glommio `LocalExecutor` per shard, each on its own thread pinned to
//!   its own CPU with its own io_uring rings; locked memory sized (or raised) so the
//!   default fits an 8 MiB `ulimit -l`; a clear error when a shard cannot start.
//! - `mesh`: calls between shards over bounded single-producer single-consumer
//!   channels, one per ordered pair of shards; the only way shards interact.
//! - `sharded`: typed calls on the mesh — one state per shard, and "run this closure on
//!   shard N against its state", whose result comes back with its own type.
//! - `rt`: the runtime calls the broker makes (spawn, timers, yielding, the blocking
//!   pool), so glommio stays behind this crate.
//! - `table`: the shard table (key → owning shard, with a revision), authoritative on
//!   shard 0 and replicated to every shard by update messages.
//! - `oneshot`: a single-value channel between tasks of one shard.
//! - `counts`: a count per shard that only its shard writes and every shard reads (the
//!   one piece of state shared outside the mesh; corelog's connections per shard).
//!
//! Shard-local state is `!Send` (`Rc`, `RefCell`, `Cell`); whatever crosses the mesh is
//! `Send` and owned by the message. No locks, no shared atomics on any hot path.

pub mod counts;
pub mod cpus;
pub mod memlock;
pub mod mesh;
pub mod oneshot;
pub mod rt;
pub mod runtime;
pub mod sharded;
pub mod table;

pub use counts::ShardCounts;
pub use cpus::CpuList;
pub use mesh::{Inbox, LocalBoxFuture, MeshStats, Reply, Shard, ShardGone, ShardId};
pub use runtime::{Runtime, RuntimeConfig, StartError, start};
pub use sharded::{Job, JobMesh, Pending, Sharded};
pub use table::{ShardTable, TableUpdate};

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    fn config(shards: usize) -> RuntimeConfig {
        // Tests may run on a one-CPU machine: place every shard on the first CPU.
        let cpu = CpuList::from_affinity().unwrap().as_slice()[0];
        RuntimeConfig {
            shards: Some(shards),
            cpuset: Some(CpuList::new(vec![cpu])),
            io_memory_bytes: Some(memlock::MIN_IO_MEMORY_BYTES),
            ..RuntimeConfig::default()
        }
    }

    /// Two shards, on two CPUs when the machine has them.
    fn two_shards() -> RuntimeConfig {
        let cpus = CpuList::from_affinity().unwrap();
        let mut cfg = config(2);
        if cpus.len() >= 2 {
            cfg.cpuset = Some(cpus);
        }
        cfg
    }

    #[test]
    fn more_shards_than_cpus_is_a_placement_error() {
        let err = start::<(), (), (), _, _>(&config(3), |_, _| async {})
            .err()
            .unwrap();
        assert!(err.to_string().contains("3 shards need 3 CPUs"), "{err}");
    }

    #[test]
    fn a_single_shard_runs_work_for_itself() {
        let runtime = start(&config(1), |mesh: Rc<JobMesh<u32>>, inbox| async move {
            let sharded = Sharded::new(mesh, Rc::new(2));
            sharded.serve(inbox);
            sharded
                .invoke_on(ShardId(0), |here, _| async move { 21 * **here.local() })
                .await
                .unwrap()
        })
        .unwrap();
        assert_eq!(runtime.join().unwrap(), vec![42]);
    }

    #[test]
    fn shards_call_each_other_and_calls_start_in_the_order_sent() {
        const CALLS: u32 = 500;
        let cfg = two_shards();
        let runtime = start(
            &cfg,
            |shard: Rc<Shard<(ShardId, u32), u32>>, inbox| async move {
                // Record the order in which calls reach the handler.
                let seen = Rc::new(RefCell::new(Vec::new()));
                let record = seen.clone();
                let me = shard.id();
                shard.serve(inbox, move |from, (sender, n)| {
                    assert_eq!(from, sender);
                    record.borrow_mut().push(n);
                    Box::pin(async move {
                        glommio::yield_if_needed().await;
                        n + 1
                    })
                });
                let peer = ShardId(1 - me.0);
                // Pipeline calls: start them all, then await them.
                let tasks: Vec<_> = (0..CALLS)
                    .map(|n| {
                        let shard = shard.clone();
                        glommio::spawn_local(
                            async move { shard.call(peer, (me, n)).await.unwrap() },
                        )
                    })
                    .collect();
                let mut replies = Vec::new();
                for task in tasks {
                    replies.push(task.await);
                }
                assert_eq!(replies, (1..=CALLS).collect::<Vec<_>>());
                // Stop only once every call from the peer has been answered.
                while shard.stats().replies_sent.get() < u64::from(CALLS) {
                    glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                }
                let seen = seen.borrow().clone();
                (shard.stats().calls_sent.get(), seen)
            },
        )
        .unwrap();
        for (sent, seen) in runtime.join().unwrap() {
            assert_eq!(sent, u64::from(CALLS));
            assert_eq!(seen, (0..CALLS).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_sender_asleep_on_a_full_channel_wakes_when_the_receiver_makes_room() {
        // glommio patch 12: a receive wakes the sender's executor only while a sender
        // waits for room. Here the sender has nothing else to do, so it parks on a full
        // two-slot channel each time the receiver pauses; the first pop after a pause
        // must wake it. Unwoken, it sleeps until its executor next wakes for its own
        // reasons (about a second here): 40 pauses would take about 40 s, not 80 ms.
        use glommio::channels::shared_channel;
        const ITEMS: u32 = 400;
        let (sender, receiver) = shared_channel::new_bounded::<u32>(2);
        let (done, finished) = std::sync::mpsc::channel();
        let producer = glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let sender = sender.connect().await;
                for n in 0..ITEMS {
                    sender.send(n).await.unwrap();
                }
            })
            .unwrap();
        let consumer = glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let receiver = receiver.connect().await;
                let mut got = Vec::new();
                while let Some(n) = receiver.recv().await {
                    got.push(n);
                    // A slow receiver: the channel fills and the sender parks.
                    if n % 10 == 0 {
                        glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
                    }
                }
                let _ = done.send(got);
            })
            .unwrap();
        let got = finished
            .recv_timeout(std::time::Duration::from_secs(15))
            .expect("the sender was woken after each pause and sent everything");
        assert_eq!(got, (0..ITEMS).collect::<Vec<_>>());
        producer.join().unwrap();
        consumer.join().unwrap();
    }

    #[test]
    fn a_call_reaching_a_shard_whose_sharded_is_gone_resolves_as_shard_gone() {
        use std::sync::atomic::{AtomicBool, Ordering};
        // Shard 1 drops its Sharded (as a stopping shard does) while its mesh still
        // serves; shard 0 then calls it.
        static DROPPED: AtomicBool = AtomicBool::new(false);
        static ANSWERED: AtomicBool = AtomicBool::new(false);
        let runtime = start(&two_shards(), |mesh: Rc<JobMesh<()>>, inbox| async move {
            let me = mesh.id();
            let sharded = Sharded::new(mesh.clone(), Rc::new(()));
            sharded.serve(inbox);
            if me.0 == 1 {
                drop(sharded);
                DROPPED.store(true, Ordering::SeqCst);
                while !ANSWERED.load(Ordering::SeqCst) {
                    glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                }
                return None;
            }
            while !DROPPED.load(Ordering::SeqCst) {
                glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            }
            let answer = sharded.invoke_on(ShardId(1), |_, _| async { 7u32 }).await;
            ANSWERED.store(true, Ordering::SeqCst);
            Some(answer)
        })
        .unwrap();
        let answers: Vec<_> = runtime.join().unwrap().into_iter().flatten().collect();
        assert_eq!(answers, vec![Err(ShardGone(ShardId(1)))]);
    }

    #[test]
    fn calls_to_the_shard_itself_run_in_the_order_started_even_when_forgotten() {
        let runtime = start(
            &two_shards(),
            |mesh: Rc<JobMesh<RefCell<Vec<u32>>>>, inbox| async move {
                let me = mesh.id();
                let sharded = Sharded::new(mesh, Rc::new(RefCell::new(Vec::new())));
                sharded.serve(inbox);
                let mut kept = Vec::new();
                for n in 0..10u32 {
                    let call = sharded
                        .submit_to(me, move |here, from| async move {
                            here.local().borrow_mut().push(n);
                            (n, from)
                        })
                        .await
                        .unwrap();
                    // Every other call is forgotten: its work still runs.
                    if n % 2 == 0 {
                        kept.push(call);
                    }
                }
                let mut answers = Vec::new();
                for call in kept {
                    answers.push(call.await.unwrap());
                }
                while sharded.local().borrow().len() < 10 {
                    glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                }
                let seen = sharded.local().borrow().clone();
                (me, answers, seen, sharded.mesh_stats().local_calls.get())
            },
        )
        .unwrap();
        for (me, answers, seen, local_calls) in runtime.join().unwrap() {
            let expected: Vec<_> = (0..10).step_by(2).map(|n| (n, me)).collect();
            assert_eq!(answers, expected);
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
            assert_eq!(local_calls, 10);
        }
    }

    #[test]
    fn typed_calls_return_the_closures_own_type_in_the_order_sent() {
        let cfg = two_shards();
        let runtime = start(
            &cfg,
            |mesh: Rc<JobMesh<RefCell<Vec<u32>>>>, inbox| async move {
                let me = mesh.id();
                let sharded = Sharded::new(mesh, Rc::new(RefCell::new(Vec::new())));
                sharded.serve(inbox);
                let peer = ShardId(1 - me.0);
                // Started one after another, awaited together: invoked in that order.
                let mut pending = Vec::new();
                for n in 0..100u32 {
                    let call = sharded
                        .submit_to(peer, move |there, from| async move {
                            there.local().borrow_mut().push(n);
                            format!("{n} from {}", from.0)
                        })
                        .await
                        .unwrap();
                    pending.push(call);
                }
                let mut answers: Vec<String> = Vec::new();
                for call in pending {
                    answers.push(call.await.unwrap());
                }
                assert_eq!(answers[7], format!("7 from {}", me.0));
                // A call to itself is invoked the same way and returns its own type.
                let mine: usize = sharded
                    .invoke_on(me, |here, _| async move { here.local().borrow().len() })
                    .await
                    .unwrap();
                // Wait until the peer's 100 calls reached this shard's state.
                while sharded.local().borrow().len() < 100 {
                    glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
                }
                let seen = sharded.local().borrow().clone();
                (mine <= 100, seen)
            },
        )
        .unwrap();
        for (ok, seen) in runtime.join().unwrap() {
            assert!(ok);
            assert_eq!(seen, (0..100).collect::<Vec<_>>());
        }
    }
}
