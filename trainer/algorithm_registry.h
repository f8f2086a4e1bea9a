// Algorithms by id (the `algo` key of a run config), each with its own config section: an algorithm
// is its own file (its settings struct and parse, the Algorithm subclass, an AlgorithmKind) plus one
// line in the built-in list of trainer/algorithm.cpp; a test registers a toy with register_algorithm.
// Torch-free, so run_config.h can hold the parsed sections (the Algorithm interface itself is in
// trainer/algorithm.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"

namespace conductor {

class Algorithm;   // trainer/algorithm.h
struct RunConfig;  // trainer/run_config.h

// An algorithm's own settings: the keys of its section of the run config.
struct AlgorithmSettings {
  virtual ~AlgorithmSettings() = default;
};

struct AlgorithmKind {
  // The top-level key of the algorithm's section (e.g. "ppo"), or "" when it has none. Every
  // registered section is parsed (and its keys checked) whichever algorithm runs, in registration
  // order, right after `algo`.
  std::string section;
  // Reads the section's keys and calls r.finish(); returns the typed settings. Null when no section.
  std::function<std::shared_ptr<const AlgorithmSettings>(ConfigReader r)> parse;
  // Builds the algorithm for a parsed run config; throws ConfigError when a constraint across
  // sections fails (e.g. ppo: the minibatches divide the batch). Run once at parse time to check.
  std::function<std::unique_ptr<Algorithm>(const RunConfig& cfg)> make;
};

// Registers `id` (a later registration of the same id replaces the earlier one: tests).
void register_algorithm(const std::string& id, AlgorithmKind kind);
// Sorted ids, for the `algo` choice.
std::vector<std::string> algorithm_ids();
// Ids in registration order (built-ins first), as their sections are parsed.
std::vector<std::string> algorithm_ids_in_order();
// The kind of `id`; throws conductor::Error naming the known ids when there is none.
AlgorithmKind algorithm_kind(const std::string& id);

}  // namespace conductor
