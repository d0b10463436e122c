#include "services/console/console_api.h"

#include <string>

#include "gtest/gtest.h"

namespace cohort::console {
namespace {

TEST(WhoamiJson, NamesTheScopesTheProbesShowedAndEveryActionAllowed) {
  Permissions may;
  may.read = may.cancel = may.retry = may.remove = may.bulk = may.queues = true;
  EXPECT_EQ(WhoamiJson(may, true, false),
            R"({"signedIn":true,"readOnly":false,"scopes":["read","cancel","admin"],"may":{"read":true,"cancel":true,)"
            R"("retry":true,"delete":true,"bulk":true,"queues":true,"schedules":false}})");
}

TEST(WhoamiJson, ReadOnlyModeAllowsNoActionWhateverTheToken) {
  Permissions may;
  may.read = may.cancel = may.retry = may.remove = may.bulk = may.queues = may.schedules = true;
  const std::string json = WhoamiJson(may, true, true);
  EXPECT_NE(json.find(R"("readOnly":true)"), std::string::npos);
  EXPECT_NE(json.find(R"("may":{"read":true,"cancel":false,"retry":false,"delete":false,"bulk":false,)"
                      R"("queues":false,"schedules":false})"),
            std::string::npos)
      << json;
}

TEST(HttpStatusOf, MapsTheAuthorizersRefusalsTo401And403) {
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNAUTHENTICATED), 401);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::PERMISSION_DENIED), 403);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNIMPLEMENTED), 502);
}

}  // namespace
}  // namespace cohort::console
