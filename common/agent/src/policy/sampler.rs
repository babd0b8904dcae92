//! Actions from the policy head's logits: sampled from softmax(logits) with
//! a seeded generator of our own (not libtorch's global one), so a run's
//! actions depend on its seed alone, or the most probable action (greedy
//! evaluation). It runs on the CPU copy of the logits both modes already
//! make for the unrolls and the answers.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// How an action is picked from the logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// From softmax(logits): the behaviour policy V-trace corrects for.
    Sample,
    /// The most probable action (ties: the first).
    Greedy,
}

pub struct Sampler {
    rng: Pcg64,
}

impl Sampler {
    pub fn new(seed: u64) -> Self {
        Sampler { rng: Pcg64::seed_from_u64(seed) }
    }

    /// One action from one environment's logits `[A]`.
    pub fn choose(&mut self, logits: &[f32], sampling: Sampling) -> usize {
        if sampling == Sampling::Greedy {
            return logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                .map_or(0, |(i, _)| i);
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let weights: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
        let total: f64 = weights.iter().sum();
        let mut u = self.rng.gen::<f64>() * total;
        for (i, w) in weights.iter().enumerate() {
            if u < *w {
                return i;
            }
            u -= w;
        }
        weights.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frequencies over 40,000 draws match softmax(logits) within 0.01, and
    /// the same seed gives the same actions.
    #[test]
    fn samples_follow_the_softmax_and_the_seed() {
        let logits = [1.0f32, 0.0, -1.0, 2.0];
        let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        let mut sampler = Sampler::new(7);
        let n = 40_000;
        let mut counts = [0usize; 4];
        for _ in 0..n {
            counts[sampler.choose(&logits, Sampling::Sample)] += 1;
        }
        for (a, &c) in counts.iter().enumerate() {
            let want = f64::from(logits[a]).exp() / z;
            let got = c as f64 / n as f64;
            assert!((got - want).abs() < 0.01, "action {a}: {got:.4} vs softmax {want:.4}");
        }
        let draw = |seed| {
            let mut s = Sampler::new(seed);
            (0..50).map(|_| s.choose(&logits, Sampling::Sample)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn greedy_takes_the_most_probable_action_and_the_first_of_a_tie() {
        let mut sampler = Sampler::new(0);
        assert_eq!(sampler.choose(&[0.1, 3.0, -2.0], Sampling::Greedy), 1);
        assert_eq!(sampler.choose(&[1.0, 0.0, 1.0], Sampling::Greedy), 0);
    }
}
