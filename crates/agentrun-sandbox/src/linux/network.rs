//! The network half of the Linux sandbox: a fresh network namespace whose only interface is
//! its own loopback, brought up so that a test suite's own servers work.
//!
//! An unprivileged user may create a network namespace only inside a user namespace of its
//! own, where it is mapped to its own uid and gid (so file ownership and `getuid` look as
//! they do outside). Root creates the network namespace directly: a user namespace would
//! cost it its rights over files owned by other users.

use std::os::fd::AsRawFd;

use nix::sched::{CloneFlags, unshare};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};
use nix::unistd::{getgid, getuid};

use crate::launcher::LaunchError;

/// Moves the calling process into a new network namespace with loopback up. The process
/// must be single-threaded (a user namespace cannot be entered otherwise).
pub(crate) fn isolate_network(force_user_namespace: bool) -> Result<(), LaunchError> {
    let uid = getuid();
    let gid = getgid();
    let direct =
        !force_user_namespace && uid.is_root() && unshare(CloneFlags::CLONE_NEWNET).is_ok();
    if !direct {
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET).map_err(|errno| {
            LaunchError::Namespace(format!(
                "cannot create a user and network namespace ({errno}); unprivileged user namespaces may be disabled (`sysctl kernel.unprivileged_userns_clone`, `user.max_user_namespaces`, or AppArmor's `kernel.apparmor_restrict_unprivileged_userns`)"
            ))
        })?;
        let write = |file: &str, text: String| {
            std::fs::write(format!("/proc/self/{file}"), text).map_err(|error| {
                LaunchError::Namespace(format!("cannot write /proc/self/{file}: {error}"))
            })
        };
        // The kernel requires setgroups to be denied before an unprivileged gid_map.
        write("setgroups", "deny".to_owned())?;
        write("uid_map", format!("{uid} {uid} 1"))?;
        write("gid_map", format!("{gid} {gid} 1"))?;
    }
    bring_loopback_up()
}

/// `ip link set lo up`, as one rtnetlink request.
fn bring_loopback_up() -> Result<(), LaunchError> {
    let failed = |what: &str, error: nix::Error| {
        LaunchError::Namespace(format!("cannot bring loopback up: {what}: {error}"))
    };
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(|error| failed("netlink socket", error))?;
    let kernel = NetlinkAddr::new(0, 0);
    sendto(
        fd.as_raw_fd(),
        &link_up_request(),
        &kernel,
        MsgFlags::empty(),
    )
    .map_err(|error| failed("send", error))?;
    let mut answer = [0u8; 1024];
    let read = recv(fd.as_raw_fd(), &mut answer, MsgFlags::empty())
        .map_err(|error| failed("receive", error))?;
    match acknowledgement(&answer[..read]) {
        Some(0) => Ok(()),
        Some(errno) => Err(failed(
            "the kernel refused",
            nix::Error::from_raw(errno.saturating_neg()),
        )),
        None => Err(LaunchError::Namespace(
            "cannot bring loopback up: the kernel's answer is not an acknowledgement".to_owned(),
        )),
    }
}

/// The interface index of loopback: the kernel gives it 1 in every network namespace.
const LOOPBACK_INDEX: i32 = 1;
const RTM_NEWLINK: u16 = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const IFF_UP: u32 = 1;

/// An `RTM_NEWLINK` message (`nlmsghdr` then `ifinfomsg`) that sets `IFF_UP` on loopback.
fn link_up_request() -> [u8; 32] {
    let mut message = [0u8; 32];
    message[0..4].copy_from_slice(&32u32.to_ne_bytes());
    message[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
    message[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    message[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // ifinfomsg: family AF_UNSPEC, padding, device type 0, then index, flags, change mask.
    message[20..24].copy_from_slice(&LOOPBACK_INDEX.to_ne_bytes());
    message[24..28].copy_from_slice(&IFF_UP.to_ne_bytes());
    message[28..32].copy_from_slice(&IFF_UP.to_ne_bytes());
    message
}

/// The error code of an `NLMSG_ERROR` answer (0 acknowledges success).
fn acknowledgement(answer: &[u8]) -> Option<i32> {
    let kind = u16::from_ne_bytes(answer.get(4..6)?.try_into().ok()?);
    if kind != NLMSG_ERROR {
        return None;
    }
    Some(i32::from_ne_bytes(answer.get(16..20)?.try_into().ok()?))
}
