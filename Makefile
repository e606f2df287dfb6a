# ivf: IVF vector index for PostgreSQL (PGXS build)
#
#   make                 build ivf.so (CPU only; never links CUDA/ROCm)
#   make install         install into the PostgreSQL found by $(PG_CONFIG)
#   make installcheck    pg_regress (test/sql, test/expected) against a running
#                        server, then the TAP files (test/t/*.pl: each starts its
#                        own servers, so not as root); TAP_TESTS= for pg_regress alone
#   make prove_installcheck
#                        the TAP files alone; PROVE_TESTS="test/t/010_ivfflat_recall.pl"
#                        picks some (PostgreSQL::Test::Cluster from PGXS's src/test/perl)
#   make kernel-test     standalone C tests of src/kernels (and the GPU library's
#                        CPU implementation), then the layout checks below
#   make kernels-check   src/kernels holds plain C only (no server header)
#   make layering-check  no file includes a higher layer's header (src/README)
#   make bench-kernels   kernel micro-benchmark
#   make fuzz            libFuzzer + ASan/UBSan runs of the vector text parser and
#                        the Faiss file reader, FUZZ_SECONDS (60) split between them
#   make fuzz-faiss FUZZ_SECONDS=600
#                        the Faiss file reader alone (test/fuzz/fuzz_faiss_reader.c,
#                        seeds test/fuzz/corpus-faiss); fuzz-vector: the parser alone
#   make WITH_CUDA=1     also build gpu/ivf_gpu.so with nvcc + cuBLAS
#   make WITH_HIP=1      also build gpu/ivf_gpu.so with hipcc + hipBLAS
#   make hip-check       compile gpu/ivf_gpu.cu's HIP half with Debian's hipcc
#                        (no hipBLAS there: compile only, nothing linked)
#   make neon-check      src/kernels and the C kernel tests cross-compiled for
#                        AArch64 and run under qemu-user: the NEON level against
#                        the scalar reference (gcc-aarch64-linux-gnu, qemu-user)

# ivf: the standalone extension (its own vector type); ivf_pgvector: the
# same ivf.so on pgvector's types (requires = 'vector')
EXTENSION = ivf ivf_pgvector
MODULE_big = ivf
EXTVERSION = 0.2.0
# every install and upgrade script of ivf (not ivf_pgvector's)
DATA = $(wildcard sql/ivf--*.sql)
DATA += $(wildcard sql/ivf_pgvector--*.sql)

PG_CONFIG ?= pg_config

ARCH := $(shell uname -m)

