//! Unit tests of the socket module (its parts together).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::sys::socket::sockopt;

use super::ancillary::SCM_MAX_FD;
use super::receive::SCRATCH;
use super::*;
use crate::sys::libc;

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "no SOCK_SEQPACKET UNIX sockets"
)]
fn seqpacket_keeps_boundaries_and_passes_fds() {
    let (a, b) = socketpair(Kind::Seqpacket).unwrap();
    let (p, q) = socketpair(Kind::Stream).unwrap();
    send(a.as_fd(), b"one", &[p.as_fd()], None, true).unwrap();
    send(a.as_fd(), b"three", &[], None, true).unwrap();
    let m1 = receive(b.as_fd(), true).unwrap().unwrap();
    assert_eq!(m1.data, b"one");
    assert_eq!(m1.fds.len(), 1);
    // SAFETY: F_GETFD takes no pointer.
    let fl = unsafe { libc::fcntl(m1.fds[0].as_raw_fd(), libc::F_GETFD) };
    assert_eq!(fl & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    send(m1.fds[0].as_fd(), b"via", &[], None, true).unwrap();
    assert_eq!(receive(q.as_fd(), true).unwrap().unwrap().data, b"via");
    assert_eq!(receive(b.as_fd(), true).unwrap().unwrap().data, b"three");
    assert!(receive(b.as_fd(), true).unwrap().is_none());
    send(a.as_fd(), b"", &[], None, true).unwrap();
    assert!(!receive(b.as_fd(), true).unwrap().unwrap().end);
    drop(a);
    assert!(receive(b.as_fd(), true).unwrap().unwrap().end);
}

/// Descriptors sent to a receiver that does not accept them are closed at once: the write
/// end of a pipe, sent and closed by its sender, leaves its read end at end of file.
#[test]
fn unaccepted_descriptors_are_closed() {
    for kind in [Kind::Datagram, Kind::Seqpacket, Kind::Stream] {
        if cfg!(not(any(target_os = "linux", target_os = "android"))) && kind == Kind::Seqpacket {
            continue;
        }
        let (a, b) = socketpair(kind).unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        set_nonblocking(r.as_fd(), true).unwrap();
        let many = vec![w.as_fd(); SCM_MAX_FD];
        send(a.as_fd(), b"x", &many, None, true).unwrap();
        drop(w);
        let mut buf = [0u8; 8];
        let got = receive_into(b.as_fd(), &mut buf, true, false)
            .unwrap()
            .unwrap();
        assert_eq!((got.len, buf[0], got.fds.len()), (1, b'x', 0), "{kind:?}");
        assert!(got.fds_dropped && !got.end, "{kind:?}");
        let mut byte = [0u8; 1];
        assert_eq!(
            nix::unistd::read(&r, &mut byte),
            Ok(0),
            "{kind:?}: a write end is left"
        );
        // Without descriptors, nothing is reported dropped.
        send(a.as_fd(), b"y", &[], None, true).unwrap();
        let got = receive_into(b.as_fd(), &mut buf, true, false)
            .unwrap()
            .unwrap();
        assert!(!got.fds_dropped, "{kind:?}");
    }
}

/// A message of `len` bytes that tells its position in each byte.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

/// Lets `fd` send messages of `bytes`: `SO_SNDBUFFORCE` (root), else `SO_SNDBUF` (capped
/// by `wmem_max`); the largest message it can send then.
fn grow_sndbuf(fd: &OwnedFd, bytes: usize) -> usize {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let forced = nix_socket::setsockopt(fd, sockopt::SndBufForce, &bytes).is_ok();
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let forced = false;
    if !forced {
        nix_socket::setsockopt(fd, sockopt::SndBuf, &bytes).unwrap();
    }
    nix_socket::getsockopt(fd, sockopt::SndBuf).unwrap() - 64
}

/// Messages larger than the caller's buffer and than `receive`'s scratch come whole, in
/// order, with nothing lost before or after them.
fn large_messages_come_whole(kind: Kind) {
    let (a, b) = socketpair(kind).unwrap();
    let big = pattern(grow_sndbuf(&a, 3 << 20).min(3 << 20), 1);
    assert!(
        big.len() > SCRATCH,
        "the socket can send {} bytes",
        big.len()
    );
    for round in 0..2 {
        send(a.as_fd(), b"before", &[], None, true).unwrap();
        send(a.as_fd(), &big, &[], None, false).unwrap();
        send(a.as_fd(), b"after", &[], None, true).unwrap();
        let mut buf = [0u8; 16];
        let first = receive_into(b.as_fd(), &mut buf, true, true)
            .unwrap()
            .unwrap();
        assert_eq!(
            (first.len, &buf[..6], first.rest.len()),
            (6, &b"before"[..], 0)
        );
        if round == 0 {
            let got = receive_into(b.as_fd(), &mut buf, true, true)
                .unwrap()
                .unwrap();
            assert_eq!(got.len, big.len());
            assert_eq!(&buf[..], &big[..16]);
            assert!(got.rest == big[16..], "the rest of the message");
        } else {
            assert!(receive(b.as_fd(), true).unwrap().unwrap().data == big);
        }
        assert_eq!(receive(b.as_fd(), true).unwrap().unwrap().data, b"after");
        assert!(receive(b.as_fd(), true).unwrap().is_none());
    }
    let mut empty = [0u8; 0];
    send(a.as_fd(), b"xyz", &[], None, true).unwrap();
    let got = receive_into(b.as_fd(), &mut empty, true, true)
        .unwrap()
        .unwrap();
    assert_eq!((got.len, &got.rest[..]), (3, &b"xyz"[..]));
}

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "no SOCK_SEQPACKET UNIX sockets"
)]
fn large_messages_come_whole_seqpacket() {
    large_messages_come_whole(Kind::Seqpacket);
}

