// cohortctl: Cohort's command-line client. See README.md ("cohortctl") and
// `cohortctl --help`.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpc/grpc.h"
#include "absl/strings/str_format.h"
#include "libs/common/version_line.h"
#include "services/cli/client_config.h"
#include "services/cli/command.h"

namespace cohort::cli {
namespace {

constexpr char kExitCodes[] =
    "exit codes:\n"
    "  0  success\n"
    "  1  a job ended FAILED or CANCELLED where the command raises (submit --wait, gather without\n"
    "     --return-exceptions, wait-for, as-completed), or a wait timed out\n"
    "  2  usage error: unknown command or flag, malformed value (one line on stderr)\n"
    "  3  the server rejected the request: \"cohortctl: NOT_FOUND: ...\", INVALID_ARGUMENT, ...\n"
    "  4  the server cannot be reached, went away or did not answer within --timeout\n";

std::vector<Command> AllCommands() {
  std::vector<Command> all;
  for (auto group : {SubmitCommands, JobCommands, OperationCommands, WaitCommands, QueueCommands, ScheduleCommands,
                     ExecutorCommands, TokenCommands, ReplicaCommands}) {
    for (Command& c : group()) all.push_back(c);
  }
  return all;
}

std::string CommandList(const std::vector<Command>& commands) {
  std::string out = "commands:\n";
  for (const Command& c : commands) absl::StrAppend(&out, absl::StrFormat("  %-14s %s\n", c.name, c.summary));
  absl::StrAppend(&out, "\nRun cohortctl COMMAND --help for a command's flags.\n");
  return out;
}

int Main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<Command> commands = AllCommands();
  Context ctx;
  FlagSet& global = ctx.global_flags();
  bool version = false;
  global.Add("version", &version, "print cohortctl's version and exit");
  commands.push_back(CompletionCommand(commands, global));
  global.SetFooter(absl::StrCat(CommandList(commands), "\n", kExitCodes, "\nconfig file: ", FindClientConfig().path,
                                " ($COHORT_CONFIG overrides), lines `key = value`; see docs/config.md.\n"
                                "Each setting: its flag, else its environment variable, else the file.\n"));

  absl::StatusOr<ParsedArgs> parsed = global.Parse(args, FlagSet::Mode::kStopAtPositional);
  if (!parsed.ok()) return static_cast<int>(FailLocal(parsed.status()));
  std::size_t next = parsed->consumed;
  if (version) {
    PrintRaw(absl::StrCat(common::VersionLine("cohortctl"), "\n"));
    return 0;
  }
  if (parsed->help || (next < args.size() && args[next] == "help" && next + 1 == args.size())) {
    PrintRaw(global.Help());
    return 0;
  }
  if (!ctx.config_status().ok()) return static_cast<int>(Fail(ExitCode::kUsage, ctx.config_status().message()));
  if (next == args.size()) {
    return static_cast<int>(Fail(ExitCode::kUsage, "no command given (see cohortctl --help)"));
  }
  if (ctx.options().timeout <= absl::ZeroDuration()) {
    return static_cast<int>(Fail(ExitCode::kUsage, "--timeout must be positive"));
  }
  // `cohortctl help COMMAND` is `cohortctl COMMAND --help`.
  std::vector<std::string> rest(args.begin() + next + 1, args.end());
  std::string name = args[next];
  if (name == "help") {
    name = rest[0];
    rest = {"--help"};
  }
  for (const Command& c : commands) {
    if (name == c.name) return static_cast<int>(c.run(ctx, rest));
  }
  return static_cast<int>(
      Fail(ExitCode::kUsage, absl::StrCat("unknown command \"", name, "\" (see cohortctl --help)")));
}

}  // namespace
}  // namespace cohort::cli

// cohortctl holds gRPC's library open for its whole life and ends with _Exit, so no
// grpc_shutdown runs: when the last channel went, grpc_shutdown joined gRPC's executor
// thread, which could sit in a poll for up to 10 s after a call the server refused
// while the client was still sending (a 50 MB payload over the broker's
// --max-message-bytes: the error printed at once, the exit 10 s later). Everything
// cohortctl writes goes through stdio (flushed here) or is closed before Main returns.
int main(int argc, char** argv) {
  grpc_init();
  const int code = cohort::cli::Main(argc, argv);
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(code);
}
