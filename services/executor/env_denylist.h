#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"

namespace cohort::executor {

// The environment variables a job may not set for an `exec` child, because they make
// an allowlisted program load or run code the allowlist never admitted (the loader's
// LD_PRELOAD runs a library's constructor before main), or feed glibc files and
// settings that have a history of being exploitable. The choice follows glibc's own
// list of variables it drops for setuid programs (unsecvars.h) and sudo's env_reset
// "bad" table, restricted to what applies whatever the program is written in:
//
// - any name starting with "LD_" (dynamic loader: LD_PRELOAD, LD_LIBRARY_PATH,
//   LD_AUDIT, LD_DEBUG_OUTPUT, ... and any the loader adds later);
// - any name starting with "MALLOC_" (glibc malloc: MALLOC_TRACE writes a file,
//   MALLOC_CHECK_ and the tunables' aliases change allocator behaviour);
// - GLIBC_TUNABLES (CVE-2023-4911), GCONV_PATH (loads gconv modules: shared
//   libraries), LOCPATH, NLSPATH, GETCONF_DIR, TZDIR (files glibc parses),
//   HOSTALIASES, LOCALDOMAIN, RES_OPTIONS, RESOLV_HOST_CONF, NIS_PATH (the resolver);
// - shell start-up hooks that run code in an allowlisted shell script: BASH_ENV, ENV,
//   SHELLOPTS, BASHOPTS, PS4, and exported functions (names starting "BASH_FUNC_").
//
// Interpreter search paths (PYTHONPATH, PERL5LIB, NODE_OPTIONS, ...) are allowed: an
// allowlisted interpreter already runs whatever code its arguments name, so they
// widen nothing; allowlist scripts through a wrapper that resets them if that matters.
// Names are matched exactly (the loader and glibc are case-sensitive).
//
// The executor's own environment (ExecOptions::inherit_env) is the operator's and is
// not checked.
bool IsDeniedJobEnvName(const std::string& name);

// OK unless `env` sets a denied name; PERMISSION_DENIED naming the first such variable
// (at most 64 characters of it) and the rule otherwise.
absl::Status CheckJobEnv(const std::map<std::string, std::string>& env);

}  // namespace cohort::executor
