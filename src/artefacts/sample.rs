//! The evaluation examples whose vectors a run keeps: a seeded stratified sample.

use crate::data::largest_remainder;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// At most `max` indices of `labels`, ascending: all of them when there are no more than `max`;
/// otherwise each class gets its proportional share (largest-remainder rounding, ties to the
/// lower label) of indices drawn uniformly, one ChaCha8 stream from `seed` shuffling each class
/// in label order. The cell's seed plays no part, so that every cell of a dataset holds the same
/// examples.
pub fn stratified_sample(labels: &[i64], max: usize, seed: u64) -> Vec<usize> {
    if labels.len() <= max {
        return (0..labels.len()).collect();
    }
    let classes = labels.iter().max().map_or(0, |&m| m.max(0) as usize + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &label) in labels.iter().enumerate() {
        members[label.max(0) as usize].push(i);
    }
    let sizes: Vec<usize> = members.iter().map(Vec::len).collect();
    let shares = largest_remainder(&sizes, max as f64 / labels.len() as f64);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut chosen = Vec::with_capacity(max);
    for (mut m, share) in members.into_iter().zip(shares) {
        m.shuffle(&mut rng);
        chosen.extend_from_slice(&m[..share.min(m.len())]);
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::stratified_sample;

    #[test]
    fn shares_follow_the_classes_and_the_seed_alone() {
        // 10 of class 0, 6 of class 1, 4 of class 2; 5 of 20: quotas 2.5, 1.5, 1.0 -> floors
        // 2, 1, 1 and the one unit left goes to the earlier of the tied remainders (class 0).
        let labels: Vec<i64> = [vec![0; 10], vec![1; 6], vec![2; 4]].concat();
        let s = stratified_sample(&labels, 5, 0);
        let count = |c| s.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!((s.len(), count(0), count(1), count(2)), (5, 3, 1, 1));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s, stratified_sample(&labels, 5, 0));
        assert_eq!(
            stratified_sample(&labels, 20, 0),
            (0..20).collect::<Vec<_>>()
        );
    }
}
