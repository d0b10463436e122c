#include "libs/auth/principal.h"

#include <fnmatch.h>

namespace cohort::auth {
namespace {

std::string FirstProperty(const grpc::AuthContext* context, const char* name) {
  if (context == nullptr) return "";
  std::vector<grpc::string_ref> values = context->FindPropertyValues(name);
  if (values.empty()) return "";
  return std::string(values.front().data(), values.front().size());
}

}  // namespace

std::string CallerPrincipal(const grpc::AuthContext* context) { return FirstProperty(context, kPrincipalProperty); }

bool MayActAsExecutor(const grpc::AuthContext* context, absl::string_view executor_id) {
  if (CallerPrincipal(context).empty()) return true;  // no authorization on this server
  std::string pattern = FirstProperty(context, kExecutorPatternProperty);
  return !pattern.empty() && GlobMatches(pattern, executor_id);
}

bool MayUseQueue(const grpc::AuthContext* context, absl::string_view queue) {
  if (context == nullptr) return true;
  std::vector<grpc::string_ref> patterns = context->FindPropertyValues(kQueuePatternProperty);
  if (patterns.empty()) return true;
  for (const grpc::string_ref& p : patterns) {
    if (GlobMatches(absl::string_view(p.data(), p.size()), queue)) return true;
  }
  return false;
}

bool GlobMatches(absl::string_view pattern, absl::string_view text) {
  return fnmatch(std::string(pattern).c_str(), std::string(text).c_str(), 0) == 0;
}

}  // namespace cohort::auth
