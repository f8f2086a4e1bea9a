// The final evaluation of a run (final_eval in the run config): greedy policy versus the env's best
// fixed strategy on the same episodes. eval/<stat> and eval/expert_<stat> metrics.
#pragma once

#include <string>

#include "trainer/algorithm.h"

namespace conductor {

Metrics final_evaluation(TrainerState& state, const std::string& resolved_yaml);

}  // namespace conductor
