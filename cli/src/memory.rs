//! The process's allocator settings.

/// Caps glibc's malloc arenas at `arenas`.
///
/// glibc gives a thread that finds every arena busy a new one, up to 8 per core, and an arena
/// keeps the high-water mark of what was allocated in it. In `orders`, SQLite reads run on
/// Tokio's blocking threads, which come and go, so over a long replay more and more arenas each
/// hold a batch's worth of memory: a 1 M-event rebuild peaked about 25 % above a 100 k one with
/// no more live data. One arena per runtime worker plus one keeps the peak flat (within about
/// 10 %) at no measurable cost in speed; see the README's performance section.
///
/// Other C libraries (musl) have no arenas; there this does nothing. Returns false if glibc
/// refused (not fatal: the process runs with its default arenas).
pub fn cap_malloc_arenas(arenas: usize) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = libc::c_int::try_from(arenas).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes allocator tuning; it is called before any thread other
        // than main exists, and M_ARENA_MAX takes any positive count.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = arenas;
        true
    }
}
