// HDF5 trace store, format "conductor-traces" version 1 (documented in docs/trace-format.md).
#pragma once

#include <string>

#include "traces/trace_set.h"

namespace conductor {

constexpr int kTraceFormatVersion = 1;
constexpr const char* kTraceFormatName = "conductor-traces";

// Validates `traces`, then writes `path` atomically (temporary file, renamed when complete).
// Datasets are chunked and gzip-compressed.
void write_traces(const TraceSet& traces, const std::string& path);

// Reads and validates `path`. Throws conductor::Error naming the file and the dataset or
// attribute at fault: not HDF5, wrong format or version, missing datasets, inconsistent shapes,
// values out of range.
TraceSet read_traces(const std::string& path);

}  // namespace conductor
