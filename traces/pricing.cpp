#include "traces/pricing.h"

#include <cmath>
#include <limits>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_util.h"
#include "traces/catalog.h"

namespace conductor {

namespace {
double per_mtok(const json& entry, const char* field, const std::string& where) {
  auto it = entry.find(field);
  if (it == entry.end() || it->is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (!it->is_number()) fail(where, ": field '", field, "': expected a number (USD per token), got ", it->dump());
  return it->get<double>() * 1e6;
}
}  // namespace

PriceTable PriceTable::load(const std::string& path) {
  const json doc = parse_json(read_file(path), path);
  if (!doc.is_object()) fail(path, ": expected a JSON object mapping model keys to entries, got ", doc.type_name());
  PriceTable t;
  t.path_ = path;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() == "sample_spec") continue;
    const std::string where = path + ": key '" + it.key() + "'";
    const json& e = it.value();
    // Top-level scalars are metadata of the mirror (e.g. "last_updated"), not model entries.
    if (!e.is_object()) {
      t.metadata_keys_.push_back(it.key());
      continue;
    }
    ModelPrice p;
    p.key = it.key();
    p.input_per_mtok = per_mtok(e, "input_cost_per_token", where);
    p.output_per_mtok = per_mtok(e, "output_cost_per_token", where);
    auto mi = e.find("max_input_tokens");
    if (mi != e.end() && mi->is_number_integer()) p.max_input_tokens = mi->get<int64_t>();
    auto pr = e.find("litellm_provider");
    if (pr != e.end() && pr->is_string()) p.provider = pr->get<std::string>();
    auto mo = e.find("mode");
    if (mo != e.end() && mo->is_string()) p.mode = mo->get<std::string>();
    t.prices_.emplace(p.key, std::move(p));
  }
  if (t.prices_.empty()) fail(path, ": no model entries");
  return t;
}

const ModelPrice* PriceTable::find(const std::string& key) const {
  auto it = prices_.find(key);
  return it == prices_.end() ? nullptr : &it->second;
}

std::vector<PriceMismatch> check_catalog_prices(const Catalog& catalog, const PriceTable& table) {
  std::vector<PriceMismatch> out;
  auto close = [](double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(1.0, std::fabs(b)); };
  for (const auto& w : catalog.workers) {
    if (w.pricing_key.empty()) {
      out.push_back({w.id, "no pricing_key: the price is not sourced from " + table.path()});
      continue;
    }
    const ModelPrice* p = table.find(w.pricing_key);
    if (!p) {
      out.push_back({w.id, "pricing_key '" + w.pricing_key + "' is not in " + table.path()});
      continue;
    }
    if (!close(w.price_in_per_mtok, p->input_per_mtok))
      out.push_back({w.id, detail::concat("price_in_per_mtok ", w.price_in_per_mtok, " != ", p->input_per_mtok,
                                          " in the table for key '", w.pricing_key, "'")});
    if (!close(w.price_out_per_mtok, p->output_per_mtok))
      out.push_back({w.id, detail::concat("price_out_per_mtok ", w.price_out_per_mtok, " != ", p->output_per_mtok,
                                          " in the table for key '", w.pricing_key, "'")});
  }
  return out;
}

}  // namespace conductor
