/* test_ops_shape.c - the shape ops (src/ops/shape.c): known values in every dtype, views
 * that share the input's buffer, the strided copy against index formulas, gradients at
 * hand-computed points, the gradient-check rows, and a table of bad inputs per op. */
#include "util.h"
#include "cases.h"
#include <math.h>
#include <stdbool.h>
#include <string.h>

static const cg_dtype all_dtypes[] = {CG_F32, CG_F64, CG_I32, CG_I64, CG_BOOL};
#define N_DTYPES (int)(sizeof all_dtypes / sizeof all_dtypes[0])

/* The value v as stored in dtype d: bool keeps its parity, so 0,1,2,3 reads 0,1,0,1 and
 * moved elements stay recognisable. */
static double as_dtype(cg_dtype d, double v) { return d == CG_BOOL ? fmod(fabs(v), 2) : v; }

/* A tensor of dtype d holding values (converted with as_dtype; at most 64). */
static cg_tensor *make(cg_dtype d, int ndim, const int64_t *shape, const double *values)
{
  union {
    float f32[64];
    double f64[64];
    int32_t i32[64];
    int64_t i64[64];
    uint8_t b[64];
  } buf;
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  assert_true(n <= 64);
  for (int64_t i = 0; i < n; i++) {
    double v = as_dtype(d, values[i]);
    switch (d) {
    case CG_F32: buf.f32[i] = (float)v; break;
    case CG_F64: buf.f64[i] = v; break;
    case CG_I32: buf.i32[i] = (int32_t)v; break;
    case CG_I64: buf.i64[i] = (int64_t)v; break;
    default: buf.b[i] = (uint8_t)v; break;
    }
  }
  cg_tensor *t = cg_tensor_from(d, ndim, shape, &buf);
  assert_non_null(t);
  return t;
}

/* 0, 1, 2, ... in dtype d. */
static cg_tensor *iota(cg_dtype d, int ndim, const int64_t *shape)
{
  static const double counting[64] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                      13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24};
  return make(d, ndim, shape, counting);
}

static void assert_values_in(cg_dtype d, const cg_tensor *y, int ndim, const int64_t *shape,
                             const double *values)
{
  double converted[64];
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  for (int64_t i = 0; i < n; i++) converted[i] = as_dtype(d, values[i]);
  assert_tensor(y, d, ndim, shape, converted, 0);
}

/* ======================================================================================
 * Known values: each op applied to 0, 1, 2, ... of in_shape, in every dtype
 * ==================================================================================== */

static cg_tensor *reshape_3_free(cg_tensor *x) { return cg_reshape(x, 2, (int64_t[]){3, -1}); }
static cg_tensor *reshape_rank0(cg_tensor *x) { return cg_reshape(x, 0, NULL); }
static cg_tensor *expand_last(cg_tensor *x) { return cg_expand_dims(x, -1); }
static cg_tensor *expand_first(cg_tensor *x) { return cg_expand_dims(x, 0); }
static cg_tensor *squeeze_all(cg_tensor *x) { return cg_squeeze(x, NULL, 0); }
static cg_tensor *squeeze_last(cg_tensor *x) { return cg_squeeze(x, (int[]){-1}, 1); }
static cg_tensor *transpose_reversed(cg_tensor *x) { return cg_transpose(x, NULL, 0); }
static cg_tensor *transpose_201(cg_tensor *x) { return cg_transpose(x, (int[]){2, 0, 1}, 3); }
static cg_tensor *slice_rows_1_2(cg_tensor *x)
{
  return cg_slice(x, (int64_t[]){1, 1}, (int64_t[]){2, -1});
}
static cg_tensor *slice_last(cg_tensor *x) { return cg_slice(x, (int64_t[]){3}, (int64_t[]){1}); }
/* value 1 fits every dtype, bool included */
static cg_tensor *pad_top_right(cg_tensor *x) { return cg_pad(x, (int64_t[]){1, 0, 0, 1}, 1); }
static cg_tensor *pad_vector(cg_tensor *x) { return cg_pad(x, (int64_t[]){2, 1}, 1); }
static cg_tensor *tile_3(cg_tensor *x) { return cg_tile(x, (int64_t[]){3}); }
static cg_tensor *tile_2x3(cg_tensor *x) { return cg_tile(x, (int64_t[]){2, 3}); }
static cg_tensor *tile_2x2(cg_tensor *x) { return cg_tile(x, (int64_t[]){2, 2}); }
static cg_tensor *broadcast_2x3(cg_tensor *x) { return cg_broadcast_to(x, 2, (int64_t[]){2, 3}); }
static cg_tensor *broadcast_2(cg_tensor *x) { return cg_broadcast_to(x, 1, (int64_t[]){2}); }

typedef struct {
  const char *what;
  cg_tensor *(*apply)(cg_tensor *x);
  int in_ndim;
  int64_t in_shape[CG_MAX_DIMS];
  int out_ndim;
  int64_t out_shape[CG_MAX_DIMS];
  double out[24];
} known_case;

