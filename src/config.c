/* config.c — loading, validating and writing NbConfig (see config.h for the keys).
 *
 * Owns: the key table (one row per key: path, type, offset into NbConfig, range, default),
 * the libyaml-based loader that walks a YAML document against that table, `--set`
 * overrides (each value parsed as YAML too), cross-key checks, and the canonical YAML
 * writer. Every error is one line `FILE:LINE: KEY: what is wrong` and returns CONFIG_ERR.
 *
 * Scalars are typed strictly: a quoted scalar is a string (so `steps: "10"` is an error), an
 * integer key takes only decimal integers (no `1.0`, no `1e3`), a number key takes any
 * finite decimal number, a bool key takes exactly `true` or `false`.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---------------------------------------------------------------- the key table ---------- */

typedef enum {
    K_INT,     /* int, decimal integer                         */
    K_DOUBLE,  /* double                                        */
    K_FLOAT,   /* float (ModelConfig's norm_eps, rope_theta...) */
    K_BOOL,    /* int 0/1, `true` or `false`                    */
    K_STR,     /* char[size]                                    */
    K_ENUM,    /* int-sized enum, value = index into names      */
    K_SCHEMES, /* the scheme list: a name or a list of names   */
    K_SEEDS,   /* the seed list: an integer or a list           */
} KeyType;

enum {
    F_MIN = 1u << 0,      /* value >= min (or > min with F_MIN_EXCL)              */
    F_MIN_EXCL = 1u << 1,
    F_MAX = 1u << 2,      /* value <= max (or < max with F_MAX_EXCL)              */
    F_MAX_EXCL = 1u << 3,
    F_DEF = 1u << 4,      /* has a default in this table (else set by code)       */
    F_NAN_UNSET = 1u << 5,/* NaN means "not set": written only when set           */
    F_NONEMPTY = 1u << 6, /* strings: must not be empty                           */
    F_ALIAS = 1u << 7,    /* another spelling of the next row; never written        */
};

typedef struct {
    const char *path;
    KeyType type;
    size_t offset; /* into NbConfig */
    size_t size;   /* K_STR: buffer size */
    unsigned flags;
    double min, max;
    double def;         /* numeric default (F_DEF) */
    const char *sdef;   /* K_STR / K_ENUM default (F_DEF) */
    const char *const *names; /* K_ENUM: value names, NULL-terminated */
} KeySpec;

static const char *const NORM_NAMES[] = {"rmsnorm", "layernorm", NULL};
static const char *const SCHED_NAMES[] = {"cosine", "linear", "constant", NULL};
static const char *const SOURCE_NAMES[] = {"brown", "shards", NULL};
static const char *const BACKEND_NAMES[] = {"cpu", "cuda", "auto", NULL};
static const char *const PRECISION_NAMES[] = {"fp32_master", "bf16_pure", NULL};
static const char *const REPEAT_NAMES[] = {"error", "allow", NULL};

/* enums are written through an int pointer */
_Static_assert(sizeof(NormKind) == sizeof(int), "NormKind must be int-sized");
_Static_assert(sizeof(NbSchedule) == sizeof(int), "NbSchedule must be int-sized");
_Static_assert(sizeof(NbDataSource) == sizeof(int), "NbDataSource must be int-sized");
_Static_assert(sizeof(NbBackendKind) == sizeof(int), "NbBackendKind must be int-sized");
_Static_assert(sizeof(NbPrecision) == sizeof(int), "NbPrecision must be int-sized");
_Static_assert(sizeof(NbDataRepeat) == sizeof(int), "NbDataRepeat must be int-sized");

#define OFF(f) offsetof(NbConfig, f)
#define GT0 (F_MIN | F_MIN_EXCL)
#define GE(x) F_MIN, (x)
/* row constructors: path, field, flags, min, max, default */
#define ROW_INT(p, f, fl, lo, hi, d) {p, K_INT, OFF(f), sizeof(int), (fl), (lo), (hi), (d), NULL, NULL}
#define ROW_DBL(p, f, fl, lo, hi, d) {p, K_DOUBLE, OFF(f), sizeof(double), (fl), (lo), (hi), (d), NULL, NULL}
#define ROW_FLT(p, f, fl, lo, hi) {p, K_FLOAT, OFF(f), sizeof(float), (fl), (lo), (hi), 0, NULL, NULL}
#define ROW_BOOL(p, f, fl, d) {p, K_BOOL, OFF(f), sizeof(int), (fl), 0, 1, (d), NULL, NULL}
#define ROW_STR(p, f, fl, d) {p, K_STR, OFF(f), sizeof(((NbConfig *)0)->f), (fl), 0, 0, 0, (d), NULL}
#define ROW_ENUM(p, f, fl, names, d) {p, K_ENUM, OFF(f), sizeof(int), (fl), 0, 0, 0, (d), (names)}

/* Canonical order = table order. Model keys and init.* default through
 * model_config_default / scheme_params_default, not through this table. The scheme
 * constants are not listed: keys_table() inserts one row per constant of the scheme table
 * (schemes.h) after scheme.name, so a new scheme's constants become keys by themselves. */
