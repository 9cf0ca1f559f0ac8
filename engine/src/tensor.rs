//! The `Tensor`: f32 values in contiguous row-major storage with an N-d shape.
//!
//! Storage is shared (`Arc`), so cloning is cheap; writing through
//! [`Tensor::data_mut`] copies only when the storage is shared (copy on write).
//! The storage is a [`Pooled`] buffer: when the last tensor sharing it drops,
//! the buffer goes back to the [`crate::pool`] for the next tensor of its
//! size class, so a training loop does not return its big buffers to the
//! operating system and fault them in again at every step.

use crate::pool::{self, Pooled};
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};
use std::fmt;
use std::sync::Arc;

/// An f32 N-d array, contiguous and row-major.
#[derive(Clone, PartialEq)]
pub struct Tensor {
    data: Arc<Pooled<f32>>,
    shape: Vec<usize>,
}

/// Why a tensor could not be built from the given parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    /// The number of values does not equal the product of the shape.
    LengthMismatch {
        /// The shape asked for.
        shape: Vec<usize>,
        /// The number of values given.
        len: usize,
    },
    /// The product of the dimensions overflows `usize`.
    Overflow {
        /// The shape asked for.
        shape: Vec<usize>,
    },
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeError::LengthMismatch { shape, len } => write!(
                f,
                "shape {shape:?} holds {} values but {len} were given",
                shape.iter().product::<usize>()
            ),
            ShapeError::Overflow { shape } => {
                write!(f, "shape {shape:?}: the number of elements overflows")
            }
        }
    }
}

impl std::error::Error for ShapeError {}

/// Number of elements of a shape, or `None` on overflow.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Row-major strides of a contiguous shape.
pub fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

impl Tensor {
    // ---------- construction ----------

    /// Builds a tensor from values and a shape; errors if the length does not match.
    pub fn try_from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor, ShapeError> {
        let n = checked_numel(shape).ok_or_else(|| ShapeError::Overflow {
            shape: shape.to_vec(),
        })?;
        if n != data.len() {
            return Err(ShapeError::LengthMismatch {
                shape: shape.to_vec(),
                len: data.len(),
            });
        }
        Ok(Tensor {
            data: Arc::new(Pooled::new(data)),
            shape: shape.to_vec(),
        })
    }

    /// Builds a tensor from values and a shape.
    ///
    /// # Panics
    /// If `data.len()` is not the product of `shape` (a programmer error; use
    /// [`Tensor::try_from_vec`] for data read from outside).
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Tensor {
        match Tensor::try_from_vec(data, shape) {
            Ok(t) => t,
            Err(e) => panic!("Tensor::from_vec: {e}"),
        }
    }

