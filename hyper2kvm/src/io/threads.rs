//! Running a few independent pieces of work at once, each on its own scoped thread.

use crate::error::{Error, ErrorKind, Result};

/// `f` of every item, up to `limit` threads at a time; the results in the items' order.
pub fn in_threads<T: Sync, R: Send>(
    items: &[T],
    limit: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Vec<Result<R>> {
    let panicked = || Err(Error::new(ErrorKind::Internal, "a worker thread panicked"));
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(limit.max(1)) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|item| s.spawn(|| f(item))).collect();
            out.extend(handles.into_iter().map(|h| h.join().unwrap_or_else(|_| panicked())));
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_and_errors() {
        let items: Vec<u32> = (0..7).collect();
        let out = in_threads(&items, 3, |&i| {
            if i == 4 { Err(Error::new(ErrorKind::InvalidInput, "four")) } else { Ok(i * 10) }
        });
        assert_eq!(out.len(), 7);
        for (i, r) in out.iter().enumerate() {
            match r {
                Ok(v) => assert_eq!(*v, i as u32 * 10),
                Err(e) => assert_eq!((i, e.message()), (4, "four")),
            }
        }
    }
}
