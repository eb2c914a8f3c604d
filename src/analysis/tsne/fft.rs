//! The repulsive half of the t-SNE gradient by polynomial interpolation on a regular grid and
//! FFT convolution (Linderman et al., "Fast interpolation-based t-SNE for improved
//! visualization of single-cell RNA-seq data", Nature Methods 2019; openTSNE's default for
//! 10,000 points or more, heal's from `FFT_FROM`).
//!
//! The map's bounding square is cut into `boxes` x `boxes` equal boxes, with
//! [`NODES_PER_BOX`] x [`NODES_PER_BOX`] equispaced nodes in each: together a regular grid of
//! g x g nodes, g = boxes * NODES_PER_BOX. Every point spreads four charges (1, x, y, x^2 + y^2,
//! in coordinates centred on the square) onto the nodes of its box with the Lagrange
//! polynomials through them; the squared Cauchy kernel K2(r) = (1 + r^2)^-2 is convolved with
//! the charges on the grid (zero-padded to 2g x 2g, so the circular convolution is the plain
//! one); each point reads the four potentials back with the same polynomials. From them:
//!
//! * force_i = sum_j K2_ij (y_i - y_j) = y_i phi_1 - (phi_x, phi_y)
//! * z_i = sum_j K_ij = sum_j K2_ij (1 + |y_i - y_j|^2)
//!   = (1 + |y_i|^2) phi_1 - 2 y_i . (phi_x, phi_y) + phi_xx, less the point's own K_ii = 1.
//!
//! The grid only moves with the map, so the cost per iteration is O(n) for the charges plus
//! O(g^2 log g) for the convolution, whatever n is. The kernel is real and even, so one complex
//! convolution carries two real charges (one in the real part, one in the imaginary part).
//!
//! Every point's work is its own and every FFT row is transformed on its own, in a fixed
//! order of additions: the result does not depend on the number of threads.

