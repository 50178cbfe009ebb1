//! `cinnabar-server [/path/to/redis.conf] [--option value ...]`; run as `*check-aof` /
//! `*check-rdb` (or with those subcommands), the check tools (`cinnabar::check`).

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options, read by the allocator itself: a background thread returns
/// freed pages to the system (as Redis's `jemalloc-bg-thread yes` does), so resident memory
/// follows the data instead of its peak. Thread caches keep only small blocks (up to 4 KiB):
/// bigger ones (list nodes, read buffers) are rare on hot paths, and a cache of them per thread
/// is resident memory the data does not use (about 1% of a big list).
#[repr(transparent)]
struct AllocatorOptions(*const u8);

// SAFETY: the pointer refers to an immutable, 'static, NUL-terminated byte string.
unsafe impl Sync for AllocatorOptions {}

#[export_name = "_rjem_malloc_conf"]
static ALLOCATOR_OPTIONS: AllocatorOptions =
    AllocatorOptions(b"background_thread:true,dirty_decay_ms:1000,tcache_max:4096\0".as_ptr());

fn main() {
    let command_line: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(invocation) = cinnabar::check::Invocation::from_args(&command_line) {
        std::process::exit(invocation.run());
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(cinnabar::startup::run(args));
}
