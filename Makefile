# beep-signal: plain GNU make.  `make run` and `make test` are the two
# commands; see README.md.  User CFLAGS/LDFLAGS are appended to ours.

PORT ?= 1837
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/beep-signal
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SANITIZE ?=
WERROR ?= 1
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

comma := ,
ifeq ($(SANITIZE),)
BUILD := build
else
BUILD := build/$(subst $(comma),-,$(SANITIZE))
endif

PKGS := jansson fcgi libjwt libcrypto hiredis
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -ljansson -lfcgi -ljwt -lcrypto -lhiredis)
CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral
ifeq ($(WERROR),1)
WARN += -Werror
endif
SAN_FLAGS := $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
OPT := $(if $(SANITIZE),-O1,-O2)
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -pthread -g $(OPT) $(WARN) $(SAN_FLAGS) \
	-Iinclude $(PKG_CFLAGS) -DBEEP_VERSION='"$(VERSION)"' $(CFLAGS)
# Every symbol bound at start (-z now), with the GOT then read-only (full
# RELRO): no lazy binding later, whose resolver runs on the calling
# thread's stack (a kilobyte and more of saved registers), so the first
# stream to call a libc function would keep a second stack page.
ALL_LDFLAGS = -pthread -Wl,-z,relro,-z,now $(SAN_FLAGS) $(LDFLAGS)

# The service, module by module; the binary and the unit tests link them.
SRCS := src/util.c src/log.c src/keyed_hash.c src/config_check.c src/config_option.c src/config_print.c src/config.c \
	src/http.c src/route.c src/depth.c src/json_fast.c src/auth.c src/limit.c src/quota.c src/event.c \
	src/body.c src/sse.c src/registry_log.c src/registry_expire.c src/registry_share.c \
	src/registry_deliver.c src/registry_publish.c src/registry.c src/api.c src/api_access.c src/api_ops.c \
	src/api_stream.c src/fcgi_out.c \
	src/deadline.c src/listener.c src/server.c src/server_request.c src/server_conn.c src/server_stream.c \
	src/server_watch.c src/server_read.c src/server_stop.c src/server_tune.c src/server_params.c src/cidr.c src/metrics.c \
	src/cluster_lua.c src/cluster_job.c src/cluster_delivery.c \
	src/cluster_presence.c src/cluster_setup.c src/cluster_redis.c src/cluster_publish.c src/cluster.c src/turn.c \
	src/alloc_tune.c
OBJS := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
UNIT := http route depth body sse registry config api auth limit quota event fcgi_out \
	deadline listener cidr metrics log fuzz_found cluster turn alloc_tune \
	server_params server_conn util keyed_hash registry_model
UNIT_BINS := $(UNIT:%=$(BUILD)/tests/test_%)
BIN := $(BUILD)/beep-signal

SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# What the integration suite is told about the build it tests (harness.mjs:
# BEEP_TEST_SANITIZER, BEEP_TEST_SCALE, BEEP_TEST_SKIP).  Under
# ThreadSanitizer every thread runs 5-15 times slower, so the stress files
# scale their counts down to a quarter (same shape, same checks).  Files
# listed in SAN_SKIP (under either sanitizer) and TSAN_SKIP (under TSan
# too), "NAME=reason;NAME=reason" with NAME a file name without .test.mjs
# (only files that call skipReason() or browserSkip(..., import.meta.url)),
# are reported as skipped with their reason.
#
# SAN_SKIP: the files whose subject is JavaScript, the call page's and
# beep-signal.js's, in Chromium or in Node: the sanitizers watch C, and the
# requests those pages make are the ones every other file makes under the
# sanitizers; Chromium and the client's own waits (a default grace
# period) are most of their time (about 300 s of a pass's 1,150).  They
# run in the plain pass.  Also skipped under either sanitizer: the files
# whose subject is packaging (the man page, `make install`, the image,
# `make run`, the README's spawn-fcgi block): the backend in them does what
# it does in every other file (about 35 s of each sanitizer pass).
# TSAN_SKIP: 30-browser's calls between real pages and browsers (about
# 100 s), for the same reason, kept under ASan for its glare and relay paths
# through the backend; and the files whose subject is the shipped front
# configurations and the README's metrics table (about 150 s of the TSan
# pass), kept under ASan, whose subject is the bytes they bring.
BROWSER_JS := 34-call-page-session-expiry 35-js-client-lifecycle \
	36-js-client-token-expiry 74-call-page-busy-reflection \
	76-call-page-ice-servers-refused 77-call-page-contacts-per-user \
	78-call-page-pending-bound 90-call-page-legacy-contacts \
	91-call-page-busy-told-again 108-call-page-long-names \
	109-call-page-bidi-names 110-call-page-chat-flood \
	119-call-page-ring-flood 120-call-page-sender-checked \
	123-call-page-ring-time
