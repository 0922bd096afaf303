//! Choosing the next token from a row of logits: greedy, or temperature and nucleus (top-p)
//! sampling from a seeded generator, so the same seed gives the same choices.

/// How a request wants its tokens chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (always the most likely token).
    pub temperature: f32,
    /// Keep the smallest set of tokens whose probabilities add up to at least this (0, 1].
    pub top_p: f32,
    /// The generator's seed; `None` draws one at random.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            seed: None,
        }
    }
}

/// A small, fast generator (SplitMix64) whose sequence is the same on every platform.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float uniformly drawn from [0, 1).
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The candidates kept before sorting; the nucleus almost always lies within them, and when it
/// does not the sampler falls back to sorting the whole row.
const NUCLEUS_FAST_PATH: usize = 256;

/// Chooses tokens for one sequence.
#[derive(Debug, Clone)]
pub struct Sampler {
    temperature: f32,
    top_p: f32,
    rng: SplitMix64,
    /// Scratch space reused between tokens: (token, probability).
    scratch: Vec<(usize, f32)>,
}

impl Sampler {
    pub fn new(params: &SamplingParams) -> Self {
        let seed = params.seed.unwrap_or_else(random_seed);
        Self {
            temperature: params.temperature.max(0.0),
            top_p: params.top_p.clamp(f32::MIN_POSITIVE, 1.0),
            rng: SplitMix64(seed),
            scratch: Vec::new(),
        }
    }

    /// The index of the chosen token. `logits` must not be empty.
    pub fn sample(&mut self, logits: &[f32]) -> usize {
        if self.temperature < 1e-5 || logits.len() < 2 {
            return argmax(logits);
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let inv_t = 1.0 / self.temperature;
        self.scratch.clear();
        self.scratch.extend(
            logits
                .iter()
                .enumerate()
                .map(|(i, &l)| (i, ((l - max) * inv_t).exp())),
        );
        let total: f32 = self.scratch.iter().map(|&(_, p)| p).sum();
        if self.top_p < 1.0 {
            self.keep_nucleus(total);
        }
        let kept: f64 = self.scratch.iter().map(|&(_, p)| f64::from(p)).sum();
        let mut target = self.rng.next_unit() * kept;
        for &(token, p) in &self.scratch {
            target -= f64::from(p);
            if target < 0.0 {
                return token;
            }
        }
        // Rounding left a sliver at the end: the last kept token takes it.
        self.scratch
            .last()
            .map_or_else(|| argmax(logits), |&(t, _)| t)
    }

    /// Keeps in `scratch` only the most likely tokens whose mass reaches `top_p` of `total`,
    /// most likely first.
    fn keep_nucleus(&mut self, total: f32) {
        let by_prob_desc =
            |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let goal = self.top_p * total;
        if self.scratch.len() > NUCLEUS_FAST_PATH {
            let mut head = self.scratch.clone();
            head.select_nth_unstable_by(NUCLEUS_FAST_PATH - 1, by_prob_desc);
            head.truncate(NUCLEUS_FAST_PATH);
            head.sort_unstable_by(by_prob_desc);
            if let Some(n) = nucleus_len(&head, goal) {
                head.truncate(n);
                self.scratch = head;
                return;
            }
        }
        self.scratch.sort_unstable_by(by_prob_desc);
        let n = nucleus_len(&self.scratch, goal).unwrap_or(self.scratch.len());
        self.scratch.truncate(n);
    }
}

/// How many of `sorted` (most likely first) it takes to reach `goal`, if they can.
fn nucleus_len(sorted: &[(usize, f32)], goal: f32) -> Option<usize> {
    let mut mass = 0.0;
    for (i, &(_, p)) in sorted.iter().enumerate() {
        mass += p;
        if mass >= goal {
            return Some(i + 1);
        }
    }
    None
}

/// The index of the largest value; the first one on ties.
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // The standard library seeds each RandomState from the operating system's generator.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(temperature: f32, top_p: f32, seed: u64) -> SamplingParams {
        SamplingParams {
            temperature,
            top_p,
            seed: Some(seed),
        }
    }

    #[test]
    fn greedy_takes_the_most_likely_token() {
        let mut s = Sampler::new(&params(0.0, 1.0, 1));
        assert_eq!(s.sample(&[0.1, 3.0, 2.9, -1.0]), 1);
        assert_eq!(argmax(&[1.0, 1.0]), 0, "ties go to the first token");
    }

    #[test]
    fn a_tiny_nucleus_is_greedy() {
        let logits: Vec<f32> = (0..1000).map(|i| (i % 97) as f32 * 0.1).collect();
        let mut s = Sampler::new(&params(1.0, 1e-6, 7));
        for _ in 0..50 {
            assert_eq!(s.sample(&logits), argmax(&logits));
        }
    }

    #[test]
    fn sampling_follows_the_distribution() {
        // Two tokens with probabilities 0.75 and 0.25.
        let logits = [3f32.ln(), 0.0];
        let mut s = Sampler::new(&params(1.0, 1.0, 42));
        let n = 20_000;
        let zeros = (0..n).filter(|_| s.sample(&logits) == 0).count();
        let share = zeros as f64 / n as f64;
        assert!(
            (share - 0.75).abs() < 0.02,
            "token 0 drawn {share} of the time"
        );
    }

    #[test]
    fn top_p_excludes_the_tail() {
        // Probabilities 0.5, 0.3, 0.2: top_p 0.7 keeps the first two only.
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.2f32.ln()];
        let mut s = Sampler::new(&params(1.0, 0.7, 3));
        assert!((0..5_000).all(|_| s.sample(&logits) != 2));
    }

    proptest! {
        #[test]
        fn same_seed_same_choices(
            logits in proptest::collection::vec(-20f32..20.0, 2..600),
            temperature in 0.0f32..2.0,
            top_p in 0.05f32..1.0,
            seed in any::<u64>(),
        ) {
            let p = params(temperature, top_p, seed);
            let (mut a, mut b) = (Sampler::new(&p), Sampler::new(&p));
            for _ in 0..8 {
                let (x, y) = (a.sample(&logits), b.sample(&logits));
                prop_assert_eq!(x, y);
                prop_assert!(x < logits.len());
            }
        }

        #[test]
        fn the_fast_nucleus_equals_the_full_sort(
            logits in proptest::collection::vec(-8f32..8.0, 300..2000),
            top_p in 0.01f32..1.0,
        ) {
            let mut s = Sampler::new(&params(1.0, top_p, 0));
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            s.scratch = logits.iter().enumerate().map(|(i, &l)| (i, (l - max).exp())).collect();
            let total: f32 = s.scratch.iter().map(|&(_, p)| p).sum();
            let mut full = s.scratch.clone();
            s.keep_nucleus(total);
            full.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let n = nucleus_len(&full, top_p * total).unwrap_or(full.len());
            full.truncate(n);
            prop_assert_eq!(s.scratch, full);
        }
    }
}
