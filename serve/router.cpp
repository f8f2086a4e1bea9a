#include "serve/router.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "serve/http_server.h"

namespace conductor::serve {

namespace {
[[noreturn]] void bad(const std::string& msg) { throw HttpError(400, msg); }

std::string type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a number";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    default: return "an unsupported value";
  }
}
}  // namespace

std::string ExplorationConfig::id() const {
  switch (mode) {
    case Mode::kGreedy: return "greedy";
    case Mode::kSample: return "sample";
    case Mode::kEpsilon: {
      char buf[48];
      std::snprintf(buf, sizeof buf, "epsilon:%g", epsilon);
      return buf;
    }
  }
  return "greedy";
}

ExplorationConfig ExplorationConfig::parse(ConfigReader r) {
  ExplorationConfig c;
  const bool has_eps = r.has("epsilon");
  const bool sample = r.get<bool>("sample", false);
  if (has_eps && sample) r.fail_at("sample", "give either epsilon or sample: true, not both");
  if (has_eps) {
    c.epsilon = r.required_in<double>("epsilon", 0.0, 1.0);
    c.mode = c.epsilon > 0 ? Mode::kEpsilon : Mode::kGreedy;
  } else if (sample) {
    c.mode = Mode::kSample;
  }
  c.seed = r.get<uint64_t>("seed", 0);
  r.finish();
  return c;
}

Router::Router(std::shared_ptr<const Policy> policy, std::shared_ptr<const LiveWorld> world, std::string model_version)
    : policy_(std::move(policy)), world_(std::move(world)), model_version_(std::move(model_version)) {
  CONDUCTOR_CHECK(policy_ && world_, "Router needs a policy and a world");
  check_obs_fits(*policy_, "the export's policy", world_->start(LiveQuery{})->observation(),
                 "the serving world of its manifest (the export's featurizer or worker list does not match its model)");
  if (static_cast<int>(world_->actions().size()) != world_->n_actions())
    fail("the serving world names ", world_->actions().size(), " actions but has ", world_->n_actions());
}

int Router::worker_index(const std::string& name) const {
  const auto& w = world_->workers();
  for (std::size_t i = 0; i < w.size(); ++i)
    if (w[i] == name) return static_cast<int>(i);
  return -1;
}

int Router::known_worker(const std::string& name, const std::string& field) const {
  const int w = worker_index(name);
  if (w < 0) {
    std::string known;
    for (const auto& n : world_->workers()) known += (known.empty() ? "" : ", ") + n;
    bad(field + ": unknown worker '" + name + "' (known: " + known + ")");
  }
  return w;
}

LiveQuery Router::parse_route_request(const std::string& body) const {
  json j;
  try {
    j = parse_json_body(body);
  } catch (const JsonBodyError& e) {
    bad(e.what());
  }
  if (!j.is_object()) bad("request body must be a JSON object, got " + type_name(j));
  LiveQuery q;
  const std::size_t n_workers = world_->workers().size();
  q.available.assign(n_workers, 1);
  bool has_query = false;
  for (const auto& [key, v] : j.items()) {
    if (key == "query") {
      if (!v.is_string()) bad("'query' must be a string, got " + type_name(v));
      q.text = v.get<std::string>();
      if (q.text.find_first_not_of(" \t\r\n") == std::string::npos)
        bad("'query' must be a non-empty string (the text to route), got " + v.dump().substr(0, 60));
      has_query = true;
    } else if (key == "available") {
      if (!v.is_array()) bad("'available' must be an array of worker names, got " + type_name(v));
      if (v.empty()) bad("'available' must name at least one worker");
      q.available.assign(n_workers, 0);
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_string())
          bad("'available[" + std::to_string(i) + "]' must be a string, got " + type_name(v[i]));
        const std::string name = v[i].get<std::string>();
        const int w = known_worker(name, "'available[" + std::to_string(i) + "]'");
        if (q.available[w]) bad("'available' names worker '" + name + "' twice");
        q.available[w] = 1;
      }
    } else if (key == "budget_usd") {
      if (v.is_null()) continue;
      if (!v.is_number()) bad("'budget_usd' must be a number, got " + type_name(v));
      const double b = v.get<double>();
      if (!std::isfinite(b) || b < 0) bad("'budget_usd' must be a finite number >= 0, got " + v.dump());
      q.budget_usd = b;
    } else if (key == "cost_weight") {
      if (v.is_null()) continue;
      double lo = 0, hi = 0, def = 0;
      if (!world_->cost_weight_range(&lo, &hi, &def))
        bad("'cost_weight' needs a cost-conditioned policy (env.reward.w_cost_range); this one was trained for a "
            "single cost weight");
      if (!v.is_number()) bad("'cost_weight' must be a number, got " + type_name(v));
      const double w = v.get<double>();
      if (!(w >= lo && w <= hi))
        bad("'cost_weight' must lie in [" + json(lo).dump() + ", " + json(hi).dump() +
            "] (the range the policy was trained on), got " + v.dump());
      q.cost_weight = w;
    } else if (key == "price_factors") {
      if (v.is_null()) continue;
      if (!v.is_object()) bad("'price_factors' must be an object {worker: current price / list price}, got " + type_name(v));
      q.price_factor.assign(n_workers, 1.0);
      for (const auto& [name, f] : v.items()) {
        const int w = known_worker(name, "'price_factors'");
        if (!f.is_number() || !std::isfinite(f.get<double>()) || f.get<double>() < 0 || f.get<double>() > 1e6)
          bad("'price_factors." + name + "' must be a number in [0, 1e6] (current price / list price), got " + f.dump());
        q.price_factor[w] = f.get<double>();
      }
    } else if (key == "task") {
      if (!v.is_string()) bad("'task' must be a string, got " + type_name(v));
      q.task = v.get<std::string>();
      const std::vector<std::string> known = world_->tasks();
      if (!q.task.empty() && !known.empty() && std::find(known.begin(), known.end(), q.task) == known.end()) {
        std::string list;
        for (const auto& t : known) list += (list.empty() ? "" : ", ") + t;
        bad("'task': unknown task '" + q.task.substr(0, 80) + "' (the policy knows: " + list +
            "; leave 'task' out when it is unknown)");
      }
    } else if (key == kQueryIdField) {
      if (!v.is_string() || v.get_ref<const std::string&>().empty() || v.get_ref<const std::string&>().size() > 256)
        bad("'query_id' must be a non-empty string of at most 256 bytes, got " + v.dump().substr(0, 60));
    } else if (key == "input_tokens") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (1 << 30))
        bad("'input_tokens' must be an integer in [0, 2^30], got " + v.dump());
      q.input_tokens = v.get<int>();
    } else {
      bad("unknown field '" + key +
          "' (expected query, query_id, available, budget_usd, cost_weight, price_factors, task, input_tokens)");
    }
  }
  if (!has_query) bad("missing field 'query' (a string)");
  return q;
}

