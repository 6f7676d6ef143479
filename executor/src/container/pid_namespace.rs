//! Entering a new PID namespace behind a tiny init, between fork and exec.
//!
//! PID 1 of a namespace ignores every signal it has no handler for, so a
//! task that ran as PID 1 would shrug off SIGTERM and get no grace. The task
//! is therefore PID 2, and two helpers of ours stay around it, as tini and
//! dumb-init do:
//!
//! ```text
//! executor ── relay (outside, the executor's child) ─┬─ init (PID 1)
//!                                                     └─ task (PID 2) ── its children
//! ```
//!
//! - The relay forwards the signals in [`FORWARDED`] to the init, waits for
//!   the task (its own child, so it sees the task's real exit status),
//!   then SIGKILLs the init, which takes down everything left in the
//!   namespace, and exits the way the task did.
//! - The init reaps orphans and sends each forwarded signal to every
//!   process of the namespace (`kill(-1)` from PID 1 reaches exactly the
//!   namespace, itself excepted).
//!
//! So a graceful kill signals the relay only (the executor's direct child):
//! every process of the namespace then gets the signal exactly once.
//!
//! Everything here runs in a forked child of a multi-threaded process:
//! async-signal-safe syscalls on stack data only, no allocation.

/// The signals the relay and the init pass on.
pub const FORWARDED: [i32; 6] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// The forwarded signals plus SIGCHLD, blocked in the helpers and taken
/// with `sigwaitinfo`, so no handler (the executor's, inherited) ever runs.
fn helper_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset only write the stack value they get.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in FORWARDED {
            libc::sigaddset(&mut set, signal);
        }
        libc::sigaddset(&mut set, libc::SIGCHLD);
        set
    }
}

/// Called after `unshare(CLONE_NEWPID | CLONE_NEWNS)`. Returns only in the
/// task (PID 2), with `/proc` remounted; the relay and the init never
/// return.
pub fn enter() -> std::io::Result<()> {
    let set = helper_signals();
    // SAFETY (whole block): async-signal-safe syscalls on static strings and
    // stack values, between fork and exec.
    unsafe {
        // Keep the /proc remount inside this mount namespace.
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        // Block before forking: a signal sent to a helper before its loop
        // starts waits for the loop instead of killing it.
        let mut previous: libc::sigset_t = std::mem::zeroed();
        if libc::sigprocmask(libc::SIG_BLOCK, &set, &mut previous) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The first child in the new namespace is its PID 1.
        let init = libc::fork();
        if init < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if init == 0 {
            run_init(&set);
        }
        let task = libc::fork();
        if task < 0 {
            let err = std::io::Error::last_os_error();
            libc::kill(init, libc::SIGKILL);
            return Err(err);
        }
        if task > 0 {
            run_relay(init, task, &set);
        }
        libc::sigprocmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        if libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            flags,
            std::ptr::null(),
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Waits for the next signal of `set`.
///
/// # Safety
/// Only in a helper, with `set` blocked.
unsafe fn next_signal(set: &libc::sigset_t) -> i32 {
    loop {
        // SAFETY: sigwaitinfo with a null info pointer is allowed.
        let signal = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
        if signal > 0 {
            return signal;
        }
    }
}

/// The namespace's PID 1: reap, and pass forwarded signals to every
/// process of the namespace. Holds no fds, so the task's exec is what the
/// executor waits for, and the task's pipes close with the task's
/// processes. Dies only by the relay's SIGKILL.
unsafe fn run_init(set: &libc::sigset_t) -> ! {
    // SAFETY: async-signal-safe syscalls; we are the forked init.
    unsafe {
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        loop {
            let signal = next_signal(set);
            if signal == libc::SIGCHLD {
                let mut status = 0;
                while libc::waitpid(-1, &mut status, libc::WNOHANG) > 0 {}
            } else {
                libc::kill(-1, signal);
            }
        }
    }
}

/// The executor's child: forward signals to the init until the task exits,
/// then end the namespace and exit the way the task did, so the
/// supervisor sees the task's own status.
unsafe fn run_relay(init: libc::pid_t, task: libc::pid_t, set: &libc::sigset_t) -> ! {
    // SAFETY: async-signal-safe syscalls; we are the forked relay.
    unsafe {
        // Keep only stdio: the executor's spawn waits until the task's exec
        // closes the last copy of its error pipe.
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        let status = 'wait: loop {
            let signal = next_signal(set);
            if signal != libc::SIGCHLD {
                libc::kill(init, signal);
                continue;
            }
            loop {
                let mut reaped = 0;
                let pid = libc::waitpid(-1, &mut reaped, libc::WNOHANG);
                if pid <= 0 {
                    break;
                }
                if pid == task {
                    break 'wait reaped;
                }
            }
        };
        // The task is gone: SIGKILL from outside the namespace ends its
        // init and, with it, every process left in the namespace.
        libc::kill(init, libc::SIGKILL);
        while libc::waitpid(init, std::ptr::null_mut(), 0) < 0
            && *libc::__errno_location() == libc::EINTR
        {}
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            let mut only: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut only);
            libc::sigaddset(&mut only, signal);
            libc::signal(signal, libc::SIG_DFL);
            libc::sigprocmask(libc::SIG_UNBLOCK, &only, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}
