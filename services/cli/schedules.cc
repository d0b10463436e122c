// cohortctl schedules: the scheduler's durable interval and cron schedules
// (scheduler.proto, service Scheduler, at --scheduler).
#include <algorithm>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "libs/common/proto_time.h"
#include "services/cli/command.h"
#include "services/cli/job_spec_flags.h"

namespace cohort::cli {

using common::FromProto;
using common::ToProto;

namespace {

using cohort::v1::Schedule;

// A policy as its flag spells it: OVERLAP_POLICY_BUFFER_ONE is "buffer-one".
std::string PolicyName(const std::string& enum_name, absl::string_view prefix) {
  std::string name = absl::AsciiStrToLower(absl::StripPrefix(enum_name, prefix));
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

std::string TriggerText(const cohort::v1::ScheduleSpec& spec) {
  if (spec.has_interval()) return absl::StrCat("every ", FormatAge(FromProto(spec.interval())));
  if (spec.has_cron()) {
    return absl::StrCat("cron \"", spec.cron().expression(), "\" ",
                        spec.cron().time_zone().empty() ? "UTC" : spec.cron().time_zone());
  }
  return "-";
}

void PrintSchedule(const Schedule& s) {
  const cohort::v1::ScheduleSpec& spec = s.spec();
  Table table;
  table.AddRow({"id", s.id()});
  table.AddRow({"state", s.paused() ? "paused" : "active"});
  table.AddRow({"trigger", TriggerText(spec)});
  table.AddRow({"overlap", PolicyName(cohort::v1::OverlapPolicy_Name(spec.overlap_policy()), "OVERLAP_POLICY_")});
  std::string catch_up = PolicyName(cohort::v1::CatchUpPolicy_Name(spec.catch_up_policy()), "CATCH_UP_POLICY_");
  if (spec.catch_up_policy() == cohort::v1::CATCH_UP_POLICY_RUN_ALL) {
    absl::StrAppend(&catch_up, " (at most ", spec.catch_up_limit(), ")");
  }
  table.AddRow({"catch-up", catch_up});
  table.AddRow({"job", absl::StrCat(spec.job().queue(), " ", spec.job().kind(), ", priority ", spec.job().priority())});
  if (spec.job().has_command()) {
    table.AddRow({"command", Excerpt(absl::StrJoin(spec.job().command().argv(), " "), 200)});
  }
  if (!spec.job().payload().empty()) {
    table.AddRow({"payload", absl::StrCat(spec.job().payload().size(), " bytes: \"", Excerpt(spec.job().payload(), 60), "\"")});
  }
  table.AddRow({"next fire", FormatTime(s.next_fire_time(), s.has_next_fire_time())});
  table.AddRow({"last fire", FormatTime(s.last_fire_time(), s.has_last_fire_time())});
  table.AddRow({"last job", s.last_job_id().empty() ? "-" : s.last_job_id()});
  table.AddRow({"created", FormatTime(s.create_time(), s.has_create_time())});
  table.AddRow({"updated", FormatTime(s.update_time(), s.has_update_time())});
  table.Print();
}

constexpr char kSubcommands[] =
    "commands:\n"
    "  cohortctl schedules [list]             list schedules\n"
    "  cohortctl schedules create ID ...      create one (--every or --cron; see schedules create --help)\n"
    "  cohortctl schedules get ID             show one\n"
    "  cohortctl schedules update ID ...      replace its spec (same flags as create)\n"
    "  cohortctl schedules delete ID          delete one (jobs already submitted are untouched)\n"
    "  cohortctl schedules pause ID           stop it firing (missed slots are skipped)\n"
    "  cohortctl schedules resume ID          fire again from the next slot\n"
    "  cohortctl schedules trigger ID         submit its job now and print the job's id\n";

// Sends `request` with `call` and prints the schedule in its response.
template <typename Req, typename Resp, typename Call>
ExitCode SendSpec(Context& ctx, const Req& request, Call call) {
  Resp response;
  auto rpc = ctx.Call();
  grpc::Status status = call(rpc.get(), request, &response);
  if (!status.ok()) return ctx.FailScheduler(status);
  if (ctx.json()) {
    PrintJson(response);
  } else {
    PrintSchedule(response.schedule());
  }
  return ExitCode::kOk;
}

// create and update: a whole spec from flags and arguments.
ExitCode Write(Context& ctx, absl::Span<const std::string> args, bool update) {
  const char* verb = update ? "update" : "create";
  FlagSet flags(absl::StrCat("cohortctl schedules ", verb, " [flags] ID ", JobSpecFlags::kArgs),
                update ? "Replaces a schedule's spec with the one described by the flags and arguments; the next "
                         "slot is computed from now and slots already fired never fire again."
                       : "Creates a schedule that submits the job described by the flags and arguments on every slot.");
  flags.Inherit(&ctx.global_flags());
  absl::Duration every;
  std::string cron;
  std::string tz;
  std::string overlap = "skip";
  std::string catch_up = "run-once";
  int catch_up_limit = 0;
  flags.Add("every", &every, "fire at every multiple of this interval since the Unix epoch, e.g. 15m");
  flags.Add("cron", &cron, "fire on a 5-field cron expression, e.g. \"0 9 * * MON-FRI\"", "EXPR");
  flags.Add("tz", &tz, "the cron expression's IANA time zone, e.g. Europe/Paris (default UTC)", "ZONE");
  flags.Add("overlap", &overlap, "when the last job is still running: skip, allow or buffer-one", "POLICY");
  flags.Add("catch-up", &catch_up, "slots missed while the scheduler was down: skip-missed, run-once or run-all",
            "POLICY");
  flags.Add("catch-up-limit", &catch_up_limit, "with --catch-up=run-all, the most missed slots to run");
  JobSpecFlags job(flags, JobSpecFlags::Use::kScheduleTemplate);
  flags.SetFooter(
      "The job flags are submit's (see cohortctl submit --help), without --depends-on and\n"
      "--idempotency-key: the scheduler sets a key per slot, so a slot never fires twice.\n"
      "\n"
      "examples:\n"
      "  cohortctl schedules create nightly-report reports exec --cron=\"0 2 * * *\" --tz=Europe/Paris -- /usr/bin/report\n"
      "  cohortctl schedules create heartbeat default builtin.echo ping --every=1m --overlap=skip\n");
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 3, 4, &parsed)) return *done;
  if (flags.IsSet("every") == flags.IsSet("cron")) {
    return Fail(ExitCode::kUsage, "give exactly one of --every and --cron");
  }
  if (flags.IsSet("tz") && !flags.IsSet("cron")) return Fail(ExitCode::kUsage, "--tz goes with --cron");

