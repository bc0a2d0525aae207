# normbench build. `make` builds build/normbench (CPU always; the CUDA backend too whenever
# nvcc is found; MPI whenever mpicc is). `make test` runs the Check suites and test-slurm,
# `make test-sanitize` the same suites under ASan+UBSan, `make test-gpu` the GPU suites,
# `make demo` the README's main job.
# Every entry point first checks the dependencies and runs scripts/install-deps if one is
# missing, so a fresh Debian machine needs no other command.

BUILD    ?= build
PKGS     := openblas hdf5 yaml-0.1 check zlib
# Recursive (=) on purpose: pkg-config must run after `deps` has installed the packages.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC       ?= gcc
OPT      ?= -O2
# -ffp-contract=off: no fused multiply-add in the CPU backend's loops, whose results are then
# the same bits at every vector width (kernels/cpu/vec_kernels.h)
CFLAGS_BASE := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror $(OPT) -g -fopenmp \
               -ffp-contract=off -Isrc -Ikernels -MMD -MP
EXTRA_CFLAGS ?=
EXTRA_LDFLAGS ?=
# The builds inside `make all/test/demo` use every core unless the caller gave -j itself
# (on 2 cores this halves the ~1 min CUDA + C build that `make demo` starts with).
NPROC    := $(shell nproc 2>/dev/null || echo 1)
SUBMAKE_J = $(if $(filter -j%,$(MAKEFLAGS)),,-j$(NPROC))