static const KeySpec KEYS_BASE[] = {
    ROW_STR("name", name, F_NONEMPTY, NULL),

    ROW_INT("model.n_layer", model.n_layer, F_MIN | F_MAX, 1, 4096, 0),
    ROW_INT("model.d_model", model.d_model, F_MIN, 2, 0, 0),
    ROW_INT("model.n_head", model.n_head, F_MIN, 1, 0, 0),
    ROW_INT("model.d_ff", model.d_ff, F_MIN, 1, 0, 0),
    ROW_INT("model.vocab_size", model.vocab_size, F_MIN | F_MAX, 2, 65536, 0),
    ROW_INT("model.seq_len", model.seq_len, F_MIN, 1, 0, 0),
    ROW_ENUM("model.norm", model.norm, 0, NORM_NAMES, NULL),
    ROW_FLT("model.norm_eps", model.norm_eps, GT0, 0, 0),
    ROW_FLT("model.rope_theta", model.rope_theta, GT0, 0, 0),
    ROW_BOOL("model.final_norm", model.final_norm, 0, 0),

    ROW_DBL("init.std", scheme_params.init_std, GT0, 0, 0, 0),
    ROW_FLT("init.embed_std", model.embed_std, GT0, 0, 0),

    /* `scheme: NAME` and `scheme: [..]` are shorthands for scheme.name */
    {"scheme", K_SCHEMES, OFF(schemes), 0, F_ALIAS, 0, 0, 0, NULL, NULL},
    {"scheme.name", K_SCHEMES, OFF(schemes), 0, 0, 0, 0, 0, NULL, NULL},
    /* here: one `scheme.<key>` row per constant of the scheme table (keys_table) */

    {"seed", K_SEEDS, OFF(seeds), 0, 0, 0, 0, 0, NULL, NULL},

    ROW_INT("train.steps", train.steps, F_DEF | GT0, 0, 0, 1000),
    ROW_INT("train.batch", train.batch, F_DEF | GT0, 0, 0, 32),
    ROW_INT("train.grad_accum", train.grad_accum, F_DEF | F_MIN, 1, 0, 1),
    ROW_DBL("train.lr", train.lr, F_DEF | GT0, 0, 0, 1e-3),
    ROW_DBL("train.min_lr", train.min_lr, F_MIN, 0, 0, 0), /* default lr/10, in finalize */
    ROW_INT("train.warmup", train.warmup, F_DEF | F_MIN, 0, 0, 0),
    ROW_ENUM("train.schedule", train.schedule, F_DEF, SCHED_NAMES, "cosine"),
    ROW_DBL("train.weight_decay", train.weight_decay, F_DEF | F_MIN, 0, 0, 0),
    ROW_DBL("train.grad_clip", train.grad_clip, F_DEF | F_MIN, 0, 0, 0),
    ROW_DBL("train.beta1", train.beta1, F_DEF | F_MIN | F_MAX | F_MAX_EXCL, 0, 1, 0.9),
    ROW_DBL("train.beta2", train.beta2, F_DEF | F_MIN | F_MAX | F_MAX_EXCL, 0, 1, 0.999),
    ROW_DBL("train.eps", train.eps, F_DEF | GT0, 0, 0, 1e-8),
    ROW_DBL("train.diverge_loss", train.diverge_loss, F_DEF | F_MIN, 0, 0, 0),
    ROW_INT("train.checkpoint_every", train.checkpoint_every, F_DEF | F_MIN, 0, 0, 0),
    ROW_INT("train.log_every", train.log_every, F_DEF | F_MIN, 1, 0, 10),
    ROW_ENUM("train.precision", train.precision, F_DEF, PRECISION_NAMES, "fp32_master"),

    ROW_INT("eval.every", eval.every, F_DEF | F_MIN, 0, 0, 100),
    ROW_INT("eval.batches", eval.batches, F_DEF | F_MIN, 1, 0, 8),

    ROW_ENUM("data.source", data.source, F_DEF, SOURCE_NAMES, "brown"),
    ROW_STR("data.train", data.train, F_DEF, ""),
    ROW_STR("data.val", data.val, F_DEF, ""),
    ROW_ENUM("data.repeat", data.repeat, F_DEF, REPEAT_NAMES, "error"),

    ROW_INT("metrics.every", metrics.every, F_DEF | F_MIN, 0, 0, 0),
    ROW_INT("metrics.probe_tokens", metrics.probe_tokens, F_DEF | F_MIN, 1, 0, 65536),
    ROW_BOOL("metrics.prune", metrics.prune, F_DEF, 0),

    ROW_ENUM("backend.name", backend.name, F_DEF, BACKEND_NAMES, "cpu"),
    ROW_INT("backend.threads", backend.threads, F_DEF | F_MIN | F_MAX, 0, 4096, 0),

    ROW_STR("output.dir", output.dir, F_DEF | F_NONEMPTY, "runs"),
};
#define NKEYS_BASE ((int)(sizeof KEYS_BASE / sizeof KEYS_BASE[0]))
#define NKEYS_MAX (NKEYS_BASE + SCHEME_MAX_KEYS)

/* KEYS_BASE with the scheme constants' rows inserted after scheme.name: built on first use
 * from the scheme table (which is constant, so every build gives the same table). */
static KeySpec keys_all[NKEYS_MAX];
static char key_paths[SCHEME_MAX_KEYS][64];
static int keys_n;

static const KeySpec *keys_table(void) {
    if (keys_n) return keys_all;
    int n = 0;
    for (int i = 0; i < NKEYS_BASE; i++) {
        keys_all[n++] = KEYS_BASE[i];
        if (strcmp(KEYS_BASE[i].path, "scheme.name") != 0) continue;
        for (int j = 0; j < scheme_key_count() && j < SCHEME_MAX_KEYS; j++) {
            const SchemeConst *c = scheme_key_at(j);
            snprintf(key_paths[j], sizeof key_paths[j], "scheme.%s", c->key);
            unsigned fl = F_NAN_UNSET;
            if (isfinite(c->lo)) fl |= F_MIN | (c->lo_open ? F_MIN_EXCL : 0);
            if (isfinite(c->hi)) fl |= F_MAX | (c->hi_open ? F_MAX_EXCL : 0);
            keys_all[n++] = (KeySpec){key_paths[j], K_DOUBLE,
                                      OFF(scheme_params.value) + (size_t)j * sizeof(double),
                                      sizeof(double), fl, c->lo, c->hi, 0, NULL, NULL};
        }
    }
    keys_n = n;
    return keys_all;
}
#define KEYS (keys_table())
#define NKEYS (keys_table(), keys_n)

static const KeySpec *key_find(const char *path) {
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(KEYS[i].path, path) == 0) return &KEYS[i];
    return NULL;
}