static const known_case known[] = {
    {"Reshape [2,3] -> [3,-1]", reshape_3_free, 2, {2, 3}, 2, {3, 2}, {0, 1, 2, 3, 4, 5}},
    {"Reshape [1] -> rank 0", reshape_rank0, 1, {1}, 0, {0}, {0}},
    {"ExpandDims [2,3] axis -1", expand_last, 2, {2, 3}, 3, {2, 3, 1}, {0, 1, 2, 3, 4, 5}},
    {"ExpandDims [3] axis 0", expand_first, 1, {3}, 2, {1, 3}, {0, 1, 2}},
    {"ExpandDims rank 0", expand_first, 0, {0}, 1, {1}, {0}},
    {"Squeeze [1,3,1] all", squeeze_all, 3, {1, 3, 1}, 1, {3}, {0, 1, 2}},
    {"Squeeze [1,3,1] axis -1", squeeze_last, 3, {1, 3, 1}, 2, {1, 3}, {0, 1, 2}},
    /* [[0,1,2],[3,4,5]] transposed: [[0,3],[1,4],[2,5]] */
    {"Transpose [2,3]", transpose_reversed, 2, {2, 3}, 2, {3, 2}, {0, 3, 1, 4, 2, 5}},
    /* x[i][j][k] = 6i + 2j + k; y[a][b][c] = x[b][c][a] */
    {"Transpose [2,3,2] perm [2,0,1]", transpose_201, 3, {2, 3, 2}, 3, {2, 2, 3},
     {0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11}},
    {"Transpose rank 0", transpose_reversed, 0, {0}, 0, {0}, {0}},
    /* rows 1..2, columns 1..3 of [[0..3],[4..7],[8..11]] */
    {"Slice [3,4] begin [1,1] size [2,-1]", slice_rows_1_2, 2, {3, 4}, 2, {2, 3},
     {5, 6, 7, 9, 10, 11}},
    {"Slice [4] begin [3] size [1]", slice_last, 1, {4}, 1, {1}, {3}},
    /* one row of 1s above, one column of 1s to the right of [[0,1],[2,3]] */
    {"Pad [2,2] paddings [1,0,0,1]", pad_top_right, 2, {2, 2}, 2, {3, 3},
     {1, 1, 1, 0, 1, 1, 2, 3, 1}},
    {"Pad [2] paddings [2,1]", pad_vector, 1, {2}, 1, {5}, {1, 1, 0, 1, 1}},
    {"Tile [2] x3", tile_3, 1, {2}, 1, {6}, {0, 1, 0, 1, 0, 1}},
    /* [[0],[1]] repeated twice down, three times across */
    {"Tile [2,1] x[2,3]", tile_2x3, 2, {2, 1}, 2, {4, 3}, {0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1}},
    {"Tile [1,2] x[2,2]", tile_2x2, 2, {1, 2}, 2, {2, 4}, {0, 1, 0, 1, 0, 1, 0, 1}},
    {"BroadcastTo [3] -> [2,3]", broadcast_2x3, 1, {3}, 2, {2, 3}, {0, 1, 2, 0, 1, 2}},
    {"BroadcastTo [2,1] -> [2,3]", broadcast_2x3, 2, {2, 1}, 2, {2, 3}, {0, 0, 0, 1, 1, 1}},
    {"BroadcastTo rank 0 -> [2]", broadcast_2, 0, {0}, 1, {2}, {0, 0}},
};

static void test_known_values(void **state)
{
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    const known_case *k = &known[i];
    for (int t = 0; t < N_DTYPES; t++) {
      cg_tensor *y = k->apply(iota(all_dtypes[t], k->in_ndim, k->in_shape));
      if (!y) fail_msg("%s (%s): %s", k->what, cg_dtype_name(all_dtypes[t]), cg_last_error());
      assert_values_in(all_dtypes[t], y, k->out_ndim, k->out_shape, k->out);
    }
  }
}

/* Reshape, ExpandDims and Squeeze return views: same buffer, no copy. */
static void test_views_share_the_buffer(void **state)
{
  cg_tensor *x = iota(CG_F32, 3, (int64_t[]){1, 2, 3});
  cg_tensor *views[] = {cg_reshape(x, 1, (int64_t[]){6}), cg_expand_dims(x, 1),
                        cg_squeeze(x, NULL, 0)};
  for (int i = 0; i < 3; i++) {
    assert_non_null(views[i]);
    assert_ptr_equal(cg_tensor_data(views[i]), cg_tensor_data(x));
  }
}

static void test_concat_values(void **state)
{
  for (int t = 0; t < N_DTYPES; t++) {
    cg_dtype d = all_dtypes[t];
    /* [[0,1],[2,3]] next to [[4],[5]] */
    cg_tensor *cols[] = {make(d, 2, (int64_t[]){2, 2}, (double[]){0, 1, 2, 3}),
                         make(d, 2, (int64_t[]){2, 1}, (double[]){4, 5})};
    assert_values_in(d, cg_concat(cols, 2, -1), 2, (int64_t[]){2, 3},
                     (double[]){0, 1, 4, 2, 3, 5});
    /* [[0,1]] above [[2,3],[4,5]] above an empty [0,2] */
    cg_tensor *rows[] = {make(d, 2, (int64_t[]){1, 2}, (double[]){0, 1}),
                         make(d, 2, (int64_t[]){2, 2}, (double[]){2, 3, 4, 5}),
                         cg_zeros(d, 2, (int64_t[]){0, 2})};
    assert_values_in(d, cg_concat(rows, 3, 0), 2, (int64_t[]){3, 2},
                     (double[]){0, 1, 2, 3, 4, 5});
  }
}

