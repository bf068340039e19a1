/* train_report.c - what `cgrad train` shows: a progress bar on a terminal (plain lines
 * otherwise), a CSV log of the epochs, and an SVG plot of the loss and accuracy curves. */
#include "train.h"
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct progress {
  bool tty, quiet;
  int epochs;
  int64_t steps;
  double epoch_start, last_draw;
};

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

progress *progress_new(bool quiet, int epochs, int64_t steps_per_epoch)
{
  progress *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->tty = isatty(STDOUT_FILENO);
  p->quiet = quiet;
  p->epochs = epochs;
  p->steps = steps_per_epoch;
  p->epoch_start = now_s();
  return p;
}

void progress_step(progress *p, int epoch, int64_t step, double loss, double acc, int64_t examples)
{
  double t = now_s();
  if (step == 1) p->epoch_start = t;
  if (p->quiet || !p->tty || (t - p->last_draw < 0.1 && step != p->steps)) return;
  p->last_draw = t;
  double elapsed = t - p->epoch_start, rate = elapsed > 0 ? examples / elapsed : 0;
  double eta = step > 0 ? elapsed / step * (p->steps - step) : 0;
  char bar[31];
  int filled = (int)(30 * step / (p->steps ? p->steps : 1));
  for (int i = 0; i < 30; i++) bar[i] = i < filled ? '=' : i == filled ? '>' : ' ';
  bar[30] = '\0';
  printf("\repoch %d/%d [%s] %lld/%lld  loss %.4f  acc %5.1f%%  %7.0f ex/s  ETA %d:%02d ", epoch,
         p->epochs, bar, (long long)step, (long long)p->steps, loss, 100 * acc, rate, (int)eta / 60,
         (int)eta % 60);
  fflush(stdout);
}

void progress_epoch(progress *p, const epoch_row *r)
{
  if (p->tty && !p->quiet) printf("\r\033[K");
  printf("epoch %d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | %.1f s, %.0f examples/s\n",
         r->epoch, r->train_loss, 100 * r->train_acc, r->test_loss, 100 * r->test_acc, r->seconds,
         r->examples_per_second);
  fflush(stdout);
}

void progress_free(progress *p) { free(p); }

bool csv_append(const char *path, const epoch_row *r)
{
  struct stat st;
  bool fresh = stat(path, &st) != 0 || st.st_size == 0;
  FILE *f = fopen(path, "a");
  if (!f) return false;
  if (fresh) fprintf(f, "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds,examples_per_second\n");
  fprintf(f, "%d,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f\n", r->epoch, r->train_loss, r->train_acc, r->test_loss,
          r->test_acc, r->seconds, r->examples_per_second);
  return fclose(f) == 0;
}

/* --- SVG ---------------------------------------------------------------------------------------- */

typedef struct {
  double x0, y0, w, h;       /* panel in pixels        */
  double xmin, xmax, ymin, ymax;
} panel;

static double px(const panel *p, double x) { return p->x0 + (x - p->xmin) / (p->xmax - p->xmin) * p->w; }
static double py(const panel *p, double y) { return p->y0 + p->h - (y - p->ymin) / (p->ymax - p->ymin) * p->h; }

static void axes(FILE *f, const panel *p, const char *title, const char *xlabel)
{
  fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#888'/>\n", p->x0, p->y0, p->w, p->h);
  fprintf(f, "<text x='%.1f' y='%.1f' font-size='14' text-anchor='middle'>%s</text>\n", p->x0 + p->w / 2, p->y0 - 8, title);
  fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='middle'>%s</text>\n", p->x0 + p->w / 2, p->y0 + p->h + 30, xlabel);
  for (int i = 0; i <= 4; i++) {
    double y = p->ymin + (p->ymax - p->ymin) * i / 4, x = p->xmin + (p->xmax - p->xmin) * i / 4;
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='10' text-anchor='end'>%.3g</text>\n", p->x0 - 4, py(p, y) + 3, y);
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='10' text-anchor='middle'>%.3g</text>\n", px(p, x), p->y0 + p->h + 14, x);
    fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#eee'/>\n", p->x0, py(p, y), p->x0 + p->w, py(p, y));
  }
}