/* A section is a proper prefix of some key path ("" is the root). */
static bool is_section(const char *path) {
    size_t n = strlen(path);
    if (n == 0) return true;
    for (int i = 0; i < NKEYS; i++)
        if (strncmp(KEYS[i].path, path, n) == 0 && KEYS[i].path[n] == '.') return true;
    return false;
}

/* "a, b, c": the distinct child names of a section, in table order. */
static void section_children(const char *section, char *out, size_t outlen) {
    size_t n = strlen(section), len = 0;
    out[0] = '\0';
    for (int i = 0; i < NKEYS; i++) {
        const char *p = KEYS[i].path;
        if (n > 0) {
            if (strncmp(p, section, n) != 0 || p[n] != '.') continue;
            p += n + 1;
        }
        size_t cl = strcspn(p, ".");
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) {
            const char *q = KEYS[j].path;
            if (n > 0) {
                if (strncmp(q, section, n) != 0 || q[n] != '.') continue;
                q += n + 1;
            }
            seen = strcspn(q, ".") == cl && strncmp(p, q, cl) == 0;
        }
        if (seen) continue;
        int w = snprintf(out + len, outlen - len, "%s%.*s", len ? ", " : "", (int)cl, p);
        if (w < 0 || (size_t)w >= outlen - len) return;
        len += (size_t)w;
    }
}

static void *field(NbConfig *cfg, const KeySpec *k) { return (char *)cfg + k->offset; }
static const void *cfield(const NbConfig *cfg, const KeySpec *k) {
    return (const char *)cfg + k->offset;
}

/* ---------------------------------------------------------------- loader state ----------- */

typedef struct {
    NbConfig *cfg;
    const char *file;    /* display name of the YAML source */
    int origin[NKEYS_MAX]; /* where each key was last set: 0 default, > 0 file line, -1 --set */
    bool in_set;         /* applying a --set override */
    bool stored;         /* a config a checkpoint or run file stored: legacy keys are read */
    int legacy_probe_batches; /* metrics.probe_batches of a stored config (0: absent) */
    char *err;
    size_t errlen;
} Loader;

/* Writes `PREFIX KEY: message` and returns CONFIG_ERR. origin: > 0 file line, < 0 --set,
 * 0 the file without a line (a default that conflicts with another key). */
static int fail(Loader *L, int origin, const char *key, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!L->err || L->errlen == 0) return CONFIG_ERR;
    if (origin > 0) snprintf(L->err, L->errlen, "%s:%d: %s: %s", L->file, origin, key, msg);
    else if (origin < 0) snprintf(L->err, L->errlen, "--set: %s: %s", key, msg);
    else snprintf(L->err, L->errlen, "%s: %s: %s", L->file, key, msg);
    return CONFIG_ERR;
}

static int node_origin(const Loader *L, const yaml_node_t *n) {
    return L->in_set ? -1 : (int)n->start_mark.line + 1;
}

static int key_index(const KeySpec *k) { return (int)(k - KEYS); }

/* How a node looks, for "expected X, got Y". */
static void describe(const yaml_node_t *n, char *out, size_t outlen) {
    if (n->type == YAML_MAPPING_NODE) snprintf(out, outlen, "a mapping");
    else if (n->type == YAML_SEQUENCE_NODE) snprintf(out, outlen, "a list");
    else if (n->type != YAML_SCALAR_NODE) snprintf(out, outlen, "nothing");
    else if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && n->data.scalar.length == 0)
        snprintf(out, outlen, "nothing");
    else if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        snprintf(out, outlen, "%.200s", (const char *)n->data.scalar.value);
    else snprintf(out, outlen, "the string \"%.200s\"", (const char *)n->data.scalar.value);
}

static int type_error(Loader *L, int origin, const char *key, const char *expected,
                      const yaml_node_t *n) {
    char got[256];
    describe(n, got, sizeof got);
    return fail(L, origin, key, "expected %s, got %s", expected, got);
}

static bool is_plain(const yaml_node_t *n) {
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}
static const char *sval(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

/* Decimal integer with optional sign; *v is clamped to +-inf on overflow (range check
 * reports it). Returns false when the text is not an integer. */
static bool parse_int_text(const char *s, double *v) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (*p < '0' || *p > '9') return false;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return false;
    errno = 0;
    long long x = strtoll(s, NULL, 10);
    if (errno == ERANGE) *v = s[0] == '-' ? -INFINITY : INFINITY;
    else *v = (double)x;
    return true;
}

/* Decimal real (1e-3, -0.5, 10): strtod alone would also take hex (0x10, 0x1p4). inf and
 * nan pass here and are refused by the caller as not finite. */
static bool parse_real_text(const char *s, double *v) {
    if (*s == '\0' || strchr(" \t\n", *s)) return false;
    if (strpbrk(s, "xX")) return false;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (*end != '\0' || end == s) return false;
    *v = x; /* inf/nan/overflow are reported by the caller */
    return true;
}

static void fmt_bound(double x, char *out, size_t n) { snprintf(out, n, "%.10g", x); }

/* Range check for numeric rows; `raw` is the text as written. */
static int check_range(Loader *L, int origin, const KeySpec *k, double v, const char *raw) {
    double lo = k->min, hi = k->max;
    bool has_lo = k->flags & F_MIN, has_hi = k->flags & F_MAX;
    if (k->type == K_INT && !has_hi) hi = INT_MAX; /* implicit int limits */
    if (k->type == K_INT && !has_lo) lo = INT_MIN;
    bool lo_ex = k->flags & F_MIN_EXCL, hi_ex = k->flags & F_MAX_EXCL;
    bool below = lo_ex ? !(v > lo) : !(v >= lo);
    bool above = hi_ex ? !(v < hi) : !(v <= hi);
    if (!(k->type == K_INT || has_lo)) below = false;
    if (!(k->type == K_INT || has_hi)) above = false;
    if (!below && !above) return 0;
    char a[32], b[32];
    fmt_bound(lo, a, sizeof a);
    fmt_bound(hi, b, sizeof b);
    if (has_lo && has_hi)
        return fail(L, origin, k->path, "must be in %c%s, %s%c, got %s", lo_ex ? '(' : '[', a, b,
                    hi_ex ? ')' : ']', raw);
    if (below) return fail(L, origin, k->path, "must be %s %s, got %s", lo_ex ? ">" : ">=", a, raw);
    return fail(L, origin, k->path, "must be %s %s, got %s", hi_ex ? "<" : "<=", b, raw);
}

