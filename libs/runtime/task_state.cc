#include <cstdio>

#include "libs/runtime/errors.h"
#include "libs/runtime/check.h"
#include "libs/runtime/task.h"

namespace cohort::runtime::internal {

TaskState::~TaskState() {
  if (frame_) frame_.destroy();
  if (exception_ && !exception_retrieved_ && !cancelled_) {
    // asyncio's "Task exception was never retrieved": a failure nobody looked at.
    try {
      std::rethrow_exception(exception_);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cohort runtime: task exception was never retrieved: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "cohort runtime: task exception was never retrieved\n");
    }
  }
}

bool TaskState::Cancel() {
  if (done_ || abandoning_) return false;
  if (suspended_at_ != nullptr) {
    suspended_at_->CancelWait();
  } else if (!cancel_delivering_) {
    cancel_requested_ = true;
  }
  return true;
}

void TaskState::AddDoneNode(DoneNode* node) {
  COHORT_CHECK(!done_, "AddDoneNode on a finished task");
  done_nodes_.PushBack(node);
}

void TaskState::Start(std::coroutine_handle<> frame) {
  frame_ = frame;
  Ref();  // the loop's reference, dropped in Finish
  loop_->RegisterTask(this);
  loop_->Schedule(&FirstStep, this);
}

void TaskState::FirstStep(void* self) {
  auto* task = static_cast<TaskState*>(self);
  if (task->TakeCancelRequest()) {
    task->DestroyFrame();
    task->Finish(std::make_exception_ptr(CancelledError()));
    return;
  }
  task->frame_.resume();
}

void TaskState::Finish(std::exception_ptr error) {
  cancel_dropped_ = cancel_requested_;
  done_ = true;
  suspended_at_ = nullptr;
  exception_ = std::move(error);
  if (exception_) {
    try {
      std::rethrow_exception(exception_);
    } catch (const CancelledError&) {
      cancelled_ = true;
    } catch (...) {
    }
  }
  Unlink();  // from the loop's registry
  while (DoneNode* node = done_nodes_.PopFront()) node->OnTaskDone();
  Unref();
}

void TaskState::Abandon() {
  if (done_) return;
  // The frame's destructors must not reach a suspension point inside it.
  abandoning_ = true;
  suspended_at_ = nullptr;
  cancel_requested_ = false;
  if (frame_) DestroyFrame();
  Finish(std::make_exception_ptr(CancelledError()));
}

}  // namespace cohort::runtime::internal
