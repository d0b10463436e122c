// A stand-in for a Cohort service, for service_process_test: prints the ready line
// (`listening grpc=127.0.0.1:1234 metrics=127.0.0.1:5678`) and exits 0 on SIGTERM.
//
//   --fail-before-ready     exit 3 without printing anything
//   --never-ready           print nothing, wait for SIGTERM
//   --malformed-ready       print "listening grpc=nowhere" instead of the ready line
//   --ignore-term           ignore SIGTERM (only SIGKILL ends it)
//   --lines-after-ready=N   print N lines "line <i>" after the ready line
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  bool fail = false, never_ready = false, malformed = false, ignore_term = false;
  long extra_lines = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--fail-before-ready") {
      fail = true;
    } else if (arg == "--never-ready") {
      never_ready = true;
    } else if (arg == "--malformed-ready") {
      malformed = true;
    } else if (arg == "--ignore-term") {
      ignore_term = true;
    } else if (arg.rfind("--lines-after-ready=", 0) == 0) {
      extra_lines = std::strtol(arg.c_str() + std::strlen("--lines-after-ready="), nullptr, 10);
    } else {
      std::fprintf(stderr, "fake_service: unknown flag %s\n", arg.c_str());
      return 2;
    }
  }
  if (fail) return 3;

  // SIGTERM stays pending until sigwait below, so one sent early is never lost.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  if (ignore_term) {
    signal(SIGTERM, SIG_IGN);
  } else {
    sigprocmask(SIG_BLOCK, &term, nullptr);
  }

  if (malformed) {
    std::puts("listening grpc=nowhere");
  } else if (!never_ready) {
    std::puts("listening grpc=127.0.0.1:1234 metrics=127.0.0.1:5678");
  }
  std::fflush(stdout);
  for (long i = 0; i < extra_lines; ++i) std::printf("line %ld\n", i);
  std::fflush(stdout);

  if (ignore_term) {
    for (;;) pause();  // until SIGKILL
  }
  int signal_number = 0;
  sigwait(&term, &signal_number);
  return 0;
}
