#include "world/finish_rules.h"

namespace conductor {

const char* finish_rule_name(FinishRule r) {
  switch (r) {
    case FinishRule::kLast: return "last";
    case FinishRule::kVote: return "vote";
    case FinishRule::kMostTrusted: return "most_trusted";
  }
  return "?";
}

bool parse_finish_rule(const std::string& s, FinishRule* out) {
  if (s == "last") *out = FinishRule::kLast;
  else if (s == "vote") *out = FinishRule::kVote;
  else if (s == "most_trusted" || s == "most-trusted") *out = FinishRule::kMostTrusted;
  else return false;
  return true;
}

}  // namespace conductor
