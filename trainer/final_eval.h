// The final evaluation of a run (final_eval in the run config): greedy policy versus the env's best
// fixed strategy on the same episodes. eval/<stat> and eval/expert_<stat> metrics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "trainer/algorithm.h"

namespace conductor {

Metrics final_evaluation(TrainerState& state, const std::string& resolved_yaml);

// Environment steps one evaluation pass may take before it is declared stuck: 4x the most the
// episodes it runs can take, plus 100000. Those are `episodes`, or with pass_queries > 0 (an
// environment that reports the "pass" extra and replays a split of that many queries, one per
// episode) the whole pass and the episode that shows it ended, whatever `episodes` says.
int64_t final_eval_step_cap(int episodes, int max_episode_steps, std::size_t pass_queries);

}  // namespace conductor