static void join_names(const char *const *names, char *out, size_t n) {
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; names[i]; i++) {
        int w = snprintf(out + len, n - len, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= n - len) return;
        len += (size_t)w;
    }
}

static void join_schemes(char *out, size_t n) {
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < scheme_count(); i++) {
        int w = snprintf(out + len, n - len, "%s%s", i ? ", " : "", scheme_at(i)->name);
        if (w < 0 || (size_t)w >= n - len) return;
        len += (size_t)w;
    }
}

/* --- list-valued keys ---------------------------------------------------------------- */

static int apply_schemes(Loader *L, yaml_document_t *doc, const KeySpec *k, yaml_node_t *node,
                         int origin) {
    const char *expect = "a scheme name or a list of scheme names";
    yaml_node_t *items[NB_MAX_SCHEMES];
    int n = 0;
    if (node->type == YAML_SCALAR_NODE) {
        if (node->data.scalar.length == 0) return type_error(L, origin, k->path, expect, node);
        items[n++] = node;
    } else if (node->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top; it++) {
            if (n == NB_MAX_SCHEMES)
                return fail(L, origin, k->path, "more than %d schemes", NB_MAX_SCHEMES);
            items[n++] = yaml_document_get_node(doc, *it);
        }
        if (n == 0) return fail(L, origin, k->path, "empty list, expected at least one scheme");
    } else {
        return type_error(L, origin, k->path, expect, node);
    }
    const SchemeRow *rows[NB_MAX_SCHEMES];
    for (int i = 0; i < n; i++) {
        yaml_node_t *it = items[i];
        int o = node == it ? origin : node_origin(L, it);
        if (it->type != YAML_SCALAR_NODE || it->data.scalar.length == 0)
            return type_error(L, o, k->path, "a scheme name", it);
        rows[i] = scheme_find(sval(it));
        if (!rows[i]) {
            char valid[512];
            join_schemes(valid, sizeof valid);
            return fail(L, o, k->path, "unknown scheme '%.100s' (valid: %s)", sval(it), valid);
        }
        for (int j = 0; j < i; j++)
            if (rows[j] == rows[i])
                return fail(L, o, k->path, "duplicate scheme '%s'", rows[i]->name);
    }
    memcpy(L->cfg->schemes, rows, (size_t)n * sizeof rows[0]);
    L->cfg->n_schemes = n;
    return 0;
}

static int parse_seed(Loader *L, int o, const KeySpec *k, const yaml_node_t *it, uint64_t *out) {
    double v;
    if (!is_plain(it) || !parse_int_text(sval(it), &v))
        return type_error(L, o, k->path, "an integer seed", it);
    if (sval(it)[0] == '-') return fail(L, o, k->path, "must be >= 0, got %s", sval(it));
    errno = 0;
    unsigned long long x = strtoull(sval(it), NULL, 10);
    if (errno == ERANGE || x > (unsigned long long)INT64_MAX)
        return fail(L, o, k->path, "must be <= %lld, got %s", (long long)INT64_MAX, sval(it));
    *out = (uint64_t)x;
    return 0;
}

static int apply_seeds(Loader *L, yaml_document_t *doc, const KeySpec *k, yaml_node_t *node,
                       int origin) {
    uint64_t seeds[NB_MAX_SEEDS];
    int n = 0;
    if (node->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *p = node->data.sequence.items.start;
             p < node->data.sequence.items.top; p++) {
            yaml_node_t *it = yaml_document_get_node(doc, *p);
            int o = node_origin(L, it);
            if (n == NB_MAX_SEEDS) return fail(L, o, k->path, "more than %d seeds", NB_MAX_SEEDS);
            int rc = parse_seed(L, o, k, it, &seeds[n]);
            if (rc) return rc;
            for (int j = 0; j < n; j++)
                if (seeds[j] == seeds[n])
                    return fail(L, o, k->path, "duplicate seed %llu", (unsigned long long)seeds[n]);
            n++;
        }
        if (n == 0) return fail(L, origin, k->path, "empty list, expected at least one seed");
    } else if (node->type == YAML_SCALAR_NODE) {
        int rc = parse_seed(L, origin, k, node, &seeds[n++]);
        if (rc) return rc;
    } else {
        return type_error(L, origin, k->path, "an integer seed or a list of them", node);
    }
    memcpy(L->cfg->seeds, seeds, (size_t)n * sizeof seeds[0]);
    L->cfg->n_seeds = n;
    return 0;
}

/* --- one key ------------------------------------------------------------------------- */

