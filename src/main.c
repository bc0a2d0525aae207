/* main.c — the `normbench` command line: parses subcommands and their flags, maps outcomes
 * to exit codes (0 ok, 1 a run failed or diverged, 2 usage or config error). It is the only
 * place allowed process-wide state; the work itself lives in the modules it calls. */
#include <cblas.h>
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
#include "export.h"
#include "model.h"
#include "prune.h"
#include "report.h"
#include "run.h"
#include "schemes.h"
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
    long step;
    const char *data, *out, *what, *paper, *format;
} Args;

/* 1 when `arg` is one of the space-separated words of `allowed` */
static int option_allowed(const char *allowed, const char *arg) {
    size_t n = strlen(arg);
    for (const char *p = allowed; (p = strstr(p, arg)) != NULL; p += n)
        if ((p == allowed || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return 1;
    return 0;
}

/* The flags, a row each: a string flag stores its value in an Args field, a switch sets an
 * int field to 1; the rest (--set, -j, --step, --stop-after) convert their value below. */
typedef struct {
    const char *flag;
    size_t string_field; /* offsetof a const char * in Args, or 0 */
    size_t switch_field; /* offsetof an int in Args, or 0 */
} FlagRow;

#define STRING_FLAG(name, field) {name, offsetof(Args, field), 0}
#define SWITCH_FLAG(name, field) {name, 0, offsetof(Args, field)}
static const FlagRow flag_rows[] = {
    {"--set", 0, 0},                 {"-j", 0, 0},
    {"--step", 0, 0},                {"--stop-after", 0, 0},
    STRING_FLAG("--data", data),     STRING_FLAG("-o", out),
    STRING_FLAG("--what", what),     STRING_FLAG("--paper", paper),
    STRING_FLAG("--format", format), SWITCH_FLAG("--resume", resume),
    SWITCH_FLAG("--quiet", quiet),
};

/* Parses argv[1..] (argv[0] is the command) into a, accepting only the flags named in
 * `allowed`. Returns 0, or EXIT_USAGE after printing what was wrong and the usage. */
static int parse_args(const Command *cmd, int argc, char **argv, const char *allowed, Args *a) {
    memset(a, 0, sizeof *a);
    a->step = EXPORT_LAST_STEP;
    a->jobs = 1;
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
        if (row->switch_field) {
            *(int *)((char *)a + row->switch_field) = 1;
            continue;
        }
        if (i + 1 >= argc) return usage_error(cmd, "%s needs a value", arg);
        const char *value = argv[++i];
        if (row->string_field) {
            *(const char **)((char *)a + row->string_field) = value;
        } else if (!strcmp(arg, "--set")) {
            if (a->n_sets == 64) return usage_error(cmd, "too many %s", arg);
            a->sets[a->n_sets++] = value;
        } else if (!strcmp(arg, "--stop-after")) {
            a->stop_after = atoi(value);
        } else if (!strcmp(arg, "--step")) {
            a->step = !strcmp(value, "all") ? EXPORT_ALL_STEPS : strtol(value, NULL, 10);
        } else if ((a->jobs = atoi(value)) < 1) { /* -j */
            return usage_error(cmd, "-j needs a count >= 1, got %s", value);
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

/* train: every run from scratch (or --resume), one at a time; sweep: skip what is done,
 * resume what was cut off, -j N at a time. */
static int run_grid(const Command *cmd, int argc, char **argv, int is_sweep) {
    Args a;
    int rc = parse_args(cmd, argc, argv,
                        is_sweep ? "--set --quiet -j --stop-after" : "--set --resume --quiet --stop-after", &a);
    if (rc) return rc;
    if (a.n_pos != 1) return usage_error(cmd, "%s", "expects one CONFIG");
    NbConfig cfg;
    char err[1024];
    if (config_load(&cfg, a.pos[0], a.sets, a.n_sets, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return EXIT_USAGE;
    }
    install_stop_handler();
    SweepOptions opt = {.command = cmd->name, .jobs = a.jobs, .fresh = !is_sweep && !a.resume,
                        .progress = a.quiet ? NULL : stderr,
                        .progress_tty = isatty(fileno(stderr)), .stop_flag = &stop_requested,
                        .stop_after = a.stop_after};
    SweepTotals t;
    rc = sweep_execute(&cfg, &opt, &t, err, sizeof err);
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
    config_free(&cfg);
    return stop_requested ? 130 : (t.diverged || t.failed) ? EXIT_RUN_FAILED : 0;
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

static int cmd_bench(const Command *cmd, int argc, char **argv) {
    (void)cmd;
    return bench_main(argc, argv); /* argv[0] == "bench"; bench parses its own flags */
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
    if (!be || param_table_build(mc, &t) != 0) {
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
        printf("\n# scheme %s: %s (%s)\n", row->name, row->description, row->source);
        print_count("memory estimate (cpu fp32)",
                    (double)model_memory_bytes(mc, specs, cfg.train.batch, be), "B");
        printf("%5s %-4s %-5s %9s %9s %-13s %8s %s\n", "layer", "sub", "place", "in_scale",
               "res_scale", "init", "std", "gains (q k v o | gate up down)");
        for (int i = 0; i < 2 * mc->n_layer; i++) {
            const SublayerSpec *sp = &specs[i];
            char gains[64];
            int n_weights = i % 2 ? 3 : 4, len = 0;
            for (int r = 0; r < n_weights; r++)
                len += snprintf(gains + len, sizeof gains - (size_t)len, " %.4f", sp->init_gain[r]);
            printf("%5d %-4s %-5s %9.6f %9.6f %-13s %8.4f%s\n", i / 2 + 1, i % 2 ? "mlp" : "attn",
                   placement_name(sp->placement), sp->in_scale, sp->residual_scale,
                   init_kind_name(sp->init), sp->init_std, gains);
        }
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
    {"sweep", cmd_sweep, "normbench sweep CONFIG [-j N] [--set key.path=value]... [--quiet]",
     "the scheme x seed grid, N runs at a time: finished runs skipped, cut-off runs resumed"},
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
     "normbench bench [--quick] [--reps N] [--threads N] [--backend cpu|cuda|all] [-o FILE] | "
     "bench compare BASE.tsv CUR.tsv | bench --dump-init OUT.h5 CONFIG [--set k=v]...",
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
