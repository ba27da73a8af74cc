//! Spreading a chunk of CPU-bound read work (decoding, hashing, decrypting
//! events) over the machine's cores.
//!
//! Why: one `ReadAll` or `Subscribe` stream is fed by one reader thread, and
//! profiling showed that thread at a full core, mostly decrypting, while the
//! other core idled. A chunk is split into contiguous slices, each worked on
//! by a scoped thread (the first on the calling thread), and the results are
//! joined in order. Small chunks stay on the calling thread.

/// At most this many slices per chunk.
const MAX_SLICES: usize = 4;

/// Below this many items a chunk is not split.
const MIN_ITEMS_TO_SPLIT: usize = 64;

/// `f` over contiguous slices of `items`, on up to as many threads as the
/// machine has cores; the outputs concatenated in order. The first error
/// (in slice order) is returned.
pub fn map_slices<I, O, E>(
    items: &[I],
    f: impl Fn(&[I]) -> Result<Vec<O>, E> + Sync,
) -> Result<Vec<O>, E>
where
    I: Sync,
    O: Send,
    E: Send,
{
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let slices = cores.min(MAX_SLICES);
    if slices < 2 || items.len() < MIN_ITEMS_TO_SPLIT {
        return f(items);
    }
    let size = items.len().div_ceil(slices);
    let mut parts = items.chunks(size);
    let first = parts.next().unwrap_or(&[]);
    std::thread::scope(|s| {
        let f = &f;
        let rest: Vec<_> = parts.map(|p| s.spawn(move || f(p))).collect();
        let mut out = f(first)?;
        for h in rest {
            match h.join() {
                Ok(r) => out.extend(r?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_reports_the_first_error() {
        let items: Vec<u32> = (0..1000).collect();
        let out = map_slices(&items, |s| Ok::<_, ()>(s.iter().map(|x| x * 2).collect())).unwrap();
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let err = map_slices(&items, |s| {
            if s.contains(&999) || s.contains(&700) {
                Err(s[0])
            } else {
                Ok(s.to_vec())
            }
        });
        assert!(err.is_err());
        let small = map_slices(&items[..3], |s| Ok::<_, ()>(s.to_vec())).unwrap();
        assert_eq!(small, [0, 1, 2]);
    }
}