static int apply_key(Loader *L, yaml_document_t *doc, const KeySpec *k, yaml_node_t *node,
                     int origin) {
    L->origin[key_index(k)] = origin;
    void *dst = field(L->cfg, k);
    double v;
    switch (k->type) {
    case K_SCHEMES: return apply_schemes(L, doc, k, node, origin);
    case K_SEEDS: return apply_seeds(L, doc, k, node, origin);
    case K_INT: {
        if (!is_plain(node) || !parse_int_text(sval(node), &v)) {
            double r;
            if (is_plain(node) && parse_real_text(sval(node), &r))
                return fail(L, origin, k->path, "expected an integer, got %s", sval(node));
            return type_error(L, origin, k->path, "an integer", node);
        }
        int rc = check_range(L, origin, k, v, sval(node));
        if (rc) return rc;
        *(int *)dst = (int)v;
        return 0;
    }
    case K_DOUBLE:
    case K_FLOAT: {
        if (!is_plain(node) || !parse_real_text(sval(node), &v))
            return type_error(L, origin, k->path, "a number", node);
        if (!isfinite(v) || (k->type == K_FLOAT && !isfinite((float)v)))
            return fail(L, origin, k->path, "expected a finite number, got %s", sval(node));
        int rc = check_range(L, origin, k, v, sval(node));
        if (rc) return rc;
        if (k->type == K_FLOAT) *(float *)dst = (float)v;
        else *(double *)dst = v;
        return 0;
    }
    case K_BOOL:
        if (is_plain(node) && strcmp(sval(node), "true") == 0) *(int *)dst = 1;
        else if (is_plain(node) && strcmp(sval(node), "false") == 0) *(int *)dst = 0;
        else return type_error(L, origin, k->path, "true or false", node);
        return 0;
    case K_ENUM: {
        if (node->type != YAML_SCALAR_NODE || node->data.scalar.length == 0)
            return type_error(L, origin, k->path, "a name", node);
        for (int i = 0; k->names[i]; i++)
            if (strcmp(sval(node), k->names[i]) == 0) {
                *(int *)dst = i;
                return 0;
            }
        char valid[256];
        join_names(k->names, valid, sizeof valid);
        return fail(L, origin, k->path, "unknown value '%.100s' (valid: %s)", sval(node), valid);
    }
    case K_STR: {
        if (node->type != YAML_SCALAR_NODE) return type_error(L, origin, k->path, "a string", node);
        size_t len = node->data.scalar.length;
        if (strlen(sval(node)) != len)
            return fail(L, origin, k->path, "contains a NUL character");
        if ((k->flags & F_NONEMPTY) && len == 0)
            return fail(L, origin, k->path, "must not be empty");
        if (len >= k->size)
            return fail(L, origin, k->path, "too long (%zu bytes, at most %zu)", len, k->size - 1);
        memcpy(dst, sval(node), len + 1);
        return 0;
    }
    }
    return fail(L, origin, k->path, "internal error: bad key type");
}

static int apply_node(Loader *L, yaml_document_t *doc, const char *path, yaml_node_t *node,
                      int origin);

/* metrics.probe_batches, in configs stored before metrics.probe_tokens replaced it: a probe
 * read that many batches of train.batch x model.seq_len tokens, which finalize turns into
 * the same token count (so `normbench prune` and `eval` read older runs as they ran). */
static int apply_legacy_probe_batches(Loader *L, yaml_node_t *node, int origin) {
    const char *s = node->type == YAML_SCALAR_NODE ? sval(node) : "";
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < 1 || v > 65536)
        return fail(L, origin, "metrics.probe_batches", "expected an integer in [1, 65536]");
    L->legacy_probe_batches = (int)v;
    return 0;
}

static int apply_mapping(Loader *L, yaml_document_t *doc, const char *prefix, yaml_node_t *map) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        int o = node_origin(L, kn);
        if (kn->type != YAML_SCALAR_NODE)
            return fail(L, o, prefix[0] ? prefix : "config", "keys must be plain names");
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", sval(kn));
        if (L->stored && strcmp(path, "metrics.probe_batches") == 0) {
            int rc = apply_legacy_probe_batches(L, vn, o);
            if (rc) return rc;
            continue;
        }
        if (strchr(sval(kn), '.') || kn->data.scalar.length == 0 ||
            (!key_find(path) && !is_section(path))) {
            char valid[512];
            section_children(prefix, valid, sizeof valid);
            return fail(L, o, path, "unknown key (valid: %s)", valid);
        }
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *prev = yaml_document_get_node(doc, q->key);
            if (prev->type == YAML_SCALAR_NODE && strcmp(sval(prev), sval(kn)) == 0)
                return fail(L, o, path, "duplicate key (first at line %d)",
                            (int)prev->start_mark.line + 1);
        }
        int rc = apply_node(L, doc, path, vn, o);
        if (rc) return rc;
    }
    return 0;
}

static int apply_node(Loader *L, yaml_document_t *doc, const char *path, yaml_node_t *node,
                      int origin) {
    bool sec = is_section(path);
    if (sec && node->type == YAML_MAPPING_NODE) return apply_mapping(L, doc, path, node);
    const KeySpec *k = key_find(path);
    if (k) return apply_key(L, doc, k, node, origin);
    if (sec) {
        /* `train:` with nothing under it is an empty section */
        if (is_plain(node) && node->data.scalar.length == 0) return 0;
        return type_error(L, origin, path, "a mapping", node);
    }
    return fail(L, origin, path, "unknown key");
}

/* --- documents, overrides, defaults, cross-key checks --------------------------------- */

static int yaml_fail(Loader *L, yaml_parser_t *p, const char *key) {
    if (p->error == YAML_MEMORY_ERROR) return fail(L, 0, key, "out of memory");
    int line = (int)p->problem_mark.line + 1;
    char msg[512];
    if (p->context)
        snprintf(msg, sizeof msg, "%s (%s)", p->problem ? p->problem : "syntax error", p->context);
    else snprintf(msg, sizeof msg, "%s", p->problem ? p->problem : "syntax error");
    if (L->in_set) return fail(L, -1, key, "bad YAML value: %s", msg);
    return fail(L, line, key, "%s", msg);
}

static int apply_override(Loader *L, const char *arg) {
    const char *eq = strchr(arg, '=');
    char key[256];
    if (!eq || eq == arg) {
        L->in_set = true;
        return fail(L, -1, arg, "expected key.path=value");
    }
    snprintf(key, sizeof key, "%.*s", (int)(eq - arg), arg);
    L->in_set = true;
    if (!key_find(key) && (!is_section(key) || key[0] == '\0')) {
        char parent[256], valid[512];
        snprintf(parent, sizeof parent, "%s", key);
        char *dot = strrchr(parent, '.');
        if (dot) *dot = '\0';
        if (!dot || !is_section(parent)) parent[0] = '\0';
        section_children(parent, valid, sizeof valid);
        return fail(L, -1, key, "unknown key (valid: %s)", valid);
    }
    const char *value = eq + 1;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return fail(L, -1, key, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)value, strlen(value));
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = yaml_fail(L, &parser, key);
        yaml_parser_delete(&parser);
        return rc;
    }
    int rc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) rc = fail(L, -1, key, "missing value");
    else rc = apply_node(L, &doc, key, root, -1);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

