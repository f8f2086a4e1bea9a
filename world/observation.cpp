#include "world/observation.h"

#include "world/conductor_state.h"

namespace conductor {

ObsBatch ObsBatch::row(int i) const {
  ObsBatch r = *this;
  r.n = 1;
  r.mask = mask + static_cast<long>(i) * n_actions;
  if (dense) r.dense = dense + static_cast<long>(i) * dense_dim;
  if (states) r.states = states + i;
  return r;
}

}  // namespace conductor
