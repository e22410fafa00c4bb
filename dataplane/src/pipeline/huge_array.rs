//! Fixed-length arrays for tables read at random addresses on every packet (the flow table).
//!
//! A large one starts on a 2 MB boundary, so that transparent huge pages can back all of it:
//! the allocator places large blocks just past the start of a 4 KB page, and then only the
//! whole 2 MB pages inside the block can be huge (6 of an 8 MB array's; every lookup that
//! lands on the rest walks the page tables). With it, `/proc/PID/smaps` shows all 8 MB of the
//! benchmark's entry array huge; the speed difference was within the benchmark's noise.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

/// A transparent huge page on x86-64 and on ARM64 with 4 KB base pages.
const HUGE_PAGE: usize = 2 << 20;
/// Smaller arrays are not worth up to 2 MB of padding (they span at most one huge page).
const ALIGN_FROM: usize = 2 << 20;

/// `len` values, the first of them on a 2 MB boundary when the array is large (exactly on it
/// when the element's alignment is a multiple of 64, as the flow table's are; otherwise less
/// than one element past it).
pub struct HugeArray<T> {
    /// `first` elements of padding, then the array.
    buf: Vec<T>,
    first: usize,
}

impl<T: Default + Clone> HugeArray<T> {
    /// `len` default values; `advise(start, bytes)` sees the array's memory before anything
    /// is written to it (the worker asks for huge pages there).
    pub fn new(len: usize, advise: &dyn Fn(*const u8, usize)) -> HugeArray<T> {
        let size = size_of::<T>().max(1);
        let pad = if len.saturating_mul(size) >= ALIGN_FROM { HUGE_PAGE.div_ceil(size) } else { 0 };
        let mut buf: Vec<T> = Vec::with_capacity(len + pad);
        let addr = buf.as_ptr() as usize;
        // At most `pad`: the distance to the next boundary is below 2 MB.
        let first = if pad == 0 { 0 } else { (addr.next_multiple_of(HUGE_PAGE) - addr).div_ceil(size) };
        advise(buf.as_ptr().wrapping_add(first).cast(), len * size);
        buf.resize(first + len, T::default());
        HugeArray { buf, first }
    }
}

impl<T> HugeArray<T> {
    pub fn len(&self) -> usize {
        self.buf.len() - self.first
    }

    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<&T> {
        self.buf.get(self.first + i)
    }

    #[inline(always)]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.buf.get_mut(self.first + i)
    }

    /// The memory the array holds, its alignment padding included.
    pub fn bytes(&self) -> usize {
        self.buf.capacity() * size_of::<T>()
    }

    /// Where element 0 is (for prefetch hints; never dereferenced here).
    #[inline(always)]
    pub fn as_ptr(&self) -> *const T {
        self.buf.as_ptr().wrapping_add(self.first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Clone, Debug, Default, PartialEq)]
    #[repr(align(64))]
    struct Line([u64; 8]);

    #[test]
    fn a_large_array_starts_on_a_huge_page_and_holds_exactly_its_length() {
        let advised = Cell::new((0usize, 0usize));
        let mut a: HugeArray<Line> = HugeArray::new(65_536, &|p, n| advised.set((p as usize, n)));
        assert_eq!(a.len(), 65_536);
        assert_eq!(a.as_ptr() as usize % HUGE_PAGE, 0);
        assert_eq!(advised.get(), (a.as_ptr() as usize, 65_536 * 64));
        assert_eq!(a.get(0), Some(&Line::default()));
        if let Some(last) = a.get_mut(65_535) {
            last.0[0] = 7;
        }
        assert_eq!(a.get(65_535).map(|v| v.0[0]), Some(7));
        assert_eq!(a.get(65_536), None);
    }

    #[test]
    fn a_small_array_has_no_padding() {
        let a: HugeArray<u32> = HugeArray::new(100, &|_, _| {});
        assert_eq!((a.len(), a.first), (100, 0));
        assert_eq!(a.get(99), Some(&0));
        assert_eq!(a.get(100), None);
        let empty: HugeArray<u32> = HugeArray::new(0, &|_, _| {});
        assert_eq!((empty.len(), empty.get(0)), (0, None));
    }

    #[test]
    fn element_sizes_that_do_not_divide_a_huge_page_start_just_past_the_boundary() {
        let a: HugeArray<[u32; 7]> = HugeArray::new(1 << 17, &|_, _| {});
        let offset = a.as_ptr() as usize % HUGE_PAGE;
        assert!(offset < 28, "offset {offset}");
        assert_eq!(a.len(), 1 << 17);
    }
}
