//! Landing a strike: whose turn it is, rewinding a call an entry strike lands at,
//! sending the signal, and telling a call the kernel restarts after a signal from the next
//! call.

use std::sync::atomic::Ordering;

use nix::sys::ptrace;
use nix::unistd::Pid;

use super::decode::add_offset;
use super::serve::Tracer;
use crate::os::procfs;
use crate::outcome::StruckProcess;
use crate::strike::Recipient;
use crate::syscalls::{Event, SyscallClass, What};

/// A call as a task made it (number, arguments, instruction and stack pointer), to know
/// the same call when it is made again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Replay {
    pub(super) nr: u64,
    pub(super) args: [u64; 6],
    pub(super) ip: u64,
    pub(super) sp: u64,
}

/// The kernel's "restart this call" return values (ERESTARTSYS, ERESTARTNOINTR,
/// ERESTARTNOHAND, ERESTART_RESTARTBLOCK): a tracer sees them when a signal interrupts a
/// call that then runs again.
pub(super) const RESTARTS: [i64; 4] = [-512, -513, -514, -516];

impl Tracer {
    /// A trapped call that a signal interrupted will run again (the kernel restarts it):
    /// that run is the same call, not the next one.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn note_restart(&mut self, tid: i32) {
        let Ok(regs) = ptrace::getregs(Pid::from_raw(tid)) else {
            return;
        };
        let trapped = SyscallClass::of(regs.orig_rax as i64)
            .is_some_and(|(class, _)| self.setup.classes.contains(&class));
        if trapped
            && RESTARTS.contains(&(regs.rax as i64))
            && let Some(task) = self.tasks.get_mut(&tid)
        {
            task.replay = Some(Replay {
                nr: regs.orig_rax,
                args: [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9],
                ip: regs.rip,
                sp: regs.rsp,
            });
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn note_restart(&mut self, _tid: i32) {}

    /// The plan strike whose turn it is (every one before it has been dealt with).
    pub(super) fn turn(&self) -> usize {
        let progress = self.link.progress.lock().unwrap_or_else(|e| e.into_inner());
        progress.next
    }

    /// Whether every strike before plan strike `i` has been dealt with.
    pub(super) fn its_turn(&self, i: usize) -> bool {
        self.turn() == self.setup.strikes[i].index
    }

    /// Skips the call the task is stopped at and moves it back onto the `syscall`
    /// instruction, so that it runs again once the signal has been dealt with.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn rewind(&mut self, tid: i32, nr: u64) {
        let pid = Pid::from_raw(tid);
        match ptrace::getregs(pid) {
            Ok(mut regs) => {
                regs.orig_rax = u64::MAX; // -1: do not run the call now
                regs.rax = nr; // the call number, for when it runs again
                regs.rip -= 2; // `syscall` is two bytes long
                if let Err(e) = ptrace::setregs(pid, regs) {
                    self.log.failure = Some(format!("PTRACE_SETREGS failed: {e}"));
                }
            }
            Err(e) => self.log.failure = Some(format!("PTRACE_GETREGS failed: {e}")),
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn rewind(&mut self, _tid: i32, _nr: u64) {
        self.log.failure = Some("entry strikes are implemented for x86_64 only".into());
    }

    /// Sends strike `i`'s signal: to the thread that made the call, or to the group —
    /// the target's, or for a strike limited to a process, the struck process's own.
    pub(super) fn fire(&mut self, i: usize, tid: i32, tgid: i32, mut event: Event) {
        let strike = &self.setup.strikes[i];
        let signal = strike.signal.number();
        if let What::Syscall(call) = &mut event.what
            && strike.class == SyscallClass::Write
        {
            add_offset(tid, call);
        }
        let caught = procfs::catches(tgid, signal);
        // SAFETY: plain signal-sending syscalls with integer arguments.
        let sent = unsafe {
            match strike.to {
                // At the thread that made the call, unless it blocks the signal (a program
                // that leaves signals to one `sigwait` thread): then to the process.
                Recipient::Process if procfs::blocks(tid, signal) => libc::kill(tgid, signal) == 0,
                Recipient::Process => libc::syscall(libc::SYS_tgkill, tgid, tid, signal) == 0,
                // "That process, and its group": a child that made a group of its own (a
                // shell's job, a daemon) is signalled with it, one that did not with the
                // target's whole group.
                Recipient::Group if strike.process.is_some() => {
                    procfs::stat(tgid).is_some_and(|s| libc::kill(-s.pgid, signal) == 0)
                }
                Recipient::Group => libc::kill(-self.main, signal) == 0,
            }
        };
        let struck = StruckProcess {
            pid: tgid,
            program: self.programs.get(&tgid).cloned().unwrap_or_default(),
        };
        let index = strike.index;
        let mut progress = self.link.progress.lock().unwrap_or_else(|e| e.into_inner());
        let record = &mut progress.records[index];
        record.caught = caught;
        record.hit = Some(event);
        if sent {
            record.struck = Some(struck);
            record.sent_at = Some(self.start.elapsed());
            self.link.struck.store(true, Ordering::SeqCst);
        }
        progress.next = index + 1;
        drop(progress);
        self.link.wake();
    }
}
