//! The repulsive forces of a 2-D layout: a Barnes-Hut quadtree walked per leaf, or the exact
//! O(n^2) sum when theta is 0.

use super::from_array;
use super::kernel;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// Points per leaf. Each leaf is also the group that shares one interaction list.
const LEAF_CAPACITY: usize = 16;
/// Cells stop splitting here (only coincident points get this deep).
const MAX_DEPTH: usize = 40;

#[derive(Clone, Copy, Debug)]
struct Node {
    /// Centre of mass of the points under the node.
    com: [f64; 2],
    mass: f64,
    /// Side of the (square) cell squared.
    width2: f64,
    /// Index of the first node after this subtree (nodes are in depth-first order, so node `a`
    /// is an ancestor of node `b` exactly when `a < b < nodes[a].skip`).
    skip: u32,
    /// Leaf: its points are at tree positions `start..start + len`; `len == 0` for inner nodes.
    start: u32,
    len: u32,
}

/// A quadtree in one flat vector, depth-first, so that a walk is a forward scan with jumps over
/// summarised subtrees. Rebuilt every iteration into the same buffers.
///
/// Repulsion is computed per leaf rather than per point: one walk per leaf collects the cells
/// that may stand for their points as seen from anywhere in the leaf's bounding box (side `w`,
/// smallest distance `d` from the box to the cell's centre of mass, `w < theta * d`, never an
/// ancestor of the leaf) and the points of the other leaves it has to visit; then every point of
/// the leaf sums over that list. The criterion holds for every point in the leaf, so each
/// summary also passes the per-point Barnes-Hut test with the same theta.
#[derive(Default)]
pub(super) struct QuadTree {
    nodes: Vec<Node>,
    /// Node index of every leaf, in depth-first order (so their point ranges follow each other).
    leaves: Vec<u32>,
    /// Bounding box of each leaf's points: [x_lo, y_lo, x_hi, y_hi].
    leaf_boxes: Vec<[f64; 4]>,
    /// Point indices in tree order.
    order: Vec<u32>,
    /// Their coordinates, in the same order.
    xs: Vec<f64>,
    ys: Vec<f64>,
    scratch: Vec<u32>,
    /// Per tree position: (force, z), before scattering back to point order.
    sorted_out: Vec<([f64; 2], f64)>,
}

/// A leaf's interaction list, as structure of arrays.
#[derive(Default)]
struct InteractionList {
    xs: Vec<f64>,
    ys: Vec<f64>,
    ms: Vec<f64>,
}

impl InteractionList {
    fn clear(&mut self) {
        self.xs.clear();
        self.ys.clear();
        self.ms.clear();
    }

    fn push(&mut self, x: f64, y: f64, m: f64) {
        self.xs.push(x);
        self.ys.push(y);
        self.ms.push(m);
    }
}

