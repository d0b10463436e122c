#pragma once

#include <cstdio>
#include <cstdlib>

// Always-on invariant checks for programming errors (wrong thread, misuse of an API).
// Unlike assert(), they stay in opt builds, which define NDEBUG.
#define COHORT_CHECK(cond, msg)                                                   \
  do {                                                                            \
    if (__builtin_expect(!(cond), 0)) {                                           \
      std::fprintf(stderr, "%s:%d: check failed: %s: %s\n", __FILE__, __LINE__,  \
                   #cond, msg);                                                   \
      std::abort();                                                               \
    }                                                                             \
  } while (0)
