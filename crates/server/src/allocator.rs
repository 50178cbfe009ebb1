//! Memory statistics: what the allocator (jemalloc) has handed out, and the process's resident
//! set size, for INFO memory and `maxmemory`.
//!
//! jemalloc caches its statistics; [`AllocatorStats::read`] refreshes them (advancing its
//! "epoch") before reading, which is cheap enough for INFO and the once-a-second cron.

use std::ffi::CStr;

/// jemalloc's view of the heap, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllocatorStats {
    /// Bytes in live allocations (`used_memory`).
    pub allocated: u64,
    /// Bytes in active pages (`allocator_active`).
    pub active: u64,
    /// Bytes in physically resident pages (`allocator_resident`).
    pub resident: u64,
}

/// Reads a `size_t` statistic; 0 when jemalloc does not know it.
fn read_size(name: &CStr) -> u64 {
    let mut value: libc::size_t = 0;
    let mut length = std::mem::size_of::<libc::size_t>();
    // SAFETY: `name` is NUL-terminated; `value` and `length` are live and describe a size_t,
    // which is the type of every statistic read here.
    let status = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            &mut value as *mut libc::size_t as *mut libc::c_void,
            &mut length,
            std::ptr::null_mut(),
            0,
        )
    };
    if status == 0 {
        value as u64
    } else {
        0
    }
}

/// Makes jemalloc refresh its cached statistics.
fn advance_epoch() {
    let mut epoch: u64 = 1;
    let mut length = std::mem::size_of::<u64>();
    // SAFETY: "epoch" reads and writes a uint64_t; both pointers are live for the call.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"epoch".as_ptr(),
            &mut epoch as *mut u64 as *mut libc::c_void,
            &mut length,
            &mut epoch as *mut u64 as *mut libc::c_void,
            std::mem::size_of::<u64>(),
        );
    }
}

impl AllocatorStats {
    pub fn read() -> Self {
        advance_epoch();
        AllocatorStats {
            allocated: read_size(c"stats.allocated"),
            active: read_size(c"stats.active"),
            resident: read_size(c"stats.resident"),
        }
    }
}

/// Bytes in live allocations now.
pub fn allocated_bytes() -> u64 {
    AllocatorStats::read().allocated
}

/// The process's resident set size in bytes (from /proc; 0 where unavailable).
pub fn resident_set_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page_size.max(0) as u64
}

/// Total physical memory in bytes (INFO `total_system_memory`).
pub fn total_system_memory_bytes() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    pages.max(0) as u64 * page_size.max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_set_is_known_on_linux() {
        assert!(resident_set_bytes() > 0);
        assert!(total_system_memory_bytes() > 0);
    }
}
