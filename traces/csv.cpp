#include "traces/csv.h"

#include <utility>

#include "core/atomic_file.h"
#include "core/error.h"

namespace conductor {

CsvReader::CsvReader(std::string text, std::string name) : text_(std::move(text)), name_(std::move(name)) {
  if (text_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;  // UTF-8 byte-order mark
}

bool CsvReader::next(CsvRecord& rec) {
  const std::size_t n = text_.size();
  rec.fields.clear();
  // Blank lines between records carry no data: skip them (line numbers still advance).
  while (pos_ < n && (text_[pos_] == '\n' || text_[pos_] == '\r')) {
    if (text_[pos_] == '\r' && pos_ + 1 < n && text_[pos_ + 1] == '\n') ++pos_;
    ++pos_;
    ++line_;
  }
  if (pos_ >= n) return false;
  rec.line = line_;
  std::string field;
  for (;;) {
    const std::size_t column = rec.fields.size() + 1;
    if (pos_ < n && text_[pos_] == '"') {
      const std::size_t open_line = line_;
      ++pos_;
      for (;;) {
        if (pos_ >= n)
          fail(name_, ":", open_line, ": column ", column,
               ": quoted field is never closed (runs to the end of the file)");
        const char c = text_[pos_++];
        if (c == '"') {
          if (pos_ < n && text_[pos_] == '"') {
            field += '"';
            ++pos_;
          } else {
            break;
          }
        } else {
          if (c == '\n') ++line_;
          field += c;
        }
      }
      if (pos_ < n && text_[pos_] != ',' && text_[pos_] != '\n' && text_[pos_] != '\r')
        fail(name_, ":", line_, ": column ", column, ": unexpected character '", text_[pos_],
             "' after a closing quote (expected ',' or the end of the line)");
    } else {
      while (pos_ < n && text_[pos_] != ',' && text_[pos_] != '\n' && text_[pos_] != '\r') {
        if (text_[pos_] == '"')
          fail(name_, ":", line_, ": column ", column,
               ": '\"' inside an unquoted field (quote the whole field and write a quote as \"\")");
        field += text_[pos_++];
      }
    }
    rec.fields.push_back(std::move(field));
    field.clear();
    if (pos_ >= n) return true;
    if (text_[pos_] == ',') {
      ++pos_;
      continue;
    }
    if (text_[pos_] == '\r' && pos_ + 1 < n && text_[pos_ + 1] == '\n') ++pos_;
    ++pos_;
    ++line_;
    return true;
  }
}

int CsvTable::column(const std::string& col) const {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == col) return static_cast<int>(i);
  return -1;
}

void CsvTable::require_columns(const std::vector<std::string>& columns) const {
  std::string missing;
  std::size_t n_missing = 0;
  for (const auto& c : columns) {
    if (column(c) >= 0) continue;
    missing += (n_missing++ ? ", '" : "'") + c + "'";
  }
  if (n_missing == 0) return;
  // Name the columns that are there (the first 12: a wide header would bury the message).
  std::string have;
  for (std::size_t i = 0; i < header.size() && i < 12; ++i) have += (i ? ", '" : "'") + header[i] + "'";
  if (header.size() > 12) have += ", ...";
  fail(name, ":", header_line, ": missing column", n_missing > 1 ? "s " : " ", missing, " (the header has ", header.size(),
       " columns: ", have, ")");
}

CsvTable parse_csv(const std::string& text, const std::string& name) {
  CsvTable t;
  t.name = name;
  CsvReader reader(text, name);
  CsvRecord rec;
  if (!reader.next(rec)) fail(name, ": empty CSV file (expected a header line)");
  t.header = std::move(rec.fields);
  t.header_line = rec.line;
  while (reader.next(rec)) t.rows.push_back(std::move(rec));
  return t;
}

CsvTable read_csv(const std::string& path) { return parse_csv(read_file(path), path); }

}  // namespace conductor
