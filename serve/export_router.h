// The router of an export directory (`conductor export`): what `conductor serve` and the serving
// benchmarks (bench/cmd_bench_serve.cpp) route with.
#pragma once

#include <memory>
#include <string>

#include "serve/router.h"

namespace conductor::serve {

// Loads the export (policy, manifest, model version) and the live world of its manifest, with the
// query encoder of features.encoder attached (sha256 checked). Throws naming manifest.json when the
// export is not one of a conductor-env checkpoint (no 'world').
std::shared_ptr<Router> router_for_export(const std::string& dir);

}  // namespace conductor::serve
