"""Generating the C source of a tree ensemble's scoring kernel from its :class:`TreeTables`.

Rows are scored in blocks of :data:`BLOCK_ROWS`. A block is first copied column by column (feature ``f``
of row ``r`` at ``f * BLOCK + r``), so that a node's feature reads as one offset that each row adds its own
position to, and the copy notes whether the block holds a missing value: blocks without one never pay for
missing-value directions, blocks with one take walks that also read them (a NaN goes to the true child
where the node's ``missing_true`` is set, as in the graph).

A tree of depth at most :data:`PERFECT_MAX_DEPTH` (and not much padding, see :func:`_is_perfect`) is laid
out as a complete tree: a leaf above the last level is repeated over the leaves below it, so node ``i``'s
children are ``2i+1`` (false) and ``2i+2`` (true) and nothing but a threshold and a feature is read per
level. Every row of a block goes through such a tree in the same number of steps, which lets the x86-64
kernels walk 8 (AVX2) or 16 (AVX-512) rows at once: the nodes of a level come from registers (permutes)
while a level has few enough nodes, from gathers below. Deeper trees keep an explicit layout (each node
names its two children and a leaf points to itself, so every row takes the tree's depth in steps without
a jump) and are walked 16 rows at a time in plain C. Every kernel compares exactly as the graph does and
adds the same double-precision leaf values in the same order, so they all answer the same bits (trees are
grouped by depth, so that order is not the graph's: a sum may differ from ONNX's in its last bits). When
each tree scores a single output (multiclass boosters: one class per tree), a leaf holds that output's
weight alone and the tree adds it to that output only.

Which kernel serves is chosen once per loaded library by measurement: the first call of at least
:data:`CALIBRATION_ROWS` rows times each kernel this CPU runs on its first rows and keeps the fastest (gathers
are fast on some CPUs and slow on others); smaller calls before that use the widest kernel the CPU runs.

The library it builds exports (C ABI, see :mod:`kepler.runtimes.compiled_trees`):

- ``int32_t kepler_abi(void)``: :data:`ABI_VERSION`;
- ``int32_t kepler_n_features(void)``, ``kepler_n_outputs(void)``, ``kepler_n_trees(void)``;
- ``int32_t kepler_input_bits(void)``: 32 when it reads float32 rows, 64 for float64 (``real_t``);
- ``int32_t kepler_scores(const real_t* x, int64_t rows, int64_t stride, double* out, int32_t threads)``:
  the summed (or averaged) leaf weights of ``rows`` rows of ``x`` (row-major, ``stride`` values apart)
  into ``out`` (rows × outputs); 0 on success.

and, for diagnostics and tests (not needed to score):

- ``int32_t kepler_kernel(void)``: the kernel in use (:data:`KERNELS` index), -1 until chosen;
- ``int32_t kepler_use_kernel(int32_t kernel)``: serves with ``kernel`` from now on (0 when this CPU runs
  it, 1 when not, nothing changed); -1 lets the next large call measure again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from kepler.compilers.backends.tree_tables import TreeTables

ABI_VERSION = 1
# Kernel numbers of kepler_kernel / kepler_use_kernel. The SIMD ones exist for float32 inputs on x86-64.
KERNELS = ("portable", "avx2", "avx512")
BLOCK_ROWS = 128
# Rows walked together: the portable kernel interleaves this many independent walks (measured best of
# 4-32 on a Xeon: enough to hide the load latency of each step without spilling registers), and a block
# is padded to a multiple of it.
ROW_STEP = 16
# The last rows of a block (fewer than ROW_STEP) are walked this many together (the block's padding rows
# complete the last group): a call of a few rows does not pay for ROW_STEP.
TAIL_STEP = 4
# Vectors (of 8 rows for AVX2, 16 for AVX-512) each SIMD kernel walks through a tree together.
AVX2_VECTORS = 8
AVX512_VECTORS = 8
# The most nodes of one level fetched with permutes from registers instead of gathers (at most 32 and 128).
AVX2_PERMUTE_NODES = 32
AVX512_PERMUTE_NODES = 64
# Complete layout: always up to this depth, and up to PERFECT_MAX_DEPTH when the padding at most
# multiplies the tree's leaves by PERFECT_MAX_PADDING (a leaf-wise LightGBM tree of 31 leaves and depth 10
# would walk and store 1,024).
PERFECT_ALWAYS_DEPTH = 6
PERFECT_MAX_DEPTH = 10
PERFECT_MAX_PADDING = 4
# Rows per thread below which a call stays on the calling thread (starting a thread costs ~20-50 µs).
ROWS_PER_THREAD = 1024
# Rows each kernel is timed on (three rounds) when the first large call chooses one.
CALIBRATION_ROWS = 512

_AVX_COMPARISONS = {"<": "_CMP_LT_OQ", "<=": "_CMP_LE_OQ", ">": "_CMP_GT_OQ", ">=": "_CMP_GE_OQ"}
# Padding after the complete-layout arrays: a permute loads a whole vector from a level's first node.
_TABLE_PAD = 64


def _literal(value: float, suffix: str = "") -> str:
    """A C literal of exactly ``value`` (hexadecimal floating point; ``suffix`` ``f`` for a float)."""
    if np.isnan(value):
        return "NAN"
    if np.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    return float(value).hex() + suffix


def _array(ctype: str, name: str, items: Iterable[str], per_line: int = 16) -> str:
    values = list(items)
    lines = [", ".join(values[i : i + per_line]) for i in range(0, len(values), per_line)]
    return (
        f"static const {ctype} {name}[{max(len(values), 1)}] __attribute__((aligned(64))) = {{\n  "
        + ",\n  ".join(lines or ["0"])
        + "\n};\n"
    )


def _leaves(tables: TreeTables, root: int) -> list[int]:
    """The nodes of the leaves under ``root``."""
    children = tables.children
    stack, found = [root], []
    while stack:
        node = stack.pop()
        if children[node, 0] == node:
            found.append(node)
        else:
            stack += [int(children[node, 0]), int(children[node, 1])]
    return found


def _is_perfect(depth: int, leaves: int) -> bool:
    """Whether a tree of ``depth`` with ``leaves`` leaves takes the complete layout."""
    if depth <= PERFECT_ALWAYS_DEPTH:
        return True
    return depth <= PERFECT_MAX_DEPTH and 2**depth <= PERFECT_MAX_PADDING * leaves


def _complete(
    tables: TreeTables, root: int, depth: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tree under ``root`` as a complete tree of ``depth`` levels.

    Returns:
        Per internal position (breadth first, 2**depth - 1): threshold, feature, missing-true; and per leaf
        position (2**depth): the node of the leaf it repeats. Positions under a leaf compare feature 0 with
        threshold 0, whichever way they go the same leaf follows.
    """
    internal = 2**depth - 1
    thresholds = np.zeros(internal, dtype=np.float64)
    features = np.zeros(internal, dtype=np.int64)
    missing = np.zeros(internal, dtype=np.int64)
    leaves = np.zeros(2**depth, dtype=np.int64)
    children = tables.children
    stack = [(root, 0, 0)]  # node, position, level
    while stack:
        node, position, level = stack.pop()
        if children[node, 0] == node:
            first = position
            for _ in range(depth - level):
                first = 2 * first + 1
            start = first - internal
            leaves[start : start + 2 ** (depth - level)] = node
            continue
        thresholds[position] = tables.thresholds[node]
        features[position] = tables.features[node]
        missing[position] = tables.missing_true[node]
        stack.append((int(children[node, 0]), 2 * position + 1, level + 1))
        stack.append((int(children[node, 1]), 2 * position + 2, level + 1))
    return thresholds, features, missing, leaves


