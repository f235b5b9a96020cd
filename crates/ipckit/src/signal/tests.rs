//! Unit tests of the signal module (its parts together).

#[cfg(any(target_os = "linux", target_os = "android"))]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::action::{current_action, set_action};
use super::DefaultAction::{Continue, Core, Ignore, Stop, Terminate};
use super::*;
use crate::error::Errno;
use crate::sys::{libc, wake_signal};
use crate::wait::Canceller;

/// Dispositions are process-wide: tests that change them run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The next delivery, waiting for it (a signal sent to the process may be handled by
/// another thread, after `kill` returns).
fn recv(w: &Watch) -> SignalInfo {
    w.next(&Canceller::new()).unwrap()
}

/// The chained handler runs after the record is written, maybe on another thread.
fn wait_for(done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn me() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "no real-time signals (SIGRTMIN+N)"
)]
fn names_round_trip_for_every_signal() {
    for d in list() {
        assert_eq!(number(&d.name), Some(d.number), "{}", d.name);
        assert_eq!(name(d.number).as_deref(), Some(d.name.as_str()));
    }
    assert_eq!(number("SIGIOT"), Some(libc::SIGABRT));
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        assert_eq!(number("SIGPOLL"), Some(libc::SIGIO));
        assert_eq!(number("SIGCLD"), Some(libc::SIGCHLD));
        assert_eq!(number("SIGUNUSED"), Some(libc::SIGSYS));
        assert_eq!(aliases(libc::SIGIO), ["SIGPOLL"]);
    }
    #[cfg(target_vendor = "apple")]
    assert_eq!(number("SIGCLD"), None);
    assert_eq!(number("SIGRTMIN+0"), Some(rtmin()));
    assert_eq!(number("SIGRTMAX-0"), Some(rtmax()));
    for bad in [
        "",
        "SIGRTMIN+",
        "SIGRTMIN-1",
        "SIGRTMAX+1",
        "SIGRTMIN+99",
        "sigterm",
        "SIGRTMIN+ 1",
    ] {
        assert_eq!(number(bad), None, "{bad}");
    }
    assert_eq!(name(0), None);
    assert_eq!(name(65), None);
}

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "no real-time signals (SIGRTMIN+N)"
)]
fn default_actions_follow_signal_7() {
    assert_eq!(describe(libc::SIGQUIT).unwrap().default_action, Core);
    assert_eq!(describe(libc::SIGCONT).unwrap().default_action, Continue);
    assert_eq!(describe(libc::SIGTTOU).unwrap().default_action, Stop);
    assert_eq!(describe(libc::SIGWINCH).unwrap().default_action, Ignore);
    assert_eq!(describe(rtmin() + 1).unwrap().default_action, Terminate);
}

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "sigqueue is ENOSYS, and no real-time signals"
)]
fn watch_receives_value_and_sender_and_restores_default() {
    let _serial = serial();
    let signo = rtmin() + 7;
    assert_eq!(disposition(signo).unwrap(), Disposition::Default);
    let a = Watch::new(&[signo]).unwrap();
    let b = Watch::new(&[signo, libc::SIGWINCH]).unwrap();
    assert_eq!(disposition(signo).unwrap(), Disposition::Handler);
    sigqueue(me(), signo, -5).unwrap();
    for w in [&a, &b] {
        let info = recv(w);
        assert_eq!(info.value, Some(-5));
        assert_eq!(info.pid, Some(me()));
        assert_eq!(info.code, libc::SI_QUEUE);
    }
    assert!(a.try_next().unwrap().is_none());
    drop(a);
    assert_eq!(disposition(signo).unwrap(), Disposition::Handler);
    kill(me(), signo).unwrap();
    let info = recv(&b);
    assert_eq!((info.code, info.value), (libc::SI_USER, None));
    b.close();
    assert_eq!(disposition(signo).unwrap(), Disposition::Default);
    assert_eq!(disposition(libc::SIGWINCH).unwrap(), Disposition::Default);
}

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "sigqueue is ENOSYS, and no real-time signals"
)]
fn real_time_signals_queue_and_arrive_in_send_order() {
    let _serial = serial();
    let signo = rtmin() + 8;
    let w = Watch::new(&[signo]).unwrap();
    assert!(w.ordered());
    // Sent from several threads of this (multi-threaded) process while others run.
    let senders: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || std::thread::sleep(Duration::from_millis(20))))
        .collect();
    for i in 0..500 {
        sigqueue(me(), signo, i).unwrap();
    }
    let got: Vec<i32> = (0..500).map(|_| recv(&w).value.unwrap()).collect();
    assert_eq!(got, (0..500).collect::<Vec<_>>());
    assert_eq!(w.dropped(), 0);
    for s in senders {
        s.join().unwrap();
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn an_ordered_watch_confines_its_real_time_signal_and_gives_it_back() {
    let _serial = serial();
    let signo = rtmin() + 10;
    // A thread that blocks the signal on its own before, and keeps it blocked after.
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let own = std::thread::spawn(move || {
        confine::tests_block_own(signo);
        tx.send(confine::tests_gettid()).unwrap();
        stop_rx.recv().unwrap();
    });
    let own_tid = rx.recv().unwrap();
    // Threads that block it before: that one, and threads blocking every signal (this
    // crate's waiting threads, which other tests start meanwhile too).
    let has = |mask: u64, signo: i32| mask & 1u64 << (signo - 1) != 0;
    let ms = confine::mask_signal();
    let mut blocked_before = Vec::new();
    for (tid, mask) in confine::masks_now() {
        if has(mask, signo) {
            assert!(tid == own_tid || has(mask, ms), "thread {tid}: {mask:x}");
            blocked_before.push(tid);
        }
    }

    let w = Watch::new(&[signo, libc::SIGUSR2]).unwrap();
    assert!(w.ordered());
    let receiver = confine::receiver_tid();
    // A thread started now, from this (confined) thread, inherits the block.
    let late = std::thread::spawn(move || {
        let tid = confine::tests_gettid();
        (tid, confine::blocks(tid, signo))
    });
    let (_, late_blocks) = late.join().unwrap();
    assert!(late_blocks);
    for (tid, mask) in confine::masks_now() {
        assert_eq!(
            has(mask, signo),
            tid != receiver,
            "thread {tid}: {mask:x}; {}",
            confine::tests_describe(tid)
        );
    }
    // Standard signals are never confined.
    assert!(!confine::blocks(confine::tests_gettid(), libc::SIGUSR2));
    // A second ordered watch shares the confinement; an unordered one changes nothing.
    let w2 = Watch::new(&[signo]).unwrap();
    let u = Watch::with_options(&[signo], |_| true, false).unwrap();
    assert!(w2.ordered() && !u.ordered());
    w.close();
    assert!(confine::blocks(confine::tests_gettid(), signo));
    w2.close();
    for (tid, mask) in confine::masks_now() {
        assert!(
            !has(mask, signo) || blocked_before.contains(&tid) || has(mask, ms),
            "thread {tid}: {mask:x}; {}",
            confine::tests_describe(tid)
        );
    }
    assert!(confine::blocks(own_tid, signo));
    u.close();
    stop_tx.send(()).unwrap();
    own.join().unwrap();
}

/// Threads that start threads all along (as a host's thread pools and workers do) while
/// ordered watches start and end: threads caught inside `pthread_create`, with every signal
/// blocked for a moment, must be confined too, and given the signal back after.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn threads_started_while_a_watch_starts_are_confined_and_given_back() {
    use std::sync::Arc;
    let _serial = serial();
    let signo = rtmin() + 13;
    let ms = mask_signal().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let spawners: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    // Each new thread starts another one in turn.
                    std::thread::spawn(|| std::thread::spawn(|| ()).join().unwrap())
                        .join()
                        .unwrap();
                    // A breath between rounds: on one CPU, three spawners that never pause leave
                    // every pass of the confinement a thread it has not seen yet (about 700 in
                    // its 5 s), which no host's pools do; with it, threads still start all
                    // along while each watch is confined.
                    std::thread::sleep(Duration::from_micros(300));
                }
            })
        })
        .collect();
    for round in 0..20 {
        let w = Watch::new(&[signo]).unwrap();
        assert!(w.ordered(), "round {round}");
        for i in 0..200 {
            sigqueue(me(), signo, i).unwrap();
        }
        let got: Vec<i32> = (0..200).map(|_| recv(&w).value.unwrap()).collect();
        assert_eq!(got, (0..200).collect::<Vec<_>>(), "round {round}");
        // No delivery was handled on another thread than the receiver meanwhile.
        assert!(w.ordered(), "round {round}");
        drop(w);
    }
    stop.store(true, Ordering::SeqCst);
    for s in spawners {
        s.join().unwrap();
    }
    // Given back: only threads that block every signal (this crate's own) still block it.
    for (tid, mask) in confine::masks_now() {
        let has = |signo: i32| mask & 1u64 << (signo - 1) != 0;
        assert!(
            !has(signo) || has(ms),
            "thread {tid}: {mask:x}; {}",
            confine::tests_describe(tid)
        );
    }
}

