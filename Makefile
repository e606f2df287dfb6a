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
#   make kernel-test     standalone C test of the distance kernels
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

EXTENSION = ivf
MODULE_big = ivf
EXTVERSION = 0.1.0
DATA = sql/ivf--$(EXTVERSION).sql

PG_CONFIG ?= pg_config

ARCH := $(shell uname -m)

# Distance kernels: one translation unit per instruction set, each compiled
# with its own flags; the choice among them is made at run time.
KERNEL_SRCS = src/distance.c src/topk.c src/select.c src/kmeans.c
ifeq ($(ARCH),x86_64)
KERNEL_ISA_SRCS = src/distance_avx2.c src/distance_avx512.c
endif
ifeq ($(ARCH),aarch64)
KERNEL_ISA_SRCS = src/distance_neon.c
endif
KERNEL_OBJS = $(KERNEL_SRCS:.c=.o) $(KERNEL_ISA_SRCS:.c=.o)

OBJS = src/ivf.o src/vector.o src/vector_parse.o $(KERNEL_OBJS) \
	src/ivfutils.o src/ivfbuild.o src/ivfinsert.o src/ivfscan.o src/listscan.o \
	src/ivfvacuum.o src/ivfcost.o src/ivfvalidate.o src/ivfcheck.o src/ivfbatch.o \
	src/gpuclient/ivfgpu_worker.o src/gpuclient/ivfgpu_client.o \
	src/gpuclient/ivfgpu_kmeans.o src/gpuclient/ivfgpu_sql.o gpu/ivf_gpu_cpu.o \
	src/faissio.o src/ivffaiss.o src/ivfparams.o src/ivfautotune.o

SHLIB_LINK = -lopenblas -lm -ldl
# ivf.so's references to its own functions bind to its own definitions.
# PostgreSQL loads libraries RTLD_GLOBAL, so with pgvector's vector.so
# loaded first (shared_preload_libraries = 'vector,ivf') the C names both
# define (vector_l2_squared_distance, InitVector, ...) would resolve to
# pgvector's (macOS binds per library anyway)
ifneq ($(shell uname -s),Darwin)
SHLIB_LINK += -Wl,-Bsymbolic
endif
PG_CPPFLAGS = -I$(srcdir)/src -I$(srcdir)/src/gpuclient -I$(srcdir)/gpu
PG_CFLAGS = -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
ifdef WERROR
PG_CFLAGS += -Werror
endif

# no implicit fusing of a multiply and an add: every level must round as the
# scalar reference does where kernels promise bit-identical results
AVX2_FLAGS = -mavx2 -mfma -ffp-contract=off
AVX512_FLAGS = -mavx512f -mavx512dq -mavx2 -mfma -ffp-contract=off
src/distance_avx2.o: CFLAGS += $(AVX2_FLAGS)
src/distance_avx512.o: CFLAGS += $(AVX512_FLAGS)
# the JIT bitcode of these files needs the same flags
src/distance_avx2.bc: BITCODE_CFLAGS += $(AVX2_FLAGS)
src/distance_avx512.bc: BITCODE_CFLAGS += $(AVX512_FLAGS)

REGRESS = vector_input vector_functions vector_casts vector_aggregates vector_btree vector_wire vector_kernels \
	ivfflat_build ivfflat_scan ivfflat_strict ivfflat_cost ivfflat_planner ivfflat_knobs ivfflat_batch ivfflat_prefilter ivf_gpu \
	ivf_faiss ivf_tune ivf_security ivfflat_cache
REGRESS_OPTS = --inputdir=$(srcdir)/test --load-extension=ivf