#[test]
fn large_messages_come_whole_dgram() {
    large_messages_come_whole(Kind::Datagram);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn large_messages_come_whole_without_the_overflow_area() {
    overflow::disable();
    large_messages_come_whole(Kind::Seqpacket);
    large_messages_come_whole(Kind::Datagram);
}

#[test]
fn stream_receive_takes_what_is_queued() {
    let (a, b) = socketpair(Kind::Stream).unwrap();
    let big = pattern(100_000, 9);
    send(a.as_fd(), &big, &[], None, true).unwrap();
    let mut got = Vec::new();
    while got.len() < big.len() {
        got.extend(receive(b.as_fd(), true).unwrap().unwrap().data);
    }
    assert!(got == big);
    drop(a);
    assert!(receive(b.as_fd(), true).unwrap().unwrap().end);
}

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "SCM_CREDENTIALS is Linux-only (ENOSYS elsewhere)"
)]
fn credentials_and_kind() {
    let (a, b) = socketpair(Kind::Datagram).unwrap();
    assert_eq!(socket_kind(a.as_fd()).unwrap(), Kind::Datagram);
    let me = peer_credentials(a.as_fd()).unwrap();
    assert_eq!(me.pid, std::process::id() as i32);
    set_pass_credentials(b.as_fd(), true).unwrap();
    send(a.as_fd(), b"", &[], None, true).unwrap();
    let m = receive(b.as_fd(), true).unwrap().unwrap();
    assert!(m.data.is_empty());
    assert!(!m.end);
    assert_eq!(m.credentials, Some(me));
}

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "abstract names are Linux-only (ENOSYS elsewhere)"
)]
fn abstract_bind_and_errors() {
    let name = format!("ipckit-test-{}", std::process::id()).into_bytes();
    let server = socket(Kind::Datagram, false).unwrap();
    bind(
        server.as_fd(),
        &Address::Abstract(name.clone()),
        BindOptions::default(),
    )
    .unwrap();
    let again = socket(Kind::Datagram, false).unwrap();
    let e = bind(
        again.as_fd(),
        &Address::Abstract(name.clone()),
        BindOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "EADDRINUSE");
    let client = socket(Kind::Datagram, false).unwrap();
    send(
        client.as_fd(),
        b"hi",
        &[],
        Some(&Address::Abstract(name.clone())),
        true,
    )
    .unwrap();
    let m = receive(server.as_fd(), true).unwrap().unwrap();
    assert_eq!(m.from, None);
    let mut named = name.clone();
    named.extend_from_slice(b"-client");
    bind(
        client.as_fd(),
        &Address::Abstract(named.clone()),
        BindOptions::default(),
    )
    .unwrap();
    send(
        client.as_fd(),
        b"hi",
        &[],
        Some(&Address::Abstract(name.clone())),
        true,
    )
    .unwrap();
    let m = receive(server.as_fd(), true).unwrap().unwrap();
    assert_eq!(m.from, Some(Address::Abstract(named)));
    let e = connect(client.as_fd(), &Address::Path(b"/nonexistent/x".to_vec())).unwrap_err();
    assert_eq!((e.code().as_str(), e.syscall()), ("ENOENT", "connect"));
}

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "android")),
    ignore = "seqpacket sockets are Linux-only"
)]
fn replace_stale_leaves_live_sockets_undisturbed() {
    let dir = std::env::temp_dir().join(format!("ipckit-stale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| Address::Path(dir.join(name).as_os_str().as_bytes().to_vec());
    let replace = BindOptions {
        mode: None,
        replace_stale: true,
    };
    for kind in [Kind::Seqpacket, Kind::Stream, Kind::Datagram] {
        let at = path(&format!("{kind:?}.sock"));
        let live = socket(kind, true).unwrap();
        bind(live.as_fd(), &at, BindOptions::default()).unwrap();
        if kind != Kind::Datagram {
            listen(live.as_fd(), 8).unwrap();
        }
        let other = socket(kind, true).unwrap();
        let e = bind(other.as_fd(), &at, replace).unwrap_err();
        assert_eq!((e.code().as_str(), e.syscall()), ("EADDRINUSE", "bind"));
        // The probe made no connection and sent nothing.
        if kind == Kind::Datagram {
            assert!(receive(live.as_fd(), true).unwrap().is_none());
        } else {
            assert!(accept(live.as_fd()).unwrap().is_none(), "{kind:?}");
        }
        drop(live);
        // Now stale: replaced.
        bind(other.as_fd(), &at, replace).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
