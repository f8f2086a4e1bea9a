// Checkpoints of a training run (docs/training.md):
//   checkpoints/update_NNNNNNNN/  policy.json + the kind's weight files (PolicyModel::save),
//                                 optimizer.pt, state.json[, env_state.bin][, ref.pt]
//   checkpoints/latest            name of the newest complete checkpoint
// Written at update boundaries into a temporary folder renamed into place, `latest` replaced
// atomically afterwards, so a SIGKILL at any moment leaves the previous checkpoint loadable. Old
// checkpoints are renamed out of `update_*` before being deleted; a resume first removes the
// temporaries a killed process left.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/algorithm.h"

namespace conductor {

constexpr int kRunFormatVersion = 1;

// Saves the state of `s` (and the algorithm's persistent environments) as checkpoint s.update,
// keeps the newest `keep`, and returns its folder. metrics_jsonl_bytes is stored so a resume
// truncates metrics.jsonl to what this checkpoint had written.
std::string save_checkpoint(TrainerState& s, Algorithm& algo, const std::string& fingerprint,
                            uint64_t metrics_jsonl_bytes, int keep);

struct ResumedState {
  uint64_t metrics_jsonl_bytes = 0;
  bool exact = true;  // false when an environment could not restore its state
};

// Restores `s` (built from the same config) and the algorithm's environments from `checkpoint_dir`.
// Throws conductor::Error naming the file when it is not a checkpoint of this config and version.
ResumedState load_checkpoint(TrainerState& s, Algorithm& algo, const std::string& checkpoint_dir,
                             const std::string& fingerprint);

// The checkpoints a resume may load, best first: the one checkpoints/latest names, then every other
// complete checkpoint (update_* holding state.json), newest first. Throws conductor::Error when the
// run folder has none.
std::vector<std::string> resume_candidates(const std::string& run_dir);

// Moves a checkpoint that could not be loaded out of the update_* names (to damaged-update_N, kept
// for inspection, never loaded or pruned) and points `latest` at `fallback_dir`, so the resumed run
// writes that update again instead of finding the damaged folder in its way.
void set_aside_damaged_checkpoint(const std::string& damaged_dir, const std::string& fallback_dir);

// Removes what a process killed mid-checkpoint left (checkpoints/.tmp-*, AtomicOutput temporaries).
void remove_stale_temporaries(const std::string& run_dir);

}  // namespace conductor
