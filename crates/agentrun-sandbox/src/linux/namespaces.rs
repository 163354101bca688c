//! The namespaces of a confined process: a fresh network namespace whose only interface is
//! its own loopback, brought up so that a test suite's own servers work; and a mount
//! namespace where the workspace's protected paths (`.git`) are bound read-only, a hole
//! Landlock cannot make in a tree it lets the process write.
//!
//! An unprivileged user may create these namespaces only inside a user namespace of its
//! own, where it is mapped to its own uid and gid (so file ownership and `getuid` look as
//! they do outside). Root creates them directly: a user namespace would cost it its rights
//! over files owned by other users.

use std::os::fd::AsRawFd;
use std::path::PathBuf;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};
use nix::unistd::{getgid, getuid};

use crate::launcher::{LaunchError, LaunchRequest};

/// Moves the calling process into the namespaces `request` needs: a network namespace with
/// loopback up, a mount namespace with the protected paths read-only. The process must be
/// single-threaded (a user namespace cannot be entered otherwise).
pub(crate) fn enter_namespaces(request: &LaunchRequest) -> Result<(), LaunchError> {
    let protected: Vec<PathBuf> = request
        .protected
        .iter()
        .filter(|path| path.exists())
        .cloned()
        .collect();
    let mut flags = CloneFlags::empty();
    if request.isolate_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    if !protected.is_empty() {
        flags |= CloneFlags::CLONE_NEWNS;
    }
    if flags.is_empty() {
        return Ok(());
    }
    let uid = getuid();
    let gid = getgid();
    let direct = !request.force_user_namespace && uid.is_root() && unshare(flags).is_ok();
    if !direct {
        unshare(CloneFlags::CLONE_NEWUSER | flags).map_err(|errno| {
            LaunchError::Namespace(format!(
                "cannot create a user namespace ({errno}); unprivileged user namespaces may be disabled (`sysctl kernel.unprivileged_userns_clone`, `user.max_user_namespaces`, or AppArmor's `kernel.apparmor_restrict_unprivileged_userns`)"
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
    if request.isolate_network {
        bring_loopback_up()?;
    }
    if !protected.is_empty() {
        bind_read_only(&protected)?;
    }
    Ok(())
}

/// Whether this process can create the namespaces it needs; `Err` says what is missing.
/// Root creates them directly; anyone else needs unprivileged user namespaces, which a
/// sysctl may turn off.
pub(crate) fn namespaces_available() -> Result<(), String> {
    if getuid().is_root() {
        return Ok(());
    }
    let setting = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
    };
    let refusals = [
        ("/proc/sys/user/max_user_namespaces", 0),
        ("/proc/sys/kernel/unprivileged_userns_clone", 0),
        ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", 1),
    ];
    for (path, refusing) in refusals {
        if setting(path) == Some(refusing) {
            return Err(format!(
                "unprivileged user namespaces are turned off ({path} is {refusing}), and the sandbox needs one for its network and mount namespaces"
            ));
        }
    }
    Ok(())
}

/// Binds each path read-only over itself, in this process's own mount namespace.
fn bind_read_only(paths: &[PathBuf]) -> Result<(), LaunchError> {
    let failed = |what: String, error: nix::Error| {
        LaunchError::Namespace(format!("cannot protect {what}: {error}"))
    };
    // Mounts made here must not propagate back to the host's namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|error| failed("the mount namespace".to_owned(), error))?;
    for path in paths {
        let shown = path.display().to_string();
        mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|error| failed(shown.clone(), error))?;
        mount(
            None::<&str>,
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|error| failed(shown.clone(), error))?;
    }
    Ok(())
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
