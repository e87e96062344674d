//! The one rule that keeps every per-step history bounded: the training monitor's step records,
//! the probe's attention snapshots, the gradient-norm heatmap and the dead-unit curve.
//!
//! While a history holds more than its capacity, the older half of it (never the newest
//! `keep_newest` records) loses every second record: the first, third, fifth, … stay. Repeated
//! thinning makes old history sparser than recent history, as a curve drawn over the whole run
//! needs, and the first record (the start of the run) always stays.

/// Which of `len` records in step order the rule keeps (`true` = kept), for histories that keep
/// their columns in parallel lists.
///
/// `capacity` is raised to at least 2; a `keep_newest` at or above the capacity leaves about
/// `keep_newest` records, since those are never thinned.
pub fn kept(len: usize, capacity: usize, keep_newest: usize) -> Vec<bool> {
    let mut indices: Vec<usize> = (0..len).collect();
    thin(&mut indices, capacity, keep_newest);
    let mut keep = vec![false; len];
    for index in indices {
        keep[index] = true;
    }
    keep
}

/// Thins `items` (in step order) by the rule until at most `capacity` remain, or until only the
/// newest `keep_newest` and fewer than two older ones are left.
pub fn thin<T>(items: &mut Vec<T>, capacity: usize, keep_newest: usize) {
    let capacity = capacity.max(2);
    while items.len() > capacity {
        let len = items.len();
        let older = (len / 2).min(len.saturating_sub(keep_newest));
        // Fewer than two old records cannot be thinned.
        if older < 2 {
            break;
        }
        let mut index = 0;
        items.retain(|_| {
            let keep = index >= older || index % 2 == 0;
            index += 1;
            keep
        });
    }
}

/// Keeps the items of `items` whose entry in `keep` is true (missing entries keep the item).
pub fn retain_kept<T>(items: &mut Vec<T>, keep: &[bool]) {
    let mut index = 0;
    items.retain(|_| {
        let kept = keep.get(index).copied().unwrap_or(true);
        index += 1;
        kept
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_halves_the_older_half_and_keeps_the_first_and_the_newest() {
        let mut items: Vec<usize> = (0..10).collect();
        thin(&mut items, 9, 0);
        // The older five lose the second and fourth; the newer five stay whole.
        assert_eq!(items, [0, 2, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn the_newest_records_are_never_thinned() {
        let mut items: Vec<usize> = (0..5000).collect();
        thin(&mut items, 3000, 1000);
        assert!(items.len() <= 3000, "{}", items.len());
        assert_eq!(
            &items[items.len() - 1000..],
            &(4000..5000).collect::<Vec<_>>()[..]
        );
        assert_eq!(items[0], 0);
        assert!(items.windows(2).all(|pair| pair[0] < pair[1]));
        // A capacity below the protected tail leaves about that tail.
        let mut items: Vec<usize> = (0..5000).collect();
        thin(&mut items, 10, 1000);
        assert!((1000..1003).contains(&items.len()), "{}", items.len());
    }

    #[test]
    fn a_long_run_stays_bounded_and_old_history_is_sparser() {
        let mut items = Vec::new();
        for step in 0..100_000usize {
            items.push(step);
            thin(&mut items, 512, 0);
        }
        assert!(items.len() <= 512);
        assert_eq!(items[0], 0);
        assert_eq!(*items.last().unwrap(), 99_999);
        let gaps: Vec<usize> = items.windows(2).map(|pair| pair[1] - pair[0]).collect();
        assert!(
            gaps.first() > gaps.last(),
            "{:?}",
            (gaps.first(), gaps.last())
        );
    }

    #[test]
    fn the_mask_matches_the_thinned_list() {
        let keep = kept(10, 9, 0);
        let mut items: Vec<usize> = (0..10).collect();
        retain_kept(&mut items, &keep);
        assert_eq!(items, [0, 2, 4, 5, 6, 7, 8, 9]);
        assert_eq!(kept(3, 9, 0), [true; 3]);
    }
}
