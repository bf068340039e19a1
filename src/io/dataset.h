/* dataset.h - data-set helpers beyond the public API. A batcher over an MNIST split kept as
 * the file's bytes: a quarter of the memory of cg_mnist_load's f32 images (47 MB instead of
 * 188 MB for Fashion-MNIST's training set), each batch converted when it is taken. */
#ifndef CG_IO_DATASET_H
#define CG_IO_DATASET_H

#include "../core/internal.h"

/* Loads "<dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]" (dir NULL: Debian's
 * Fashion-MNIST) as bytes. Its batches are exactly those cg_batcher_new gives on
 * cg_mnist_load's dataset with the same batch size, shuffle and seed: images f32
 * [batch, rows, cols, 1] = byte / 255, labels i64. Free with cg_batcher_free. */
cg_batcher *cg__mnist_batcher_new(const char *dir, int train, int64_t batch_size, int shuffle,
                                  uint64_t seed);

#endif
