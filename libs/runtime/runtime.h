#pragma once

// Cohort's coroutine runtime, with asyncio's semantics: one header for all of it.
#include "libs/runtime/as_completed.h"    // IWYU pragma: export
#include "libs/runtime/clock.h"           // IWYU pragma: export
#include "libs/runtime/condition.h"       // IWYU pragma: export
#include "libs/runtime/errors.h"          // IWYU pragma: export
#include "libs/runtime/event.h"           // IWYU pragma: export
#include "libs/runtime/event_loop.h"      // IWYU pragma: export
#include "libs/runtime/external_completion.h"  // IWYU pragma: export
#include "libs/runtime/gate.h"            // IWYU pragma: export
#include "libs/runtime/gather.h"          // IWYU pragma: export
#include "libs/runtime/lock.h"            // IWYU pragma: export
#include "libs/runtime/queue.h"           // IWYU pragma: export
#include "libs/runtime/result.h"          // IWYU pragma: export
#include "libs/runtime/semaphore.h"       // IWYU pragma: export
#include "libs/runtime/shield.h"          // IWYU pragma: export
#include "libs/runtime/sleep.h"           // IWYU pragma: export
#include "libs/runtime/task.h"            // IWYU pragma: export
#include "libs/runtime/task_group.h"      // IWYU pragma: export
#include "libs/runtime/task_handle.h"     // IWYU pragma: export
#include "libs/runtime/thread_pool.h"     // IWYU pragma: export
#include "libs/runtime/wait.h"            // IWYU pragma: export
#include "libs/runtime/wait_for.h"        // IWYU pragma: export
