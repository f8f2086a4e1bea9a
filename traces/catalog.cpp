#include "traces/catalog.h"

#include <regex>
#include <set>

namespace conductor {

namespace {
constexpr const char* kDomainNames[kNumDomains] = {"math", "code", "knowledge", "reasoning", "writing"};
const std::vector<std::string> kSizeClasses = {"frontier", "mid", "small", "specialist"};
}  // namespace

const char* domain_name(Domain d) {
  const int i = static_cast<int>(d);
  CONDUCTOR_CHECK(i >= 0 && i < kNumDomains, "domain ", i);
  return kDomainNames[i];
}

int domain_index(const std::string& name) {
  for (int i = 0; i < kNumDomains; ++i)
    if (name == kDomainNames[i]) return i;
  return -1;
}

LatencyModel LatencyModel::parse(ConfigReader r) {
  LatencyModel m;
  m.fitted_from = r.get<std::string>("fitted_from", "");
  m.ttft_mu = r.required_in<double>("ttft_mu", -20.0, 20.0);
  m.ttft_sigma = r.required_in<double>("ttft_sigma", 0.0, 10.0);
  m.throughput_mu = r.required_in<double>("throughput_mu", -20.0, 20.0);
  m.throughput_sigma = r.required_in<double>("throughput_sigma", 0.0, 10.0);
  m.ttft_scale = r.get_in<double>("ttft_scale", 1.0, 1e-6, 1e6);
  m.throughput_scale = r.get_in<double>("throughput_scale", 1.0, 1e-6, 1e6);
  r.finish();
  return m;
}

AvailabilityModel AvailabilityModel::parse(ConfigReader r) {
  AvailabilityModel a;
  a.outages_per_hour = r.get_in<double>("outages_per_hour", 0.0, 0.0, 3600.0);
  a.outage_mean_minutes = r.get_in<double>("outage_mean_minutes", 0.0, 0.0, 1e6);
  if (a.outages_per_hour > 0 && a.outage_mean_minutes <= 0)
    r.fail_at("outage_mean_minutes", "must be > 0 when outages_per_hour > 0");
  a.server_error_rate = r.get_in<double>("server_error_rate", 0.0, 0.0, 1.0);
  a.rate_limit_rate = r.get_in<double>("rate_limit_rate", 0.0, 0.0, 1.0);
  if (a.server_error_rate + a.rate_limit_rate > 1.0)
    r.fail_at("rate_limit_rate", "server_error_rate + rate_limit_rate must be <= 1");
  a.timeout_s = r.get_in<double>("timeout_s", 60.0, 1e-3, 1e6);
  r.finish();
  return a;
}

SkillModel SkillModel::parse(ConfigReader r) {
  SkillModel s;
  for (int d = 0; d < kNumDomains; ++d) s.skill[d] = r.required_in<double>(kDomainNames[d], -10.0, 10.0);
  s.discrimination = r.get_in<double>("discrimination", 1.5, 1e-3, 20.0);
  s.verbosity = r.get_in<double>("verbosity", 1.0, 1e-3, 100.0);
  r.finish();
  return s;
}

WorkerSpec WorkerSpec::parse(ConfigReader r) {
  WorkerSpec w;
  w.id = r.required<std::string>("id");
  if (w.id.empty()) r.fail_at("id", "must not be empty");
  w.provider = r.required<std::string>("provider");
  w.pricing_key = r.get<std::string>("pricing_key", "");
  w.price_in_per_mtok = r.required_in<double>("price_in_per_mtok", 0.0, 1e6);
  w.price_out_per_mtok = r.required_in<double>("price_out_per_mtok", 0.0, 1e6);
  w.context_window = r.get_in<int64_t>("context_window", 0, 0, int64_t(1) << 40);
  w.size_class = r.get_choice("size_class", "mid", kSizeClasses);
  w.latency = LatencyModel::parse(r.child("latency"));
  w.availability = AvailabilityModel::parse(r.child("availability"));
  w.skill = SkillModel::parse(r.child("skill"));
  r.finish();
  return w;
}

Catalog Catalog::parse(ConfigReader r) {
  Catalog c;
  c.pricing_snapshot = r.required<std::string>("pricing_snapshot");
  static const std::regex date_re(R"(^\d{4}-\d{2}-\d{2}$)");
  if (!std::regex_match(c.pricing_snapshot, date_re))
    r.fail_at("pricing_snapshot", "expected a date YYYY-MM-DD, got '" + c.pricing_snapshot + "'");
  if (!r.has("workers")) r.fail_at("workers", "required key is missing (expected a list of workers)");
  auto list = r.child_list("workers");
  if (list.empty()) r.fail_at("workers", "expected at least one worker");
  std::set<std::string> seen;
  for (auto& wr : list) {
    const std::string where = wr.where("id");
    WorkerSpec w = WorkerSpec::parse(wr);
    if (!seen.insert(w.id).second) throw ConfigError(where + ": duplicate worker id '" + w.id + "'");
    c.workers.push_back(std::move(w));
  }
  r.finish();
  return c;
}

int Catalog::index_of(const std::string& id) const {
  for (std::size_t i = 0; i < workers.size(); ++i)
    if (workers[i].id == id) return static_cast<int>(i);
  return -1;
}

Catalog load_catalog(const std::string& path) {
  ConfigDoc doc = ConfigDoc::load_file(path);
  Catalog c = Catalog::parse(doc.root());
  c.name = path;
  return c;
}

Catalog parse_catalog(const std::string& yaml_text, const std::string& name) {
  ConfigDoc doc = ConfigDoc::load_string(yaml_text, name);
  Catalog c = Catalog::parse(doc.root());
  c.name = name;
  return c;
}

Catalog default_catalog() { return parse_catalog(default_catalog_yaml(), "<embedded configs/catalog.yaml>"); }

}  // namespace conductor

// default_catalog_yaml() is generated at build time from configs/catalog.yaml (traces/CMakeLists.txt),
// so the embedded default can never drift from the shipped file.