/// The mask handler runs nested in another handler whose mask lets it in (here one that
/// returns as soon as the mask handler has run in it): that handler's return puts the
/// thread's old mask back, and the confinement must see it and change the thread again.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_thread_inside_another_handler_is_confined_once_that_handler_returns() {
    let _serial = serial();
    let signo = rtmin() + 14;
    let other = rtmin() + 2;
    static IN_HANDLER: AtomicBool = AtomicBool::new(false);
    extern "C" fn busy(_: libc::c_int) {
        IN_HANDLER.store(true, Ordering::SeqCst);
        let me = confine::tests_gettid();
        let runs = confine::tests_runs(me);
        let start = std::time::Instant::now();
        while confine::tests_runs(me) == runs && start.elapsed() < Duration::from_secs(10) {
            std::hint::spin_loop();
        }
        IN_HANDLER.store(false, Ordering::SeqCst);
    }
    /// Gives `other` its default action back however the test ends.
    struct Restore(i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            set_default(self.0).unwrap();
        }
    }
    // SAFETY: zeroed is "no flags, empty mask" (the mask signal gets in); the handler only
    // uses atomics, gettid and the clock.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = busy as *const () as libc::sighandler_t;
    set_action(other, &action).unwrap();
    let _restore = Restore(other);
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        tx.send((confine::tests_gettid(), me)).unwrap();
        stop_rx.recv().unwrap();
    });
    let (tid, thread) = rx.recv().unwrap();
    crate::testing::wait_until_in_syscall(tid, libc::SYS_futex);
    // SAFETY: the thread is alive (it waits for `stop`) and `other` has a handler.
    unsafe { libc::pthread_kill(thread, other) };
    crate::testing::wait_until("the thread runs the other handler", || {
        IN_HANDLER.load(Ordering::SeqCst)
    });
    let w = Watch::new(&[signo]).unwrap();
    assert!(w.ordered());
    // Once the thread is back in its wait (its own mask again), it blocks the signal.
    crate::testing::wait_until("the thread is back in its wait", || {
        !IN_HANDLER.load(Ordering::SeqCst)
    });
    crate::testing::wait_until_in_syscall(tid, libc::SYS_futex);
    assert!(
        confine::tests_runs(tid) >= 2,
        "{}",
        confine::tests_describe(tid)
    );
    assert!(
        confine::blocks(tid, signo),
        "{}",
        confine::tests_describe(tid)
    );
    assert!(w.ordered());
    drop(w);
    assert!(
        !confine::blocks(tid, signo),
        "{}",
        confine::tests_describe(tid)
    );
    stop_tx.send(()).unwrap();
    t.join().unwrap();
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn no_confinement_once_someone_else_took_the_mask_signal() {
    let _serial = serial();
    let signo = rtmin() + 12;
    let ms = mask_signal().unwrap();
    drop(Watch::new(&[signo]).unwrap()); // installs our mask handler
    /// Puts our handler back however the test ends (later tests need it).
    struct Restore(libc::sigaction);
    impl Drop for Restore {
        fn drop(&mut self) {
            set_action(mask_signal().unwrap(), &self.0).unwrap();
        }
    }
    let ours = current_action(ms).unwrap();
    let restore = Restore(ours);
    let mut ignore = ours;
    ignore.sa_sigaction = libc::SIG_IGN;
    set_action(ms, &ignore).unwrap();
    let w = Watch::new(&[signo]).unwrap();
    // No thread was signalled, none changed; the watch works, unordered.
    assert!(!w.ordered());
    for (tid, mask) in confine::masks_now() {
        let has = |signo: i32| mask & 1u64 << (signo - 1) != 0;
        assert!(!has(signo) || has(ms), "thread {tid}: {mask:x}");
    }
    sigqueue(me(), signo, 7).unwrap();
    assert_eq!(recv(&w).value, Some(7));
    drop(w);
    drop(restore);
    assert!(Watch::new(&[signo]).unwrap().ordered());
}

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "sigqueue is ENOSYS, and no real-time signals"
)]
fn an_unordered_watch_leaves_masks_alone() {
    let _serial = serial();
    let signo = rtmin() + 11;
    let w = Watch::with_options(&[signo], |_| true, false).unwrap();
    assert!(!w.ordered());
    #[cfg(any(target_os = "linux", target_os = "android"))]
    for (tid, mask) in confine::masks_now() {
        let has = |signo: i32| mask & 1u64 << (signo - 1) != 0;
        assert!(
            !has(signo) || has(confine::mask_signal()),
            "thread {tid}: {mask:x}"
        );
    }
    // Still receives every delivery.
    for i in 0..50 {
        sigqueue(me(), signo, i).unwrap();
    }
    let mut got: Vec<i32> = (0..50).map(|_| recv(&w).value.unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
}

#[test]
fn refuses_reserved_and_fault_signals() {
    for signo in [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGILL,
        wake_signal(),
        0,
        65,
    ] {
        assert_eq!(Watch::new(&[signo]).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(ignore(signo).unwrap_err().errno(), Errno::EINVAL);
    }
}

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "no real-time signals (SIGRTMIN+N)"
)]
fn ignore_is_refused_while_watched_and_chain_reaches_the_old_handler() {
    let _serial = serial();
    static OLD_CALLS: AtomicUsize = AtomicUsize::new(0);
    extern "C" fn old(_: libc::c_int) {
        OLD_CALLS.fetch_add(1, Ordering::SeqCst);
    }
    let signo = rtmin() + 9;
    // SAFETY: zeroed is "no flags, empty mask"; the handler is async-signal-safe.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = old as *const () as libc::sighandler_t;
    set_action(signo, &action).unwrap();
    let w = Watch::new(&[signo]).unwrap();
    assert_eq!(ignore(signo).unwrap_err().errno(), Errno::EBUSY);
    kill(me(), signo).unwrap();
    recv(&w);
    wait_for(|| OLD_CALLS.load(Ordering::SeqCst) == 1);
    // Someone replaces our handler: reclaim puts it back and chains to the newcomer.
    set_action(signo, &action).unwrap();
    assert!(reclaim(signo, true).unwrap());
    kill(me(), signo).unwrap();
    recv(&w);
    wait_for(|| OLD_CALLS.load(Ordering::SeqCst) == 2);
    drop(w);
    assert_eq!(
        current_action(signo).unwrap().sa_sigaction,
        action.sa_sigaction
    );
    set_default(signo).unwrap();
}

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "sigqueue is ENOSYS, and no real-time signals"
)]
fn next_waits_and_cancels() {
    let _serial = serial();
    let _pool = crate::wait::POOL_TESTS
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let signo = rtmin() + 10;
    let w = std::sync::Arc::new(Watch::new(&[signo]).unwrap());
    let canceller = Canceller::new();
    let (tx, rx) = mpsc::channel();
    let (w2, c2) = (w.clone(), canceller.clone());
    crate::wait::spawn(move || tx.send(w2.next(&c2)).unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    sigqueue(me(), signo, 9).unwrap();
    let got = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(got.value, Some(9));
    let (tx, rx) = mpsc::channel();
    let (w2, c2) = (w.clone(), canceller.clone());
    crate::wait::spawn(move || tx.send(w2.next(&c2)).unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    canceller.cancel();
    let r = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(r.unwrap_err().is_cancelled());
}
