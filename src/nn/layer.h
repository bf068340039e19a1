/* layer.h - what the layer files share: the cg_layer object, the table of functions each
 * layer kind provides (forward, describe, free), and helpers for names, variables and
 * activations. Sequential lives in layer.c; each other kind in its own layer_*.c. */
#ifndef CG_NN_LAYER_H
#define CG_NN_LAYER_H

#include "../core/internal.h"
#include <stdatomic.h>

typedef struct cg_layer_kind {
  const char *type;         /* "Dense": shown by describe and in messages                 */
  const char *default_name; /* "dense": unnamed layers become dense, dense_1, dense_2 ... */
  atomic_int unnamed;       /* layers of this kind given a default name so far            */
  /* y = layer(x); validates x and names the layer in errors. Result in the current scope. */
  cg_tensor *(*forward)(cg_layer *layer, cg_tensor *x, int training);
  /* "Dense(784 -> 256, relu)" into buf, snprintf-style (returns the length it needs). */
  int (*describe)(const cg_layer *layer, char *buf, size_t n);
  void (*free_state)(void *state); /* NULL: free() */
} cg_layer_kind;

struct cg_layer {
  cg_layer_kind *kind;
  char *name;
  cg_layer *parent; /* the Sequential that owns this layer, or NULL */
  cg_var **vars;    /* owned, in the order cg_layer_variables reports them */
  int n_vars;
  void *state;      /* the kind's own fields, freed with the layer */
};

/* A new layer of kind with no variables; name NULL takes the kind's next default name,
 * "" is an error. state (may be NULL) becomes the layer's even when this fails. */
cg_layer *cg__layer_new(cg_layer_kind *kind, const char *name, void *state);
/* Adds variable "<layer name>/<suffix>" holding a copy of value (NULL: keeps the error). */
cg_status cg__layer_add_var(cg_layer *layer, const char *suffix, cg_tensor *value, int trainable);

/* Replaces every variable of layer (and its children) by one of dtype d holding the cast
 * value, same name and flag: the layers are f32, and gradient checks want f64. */
cg_status cg__layer_cast_variables(cg_layer *layer, cg_dtype d);

/* act(x); CG_ACT_NONE gives x itself. */
cg_tensor *cg__activate(cg_tensor *x, cg_activation act);
const char *cg__activation_name(cg_activation act); /* "relu", or NULL if unknown */
/* CG_OK, or CG_EINVAL naming the constructor when act is not a cg_activation. */
cg_status cg__check_activation(const char *fn, cg_activation act);
/* CG_OK, or CG_EINVAL unless both values are positive (what is "ksize", "strides"...). */
cg_status cg__check_pair(const char *fn, const char *what, const int pair[2]);
cg_status cg__check_padding(const char *fn, cg_padding padding);
const char *cg__padding_name(cg_padding padding); /* "valid" / "same" */

/* CG_EDTYPE unless x is a float tensor with the dtype of the layer's variable v (so a layer
 * whose variables were cast to f64 takes f64 inputs). */
cg_status cg__check_input_dtype(const cg_layer *layer, const cg_tensor *x, const cg_var *v);

#endif