static void test_split_values(void **state)
{
  for (int t = 0; t < N_DTYPES; t++) {
    cg_dtype d = all_dtypes[t];
    cg_tensor *halves[2], *pieces[3];
    /* [[0,1,2,3],[4,5,6,7]] into column halves */
    assert_int_equal(cg_split(iota(d, 2, (int64_t[]){2, 4}), 2, 1, halves), CG_OK);
    assert_values_in(d, halves[0], 2, (int64_t[]){2, 2}, (double[]){0, 1, 4, 5});
    assert_values_in(d, halves[1], 2, (int64_t[]){2, 2}, (double[]){2, 3, 6, 7});
    /* rows of [[0,1],[2,3],[4,5]] by sizes [1,-1,0] */
    assert_int_equal(cg_split_sizes(iota(d, 2, (int64_t[]){3, 2}), (int64_t[]){1, -1, 0}, 3,
                                    0, pieces),
                     CG_OK);
    assert_values_in(d, pieces[0], 2, (int64_t[]){1, 2}, (double[]){0, 1});
    assert_values_in(d, pieces[1], 2, (int64_t[]){2, 2}, (double[]){2, 3, 4, 5});
    assert_values_in(d, pieces[2], 2, (int64_t[]){0, 2}, NULL);
  }
}

/* Sizes 0 anywhere: outputs of the right shape, nothing copied out of range. */
static void test_empty_tensors(void **state)
{
  cg_tensor *x = iota(CG_F64, 2, (int64_t[]){2, 3});
  assert_tensor(cg_slice(x, (int64_t[]){2, 0}, (int64_t[]){-1, -1}), CG_F64, 2,
                ((int64_t[]){0, 3}), NULL, 0);
  assert_tensor(cg_tile(x, (int64_t[]){0, 2}), CG_F64, 2, ((int64_t[]){0, 6}), NULL, 0);
  cg_tensor *empty = cg_zeros(CG_F64, 2, (int64_t[]){0, 3});
  assert_tensor(cg_pad(empty, (int64_t[]){1, 0, 0, 0}, 7), CG_F64, 2, ((int64_t[]){1, 3}),
                ((double[]){7, 7, 7}), 0);
  assert_tensor(cg_transpose(empty, NULL, 0), CG_F64, 2, ((int64_t[]){3, 0}), NULL, 0);
  assert_tensor(cg_broadcast_to(empty, 3, (int64_t[]){2, 0, 3}), CG_F64, 3,
                ((int64_t[]){2, 0, 3}), NULL, 0);
}

/* ======================================================================================
 * The strided copy (with its axis merging) against plain index formulas, random data
 * ==================================================================================== */