# src/kernels: the plain-C layer (no server headers; make kernels-check).
# The distance kernels are one translation unit per instruction set, each
# compiled with its own flags; the choice among them is made at run time.
KERNEL_DIR = src/kernels
KERNEL_ALL_ISA_SRCS = $(wildcard $(KERNEL_DIR)/distance_avx2.c $(KERNEL_DIR)/distance_avx512.c $(KERNEL_DIR)/distance_f16c.c $(KERNEL_DIR)/distance_neon.c)
KERNEL_SRCS = $(filter-out $(KERNEL_ALL_ISA_SRCS),$(wildcard $(KERNEL_DIR)/*.c))
ifeq ($(ARCH),x86_64)
KERNEL_ISA_SRCS = $(KERNEL_DIR)/distance_avx2.c $(KERNEL_DIR)/distance_avx512.c $(KERNEL_DIR)/distance_f16c.c
endif
ifeq ($(ARCH),aarch64)
KERNEL_ISA_SRCS = $(KERNEL_DIR)/distance_neon.c
endif
KERNEL_OBJS = $(KERNEL_SRCS:.c=.o) $(KERNEL_ISA_SRCS:.c=.o)
# GCC fuses a * b + c into one fmadd by default on AArch64 (x86-64's
# baseline has no FMA to fuse into): the scalar references would then round
# differently there, and distance.h's bit-for-bit promises (the row scans,
# ivf_row_lo inlined in two files) would not hold.  All the kernel files.
AARCH64_KERNEL_FLAGS = -ffp-contract=off
ifeq ($(ARCH),aarch64)
$(KERNEL_OBJS): CFLAGS += $(AARCH64_KERNEL_FLAGS)
$(KERNEL_OBJS:.o=.bc): BITCODE_CFLAGS += $(AARCH64_KERNEL_FLAGS)
endif

# the server layers, lowest first (src/README "Layout"; make layering-check)
SERVER_DIRS = types core gpuclient am search interop
LAYERS = kernels $(SERVER_DIRS)
SERVER_SRCS = $(sort $(wildcard $(SERVER_DIRS:%=src/%/*.c)))

OBJS = src/ivf.o $(KERNEL_OBJS) $(SERVER_SRCS:.c=.o) gpu/ivf_gpu_cpu.o

SHLIB_LINK = -lopenblas -lm -ldl
# ivf.so's references to its own functions bind to its own definitions.
# PostgreSQL loads libraries RTLD_GLOBAL, so with pgvector's vector.so
# loaded first (shared_preload_libraries = 'vector,ivf') the C names both
# define (vector_l2_squared_distance, InitVector, ...) would resolve to
# pgvector's (macOS binds per library anyway)
ifneq ($(shell uname -s),Darwin)
SHLIB_LINK += -Wl,-Bsymbolic
endif
# flat includes (#include "distance.h"), as pgvector: every source folder is
# on the path; make layering-check keeps the folders' order
PG_CPPFLAGS = -I$(srcdir)/src $(LAYERS:%=-I$(srcdir)/src/%) -I$(srcdir)/gpu
PG_CFLAGS = -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
ifdef WERROR
PG_CFLAGS += -Werror
endif

# no implicit fusing of a multiply and an add: every level must round as the
# scalar reference does where kernels promise bit-identical results
AVX2_FLAGS = -mavx2 -mfma -ffp-contract=off
AVX512_FLAGS = -mavx512f -mavx512dq -mavx2 -mfma -ffp-contract=off
# half-float conversion (vcvtph2ps / vcvtps2ph) beside AVX2 + FMA
F16C_FLAGS = -mf16c -mavx2 -mfma -ffp-contract=off
$(KERNEL_DIR)/distance_avx2.o: CFLAGS += $(AVX2_FLAGS)
$(KERNEL_DIR)/distance_avx512.o: CFLAGS += $(AVX512_FLAGS)
$(KERNEL_DIR)/distance_f16c.o: CFLAGS += $(F16C_FLAGS)
# the JIT bitcode of these files needs the same flags
$(KERNEL_DIR)/distance_avx2.bc: BITCODE_CFLAGS += $(AVX2_FLAGS)
$(KERNEL_DIR)/distance_avx512.bc: BITCODE_CFLAGS += $(AVX512_FLAGS)
$(KERNEL_DIR)/distance_f16c.bc: BITCODE_CFLAGS += $(F16C_FLAGS)

REGRESS = vector_input vector_functions vector_casts vector_aggregates vector_btree vector_wire vector_kernels \
	ivfflat_build ivfflat_scan ivfflat_strict ivfflat_cost ivfflat_planner ivfflat_knobs ivfflat_batch ivfflat_prefilter ivf_gpu \
	ivf_faiss ivf_tune ivf_security ivfflat_cache \
	halfvec_input halfvec_functions ivf_am_name ivf_search_plan halfvec_index
# step 9: the on-disk format (format 4, format 3 still read)
REGRESS += ivfflat_format
# step 9: ivf_rebalance (its splits: t/034_split.pl)
REGRESS += ivf_rebalance
REGRESS_OPTS = --inputdir=$(srcdir)/test --load-extension=ivf

# TAP files run through PGXS's prove_installcheck (Debian's PG 15 PGXS is
# configured with enable_tap_tests = yes); IvfTest.pm lives beside them
TAP_TESTS = 1
PROVE_TESTS ?= test/t/*.pl

EXTRA_CLEAN = $(KERNEL_TEST_PROGS) test/kernels/*.o bench/bench_kernels $(FUZZ_PROGS) test/kernels/aarch64 \
	gpu/*.o gpu/ivf_gpu.so gpu/test_ivf_gpu

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# after the include (Makefile.global empties PROVE_FLAGS); override: still
# added when PROVE_FLAGS=--verbose is given on the command line
override PROVE_FLAGS += -I test/t

# the TAP half of installcheck alone (pgvector's name for it)
prove_installcheck:
	$(prove_installcheck)
.PHONY: prove_installcheck

# PGXS tracks no header dependencies: every object depends on the headers
# (a struct that changes layout must never be compiled into half the
# objects).  After the include, so that plain `make` still means `all`.
SRC_HDRS = $(wildcard src/*.h src/*/*.h gpu/*.h)
$(OBJS): $(SRC_HDRS)
# the ISA files' flags live here: a change to them must recompile
$(KERNEL_DIR)/distance_avx2.o $(KERNEL_DIR)/distance_avx512.o $(KERNEL_DIR)/distance_f16c.o \
	$(KERNEL_DIR)/distance_avx2.bc $(KERNEL_DIR)/distance_avx512.bc $(KERNEL_DIR)/distance_f16c.bc: Makefile

# ---- standalone programs (no server): kernel test, kernel bench, fuzzer ----

STANDALONE_CC ?= $(CC)
# only the kernels' folder: a server header there fails to compile
STANDALONE_CFLAGS = -O2 -g -Wall -Wextra -Wno-unused-parameter -I$(KERNEL_DIR)
ifeq ($(ARCH),aarch64)
STANDALONE_CFLAGS += $(AARCH64_KERNEL_FLAGS)
endif

KERNEL_HDRS = $(wildcard $(KERNEL_DIR)/*.h) test/kernels/testutil.h

test/kernels/%.o: $(KERNEL_DIR)/%.c $(KERNEL_HDRS)
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) -c -o $@ $<
test/kernels/distance_avx2.o: $(KERNEL_DIR)/distance_avx2.c $(KERNEL_HDRS) Makefile
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) $(AVX2_FLAGS) -c -o $@ $<
test/kernels/distance_avx512.o: $(KERNEL_DIR)/distance_avx512.c $(KERNEL_HDRS) Makefile
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) $(AVX512_FLAGS) -c -o $@ $<
test/kernels/distance_f16c.o: $(KERNEL_DIR)/distance_f16c.c $(KERNEL_HDRS) Makefile
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) $(F16C_FLAGS) -c -o $@ $<

# every kernel, as standalone objects (test programs link what they use)
STANDALONE_KERNEL_OBJS = $(patsubst $(KERNEL_DIR)/%.c,test/kernels/%.o,$(KERNEL_SRCS) $(KERNEL_ISA_SRCS))

# test/kernels/test_<name>.c: one program each, linked with every kernel
KERNEL_TEST_PROGS = $(patsubst %.c,%,$(wildcard test/kernels/test_*.c))
$(KERNEL_TEST_PROGS): %: %.c $(STANDALONE_KERNEL_OBJS) $(KERNEL_HDRS)
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) -o $@ $(filter %.c %.o,$^) -lopenblas -lm

# The kernels' folder holds plain C: no server header may appear there.
# Each file compiles with only -I$(KERNEL_DIR) (no server include dir), and
# no include line names a server header (caught even where a system copy
# of the PostgreSQL headers is on the default path).
KERNEL_SERVER_HDR_RE = ^[[:space:]]*\#[[:space:]]*include[[:space:]]*[<"](postgres\.h|postgres_fe\.h|c\.h|fmgr\.h|funcapi\.h|miscadmin\.h|pgstat\.h|compat\.h|(access|catalog|commands|executor|lib|libpq|nodes|optimizer|port|postmaster|storage|tcop|utils|common)/)
kernels-check:
	@if grep -nE '$(KERNEL_SERVER_HDR_RE)' $(KERNEL_DIR)/*.c $(KERNEL_DIR)/*.h; then \
		echo "$(KERNEL_DIR) includes a server header (above): it holds plain C only"; exit 1; \
	fi
	@for f in $(KERNEL_SRCS) $(KERNEL_ISA_SRCS); do \
		case $$f in *avx512*) fl="$(AVX512_FLAGS)";; *avx2*) fl="$(AVX2_FLAGS)";; *f16c*) fl="$(F16C_FLAGS)";; *) fl=;; esac; \
		$(STANDALONE_CC) -fsyntax-only -Wall -I$(KERNEL_DIR) $$fl $$f || \
			{ echo "$$f: does not compile without the server headers"; exit 1; }; \
	done; echo "kernels: $(words $(KERNEL_SRCS) $(KERNEL_ISA_SRCS)) files in $(KERNEL_DIR) compile with no server headers"

bench/bench_kernels: bench/bench_kernels.c $(STANDALONE_KERNEL_OBJS)
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) -o $@ $^ -lopenblas -lm

# No file includes a header of a higher layer (src/README "Layout"):
# each header's layer is its folder's place in LAYERS; gpu/ (the device
# library's plain C API) ranks with the kernels, src/compat.h with types,
# the rest of src/ (ivf.c, ivf.h) above all.  Flat includes need unique
# header names, so a name in two folders fails too.
LAYERED_FILES = $(wildcard src/*.[ch] src/*/*.[ch] gpu/*.[ch])
HEADER_DIRS = $(LAYERS:%=src/%) src gpu
layering-check:
	@rank() { \
		case $$1 in gpu/*) echo 0; return;; src/compat.h) echo 1; return;; esac; \
		i=0; for l in $(LAYERS); do \
			case $$1 in src/$$l/*) echo $$i; return;; esac; i=$$((i + 1)); \
		done; echo $$i; }; \
	dups=$$(for d in $(HEADER_DIRS); do ls $$d/*.h 2>/dev/null; done | xargs -n1 basename | sort | uniq -d); \
	if [ -n "$$dups" ]; then echo "header names in more than one folder: $$dups"; exit 1; fi; \
	bad=0; \
	for f in $(LAYERED_FILES); do \
		fr=$$(rank $$f); \
		for h in $$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' $$f); do \
			case $$h in */*) continue;; esac; \
			hp=; for d in $(HEADER_DIRS); do if [ -f $$d/$$h ]; then hp=$$d/$$h; break; fi; done; \
			[ -n "$$hp" ] || continue; \
			hr=$$(rank $$hp); \
			if [ $$hr -gt $$fr ]; then echo "$$f includes $$hp: a higher layer"; bad=1; fi; \
		done; \
	done; \
	if [ $$bad -ne 0 ]; then echo "layering: a file above includes a higher layer's header (order: $(LAYERS) < src/ivf.c)"; exit 1; fi; \
	echo "layering: $(words $(LAYERED_FILES)) files include only their own and lower layers ($(LAYERS) < src/ivf.c)"

# the GPU library's contract, tested on its CPU implementation (and on a
# device library: make gpu-test GPU_LIB=gpu/ivf_gpu.so)
gpu/test_ivf_gpu: gpu/test_ivf_gpu.c gpu/ivf_gpu_cpu.c gpu/ivf_gpu.h $(KERNEL_HDRS) $(STANDALONE_KERNEL_OBJS)
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) -Igpu -o $@ gpu/test_ivf_gpu.c gpu/ivf_gpu_cpu.c \
		$(STANDALONE_KERNEL_OBJS) -lopenblas -lm -ldl