  cohort::v1::ScheduleSpec spec_storage;
  cohort::v1::ScheduleSpec* spec = &spec_storage;
  if (flags.IsSet("every")) {
    *spec->mutable_interval() = ToProto(every);
  } else {
    spec->mutable_cron()->set_expression(cron);
    spec->mutable_cron()->set_time_zone(tz);
  }
  absl::StatusOr<cohort::v1::OverlapPolicy> overlap_policy = ParseChoice<cohort::v1::OverlapPolicy>(
      "overlap", overlap,
      {{"skip", cohort::v1::OVERLAP_POLICY_SKIP},
       {"allow", cohort::v1::OVERLAP_POLICY_ALLOW},
       {"buffer-one", cohort::v1::OVERLAP_POLICY_BUFFER_ONE}});
  if (!overlap_policy.ok()) return FailLocal(overlap_policy.status());
  spec->set_overlap_policy(*overlap_policy);
  absl::StatusOr<cohort::v1::CatchUpPolicy> catch_up_policy = ParseChoice<cohort::v1::CatchUpPolicy>(
      "catch-up", catch_up,
      {{"skip-missed", cohort::v1::CATCH_UP_POLICY_SKIP_MISSED},
       {"run-once", cohort::v1::CATCH_UP_POLICY_RUN_ONCE},
       {"run-all", cohort::v1::CATCH_UP_POLICY_RUN_ALL}});
  if (!catch_up_policy.ok()) return FailLocal(catch_up_policy.status());
  spec->set_catch_up_policy(*catch_up_policy);
  spec->set_catch_up_limit(catch_up_limit);
  absl::StatusOr<cohort::v1::JobSpec> template_spec =
      job.Build(flags, absl::MakeConstSpan(parsed.positional).subspan(1), parsed.after_dashes);
  if (!template_spec.ok()) return FailLocal(template_spec.status());
  *spec->mutable_job() = *std::move(template_spec);

