// cohortctl completion bash|zsh: shell completion scripts generated from the command
// table, so a new command or subcommand completes without editing a script.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "services/cli/command.h"

namespace cohort::cli {
namespace {

// The table and flags the scripts are made from: set once by CompletionCommand (a
// command's run function takes no state of its own).
const std::vector<Command>* table = nullptr;
const FlagSet* global_flags = nullptr;

std::string BashScript() {
  std::vector<std::string> names;
  std::string cases;
  for (const Command& c : *table) {
    names.push_back(c.name);
    if (*c.subcommands != '\0') {
      absl::StrAppend(&cases, "    ", c.name, ") [[ $sub -eq 0 ]] && words=\"", c.subcommands, "\" ;;\n");
    }
  }
  return absl::StrCat(
      "# bash completion for cohortctl (cohortctl completion bash).\n"
      "# Load now: source <(cohortctl completion bash)\n"
      "# Install:  cohortctl completion bash > ~/.local/share/bash-completion/completions/cohortctl\n"
      "_cohortctl() {\n"
      "  local cur=${COMP_WORDS[COMP_CWORD]} cmd= sub=0 i words=\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    case ${COMP_WORDS[i]} in\n"
      "      -*) ;;\n"
      "      *) if [[ -z $cmd ]]; then cmd=${COMP_WORDS[i]}; else sub=$((sub + 1)); fi ;;\n"
      "    esac\n"
      "  done\n"
      "  if [[ $cur == -* ]]; then\n"
      "    words=\"", absl::StrJoin(global_flags->Names(), " "), "\"\n"
      "  elif [[ -z $cmd ]]; then\n"
      "    words=\"", absl::StrJoin(names, " "), "\"\n"
      "  else\n"
      "    case $cmd in\n",
      cases,
      "    esac\n"
      "  fi\n"
      "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
      "}\n"
      "complete -F _cohortctl cohortctl\n");
}

std::string ZshQuote(const std::string& text) { return absl::StrReplaceAll(text, {{"'", "'\\''"}, {":", "\\:"}}); }

std::string ZshScript() {
  std::string described;
  std::string cases;
  for (const Command& c : *table) {
    absl::StrAppend(&described, "    '", c.name, ":", ZshQuote(c.summary), "'\n");
    if (*c.subcommands != '\0') absl::StrAppend(&cases, "    ", c.name, ") compadd -- ", c.subcommands, " ;;\n");
  }
  return absl::StrCat(
      "#compdef cohortctl\n"
      "# zsh completion for cohortctl (cohortctl completion zsh).\n"
      "# Load now (after compinit): source <(cohortctl completion zsh)\n"
      "# Install:  cohortctl completion zsh > \"${fpath[1]}/_cohortctl\"\n"
      "_cohortctl() {\n"
      "  local -a commands\n"
      "  commands=(\n",
      described,
      "  )\n"
      "  if [[ $PREFIX == -* ]]; then\n"
      "    compadd -- ", absl::StrJoin(global_flags->Names(), " "), "\n"
      "    return\n"
      "  fi\n"
      "  local -a args=(${words[2,CURRENT-1]:#-*})\n"
      "  if (( ${#args} == 0 )); then\n"
      "    _describe 'command' commands\n"
      "    return\n"
      "  fi\n"
      "  (( ${#args} == 1 )) || return\n"
      "  case $args[1] in\n",
      cases,
      "  esac\n"
      "}\n"
      "if [[ $funcstack[1] == _cohortctl ]]; then _cohortctl \"$@\"; else compdef _cohortctl cohortctl; fi\n");
}

ExitCode Completion(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl completion bash|zsh", "Prints a shell completion script for cohortctl.");
  flags.SetFooter(
      "bash: source <(cohortctl completion bash)   (or save it in ~/.local/share/bash-completion/completions/cohortctl)\n"
      "zsh:  source <(cohortctl completion zsh)    (after compinit; or save it as _cohortctl in a directory of $fpath)\n");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, 1, &parsed)) return *done;
  const std::string& shell = parsed.positional[0];
  if (shell == "bash") {
    PrintRaw(BashScript());
  } else if (shell == "zsh") {
    PrintRaw(ZshScript());
  } else {
    return Fail(ExitCode::kUsage, absl::StrCat("completion for ", Excerpt(shell, 40), " is not available: use bash or zsh"));
  }
  return ExitCode::kOk;
}

}  // namespace

Command CompletionCommand(const std::vector<Command>& commands, const FlagSet& global) {
  table = &commands;
  global_flags = &global;
  return {"completion", "print a bash or zsh completion script (source <(cohortctl completion bash))", Completion,
          "bash zsh"};
}

}  // namespace cohort::cli
