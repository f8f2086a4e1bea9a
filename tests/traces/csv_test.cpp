// RFC 4180 reader: quoting, embedded line breaks, doubled quotes, line numbers, malformed input.
#include "traces/csv.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace conductor {
namespace {

std::vector<CsvRecord> read_all(const std::string& text) {
  CsvReader r(text, "t.csv");
  std::vector<CsvRecord> out;
  CsvRecord rec;
  while (r.next(rec)) out.push_back(rec);
  return out;
}

std::string error_of(const std::string& text) {
  try {
    read_all(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Csv, PlainFieldsAndLineNumbers) {
  const auto recs = read_all("a,b,c\n1,2,3\n4,,6\n");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1].fields, (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(recs[2].fields, (std::vector<std::string>{"4", "", "6"}));
  EXPECT_EQ(recs[0].line, 1u);
  EXPECT_EQ(recs[2].line, 3u);
}

TEST(Csv, QuotedFieldsWithCommasNewlinesAndDoubledQuotes) {
  // Record 2 spans lines 2-4; record 3 starts on line 5.
  const auto recs = read_all("id,text\n1,\"a, \"\"b\"\"\nline two\nline three\"\n2,\"\"\n");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1].fields[1], "a, \"b\"\nline two\nline three");
  EXPECT_EQ(recs[1].line, 2u);
  EXPECT_EQ(recs[2].line, 5u);
  EXPECT_EQ(recs[2].fields, (std::vector<std::string>{"2", ""}));
}

TEST(Csv, CrlfBomNoFinalNewlineAndBlankLines) {
  const auto recs = read_all("\xEF\xBB\xBFx,y\r\n1,2\r\n\r\n3,\"4\"");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].fields[0], "x");  // the byte-order mark is not part of the first field
  EXPECT_EQ(recs[1].fields, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(recs[2].fields, (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(recs[2].line, 4u);  // the blank line 3 is skipped but counted
}

TEST(Csv, TrailingEmptyField) {
  const auto recs = read_all("a,\n");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].fields, (std::vector<std::string>{"a", ""}));
}

TEST(Csv, MalformedInputNamesFileLineAndColumn) {
  EXPECT_EQ(error_of("a,b\n1,\"open\nstill open\n"),
            "t.csv:2: column 2: quoted field is never closed (runs to the end of the file)");
  EXPECT_EQ(error_of("a,b\n1,2\n3,x\"y\n"),
            "t.csv:3: column 2: '\"' inside an unquoted field (quote the whole field and write a quote as \"\")");
  EXPECT_EQ(error_of("a,b\n\"q\"x,2\n"),
            "t.csv:2: column 1: unexpected character 'x' after a closing quote (expected ',' or the end of the line)");
}

TEST(Csv, TableColumnsAndMissingColumns) {
  const CsvTable t = parse_csv("\nid,score\n1,0.5\n", "t.csv");
  EXPECT_EQ(t.header_line, 2u);
  EXPECT_EQ(t.column("score"), 1);
  EXPECT_EQ(t.column("nope"), -1);
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0].line, 3u);
  try {
    t.require_columns({"id", "prompt", "eval_name"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "t.csv:2: missing columns 'prompt', 'eval_name' (the header has 2 columns: 'id', 'score')");
  }
  EXPECT_THROW(parse_csv("", "empty.csv"), Error);
}

}  // namespace
}  // namespace conductor
