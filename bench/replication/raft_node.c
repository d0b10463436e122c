/* Spike for issue 18: one member of a 3-member group on Debian's libraft 0.15
 * (canonical/raft, libuv I/O: a segmented on-disk log, fsync per append, TCP between
 * members). Not a test; driven by raft_spike.py, which starts three of these.
 *
 *   raft_node ID DIR BASE_PORT ENTRIES SIZE
 *
 * Member ID (1..3) listens on 127.0.0.1:BASE_PORT+ID. Every member bootstraps the same
 * configuration of three voters. The first member to become leader with an empty log
 * appends ENTRIES entries of SIZE bytes one after the other (each one a broker's group
 * commit: acknowledged once a majority has it on disk) and prints
 *   RESULT <p50 us> <p99 us> <entries/s>
 * A member that becomes leader later (after the harness killed the first) appends one
 * entry and prints
 *   FAILOVER <CLOCK_REALTIME ns when that entry was committed>
 */
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

static struct raft raft;
static struct raft_io io;
static struct raft_uv_transport transport;
static struct raft_fsm fsm;
static uv_loop_t loop;
static uv_timer_t poll_timer;
static unsigned long long applied;
static int entries, size, done, was_leader;
static double *latency;
static int next_entry;
static struct timespec started;

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int fsm_apply(struct raft_fsm *f, const struct raft_buffer *buf, void **result) {
  (void)f;
  (void)buf;
  applied++;
  *result = NULL;
  return 0;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void apply_next(void);

static void on_applied(struct raft_apply *req, int status, void *result) {
  (void)result;
  double *t0 = req->data;
  if (status != 0) {
    fprintf(stderr, "apply failed: %s\n", raft_strerror(status));
    exit(1);
  }
  if (done) { /* the failover entry */
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    printf("FAILOVER %lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    fflush(stdout);
    free(t0);
    free(req);
    return;
  }
  latency[next_entry++] = now_us() - *t0;
  free(t0);
  free(req);
  if (next_entry < entries) {
    apply_next();
    return;
  }
  struct timespec end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  double secs = (end.tv_sec - started.tv_sec) + (end.tv_nsec - started.tv_nsec) / 1e9;
  qsort(latency, entries, sizeof *latency, cmp);
  printf("RESULT %.0f %.0f %.0f\n", latency[entries / 2], latency[entries * 99 / 100], entries / secs);
  fflush(stdout);
  done = 1;
}

static void append_one(void) {
  struct raft_buffer buf;
  buf.len = (size_t)size;
  buf.base = raft_malloc(buf.len);
  memset(buf.base, 'x', buf.len);
  struct raft_apply *req = malloc(sizeof *req);
  double *t0 = malloc(sizeof *t0);
  *t0 = now_us();
  req->data = t0;
  int rv = raft_apply(&raft, req, &buf, 1, on_applied);
  if (rv != 0) {
    fprintf(stderr, "raft_apply: %s\n", raft_strerror(rv));
    exit(1);
  }
}

static void apply_next(void) { append_one(); }

static void on_poll(uv_timer_t *t) {
  (void)t;
  if (raft_state(&raft) != RAFT_LEADER || was_leader) return;
  was_leader = 1;
  if (applied == 0) {
    clock_gettime(CLOCK_MONOTONIC, &started);
    apply_next();
  } else {
    done = 1;
    append_one();
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: raft_node ID DIR BASE_PORT ENTRIES SIZE\n");
    return 2;
  }
  raft_id id = (raft_id)atoi(argv[1]);
  const char *dir = argv[2];
  int base = atoi(argv[3]);
  entries = atoi(argv[4]);
  size = atoi(argv[5]);
  latency = calloc((size_t)entries, sizeof *latency);
  char address[64];
  snprintf(address, sizeof address, "127.0.0.1:%d", base + (int)id);

  uv_loop_init(&loop);
  if (raft_uv_tcp_init(&transport, &loop) != 0) return 1;
  if (raft_uv_init(&io, &loop, dir, &transport) != 0) return 1;
  fsm.version = 1;
  fsm.apply = fsm_apply;
  if (raft_init(&raft, &io, &fsm, id, address) != 0) {
    fprintf(stderr, "raft_init: %s\n", raft_errmsg(&raft));
    return 1;
  }
  raft_set_heartbeat_timeout(&raft, 100);
  raft_set_election_timeout(&raft, 1000);
  struct raft_configuration conf;
  raft_configuration_init(&conf);
  for (int i = 1; i <= 3; i++) {
    char peer[64];
    snprintf(peer, sizeof peer, "127.0.0.1:%d", base + i);
    raft_configuration_add(&conf, (raft_id)i, peer, RAFT_VOTER);
  }
  int rv = raft_bootstrap(&raft, &conf);
  if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
    fprintf(stderr, "raft_bootstrap: %s\n", raft_strerror(rv));
    return 1;
  }
  raft_configuration_close(&conf);
  if (raft_start(&raft) != 0) {
    fprintf(stderr, "raft_start: %s\n", raft_errmsg(&raft));
    return 1;
  }
  uv_timer_init(&loop, &poll_timer);
  uv_timer_start(&poll_timer, on_poll, 1, 1);
  return uv_run(&loop, UV_RUN_DEFAULT);
}