static void test_transpose_matches_index_formula(void **state)
{
  static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                  {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  const int64_t shape[3] = {3, 4, 5};
  cg_tensor *x = cg_random_uniform(CG_F64, 3, shape, -1, 1, 7);
  const double *xv = cg_tensor_data(x);
  for (int p = 0; p < 6; p++) {
    cg_tensor *y = cg_transpose(x, perms[p], 3);
    assert_non_null(y);
    const double *yv = cg_tensor_data(y);
    int64_t i[3], flat = 0;
    for (i[0] = 0; i[0] < shape[perms[p][0]]; i[0]++)
      for (i[1] = 0; i[1] < shape[perms[p][1]]; i[1]++)
        for (i[2] = 0; i[2] < shape[perms[p][2]]; i[2]++, flat++) {
          int64_t at[3]; /* the x index that y's index i reads */
          for (int d = 0; d < 3; d++) at[perms[p][d]] = i[d];
          assert_true(yv[flat] == xv[(at[0] * 4 + at[1]) * 5 + at[2]]);
        }
  }
}

static void test_slice_and_pad_match_index_formula(void **state)
{
  const int64_t shape[3] = {4, 5, 6}, begin[3] = {1, 0, 2}, size[3] = {2, 5, 3};
  cg_tensor *x = cg_random_uniform(CG_F64, 3, shape, -1, 1, 11);
  const double *xv = cg_tensor_data(x);
  cg_tensor *y = cg_slice(x, begin, (int64_t[]){2, -1, 3});
  assert_non_null(y);
  const double *yv = cg_tensor_data(y);
  for (int64_t a = 0, flat = 0; a < size[0]; a++)
    for (int64_t b = 0; b < size[1]; b++)
      for (int64_t c = 0; c < size[2]; c++, flat++)
        assert_true(yv[flat] == xv[((begin[0] + a) * 5 + begin[1] + b) * 6 + begin[2] + c]);
  /* padding the slice back by (begin, rest) restores x inside the window, 0 outside */
  cg_tensor *z = cg_pad(y, (int64_t[]){1, 1, 0, 0, 2, 1}, 0);
  assert_non_null(z);
  const double *zv = cg_tensor_data(z);
  for (int64_t a = 0, flat = 0; a < 4; a++)
    for (int64_t b = 0; b < 5; b++)
      for (int64_t c = 0; c < 6; c++, flat++) {
        bool inside = a >= 1 && a < 3 && c >= 2 && c < 5;
        assert_true(zv[flat] == (inside ? xv[flat] : 0.0));
      }
}

/* ======================================================================================
 * Gradients at hand-computed points: d/dx sum(op(x) * w)
 * ==================================================================================== */

static cg_tensor *weighted_gradient(cg_tensor *(*op)(cg_tensor *), cg_tensor *x, cg_tensor *w)
{
  cg_tape *tape = cg_tape_begin(0);
  assert_non_null(tape);
  assert_int_equal(cg_tape_watch(tape, x), CG_OK);
  cg_tensor *target = cg_sum(cg_mul(op(x), w), NULL, 0, 0);
  assert_non_null(target);
  assert_int_equal(cg_tape_end(tape), CG_OK);
  cg_tensor *g = NULL;
  assert_int_equal(cg_tape_gradient(tape, target, &x, 1, &g, NULL), CG_OK);
  cg_tape_free(tape);
  assert_non_null(g);
  return g;
}

static cg_tensor *slice_middle(cg_tensor *x)
{
  return cg_slice(x, (int64_t[]){0, 1}, (int64_t[]){2, 2});
}
static cg_tensor *pad_by_7(cg_tensor *x) { return cg_pad(x, (int64_t[]){1, 2}, 7); }
static cg_tensor *second_half(cg_tensor *x)
{
  cg_tensor *halves[2];
  return cg_split(x, 2, 0, halves) == CG_OK ? halves[1] : NULL;
}
static cg_tensor *flatten(cg_tensor *x) { return cg_reshape(x, 1, (int64_t[]){-1}); }
static cg_tensor *tile_1x2x1(cg_tensor *x) { return cg_tile(x, (int64_t[]){1, 2, 1}); }
static cg_tensor *tile_0x1(cg_tensor *x) { return cg_tile(x, (int64_t[]){0, 1}); }

static void test_gradients_known(void **state)
{
  const double one_to_six[] = {1, 2, 3, 4, 5, 6};
  cg_tensor *x23 = cgt_f64(2, (int64_t[]){2, 3}, one_to_six);
  cg_tensor *x2 = cgt_f64(1, (int64_t[]){2}, (double[]){1, 2});
  /* Slice keeps columns 1..2: w = [[1,2],[3,4]] lands there, 0 in column 0 */
  assert_tensor(weighted_gradient(slice_middle, x23, cgt_f64(2, (int64_t[]){2, 2},
                                                             (double[]){1, 2, 3, 4})),
                CG_F64, 2, ((int64_t[]){2, 3}), ((double[]){0, 1, 2, 0, 3, 4}), 1e-12);
  /* Pad [7,x0,x1,7,7] by w = [1..5]: x0 meets w1 = 2, x1 meets w2 = 3 */
  assert_tensor(weighted_gradient(pad_by_7, x2, cgt_f64(1, (int64_t[]){5}, one_to_six)), CG_F64,
                1, ((int64_t[]){2}), ((double[]){2, 3}), 1e-12);
  /* Tile [x0,x1] x3 by w = [1..6]: x0 meets 1+3+5 = 9, x1 meets 2+4+6 = 12 */
  assert_tensor(weighted_gradient(tile_3, x2, cgt_f64(1, (int64_t[]){6}, one_to_six)), CG_F64, 1,
                ((int64_t[]){2}), ((double[]){9, 12}), 1e-12);
  /* Tile [1,2] x[2,2] by w = [[1,2,3,4],[5,6,7,8]]: x00 meets 1+3+5+7 = 16, x01 2+4+6+8 = 20 */
  assert_tensor(weighted_gradient(tile_2x2, cgt_f64(2, (int64_t[]){1, 2}, (double[]){1, 2}),
                                  cgt_f64(2, (int64_t[]){2, 4},
                                          (double[]){1, 2, 3, 4, 5, 6, 7, 8})),
                CG_F64, 2, ((int64_t[]){1, 2}), ((double[]){16, 20}), 1e-12);
  /* Tile with an empty result: nothing reaches x. [0,3,2^62] tiled x2 along axis 1 once
   * made a view of 3 * 2^62 elements (a fuzz finding); multiples 0 zero a non-empty x. */
  const int64_t wide[3] = {0, 3, INT64_C(1) << 62}, doubled[3] = {0, 6, INT64_C(1) << 62};
  assert_tensor(weighted_gradient(tile_1x2x1, cg_zeros(CG_F64, 3, wide),
                                  cg_zeros(CG_F64, 3, doubled)),
                CG_F64, 3, wide, NULL, 0);
  assert_tensor(weighted_gradient(tile_0x1, x23, cg_zeros(CG_F64, 2, (int64_t[]){0, 3})), CG_F64,
                2, ((int64_t[]){2, 3}), ((double[]){0, 0, 0, 0, 0, 0}), 0);
  /* Transpose [2,3] -> [3,2] by w = [[1,2],[3,4],[5,6]]: dx = w transposed */
  assert_tensor(weighted_gradient(transpose_reversed, x23,
                                  cgt_f64(2, (int64_t[]){3, 2}, one_to_six)),
                CG_F64, 2, ((int64_t[]){2, 3}), ((double[]){1, 3, 5, 2, 4, 6}), 1e-12);
  /* BroadcastTo [3] -> [2,3] by w = [[1,2,3],[4,5,6]]: column sums 5, 7, 9 */
  assert_tensor(weighted_gradient(broadcast_2x3, cgt_f64(1, (int64_t[]){3}, one_to_six),
                                  cgt_f64(2, (int64_t[]){2, 3}, one_to_six)),
                CG_F64, 1, ((int64_t[]){3}), ((double[]){5, 7, 9}), 1e-12);
  /* Split [4] in halves, only the second used with w = [5,6]: the first half gets 0 */
  assert_tensor(weighted_gradient(second_half, cgt_f64(1, (int64_t[]){4}, one_to_six),
                                  cgt_f64(1, (int64_t[]){2}, (double[]){5, 6})),
                CG_F64, 1, ((int64_t[]){4}), ((double[]){0, 0, 5, 6}), 1e-12);
  /* Reshape [2,3] -> [6] by w = [1..6]: w reshaped back */
  assert_tensor(weighted_gradient(flatten, x23, cgt_f64(1, (int64_t[]){6}, one_to_six)), CG_F64,
                2, ((int64_t[]){2, 3}), one_to_six, 1e-12);
}

/* Concat [a0,a1] with [b0] by w = [4,5,6]: da = [4,5], db = [6] */
static void test_concat_gradient_known(void **state)
{
  cg_tensor *parts[] = {cgt_f64(1, (int64_t[]){2}, (double[]){1, 2}),
                        cgt_f64(1, (int64_t[]){1}, (double[]){3})};
  cg_tape *tape = cg_tape_begin(0);
  for (int i = 0; i < 2; i++) assert_int_equal(cg_tape_watch(tape, parts[i]), CG_OK);
  cg_tensor *target = cg_sum(cg_mul(cg_concat(parts, 2, 0),
                                    cgt_f64(1, (int64_t[]){3}, (double[]){4, 5, 6})),
                             NULL, 0, 0);
  assert_non_null(target);
  assert_int_equal(cg_tape_end(tape), CG_OK);
  cg_tensor *g[2];
  assert_int_equal(cg_tape_gradient(tape, target, parts, 2, g, NULL), CG_OK);
  cg_tape_free(tape);
  assert_tensor(g[0], CG_F64, 1, ((int64_t[]){2}), ((double[]){4, 5}), 1e-12);
  assert_tensor(g[1], CG_F64, 1, ((int64_t[]){1}), ((double[]){6}), 1e-12);
}

/* Found by fuzz/fuzz_ops: Pad's gradient in a graph whose input has an unknown dim
 * recomputed the padded shape from the -1 dim (an overflow for large paddings, and a
 * "negative dimension" error for zero ones). Pad [?, 2] by (0,0),(1,0): dx = dy[:, 1:]. */
static void test_pad_gradient_unknown_dims(void **state)
{
  cg_graph *g = cg_graph_new();
  assert_int_equal(cg_graph_enter(g), CG_OK);
  cg_tensor *x = cg_placeholder(CG_F64, 2, (int64_t[]){-1, 2}, "x"), *dx;
  cg_tensor *w = cg_placeholder(CG_F64, 2, (int64_t[]){-1, 3}, "w");
  cg_tensor *y = cg_sum(cg_mul(cg_pad(x, (int64_t[]){0, 0, 1, 0}, 0), w), NULL, 0, 0);
  assert_int_equal(cg_gradients(&y, 1, &x, 1, NULL, &dx, NULL), CG_OK);
  assert_int_equal(cg_graph_exit(g), CG_OK);
  cg_feed feeds[2] = {{x, cgt_f64(2, (int64_t[]){2, 2}, (double[]){1, 2, 3, 4})},
                      {w, cgt_f64(2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6})}};
  cg_tensor *got;
  assert_int_equal(cg_graph_run(g, feeds, 2, &dx, 1, &got), CG_OK);
  assert_tensor(got, CG_F64, 2, ((int64_t[]){2, 2}), ((double[]){2, 3, 5, 6}), 0);
  cg_graph_free(g);
}

