// cohortctl token create: makes a bearer token, prints it once, and records only its
// hash in the servers' token file.
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/auth/token_store.h"
#include "services/cli/command.h"

namespace cohort::cli {
namespace {

ExitCode TokenCreate(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl token create --principal NAME --scopes LIST [flags]",
                "Makes a bearer token and prints it once on stdout; the token file gets only its SHA-256. "
                "Nothing is sent to a server: servers re-read their --auth-tokens file when it changes.");
  flags.Inherit(&ctx.global_flags());
  std::string principal, scopes, executor, queues, tokens_file;
  flags.Add("principal", &principal, "who the token speaks for ([A-Za-z0-9._@:-]{1,128})", "NAME");
  flags.Add("scopes", &scopes, "comma-separated: submit, read, cancel, admin, execute, release", "LIST");
  flags.Add("executor", &executor, "with execute: the executor ids it may use (glob, e.g. worker-a-*)", "PATTERN");
  flags.Add("queues", &queues, "comma-separated queue globs it may submit to (default: any)", "LIST");
  flags.Add("tokens-file", &tokens_file,
            "append the hashed entry to this token file (default: print the entry on stderr)", "FILE");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 0, 0, &parsed)) return *done;
  auth::Principal p;
  p.name = principal;
  absl::StatusOr<auth::ScopeSet> parsed_scopes = auth::ParseScopes(scopes);
  if (!parsed_scopes.ok()) return FailLocal(parsed_scopes.status());
  if (parsed_scopes->none()) return FailLocal(absl::InvalidArgumentError("--scopes is required"));
  p.scopes = *parsed_scopes;
  p.executor_pattern = executor;
  for (absl::string_view q : absl::StrSplit(queues, ',', absl::SkipEmpty())) p.queue_patterns.emplace_back(q);
  const std::string token = auth::NewToken();
  const std::string line = auth::TokenFileLine(token, p);
  // The line must parse as the servers will parse it (principal name, executor pattern).
  if (absl::StatusOr<auth::TokenTable> check = auth::ParseTokenFile(line); !check.ok()) {
    return FailLocal(check.status());
  }
  if (!tokens_file.empty()) {
    std::ofstream out(tokens_file, std::ios::app);
    out << line << "\n";
    out.close();
    if (!out) return FailLocal(absl::InvalidArgumentError(absl::StrCat("cannot append to ", tokens_file)));
  } else {
    std::fprintf(stderr, "add this line to the servers' --auth-tokens file:\n%s\n", line.c_str());
  }
  std::printf("%s\n", token.c_str());
  return ExitCode::kOk;
}

}  // namespace

std::vector<Command> TokenCommands() {
  return {{"token", "token create: a bearer token for a principal and its scopes, printed once",
           [](Context& ctx, absl::Span<const std::string> args) -> ExitCode {
             if (args.empty() || args[0] != "create") {
               return FailLocal(absl::InvalidArgumentError("usage: cohortctl token create --principal NAME "
                                                           "--scopes LIST [--executor PATTERN] [--queues LIST] "
                                                           "[--tokens-file FILE]"));
             }
             return TokenCreate(ctx, args.subspan(1));
           },
           "create"}};
}

}  // namespace cohort::cli
