#pragma once

namespace cohort::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0,
// released before returning), for a server or raft member a test starts itself; never
// one it returned before in this process. Thread-safe. Aborts with the reason if no
// socket can be bound.
int FreePort();

}  // namespace cohort::testing
