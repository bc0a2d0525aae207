/* main.c — the `normbench` command line: parses subcommands and their flags, maps outcomes
 * to exit codes (0 ok, 1 a run failed or diverged, 2 usage or config error). It is the only
 * place allowed process-wide state; the work itself lives in the modules it calls. */
#include <cblas.h>
#include <hdf5.h>
#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <libgen.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "bench.h"
#include "checkpoint.h"
#include "config.h"
#include "cpu_kernels.h"
#include "data.h"
#include "dist.h"
#include "export.h"
#include "model.h"
#include "prune.h"
#include "report.h"
#include "run.h"
#include "schemes.h"
#include "slurm.h"
#include "sweep.h"
#include "tables.h"
#include "train.h"

#define EXIT_RUN_FAILED 1
#define EXIT_USAGE 2

typedef struct Command {
    const char *name;
    int (*run)(const struct Command *cmd, int argc, char **argv);
    const char *usage;
    const char *summary;
} Command;

static int is_help(const char *arg) { return !strcmp(arg, "--help") || !strcmp(arg, "-h"); }

static int usage_error(const Command *cmd, const char *fmt, const char *arg) {
    fprintf(stderr, "normbench %s: ", cmd->name);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage: %s\n", cmd->usage);
    return EXIT_USAGE;
}

/* Every command's flags, parsed by one parser: positional arguments go to pos[]. */
typedef struct {
    const char *pos[4];
    int n_pos;
    const char *sets[64];
    int n_sets;
    int resume, quiet, stop_after, jobs;
    int only, gpus_per_run;                    /* sweep: --only INDEX, --emit slurm */
    int step;                                  /* export: EXPORT_LAST_STEP, _ALL_STEPS or >= 0 */
    const char *data, *out, *what, *paper, *format;
    const char *emit, *time, *partition;       /* sweep --emit slurm */
    /* bench */
    int quick, no_ops, no_save, peak_only, reps, threads, steps;
    const char *backend, *models, *commit, *dump_init, *base_commit;
    double floor;
} Args;