/* SumLike (the engine's reduction of broadcast gradients when a graph's dims are unknown
 * until run time, found missing by fuzz/fuzz_ops): x summed to like's shape. */
static void test_sum_like_values(void **state)
{
  cg_tensor *x = cgt_f64(2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
  cg_tensor *in[2] = {x, cg_zeros(CG_F32, 1, (int64_t[]){3})}; /* like's dtype does not matter */
  assert_tensor(cg_call("SumLike", in, 2, NULL), CG_F64, 1, ((int64_t[]){3}), ((double[]){5, 7, 9}), 0);
  in[1] = cg_zeros(CG_F64, 2, (int64_t[]){2, 1});
  assert_tensor(cg_call("SumLike", in, 2, NULL), CG_F64, 2, ((int64_t[]){2, 1}), ((double[]){6, 15}), 0);
  in[1] = cg_zeros(CG_F64, 0, NULL);
  assert_tensor(cg_call("SumLike", in, 2, NULL), CG_F64, 0, NULL, ((double[]){21}), 0);
  in[1] = x; /* nothing to sum: a view of x */
  cg_tensor *same = cg_call("SumLike", in, 2, NULL);
  assert_non_null(same);
  assert_ptr_equal(cg_tensor_data(same), cg_tensor_data(x));
  int32_t big[2] = {INT32_MAX, 2}; /* integers wrap around, as Sum's do */
  in[0] = cg_tensor_from(CG_I32, 1, (int64_t[]){2}, big);
  in[1] = cg_zeros(CG_I32, 1, (int64_t[]){1});
  assert_tensor(cg_call("SumLike", in, 2, NULL), CG_I32, 1, ((int64_t[]){1}), ((double[]){INT32_MIN + 1.0}), 0);
  in[0] = x;
  in[1] = cg_zeros(CG_F64, 1, (int64_t[]){2});
  assert_null(cg_call("SumLike", in, 2, NULL));
  assert_error(CG_ESHAPE, "SumLike: [2] does not broadcast to [2,3]");
  in[0] = cg_zeros(CG_BOOL, 1, (int64_t[]){2});
  assert_null(cg_call("SumLike", in, 2, NULL));
  assert_error(CG_EDTYPE, "SumLike: input 0 is bool");
}

/* Every row of the shape table, order 1 and (all of them, being linear) order 2. */
static void test_gradient_table(void **state)
{
  for (int i = 0; i < cg_cases_shape_n; i++) {
    const cg_grad_case *c = &cg_cases_shape[i];
    for (int order = 1; order <= (c->order2 ? 2 : 1); order++) {
      cg_gradcheck_report report;
      memset(&report, 0, sizeof report);
      if (cg_run_grad_case(c, CG_F64, order, 100 + (uint64_t)i, &report) != CG_OK)
        fail_msg("%s (%s), order %d: %s %s", c->op, c->label, order, report.message,
                 cg_last_error());
    }
  }
}

/* ======================================================================================
 * Bad inputs: one row per way each op can be misused, through cg_call
 * ==================================================================================== */

typedef struct {
  cg_dtype dtype;
  int ndim;
  int64_t shape[CG_MAX_DIMS];
} tensor_spec;

typedef struct {
  const char *name; /* NULL: unused slot */
  cg_attr_kind kind;
  int n;
  int64_t ints[CG_ATTR_INTS_MAX];
  double f;
} attr_spec;

typedef struct {
  const char *op;
  int n_in;
  tensor_spec in[2];
  attr_spec attrs[3];
  cg_status code;
  const char *message;
} bad_case;

#define F64(...) {CG_F64, __VA_ARGS__}
#define INT(name, v) {name, CG_ATTR_INT, 1, {v}, 0}
#define INTS(name, n, ...) {name, CG_ATTR_INTS, n, {__VA_ARGS__}, 0}
#define FLOAT(name, v) {name, CG_ATTR_FLOAT, 0, {0}, v}
#define BIG ((int64_t)1 << 62)

static const bad_case bad[] = {
    {"Reshape", 1, {F64(2, {2, 3})}, {INTS("shape", 2, 4, 2)}, CG_ESHAPE,
     "Reshape: cannot reshape [2,3] (6 elements) into [4,2] (8 elements)"},
    {"Reshape", 1, {F64(2, {2, 3})}, {INTS("shape", 2, 4, -1)}, CG_ESHAPE,
     "Reshape: cannot reshape [2,3] (6 elements) into [4,-1]: no size for -1 fits"},
    {"Reshape", 1, {F64(2, {2, 3})}, {INTS("shape", 2, -1, -1)}, CG_EINVAL,
     "Reshape: shape [-1,-1] has more than one -1"},
    {"Reshape", 1, {F64(2, {2, 3})}, {INTS("shape", 2, -2, -3)}, CG_EINVAL,
     "Reshape: shape [-2,-3] has a negative size other than -1"},
    {"Reshape", 1, {F64(1, {1})}, {INTS("shape", 9, 1, 1, 1, 1, 1, 1, 1, 1, 1)}, CG_EINVAL,
     "Reshape: shape [1,1,1,1,1,1,1,1,1] has 9 dimensions, at most 8 allowed"},
    {"Reshape", 1, {F64(2, {2, 3})}, {{NULL}}, CG_EINVAL, "Reshape: attribute shape is missing"},
    {"ExpandDims", 1, {F64(2, {2, 3})}, {INT("axis", 3)}, CG_ERANGE,
     "ExpandDims: axis 3 is outside [-3, 2] for input [2,3]"},
    {"ExpandDims", 1, {F64(2, {2, 3})}, {INT("axis", -4)}, CG_ERANGE,
     "ExpandDims: axis -4 is outside [-3, 2] for input [2,3]"},
    {"ExpandDims", 1, {F64(8, {1, 1, 1, 1, 1, 1, 1, 1})}, {INT("axis", 0)}, CG_EINVAL,
     "ExpandDims: input [1,1,1,1,1,1,1,1] already has 8 dimensions"},
    {"Squeeze", 1, {F64(2, {2, 3})}, {INTS("axes", 1, 0)}, CG_ESHAPE,
     "Squeeze: axis 0 of [2,3] has size 2, not 1"},
    {"Squeeze", 1, {F64(2, {1, 3})}, {INTS("axes", 1, 2)}, CG_ERANGE,
     "Squeeze: axis 2 is out of range for rank 2"},
    {"Squeeze", 1, {F64(2, {1, 1})}, {INTS("axes", 2, 0, -2)}, CG_EINVAL,
     "Squeeze: axis -2 is given twice"},
    {"Transpose", 1, {F64(2, {2, 3})}, {INTS("perm", 1, 0)}, CG_EINVAL,
     "Transpose: perm [0] has 1 entries for input [2,3] of rank 2"},
    {"Transpose", 1, {F64(2, {2, 3})}, {INTS("perm", 2, 0, 2)}, CG_ERANGE,
     "Transpose: perm [0,2]: entry 2 is out of range for rank 2"},
    {"Transpose", 1, {F64(2, {2, 3})}, {INTS("perm", 2, -1, 0)}, CG_ERANGE,
     "Transpose: perm [-1,0]: entry -1 is out of range for rank 2"},
    {"Transpose", 1, {F64(2, {2, 3})}, {INTS("perm", 2, 1, 1)}, CG_EINVAL,
     "Transpose: perm [1,1] repeats axis 1"},
    {"Concat", 2, {F64(2, {2, 3}), {CG_F32, 2, {2, 3}}}, {INT("axis", 0)}, CG_EDTYPE,
     "Concat: dtypes differ: f32 [2,3] vs f64 [2,3]"},
    {"Concat", 2, {F64(2, {2, 3}), F64(2, {3, 3})}, {INT("axis", 1)}, CG_ESHAPE,
     "Concat: input 1 [3,3] does not match input 0 [2,3] outside axis 1"},
    {"Concat", 2, {F64(2, {2, 3}), F64(1, {3})}, {INT("axis", 0)}, CG_ESHAPE,
     "Concat: input 1 [3] does not match input 0 [2,3] outside axis 0"},
    {"Concat", 2, {F64(2, {2, 3}), F64(2, {2, 3})}, {INT("axis", 2)}, CG_ERANGE,
     "Concat: axis 2 is out of range for rank 2"},
    {"Concat", 2, {F64(0, {0}), F64(0, {0})}, {INT("axis", 0)}, CG_ERANGE,
     "Concat: axis 0 is out of range for rank 0"},
    {"Concat", 0, {{0}}, {INT("axis", 0)}, CG_EINVAL, "Concat: needs at least one input, got 0"},
    {"Split", 1, {F64(2, {3, 4})}, {INT("num", 2), INT("axis", 0)}, CG_ESHAPE,
     "Split: axis 0 of [3,4] (size 3) does not split into 2 equal parts"},
    {"Split", 1, {F64(2, {3, 4})}, {INT("num", 17)}, CG_EINVAL, "Split: num 17 is outside [1, 16]"},
    {"Split", 1, {F64(2, {3, 4})}, {INT("num", -2)}, CG_EINVAL, "Split: num -2 is outside [1, 16]"},
    {"Split", 1, {F64(2, {3, 4})}, {INT("num", 3), INTS("sizes", 2, 1, 2)}, CG_EINVAL,
     "Split: give exactly one of num and sizes"},
    {"Split", 1, {F64(2, {3, 4})}, {INT("axis", 0)}, CG_EINVAL,
     "Split: give exactly one of num and sizes"},
    {"Split", 1, {F64(2, {3, 4})}, {INTS("sizes", 2, 1, 1)}, CG_ESHAPE,
     "Split: sizes [1,1] do not add up to axis 0 of [3,4] (size 3)"},
    {"Split", 1, {F64(2, {3, 4})}, {INTS("sizes", 2, 2, 2)}, CG_ESHAPE,
     "Split: sizes [2,2] exceed axis 0 of [3,4] (size 3)"},
    {"Split", 1, {F64(2, {3, 4})}, {INTS("sizes", 3, -1, 2, -1), INT("axis", 1)}, CG_EINVAL,
     "Split: sizes [-1,2,-1] may hold one -1 and otherwise sizes >= 0"},
    {"Split", 1, {F64(2, {3, 4})}, {INTS("sizes", 0, 0)}, CG_EINVAL,
     "Split: sizes [] has 0 entries, needs 1 to 16"},
    {"Split", 1, {F64(2, {3, 4})}, {INT("num", 1), INT("axis", -3)}, CG_ERANGE,
     "Split: axis -3 is out of range for rank 2"},
    {"Slice", 1, {F64(2, {3, 4})}, {INTS("begin", 2, 0, 5), INTS("size", 2, 1, -1)}, CG_ERANGE,
     "Slice: begin 5 is out of range for axis 1 of [3,4]"},
    {"Slice", 1, {F64(2, {3, 4})}, {INTS("begin", 2, -1, 0), INTS("size", 2, 1, -1)}, CG_ERANGE,
     "Slice: begin -1 is out of range for axis 0 of [3,4]"},
    {"Slice", 1, {F64(2, {3, 4})}, {INTS("begin", 2, 1, 1), INTS("size", 2, 3, 1)}, CG_ERANGE,
     "Slice: axis 0: begin 1 + size 3 exceeds dimension 3 of [3,4]"},
    {"Slice", 1, {F64(2, {3, 4})}, {INTS("begin", 2, 1, 1), INTS("size", 2, 1, -2)}, CG_EINVAL,
     "Slice: size -2 for axis 1 of [3,4] is negative (only -1, meaning to the end, may be)"},
    {"Slice", 1, {F64(2, {3, 4})}, {INTS("begin", 1, 0), INTS("size", 2, 1, 1)}, CG_EINVAL,
     "Slice: begin has 1 entries for input [3,4] of rank 2 (needs 2)"},
    {"Slice", 1, {F64(2, {3, 4})}, {INTS("begin", 2, 0, 0)}, CG_EINVAL,
     "Slice: attribute size is missing"},
    {"Pad", 1, {F64(2, {2, 3})}, {INTS("paddings", 2, 1, 1)}, CG_EINVAL,
     "Pad: paddings has 2 entries for input [2,3] of rank 2 (needs 4)"},
    {"Pad", 1, {F64(2, {2, 3})}, {INTS("paddings", 4, 0, -1, 0, 0)}, CG_EINVAL,
     "Pad: paddings (0, -1) of axis 0 are negative"},
    {"Pad", 1, {F64(2, {2, 3})}, {INTS("paddings", 4, 0, 0, INT64_MAX - 1, 5)}, CG_ENOMEM,
     "Pad: padded axis 1 of [2,3] overflows"},
    {"Pad", 1, {{CG_I32, 1, {2}}}, {INTS("paddings", 2, 1, 1), FLOAT("value", 0.5)}, CG_EINVAL,
     "Pad: value 0.5 does not fit dtype i32"},
    {"Pad", 1, {{CG_I32, 1, {2}}}, {INTS("paddings", 2, 1, 1), FLOAT("value", 3e9)}, CG_EINVAL,
     "Pad: value 3e+09 does not fit dtype i32"},
    {"Pad", 1, {{CG_BOOL, 1, {2}}}, {INTS("paddings", 2, 1, 1), FLOAT("value", 2)}, CG_EINVAL,
     "Pad: value 2 does not fit dtype bool"},
    {"Pad", 1, {{CG_I64, 1, {2}}}, {INTS("paddings", 2, 1, 1), FLOAT("value", NAN)}, CG_EINVAL,
     "does not fit dtype i64"},
    {"Tile", 1, {F64(2, {2, 3})}, {INTS("multiples", 1, 2)}, CG_EINVAL,
     "Tile: multiples has 1 entries for input [2,3] of rank 2 (needs 2)"},
    {"Tile", 1, {F64(2, {2, 3})}, {INTS("multiples", 2, -1, 1)}, CG_EINVAL,
     "Tile: multiples [-1,1] has a negative entry"},
    {"Tile", 1, {F64(2, {2, 3})}, {INTS("multiples", 2, BIG, 4)}, CG_ENOMEM,
     "Tile: [2,3] tiled [4611686018427387904,4] overflows"},
    {"Tile", 1, {F64(2, {2, 3})}, {INTS("multiples", 2, BIG / 4, BIG / 4)}, CG_ENOMEM,
     "Tile: shape [2305843009213693952,3458764513820540928] has too many elements"},
    {"BroadcastTo", 1, {F64(2, {2, 3})}, {INTS("shape", 2, 4, 3)}, CG_ESHAPE,
     "BroadcastTo: [2,3] does not broadcast to [4,3]"},
    {"BroadcastTo", 1, {F64(2, {2, 3})}, {INTS("shape", 1, 3)}, CG_ESHAPE,
     "BroadcastTo: [2,3] does not broadcast to [3]"},
    {"BroadcastTo", 1, {F64(1, {3})}, {INTS("shape", 2, -1, 3)}, CG_EINVAL,
     "BroadcastTo: shape [-1,3] has a negative size"},
    {"BroadcastTo", 1, {F64(1, {3})}, {INTS("shape", 3, BIG, BIG, 3)}, CG_ENOMEM,
     "BroadcastTo: shape [4611686018427387904,4611686018427387904,3] has too many elements"},
    {"BroadcastTo", 1, {F64(1, {3})}, {{NULL}}, CG_EINVAL, "BroadcastTo: attribute shape is missing"},
};

static void set_attr(cg_attrs *a, const attr_spec *s)
{
  switch (s->kind) {
  case CG_ATTR_INT: assert_int_equal(cg_attrs_set_int(a, s->name, s->ints[0]), CG_OK); break;
  case CG_ATTR_INTS: assert_int_equal(cg_attrs_set_ints(a, s->name, s->ints, s->n), CG_OK); break;
  case CG_ATTR_FLOAT: assert_int_equal(cg_attrs_set_float(a, s->name, s->f), CG_OK); break;
  default: break;
  }
}

static void test_bad_inputs(void **state)
{
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const bad_case *b = &bad[i];
    cg_tensor *in[2];
    for (int k = 0; k < b->n_in; k++)
      in[k] = cg_zeros(b->in[k].dtype, b->in[k].ndim, b->in[k].shape);
    cg_attrs a = {0};
    for (int k = 0; k < 3 && b->attrs[k].name; k++) set_attr(&a, &b->attrs[k]);
    if (cg_call(b->op, in, b->n_in, &a))
      fail_msg("row %zu (%s, expecting \"%s\") succeeded", i, b->op, b->message);
    assert_error(b->code, b->message);
  }
}