# CUDA: compiled only when nvcc exists (NO_CUDA=1 forces it off, e.g. for sanitizer builds).
NVCC     ?= $(shell command -v nvcc 2>/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
ifeq ($(NO_CUDA),1)
  NVCC :=
endif
CUDA_SRCS := $(wildcard kernels/cuda/*.cu)
ifneq ($(and $(NVCC),$(CUDA_SRCS)),)
  HAVE_CUDA := 1
  CUDA_DEFS := -DNB_HAVE_CUDA
  # C++20 for designated initializers: cuda_backend.cu fills its op table by name from
  # kernels/backend_ops.def, as the C side does.
  NVCCFLAGS ?= -O2 -std=c++20 -Isrc -Ikernels --expt-relaxed-constexpr \
               -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
               -Xcompiler -Wall,-Wextra,-Werror -Werror all-warnings
  CUDA_LIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++
else
  HAVE_CUDA :=
  CUDA_DEFS :=
  CUDA_LIBS :=
endif

# MPI (one run across N processes, src/dist.c): compiled in only when mpicc exists (Debian's
# libopenmpi-dev), like CUDA with nvcc; NO_MPI=1 forces it off. Without it normbench is
# one process. NCCL (the CUDA side of the same) comes with the CUDA toolkit when nccl.h is
# there.
MPICC    ?= $(shell command -v mpicc 2>/dev/null)
ifeq ($(NO_MPI),1)
  MPICC :=
endif
ifneq ($(MPICC),)
  MPI_DEFS := -DNB_HAVE_MPI
  MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null)
  MPI_LIBS := $(shell $(MPICC) --showme:link 2>/dev/null)
endif
ifneq ($(HAVE_CUDA),)
  ifneq ($(wildcard $(CUDA_HOME)/include/nccl.h),)
    NVCCFLAGS += -DNB_HAVE_NCCL
    CUDA_DEFS += -DNB_HAVE_NCCL
    CUDA_LIBS := -lnccl $(CUDA_LIBS)
  endif
endif

CFLAGS   = $(CFLAGS_BASE) $(CUDA_DEFS) $(MPI_DEFS) $(MPI_CFLAGS) $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS   = $(CUDA_LIBS) $(MPI_LIBS) $(PKG_LIBS) -lm -fopenmp $(EXTRA_LDFLAGS)

LIB_SRCS  := $(filter-out src/main.c,$(wildcard src/*.c)) $(wildcard kernels/*.c) $(wildcard kernels/cpu/*.c)
LIB_OBJS  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
CUDA_OBJS := $(if $(HAVE_CUDA),$(patsubst %.cu,$(BUILD)/%.cu.o,$(CUDA_SRCS)))
TEST_SRCS := $(wildcard tests/*.c)
TEST_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(TEST_SRCS))
GPU_TEST_SRCS := $(wildcard tests/gpu/*.c)
GPU_TEST_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(GPU_TEST_SRCS))

.PHONY: all deps test test-slurm test-sanitize test-gpu demo zoo bench bench-torch clean tables-small tables-gpu fuzz
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory $(SUBMAKE_J) $(BUILD)/normbench

# Installs missing packages only when pkg-config or a header check says something is absent.
deps:
	@pkg-config --exists $(PKGS) 2>/dev/null && [ -n "$$(ls /usr/include/*/cblas.h /usr/include/cblas.h 2>/dev/null)" ] \
	  && command -v gnuplot >/dev/null && command -v h5dump >/dev/null \
	  && command -v spm_encode >/dev/null && command -v jq >/dev/null \
	  && command -v mpicc >/dev/null && command -v mpirun >/dev/null \
	  && command -v sbatch >/dev/null && [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/munged ] \
	  || bash scripts/install-deps

$(BUILD)/libnormbench.a: $(LIB_OBJS) $(CUDA_OBJS)
	@mkdir -p $(@D)
	ar rcs $@ $^

$(BUILD)/normbench: $(BUILD)/src/main.o $(BUILD)/libnormbench.a
	$(CC) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC    $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

# -fno-math-errno: sqrtf in the CPU kernels' `omp simd` loops (AdamW, vec_kernels.h) becomes
# a vector square root (with errno semantics it stays a scalar call); no kernel reads errno.
$(BUILD)/kernels/cpu/%.o: CFLAGS += -fno-math-errno

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(@D)
	@echo "  NVCC  $<"
	@$(NVCC) $(NVCCFLAGS) -MMD -MP -c -o $@ $<

# The test runner collects every `Suite *NAME_suite(void)` defined in tests/*.c.
$(BUILD)/tests/suites.h: $(TEST_SRCS)
	@mkdir -p $(@D)
	@grep -ho '^Suite \*[a-z0-9_]*_suite(void)' $(TEST_SRCS) | sed 's/^Suite \*\([a-z0-9_]*\)(void)/NB_SUITE(\1)/' > $@.tmp
	@mv $@.tmp $@

$(BUILD)/tests/main.o: $(BUILD)/tests/suites.h
$(BUILD)/tests/main.o: CFLAGS += -I$(BUILD)/tests

$(BUILD)/run_tests: $(TEST_OBJS) $(BUILD)/libnormbench.a
	$(CC) -o $@ $^ $(LDLIBS)

$(BUILD)/run_gpu_tests: $(GPU_TEST_OBJS) $(BUILD)/libnormbench.a
	$(CC) -o $@ $^ $(LDLIBS)

# Tests run from the repository root (they read configs/ and data/). OpenMP threads sleep
# instead of spinning while they wait (OMP_WAIT_POLICY=passive): tests are not timings, and
# spinning threads starve each other on a loaded 2-core machine.
# The suites include 2-rank runs through mpirun (tests/test_dist.c); then test-slurm.
# Every suite runs under the BLAS kernels normbench chooses for this CPU (src/cpu_kernels.c);
# the numerical suites (ops against float64 references, gradient checks, bitwise determinism
# and resume) then run again under each other OpenBLAS core this CPU can run (generic
# Prescott, Haswell, SkylakeX: `run_tests --other-kernels`).
TEST_KERNEL_SUITES := kernel model train
test: deps
	@$(MAKE) --no-print-directory $(SUBMAKE_J) $(BUILD)/run_tests $(BUILD)/normbench
	NB_BIN=$(BUILD)/normbench OMP_WAIT_POLICY=passive $(BUILD)/run_tests
	@for k in $$($(BUILD)/run_tests --other-kernels); do \
	  echo "OPENBLAS_CORETYPE=$$k $(BUILD)/run_tests $(TEST_KERNEL_SUITES)"; \
	  NB_BIN=$(BUILD)/normbench OMP_WAIT_POLICY=passive OPENBLAS_CORETYPE=$$k \
	    $(BUILD)/run_tests $(TEST_KERNEL_SUITES) || exit 1; \
	done
	@$(MAKE) --no-print-directory test-slurm

# `sweep --emit slurm` against a real one-node Slurm that tests/slurm.sh starts and stops
# (~15 s); prints why and SKIPPED when Slurm cannot start on this machine (e.g. not root).
test-slurm: deps
	@$(MAKE) --no-print-directory $(SUBMAKE_J) $(BUILD)/normbench
	bash tests/slurm.sh $(BUILD)/normbench

test-sanitize: deps
	@$(MAKE) --no-print-directory $(SUBMAKE_J) BUILD=build-san NO_CUDA=1 OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" build-san/run_tests build-san/normbench
	NB_BIN=build-san/normbench NB_SANITIZE=1 OMP_WAIT_POLICY=passive CK_TIMEOUT_MULTIPLIER=5 ASAN_OPTIONS=detect_leaks=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp build-san/run_tests

test-gpu: deps
	@if [ -z "$(HAVE_CUDA)" ]; then echo "test-gpu: skipped: no nvcc, CUDA backend not built"; exit 0; fi; \
	$(MAKE) --no-print-directory $(BUILD)/run_gpu_tests && $(BUILD)/run_gpu_tests

# The README's main job: the five schemes on the embedded corpus, then the report. Re-running
# skips finished runs and resumes cut-off ones. JOBS runs train side by side: all five at
# once by default (one thread each on a 2-core machine), so no core idles while a last run
# finishes alone.
JOBS ?= 5
demo: all
	$(BUILD)/normbench sweep configs/demo/demo.yaml -j $(JOBS)
	$(BUILD)/normbench report runs/demo
	@echo "demo: summary in runs/demo/report/summary.md, plots in runs/demo/report/*.png"

# Every scheme of the scheme table on the demo model, 3 seeds, one report (configs/demo/zoo.yaml).
zoo: all
	$(BUILD)/normbench sweep configs/demo/zoo.yaml -j $(JOBS)
	$(BUILD)/normbench report runs/zoo
	@echo "zoo: summary in runs/zoo/report/summary.md, plots in runs/zoo/report/*.png"

# Throughput: per-op figures, training tokens/s, MFU and memory for each backend present,
# appended to bench/results/<device>.tsv (bench/README.md; bench/compare for A/B).
BENCH_ARGS ?=
bench: all
	$(BUILD)/normbench bench $(BENCH_ARGS)

# normbench vs PyTorch (Debian's python3-torch) on the same model and weights: loss and
# gradients checked, then tokens/s side by side at the same thread count.
TORCH_THREADS ?= 2
bench-torch: all
	@/usr/bin/python3 -c 'import torch, h5py' 2>/dev/null || bash scripts/install-deps --torch
	/usr/bin/python3 bench/torch_reference.py --bin $(BUILD)/normbench --threads $(TORCH_THREADS)
	/usr/bin/python3 bench/torch_reference.py --bin $(BUILD)/normbench --threads $(TORCH_THREADS) --schemes pre_ln --steps 2 \
	  --set model.d_model=128 --set model.d_ff=344 --set model.seq_len=128 --set train.batch=16
	/usr/bin/python3 bench/torch_reference.py --bin $(BUILD)/normbench --threads $(TORCH_THREADS) --schemes pre_ln --steps 2 \
	  --set model.d_model=512 --set model.n_head=8 --set model.d_ff=1368 --set model.seq_len=256 --set train.batch=8

# The papers' table at CPU scale (configs/tables-small, docs/tables.md): Brown corpus through
# the vendored SentencePiece model, three sizes x five schemes x three seeds, resumable.
# QUICK=1: one size, one seed.
TABLES_SMALL_DATA  := runs/tables-small/data
TABLES_SMALL_SIZES := $(if $(QUICK),l12d64,l12d64 l24d64 l24d80)
tables-small: all
	@if [ ! -s $(TABLES_SMALL_DATA)/val.bin ]; then \
	  mkdir -p $(TABLES_SMALL_DATA) && \
	  zcat data/brown.txt.gz | sed -n '1,475p' > $(TABLES_SMALL_DATA)/brown-train.txt && \
	  zcat data/brown.txt.gz | sed -n '476,$$p' > $(TABLES_SMALL_DATA)/brown-val.txt && \
	  scripts/prepare-c4 --text --spm data/brown-spm2048.model --out $(TABLES_SMALL_DATA) \
	    --val $(TABLES_SMALL_DATA)/brown-val.txt $(TABLES_SMALL_DATA)/brown-train.txt; fi
	@for s in $(TABLES_SMALL_SIZES); do \
	  $(BUILD)/normbench sweep configs/tables-small/$$s.yaml -j $(JOBS) $(if $(QUICK),--set seed=1); \
	  rc=$$?; [ $$rc -le 1 ] || exit $$rc; done
	$(BUILD)/normbench tables runs/tables-small

# One column of a paper's table on the CUDA backend (SIZE=130m, PAPER=cod|mixln); prints the
# estimated wall time first. ESTIMATE=1 stops after the estimate.
PAPER ?= cod
tables-gpu: all
	@[ -n "$(HAVE_CUDA)" ] || { echo "tables-gpu: the CUDA backend is not built (no nvcc found)"; exit 2; }
	bash scripts/tables-gpu --bin $(BUILD)/normbench --paper $(PAPER) $(if $(ESTIMATE),--estimate-only) $(SIZE)

# Fuzzing (libFuzzer through Debian's clang, ASan + UBSan): the config parser, the shard
# reader, the run-file reader and the checkpoint reader, FUZZ_SECONDS each (default 60),
# one after another. Seeds are fuzz/corpus/<target>; what a run adds goes to
# build-fuzz/corpus/<target>, crashes to build-fuzz/crash-<target>-*. Not part of `make test`;
# .ci/run runs it briefly (FUZZ_SECONDS=20). FUZZ_JOBS=2 fuzzes each target with two
# processes (libFuzzer's fork mode), as on the 2-core machines. The HDF5 targets read each
# input as normbench does, in a child process first (src/h5vet.c, 0.2 s limit there), so
# libhdf5's own loops and crashes on corrupt files (fuzz/libhdf5-findings/) are not findings,
# and every timeout or crash left is one.
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
FUZZ_TARGETS := config shard runfile checkpoint
FUZZ_CFLAGS  := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer -Wno-pass-failed
build-fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_util.h build-fuzz/libnormbench.a
	clang $(CFLAGS_BASE) $(PKG_CFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
	  build-fuzz/libnormbench.a $(PKG_LIBS) -lm -fopenmp
fuzz:
	@command -v clang >/dev/null && [ -n "$$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null)" ] \
	  || bash scripts/install-deps --fuzz
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory $(SUBMAKE_J) BUILD=build-fuzz NO_CUDA=1 NO_MPI=1 CC=clang OPT=-O1 \
	  EXTRA_CFLAGS="$(FUZZ_CFLAGS)" build-fuzz/libnormbench.a
	@$(MAKE) --no-print-directory BUILD=build-fuzz NO_CUDA=1 NO_MPI=1 $(addprefix build-fuzz/fuzz_,$(FUZZ_TARGETS))
	@failed=""; for t in $(FUZZ_TARGETS); do mkdir -p build-fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s x $(FUZZ_JOBS) process(es)"; \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp build-fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    $$([ $(FUZZ_JOBS) -gt 1 ] && echo -fork=$(FUZZ_JOBS)) \
	    -artifact_prefix=build-fuzz/crash-$$t- build-fuzz/corpus/$$t fuzz/corpus/$$t \
	    2> build-fuzz/fuzz-$$t.log || { grep -E "ERROR|SUMMARY|Test unit written" build-fuzz/fuzz-$$t.log; failed="$$failed $$t"; }; \
	  grep -E "stat::number_of_executed_units|oom/timeout/crash" build-fuzz/fuzz-$$t.log | tail -1; done; \
	  if [ -n "$$failed" ]; then echo "fuzz: findings in:$$failed (inputs in build-fuzz/crash-*)"; exit 1; fi

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(GPU_TEST_OBJS:.o=.d) $(BUILD)/src/main.d \
         $(CUDA_OBJS:.o=.d)
