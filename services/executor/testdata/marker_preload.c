// A shared library whose constructor creates the file named by COHORT_TEST_MARKER:
// the proof, in exec_runner_test, that LD_PRELOAD would have run code the allowlist
// never admitted.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void WriteMarker(void) {
  const char* path = getenv("COHORT_TEST_MARKER");
  if (path == NULL) return;
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) close(fd);
}