/* Arguments the public wrappers refuse before any op runs, and NULL inputs in a chain. */
static void test_bad_wrapper_arguments(void **state)
{
  cg_tensor *x = iota(CG_F64, 2, (int64_t[]){2, 3});
  cg_tensor *out[4];
  int64_t many[17] = {0};
  assert_null(cg_reshape(x, 17, many));
  assert_error(CG_EINVAL, "Reshape: shape has 17 entries");
  assert_null(cg_reshape(x, 2, NULL));
  assert_error(CG_EINVAL, "Reshape: shape is NULL");
  assert_null(cg_transpose(x, (int[17]){0}, 17));
  assert_error(CG_EINVAL, "Transpose: perm has 17 entries");
  assert_null(cg_slice(x, NULL, (int64_t[]){1, 1}));
  assert_error(CG_EINVAL, "Slice: begin is NULL");
  assert_null(cg_pad(x, NULL, 0));
  assert_error(CG_EINVAL, "Pad: paddings is NULL");
  assert_null(cg_tile(x, NULL));
  assert_error(CG_EINVAL, "Tile: multiples is NULL");
  assert_null(cg_broadcast_to(x, -1, NULL));
  assert_error(CG_EINVAL, "BroadcastTo: shape has -1 entries");
  assert_null(cg_concat(NULL, 0, 0));
  assert_error(CG_EINVAL, "Concat: needs at least one input, got 0");
  assert_null(cg_concat(NULL, 2, 0));
  assert_error(CG_EINVAL, "Concat: input list is NULL");
  assert_int_equal(cg_split(x, 2, 1, NULL), CG_EINVAL);
  assert_error(CG_EINVAL, "Split: out is NULL");
  assert_int_equal(cg_split(x, 4, 1, out), CG_ESHAPE);
  assert_error(CG_ESHAPE, "Split: axis 1 of [2,3] (size 3) does not split into 4 equal parts");
  assert_int_equal(cg_split_sizes(x, NULL, 2, 0, out), CG_EINVAL);
  assert_error(CG_EINVAL, "Split: sizes is NULL");
  /* the first failure in a chain is the one reported */
  assert_null(cg_tile(cg_transpose(cg_reshape(x, 1, (int64_t[]){5}), NULL, 0),
                      (int64_t[]){2}));
  assert_error(CG_ESHAPE, "Reshape: cannot reshape [2,3] (6 elements) into [5] (5 elements)");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cgt_test(test_known_values),
      cgt_test(test_views_share_the_buffer),
      cgt_test(test_concat_values),
      cgt_test(test_split_values),
      cgt_test(test_empty_tensors),
      cgt_test(test_transpose_matches_index_formula),
      cgt_test(test_slice_and_pad_match_index_formula),
      cgt_test(test_gradients_known),
      cgt_test(test_concat_gradient_known),
      cgt_test(test_pad_gradient_unknown_dims),
      cgt_test(test_sum_like_values),
      cgt_test(test_gradient_table),
      cgt_test(test_bad_inputs),
      cgt_test(test_bad_wrapper_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