static void set_defaults(NbConfig *cfg, const char *display_name) {
    memset(cfg, 0, sizeof *cfg);
    model_config_default(&cfg->model);
    scheme_params_default(&cfg->scheme_params);
    for (int i = 0; i < NKEYS; i++) {
        const KeySpec *k = &KEYS[i];
        if (!(k->flags & F_DEF)) continue;
        void *dst = field(cfg, k);
        switch (k->type) {
        case K_INT: case K_BOOL: *(int *)dst = (int)k->def; break;
        case K_DOUBLE: *(double *)dst = k->def; break;
        case K_FLOAT: *(float *)dst = (float)k->def; break;
        case K_STR: snprintf(dst, k->size, "%s", k->sdef); break;
        case K_ENUM:
            for (int j = 0; k->names[j]; j++)
                if (strcmp(k->names[j], k->sdef) == 0) *(int *)dst = j;
            break;
        case K_SCHEMES: case K_SEEDS: break;
        }
    }
    const SchemeRow *pre = scheme_find("pre_ln");
    cfg->schemes[0] = pre ? pre : scheme_at(0);
    cfg->n_schemes = 1;
    cfg->seeds[0] = 1;
    cfg->n_seeds = 1;
    /* name: the file's basename without its extension, reduced to [A-Za-z0-9._-] */
    const char *base = display_name ? display_name : "config";
    const char *slash = strrchr(base, '/');
    if (slash) base = slash + 1;
    size_t n = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) n = (size_t)(dot - base);
    if (n >= sizeof cfg->name) n = sizeof cfg->name - 1;
    for (size_t i = 0; i < n; i++) {
        char c = base[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        cfg->name[i] = ok ? c : '_';
    }
    cfg->name[n] = '\0';
    if (n == 0) snprintf(cfg->name, sizeof cfg->name, "config");
}

static int origin_of(const Loader *L, const char *path) {
    const KeySpec *k = key_find(path);
    return k ? L->origin[key_index(k)] : 0;
}

/* Re-raises a message of the form "KEY: what" from model.c / schemes.c at the line where
 * KEY was set; messages naming no known key are blamed on `fallback`. */
static int fail_keyed(Loader *L, const char *fallback, const char *text) {
    char key[64];
    const char *colon = strchr(text, ':');
    if (colon && (size_t)(colon - text) < sizeof key) {
        snprintf(key, sizeof key, "%.*s", (int)(colon - text), text);
        if (key_find(key)) {
            const char *msg = colon + 1;
            while (*msg == ' ') msg++;
            return fail(L, origin_of(L, key), key, "%s", msg);
        }
    }
    return fail(L, origin_of(L, fallback), fallback, "%s", text);
}

/* One spelling per directory: "./runs/", "runs//" and "runs" name the same place, and the
 * resolved config (hashed into run files and checkpoints) must not tell them apart, or a
 * resume with another spelling would be refused as "a different config". Drops "./"
 * components, repeated and trailing slashes; keeps "/" and ".". */
static void normalize_dir(char *dir) {
    char *out = dir;
    const char *p = dir;
    int absolute = *p == '/';
    if (absolute) *out++ = '/';
    while (*p) {
        while (*p == '/') p++;
        const char *start = p;
        while (*p && *p != '/') p++;
        size_t n = (size_t)(p - start);
        if (n == 0 || (n == 1 && start[0] == '.')) continue;
        if (out > dir && out[-1] != '/') *out++ = '/';
        memmove(out, start, n);
        out += n;
    }
    if (out == dir) *out++ = '.';
    *out = '\0';
}

