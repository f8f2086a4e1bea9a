// LiteLLM's public price table (model_prices_and_context_window.json), the source of the catalog's
// prices (e.g. ../shared/data/pricing/model_prices_and_context_window.2026-07-24.json).
//
// The table maps a model key ("gpt-5", "gemini/gemini-2.5-flash", "groq/llama-3.1-8b-instant", ...)
// to input_cost_per_token and output_cost_per_token in USD; we convert to USD per 1M tokens, the
// unit of the catalog and the trace store. The "sample_spec" entry documents the schema and is skipped,
// as are top-level values that are not objects (metadata of the mirror, listed by metadata_keys()).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace conductor {

struct ModelPrice {
  std::string key;
  double input_per_mtok = 0.0;   // NaN when the entry has no input_cost_per_token
  double output_per_mtok = 0.0;  // NaN when the entry has no output_cost_per_token
  int64_t max_input_tokens = -1; // -1 when absent
  std::string provider;          // litellm_provider, "" when absent
  std::string mode;              // "chat", "embedding", ... "" when absent
};

class PriceTable {
 public:
  // Reads the JSON; throws conductor::Error naming the file (and the key and field at fault when an
  // entry has a cost that is not a number).
  static PriceTable load(const std::string& path);

  // nullptr when `key` is not in the table.
  const ModelPrice* find(const std::string& key) const;
  std::size_t size() const { return prices_.size(); }
  const std::string& path() const { return path_; }
  // Top-level keys whose value is not an object (metadata such as "last_updated"), skipped.
  const std::vector<std::string>& metadata_keys() const { return metadata_keys_; }

 private:
  std::string path_;
  std::vector<std::string> metadata_keys_;
  std::map<std::string, ModelPrice> prices_;
};

struct PriceMismatch {
  std::string worker;
  std::string message;  // e.g. "price_in_per_mtok 1.3 != 1.25 in the table for key 'gpt-5'"
};

struct Catalog;
// Compares every catalog worker that names a pricing_key with the table (relative tolerance 1e-9).
// Workers without a pricing_key are reported as mismatches too (every shipped price must be sourced).
std::vector<PriceMismatch> check_catalog_prices(const Catalog& catalog, const PriceTable& table);

}  // namespace conductor
