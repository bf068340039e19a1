/* cases_nn.c - gradient-check rows for the neural-network ops (src/ops/nn.c). All of them
 * are smooth, so every row also checks the second derivative. Labels of the sparse
 * cross-entropy are integers drawn from [0, C). */
#include "cases.h"

#define F64(nd, lo, hi, ...) {CG_F64, nd, {__VA_ARGS__}, lo, hi}
#define I32(nd, lo, hi, ...) {CG_I32, nd, {__VA_ARGS__}, lo, hi}
#define I64(nd, lo, hi, ...) {CG_I64, nd, {__VA_ARGS__}, lo, hi}

const cg_grad_case cg_cases_nn[] = {
    {"Softmax", "batch [4,5]", 1, {F64(2, -2, 2, 4, 5)}, NULL, NULL, 1},
    {"Softmax", "rank 1 [6]", 1, {F64(1, -3, 3, 6)}, NULL, NULL, 1},
    {"Softmax", "rank 3 [2,3,4]", 1, {F64(3, -2, 2, 2, 3, 4)}, NULL, NULL, 1},
    {"Softmax", "one class [3,1]", 1, {F64(2, -2, 2, 3, 1)}, NULL, NULL, 1},
    {"LogSoftmax", "batch [4,5]", 1, {F64(2, -2, 2, 4, 5)}, NULL, NULL, 1},
    {"LogSoftmax", "rank 1 [6]", 1, {F64(1, -3, 3, 6)}, NULL, NULL, 1},
    {"LogSoftmax", "rank 3 [2,3,4]", 1, {F64(3, -2, 2, 2, 3, 4)}, NULL, NULL, 1},
    {"SoftmaxCrossEntropyWithLogits", "batch [4,5]", 2,
     {F64(2, 0, 1, 4, 5), F64(2, -2, 2, 4, 5)}, NULL, NULL, 1},
    {"SoftmaxCrossEntropyWithLogits", "rank 1 [5] -> rank 0", 2,
     {F64(1, 0, 1, 5), F64(1, -2, 2, 5)}, NULL, NULL, 1},
    {"SoftmaxCrossEntropyWithLogits", "rank 3 [2,3,4]", 2,
     {F64(3, 0, 1, 2, 3, 4), F64(3, -2, 2, 2, 3, 4)}, NULL, NULL, 1},
    {"SparseSoftmaxCrossEntropyWithLogits", "batch i32 [4] x [4,5]", 2,
     {I32(1, 0, 5, 4), F64(2, -2, 2, 4, 5)}, NULL, NULL, 1},
    {"SparseSoftmaxCrossEntropyWithLogits", "rank 1 i64 [] x [6]", 2,
     {I64(0, 0, 6, 0), F64(1, -2, 2, 6)}, NULL, NULL, 1},
    {"SparseSoftmaxCrossEntropyWithLogits", "rank 3 i64 [2,3] x [2,3,4]", 2,
     {I64(2, 0, 4, 2, 3), F64(3, -2, 2, 2, 3, 4)}, NULL, NULL, 1},
    {"SigmoidCrossEntropyWithLogits", "batch [4,5]", 2,
     {F64(2, 0, 1, 4, 5), F64(2, -3, 3, 4, 5)}, NULL, NULL, 1},
    {"SigmoidCrossEntropyWithLogits", "rank 0", 2, {F64(0, 0, 1, 0), F64(0, -3, 3, 0)}, NULL,
     NULL, 1},
    {"SigmoidCrossEntropyWithLogits", "size 1 [1,1]", 2,
     {F64(2, 0, 1, 1, 1), F64(2, -3, 3, 1, 1)}, NULL, NULL, 1},
    {"BiasAdd", "rank 2 [3,4] + [4]", 2, {F64(2, -1, 1, 3, 4), F64(1, -1, 1, 4)}, NULL, NULL, 1},
    {"BiasAdd", "rank 4 NHWC [2,3,3,2] + [2]", 2, {F64(4, -1, 1, 2, 3, 3, 2), F64(1, -1, 1, 2)},
     NULL, NULL, 1},
    {"BiasAdd", "rank 1 [3] + [3]", 2, {F64(1, -1, 1, 3), F64(1, -1, 1, 3)}, NULL, NULL, 1},
};
const int cg_cases_nn_n = sizeof(cg_cases_nn) / sizeof(cg_cases_nn[0]);