# TAP files run through PGXS's prove_installcheck (Debian's PG 15 PGXS is
# configured with enable_tap_tests = yes); IvfTest.pm lives beside them
TAP_TESTS = 1
PROVE_TESTS ?= test/t/*.pl

EXTRA_CLEAN = test/kernels/test_distance test/kernels/test_select test/kernels/test_kmeans test/kernels/*.o bench/bench_kernels test/fuzz/fuzz_vector_parse \
	test/kernels/test_faissio test/fuzz/fuzz_faiss_reader \
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
SRC_HDRS = $(wildcard src/*.h src/gpuclient/*.h gpu/*.h)
$(OBJS): $(SRC_HDRS)
# the ISA files' flags live here: a change to them must recompile
src/distance_avx2.o src/distance_avx512.o src/distance_avx2.bc src/distance_avx512.bc: Makefile

# ---- standalone programs (no server): kernel test, kernel bench, fuzzer ----

STANDALONE_CC ?= $(CC)
STANDALONE_CFLAGS = -O2 -g -Wall -Wextra -Wno-unused-parameter -Isrc

KERNEL_HDRS = src/distance.h src/distance_isa.h src/topk.h src/select.h src/kmeans.h \
	src/simd_baseline.h test/kernels/testutil.h

test/kernels/%.o: src/%.c $(KERNEL_HDRS)
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) -c -o $@ $<
test/kernels/distance_avx2.o: src/distance_avx2.c $(KERNEL_HDRS) Makefile
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) $(AVX2_FLAGS) -c -o $@ $<
test/kernels/distance_avx512.o: src/distance_avx512.c $(KERNEL_HDRS) Makefile
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) $(AVX512_FLAGS) -c -o $@ $<

STANDALONE_KERNEL_OBJS = $(patsubst src/%.c,test/kernels/%.o,$(KERNEL_SRCS) $(KERNEL_ISA_SRCS))

test/kernels/test_distance: test/kernels/test_distance.c $(STANDALONE_KERNEL_OBJS)
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) -o $@ $^ -lopenblas -lm
test/kernels/test_select: test/kernels/test_select.c $(STANDALONE_KERNEL_OBJS)
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) -o $@ $^ -lopenblas -lm
test/kernels/test_kmeans: test/kernels/test_kmeans.c $(STANDALONE_KERNEL_OBJS)
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) -o $@ $^ -lopenblas -lm
test/kernels/test_faissio: test/kernels/test_faissio.c src/faissio.c src/faissio.h test/kernels/testutil.h
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) -o $@ test/kernels/test_faissio.c src/faissio.c -lm

bench/bench_kernels: bench/bench_kernels.c $(STANDALONE_KERNEL_OBJS)
	$(STANDALONE_CC) $(STANDALONE_CFLAGS) -o $@ $^ -lopenblas -lm

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
	@if grep -n 'PG_VERSION_NUM' $(filter-out src/compat.h,$(wildcard src/*.c src/*.h src/gpuclient/*.c src/gpuclient/*.h gpu/*.c gpu/*.h)); then \
		echo "PG_VERSION_NUM outside src/compat.h (above): move the conditional into compat.h"; exit 1; \
	fi; echo "version conditionals: only in src/compat.h"

.PHONY: kernel-test bench-kernels fuzz fuzz-build fuzz-vector fuzz-faiss gpu gpu-test header-deps-test compat-test
KERNEL_TESTS = test/kernels/test_distance test/kernels/test_select test/kernels/test_kmeans gpu/test_ivf_gpu \
	test/kernels/test_faissio
kernel-test: $(KERNEL_TESTS)
	test/kernels/test_distance
	test/kernels/test_select
	test/kernels/test_kmeans
	gpu/test_ivf_gpu
	test/kernels/test_faissio
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
test/fuzz/fuzz_vector_parse: test/fuzz/fuzz_vector_parse.c src/vector_parse.c src/vector_parse.h
	$(FUZZ_CC) $(FUZZ_FLAGS) -Isrc -o $@ test/fuzz/fuzz_vector_parse.c src/vector_parse.c -lm
test/fuzz/fuzz_faiss_reader: test/fuzz/fuzz_faiss_reader.c src/faissio.c src/faissio.h
	$(FUZZ_CC) $(FUZZ_FLAGS) -Isrc -o $@ test/fuzz/fuzz_faiss_reader.c src/faissio.c -lm
fuzz-build: test/fuzz/fuzz_vector_parse test/fuzz/fuzz_faiss_reader
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