def _tree_outputs(tables: TreeTables, leaves: list[list[int]]) -> list[int] | None:
    """The one output each tree scores (a multiclass booster's trees each score one class), or None when a
    tree scores several (its leaves then add a whole row)."""
    outputs = []
    for nodes in leaves:
        weights = tables.leaf_weights[tables.leaf_slot[nodes]]
        used = np.flatnonzero(np.any(weights != 0, axis=0))
        if len(used) > 1:
            return None
        outputs.append(int(used[0]) if len(used) else 0)
    return outputs


def _read_columns(tables: TreeTables) -> tuple[TreeTables, list[int]]:
    """``tables`` with each node's feature renumbered among the columns the trees read, and those columns.

    A block copies only the columns some branch reads: a wide one-hot table's trees read few of its columns.
    """
    used = sorted({int(f) for f in tables.features[tables.leaf_slot < 0]}) or [0]
    position = np.zeros(tables.n_features, dtype=np.int32)
    position[used] = np.arange(len(used), dtype=np.int32)
    return dataclasses.replace(tables, features=position[tables.features]), used


def c_source(tables: TreeTables) -> str:
    """The kernel's C source for ``tables`` (self-contained: the trees are constant arrays in it)."""
    tables, columns = _read_columns(tables)
    single = tables.input_dtype == "float32"
    suffix = "f" if single else ""
    has_missing = bool(tables.missing_true.any())
    leaves = [_leaves(tables, int(root)) for root in tables.roots]
    outputs = _tree_outputs(tables, leaves)
    width = 1 if outputs is not None else tables.n_outputs
    tree_output = outputs if outputs is not None else [0] * tables.n_trees

    def leaf_values(node: int, tree: int) -> list[str]:
        row = tables.leaf_weights[tables.leaf_slot[node]]
        values = [row[tree_output[tree]]] if width == 1 else list(row)
        return [_literal(float(v)) for v in values]

    by_depth: dict[int, list[int]] = {}
    explicit: list[int] = []
    for tree, depth in enumerate(int(d) for d in tables.depths):
        if _is_perfect(depth, len(leaves[tree])):
            by_depth.setdefault(depth, []).append(tree)
        else:
            explicit.append(tree)

    # Complete trees, struct of arrays (the SIMD kernels load a level's thresholds and features as vectors).
    p_thresholds: list[str] = []
    p_features: list[str] = []
    p_missing: list[str] = []
    p_leaves: list[str] = []
    p_trees: list[str] = []
    groups: list[tuple[int, int, int]] = []  # depth, first, end (indices into P_TREES)
    for depth in sorted(by_depth):
        groups.append((depth, len(p_trees), len(p_trees) + len(by_depth[depth])))
        for tree in by_depth[depth]:
            thresholds, features, missing, leaf_nodes = _complete(tables, int(tables.roots[tree]), depth)
            p_trees.append(f"{{{len(p_thresholds)}, {len(p_leaves)}, {tree_output[tree] * BLOCK_ROWS}}}")
            p_thresholds += [_literal(float(v), suffix) for v in thresholds]
            p_features += [str(int(f) * BLOCK_ROWS) for f in features]
            p_missing += [str(-int(m)) for m in missing]
            p_leaves += [value for node in leaf_nodes for value in leaf_values(int(node), tree)]
    p_thresholds += ["0"] * _TABLE_PAD
    p_features += ["0"] * _TABLE_PAD
    p_missing += ["0"] * _TABLE_PAD

    parts = [
        "/* Generated by Kepler (kepler.compilers.backends.c_source): a tree ensemble's scoring kernel. */\n",
        "#define _POSIX_C_SOURCE 200809L\n",
        "#include <math.h>\n#include <pthread.h>\n#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n#include <time.h>\n\n",
        f"#define N_TREES {tables.n_trees}\n#define N_OUTPUTS {tables.n_outputs}\n",
        f"#define N_FEATURES {tables.n_features}\n#define BLOCK {BLOCK_ROWS}\n#define STEP {ROW_STEP}\n#define TAIL {TAIL_STEP}\n",
        f"#define WIDTH {width}\n#define HAS_MISSING {int(has_missing)}\n#define AVERAGE {int(tables.aggregate == 'AVERAGE')}\n",
        f"#define ROWS_PER_THREAD {ROWS_PER_THREAD}\n#define CALIBRATION_ROWS {CALIBRATION_ROWS}\n",
        f"#define AVX2_VECTORS {AVX2_VECTORS}\n#define AVX512_VECTORS {AVX512_VECTORS}\n",
        f"#define AVX2_PERMUTE_NODES {AVX2_PERMUTE_NODES}\n#define AVX512_PERMUTE_NODES {AVX512_PERMUTE_NODES}\n",
        f"#define CMP_AVX {_AVX_COMPARISONS[tables.comparison]}\n#define OP(v, t) ((v) {tables.comparison} (t))\n",
        f"typedef {'float' if single else 'double'} real_t;\n#define INPUT_BITS {32 if single else 64}\n\n",
        f"#define N_READ {len(columns)}\n",
        _array("int32_t", "READ_COLUMNS", (str(c) for c in columns)),
        _array("real_t", "P_THRESHOLD", p_thresholds, per_line=8),
        _array("int32_t", "P_AT", p_features),
        _array("double", "P_LEAF", p_leaves, per_line=6),
        "typedef struct { int32_t node; int32_t leaf; int32_t out; } ptree_t;\n",
        _array("ptree_t", "P_TREES", p_trees, per_line=6),
    ]
    if has_missing:
        parts.append(_array("int32_t", "P_MISSING", p_missing, per_line=32))

    # Deep trees, explicit nodes; a leaf names itself twice and its values sit at E_LEAF[slot * WIDTH].
    e_nodes: list[str] = []
    e_missing: list[str] = []
    e_slot: list[str] = []
    e_leaves: list[str] = []
    e_trees: list[str] = []
    for tree in explicit:
        stack, order = [int(tables.roots[tree])], []
        while stack:
            node = stack.pop()
            order.append(node)
            if tables.children[node, 0] != node:
                stack += [int(tables.children[node, 1]), int(tables.children[node, 0])]
        position = {node: len(e_nodes) + i for i, node in enumerate(order)}
        e_trees.append(
            f"{{{position[order[0]]}, {int(tables.depths[tree])}, {tree_output[tree] * BLOCK_ROWS}}}"
        )
        for node in order:
            false_child, true_child = (position[int(c)] for c in tables.children[node])
            leaf = tables.children[node, 0] == node
            threshold = _literal(float(tables.thresholds[node]), suffix)
            e_nodes.append(
                f"{{{threshold}, {int(tables.features[node]) * BLOCK_ROWS}, {{{false_child}, {true_child}}}}}"
            )
            e_missing.append(str(int(tables.missing_true[node])))
            e_slot.append(str(len(e_leaves) // width if leaf else 0))
            if leaf:
                e_leaves += leaf_values(node, tree)
    parts += [
        "typedef struct { real_t threshold; int32_t at; int32_t child[2]; } node_t;\n",
        "typedef struct { int32_t root; int32_t depth; int32_t out; } etree_t;\n",
        _array("node_t", "E_NODES", e_nodes, per_line=4),
        _array("int32_t", "E_SLOT", e_slot),
        _array("double", "E_LEAF", e_leaves, per_line=6),
        _array("etree_t", "E_TREES", e_trees, per_line=6),
        f"#define N_EXPLICIT {len(explicit)}\n",
    ]
    if has_missing:
        parts.append(_array("uint8_t", "E_MISSING", e_missing, per_line=32))

    def body(walk: str, split: bool) -> str:
        # With `split`, `missing` is a constant in each call, so that the walks without missing values are
        # compiled apart (the scalar walk gains ~15%; the SIMD ones test it once per vector op, not worth
        # doubling their code).
        lines = []
        for depth, first, end in groups:
            loop = (
                f"for (int t = {first}; t < {end}; t++) {walk}(&P_TREES[t], {depth}, xb, rows, n, @M@, acc);"
            )
            if not split:
                lines.append(f"  {loop.replace('@M@', 'missing')}\n")
            elif has_missing:
                lines.append(
                    f"  if (missing) {loop.replace('@M@', '1')}\n  else {loop.replace('@M@', '0')}\n"
                )
            else:
                lines.append(f"  {loop.replace('@M@', '0')}\n")
        return "".join(lines)

    simd = "1" if single else "0"
    kernel = (
        _KERNEL.replace("@ABI@", str(ABI_VERSION))
        .replace("@SIMD@", simd)
        .replace("@BODY_PORTABLE@", body("perfect_portable", True))
        .replace("@BODY_AVX2@", body("perfect_avx2", False))
        .replace("@BODY_AVX512@", body("perfect_avx512", False))
    )
    return "".join(parts) + kernel


_KERNEL = r"""
int32_t kepler_abi(void) { return @ABI@; }
int32_t kepler_n_features(void) { return N_FEATURES; }
int32_t kepler_n_outputs(void) { return N_OUTPUTS; }
int32_t kepler_n_trees(void) { return N_TREES; }
int32_t kepler_input_bits(void) { return INPUT_BITS; }

#define INLINE static inline __attribute__((always_inline))
/* The position of a complete tree's first leaf: its leaves follow its 2^depth - 1 branches. */
#define first_leaf(depth) ((1 << (depth)) - 1)

/* xb: a block column by column (feature f of row r at xb[f * BLOCK + r]); rows: its rows; n: rows rounded
   up to a multiple of STEP (rows past the real ones hold zeros, the SIMD kernels score them and they are
   dropped); acc: the sums, output by output (output k of row r at acc[k * BLOCK + r]); missing: whether the
   block holds a NaN. */

/* `count` rows from row r through a complete tree of `depth` levels: independent walks the CPU overlaps. */
INLINE void walk_portable(const ptree_t* tree, const int depth, const real_t* restrict xb, const int r,
                          const int count, const int missing, double* restrict acc) {
  const real_t* threshold = P_THRESHOLD + tree->node;
  const int32_t* at = P_AT + tree->node;
#if HAS_MISSING
  const int32_t* miss = P_MISSING + tree->node;
#endif
  const real_t* xr = xb + r;
  uint32_t i[STEP];
  (void)missing;
#pragma GCC unroll 64
  for (int j = 0; j < count; j++) i[j] = 0;
#pragma GCC unroll 16
  for (int d = 0; d < depth; d++) {
#pragma GCC unroll 64
    for (int j = 0; j < count; j++) {
      const real_t v = xr[at[i[j]] + j];
      uint32_t c = OP(v, threshold[i[j]]);
#if HAS_MISSING
      if (missing) c |= (uint32_t)(v != v) & (uint32_t)miss[i[j]];
#endif
      i[j] = 2 * i[j] + 1 + c;
    }
  }
  const double* leaf = P_LEAF + tree->leaf;
  double* a = acc + tree->out + r;
#pragma GCC unroll 64
  for (int j = 0; j < count; j++)
    for (int k = 0; k < WIDTH; k++) a[k * BLOCK + j] += leaf[(int64_t)(i[j] - first_leaf(depth)) * WIDTH + k];
}

INLINE void perfect_portable(const ptree_t* tree, const int depth, const real_t* restrict xb, const int rows,
                             const int n, const int missing, double* restrict acc) {
  (void)n;
  int r = 0;
  for (; r + STEP <= rows; r += STEP) walk_portable(tree, depth, xb, r, STEP, missing, acc);
  for (; r < rows; r += TAIL) walk_portable(tree, depth, xb, r, TAIL, missing, acc);
}

/* `count` rows from row r through a tree of explicit nodes; a row at a leaf stays there. */
INLINE void walk_explicit(const etree_t* tree, const real_t* restrict xb, const int r, const int count,
                          const int missing, double* restrict acc) {
  const real_t* xr = xb + r;
  const int32_t root = tree->root;
  const int depth = tree->depth;
  int32_t i[STEP];
  (void)missing;
#pragma GCC unroll 64
  for (int j = 0; j < count; j++) i[j] = root;
  for (int d = 0; d < depth; d++) {
#pragma GCC unroll 64
    for (int j = 0; j < count; j++) {
      const node_t* node = &E_NODES[i[j]];
      const real_t v = xr[node->at + j];
      int c = OP(v, node->threshold);
#if HAS_MISSING
      if (missing) c |= (v != v) & E_MISSING[i[j]];
#endif
      i[j] = node->child[c];
    }
  }
  double* a = acc + tree->out + r;
#pragma GCC unroll 64
  for (int j = 0; j < count; j++) {
    const double* values = &E_LEAF[(int64_t)E_SLOT[i[j]] * WIDTH];
    for (int k = 0; k < WIDTH; k++) a[k * BLOCK + j] += values[k];
  }
}

INLINE void explicit_walks(const real_t* restrict xb, const int rows, const int missing, double* restrict acc) {
  for (int t = 0; t < N_EXPLICIT; t++) {
    int r = 0;
    for (; r + STEP <= rows; r += STEP) walk_explicit(&E_TREES[t], xb, r, STEP, missing, acc);
    for (; r < rows; r += TAIL) walk_explicit(&E_TREES[t], xb, r, TAIL, missing, acc);
  }
}

static void explicit_trees(const real_t* restrict xb, const int rows, const int missing, double* restrict acc) {
  if (HAS_MISSING && missing)
    explicit_walks(xb, rows, 1, acc);
  else
    explicit_walks(xb, rows, 0, acc);
}

static void block_portable(const real_t* restrict xb, const int rows, const int n, const int missing,
                           double* restrict acc) {
@BODY_PORTABLE@  explicit_trees(xb, rows, missing, acc);
}

#if @SIMD@ && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define X86_KERNELS 1
#include <immintrin.h>

/* A complete tree over a block with a SIMD walk of LANES rows per vector: VECTORS vectors at a time, then one. */
#define PERFECT_SIMD(NAME, QUALIFIERS, WALK, LANES, VECTORS)                                                      \
  QUALIFIERS void NAME(const ptree_t* tree, const int depth, const real_t* restrict xb, const int rows, const int n, \
                       const int missing, double* restrict acc) {                                                 \
    (void)rows;                                                                                                   \
    if (depth == 0) {                                                                                             \
      for (int r = 0; r < n; r++)                                                                                 \
        for (int k = 0; k < WIDTH; k++) acc[tree->out + k * BLOCK + r] += P_LEAF[tree->leaf + k];                 \
      return;                                                                                                     \
    }                                                                                                             \
    int r = 0;                                                                                                    \
    for (; r + (LANES) * (VECTORS) <= n; r += (LANES) * (VECTORS)) WALK(tree, depth, xb, r, VECTORS, missing, acc); \
    for (; r < n; r += (LANES)) WALK(tree, depth, xb, r, 1, missing, acc);                                         \
  }


_Static_assert(AVX2_PERMUTE_NODES <= 32 && AVX512_PERMUTE_NODES <= 128, "lookups blend at most 4 tables");

/* ---- AVX2: 8 rows per vector. ---- */
#define AVX2 __attribute__((target("avx2,fma,bmi,bmi2,popcnt")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,bmi,bmi2,popcnt")))

/* table[p] for the `count` nodes of a level (p = position in the level) from permutes: one per 8 nodes,
   blended on p's bits 3 and 4. */
AVX2_INLINE __m256 lookup_avx2(const void* table, const __m256i p, const int count) {
  const float* t = (const float*)table;
  const __m256 a = _mm256_permutevar8x32_ps(_mm256_loadu_ps(t), p);
  if (count <= 8) return a;
  const __m256 bit3 = _mm256_castsi256_ps(_mm256_slli_epi32(p, 28));
  const __m256 ab = _mm256_blendv_ps(a, _mm256_permutevar8x32_ps(_mm256_loadu_ps(t + 8), p), bit3);
  if (count <= 16) return ab;
  const __m256 cd = _mm256_blendv_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(t + 16), p),
                                     _mm256_permutevar8x32_ps(_mm256_loadu_ps(t + 24), p), bit3);
  return _mm256_blendv_ps(ab, cd, _mm256_castsi256_ps(_mm256_slli_epi32(p, 27)));
}

AVX2_INLINE void add_leaves_avx2(const double* leaf, const __m256i li, double* a) {
  for (int k = 0; k < WIDTH; k++) {
    double* ak = a + k * BLOCK;
    const __m256i lk = WIDTH == 1 ? li : _mm256_add_epi32(_mm256_mullo_epi32(li, _mm256_set1_epi32(WIDTH)),
                                                         _mm256_set1_epi32(k));
    _mm256_storeu_pd(ak, _mm256_add_pd(_mm256_loadu_pd(ak), _mm256_i32gather_pd(leaf, _mm256_castsi256_si128(lk), 8)));
    _mm256_storeu_pd(ak + 4, _mm256_add_pd(_mm256_loadu_pd(ak + 4),
                                           _mm256_i32gather_pd(leaf, _mm256_extracti128_si256(lk, 1), 8)));
  }
}

/* `vectors` vectors of rows from row r through a complete tree. */
AVX2_INLINE void walk_avx2(const ptree_t* tree, const int depth, const real_t* xb, const int r, const int vectors,
                           const int missing, double* acc) {
  const float* threshold = P_THRESHOLD + tree->node;
  const int32_t* at = P_AT + tree->node;
#if HAS_MISSING
  const int32_t* miss = P_MISSING + tree->node;
#endif
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i one = _mm256_set1_epi32(1);
  __m256i idx[AVX2_VECTORS];
#pragma GCC unroll 16
  for (int u = 0; u < vectors; u++) {
    const __m256 v = _mm256_loadu_ps(xb + r + 8 * u + at[0]); /* one feature for every row: a plain load */
    __m256i c = _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_set1_ps(threshold[0]), CMP_AVX));
#if HAS_MISSING
    if (missing)
      c = _mm256_or_si256(c, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)),
                                              _mm256_set1_epi32(miss[0])));
#endif
    idx[u] = _mm256_sub_epi32(one, c); /* c is -1 where the comparison holds */
  }
#pragma GCC unroll 16
  for (int d = 1; d < depth; d++) {
    const int first = (1 << d) - 1;
#pragma GCC unroll 16
    for (int u = 0; u < vectors; u++) {
      __m256 t;
      __m256i f;
      __m256i m = _mm256_setzero_si256();
      if ((1 << d) <= AVX2_PERMUTE_NODES) {
        const __m256i p = _mm256_sub_epi32(idx[u], _mm256_set1_epi32(first));
        t = lookup_avx2(threshold + first, p, 1 << d);
        f = _mm256_castps_si256(lookup_avx2(at + first, p, 1 << d));
#if HAS_MISSING
        if (missing) m = _mm256_castps_si256(lookup_avx2(miss + first, p, 1 << d));
#endif
      } else {
        t = _mm256_i32gather_ps(threshold, idx[u], 4);
        f = _mm256_i32gather_epi32(at, idx[u], 4);
#if HAS_MISSING
        if (missing) m = _mm256_i32gather_epi32(miss, idx[u], 4);
#endif
      }
      const __m256 v = _mm256_i32gather_ps(xb + r + 8 * u, _mm256_add_epi32(f, lane), 4);
      __m256i c = _mm256_castps_si256(_mm256_cmp_ps(v, t, CMP_AVX));
#if HAS_MISSING
      if (missing) c = _mm256_or_si256(c, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)), m));
#endif
      idx[u] = _mm256_sub_epi32(_mm256_add_epi32(_mm256_add_epi32(idx[u], idx[u]), one), c);
    }
  }
  const double* leaf = P_LEAF + tree->leaf;
#pragma GCC unroll 16
  for (int u = 0; u < vectors; u++)
    add_leaves_avx2(leaf, _mm256_sub_epi32(idx[u], _mm256_set1_epi32(first_leaf(depth))), acc + tree->out + r + 8 * u);
}

PERFECT_SIMD(perfect_avx2, AVX2_INLINE, walk_avx2, 8, AVX2_VECTORS)

static AVX2 void block_avx2(const real_t* restrict xb, const int rows, const int n, const int missing, double* restrict acc) {
@BODY_AVX2@  explicit_trees(xb, rows, missing, acc);
}

/* ---- AVX-512: 16 rows per vector. ---- */
#define AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,bmi,bmi2,popcnt")))
#define AVX512_INLINE \
  static inline __attribute__((always_inline, target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,bmi,bmi2,popcnt")))

/* table[p] for the `count` nodes of a level from permutes: one per 32 nodes (two tables each), blended on
   p's bits 5 and 6. */
AVX512_INLINE __m512 lookup_avx512(const void* table, const __m512i p, const int count) {
  const float* t = (const float*)table;
  if (count <= 16) return _mm512_permutexvar_ps(p, _mm512_loadu_ps(t));
  const __m512 a = _mm512_permutex2var_ps(_mm512_loadu_ps(t), p, _mm512_loadu_ps(t + 16));
  if (count <= 32) return a;
  const __mmask16 bit5 = _mm512_test_epi32_mask(p, _mm512_set1_epi32(32));
  const __m512 ab = _mm512_mask_blend_ps(bit5, a, _mm512_permutex2var_ps(_mm512_loadu_ps(t + 32), p, _mm512_loadu_ps(t + 48)));
  if (count <= 64) return ab;
  const __m512 cd = _mm512_mask_blend_ps(bit5, _mm512_permutex2var_ps(_mm512_loadu_ps(t + 64), p, _mm512_loadu_ps(t + 80)),
                                         _mm512_permutex2var_ps(_mm512_loadu_ps(t + 96), p, _mm512_loadu_ps(t + 112)));
  return _mm512_mask_blend_ps(_mm512_test_epi32_mask(p, _mm512_set1_epi32(64)), ab, cd);
}

AVX512_INLINE void add_leaves_avx512(const double* leaf, const __m512i li, double* a) {
  for (int k = 0; k < WIDTH; k++) {
    double* ak = a + k * BLOCK;
    const __m512i lk = WIDTH == 1 ? li : _mm512_add_epi32(_mm512_mullo_epi32(li, _mm512_set1_epi32(WIDTH)),
                                                         _mm512_set1_epi32(k));
    _mm512_storeu_pd(ak, _mm512_add_pd(_mm512_loadu_pd(ak), _mm512_i32gather_pd(_mm512_castsi512_si256(lk), leaf, 8)));
    _mm512_storeu_pd(ak + 8, _mm512_add_pd(_mm512_loadu_pd(ak + 8),
                                           _mm512_i32gather_pd(_mm512_extracti64x4_epi64(lk, 1), leaf, 8)));
  }
}

AVX512_INLINE void walk_avx512(const ptree_t* tree, const int depth, const real_t* xb, const int r, const int vectors,
                               const int missing, double* acc) {
  const float* threshold = P_THRESHOLD + tree->node;
  const int32_t* at = P_AT + tree->node;
#if HAS_MISSING
  const int32_t* miss = P_MISSING + tree->node;
#endif
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i one = _mm512_set1_epi32(1);
  __m512i idx[AVX512_VECTORS];
#pragma GCC unroll 16
  for (int u = 0; u < vectors; u++) {
    const __m512 v = _mm512_loadu_ps(xb + r + 16 * u + at[0]);
    __mmask16 c = _mm512_cmp_ps_mask(v, _mm512_set1_ps(threshold[0]), CMP_AVX);
#if HAS_MISSING
    if (missing && miss[0]) c |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
#endif
    idx[u] = _mm512_mask_add_epi32(one, c, one, one);
  }
#pragma GCC unroll 16
  for (int d = 1; d < depth; d++) {
    const int first = (1 << d) - 1;
#pragma GCC unroll 16
    for (int u = 0; u < vectors; u++) {
      __m512 t;
      __m512i f;
      __m512i m = _mm512_setzero_si512();
      if ((1 << d) <= AVX512_PERMUTE_NODES) {
        const __m512i p = _mm512_sub_epi32(idx[u], _mm512_set1_epi32(first));
        t = lookup_avx512(threshold + first, p, 1 << d);
        f = _mm512_castps_si512(lookup_avx512(at + first, p, 1 << d));
#if HAS_MISSING
        if (missing) m = _mm512_castps_si512(lookup_avx512(miss + first, p, 1 << d));
#endif
      } else {
        t = _mm512_i32gather_ps(idx[u], threshold, 4);
        f = _mm512_i32gather_epi32(idx[u], at, 4);
#if HAS_MISSING
        if (missing) m = _mm512_i32gather_epi32(idx[u], miss, 4);
#endif
      }
      const __m512 v = _mm512_i32gather_ps(_mm512_add_epi32(f, lane), xb + r + 16 * u, 4);
      __mmask16 c = _mm512_cmp_ps_mask(v, t, CMP_AVX);
#if HAS_MISSING
      if (missing) c |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_test_epi32_mask(m, m);
#endif
      const __m512i twice = _mm512_add_epi32(_mm512_add_epi32(idx[u], idx[u]), one);
      idx[u] = _mm512_mask_add_epi32(twice, c, twice, one);
    }
  }
  const double* leaf = P_LEAF + tree->leaf;
#pragma GCC unroll 16
  for (int u = 0; u < vectors; u++)
    add_leaves_avx512(leaf, _mm512_sub_epi32(idx[u], _mm512_set1_epi32(first_leaf(depth))), acc + tree->out + r + 16 * u);
}

PERFECT_SIMD(perfect_avx512, AVX512_INLINE, walk_avx512, 16, AVX512_VECTORS)

static AVX512 void block_avx512(const real_t* restrict xb, const int rows, const int n, const int missing, double* restrict acc) {
@BODY_AVX512@  explicit_trees(xb, rows, missing, acc);
}
#else
#define X86_KERNELS 0
#endif

typedef void (*block_fn)(const real_t* restrict, int, int, int, double* restrict);

static int kernel_runs(const int32_t kernel) {
  if (kernel == 0) return 1;
#if X86_KERNELS
  __builtin_cpu_init();
  if (kernel == 1) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
  if (kernel == 2)
    return kernel_runs(1) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#endif
  return 0;
}

static block_fn kernel_block(const int32_t kernel) {
#if X86_KERNELS
  if (kernel == 2) return block_avx512;
  if (kernel == 1) return block_avx2;
#endif
  (void)kernel;
  return block_portable;
}

/* Scores rows; 0, or 2 when its block buffers cannot be allocated. The buffers live on the heap: a wide
   table's (thousands of one-hot columns) would overflow a thread's stack. */
static int score_rows(const real_t* x, int64_t rows, int64_t stride, double* out, const int32_t kernel) {
  real_t* xb = aligned_alloc(64, (sizeof(real_t) * N_READ * BLOCK + 63) / 64 * 64);
  double* acc = aligned_alloc(64, (sizeof(double) * N_OUTPUTS * BLOCK + 63) / 64 * 64);
  if (xb == NULL || acc == NULL) {
    free(xb);
    free(acc);
    return 2;
  }
  const block_fn score_block = kernel_block(kernel);
  for (int64_t start = 0; start < rows; start += BLOCK) {
    const int n = (rows - start) < BLOCK ? (int)(rows - start) : BLOCK;
    const int padded = (n + STEP - 1) / STEP * STEP;
    const real_t* block = x + start * stride;
    int missing = 0;
    for (int r = 0; r < n; r++) {
      const real_t* row = block + r * stride;
      for (int f = 0; f < N_READ; f++) {
        const real_t v = row[READ_COLUMNS[f]];
        xb[f * BLOCK + r] = v;
        missing |= (v != v);
      }
    }
    for (int f = 0; f < N_READ; f++)
      for (int r = n; r < padded; r++) xb[f * BLOCK + r] = 0;
    for (int k = 0; k < N_OUTPUTS; k++) memset(acc + k * BLOCK, 0, sizeof(double) * (size_t)padded);
    score_block(xb, n, padded, HAS_MISSING ? missing : 0, acc);
    double* o = out + start * N_OUTPUTS;
    for (int r = 0; r < n; r++)
      for (int k = 0; k < N_OUTPUTS; k++) o[r * N_OUTPUTS + k] = AVERAGE ? acc[k * BLOCK + r] / N_TREES : acc[k * BLOCK + r];
  }
  free(xb);
  free(acc);
  return 0;
}

/* The kernel in use: -1 until a call of CALIBRATION_ROWS rows or more has timed them. */
static int32_t chosen = -1;

int32_t kepler_kernel(void) { return __atomic_load_n(&chosen, __ATOMIC_RELAXED); }

int32_t kepler_use_kernel(int32_t kernel) {
  if (kernel < 0) {
    __atomic_store_n(&chosen, -1, __ATOMIC_RELAXED);
    return 0;
  }
  if (kernel > 2 || !kernel_runs(kernel)) return 1;
  __atomic_store_n(&chosen, kernel, __ATOMIC_RELAXED);
  return 0;
}

static double cpu_seconds(void) {
  struct timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* The kernel for a call: the chosen one, else the widest this CPU runs; a call large enough chooses by
   timing each on its first rows (three rounds, the best of each), which the call then scores again. */
static int32_t kernel_for(const real_t* x, int64_t rows, int64_t stride, double* out) {
  const int32_t known = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
  if (known >= 0) return known;
  int32_t widest = 0;
  for (int32_t k = 1; k <= 2; k++)
    if (kernel_runs(k)) widest = k;
  if (widest == 0 || rows < CALIBRATION_ROWS) return widest;
  double best[3] = {1e30, 1e30, 1e30};
  for (int round = 0; round < 3; round++)
    for (int32_t k = 0; k <= widest; k++) {
      if (!kernel_runs(k)) continue;
      const double started = cpu_seconds();
      if (score_rows(x, CALIBRATION_ROWS, stride, out, k) != 0) return 0;
      const double took = cpu_seconds() - started;
      if (took < best[k]) best[k] = took;
    }
  int32_t fastest = 0;
  for (int32_t k = 1; k <= widest; k++)
    if (best[k] < best[fastest]) fastest = k;
  __atomic_store_n(&chosen, fastest, __ATOMIC_RELAXED);
  return fastest;
}

typedef struct { const real_t* x; int64_t rows; int64_t stride; double* out; int32_t kernel; int status; } part_t;

static void* score_part(void* arg) {
  part_t* part = (part_t*)arg;
  part->status = score_rows(part->x, part->rows, part->stride, part->out, part->kernel);
  return NULL;
}

int32_t kepler_scores(const real_t* x, int64_t rows, int64_t stride, double* out, int32_t threads) {
  if (rows <= 0) return 0;
  if (stride < N_FEATURES) return 1;
  const int32_t kernel = kernel_for(x, rows, stride, out);
  int64_t wanted = rows / ROWS_PER_THREAD;
  int parts = threads < 1 ? 1 : threads;
  if (wanted < parts) parts = wanted < 1 ? 1 : (int)wanted;
  if (parts > 64) parts = 64;
  if (parts == 1) return score_rows(x, rows, stride, out, kernel);
  pthread_t handles[64];
  part_t work[64];
  const int64_t blocks = (rows + BLOCK - 1) / BLOCK;
  int64_t start = 0;
  for (int p = 0; p < parts; p++) {
    int64_t end = ((blocks * (p + 1)) / parts) * BLOCK;
    if (end > rows) end = rows;
    work[p].x = x + start * stride;
    work[p].rows = end - start;
    work[p].stride = stride;
    work[p].out = out + start * N_OUTPUTS;
    work[p].kernel = kernel;
    work[p].status = 0;
    start = end;
  }
  int started = 0;
  for (int p = 1; p < parts; p++) {
    if (pthread_create(&handles[p], NULL, score_part, &work[p]) != 0) break;
    started = p;
  }
  score_part(&work[0]);
  for (int p = started + 1; p < parts; p++) score_part(&work[p]); /* threads that would not start */
  for (int p = 1; p <= started; p++) pthread_join(handles[p], NULL);
  for (int p = 0; p < parts; p++)
    if (work[p].status != 0) return work[p].status;
  return 0;
}
"""