CLIENT_JS := 31-js-client 50-js-client-stale-resume \
	55-js-client-silent-vanish 56-js-client-killed-page
PACKAGING := 26-man-install-container 60-make-run \
	105-spawn-fcgi-readme-fresh-host
FRONT_CONF := 09-fronts 29-cluster-fronts 33-front-quiet-stream \
	47-lighttpd-debian 51-lighttpd-header-size
SAN_SKIP ?= $(foreach f,$(BROWSER_JS),$(f)=JavaScript in Chromium: run in the plain pass;) \
	$(foreach f,$(CLIENT_JS),$(f)=beep-signal.js in Node: run in the plain pass;) \
	$(foreach f,$(PACKAGING),$(f)=packaging: run in the plain pass;)
TSAN_SKIP ?= 30-browser=pages and browsers: run in the plain and ASan passes; \
	$(foreach f,$(FRONT_CONF),$(f)=front configuration: run in the plain and ASan passes;) \
	100-metrics-readme=the README's metrics table: run in the plain and ASan passes;
INTEGRATION_ENV := BEEP_TEST_SANITIZER=$(SANITIZE) \
	$(if $(findstring thread,$(SANITIZE)),BEEP_TEST_SCALE=$${BEEP_TEST_SCALE:-0.25}) \
	$(if $(SANITIZE),BEEP_TEST_SKIP="$${BEEP_TEST_SKIP-$(SAN_SKIP)$(if $(findstring thread,$(SANITIZE)),$(TSAN_SKIP))}")

.PHONY: all run test unit integration tsan deps test-deps format bench-instructions \
	format-check clean install bench loadgen docs fuzz fuzz-build valgrind soak \
	$(UNIT:%=unit-run-%) $(UNIT:%=valgrind-run-%)

all: $(BIN)

$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) Makefile
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BIN): $(OBJS) $(BUILD)/obj/main.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(OBJS) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(OBJS) $(ALL_LDFLAGS) \
		$(PKG_LIBS) $(CMOCKA_LIBS) $(LDLIBS)

# The load generator: one file, libc only.
$(BUILD)/loadgen: tests/load/loadgen.c Makefile
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) $(SAN_FLAGS) $(CFLAGS) \
		-o $@ $< $(ALL_LDFLAGS) -lm

loadgen: $(BUILD)/loadgen $(BUILD)/bench-limit $(BUILD)/bench-design

# The "limit" system's backend: the cheapest FastCGI responder (bench).
$(BUILD)/bench-limit: tests/bench/limit.c tests/bench/responder.h Makefile
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) $(SAN_FLAGS) $(CFLAGS) \
		-o $@ $< $(ALL_LDFLAGS) -pthread

# The "design" system's backend: the cheapest responder of the design
# kept (libfcgi, a thread per connection and per stream; bench).
$(BUILD)/bench-design: tests/bench/design.c tests/bench/responder.h Makefile
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) $(SAN_FLAGS) $(PKG_CFLAGS) \
		$(CFLAGS) -o $@ $< $(ALL_LDFLAGS) -lfcgi

# Caddy, nginx, Nchan and the limit systems through the same scenarios;
# see tests/bench/.
bench: $(BIN) $(BUILD)/loadgen $(BUILD)/bench-limit $(BUILD)/bench-design
	@sh scripts/deps.sh bench
	BEEP_BIN=$(abspath $(BIN)) LOADGEN=$(abspath $(BUILD)/loadgen) \
		LIMIT_BIN=$(abspath $(BUILD)/bench-limit) \
		DESIGN_BIN=$(abspath $(BUILD)/bench-design) \
		bash tests/bench/bench.sh

# Instructions per post under callgrind, ours and the design system's:
# a noise-free A/B of a change (BENCH_BEEP_BIN_B); see tests/bench/.
bench-instructions: $(BIN) $(BUILD)/loadgen $(BUILD)/bench-design
	@sh scripts/deps.sh bench
	BEEP_BIN=$(abspath $(BIN)) LOADGEN=$(abspath $(BUILD)/loadgen) \
		DESIGN_BIN=$(abspath $(BUILD)/bench-design) \
		bash tests/bench/instructions.sh

# Install what is missing (Debian packages), or say what to install.
deps:
	@sh scripts/deps.sh run
test-deps:
	@sh scripts/deps.sh test

# Serve the API through Caddy on $(PORT) until Ctrl-C or SIGTERM.  exec:
# make passes a SIGTERM on to its child, which must be run.sh itself (a
# shell in between dies of it and leaves run.sh and its servers running).
run: deps
	@$(MAKE) --no-print-directory all
	@PORT=$(PORT) BEEP_BIN=$(BIN) exec sh scripts/run.sh

