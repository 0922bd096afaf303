//! Matrix products for the encoder: a checked, safe front to `matrixmultiply::sgemm`, with
//! matrices as strided views into slices, so a transposed weight or one attention head inside
//! a packed Q|K|V buffer is read in place, without a copy.

/// A read-only `rows × cols` matrix: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// A writable row-major `rows × cols` matrix with `row_stride` floats between rows.
#[derive(Debug)]
pub(crate) struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
}

impl<'a> Mat<'a> {
    /// Row-major with `row_stride` floats between rows.
    pub(crate) fn new(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// The same numbers read as the transpose.
    pub(crate) fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

impl<'a> MatMut<'a> {
    pub(crate) fn new(data: &'a mut [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride,
        }
    }
}

/// Whether every element of a `rows × cols` view with these strides lies inside `len` floats.
fn fits(len: usize, rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    let last = (rows - 1)
        .checked_mul(row_stride)
        .zip((cols - 1).checked_mul(col_stride))
        .and_then(|(r, c)| r.checked_add(c));
    last.is_some_and(|last| last < len)
}

fn stride(s: usize) -> isize {
    isize::try_from(s).unwrap_or(isize::MAX)
}

/// `c ← alpha · a · b + beta · c`.
///
/// # Panics
/// When the shapes disagree or a view reaches outside its slice: a bug in the caller, checked
/// here because the kernel reads through raw pointers.
pub(crate) fn gemm(alpha: f32, a: Mat<'_>, b: Mat<'_>, beta: f32, c: MatMut<'_>) {
    assert!(
        a.cols == b.rows && a.rows == c.rows && b.cols == c.cols,
        "gemm shapes disagree: {}×{} · {}×{} → {}×{}",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    assert!(fits(
        a.data.len(),
        a.rows,
        a.cols,
        a.row_stride,
        a.col_stride
    ));
    assert!(fits(
        b.data.len(),
        b.rows,
        b.cols,
        b.row_stride,
        b.col_stride
    ));
    assert!(c.row_stride >= c.cols || c.rows <= 1, "rows of c overlap");
    assert!(fits(c.data.len(), c.rows, c.cols, c.row_stride, 1));
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m {
            for x in &mut c.data[i * c.row_stride..i * c.row_stride + n] {
                // As the kernel does: beta 0 overwrites (a NaN in `c` does not survive).
                *x = if beta == 0.0 { 0.0 } else { *x * beta };
            }
        }
        return;
    }
    // SAFETY: the asserts above keep every element the kernel touches inside its slice (each
    // view's last element is in bounds, and all strides are non-negative); `c` is borrowed
    // mutably, so it aliases neither input, and its rows do not overlap each other.
    #[expect(unsafe_code, reason = "matrixmultiply's kernel takes raw pointers")]
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            stride(a.row_stride),
            stride(a.col_stride),
            b.data.as_ptr(),
            stride(b.row_stride),
            stride(b.col_stride),
            beta,
            c.data.as_mut_ptr(),
            stride(c.row_stride),
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook triple loop, as the reference.
    fn naive(a: &Mat<'_>, b: &Mat<'_>) -> Vec<f32> {
        let at = |m: &Mat<'_>, i: usize, j: usize| m.data[i * m.row_stride + j * m.col_stride];
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                out[i * b.cols + j] = (0..a.cols).map(|k| at(a, i, k) * at(b, k, j)).sum();
            }
        }
        out
    }

    #[test]
    fn strided_views_multiply_like_the_textbook() {
        let data: Vec<f32> = (0..60).map(|i| (i as f32 * 0.37).sin()).collect();
        // a: 3×4 inside rows of 10; b: the transpose of a 5×4 block inside rows of 6.
        let a = Mat::new(&data, 3, 4, 10);
        let b = Mat::new(&data[7..], 5, 4, 6).t();
        let mut c = vec![1.0; 3 * 5];
        gemm(1.0, a, b, 0.0, MatMut::new(&mut c, 3, 5, 5));
        let expected = naive(&a, &b);
        for (x, y) in c.iter().zip(&expected) {
            assert!((x - y).abs() < 1e-5, "{c:?} vs {expected:?}");
        }
        // beta = 1 accumulates; alpha scales.
        gemm(2.0, a, b, 1.0, MatMut::new(&mut c, 3, 5, 5));
        for (x, y) in c.iter().zip(&expected) {
            assert!((x - 3.0 * y).abs() < 1e-5);
        }
    }

    #[test]
    fn a_view_outside_its_slice_is_refused() {
        let data = vec![0.0; 8];
        let result = std::panic::catch_unwind(|| {
            let mut c = vec![0.0; 4];
            gemm(
                1.0,
                Mat::new(&data, 2, 4, 5),
                Mat::new(&data, 4, 2, 2),
                0.0,
                MatMut::new(&mut c, 2, 2, 2),
            );
        });
        assert!(
            result.is_err(),
            "an out-of-bounds view must not reach the kernel"
        );
    }
}
