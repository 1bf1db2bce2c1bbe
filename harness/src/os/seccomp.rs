//! The seccomp-bpf filter a traced target installs before `exec`: `SECCOMP_RET_TRACE` for
//! the syscalls of the trapped classes, `SECCOMP_RET_ALLOW` for everything else, so the
//! target runs at full speed between the calls the tracer cares about.
//!
//! The filter is built before `fork` (the child must not allocate) and installed from
//! `pre_exec` with the raw `seccomp(2)` call. It never traps `execve`: between the filter
//! and the tracer's options a trapped call would fail with ENOSYS.

use std::io;

use crate::syscalls::ClassSet;

/// `AUDIT_ARCH_X86_64`: calls made in another ABI (32-bit `int 0x80`) are let through.
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// Syscall numbers with this bit set are the x32 ABI: let through.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// Offsets in `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;

/// A built filter program.
pub struct Filter {
    program: Vec<libc::sock_filter>,
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

impl Filter {
    /// The filter trapping every syscall of `classes`.
    pub fn new(classes: &ClassSet) -> Filter {
        use libc::{BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
        let mut numbers: Vec<u32> = classes
            .iter()
            .flat_map(|c| c.syscalls().iter().map(|&(nr, _)| nr as u32))
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        let n = numbers.len();
        assert!(n < 250, "a jump offset fits in a byte");
        // Layout: [0] load arch, [1] arch? else → ALLOW, [2] load nr, [3] x32? → ALLOW,
        // [4 .. 4+n] nr == k → TRACE, [4+n] ALLOW, [5+n] TRACE.
        let allow = 4 + n;
        let trace = 5 + n;
        let mut program = vec![
            stmt(BPF_LD | BPF_W | BPF_ABS, ARCH_OFFSET),
            jump(
                BPF_JMP | BPF_JEQ | BPF_K,
                AUDIT_ARCH_X86_64,
                0,
                (allow - 2) as u8,
            ),
            stmt(BPF_LD | BPF_W | BPF_ABS, NR_OFFSET),
            jump(
                BPF_JMP | BPF_JGE | BPF_K,
                X32_SYSCALL_BIT,
                (allow - 4) as u8,
                0,
            ),
        ];
        for (i, &nr) in numbers.iter().enumerate() {
            let at = 4 + i;
            program.push(jump(
                BPF_JMP | BPF_JEQ | BPF_K,
                nr,
                (trace - at - 1) as u8,
                0,
            ));
        }
        program.push(stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW));
        program.push(stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_TRACE));
        Filter { program }
    }

    /// Installs the filter on the calling thread. Runs between `fork` and `exec`: it makes
    /// only system calls and allocates nothing.
    pub fn install(&self) -> io::Result<()> {
        let program = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        let set = || {
            // SAFETY: `program` points at a live, well-formed filter for the whole call.
            unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &program as *const libc::sock_fprog,
                )
            }
        };
        if set() == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EACCES) {
            return Err(error);
        }
        // Without CAP_SYS_ADMIN a filter needs no-new-privs (setuid programs then run
        // without their privileges, which a test target does not need).
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if set() == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.program.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscalls::SyscallClass;

    /// Runs the filter program on a (arch, nr) pair, as the kernel would.
    fn verdict(filter: &Filter, arch: u32, nr: u32) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let op = &filter.program[pc];
            let code = op.code as u32;
            match code & 0x07 {
                libc::BPF_LD => {
                    acc = if op.k == ARCH_OFFSET { arch } else { nr };
                    pc += 1;
                }
                libc::BPF_JMP => {
                    let taken = match code & 0xf0 {
                        libc::BPF_JEQ => acc == op.k,
                        libc::BPF_JGE => acc >= op.k,
                        other => panic!("unexpected jump {other:#x}"),
                    };
                    pc += 1 + if taken { op.jt } else { op.jf } as usize;
                }
                libc::BPF_RET => return op.k,
                other => panic!("unexpected class {other:#x}"),
            }
        }
    }

    #[test]
    fn traps_exactly_the_classes_asked_for() {
        let classes: ClassSet = [SyscallClass::Write, SyscallClass::Rename]
            .into_iter()
            .collect();
        let filter = Filter::new(&classes);
        assert_eq!(filter.len(), 4 + 8 + 2);
        for class in SyscallClass::ALL {
            for &(nr, name) in class.syscalls() {
                let expected = if classes.contains(&class) {
                    libc::SECCOMP_RET_TRACE
                } else {
                    libc::SECCOMP_RET_ALLOW
                };
                assert_eq!(
                    verdict(&filter, AUDIT_ARCH_X86_64, nr as u32),
                    expected,
                    "{name}"
                );
            }
        }
        assert_eq!(
            verdict(&filter, AUDIT_ARCH_X86_64, 59),
            libc::SECCOMP_RET_ALLOW,
            "execve"
        );
        assert_eq!(
            verdict(&filter, 0x4000_0003, 1),
            libc::SECCOMP_RET_ALLOW,
            "another ABI"
        );
        assert_eq!(
            verdict(&filter, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 1),
            libc::SECCOMP_RET_ALLOW,
            "x32"
        );
        let empty = Filter::new(&ClassSet::new());
        assert_eq!(
            verdict(&empty, AUDIT_ARCH_X86_64, 1),
            libc::SECCOMP_RET_ALLOW
        );
    }
}