# The unit binaries run TEST_JOBS at a time, longest first: test_cluster
# (about 30 s) spends nearly all of it waiting on Redis and on its nodes'
# timers, and the others, run beside it, fill that.  Each binary's output
# comes whole when it ends (make -Otarget), under its "== binary" line.
UNIT_FIRST := cluster registry_model registry
UNIT_ORDER := $(UNIT_FIRST) $(filter-out $(UNIT_FIRST),$(UNIT))
unit: $(UNIT_BINS)
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) -Otarget \
		$(UNIT_ORDER:%=unit-run-%)
$(UNIT:%=unit-run-%): unit-run-%: $(BUILD)/tests/test_%
	@echo "== $<"; $(SAN_ENV) $<

# The integration files run TEST_JOBS at a time (each its own servers on
# its own ports): most of a file's time is spent waiting on timeouts and
# fronts, so two at a time take about half as long on 2 cores.
TEST_JOBS ?= 2
# Node 20 or later (the browser tests' Playwright needs it): the one on
# PATH, or the one scripts/deps.sh put in build/node when that is older.
NODE ?= $(if $(wildcard build/node/bin/node),$(abspath build/node/bin/node),node)
integration: $(BIN)
	BEEP_BIN=$(abspath $(BIN)) $(SAN_ENV) $(INTEGRATION_ENV) \
		$(NODE) --test --test-concurrency=$(TEST_JOBS) tests/integration/

# valgrind memcheck over every unit test (the plain build, no sanitizer):
# no error, nothing definitely, indirectly or possibly lost, and nothing
# still reachable but what tests/valgrind.supp lists (libraries' own
# one-time allocations, each justified there).  TEST_JOBS at a time, in
# the order `make unit` runs them.
VALGRIND := valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
	--show-leak-kinds=all --errors-for-leak-kinds=all --track-origins=yes \
	--suppressions=tests/valgrind.supp --quiet
valgrind: $(UNIT_BINS)
	@command -v valgrind >/dev/null || sh scripts/deps.sh valgrind
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) -Otarget \
		$(UNIT_ORDER:%=valgrind-run-%)
$(UNIT:%=valgrind-run-%): valgrind-run-%: $(BUILD)/tests/test_%
	@echo "== valgrind $<"; $(VALGRIND) $<

# The soak: SOAK_STREAMS streams (9000) behind Caddy, SOAK_RATE posts/s
# (1000), SOAK_CHURN random disconnects/s (20) resuming as EventSource does,
# for SOAK_SECONDS (600).  Writes bench/soak/soak-<time>.{json,tsv,png};
# see tests/load/soak.sh.
soak: $(BIN) $(BUILD)/loadgen
	@sh scripts/deps.sh soak
	BEEP_BIN=$(abspath $(BIN)) LOADGEN=$(abspath $(BUILD)/loadgen) \
		bash tests/load/soak.sh

# The registry and the cluster under ThreadSanitizer, with real threads.
tsan:
	@$(MAKE) --no-print-directory SANITIZE=thread build/thread/tests/test_registry \
		build/thread/tests/test_cluster
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) -Otarget SANITIZE=thread \
		unit-run-cluster unit-run-registry

# The plain `make test` also runs those two under ThreadSanitizer;
# TEST_TSAN=0 leaves them to a `make test SANITIZE=thread`, which runs
# every unit test so (.ci/run: the same two binaries, built alike).
TEST_TSAN ?= 1
ifeq ($(SANITIZE),)
test: test-deps
	@$(MAKE) --no-print-directory format-check unit \
		$(if $(filter 1,$(TEST_TSAN)),tsan) loadgen integration
else
test: test-deps
	@$(MAKE) --no-print-directory unit loadgen integration
endif

# libFuzzer drivers (tests/fuzz/), built with clang and its sanitizers in
# build/fuzz, apart from the gcc objects.  `make fuzz FUZZ_SECONDS=N` runs
# each for N seconds, FUZZ_JOBS at a time, from a scratch copy of its
# committed seeds (tests/fuzz/corpus/NAME/, never written to); a crash, a
# leak or a timeout fails it and leaves the input in build/fuzz/artifacts/.
FUZZ_SECONDS ?= 30
FUZZ_JOBS ?= 2
FUZZ_CC ?= clang
FUZZ := route body auth fcgi sse conn
FUZZ_BUILD := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -pthread -g -O1 $(WARN) $(FUZZ_SAN) \
	-fsanitize=fuzzer-no-link -Iinclude -Itests/unit $(PKG_CFLAGS) \
	-DBEEP_VERSION='"$(VERSION)"'
