// A batch of observations as policies read it: the seam between environments (training, replay,
// serving) and policies of every kind.
//
// One batch carries the same n states in up to two encodings, and the mask:
//  - dense: [n x dense_dim] floats, the vector encoding (MLP policies);
//  - states: [n] ConductorStateView, the structured state itself (query text, pool, prices, calls
//    and their results), from which a policy renders its own encoding (the transformer conductor
//    renders a prompt and tokenizes it). Null for environments without a conductor state.
//  - mask: [n x n_actions], 1 = allowed. Always present.
// All pointers are borrowed: they stay valid until the producer's next step/reset/record.
// A policy states what it needs (Policy::needs()); producers that cannot supply it are refused
// before anything runs, with a message naming both.
#pragma once

#include <cstdint>

namespace conductor {

struct ConductorStateView;  // world/conductor_state.h

struct ObsBatch {
  int n = 0;
  int n_actions = 0;
  const uint8_t* mask = nullptr;                // [n x n_actions]
  const float* dense = nullptr;                 // [n x dense_dim], or null
  int dense_dim = 0;
  const ConductorStateView* states = nullptr;   // [n], or null

  // Row i alone (a batch of one).
  ObsBatch row(int i) const;
};

// A batch of dense rows and masks (no state views).
inline ObsBatch dense_batch(const float* dense, const uint8_t* mask, int n, int dense_dim, int n_actions) {
  ObsBatch b;
  b.n = n;
  b.n_actions = n_actions;
  b.mask = mask;
  b.dense = dense;
  b.dense_dim = dense_dim;
  return b;
}

// What a policy reads from an ObsBatch.
struct ObsNeeds {
  int dense_dim = 0;    // > 0: the dense encoding with exactly this many floats per row
  bool states = false;  // the conductor state views
};

}  // namespace conductor
