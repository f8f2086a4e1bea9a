// RFC 4180 CSV reader that keeps line numbers, for error messages that point at the input.
//
// Accepted: fields separated by ','; records ended by LF, CRLF or CR; a field may be quoted with '"',
// and a quoted field may hold ',', line breaks and doubled quotes ("" = one '"'). Also accepted
// beyond RFC 4180 (as Python's csv module does): a UTF-8 byte-order mark at the start, a missing
// final line break, and blank lines between records, which are skipped.
// Rejected with "FILE:LINE: ..." errors: a quote inside an unquoted field, characters after a closing
// quote, a quoted field that is never closed (the line where it opened is named).
// Fields are returned verbatim (a line break inside a quoted field is kept as it was written).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace conductor {

struct CsvRecord {
  std::vector<std::string> fields;
  std::size_t line = 0;  // 1-based physical line on which the record starts
};

class CsvReader {
 public:
  // `name` (usually the file path) prefixes every error message.
  CsvReader(std::string text, std::string name);
  // Reads the next record into `rec`; false at the end of the input. Throws conductor::Error on
  // malformed input.
  bool next(CsvRecord& rec);

 private:
  std::string text_;
  std::string name_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
};

// A whole CSV file: the first record is the header.
struct CsvTable {
  std::string name;
  std::vector<std::string> header;
  std::size_t header_line = 1;
  std::vector<CsvRecord> rows;
  // Index of the column named `column`, or -1.
  int column(const std::string& column) const;
  // Throws "NAME: missing column(s) 'a', 'b' (header has N columns: ...)" unless every name exists.
  void require_columns(const std::vector<std::string>& columns) const;
};

// Parses `text`; throws on malformed CSV or an empty input (no header).
CsvTable parse_csv(const std::string& text, const std::string& name);
// Reads and parses the file at `path` (the path names the input in errors).
CsvTable read_csv(const std::string& path);

}  // namespace conductor
