#include "serve/export_router.h"

#include "core/error.h"
#include "envs/conductor_live.h"
#include "policies/export.h"
#include "policies/query_encoder.h"

namespace conductor::serve {

std::shared_ptr<Router> router_for_export(const std::string& dir) {
  LoadedExport e = load_export_bundle(dir);
  const json& world = e.manifest["world"];
  if (world.is_null())
    fail(dir, "/manifest.json: missing field 'world' (the workers and features a conductor routes with; "
         "env_id is '", e.manifest.value("env_id", "?"), "'): serving needs an export of a conductor-env checkpoint, "
         "made by `conductor export`");
  auto live = ConductorLiveWorld::from_spec(world, dir + "/manifest.json");
  attach_query_encoder(*live);  // features.encoder: the live embedding of each request (sha256 checked)
  return std::make_shared<Router>(e.policy, live, e.model_version);
}

}  // namespace conductor::serve