gpu-test: gpu/test_ivf_gpu
	gpu/test_ivf_gpu $(GPU_LIB)

# the objects and programs that include gpu/ivf_gpu.h are out of date when
# it changes (make -q -W: as if it were newer; nothing is touched or built)
GPU_HDR_USERS = src/gpuclient/ivfgpu_worker.o src/gpuclient/ivfgpu_client.o \
	src/gpuclient/ivfgpu_kmeans.o gpu/ivf_gpu_cpu.o gpu/test_ivf_gpu
header-deps-test: $(GPU_HDR_USERS)
	@for t in $(GPU_HDR_USERS); do \
		$(MAKE) -q $$t || { echo "$$t: out of date before the check"; exit 1; }; \
		$(MAKE) -q -W gpu/ivf_gpu.h $$t; rc=$$?; \
		if [ $$rc -ne 1 ]; then echo "$$t: not rebuilt when gpu/ivf_gpu.h changes (make -q: $$rc)"; exit 1; fi; \
	done; echo "header dependencies: $(GPU_HDR_USERS) follow gpu/ivf_gpu.h"

# Version conditionals live in src/compat.h only (as named macros).
compat-test:
	@if grep -n 'PG_VERSION_NUM' $(filter-out src/compat.h,$(wildcard src/*.c src/*.h src/*/*.c src/*/*.h gpu/*.c gpu/*.h)); then \
		echo "PG_VERSION_NUM outside src/compat.h (above): move the conditional into compat.h"; exit 1; \
	fi; echo "version conditionals: only in src/compat.h"

.PHONY: kernel-test bench-kernels fuzz fuzz-build fuzz-vector fuzz-faiss gpu gpu-test header-deps-test compat-test \
	kernels-check layering-check
KERNEL_TESTS = $(KERNEL_TEST_PROGS) gpu/test_ivf_gpu
kernel-test: $(KERNEL_TESTS)
	@set -e; for t in $(KERNEL_TESTS); do echo $$t; $$t; done
	$(MAKE) --no-print-directory kernels-check
	$(MAKE) --no-print-directory layering-check
	$(MAKE) --no-print-directory header-deps-test
	$(MAKE) --no-print-directory compat-test

bench-kernels: bench/bench_kernels
	bench/bench_kernels

# make fuzz splits FUZZ_SECONDS between the two targets (CI: test/run_all.sh
# step 9); fuzz-vector and fuzz-faiss give one target all of it.  New inputs
# go to corpus-work folders (not committed), the seeds stay as they are.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_HALF = $(shell echo $$(( ($(FUZZ_SECONDS) + 1) / 2 )))
# test/fuzz/fuzz_<name>.c fuzzes $(KERNEL_DIR)/<name>.c (plain C, built alone)
FUZZ_PROGS = $(patsubst %.c,%,$(wildcard test/fuzz/fuzz_*.c))
test/fuzz/fuzz_vector_parse: $(KERNEL_DIR)/vector_parse.c
test/fuzz/fuzz_faiss_reader: $(KERNEL_DIR)/faissio.c
$(FUZZ_PROGS): %: %.c $(KERNEL_HDRS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -I$(KERNEL_DIR) -o $@ $< $(filter $(KERNEL_DIR)/%.c,$^) -lm
fuzz-build: $(FUZZ_PROGS)
fuzz:
	$(MAKE) fuzz-vector FUZZ_SECONDS=$(FUZZ_HALF)
	$(MAKE) fuzz-faiss FUZZ_SECONDS=$(FUZZ_HALF)
fuzz-vector: test/fuzz/fuzz_vector_parse
	mkdir -p test/fuzz/corpus-work
	test/fuzz/fuzz_vector_parse -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		-dict=test/fuzz/vector.dict \
		test/fuzz/corpus-work test/fuzz/corpus
fuzz-faiss: test/fuzz/fuzz_faiss_reader
	mkdir -p test/fuzz/corpus-faiss-work
	test/fuzz/fuzz_faiss_reader -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		-dict=test/fuzz/faiss.dict \
		test/fuzz/corpus-faiss-work test/fuzz/corpus-faiss

# ---- make neon-check: the AArch64 NEON level, cross-compiled, under qemu ----
# This machine is x86-64, where distance_neon.c is never compiled: neon-check
# builds src/kernels (the scalar references and distance_neon.c) and the C
# kernel tests with Debian's aarch64 cross compiler and runs them under
# qemu-user, so the NEON level is compared with the scalar reference as
# make kernel-test compares the x86 levels (the tests iterate every level
# the running CPU supports: scalar and neon).  No aarch64 OpenBLAS exists
# for the cross build: test/kernels/cross has the CBLAS subset the kernels
# call and a plain C sgemm.  -Werror: the NEON file's warnings are seen
# nowhere else.  Timings under qemu say nothing about an ARM CPU.
NEON_CC ?= aarch64-linux-gnu-gcc
NEON_QEMU ?= qemu-aarch64
NEON_SYSROOT ?= /usr/aarch64-linux-gnu
NEON_OUT = test/kernels/aarch64
NEON_CFLAGS = -O2 -g -Wall -Wextra -Wno-unused-parameter -Werror $(AARCH64_KERNEL_FLAGS) \
	-I$(KERNEL_DIR) -Itest/kernels/cross
NEON_KERNEL_OBJS = $(patsubst $(KERNEL_DIR)/%.c,$(NEON_OUT)/%.o,$(KERNEL_SRCS) $(KERNEL_DIR)/distance_neon.c) \
	$(NEON_OUT)/blas_ref.o
NEON_TEST_PROGS = $(patsubst test/kernels/%.c,$(NEON_OUT)/%,$(wildcard test/kernels/test_*.c)) \
	$(NEON_OUT)/test_ivf_gpu
$(NEON_OUT)/%.o: $(KERNEL_DIR)/%.c $(KERNEL_HDRS) test/kernels/cross/cblas.h Makefile
	@mkdir -p $(NEON_OUT)
	$(NEON_CC) $(NEON_CFLAGS) -c -o $@ $<
$(NEON_OUT)/blas_ref.o: test/kernels/cross/blas_ref.c test/kernels/cross/cblas.h Makefile
	@mkdir -p $(NEON_OUT)
	$(NEON_CC) $(NEON_CFLAGS) -c -o $@ $<
$(NEON_OUT)/test_ivf_gpu: gpu/test_ivf_gpu.c gpu/ivf_gpu_cpu.c gpu/ivf_gpu.h $(KERNEL_HDRS) $(NEON_KERNEL_OBJS)
	$(NEON_CC) $(NEON_CFLAGS) -Igpu -o $@ gpu/test_ivf_gpu.c gpu/ivf_gpu_cpu.c $(NEON_KERNEL_OBJS) -lm -ldl
$(NEON_OUT)/test_%: test/kernels/test_%.c $(NEON_KERNEL_OBJS) $(KERNEL_HDRS)
	$(NEON_CC) $(NEON_CFLAGS) -o $@ $< $(NEON_KERNEL_OBJS) -lm
# test_kmeans is built but not run: under qemu its assignment grids had not
# finished after 11 minutes, kmeans.c has no architecture-specific code, the
# kernels it calls are test_distance's, checked here at the neon level
# (make neon-check NEON_NORUN= runs it too)
NEON_NORUN ?= $(NEON_OUT)/test_kmeans
neon-check:
	@command -v $(NEON_CC) >/dev/null 2>&1 && command -v $(NEON_QEMU) >/dev/null 2>&1 || \
		{ echo "neon-check: needs $(NEON_CC) and $(NEON_QEMU) (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"; exit 1; }
	$(MAKE) --no-print-directory $(NEON_TEST_PROGS)
	@set -e; for t in $(filter-out $(NEON_NORUN),$(NEON_TEST_PROGS)); do echo "$$t (qemu-aarch64)"; \
		QEMU_LD_PREFIX=$(NEON_SYSROOT) $(NEON_QEMU) $$t; done
	@for t in $(filter $(NEON_NORUN),$(NEON_TEST_PROGS)); do \
		echo "skip  $$t under qemu (built, not run: too slow emulated; see the Makefile)"; done
	@echo "neon-check: the kernel tests passed on aarch64 under $(NEON_QEMU) (levels scalar and neon)"
.PHONY: neon-check

# ---- GPU library (never linked into ivf.so) ----
NVCC ?= nvcc
HIPCC ?= hipcc
# Ampere and Hopper machine code, and Hopper PTX for newer devices to JIT
NVCC_ARCH ?= -gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90,code=sm_90 \
	-gencode=arch=compute_90,code=compute_90
ifdef WITH_CUDA
all: gpu/ivf_gpu.so
gpu/ivf_gpu.so: gpu/ivf_gpu.cu gpu/ivf_gpu.h gpu/gpu_port.h
	$(NVCC) -O2 -std=c++17 --extended-lambda $(NVCC_ARCH) -Xcompiler -fPIC -shared -o $@ gpu/ivf_gpu.cu -lcublas
endif
ifdef WITH_HIP
all: gpu/ivf_gpu.so
gpu/ivf_gpu.so: gpu/ivf_gpu.cu gpu/ivf_gpu.h gpu/gpu_port.h
	$(HIPCC) -O2 -std=c++17 -fPIC -shared -x hip -DIVF_USE_HIP -o $@ gpu/ivf_gpu.cu -lhipblas
endif

# make hip-check: the HIP half of the one source compiled (-c, nothing is
# linked) with Debian's hipcc, which has the HIP runtime (libamdhip64-dev)
# and the device libraries (rocm-device-libs) but no hipBLAS: the folder
# gpu/hipblas_decls declares the subset of hipBLAS 5.x's API the source
# uses, is on the include path here only, and never builds a real library
# (make WITH_HIP=1 uses the installed hipBLAS).  Without a GPU, hipcc asks
# rocm_agent_enumerator for the target, which fails without /sys/class/kfd,
# and falls back to gfx803: the targets are named instead, one with 64-wide
# wavefronts (gfx90a, MI200) and one with 32-wide (gfx1030, RDNA2).
# -Werror: HIP marks hipError_t [[nodiscard]], so an ignored runtime error
# that nvcc lets pass fails here.
HIP_CHECK_ARCH ?= --offload-arch=gfx90a --offload-arch=gfx1030
hip-check:
	$(HIPCC) -O2 -std=c++17 -fPIC -x hip -DIVF_USE_HIP $(HIP_CHECK_ARCH) \
		-Wall -Wextra -Werror -Igpu/hipblas_decls \
		-c -o gpu/ivf_gpu_hip_check.o gpu/ivf_gpu.cu
	@echo "hip-check: gpu/ivf_gpu.cu compiles with $(HIPCC) ($(HIP_CHECK_ARCH))"
.PHONY: hip-check
