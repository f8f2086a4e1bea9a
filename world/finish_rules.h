// Finish rules (DESIGN.md section 5): which earlier call's answer FINISH(rule) returns.
//
// One definition shared by ConductorEnv (training and replay) and the serving gateway, so that a
// policy finishes a live request exactly as it did in the simulated world.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "traces/trace_set.h"

namespace conductor {

enum class FinishRule { kLast = 0, kVote = 1, kMostTrusted = 2 };
const char* finish_rule_name(FinishRule r);
// "last" | "vote" | "most_trusted" (also "most-trusted"); false for anything else.
bool parse_finish_rule(const std::string& s, FinishRule* out);

// Index of the call whose answer `rule` returns among `calls[0..n)`, or -1 when none succeeded.
//  - last: the most recent successful call;
//  - most_trusted: the successful call whose worker has the highest trust[worker] (first on ties);
//  - vote: the majority of successful answers; a non-comparable answer (-1) is its own group; ties
//    go to the group holding the most recent call, and the answer is that call's.
// `Call` needs `error` (ErrorCode) and `worker`; `answer_of(call)` gives the comparable answer id.
template <class Call, class AnswerOf>
int final_call_index(FinishRule rule, const Call* calls, int n, const std::vector<double>& trust,
                     AnswerOf answer_of) {
  switch (rule) {
    case FinishRule::kLast:
      for (int j = n - 1; j >= 0; --j)
        if (calls[j].error == kOk) return j;
      return -1;
    case FinishRule::kMostTrusted: {
      int best = -1;
      for (int j = 0; j < n; ++j)
        if (calls[j].error == kOk && (best < 0 || trust[calls[j].worker] > trust[calls[best].worker])) best = j;
      return best;
    }
    case FinishRule::kVote: {
      auto votes = [&](int j) {
        const auto a = answer_of(calls[j]);
        if (a < 0) return 1;
        int v = 0;
        for (int l = 0; l < n; ++l) v += (calls[l].error == kOk && answer_of(calls[l]) == a);
        return v;
      };
      int best = 0;
      for (int j = 0; j < n; ++j)
        if (calls[j].error == kOk) best = std::max(best, votes(j));
      for (int j = n - 1; j >= 0; --j)
        if (calls[j].error == kOk && votes(j) == best) return j;
      return -1;
    }
  }
  return -1;
}

}  // namespace conductor
