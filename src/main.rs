// jemalloc rather than the system allocator: see Cargo.toml for why and
// PERFORMANCE.md for what it measured.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    mcpgate::run()
}