impl QuadTree {
    fn build(&mut self, y: &[[f64; 2]]) {
        let n = y.len();
        self.nodes.clear();
        self.leaves.clear();
        self.leaf_boxes.clear();
        self.order.clear();
        self.order.extend(0..n as u32);
        self.scratch.resize(n, 0);
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for p in y {
            for c in 0..2 {
                lo[c] = lo[c].min(p[c]);
                hi[c] = hi[c].max(p[c]);
            }
        }
        let centre = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
        let extent = (hi[0] - lo[0]).max(hi[1] - lo[1]);
        // A hair larger than the bounding box so that every point is inside.
        let half = extent / 2.0 * (1.0 + 1e-9) + f64::MIN_POSITIVE;
        self.build_node(y, 0, n, centre, half, 0);
        self.xs.clear();
        self.ys.clear();
        for &i in &self.order {
            self.xs.push(y[i as usize][0]);
            self.ys.push(y[i as usize][1]);
        }
        for &l in &self.leaves {
            let nd = self.nodes[l as usize];
            let r = nd.start as usize..(nd.start + nd.len) as usize;
            let (mut b_lo, mut b_hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
            for (x, yy) in self.xs[r.clone()].iter().zip(&self.ys[r]) {
                b_lo = [b_lo[0].min(*x), b_lo[1].min(*yy)];
                b_hi = [b_hi[0].max(*x), b_hi[1].max(*yy)];
            }
            self.leaf_boxes.push([b_lo[0], b_lo[1], b_hi[0], b_hi[1]]);
        }
    }

    fn build_node(
        &mut self,
        y: &[[f64; 2]],
        lo: usize,
        hi: usize,
        centre: [f64; 2],
        half: f64,
        depth: usize,
    ) {
        let id = self.nodes.len();
        let (mut sx, mut sy) = (0.0, 0.0);
        for &i in &self.order[lo..hi] {
            sx += y[i as usize][0];
            sy += y[i as usize][1];
        }
        let mass = (hi - lo) as f64;
        self.nodes.push(Node {
            com: [sx / mass, sy / mass],
            mass,
            width2: 4.0 * half * half,
            skip: 0,
            start: lo as u32,
            len: 0,
        });
        if hi - lo <= LEAF_CAPACITY || depth >= MAX_DEPTH {
            self.nodes[id].len = (hi - lo) as u32;
            self.leaves.push(id as u32);
        } else {
            // Counting sort of the points into the four quadrants.
            let quadrant = |p: [f64; 2]| -> usize {
                (p[0] >= centre[0]) as usize | (((p[1] >= centre[1]) as usize) << 1)
            };
            let mut counts = [0usize; 4];
            for &i in &self.order[lo..hi] {
                counts[quadrant(y[i as usize])] += 1;
            }
            let mut starts = [lo; 4];
            for q in 1..4 {
                starts[q] = starts[q - 1] + counts[q - 1];
            }
            let mut fill = starts;
            for t in lo..hi {
                let i = self.order[t];
                let q = quadrant(y[i as usize]);
                self.scratch[fill[q]] = i;
                fill[q] += 1;
            }
            self.order[lo..hi].copy_from_slice(&self.scratch[lo..hi]);
            let h = half / 2.0;
            for q in 0..4 {
                if counts[q] == 0 {
                    continue;
                }
                let c = [
                    centre[0] + if q & 1 == 1 { h } else { -h },
                    centre[1] + if q & 2 == 2 { h } else { -h },
                ];
                self.build_node(y, starts[q], starts[q] + counts[q], c, h, depth + 1);
            }
        }
        self.nodes[id].skip = self.nodes.len() as u32;
    }

    /// The interaction list of leaf number `k` (other than its own points).
    fn interactions(&self, k: usize, theta2: f64, list: &mut InteractionList) {
        list.clear();
        let own = self.leaves[k] as usize;
        let b = self.leaf_boxes[k];
        let nodes = &self.nodes[..];
        let mut at = 0usize;
        while at < nodes.len() {
            let nd = &nodes[at];
            if at <= own && own < nd.skip as usize {
                // The leaf itself (its points are handled apart) or one of its ancestors.
                at = if at == own { nd.skip as usize } else { at + 1 };
                continue;
            }
            let ex = (b[0] - nd.com[0]).max(nd.com[0] - b[2]).max(0.0);
            let ey = (b[1] - nd.com[1]).max(nd.com[1] - b[3]).max(0.0);
            if nd.width2 < theta2 * (ex * ex + ey * ey) {
                list.push(nd.com[0], nd.com[1], nd.mass);
                at = nd.skip as usize;
            } else if nd.len > 0 {
                let r = nd.start as usize..(nd.start + nd.len) as usize;
                list.xs.extend_from_slice(&self.xs[r.clone()]);
                list.ys.extend_from_slice(&self.ys[r.clone()]);
                list.ms.extend(r.map(|_| 1.0));
                at = nd.skip as usize;
            } else {
                at += 1;
            }
        }
    }

    /// Unnormalised repulsion of every point, in point order: (sum_j q_ij^2 (y_i - y_j),
    /// sum_j q_ij) over j != i.
    fn repulse_all(&mut self, theta: f64, out: &mut [([f64; 2], f64)]) {
        let theta2 = theta * theta;
        let n = self.order.len();
        let mut sorted_out = std::mem::take(&mut self.sorted_out);
        sorted_out.clear();
        sorted_out.resize(n, ([0.0; 2], 0.0));
        {
            // One output slice per leaf (leaves cover the tree positions in order).
            let mut pieces = Vec::with_capacity(self.leaves.len());
            let mut rest = &mut sorted_out[..];
            for &l in &self.leaves {
                let (head, tail) = rest.split_at_mut(self.nodes[l as usize].len as usize);
                pieces.push(head);
                rest = tail;
            }
            let tree = &*self;
            pieces.into_par_iter().enumerate().for_each_init(
                InteractionList::default,
                |list, (k, piece)| {
                    tree.interactions(k, theta2, list);
                    let nd = tree.nodes[tree.leaves[k] as usize];
                    let s = nd.start as usize;
                    let e = s + nd.len as usize;
                    // The leaf's own points join the list with mass 1. Each point then meets
                    // itself too, at distance 0 (q = 1, no force), which the `- 1.0` removes
                    // from Z.
                    list.xs.extend_from_slice(&tree.xs[s..e]);
                    list.ys.extend_from_slice(&tree.ys[s..e]);
                    list.ms.extend((s..e).map(|_| 1.0));
                    for (t, slot) in piece.iter_mut().enumerate() {
                        let p = [tree.xs[s + t], tree.ys[s + t]];
                        let (f, z) = kernel::repulsion(p, &list.xs, &list.ys, &list.ms);
                        *slot = (f, z - 1.0);
                    }
                },
            );
        }
        for (t, &i) in self.order.iter().enumerate() {
            out[i as usize] = sorted_out[t];
        }
        self.sorted_out = sorted_out;
    }
}

/// Exact repulsion of point i: (sum_j q_ij^2 (y_i - y_j), sum_j q_ij) over j != i.
pub(super) fn repulse_exact(i: usize, y: &[[f64; 2]]) -> ([f64; 2], f64) {
    let yi = y[i];
    let (mut fx, mut fy, mut z) = (0.0, 0.0, 0.0);
    for (j, p) in y.iter().enumerate() {
        if j != i {
            let dx = yi[0] - p[0];
            let dy = yi[1] - p[1];
            let q = 1.0 / (1.0 + dx * dx + dy * dy);
            z += q;
            fx += q * q * dx;
            fy += q * q * dy;
        }
    }
    ([fx, fy], z)
}

/// The normalised repulsive forces of a layout `y` (n x 2): row i is
/// sum_j q_ij^2 (y_i - y_j) / Z with the unnormalised kernel q_ij = 1 / (1 + |y_i - y_j|^2)
/// and Z = sum_{i != j} q_ij. Barnes-Hut with `theta` > 0, exact with `theta` == 0. Returns the
/// forces and Z. For tests and diagnostics; the optimiser uses the same code.
pub fn repulsive_forces(y: ArrayView2<f64>, theta: f64) -> (Array2<f64>, f64) {
    let pts = from_array(y);
    let mut tree = QuadTree::default();
    let mut out = vec![([0.0; 2], 0.0); pts.len()];
    repulsion_into(&pts, theta, &mut tree, &mut out);
    let z: f64 = out.iter().map(|o| o.1).sum();
    let forces = Array2::from_shape_fn((pts.len(), 2), |(i, c)| out[i].0[c] / z);
    (forces, z)
}

pub(super) fn repulsion_into(
    y: &[[f64; 2]],
    theta: f64,
    tree: &mut QuadTree,
    out: &mut [([f64; 2], f64)],
) {
    if theta == 0.0 {
        out.par_iter_mut()
            .enumerate()
            .with_min_len(16)
            .for_each(|(i, o)| *o = repulse_exact(i, y));
    } else {
        tree.build(y);
        tree.repulse_all(theta, out);
    }
}