static void line(FILE *f, const panel *p, const double *x, const double *y, int n, const char *color, const char *label, int slot)
{
  fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.5' points='", color);
  for (int i = 0; i < n; i++) fprintf(f, "%.1f,%.1f ", px(p, x[i]), py(p, y[i]));
  fprintf(f, "'/>\n<text x='%.1f' y='%.1f' font-size='11' fill='%s'>%s</text>\n", p->x0 + p->w - 110,
          p->y0 + 16 + 14 * slot, color, label);
}

static void range(const double *v, int n, double *lo, double *hi)
{
  for (int i = 0; i < n; i++)
    if (isfinite(v[i])) {
      *lo = fmin(*lo, v[i]);
      *hi = fmax(*hi, v[i]);
    }
}

bool svg_plot(const char *path, const double *step_loss, int n_steps, const epoch_row *rows, int n_rows,
              const char *title)
{
  FILE *f = fopen(path, "w");
  if (!f) return false;
  int n = n_rows;
  double *ex = malloc(sizeof(double) * (n + 1)), *tl = malloc(sizeof(double) * (n + 1)),
         *vl = malloc(sizeof(double) * (n + 1)), *ta = malloc(sizeof(double) * (n + 1)),
         *va = malloc(sizeof(double) * (n + 1)), *sx = malloc(sizeof(double) * (n_steps + 1));
  bool ok = ex && tl && vl && ta && va && sx;
  for (int i = 0; ok && i < n; i++) {
    ex[i] = rows[i].epoch;
    tl[i] = rows[i].train_loss;
    vl[i] = rows[i].test_loss;
    ta[i] = 100 * rows[i].train_acc;
    va[i] = 100 * rows[i].test_acc;
  }
  double first_epoch = n ? rows[0].epoch - 1 : 0, last_epoch = n ? rows[n - 1].epoch : 1;
  for (int i = 0; ok && i < n_steps; i++) sx[i] = first_epoch + (last_epoch - first_epoch) * (i + 1) / n_steps;
  if (ok) {
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='380' font-family='Helvetica'>\n"
               "<rect width='900' height='380' fill='white'/>\n"
               "<text x='450' y='22' font-size='16' text-anchor='middle'>%s</text>\n", title);
    double lo = INFINITY, hi = -INFINITY;
    range(step_loss, n_steps, &lo, &hi);
    range(vl, n, &lo, &hi);
    if (!(lo < hi)) { lo = 0; hi = 1; }
    panel loss = {70, 60, 340, 260, first_epoch, last_epoch > first_epoch ? last_epoch : first_epoch + 1, 0, hi * 1.05};
    axes(f, &loss, "loss", "epoch");
    line(f, &loss, sx, step_loss, n_steps, "#1f77b4", "train (per step)", 0);
    line(f, &loss, ex, vl, n, "#d62728", "test (per epoch)", 1);
    lo = INFINITY;
    hi = -INFINITY;
    range(ta, n, &lo, &hi);
    range(va, n, &lo, &hi);
    if (!(lo < hi)) { lo -= 1; hi += 1; }
    panel acc = {520, 60, 340, 260, first_epoch, last_epoch > first_epoch ? last_epoch : first_epoch + 1,
                 floor(lo - 1), fmin(100, ceil(hi + 1))};
    axes(f, &acc, "accuracy (%)", "epoch");
    line(f, &acc, ex, ta, n, "#1f77b4", "train", 0);
    line(f, &acc, ex, va, n, "#d62728", "test", 1);
    fprintf(f, "</svg>\n");
  }
  free(ex);
  free(tl);
  free(vl);
  free(ta);
  free(va);
  free(sx);
  return fclose(f) == 0 && ok;
}
