//! Reading a process's CPU time and memory from Linux `/proc`.
//!
//! * CPU: `utime + stime` (fields 14 and 15 of `/proc/<pid>/stat`, all threads of the process),
//!   in clock ticks. Linux reports these in `USER_HZ`, which is 100 on every architecture
//!   userspace sees (the kernel converts), so one tick is 10 ms.
//! * Memory: `VmRSS` (resident now) and `VmHWM` (peak resident) from `/proc/<pid>/status`, in kB.

use std::io;

/// Clock ticks per second of `/proc/<pid>/stat` CPU times (`USER_HZ`).
pub const TICKS_PER_SECOND: u64 = 100;

/// CPU time a process has used (user and system), in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    pub utime: u64,
    pub stime: u64,
}

impl CpuTimes {
    pub fn total_ticks(&self) -> u64 {
        self.utime + self.stime
    }

    /// Total CPU time in seconds.
    pub fn seconds(&self) -> f64 {
        self.total_ticks() as f64 / TICKS_PER_SECOND as f64
    }
}

/// Resident memory of a process, in kB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kb: u64,
    /// `VmHWM`: the peak resident size so far.
    pub hwm_kb: u64,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may
/// itself contain spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(text: &str) -> io::Result<CpuTimes> {
    let close = text.rfind(')').ok_or_else(|| invalid("no `)` after the command name".into()))?;
    // After ")": field 3 (state) is the first one, so field n is at index n - 3.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> io::Result<u64> {
        let s = fields.get(n - 3).ok_or_else(|| invalid(format!("stat has no field {n}")))?;
        s.parse().map_err(|_| invalid(format!("stat field {n} is not a number: {s:?}")))
    };
    Ok(CpuTimes { utime: field(14)?, stime: field(15)? })
}

/// Parses the text of `/proc/<pid>/status` for `VmRSS` and `VmHWM` (kB).
pub fn parse_status(text: &str) -> io::Result<Memory> {
    let kb = |key: &str| -> io::Result<u64> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')))
            .ok_or_else(|| invalid(format!("status has no {key}")))?;
        let num = line.trim().trim_end_matches("kB").trim();
        num.parse().map_err(|_| invalid(format!("{key} is not a number of kB: {line:?}")))
    };
    Ok(Memory { rss_kb: kb("VmRSS")?, hwm_kb: kb("VmHWM")? })
}

/// The CPU time process `pid` has used so far.
pub fn cpu_times(pid: u32) -> io::Result<CpuTimes> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?)
}

/// The resident and peak resident memory of process `pid`.
pub fn memory(pid: u32) -> io::Result<Memory> {
    parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_counted_after_the_command_name() {
        // A command name with spaces and a `)` inside, as the kernel allows.
        let line = "4242 (we ird) name) S 1 4242 4242 0 -1 4194560 1520 0 0 0 \
                    731 89 0 0 20 0 3 0 123456 10485760 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let t = parse_stat(line).unwrap();
        assert_eq!(t, CpuTimes { utime: 731, stime: 89 });
        assert_eq!(t.total_ticks(), 820);
        assert!((t.seconds() - 8.2).abs() < 1e-9);
    }

    #[test]
    fn stat_errors_are_typed() {
        assert!(parse_stat("no parens at all").is_err());
        assert!(parse_stat("1 (x) S 1 2").is_err());
        assert!(parse_stat("1 (x) S 1 2 3 4 5 6 7 8 9 10 abc 5").is_err());
    }

    #[test]
    fn status_memory_lines() {
        let text =
            "Name:\tbench\nVmPeak:\t  20000 kB\nVmHWM:\t    9120 kB\nVmRSS:\t    8004 kB\nThreads:\t3\n";
        assert_eq!(parse_status(text).unwrap(), Memory { rss_kb: 8004, hwm_kb: 9120 });
        assert!(parse_status("Name:\tx\nVmRSS:\t12 kB\n").is_err(), "VmHWM missing");
    }

    #[test]
    fn own_process_is_readable_and_cpu_time_grows() {
        let pid = std::process::id();
        let before = cpu_times(pid).unwrap();
        // Burn a little CPU (well over one 10 ms tick), then read again.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(120) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = cpu_times(pid).unwrap();
        assert!(after.total_ticks() > before.total_ticks(), "{before:?} -> {after:?}");

        let m = memory(pid).unwrap();
        assert!(m.rss_kb > 0);
        assert!(m.hwm_kb >= m.rss_kb, "peak {} below current {}", m.hwm_kb, m.rss_kb);
    }

    #[test]
    fn missing_process_is_an_io_error() {
        // PIDs are bounded by pid_max (at most 4,194,304), so this one cannot exist.
        assert!(cpu_times(u32::MAX).is_err());
        assert!(memory(u32::MAX).is_err());
    }
}