static int finalize(Loader *L) {
    NbConfig *c = L->cfg;
    if (origin_of(L, "train.min_lr") == 0) c->train.min_lr = c->train.lr / 10.0;
    if (L->legacy_probe_batches) {
        if (origin_of(L, "metrics.probe_tokens") != 0)
            return fail(L, origin_of(L, "metrics.probe_tokens"), "metrics.probe_tokens",
                        "set together with the older metrics.probe_batches");
        long long tokens = (long long)L->legacy_probe_batches * c->train.batch * c->model.seq_len;
        if (tokens > INT_MAX)
            return fail(L, 0, "metrics.probe_batches", "%d batches of %d x %d tokens overflow",
                        L->legacy_probe_batches, c->train.batch, c->model.seq_len);
        c->metrics.probe_tokens = (int)tokens;
    }
    normalize_dir(c->output.dir);

    /* name: used as a directory name under output.dir */
    for (const char *p = c->name; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return fail(L, origin_of(L, "name"), "name",
                        "may contain only letters, digits, '.', '_' and '-', got '%s'", c->name);
    }
    if (strcmp(c->name, ".") == 0 || strcmp(c->name, "..") == 0)
        return fail(L, origin_of(L, "name"), "name", "must not be '%s'", c->name);

    /* model shape: blame the key that was set (n_head when both were) */
    const ModelConfig *m = &c->model;
    int o_head = origin_of(L, "model.n_head"), o_dm = origin_of(L, "model.d_model");
    bool blame_head = o_head != 0 || o_dm == 0;
    if (m->d_model % m->n_head != 0) {
        if (blame_head)
            return fail(L, o_head, "model.n_head", "must divide model.d_model (%d), got %d",
                        m->d_model, m->n_head);
        return fail(L, o_dm, "model.d_model", "must be a multiple of model.n_head (%d), got %d",
                    m->n_head, m->d_model);
    }
    if ((m->d_model / m->n_head) % 2 != 0)
        return fail(L, blame_head ? o_head : o_dm, blame_head ? "model.n_head" : "model.d_model",
                    "head size d_model/n_head must be even for RoPE, got %d/%d = %d", m->d_model,
                    m->n_head, m->d_model / m->n_head);
    if (c->data.source == NB_DATA_BROWN && m->vocab_size < 256)
        return fail(L, origin_of(L, "model.vocab_size"), "model.vocab_size",
                    "must be >= 256 for data.source brown (byte-level tokens), got %d",
                    m->vocab_size);

    /* train */
    if (c->train.warmup >= c->train.steps)
        return fail(L, origin_of(L, "train.warmup"), "train.warmup",
                    "must be < train.steps (%d), got %d", c->train.steps, c->train.warmup);
    if (c->train.min_lr > c->train.lr)
        return fail(L, origin_of(L, "train.min_lr"), "train.min_lr",
                    "must be <= train.lr (%g), got %g", c->train.lr, c->train.min_lr);

    /* B * seq_len tokens per micro-batch is an int in the model and its kernels; the
     * product is computed in 64 bits here so that it cannot wrap before it is checked */
    const long long tokens = (long long)c->train.batch * (long long)m->seq_len;
    if (tokens > INT_MAX)
        return fail(L, origin_of(L, "train.batch"), "train.batch",
                    "train.batch x model.seq_len = %lld tokens per micro-batch, at most %d",
                    tokens, INT_MAX);

    /* bf16_pure is the CUDA backend's: the CPU computes in fp32 and does not emulate it
     * (backend auto is checked when the backend is opened, run.c) */
    if (c->train.precision == NB_PRECISION_BF16_PURE && c->backend.name == NB_BACKEND_CPU)
        return fail(L, origin_of(L, "train.precision"), "train.precision",
                    "bf16_pure needs backend.name cuda (the CPU backend trains in fp32 and does "
                    "not emulate bf16 weights and moments)");

    /* data */
    if (c->data.source == NB_DATA_SHARDS && c->data.train[0] == '\0')
        return fail(L, origin_of(L, "data.source"), "data.train",
                    "required when data.source is shards");
    if (c->data.source == NB_DATA_SHARDS && c->data.val[0] == '\0')
        return fail(L, origin_of(L, "data.source"), "data.val",
                    "required when data.source is shards (the validation shard)");

    /* invariants model.c checks itself; its message names the key (model.<field>: ...) */
    char merr[512];
    if (model_config_validate(m, merr, sizeof merr) != 0) return fail_keyed(L, "model", merr);

    /* scheme constants (the tables themselves are built by run.c, once per run) */
    char serr[512];
    if (scheme_check_params(&c->scheme_params, m->n_layer, serr, sizeof serr) != 0)
        return fail_keyed(L, origin_of(L, "scheme") ? "scheme" : "scheme.name", serr);
    return 0;
}

static int load_text(NbConfig *cfg, const char *text, size_t len, const char *display,
                     bool stored, const char *const *overrides, int n_overrides, char *err,
                     size_t errlen) {
    Loader L;
    memset(&L, 0, sizeof L);
    L.cfg = cfg;
    L.stored = stored;
    L.file = display ? display : "config";
    L.err = err;
    L.errlen = errlen;
    if (err && errlen) err[0] = '\0';
    set_defaults(cfg, display);

    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return fail(&L, 0, "config", "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = yaml_fail(&L, &parser, "yaml");
        yaml_parser_delete(&parser);
        return rc;
    }
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        rc = fail(&L, 1, "config", "empty file, expected a mapping of sections");
    } else if (root->type != YAML_MAPPING_NODE) {
        rc = type_error(&L, node_origin(&L, root), "config", "a mapping of sections", root);
    } else {
        rc = apply_mapping(&L, &doc, "", root);
    }
    yaml_document_delete(&doc);
    if (rc == 0) { /* a second document is almost certainly a mistake */
        yaml_document_t extra;
        if (!yaml_parser_load(&parser, &extra)) {
            rc = yaml_fail(&L, &parser, "yaml");
        } else {
            yaml_node_t *r2 = yaml_document_get_root_node(&extra);
            if (r2) rc = fail(&L, node_origin(&L, r2), "config", "more than one YAML document");
            yaml_document_delete(&extra);
        }
    }
    yaml_parser_delete(&parser);
    for (int i = 0; rc == 0 && i < n_overrides; i++) rc = apply_override(&L, overrides[i]);
    L.in_set = false;
    if (rc == 0) rc = finalize(&L);
    if (rc == 0) {
        cfg->source_text = malloc(len + 1);
        if (!cfg->source_text) return fail(&L, 0, "config", "out of memory");
        memcpy(cfg->source_text, text, len);
        cfg->source_text[len] = '\0';
    }
    return rc;
}

int config_load_string(NbConfig *cfg, const char *text, const char *display_name,
                       const char *const *overrides, int n_overrides, char *err, size_t errlen) {
    int rc = load_text(cfg, text, strlen(text), display_name, true, overrides, n_overrides, err,
                       errlen);
    if (rc) config_free(cfg);
    return rc;
}

int config_load(NbConfig *cfg, const char *path, const char *const *overrides, int n_overrides,
                char *err, size_t errlen) {
    memset(cfg, 0, sizeof *cfg);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return CONFIG_ERR;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rerr = 0;
    while (buf) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - 1 - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) rerr = errno ? errno : EIO;
            break;
        }
    }
    fclose(f);
    if (!buf || rerr) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot read: %s", path, buf ? strerror(rerr) : "out of memory");
        free(buf);
        return CONFIG_ERR;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot read: contains a NUL byte", path);
        free(buf);
        return CONFIG_ERR;
    }
    int rc = load_text(cfg, buf, len, path, false, overrides, n_overrides, err, errlen);
    free(buf);
    if (rc) {
        config_free(cfg);
        return rc;
    }
    snprintf(cfg->source_path, sizeof cfg->source_path, "%s", path);
    return 0;
}

void config_free(NbConfig *cfg) {
    if (!cfg) return;
    free(cfg->source_text);
    cfg->source_text = NULL;
}

