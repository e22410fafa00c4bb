//! Memory hints for large tables on the fast path.

/// Asks the kernel to back `[start, start + len)` with transparent huge pages
/// (`madvise(MADV_HUGEPAGE)`), for tables read at random addresses on every packet, where
/// 4 KB pages would miss the TLB. Best effort: the whole pages inside the range are advised;
/// returns false when the kernel refuses (THP disabled), which costs speed, not correctness.
pub fn advise_huge_pages(start: *const u8, len: usize) -> bool {
    const PAGE: usize = 4096;
    let begin = (start as usize).next_multiple_of(PAGE);
    let end = (start as usize).saturating_add(len) & !(PAGE - 1);
    if end <= begin {
        return false;
    }
    // SAFETY: madvise with MADV_HUGEPAGE changes no contents and no permissions; the range is
    // page aligned and lies inside an allocation the caller owns.
    unsafe { libc::madvise(begin as *mut libc::c_void, end - begin, libc::MADV_HUGEPAGE) == 0 }
}
