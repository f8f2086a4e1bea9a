// The sentence encoder as a query feature (features.encoder, docs/encoder.md): embeddings of a trace
// file's queries, computed once and stored with the traces (/queries/embedding), and the live
// embedding of each served request for an export whose features read it.
//
// The embedding is llm::SentenceEncoder::encode of the query text (f32, CPU). The traces and the
// export name the encoder by the sha256 of its weights (encoder_weights_sha256, world/featurizer.h),
// so features fitted on one model's embeddings are never fed another model's.
#pragma once

#include <cstdint>
#include <string>

#include "core/json_util.h"

namespace conductor {

struct TraceSet;
class ConductorLiveWorld;

// Embeds the text of every query of `traces` (all splits) with the sentence-transformers directory
// `model_dir`, `batch_size` texts per forward, and stores them as /queries/embedding with the
// encoder's name and weights sha256 (replacing any earlier embedding). Needs /queries/text.
// Returns {model, name, sha256, dim, queries, seconds}.
json embed_trace_queries(TraceSet& traces, const std::string& model_dir, int64_t batch_size = 32);

// For a world whose features read the query's embedding: loads the encoder its export names
// (featurizer().encoder().model), refuses it with a clear error when its weights' sha256 or its
// dimension differ from the export's, and installs it as the world's embedder (one encode per
// request, one request at a time). Returns false (and loads nothing) when the features read no embedding.
bool attach_query_encoder(ConductorLiveWorld& world);

}  // namespace conductor