use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Interpolation nodes per box and axis (openTSNE's `n_interpolation_points`).
pub(super) const NODES_PER_BOX: usize = 3;
/// The fewest boxes per axis (openTSNE's `min_num_intervals`).
pub(super) const MIN_BOXES: usize = 50;
/// The most boxes per axis before rounding up to a fast FFT size: 500 boxes are a 3,000 x 3,000
/// padded grid (144 MB per complex array). A map wider than 500 units gets boxes wider than 1
/// unit, and a coarser gradient, rather than running out of memory; maps that wide come from a
/// far too large learning rate.
pub(super) const MAX_BOXES: usize = 500;

/// The grid, its FFT plans and buffers, kept between iterations (the plans are reused as long
/// as the grid size stays the same).
#[derive(Default)]
pub(super) struct FftRepulsion {
    planner: Option<FftPlanner<f64>>,
    /// Padded grid side (2g) of the plans below.
    side: usize,
    forward: Option<Arc<dyn Fft<f64>>>,
    inverse: Option<Arc<dyn Fft<f64>>>,
    kernel: Vec<Complex64>,
    charges: [Vec<Complex64>; 2],
    spare: Vec<Complex64>,
    /// Per point: the grid column and row of its box's first node, and its six weights.
    place: Vec<([usize; 2], [[f64; NODES_PER_BOX]; 2])>,
}

/// The smallest number of boxes >= `want` whose padded grid side 2 * 3 * boxes has no prime
/// factor above 7 (rustfft's fastest sizes).
fn round_boxes(want: usize) -> usize {
    let smooth = |mut m: usize| {
        for p in [2, 3, 5, 7] {
            while m.is_multiple_of(p) {
                m /= p;
            }
        }
        m == 1
    };
    (want..)
        .find(|&b| smooth(b))
        .expect("a 7-smooth number exists above any bound")
}

/// The Lagrange polynomials through the nodes (k + 1/2) / NODES_PER_BOX, k = 0, 1, 2, at
/// t in [0, 1] (t is the position inside the box in box widths).
fn lagrange(t: f64) -> [f64; NODES_PER_BOX] {
    let s = |k: usize| (k as f64 + 0.5) / NODES_PER_BOX as f64;
    let mut w = [1.0; NODES_PER_BOX];
    for (k, wk) in w.iter_mut().enumerate() {
        for m in 0..NODES_PER_BOX {
            if m != k {
                *wk *= (t - s(m)) / (s(k) - s(m));
            }
        }
    }
    w
}

impl FftRepulsion {
    fn plan(&mut self, side: usize) {
        if self.side == side && self.forward.is_some() {
            return;
        }
        let planner = self.planner.get_or_insert_with(FftPlanner::new);
        self.forward = Some(planner.plan_fft_forward(side));
        self.inverse = Some(planner.plan_fft_inverse(side));
        self.side = side;
        let cells = side * side;
        self.kernel = vec![Complex64::default(); cells];
        self.charges = [
            vec![Complex64::default(); cells],
            vec![Complex64::default(); cells],
        ];
        self.spare = vec![Complex64::default(); cells];
    }

    /// Writes (sum_j K2_ij (y_i - y_j), sum_{j != i} K_ij) for every point into `out`, as
    /// `tree::repulse_exact` defines them, approximated on the grid.
    pub(super) fn repulse(&mut self, y: &[[f64; 2]], out: &mut [([f64; 2], f64)]) {
        let n = y.len();
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for p in y {
            lo = lo.min(p[0]).min(p[1]);
            hi = hi.max(p[0]).max(p[1]);
        }
        // A square around every point; a little wider than the points so that none sits on the
        // far edge, and never empty.
        let span = ((hi - lo) * (1.0 + 1e-9)).max(1e-9);
        let boxes = round_boxes(MIN_BOXES.max(span.ceil() as usize).min(MAX_BOXES));
        let box_width = span / boxes as f64;
        let g = boxes * NODES_PER_BOX;
        let h = box_width / NODES_PER_BOX as f64;
        let side = 2 * g;
        self.plan(side);
        // Coordinates relative to the square's centre keep x^2 + y^2 small, so the
        // combination for z_i loses few digits to cancellation.
        let centre = lo + span / 2.0;

        // Where each point sits and its interpolation weights.
        self.place.resize(n, ([0, 0], [[0.0; NODES_PER_BOX]; 2]));
        self.place
            .par_iter_mut()
            .zip(y)
            .with_min_len(1024)
            .for_each(|(pl, p)| {
                for (c, v) in p.iter().enumerate() {
                    let u = (v - lo) / box_width;
                    let b = (u.floor().max(0.0) as usize).min(boxes - 1);
                    pl.0[c] = b * NODES_PER_BOX;
                    pl.1[c] = lagrange(u - b as f64);
                }
            });

        // Charges on the grid: [row = x node][column = y node] in a side x side array.
        for q in &mut self.charges {
            q.iter_mut().for_each(|v| *v = Complex64::default());
        }
        let [q0, q1] = &mut self.charges;
        for (pl, p) in self.place.iter().zip(y) {
            let (x, yy) = (p[0] - centre, p[1] - centre);
            let a = Complex64::new(1.0, x);
            let b = Complex64::new(yy, x * x + yy * yy);
            for (r, wx) in pl.1[0].iter().enumerate() {
                let row = (pl.0[0] + r) * side + pl.0[1];
                for (c, wy) in pl.1[1].iter().enumerate() {
                    let w = wx * wy;
                    q0[row + c] += a * w;
                    q1[row + c] += b * w;
                }
            }
        }

        // The kernel at every grid offset, wrapped around the padded grid (offset -d sits at
        // side - d; offset g, never needed, is 0).
        let h2 = h * h;
        self.kernel
            .par_chunks_mut(side)
            .enumerate()
            .for_each(|(r, row)| {
                let dr = if r <= g {
                    r as f64
                } else {
                    r as f64 - side as f64
                };
                for (c, v) in row.iter_mut().enumerate() {
                    let dc = if c <= g {
                        c as f64
                    } else {
                        c as f64 - side as f64
                    };
                    let k = if r == g || c == g {
                        0.0
                    } else {
                        1.0 / (1.0 + h2 * (dr * dr + dc * dc))
                    };
                    *v = Complex64::new(k * k, 0.0);
                }
            });

        let forward = self.forward.clone().expect("planned");
        let inverse = self.inverse.clone().expect("planned");
        // The kernel's rows beyond g are not zero; the charges' are. Of the result only the first g
        // rows and columns are read.
        fft_2d(
            &forward,
            &mut self.kernel,
            &mut self.spare,
            side,
            side,
            side,
        );
        for q in &mut self.charges {
            fft_2d(&forward, q, &mut self.spare, side, g, side);
        }
        let scale = 1.0 / (side * side) as f64;
        let kernel = &self.kernel;
        for q in &mut self.charges {
            q.par_iter_mut()
                .zip(kernel.par_iter())
                .with_min_len(4096)
                .for_each(|(v, k)| *v *= k.re * scale);
            fft_2d(&inverse, q, &mut self.spare, side, side, g);
        }

        // Potentials back at the points.
        let [p0, p1] = &self.charges;
        out.par_iter_mut()
            .zip(self.place.par_iter().zip(y))
            .with_min_len(1024)
            .for_each(|(o, (pl, p))| {
                let (mut phi1, mut phix, mut phiy, mut phixx) = (0.0, 0.0, 0.0, 0.0);
                for (r, wx) in pl.1[0].iter().enumerate() {
                    let row = (pl.0[0] + r) * side + pl.0[1];
                    for (c, wy) in pl.1[1].iter().enumerate() {
                        let w = wx * wy;
                        let a = p0[row + c];
                        let b = p1[row + c];
                        phi1 += w * a.re;
                        phix += w * a.im;
                        phiy += w * b.re;
                        phixx += w * b.im;
                    }
                }
                let (x, yy) = (p[0] - centre, p[1] - centre);
                let force = [x * phi1 - phix, yy * phi1 - phiy];
                let z = (1.0 + x * x + yy * yy) * phi1 - 2.0 * (x * phix + yy * phiy) + phixx - 1.0;
                *o = (force, z);
            });
    }
}

/// In-place 2-D FFT of a side x side row-major array: the rows (only the first `first_rows`;
/// the rest are zero going in), a transpose, the rows of that (only the first `second_rows`,
/// the columns that are read afterwards), and the transpose back. Each row on its own, so the
/// result does not depend on the threads.
fn fft_2d(
    fft: &Arc<dyn Fft<f64>>,
    data: &mut [Complex64],
    spare: &mut [Complex64],
    side: usize,
    first_rows: usize,
    second_rows: usize,
) {
    let scratch_len = fft.get_inplace_scratch_len();
    let rows = |data: &mut [Complex64], count: usize| {
        data[..count * side].par_chunks_mut(side).for_each_init(
            || vec![Complex64::default(); scratch_len],
            |scratch, row| fft.process_with_scratch(row, scratch),
        );
    };
    rows(data, first_rows);
    transpose(data, spare, side);
    rows(spare, second_rows);
    transpose(spare, data, side);
}

/// `dst` = `src` transposed, both side x side, in cache-sized tiles.
fn transpose(src: &[Complex64], dst: &mut [Complex64], side: usize) {
    const TILE: usize = 32;
    dst.par_chunks_mut(side * TILE)
        .enumerate()
        .for_each(|(tile_row, band)| {
            let r0 = tile_row * TILE;
            let rows = band.len() / side;
            for c0 in (0..side).step_by(TILE) {
                for r in r0..r0 + rows {
                    for c in c0..(c0 + TILE).min(side) {
                        band[(r - r0) * side + c] = src[c * side + r];
                    }
                }
            }
        });
}

/// [`tree::repulsive_forces`](super::repulsive_forces) by interpolation and FFT: the
/// normalised repulsive forces of a layout `y` (n x 2) and Z. For tests and diagnostics; the
/// optimiser uses the same code.
pub fn repulsive_forces_fft(y: ndarray::ArrayView2<f64>) -> (ndarray::Array2<f64>, f64) {
    let pts = super::from_array(y);
    let mut out = vec![([0.0; 2], 0.0); pts.len()];
    FftRepulsion::default().repulse(&pts, &mut out);
    let z: f64 = out.iter().map(|o| o.1).sum();
    let forces = ndarray::Array2::from_shape_fn((pts.len(), 2), |(i, c)| out[i].0[c] / z);
    (forces, z)
}