    /// A tensor of the given shape filled with `value`.
    pub fn full(shape: &[usize], value: f32) -> Tensor {
        let n = checked_numel(shape).expect("Tensor::full: shape overflows");
        let mut v = pool::take_empty(n);
        v.resize(n, value);
        Tensor::from_vec(v, shape)
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Tensor {
        let n = checked_numel(shape).expect("Tensor::zeros: shape overflows");
        Tensor::from_vec(pool::take_zeroed(n), shape)
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    /// A 0-d tensor holding one value.
    pub fn scalar(value: f32) -> Tensor {
        Tensor::from_vec(vec![value], &[])
    }

    /// `[0, 1, ..., n-1]` as a 1-d tensor.
    pub fn arange(n: usize) -> Tensor {
        Tensor::from_vec((0..n).map(|i| i as f32).collect(), &[n])
    }

    /// `n` evenly spaced values from `start` to `end` inclusive (like `torch.linspace`).
    pub fn linspace(start: f32, end: f32, n: usize) -> Tensor {
        let v = (0..n)
            .map(|i| {
                if n == 1 {
                    start
                } else {
                    // Same formula as PyTorch: start + i*step, with the upper half
                    // computed from the end so the last value is exactly `end`.
                    let step = (end - start) / (n - 1) as f32;
                    if i < n / 2 {
                        start + step * i as f32
                    } else {
                        end - step * (n - 1 - i) as f32
                    }
                }
            })
            .collect();
        Tensor::from_vec(v, &[n])
    }

    /// Values drawn uniformly from `[lo, hi)` with the given RNG.
    pub fn uniform<R: Rng + ?Sized>(shape: &[usize], lo: f32, hi: f32, rng: &mut R) -> Tensor {
        let n = checked_numel(shape).expect("Tensor::uniform: shape overflows");
        let d = Uniform::new(lo, hi);
        let mut v = pool::take_empty(n);
        v.extend((0..n).map(|_| d.sample(rng)));
        Tensor::from_vec(v, shape)
    }

    /// Values drawn from a normal distribution with the given RNG.
    pub fn normal<R: Rng + ?Sized>(shape: &[usize], mean: f32, std: f32, rng: &mut R) -> Tensor {
        let n = checked_numel(shape).expect("Tensor::normal: shape overflows");
        let d = Normal::new(mean, std).expect("Tensor::normal: std must be finite and >= 0");
        let mut v = pool::take_empty(n);
        v.extend((0..n).map(|_| d.sample(rng)));
        Tensor::from_vec(v, shape)
    }

    // ---------- access ----------

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Size of dimension `axis`.
    pub fn dim(&self, axis: usize) -> usize {
        self.shape[axis]
    }

    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values' bit patterns, row-major: what bit-identity checks compare
    /// (NaN payloads and the sign of zero included).
    pub fn bits(&self) -> Vec<u32> {
        self.data.iter().map(|v| v.to_bits()).collect()
    }

    /// Mutable values; copies the storage first if it is shared (into a
    /// buffer from the pool).
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut Arc::make_mut(&mut self.data)[..]
    }

    /// The values as an owned vector (no copy if the storage is not shared).
    /// The vector leaves the pool's care: give it back with [`pool::give`]
    /// (or wrap it in a tensor again) to have it reused.
    pub fn into_vec(self) -> Vec<f32> {
        match Arc::try_unwrap(self.data) {
            Ok(own) => own.into_vec(),
            Err(shared) => copy_of(&shared),
        }
    }

    /// The values as an owned vector (a buffer from the pool).
    pub fn to_vec(&self) -> Vec<f32> {
        copy_of(&self.data)
    }

    /// The single value of a one-element tensor.
    ///
    /// # Panics
    /// If the tensor does not hold exactly one value.
    pub fn item(&self) -> f32 {
        assert!(
            self.numel() == 1,
            "Tensor::item: shape {:?} does not hold exactly one value",
            self.shape
        );
        self.data[0]
    }

    /// The value at a multi-index.
    pub fn at(&self, index: &[usize]) -> f32 {
        assert_eq!(
            index.len(),
            self.ndim(),
            "Tensor::at: index {index:?} for shape {:?}",
            self.shape
        );
        let mut off = 0;
        for (i, (&ix, &d)) in index.iter().zip(&self.shape).enumerate() {
            assert!(
                ix < d,
                "Tensor::at: index {index:?} out of bounds for shape {:?} (axis {i})",
                self.shape
            );
            off = off * d + ix;
        }
        self.data[off]
    }

    /// Changes the shape in place; the caller guarantees the size is unchanged.
    pub(crate) fn set_shape_unchecked(&mut self, shape: &[usize]) {
        debug_assert_eq!(shape.iter().product::<usize>(), self.data.len());
        self.shape = shape.to_vec();
    }

    /// True if both share the same storage (a cheap clone).
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
    }

    /// Largest absolute elementwise difference; shapes must match.
    pub fn max_abs_diff(&self, other: &Tensor) -> f32 {
        assert_eq!(
            self.shape, other.shape,
            "max_abs_diff: shapes {:?} and {:?}",
            self.shape, other.shape
        );
        self.data
            .iter()
            .zip(other.data.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    /// True if every value is finite.
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}

/// `values` copied into a buffer from the pool.
fn copy_of(values: &[f32]) -> Vec<f32> {
    let mut v = pool::take_empty(values.len());
    v.extend_from_slice(values);
    v
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOW: usize = 8;
        write!(f, "Tensor{:?}[", self.shape)?;
        for (i, v) in self.data.iter().take(SHOW).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{v}")?;
        }
        if self.numel() > SHOW {
            write!(f, ", ... ({} values)", self.numel())?;
        }
        write!(f, "]")
    }
}
