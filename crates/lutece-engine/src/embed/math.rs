//! The encoder's element-wise arithmetic: `exp`, `erf`/GELU, softmax and layer normalisation,
//! written as plain loops over slices that the compiler vectorises (no `libm` call per
//! element).

use std::f32::consts::{FRAC_1_SQRT_2, LOG2_E};

/// `eˣ` to about 2 ulp (Cephes' `expf`: a degree-6 polynomial on the reduced argument, scaled
/// by a power of two built from its bits), written so a loop over it vectorises: no branch,
/// no float-to-integer cast. Saturates at `e⁸⁸`; below `e^-87.3` (under f32's normal range)
/// gives 0.
#[inline]
pub(crate) fn exp(x: f32) -> f32 {
    let underflow = x < -87.3;
    let x = x.clamp(-87.3, 88.0);
    let n = (x * LOG2_E + 0.5).floor();
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let y = p * r * r + r + 1.0;
    // 2ⁿ: n + 127 is a whole number in [1, 254]; added to 2²³ it is the low bits of the sum's
    // mantissa, which become the exponent bits of the scale.
    let biased = (n + (127.0 + 8_388_608.0)).to_bits() - 0x4B00_0000;
    let scaled = y * f32::from_bits(biased << 23);
    if underflow { 0.0 } else { scaled }
}

/// GELU as BERT defines it, with the error function (not the tanh approximation).
#[inline]
pub(crate) fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2))
}

/// Abramowitz and Stegun 7.1.26: absolute error below 1.5e-7, under f32's own rounding here.
#[inline]
pub(crate) fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_8) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

/// `row ← softmax(row)`. Three passes (max, exponentials, scale), none of which waits on
/// a single running sum, so each vectorises.
pub(crate) fn softmax(row: &mut [f32]) {
    let max = lanes(row, f32::NEG_INFINITY, f32::max);
    row.iter_mut().for_each(|v| *v = exp(*v - max));
    let inv = 1.0 / lanes(row, 0.0, |a, b| a + b);
    row.iter_mut().for_each(|v| *v *= inv);
}

/// Folds `x` with `f` in eight independent lanes (a reduction the compiler vectorises: it
/// would not reorder one running fold of floats), then folds the lanes.
fn lanes(x: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    let mut acc = [init; 8];
    for chunk in chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a = f(*a, *v);
        }
    }
    acc.into_iter().chain(tail.iter().copied()).fold(init, f)
}

/// Layer normalisation of every `weight.len()`-wide row of `x`, in place.
pub(crate) fn layer_norm(x: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) {
    let h = weight.len();
    for row in x.chunks_exact_mut(h) {
        let mean = row.iter().sum::<f32>() / h as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(weight).zip(bias) {
            *v = (*v - mean) * inv * w + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_range_softmax_and_erf_use() {
        let mut worst = 0.0f64;
        for i in -87_000..=88_000 {
            let x = i as f32 / 1000.0;
            let expected = f64::from(x).exp();
            let relative = ((f64::from(exp(x)) - expected) / expected).abs();
            worst = worst.max(relative);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(100.0).is_finite());
        assert!(
            exp(f32::NAN).is_nan() || exp(f32::NAN) == 0.0,
            "no panic on NaN"
        );
    }

    #[test]
    fn erf_matches_known_values() {
        for (x, expected) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
            (3.5, 0.999_999_3),
        ] {
            assert!((erf(x) - expected).abs() < 3e-7, "erf({x}) = {}", erf(x));
        }
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert_eq!(gelu(-20.0), 0.0);
    }

    #[test]
    fn softmax_sums_to_one_and_survives_large_scores() {
        let mut row = [1000.0, 1001.0, f32::NEG_INFINITY];
        softmax(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(row[2], 0.0);
        assert!((row[1] / row[0] - std::f32::consts::E).abs() < 1e-4);
    }

    #[test]
    fn layer_norm_centres_and_scales() {
        let mut x = [1.0, 2.0, 3.0, 4.0];
        layer_norm(&mut x, &[1.0; 4], &[0.5; 4], 1e-12);
        let mean: f32 = x.iter().sum::<f32>() / 4.0;
        assert!((mean - 0.5).abs() < 1e-6);
        let var: f32 = x.iter().map(|v| (v - 0.5) * (v - 0.5)).sum::<f32>() / 4.0;
        assert!((var - 1.0).abs() < 1e-5);
    }
}