FUZZ_OBJS := $(SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_BINS := $(FUZZ:%=$(FUZZ_BUILD)/fuzz_%)

$(FUZZ_BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) Makefile
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h \
		$(wildcard tests/unit/*.h) $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) \
		-pthread $(FUZZ_LINK) $(PKG_LIBS)
# fuzz_conn's oracle is libfcgi itself, linked statically (libfcgi-dev's
# archive) so that its read() and poll() can be wrapped, and its OS_Read()
# be the binary's (server_conn_read(), as main.c makes it); server_judge()
# is the driver's.
$(FUZZ_BUILD)/fuzz_conn: FUZZ_LINK = \
	-Wl,--wrap=read,--wrap=poll,--wrap=OS_Read,--wrap=server_judge \
	-l:libfcgi.a

fuzz-build: $(FUZZ_BINS)
# Objects of a pattern rule are intermediate to make: keep them.
.SECONDARY: $(FUZZ_OBJS) $(FUZZ_BINS)

fuzz: test-deps
	@$(MAKE) --no-print-directory -j$(FUZZ_JOBS) fuzz-build
	@$(MAKE) --no-print-directory -j$(FUZZ_JOBS) $(FUZZ:%=fuzz-run-%)

fuzz-run-%: $(FUZZ_BUILD)/fuzz_%
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh $* $<

FORMAT_FILES = $(wildcard src/*.c include/*.h tests/unit/*.c tests/unit/*.h \
	tests/load/*.c tests/bench/*.c tests/bench/*.h tests/fuzz/*.c tests/fuzz/*.h)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)
	@# Every uthash table hashes with keyed_hash (a client could choose
	@# colliding names under uthash's own function): none includes
	@# <uthash.h> but through keyed_hash.h.
	@! grep -n '^#include <uthash.h>' $(filter-out include/keyed_hash.h,$(FORMAT_FILES)) \
		|| { echo "include keyed_hash.h, not <uthash.h>"; exit 1; }

# The call page and JS client go where the Caddyfile's BEEP_WEB_ROOT
# default looks (with PREFIX=/usr/local), and beside them the Caddy rules
# that serve them, for a Caddyfile copied away from conf/ to import
# (BEEP_CADDY_WEB).
WEB_FILES := web/index.html web/app.js web/style.css web/beep-signal.js
# lighttpd's confs, with PREFIX written in the copies (where they find the
# page and the scripts), and the Lua scripts they run (mod_magnet), which
# lighttpd cannot serve the site without.
LIGHTTPD_CONFS := lighttpd.conf lighttpd-web.conf
LIGHTTPD_SCRIPTS := conf/lighttpd-raw-path.lua conf/lighttpd-stream-down.lua \
	conf/lighttpd-web-exact.lua
# The sample configuration file and the man page's OPTIONS list, from the
# option table (--print-config, --help).  Run it after adding an option;
# tests/integration/26-* fails while they are out of date.
docs: $(BIN)
	sh scripts/gen-docs.sh $(BIN)

# The binary, its man page, the sample configuration and environment files,
# the systemd units (whose paths follow BINDIR), the call page and the
# fronts' files that serve it (caddy-web.conf, lighttpd's).  PREFIX
# and DESTDIR as usual; e.g. make install PREFIX=/usr DESTDIR=/tmp/stage.
install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/beep-signal
	install -D -m 0644 man/beep-signal.8 \
		$(DESTDIR)$(MANDIR)/man8/beep-signal.8
	install -D -m 0644 conf/beep-signal.conf \
		$(DESTDIR)$(DOCDIR)/beep-signal.conf
	install -D -m 0644 conf/beep-signal.env $(DESTDIR)$(DOCDIR)/beep-signal.env
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	for u in beep-signal.service beep-signal.socket; do \
		sed -e 's|/usr/local/bin/|$(BINDIR)/|g' \
		    -e 's|/usr/local/share/doc/beep-signal/|$(DOCDIR)/|g' \
		    conf/$$u >$(DESTDIR)$(SYSTEMDUNITDIR)/$$u && \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; \
	done
	install -d $(DESTDIR)$(PREFIX)/share/beep-signal/web
	install -m 0644 $(WEB_FILES) $(DESTDIR)$(PREFIX)/share/beep-signal/web/
	install -m 0644 conf/caddy-web.conf $(LIGHTTPD_SCRIPTS) \
		$(DESTDIR)$(PREFIX)/share/beep-signal/
	for c in $(LIGHTTPD_CONFS); do \
		sed -e 's|/usr/local/share/beep-signal|$(PREFIX)/share/beep-signal|g' \
		    conf/$$c >$(DESTDIR)$(PREFIX)/share/beep-signal/$$c && \
		chmod 0644 $(DESTDIR)$(PREFIX)/share/beep-signal/$$c || exit 1; \
	done

clean:
	rm -rf build