void config_select_run(const NbConfig *sweep, int scheme_index, int seed_index, NbConfig *run) {
    assert(scheme_index >= 0 && scheme_index < sweep->n_schemes);
    assert(seed_index >= 0 && seed_index < sweep->n_seeds);
    *run = *sweep;
    run->schemes[0] = sweep->schemes[scheme_index];
    run->n_schemes = 1;
    for (int i = 1; i < NB_MAX_SCHEMES; i++) run->schemes[i] = NULL;
    run->seeds[0] = sweep->seeds[seed_index];
    run->n_seeds = 1;
    memset(run->seeds + 1, 0, sizeof run->seeds - sizeof run->seeds[0]);
    run->source_text = NULL;
    if (sweep->source_text) {
        size_t n = strlen(sweep->source_text) + 1;
        run->source_text = malloc(n);
        if (run->source_text) memcpy(run->source_text, sweep->source_text, n);
    }
}

/* ---------------------------------------------------------------- writer ----------------- */

typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} Buf;

static void bput(Buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (w < 0) { b->oom = true; return; }
        if (b->s && (size_t)w < b->cap - b->len) { b->len += (size_t)w; return; }
        size_t ncap = b->cap ? b->cap : 1024;
        while (ncap < b->len + (size_t)w + 1) ncap *= 2;
        char *ns = realloc(b->s, ncap);
        if (!ns) { b->oom = true; return; }
        b->s = ns;
        b->cap = ncap;
    }
}

/* Shortest decimal that reads back to exactly v (as a double, or as a float). Whole numbers
 * below 1e15 are written without an exponent (10000, not 1e+04); an exponent form always
 * has a '.' in its mantissa (1.0e-06), which YAML 1.1 readers such as PyYAML need to see a
 * float. */
static void fmt_real(double v, bool as_float, char *out, size_t n) {
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, n, "%.0f", v);
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(out, n, "%.*g", p, v);
        double back = strtod(out, NULL);
        if (as_float ? (float)back == (float)v : back == v) break;
    }
    char *e = strchr(out, 'e');
    if (e && !memchr(out, '.', (size_t)(e - out)) && strlen(out) + 3 <= n) {
        memmove(e + 2, e, strlen(e) + 1);
        e[0] = '.';
        e[1] = '0';
    }
}

static void put_string(Buf *b, const char *s) {
    bput(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') bput(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) bput(b, "\\x%02x", *p);
        else bput(b, "%c", *p);
    }
    bput(b, "\"");
}

static void put_value(Buf *b, const NbConfig *cfg, const KeySpec *k) {
    const void *src = cfield(cfg, k);
    char num[64];
    switch (k->type) {
    case K_INT: bput(b, "%d", *(const int *)src); break;
    case K_DOUBLE: fmt_real(*(const double *)src, false, num, sizeof num); bput(b, "%s", num); break;
    case K_FLOAT: fmt_real(*(const float *)src, true, num, sizeof num); bput(b, "%s", num); break;
    case K_BOOL: bput(b, "%s", *(const int *)src ? "true" : "false"); break;
    case K_STR: put_string(b, (const char *)src); break;
    case K_ENUM: bput(b, "%s", k->names[*(const int *)src]); break;
    case K_SCHEMES:
        if (cfg->n_schemes == 1) bput(b, "%s", cfg->schemes[0]->name);
        else {
            bput(b, "[");
            for (int i = 0; i < cfg->n_schemes; i++)
                bput(b, "%s%s", i ? ", " : "", cfg->schemes[i]->name);
            bput(b, "]");
        }
        break;
    case K_SEEDS:
        if (cfg->n_seeds == 1) bput(b, "%llu", (unsigned long long)cfg->seeds[0]);
        else {
            bput(b, "[");
            for (int i = 0; i < cfg->n_seeds; i++)
                bput(b, "%s%llu", i ? ", " : "", (unsigned long long)cfg->seeds[i]);
            bput(b, "]");
        }
        break;
    }
}

int config_write_yaml(const NbConfig *cfg, char **out_text) {
    Buf b = {0};
    char section[64] = "";
    for (int i = 0; i < NKEYS; i++) {
        const KeySpec *k = &KEYS[i];
        if (k->flags & F_ALIAS) continue;
        if ((k->flags & F_NAN_UNSET) && isnan(*(const double *)cfield(cfg, k))) continue;
        const char *dot = strchr(k->path, '.');
        if (dot) {
            size_t sl = (size_t)(dot - k->path);
            if (strlen(section) != sl || strncmp(section, k->path, sl) != 0) {
                snprintf(section, sizeof section, "%.*s", (int)sl, k->path);
                bput(&b, "%s:\n", section);
            }
            bput(&b, "  %s: ", dot + 1);
        } else {
            section[0] = '\0';
            bput(&b, "%s: ", k->path);
        }
        put_value(&b, cfg, k);
        bput(&b, "\n");
    }
    if (b.oom || !b.s) {
        free(b.s);
        *out_text = NULL;
        return -1;
    }
    *out_text = b.s;
    return 0;
}

void config_print(FILE *f, const NbConfig *cfg) {
    char *text = NULL;
    fprintf(f, "# resolved config%s%s: %d scheme%s x %d seed%s = %d run%s\n",
            cfg->source_path[0] ? " of " : "", cfg->source_path, cfg->n_schemes,
            cfg->n_schemes == 1 ? "" : "s", cfg->n_seeds, cfg->n_seeds == 1 ? "" : "s",
            cfg->n_schemes * cfg->n_seeds, cfg->n_schemes * cfg->n_seeds == 1 ? "" : "s");
    if (config_write_yaml(cfg, &text) != 0) {
        fprintf(f, "# (out of memory)\n");
        return;
    }
    fputs(text, f);
    free(text);
}

const char *config_backend_name(NbBackendKind b) {
    return (unsigned)b < 3 ? BACKEND_NAMES[b] : "?";
}
const char *config_norm_name(NormKind k) { return (unsigned)k < 2 ? NORM_NAMES[k] : "?"; }
