//! The process's allocator settings.

/// Caps glibc's malloc arenas at `arenas`.
///
/// glibc gives a thread that finds every arena busy a new one, up to 8 per core, and an arena
/// keeps the high-water mark of what was allocated in it. In `orders`, SQLite reads run on
/// Tokio's blocking threads, which come and go, so over a long replay more and more arenas each
/// hold a batch's worth of memory. One arena per runtime worker plus one keeps the peak down.
///
/// Measured on 2 cores (`orders replay --segments 4 --into NEW` under GNU time on the
/// databases `replay-bench --keep-in` seeds, four interleaved rounds with and without the cap
/// behind a temporary switch, medians): a 1 M-event rebuild peaked at 24.8 MB with the cap and
/// 33.8 MB without (-27 %), a 100 k one at 22.3 and 28.9 MB; growth from 100 k to 1 M 11 %
/// against 17 %. The rate's median was 7 % lower with the cap (1 M: 251 k against 270 k
/// events/s), inside the runs' spread (227 k-260 k against 233 k-288 k). See also the README's
/// performance section.
///
/// Other C libraries (musl) have no arenas; there this does nothing. Returns false if glibc
/// refused (not fatal: the process runs with its default arenas).
#[allow(
    unsafe_code,
    reason = "one libc call, with no pointers; see SAFETY below"
)]
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
