//! Memory statistics: what the allocator (jemalloc) has handed out, and the process's resident
//! set size, for INFO memory and `maxmemory`.
//!
//! jemalloc caches its statistics; [`AllocatorStats::read`] refreshes them (advancing its
//! "epoch") before reading, which is cheap enough for INFO and the once-a-second cron.
//!
//! `used_memory` (what `maxmemory` is compared with, before every command while a limit is set)
//! must be exact and cheap, like Redis's own allocation counter. jemalloc keeps, for every
//! thread, the bytes it allocated and freed so far (`thread.allocatedp`, `thread.deallocatedp`:
//! pointers to two counters it updates on every allocation). Threads register themselves
//! ([`register_current_thread`], from the runtime's thread-start hook and at start-up), and
//! [`used_memory_bytes`] sums allocated minus freed over the registered threads plus what the
//! threads that ended left behind. A few plain loads, no epoch refresh, no lock contention.

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

/// What an allocation of `bytes` really takes: jemalloc rounds every request up to a size
/// class (up to a quarter more for large buffers), and `used_memory` counts the classes.
pub fn allocation_bytes(bytes: usize) -> usize {
    if bytes == 0 {
        return 0;
    }
    // SAFETY: nallocx only computes a size class; it allocates nothing.
    let size = unsafe { tikv_jemalloc_sys::nallocx(bytes, 0) };
    if size == 0 {
        bytes
    } else {
        size
    }
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

/// Bytes in live allocations now (jemalloc's merged statistics: INFO `allocator_allocated`).
pub fn allocated_bytes() -> u64 {
    AllocatorStats::read().allocated
}

/// Reads a pointer-valued statistic of the calling thread; null when unavailable.
fn read_thread_pointer(name: &CStr) -> *const u64 {
    let mut value: *mut u64 = std::ptr::null_mut();
    let mut length = std::mem::size_of::<*mut u64>();
    // SAFETY: `name` is NUL-terminated; `thread.allocatedp` and `thread.deallocatedp` read a
    // `uint64_t *`, which `value` and `length` describe.
    let status = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            &mut value as *mut *mut u64 as *mut libc::c_void,
            &mut length,
            std::ptr::null_mut(),
            0,
        )
    };
    if status == 0 {
        value
    } else {
        std::ptr::null()
    }
}

/// One registered thread's jemalloc counters.
struct ThreadCounters {
    thread: std::thread::ThreadId,
    allocated: *const u64,
    deallocated: *const u64,
}

// SAFETY: the pointers are only read, under the registry lock, while their thread is registered
// (a thread unregisters itself before it ends, and its counters live as long as it does).
unsafe impl Send for ThreadCounters {}
unsafe impl Sync for ThreadCounters {}

impl ThreadCounters {
    /// Bytes this thread allocated minus bytes it freed.
    fn balance(&self) -> i64 {
        // SAFETY: see the Send impl; the counters are plain u64 that their thread updates, a
        // torn read is impossible on 64-bit targets and a slightly stale one is harmless.
        let (allocated, deallocated) = unsafe {
            (
                std::ptr::read_volatile(self.allocated),
                std::ptr::read_volatile(self.deallocated),
            )
        };
        allocated.wrapping_sub(deallocated) as i64
    }
}

static THREADS: parking_lot::RwLock<Vec<ThreadCounters>> = parking_lot::RwLock::new(Vec::new());
/// What unregistered threads left allocated (or freed of others' allocations).
static RETIRED_BALANCE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Starts counting the calling thread's allocations in [`used_memory_bytes`] (idempotent).
pub fn register_current_thread() {
    let allocated = read_thread_pointer(c"thread.allocatedp");
    let deallocated = read_thread_pointer(c"thread.deallocatedp");
    if allocated.is_null() || deallocated.is_null() {
        return;
    }
    let thread = std::thread::current().id();
    let mut threads = THREADS.write();
    if threads.iter().any(|counters| counters.thread == thread) {
        return;
    }
    threads.push(ThreadCounters {
        thread,
        allocated,
        deallocated,
    });
}

/// Stops reading the calling thread's counters (before it ends), keeping its balance.
pub fn unregister_current_thread() {
    let thread = std::thread::current().id();
    let mut threads = THREADS.write();
    if let Some(position) = threads
        .iter()
        .position(|counters| counters.thread == thread)
    {
        let counters = threads.swap_remove(position);
        RETIRED_BALANCE.fetch_add(counters.balance(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// Bytes allocated by the server now (INFO `used_memory`, compared with `maxmemory`): exact and
/// cheap enough to read before every command. Falls back to jemalloc's merged statistics when
/// no thread could register.
pub fn used_memory_bytes() -> u64 {
    let threads = THREADS.read();
    if threads.is_empty() {
        drop(threads);
        return allocated_bytes();
    }
    let total: i64 = threads.iter().map(ThreadCounters::balance).sum::<i64>()
        + RETIRED_BALANCE.load(std::sync::atomic::Ordering::Relaxed);
    total.max(0) as u64
}

thread_local! {
    /// The calling thread's jemalloc counters (allocated, deallocated), read once.
    static OWN_COUNTERS: (*const u64, *const u64) = (
        read_thread_pointer(c"thread.allocatedp"),
        read_thread_pointer(c"thread.deallocatedp"),
    );
}

/// Bytes the calling thread allocated minus bytes it freed, so far: the difference of two
/// readings is what the code between them allocated (positive) or freed (negative) on this
/// thread alone, whatever other threads do meanwhile. None where jemalloc cannot say.
pub fn thread_balance_bytes() -> Option<i64> {
    OWN_COUNTERS.with(|&(allocated, deallocated)| {
        if allocated.is_null() || deallocated.is_null() {
            return None;
        }
        // SAFETY: jemalloc's counters of the calling thread, which lives while this runs; plain
        // u64 the thread itself updates.
        let (allocated, deallocated) = unsafe {
            (
                std::ptr::read_volatile(allocated),
                std::ptr::read_volatile(deallocated),
            )
        };
        Some(allocated.wrapping_sub(deallocated) as i64)
    })
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
    fn used_memory_follows_allocations() {
        register_current_thread();
        let before = used_memory_bytes();
        // Unit tests run on the system allocator: allocate from jemalloc directly.
        // SAFETY: a plain allocation, written once and freed below.
        let block = unsafe { tikv_jemalloc_sys::malloc(4 << 20) };
        assert!(!block.is_null());
        // SAFETY: `block` holds 4 MiB.
        unsafe { std::ptr::write_bytes(block as *mut u8, 1, 4 << 20) };
        let during = used_memory_bytes();
        assert!(during >= before + (4 << 20), "{before} {during}");
        // SAFETY: allocated above by jemalloc's malloc, freed once.
        unsafe { tikv_jemalloc_sys::free(block) };
        let after = used_memory_bytes();
        assert!(after < during - (3 << 20), "{during} {after}");
    }

    #[test]
    fn resident_set_is_known_on_linux() {
        assert!(resident_set_bytes() > 0);
        assert!(total_system_memory_bytes() > 0);
    }
}