  absl::StatusOr<cohort::v1::Scheduler::Stub*> scheduler = ctx.Scheduler();
  if (!scheduler.ok()) return FailLocal(scheduler.status());
  cohort::v1::Scheduler::Stub& stub = **scheduler;
  if (update) {
    cohort::v1::UpdateScheduleRequest request;
    request.set_schedule_id(parsed.positional[0]);
    *request.mutable_spec() = std::move(spec_storage);
    return SendSpec<cohort::v1::UpdateScheduleRequest, cohort::v1::UpdateScheduleResponse>(
        ctx, request, [&](auto* c, auto& req, auto* resp) { return stub.UpdateSchedule(c, req, resp); });
  }
  cohort::v1::CreateScheduleRequest request;
  request.set_schedule_id(parsed.positional[0]);
  *request.mutable_spec() = std::move(spec_storage);
  return SendSpec<cohort::v1::CreateScheduleRequest, cohort::v1::CreateScheduleResponse>(
      ctx, request, [&](auto* c, auto& req, auto* resp) { return stub.CreateSchedule(c, req, resp); });
}

ExitCode ListSchedules(Context& ctx, absl::Span<const std::string> args) {
  FlagSet flags("cohortctl schedules [list] [flags]", "Lists the scheduler's schedules in id order, a page at a time.");
  flags.Inherit(&ctx.global_flags());
  int page_size = 100;
  std::string page_token;
  flags.Add("page-size", &page_size, "schedules per page (the scheduler caps it)");
  flags.Add("page-token", &page_token, "the next page, as the previous page said", "TOKEN");
  flags.SetFooter(kSubcommands);
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 0, 0, &parsed)) return *done;
  absl::StatusOr<cohort::v1::Scheduler::Stub*> scheduler = ctx.Scheduler();
  if (!scheduler.ok()) return FailLocal(scheduler.status());
  cohort::v1::ListSchedulesRequest request;
  request.set_page_size(page_size);
  request.set_page_token(page_token);
  cohort::v1::ListSchedulesResponse response;
  auto call = ctx.Call();
  grpc::Status status = (*scheduler)->ListSchedules(call.get(), request, &response);
  if (!status.ok()) return ctx.FailScheduler(status);
  if (ctx.json()) {
    PrintJson(response);
    return ExitCode::kOk;
  }
  Table table({"ID", "STATE", "TRIGGER", "JOB", "NEXT FIRE", "LAST JOB"});
  for (const Schedule& s : response.schedules()) {
    table.AddRow({s.id(), s.paused() ? "paused" : "active", TriggerText(s.spec()),
                  absl::StrCat(s.spec().job().queue(), " ", s.spec().job().kind()),
                  FormatTime(s.next_fire_time(), s.has_next_fire_time()),
                  s.last_job_id().empty() ? "-" : s.last_job_id()});
  }
  table.Print();
  if (!response.next_page_token().empty()) {
    std::fprintf(stderr, "more schedules: repeat with --page-token=%s\n", response.next_page_token().c_str());
  }
  return ExitCode::kOk;
}

// get, delete, pause, resume and trigger: one schedule id, one call.
enum class Verb { kGet, kDelete, kPause, kResume, kTrigger };

// Sends Req{schedule_id: id} through `call` and prints the response: protobuf JSON with
// --output=json, otherwise `human(response)`.
template <typename Req, typename Resp, typename Call, typename Human>
ExitCode CallById(Context& ctx, const std::string& id, Call call, Human human) {
  Req request;
  request.set_schedule_id(id);
  Resp response;
  auto rpc = ctx.Call();
  grpc::Status status = call(rpc.get(), request, &response);
  if (!status.ok()) return ctx.FailScheduler(status);
  if (ctx.json()) {
    PrintJson(response);
  } else {
    human(response);
  }
  return ExitCode::kOk;
}

