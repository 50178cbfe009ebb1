//! `cinnabar-server [/path/to/redis.conf] [--option value ...]`

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(cinnabar::startup::run(args));
}
