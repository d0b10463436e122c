#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "services/cli/context.h"
#include "services/cli/exit_code.h"
#include "services/cli/flag_set.h"

namespace cohort::cli {

// One cohortctl command, `cohortctl <name> [flags] [args]`.
struct Command {
  const char* name;
  // One line for `cohortctl --help`.
  const char* summary;
  // Runs the command with the arguments after its name; prints its own output and
  // errors and returns the process's exit code.
  ExitCode (*run)(Context& ctx, absl::Span<const std::string> args);
  // Its subcommands, space-separated ("pause resume limits list"), for completion.
  const char* subcommands = "";
};

// The command groups, one file each.
std::vector<Command> SubmitCommands();    // submit
std::vector<Command> JobCommands();       // get, ls, cancel, watch
std::vector<Command> WaitCommands();      // gather, wait, wait-for, as-completed
std::vector<Command> QueueCommands();     // queues [pause|resume|limits]
std::vector<Command> ScheduleCommands();  // schedules create|list|get|delete|pause|resume|trigger
std::vector<Command> ExecutorCommands();  // executors
std::vector<Command> TokenCommands();     // token create
std::vector<Command> OperationCommands(); // retry, delete, bulk
std::vector<Command> ReplicaCommands();   // replicas ls|add|remove

// `cohortctl completion bash|zsh`: prints a completion script for `commands` (their
// names and subcommands) and the global flags of `global`.
Command CompletionCommand(const std::vector<Command>& commands, const FlagSet& global);

// Parses a command's arguments with `flags` (which should inherit ctx.global_flags()).
// Returns an exit code when the command is done already: --help printed its help on
// stdout (kOk), or the arguments are malformed, or there are fewer than
// `min_positional` or more than `max_positional` positional arguments (kUsage, one line
// on stderr). Returns nullopt to carry on with `*parsed` filled in.
std::optional<ExitCode> ParseCommandLine(FlagSet& flags, absl::Span<const std::string> args,
                                         std::size_t min_positional, std::size_t max_positional,
                                         ParsedArgs* parsed);

}  // namespace cohort::cli