Decision Router::decide(const LiveEpisode& episode, const ExplorationConfig& x, Rng& rng) const {
  Decision d = decide(episode);
  d.greedy_action = d.action;
  if (x.mode == ExplorationConfig::Mode::kGreedy) return d;
  const int na = world_->n_actions();
  std::vector<int> allowed;
  for (int a = 0; a < na; ++a)
    if (d.mask[a]) allowed.push_back(a);
  if (x.mode == ExplorationConfig::Mode::kEpsilon) {
    const double n = static_cast<double>(allowed.size());
    if (rng.uniform() < x.epsilon) d.action = allowed[rng.below(allowed.size())];
    d.propensity = (1.0 - x.epsilon) * (d.action == d.greedy_action ? 1.0 : 0.0) + x.epsilon / n;
  } else {
    d.action = sample_masked(d.probs.data(), d.mask.data(), na, rng.uniform());
    d.propensity = static_cast<double>(d.probs[d.action]);
  }
  CONDUCTOR_CHECK(d.propensity > 0 && d.mask[d.action], "exploration drew action ", d.action, " with propensity ",
                  d.propensity);
  return d;
}

Decision Router::decide(const LiveEpisode& episode) const {
  const int na = world_->n_actions();
  const ObsBatch obs = episode.observation();
  bool any = false;
  for (int a = 0; a < na; ++a) any = any || obs.mask[a];
  if (!any)
    throw HttpError(422, "no action is allowed for this request (every worker unavailable or over budget)");
  Decision d;
  d.probs.assign(static_cast<std::size_t>(na), 0.f);
  int32_t a = -1;
  policy_->act(obs, ActOptions{/*greedy=*/true, 0}, &a, d.probs.data());
  CONDUCTOR_CHECK(a >= 0 && a < na && obs.mask[a], "policy returned a masked action ", a);
  d.action = a;
  d.greedy_action = a;
  d.mask.assign(obs.mask, obs.mask + na);
  return d;
}

json Router::route(const LiveQuery& query, Decision* decision_out) const {
  Rng unused(0);
  return route(query, ExplorationConfig{}, unused, decision_out);
}

json Router::route(const LiveQuery& query, const ExplorationConfig& exploration, Rng& rng, Decision* decision_out) const {
  auto episode = world_->start(query);
  Decision d = decide(*episode, exploration, rng);
  const auto& actions = world_->actions();
  bool can_call = false;
  for (int a = 0; a < world_->n_actions(); ++a)
    can_call = can_call || (d.mask[a] && actions[a].kind == ActionInfo::Kind::kCall);
  if (!can_call)
    throw HttpError(422, "no worker can be called for this request: every worker is unavailable or over the budget");
  auto describe = [&](int a) {
    const ActionInfo& info = actions[a];
    json j = {{"index", a}, {"name", info.name}};
    if (info.kind == ActionInfo::Kind::kCall) {
      j["kind"] = "call";
      j["worker"] = world_->workers()[info.worker];
    } else {
      j["kind"] = "finish";
      j["rule"] = info.finish_rule;
    }
    return j;
  };
  json probs = json::object();
  for (int a = 0; a < world_->n_actions(); ++a) probs[actions[a].name] = d.probs[a];
  json plan = json::array({describe(d.action)});
  // A one-step policy's whole workflow is its single call followed by the environment's finish.
  const bool complete = world_->max_steps() == 1 || actions[d.action].kind == ActionInfo::Kind::kFinish;
  json out = {{"model_version", model_version_},
              {"action", describe(d.action)},
              {"plan", plan},
              {"plan_complete", complete},
              {"max_steps", world_->max_steps()},
              {"probabilities", probs},
              {"propensity", d.propensity}};
  if (decision_out) *decision_out = std::move(d);
  return out;
}

}  // namespace conductor::serve
