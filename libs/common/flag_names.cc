#include "libs/common/flag_names.h"

namespace cohort::common {

DashedArgs::DashedArgs(int argc, char** argv) {
  args_.reserve(argc);
  bool flags_ended = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") flags_ended = true;  // everything after it is positional
    if (i > 0 && !flags_ended && arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
      std::size_t end = arg.find('=');
      if (end == std::string::npos) end = arg.size();
      for (std::size_t j = 2; j < end; ++j) {
        if (arg[j] == '-') arg[j] = '_';
      }
    }
    args_.push_back(std::move(arg));
  }
  for (std::string& a : args_) pointers_.push_back(a.data());
}

}  // namespace cohort::common