ExitCode OnOne(Context& ctx, Verb verb, absl::string_view name, absl::string_view summary,
               absl::Span<const std::string> args) {
  FlagSet flags(absl::StrCat("cohortctl schedules ", name, " [flags] ID"), std::string(summary));
  flags.Inherit(&ctx.global_flags());
  ParsedArgs parsed;
  if (auto done = ParseCommandLine(flags, args, 1, 1, &parsed)) return *done;
  absl::StatusOr<cohort::v1::Scheduler::Stub*> scheduler = ctx.Scheduler();
  if (!scheduler.ok()) return FailLocal(scheduler.status());
  cohort::v1::Scheduler::Stub& stub = **scheduler;
  const std::string& id = parsed.positional[0];
  switch (verb) {
    case Verb::kGet:
      return CallById<cohort::v1::GetScheduleRequest, cohort::v1::GetScheduleResponse>(
          ctx, id, [&](auto* c, auto& req, auto* resp) { return stub.GetSchedule(c, req, resp); },
          [](const auto& resp) { PrintSchedule(resp.schedule()); });
    case Verb::kDelete:
      return CallById<cohort::v1::DeleteScheduleRequest, cohort::v1::DeleteScheduleResponse>(
          ctx, id, [&](auto* c, auto& req, auto* resp) { return stub.DeleteSchedule(c, req, resp); },
          [&id](const auto&) { PrintRaw(absl::StrCat("schedule ", id, " deleted\n")); });
    case Verb::kPause:
      return CallById<cohort::v1::PauseScheduleRequest, cohort::v1::PauseScheduleResponse>(
          ctx, id, [&](auto* c, auto& req, auto* resp) { return stub.PauseSchedule(c, req, resp); },
          [](const auto& resp) { PrintSchedule(resp.schedule()); });
    case Verb::kResume:
      return CallById<cohort::v1::ResumeScheduleRequest, cohort::v1::ResumeScheduleResponse>(
          ctx, id, [&](auto* c, auto& req, auto* resp) { return stub.ResumeSchedule(c, req, resp); },
          [](const auto& resp) { PrintSchedule(resp.schedule()); });
    case Verb::kTrigger:
      return CallById<cohort::v1::TriggerScheduleRequest, cohort::v1::TriggerScheduleResponse>(
          ctx, id, [&](auto* c, auto& req, auto* resp) { return stub.TriggerSchedule(c, req, resp); },
          [](const auto& resp) { PrintRaw(absl::StrCat(resp.job_id(), "\n")); });
  }
  return ExitCode::kUsage;
}

ExitCode Schedules(Context& ctx, absl::Span<const std::string> args) {
  if (!args.empty()) {
    const std::string& sub = args[0];
    const absl::Span<const std::string> rest = args.subspan(1);
    if (sub == "create") return Write(ctx, rest, /*update=*/false);
    if (sub == "update") return Write(ctx, rest, /*update=*/true);
    if (sub == "list") return ListSchedules(ctx, rest);
    if (sub == "get") return OnOne(ctx, Verb::kGet, sub, "Shows one schedule.", rest);
    if (sub == "delete") {
      return OnOne(ctx, Verb::kDelete, sub, "Deletes a schedule; jobs it already submitted are untouched.", rest);
    }
    if (sub == "pause") {
      return OnOne(ctx, Verb::kPause, sub, "Stops a schedule firing; slots passing meanwhile are skipped.", rest);
    }
    if (sub == "resume") return OnOne(ctx, Verb::kResume, sub, "Resumes a schedule from its next slot.", rest);
    if (sub == "trigger") {
      return OnOne(ctx, Verb::kTrigger, sub, "Submits the schedule's job now, outside its slots; prints the job id.",
                   rest);
    }
    if (!absl::StartsWith(sub, "-")) {
      return Fail(ExitCode::kUsage,
                  absl::StrCat("unknown schedules command \"", sub, "\" (see cohortctl schedules --help)"));
    }
  }
  return ListSchedules(ctx, args);
}

}  // namespace

std::vector<Command> ScheduleCommands() {
  return {{"schedules", "interval and cron schedules: create, list, get, delete, pause, resume, trigger", Schedules,
           "list create get update delete pause resume trigger"}};
}

}  // namespace cohort::cli