/* 1 when `arg` is one of the space-separated words of `allowed` */
static int option_allowed(const char *allowed, const char *arg) {
    size_t n = strlen(arg);
    for (const char *p = allowed; (p = strstr(p, arg)) != NULL; p += n)
        if ((p == allowed || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return 1;
    return 0;
}

/* The flags, a row each: what kind of value it takes and the Args field it goes to. Counts
 * are decimal integers in [lo, hi] and nothing else (no sign, no trailing text: atoi read
 * "abc" as 0); reals are plain decimals. */
typedef enum { FLAG_SWITCH, FLAG_STRING, FLAG_SET, FLAG_COUNT, FLAG_REAL, FLAG_STEP } FlagKind;
typedef struct {
    const char *flag;
    FlagKind kind;
    size_t field;        /* offsetof in Args: int (switch, count, step), const char *, double */
    int lo, hi;          /* FLAG_COUNT's range */
} FlagRow;

#define FLAG(name, kind, field) {name, kind, offsetof(Args, field), 0, 0}
#define COUNT_FLAG(name, field, lo, hi) {name, FLAG_COUNT, offsetof(Args, field), lo, hi}
#define MAX_JOBS 1024 /* runs at a time: far beyond any machine's cores, short of a fork bomb */
static const FlagRow flag_rows[] = {
    FLAG("--set", FLAG_SET, sets),            FLAG("--resume", FLAG_SWITCH, resume),
    FLAG("--quiet", FLAG_SWITCH, quiet),      COUNT_FLAG("--stop-after", stop_after, 1, INT_MAX),
    COUNT_FLAG("-j", jobs, 1, MAX_JOBS),      FLAG("--data", FLAG_STRING, data),
    FLAG("-o", FLAG_STRING, out),             FLAG("--what", FLAG_STRING, what),
    FLAG("--step", FLAG_STEP, step),          FLAG("--paper", FLAG_STRING, paper),
    FLAG("--format", FLAG_STRING, format),
    /* sweep: one run of the grid; the Slurm script */
    COUNT_FLAG("--only", only, 0, INT_MAX),   COUNT_FLAG("--gpus-per-run", gpus_per_run, 1, 4096),
    FLAG("--emit", FLAG_STRING, emit),        FLAG("--time", FLAG_STRING, time),
    FLAG("--partition", FLAG_STRING, partition),
    /* bench */
    FLAG("--quick", FLAG_SWITCH, quick),      FLAG("--no-ops", FLAG_SWITCH, no_ops),
    FLAG("--no-save", FLAG_SWITCH, no_save),  FLAG("--peak-sgemm-only", FLAG_SWITCH, peak_only),
    COUNT_FLAG("--reps", reps, 1, 64),        COUNT_FLAG("--threads", threads, 1, 4096),
    COUNT_FLAG("--steps", steps, 0, 64),      FLAG("--backend", FLAG_STRING, backend),
    FLAG("--models", FLAG_STRING, models),    FLAG("--commit", FLAG_STRING, commit),
    FLAG("--dump-init", FLAG_STRING, dump_init),
    FLAG("--base-commit", FLAG_STRING, base_commit), FLAG("--floor", FLAG_REAL, floor),
};

/* A decimal integer in [lo, hi] and nothing else. Returns 0, or -1. */
static int parse_count(const char *s, long lo, long hi, long *out) {
    if (*s < '0' || *s > '9') return -1; /* no sign, no space, not empty */
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Parses argv[1..] (argv[0] is the command) into a, accepting only the flags named in
 * `allowed`. Returns 0, or EXIT_USAGE after printing what was wrong and the usage. */
static int parse_args(const Command *cmd, int argc, char **argv, const char *allowed, Args *a) {
    memset(a, 0, sizeof *a);
    a->step = EXPORT_LAST_STEP;
    a->jobs = 1;
    a->steps = 3;
    a->floor = 0.02;
    a->only = -1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-') {
            if (a->n_pos == 4) return usage_error(cmd, "unexpected argument %s", arg);
            a->pos[a->n_pos++] = arg;
            continue;
        }
        const FlagRow *row = NULL;
        for (size_t k = 0; k < sizeof flag_rows / sizeof flag_rows[0]; k++)
            if (!strcmp(arg, flag_rows[k].flag)) row = &flag_rows[k];
        if (!row || !option_allowed(allowed, arg)) return usage_error(cmd, "unknown option %s", arg);
        void *field = (char *)a + row->field;
        if (row->kind == FLAG_SWITCH) {
            *(int *)field = 1;
            continue;
        }
        if (i + 1 >= argc) return usage_error(cmd, "%s needs a value", arg);
        const char *value = argv[++i];
        long v;
        char *end;
        switch (row->kind) {
        case FLAG_STRING: *(const char **)field = value; break;
        case FLAG_SET:
            if (a->n_sets == 64) return usage_error(cmd, "too many %s", arg);
            a->sets[a->n_sets++] = value;
            break;
        case FLAG_COUNT:
            if (parse_count(value, row->lo, row->hi, &v) != 0) {
                fprintf(stderr, "normbench %s: %s needs a whole number in [%d, %d], got %s\n"
                        "usage: %s\n", cmd->name, arg, row->lo, row->hi, value, cmd->usage);
                return EXIT_USAGE;
            }
            *(int *)field = (int)v;
            break;
        case FLAG_STEP:
            if (!strcmp(value, "all")) *(int *)field = EXPORT_ALL_STEPS;
            else if (parse_count(value, 0, INT_MAX, &v) == 0) *(int *)field = (int)v;
            else return usage_error(cmd, "--step needs a step >= 0 or 'all', got %s", value);
            break;
        case FLAG_REAL:
            errno = 0;
            *(double *)field = strtod(value, &end);
            if (end == value || *end != '\0' || errno == ERANGE || !isfinite(*(double *)field)) {
                fprintf(stderr, "normbench %s: %s needs a number, got %s\nusage: %s\n", cmd->name,
                        arg, value, cmd->usage);
                return EXIT_USAGE;
            }
            break;
        case FLAG_SWITCH: break;
        }
    }
    return 0;
}

/* ---- train, sweep ---------------------------------------------------------------------- */

/* Set by SIGINT/SIGTERM; the trainer checks it after every step and stops cleanly with a
 * checkpoint, so Ctrl-C never loses a run. The only process-wide mutable state. */
static volatile sig_atomic_t stop_requested;

static void request_stop(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void install_stop_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = request_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* sweep --emit slurm: the sbatch script on stdout, nothing trained */
static int emit_slurm(const Command *cmd, const Args *a, NbConfig *cfg) {
    if (strcmp(a->emit, "slurm") != 0) return usage_error(cmd, "--emit knows slurm, not %s", a->emit);
    SlurmOptions so = {.config_path = a->pos[0], .sets = a->sets, .n_sets = a->n_sets,
                       .gpus_per_run = a->gpus_per_run, .time = a->time,
                       .partition = a->partition};
    char err[1024];
    if (slurm_emit(cfg, &so, stdout, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return EXIT_USAGE;
    }
    return 0;
}

/* train: every run from scratch (or --resume), one at a time; sweep: skip what is done,
 * resume what was cut off, -j N at a time. Under mpirun or srun every rank runs this, and
 * each run is one run across the ranks (src/dist.c); ranks > 0 print nothing but errors. */
static int run_grid_ranks(const Command *cmd, Args *a, int is_sweep);

static int run_grid(const Command *cmd, int argc, char **argv, int is_sweep) {
    Args a;
    int rc = parse_args(cmd, argc, argv,
                        is_sweep ? "--set --quiet -j --stop-after --only --emit --gpus-per-run "
                                   "--time --partition"
                                 : "--set --resume --quiet --stop-after", &a);
    if (rc) return rc;
    if (a.n_pos != 1) return usage_error(cmd, "%s", "expects one CONFIG");
    if (!a.emit && (a.time || a.partition || a.gpus_per_run))
        return usage_error(cmd, "%s", "--time, --partition and --gpus-per-run go with --emit slurm");
    char err[1024];
    if (!a.emit && dist_init(&argc, &argv, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return EXIT_USAGE;
    }
    rc = run_grid_ranks(cmd, &a, is_sweep);
    dist_finalize();
    return rc;
}

static int run_grid_ranks(const Command *cmd, Args *a_, int is_sweep) {
    Args a = *a_;
    NbConfig cfg;
    char err[1024];
    if (dist_rank() > 0) { /* rank 0 speaks for the run: the others keep stdout quiet */
        a.quiet = 1;
        if (!freopen("/dev/null", "w", stdout)) return EXIT_RUN_FAILED;
    }
    if (config_load(&cfg, a.pos[0], a.sets, a.n_sets, err, sizeof err) != 0) {
        if (dist_rank() == 0) fprintf(stderr, "%s\n", err);
        return EXIT_USAGE;
    }
    if (a.emit) {
        int rc = emit_slurm(cmd, &a, &cfg);
        config_free(&cfg);
        return rc;
    }
    int bad = a.only >= cfg.n_schemes * cfg.n_seeds ? snprintf(err, sizeof err,
                  "normbench %s: --only %d: the grid has runs 0..%d", cmd->name, a.only,
                  cfg.n_schemes * cfg.n_seeds - 1)
              : dist_size() > 1 && a.jobs > 1 ? snprintf(err, sizeof err,
                  "normbench %s: -j %d with %d ranks: one run at a time across the ranks",
                  cmd->name, a.jobs, dist_size())
              : dist_prepare(&cfg, err, sizeof err) != 0;
    if (bad) {
        if (dist_rank() == 0) fprintf(stderr, "%s\n", err);
        config_free(&cfg);
        return EXIT_USAGE;
    }
    install_stop_handler();
    SweepOptions opt = {.command = cmd->name, .jobs = a.jobs, .fresh = !is_sweep && !a.resume,
                        .progress = a.quiet ? NULL : stderr,
                        .progress_tty = isatty(fileno(stderr)), .stop_flag = &stop_requested,
                        .stop_after = a.stop_after, .only = a.only + 1};
    SweepTotals t;
    int rc = sweep_execute(&cfg, &opt, &t, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err);
        config_free(&cfg);
        return rc == SWEEP_SETUP_ERROR ? EXIT_USAGE : EXIT_RUN_FAILED;
    }
    char dir[NB_PATH_MAX * 2];
    sweep_dir(&cfg, dir, sizeof dir);
    if (!a.quiet)
        fprintf(stderr, "normbench %s: %d finished, %d diverged, %d failed, %d stopped, "
                "%d skipped; run files in %s/\n", cmd->name, t.finished, t.diverged, t.failed,
                t.stopped, t.skipped, dir);
    /* 130 only when a stop request left work undone: a run stopped, or runs never started
     * (Ctrl-C during the pruning sweep of the last run still finishes it) */
    int accounted = t.finished + t.diverged + t.failed + t.stopped + t.skipped;
    int planned = a.only >= 0 ? 1 : cfg.n_schemes * cfg.n_seeds;
    int interrupted = stop_requested && (t.stopped > 0 || accounted < planned);
    config_free(&cfg);
    return interrupted ? 130 : (t.diverged || t.failed) ? EXIT_RUN_FAILED : 0;
}

static int cmd_train(const Command *cmd, int argc, char **argv) { return run_grid(cmd, argc, argv, 0); }
static int cmd_sweep(const Command *cmd, int argc, char **argv) { return run_grid(cmd, argc, argv, 1); }

/* ---- report, export ---------------------------------------------------------------------- */

/* The gnuplot scripts: ./plots when run from the repository root, else beside the binary
 * (build/normbench -> plots/). */
static void find_plots_dir(char *out, size_t len) {
    snprintf(out, len, "plots");
    if (access(out, R_OK) == 0) return;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = '\0';
    snprintf(out, len, "%s/../plots", dirname(exe));
}

static int cmd_report(const Command *cmd, int argc, char **argv) {
    Args a;
    int rc = parse_args(cmd, argc, argv, "--quiet", &a);
    if (rc) return rc;
    if (a.n_pos != 1) return usage_error(cmd, "%s", "expects one DIR");
    char plots[PATH_MAX + 16], err[1024];
    find_plots_dir(plots, sizeof plots);
    ReportOptions opt = {.plots_dir = plots, .log = a.quiet ? NULL : stderr};
    rc = report_write(a.pos[0], &opt, err, sizeof err);
    if (rc == REPORT_ERR) {
        fprintf(stderr, "%s\n", err);
        return EXIT_RUN_FAILED;
    }
    printf("report: %s/report/summary.md%s\n", a.pos[0],
           rc == REPORT_NO_GNUPLOT ? " (tables only: install gnuplot-nox for the plots)" : " and its plots");
    return 0;
}

static int cmd_export(const Command *cmd, int argc, char **argv) {
    Args a;
    int rc = parse_args(cmd, argc, argv, "--what --step", &a);
    if (rc) return rc;
    if (a.n_pos != 1) return usage_error(cmd, "%s", "expects one RUN.h5");
    char err[1024];
    if (export_run(a.pos[0], a.what ? a.what : "eval", a.step, stdout, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return EXIT_USAGE;
    }
    return 0;
}

static int cmd_tables(const Command *cmd, int argc, char **argv) {
    Args a;
    int rc = parse_args(cmd, argc, argv, "--paper --format", &a);
    if (rc) return rc;
    if (a.n_pos != 1) return usage_error(cmd, "%s", "expects one RUNS_DIR");
    char err[1024];
    TablesOptions opt = {.paper = a.paper, .format = a.format ? a.format : "md", .log = stderr};
    if (tables_print(a.pos[0], &opt, stdout, err, sizeof err) != TABLES_OK) {
        fprintf(stderr, "normbench tables: %s\n", err);
        return EXIT_USAGE;
    }
    return 0;
}

/* bench: the figures; bench compare BASE CUR; bench --dump-init OUT CONFIG */
static int cmd_bench(const Command *cmd, int argc, char **argv) {
    Args a;
    int is_compare = argc > 1 && !strcmp(argv[1], "compare");
    int rc = parse_args(cmd, argc, argv,
                        is_compare ? "--base-commit --floor"
                                   : "--quick --no-ops --no-save --peak-sgemm-only --reps --threads "
                                     "--steps --backend --models -o --commit --dump-init --set",
                        &a);
    if (rc) return rc;
    if (is_compare) {
        if (a.n_pos != 3) return usage_error(cmd, "%s", "compare expects BASE.tsv CURRENT.tsv");
        return bench_compare(a.pos[1], a.pos[2], a.base_commit, a.floor);
    }
    if (a.dump_init) {
        if (a.n_pos != 1) return usage_error(cmd, "%s", "--dump-init expects OUT.h5 and one CONFIG");
        return bench_dump_init(a.dump_init, a.pos[0], a.sets, a.n_sets, a.steps);
    }
    if (a.n_pos != 0) return usage_error(cmd, "unexpected argument %s", a.pos[0]);
    BenchOptions o = {.quick = a.quick, .reps = a.reps, .threads = a.threads, .ops = !a.no_ops,
                      .save = !a.no_save, .peak_only = a.peak_only, .backend = a.backend,
                      .models = a.models, .out = a.out, .commit = a.commit};
    return bench_run(&o);
}

/* ---- show ----------------------------------------------------------------------------- */

static void print_count(const char *label, double v, const char *unit) {
    const char *suffix[] = {"", "K", "M", "G", "T"};
    int k = 0;
    while (fabs(v) >= 1000 && k < 4) v /= 1000, k++;
    printf("%-26s %.3g%s%s\n", label, v, suffix[k], unit);
}

static int cmd_show(const Command *cmd, int argc, char **argv) {
    Args a;
    int rc = parse_args(cmd, argc, argv, "--set", &a);
    if (rc) return rc;
    if (a.n_pos != 1) return usage_error(cmd, "%s", "expects one CONFIG");
    NbConfig cfg;
    char err[1024];
    if (config_load(&cfg, a.pos[0], a.sets, a.n_sets, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return EXIT_USAGE;
    }
    config_print(stdout, &cfg);
    const ModelConfig *mc = &cfg.model;
    ParamTable t;
    Backend *be = backend_create("cpu", 1, err, sizeof err);
    if (!be || param_table_build(mc, NULL, &t) != 0) {
        fprintf(stderr, "normbench show: out of memory\n");
        if (be) backend_destroy(be);
        config_free(&cfg);
        return EXIT_RUN_FAILED;
    }
    size_t embed = (size_t)mc->vocab_size * mc->d_model;
    printf("\n# model\n");
    print_count("parameters", (double)t.total, "");
    print_count("  without embeddings", (double)(t.total - embed), "");
    print_count("FLOPs per token (train)", model_flops_per_token(mc), "");
    print_count("tokens per step", (double)cfg.train.batch * mc->seq_len * cfg.train.grad_accum, "");
    for (int si = 0; si < cfg.n_schemes; si++) {
        const SchemeRow *row = cfg.schemes[si];
        SublayerSpec *specs = run_build_specs(mc, row, &cfg.scheme_params, err, sizeof err);
        if (!specs) {
            fprintf(stderr, "%s\n", err);
            rc = EXIT_USAGE;
            break;
        }
        printf("\n");
        ParamTable st;
        if (param_table_build(mc, specs, &st) == 0) {
            print_count("parameters (this scheme)", (double)st.total, "");
            param_table_free(&st);
        }
        print_count("memory estimate (cpu fp32)",
                    (double)model_memory_bytes(mc, specs, cfg.train.batch, be), "B");
        scheme_print(stdout, row, &cfg.scheme_params, mc->n_layer, specs);
        free(specs);
    }
    param_table_free(&t);
    backend_destroy(be);
    config_free(&cfg);
    return rc;
}

/* ---- eval ----------------------------------------------------------------------------- */

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int cmd_eval(const Command *cmd, int argc, char **argv) {
    Args a;
    int rc = parse_args(cmd, argc, argv, "--data --set", &a);
    if (rc) return rc;
    if (a.n_pos != 1) return usage_error(cmd, "%s", "expects one CHECKPOINT");
    char err[1024];
    CheckpointInfo info;
    if (checkpoint_read_info(a.pos[0], &info, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return EXIT_USAGE;
    }
    NbConfig cfg;
    int loaded = config_load_string(&cfg, info.config_yaml, a.pos[0], a.sets, a.n_sets, err,
                                    sizeof err) == 0;
    checkpoint_info_free(&info);
    if (!loaded) {
        fprintf(stderr, "%s\n", err);
        return EXIT_USAGE;
    }
    Dataset ds = {0};
    Backend *be = NULL;
    Model *m = NULL;
    rc = EXIT_USAGE;
    int ds_rc = !a.data ? run_load_dataset(&cfg, &ds, err, sizeof err)
                : has_suffix(a.data, ".bin")
                    ? dataset_load_shards(&ds, a.data, a.data, cfg.model.seq_len,
                                          cfg.model.vocab_size, err, sizeof err)
                    : dataset_load_text(&ds, a.data, cfg.model.seq_len, cfg.model.vocab_size, err,
                                        sizeof err);
    if (ds_rc != 0 || !(be = run_open_backend(&cfg, err, sizeof err))) {
        fprintf(stderr, "%s\n", err);
        goto done;
    }
    if (!(m = run_create_model(&cfg, be, err, sizeof err)) ||
        checkpoint_load_params(a.pos[0], m, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        rc = EXIT_RUN_FAILED;
        goto done;
    }
    size_t batches = dataset_val_batches(&ds, cfg.train.batch);
    if (batches == 0) {
        fprintf(stderr, "%s: fewer than %d validation sequences of %d tokens\n",
                a.data ? a.data : DATA_DEFAULT_CORPUS, cfg.train.batch, cfg.model.seq_len);
        goto done;
    }
    double loss = train_evaluate(m, &ds, (int)batches);
    printf("val_loss %.6f  ppl %.4f  (%zu batches of %d x %d tokens)\n", loss, exp(loss),
           batches, cfg.train.batch, cfg.model.seq_len);
    rc = isfinite(loss) ? 0 : EXIT_RUN_FAILED;
done:
    model_destroy(m);
    if (be) backend_destroy(be);
    dataset_free(&ds);
    config_free(&cfg);
    return rc;
}

/* ---- prune ---------------------------------------------------------------------------- */

static int cmd_prune(const Command *cmd, int argc, char **argv) {
    Args a;
    int rc = parse_args(cmd, argc, argv, "--what --quiet --stop-after", &a);
    if (rc) return rc;
    if (a.n_pos != 1) return usage_error(cmd, "%s", "expects one RUN.h5 or RUN.ckpt.h5");
    install_stop_handler();
    char err[1024];
    PruneOptions opt = {.what = a.what, .progress = a.quiet ? NULL : stderr,
                        .progress_tty = isatty(fileno(stderr)),
                        .stop_after_batches = a.stop_after, .stop_flag = &stop_requested};
    rc = prune_run(a.pos[0], &opt, err, sizeof err);
    if (rc != PRUNE_OK) fprintf(stderr, "normbench prune: %s\n", err);
    return rc == PRUNE_OK ? 0 : rc == PRUNE_USAGE ? EXIT_USAGE : rc == PRUNE_STOPPED ? 130
                                                                                  : EXIT_RUN_FAILED;
}

/* ---- tokenize, info ------------------------------------------------------------------- */

static int cmd_tokenize(const Command *cmd, int argc, char **argv) {
    Args a;
    int rc = parse_args(cmd, argc, argv, "-o", &a);
    if (rc) return rc;
    if (a.n_pos != 1 || !a.out) return usage_error(cmd, "%s", "expects TEXT and -o OUT.bin");
    char err[1024];
    if (tokenize_text_file(a.pos[0], a.out, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return EXIT_USAGE;
    }
    return 0;
}

static int cmd_info(const Command *cmd, int argc, char **argv) {
    Args a;
    int rc = parse_args(cmd, argc, argv, "", &a);
    if (rc) return rc;
    char text[2048];
    backend_describe(text, sizeof text);
    printf("normbench backends:\n%s", text);
    printf("BLAS: %s, %d threads\n", openblas_get_config(), openblas_get_num_threads());
    char kernels[512];
    cpu_kernels_describe(kernels, sizeof kernels);
    printf("CPU kernels: %s\n", kernels);
    printf("MPI: %s\n", dist_describe());
    printf("schemes:");
    for (size_t i = 0; i < scheme_count(); i++) printf(" %s", scheme_at(i)->name);
    printf("\n");
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------------- */

static const Command commands[] = {
    {"train", cmd_train,
     "normbench train CONFIG [--set key.path=value]... [--resume] [--quiet] [--stop-after N]",
     "train every scheme x seed of CONFIG from scratch (--resume: continue from checkpoints)"},
    {"sweep", cmd_sweep,
     "normbench sweep CONFIG [-j N] [--set key.path=value]... [--quiet] [--only INDEX] | "
     "sweep CONFIG --emit slurm [--gpus-per-run N] [--time T] [--partition P] [--set ...]",
     "the scheme x seed grid, N runs at a time: finished runs skipped, cut-off runs resumed "
     "(--only: run INDEX of the grid alone; --emit slurm: the grid as an sbatch job array)"},
    {"report", cmd_report, "normbench report DIR [--quiet]",
     "summary tables and gnuplot figures of the run files in DIR, into DIR/report/"},
    {"export", cmd_export,
     "normbench export RUN.h5 [--what train|eval|variance|angular|grad|prune] [--step S|all]",
     "a run file's series or probes as TSV (default: eval; probes: last step)"},
    {"show", cmd_show, "normbench show CONFIG [--set key.path=value]...",
     "resolved config, parameter count, FLOPs per token, memory, per-layer scheme table"},
    {"eval", cmd_eval, "normbench eval CHECKPOINT [--data FILE]",
     "validation loss and perplexity of a checkpoint (FILE: a .bin shard or a text corpus)"},
    {"prune", cmd_prune,
     "normbench prune RUN.h5|RUN.ckpt.h5 [--what block|attn|mlp] [--quiet] [--stop-after BATCHES]",
     "pruning sweep of a finished run into its run file (resumable; default all three)"},
    {"tokenize", cmd_tokenize, "normbench tokenize TEXT -o OUT.bin",
     "byte-level tokens of a text file (plain or .gz) into an llm.c .bin shard"},
    {"tables", cmd_tables, "normbench tables RUNS_DIR [--paper cod|mixln] [--format md|tsv|tex]",
     "the papers' perplexity tables (schemes x sizes) from the run files under RUNS_DIR"},
    {"bench", cmd_bench,
     "normbench bench [--quick] [--reps N] [--threads N] [--backend cpu|cuda|all] "
     "[--models demo,llama71m,llama130m] [--no-ops] [-o FILE | --no-save] [--commit ID] "
     "[--peak-sgemm-only] | bench compare BASE.tsv CUR.tsv [--base-commit ID] [--floor F] | "
     "bench --dump-init OUT.h5 CONFIG [--set k=v]... [--steps K]",
     "per-op and training throughput, MFU, memory; results to bench/results/<device>.tsv"},
    {"info", cmd_info, "normbench info", "backends, devices, BLAS and threads"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_help(FILE *f) {
    fprintf(f, "normbench: train identical transformers that differ only in normalization\n\n"
               "usage: normbench COMMAND [args]   (normbench COMMAND --help for details)\n\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nexit status: 0 ok, 1 a run failed or diverged, 2 usage or config error\n");
}

int main(int argc, char **argv) {
    cpu_kernels_select(argv); /* first: may re-execute with the right OpenBLAS kernels */
    /* HDF5 never prints its error stack (every failure becomes one line of ours) and never
     * closes files at exit: a file whose close failed on a full disk stays open inside the
     * library, and its exit-time cleanup closed it again and crashed (issue 17). */
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (argc < 2 || is_help(argv[1])) {
        print_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        for (int j = 2; j < argc; j++)
            if (is_help(argv[j])) {
                printf("usage: %s\n  %s\n", commands[i].usage, commands[i].summary);
                return 0;
            }
        return commands[i].run(&commands[i], argc - 1, argv + 1);
    }
    fprintf(stderr, "normbench: unknown command '%s'\n", argv[1]);
    print_help(stderr);
    return EXIT_USAGE;
}
