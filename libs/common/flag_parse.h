#pragma once

#include <string>
#include <vector>

namespace cohort::common {

// Parses a Cohort binary's command line into its Abseil flags, with the behaviour the
// README documents for every binary, instead of absl::ParseCommandLine (which exits 1
// on a bad flag, names flags with underscores in --help and has no --version):
//
//   --version            prints VersionLine(program) on stdout, exits 0
//   --help, -h           prints the usage message and the flags defined in the files
//                        given to ShowFlagsDefinedIn, with dashed names, exits 0
//   an unknown flag      "<program>: unknown flag --name (see --help)", exit 2
//   a malformed value    "<program>: --name "value" is invalid: <reason>", exit 2, the
//                        value quoted at most QuoteBounded's prefix, the reason the
//                        parser's or what a valid value looks like (ExpectedValue)
//   a positional arg     "<program>: unexpected argument "x" ...", exit 2 (no Cohort
//                        service takes one)
//
// Flags are spelled --name=value or --name value; a bool flag --name, --name=false or
// --noname; dashes and underscores in names are the same (DashedArgs). A bare "--" ends
// the flags. Every message is one line on stderr. Call once, first thing in main.
void ParseFlagsOrExit(const char* program, int argc, char** argv);

}  // namespace cohort::common
