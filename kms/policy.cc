#include "kms/policy.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "common/json.h"

namespace cloister::kms {
namespace {

using nlohmann::json;

// The two policy language versions AWS accepts; a missing Version means "2008-10-17".
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_version.html
constexpr std::string_view kVersion2012 = "2012-10-17";
constexpr std::string_view kVersion2008 = "2008-10-17";

// ASCII case folding (IAM's IgnoreCase operators and names; no locale).
constexpr char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

// Matches `text` against `pattern`, where '*' matches any run (including none) and '?' exactly one
// character (IAM "StringLike" and Action/Resource wildcards). Greedy with one backtrack point,
// so the cost is O(|pattern| * |text|) at worst and no recursion.
bool WildcardMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0;
  size_t star = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_t = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool IsAccountId(std::string_view s) {
  return s.size() == 12 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Splits an ARN "arn:partition:service:region:account:resource" into its six fields.
bool SplitArn(std::string_view arn, std::vector<std::string_view>& fields) {
  fields.clear();
  size_t start = 0;
  for (int i = 0; i < 5; ++i) {
    size_t colon = arn.find(':', start);
    if (colon == std::string_view::npos) return false;
    fields.push_back(arn.substr(start, colon - start));
    start = colon + 1;
  }
  fields.push_back(arn.substr(start));
  return fields[0] == "arn" && !fields[1].empty() && !fields[2].empty();
}

enum class Operator {
  kStringEquals,
  kStringNotEquals,
  kStringEqualsIgnoreCase,
  kStringNotEqualsIgnoreCase,
  kStringLike,
  kStringNotLike,
  kNull,
  kBool,
};

struct OperatorName {
  std::string_view name;
  Operator op;
  bool negated;
};

// The supported subset of the IAM condition operators.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
constexpr OperatorName kOperators[] = {
    {"StringEquals", Operator::kStringEquals, false},
    {"StringNotEquals", Operator::kStringNotEquals, true},
    {"StringEqualsIgnoreCase", Operator::kStringEqualsIgnoreCase, false},
    {"StringNotEqualsIgnoreCase", Operator::kStringNotEqualsIgnoreCase, true},
    {"StringLike", Operator::kStringLike, false},
    {"StringNotLike", Operator::kStringNotLike, true},
    {"Null", Operator::kNull, false},
    {"Bool", Operator::kBool, false},
};

enum class SetQualifier { kNone, kForAnyValue, kForAllValues };

constexpr std::string_view kForAnyValuePrefix = "ForAnyValue:";
constexpr std::string_view kForAllValuesPrefix = "ForAllValues:";
constexpr std::string_view kIfExistsSuffix = "IfExists";

}  // namespace

namespace policy_internal {

// One condition key tested by one operator: {"StringEquals": {"kms:CallerAccount": [..]}}.
struct Clause {
  Operator op;
  bool negated;
  SetQualifier qualifier;
  bool if_exists;
  std::string key;                  // lower-cased
  std::vector<std::string> values;  // Bool values lower-cased; Null values "true"/"false"
  std::string written;              // "<operator as written> <key as written>", for lint
};

struct Principals {
  bool any = false;
  std::vector<std::string> accounts;  // from "arn:...:iam::<account>:root" or a bare account id
  std::vector<std::string> arns;      // exact principal ARNs
  // For each IAM role principal "arn:P:iam::A:role/<path/>R": "arn:P:sts::A:assumed-role/R/",
  // the prefix of the ARNs of its sessions (a session ARN carries no role path).
  std::vector<std::string> role_sessions;
  std::vector<std::string> listed;  // every principal as written (for lint findings)
};

struct Statement {
  std::string name;  // Sid or "Statement[i]"
  bool deny = false;
  bool not_principal = false;
  Principals principals;
  bool not_action = false;
  std::vector<std::string> actions;  // lower-cased patterns
  bool not_resource = false;
  std::vector<std::string> resources;
  std::vector<Clause> conditions;
};

}  // namespace policy_internal

using policy_internal::Clause;
using policy_internal::Principals;
using policy_internal::Statement;

struct Policy::Impl {
  std::vector<Statement> statements;
};

namespace {

Result<json> ParseJsonStrict(std::string_view text) {
  auto parsed = ParseStrictJson(text, kMaxJsonDepth);
  if (!parsed) return parsed.error().WithContext("policy is not valid JSON");
  return parsed;
}

std::string_view TypeName(const json& v) { return v.type_name(); }

// Reads a string or a non-empty array of strings.
Result<std::vector<std::string>> StringList(const json& v, std::string_view what) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
    return out;
  }
  if (!v.is_array()) {
    return Error::Malformed(std::string(what) + " must be a string or a list of strings, not " +
                            std::string(TypeName(v)));
  }
  if (v.empty()) return Error::Malformed(std::string(what) + " must not be an empty list");
  for (const json& item : v) {
    if (!item.is_string()) {
      return Error::Malformed(std::string(what) + " list holds a " + std::string(TypeName(item)) +
                              ", not a string");
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

// Condition values may be strings, booleans or numbers (IAM accepts all three in JSON), alone
// or in a non-empty list.
Result<std::string> ConditionScalar(const json& v, std::string_view what) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  if (v.is_number()) return v.dump();
  return Error::Malformed(std::string(what) + " value must be a string, boolean or number, not " +
                          std::string(TypeName(v)));
}

Result<std::vector<std::string>> ConditionValues(const json& v, std::string_view what) {
  std::vector<std::string> out;
  if (v.is_array()) {
    if (v.empty()) return Error::Malformed(std::string(what) + " has an empty value list");
    for (const json& item : v) {
      CLOISTER_ASSIGN_OR_RETURN(auto s, ConditionScalar(item, what));
      out.push_back(std::move(s));
    }
    return out;
  }
  CLOISTER_ASSIGN_OR_RETURN(auto s, ConditionScalar(v, what));
  out.push_back(std::move(s));
  return out;
}

// For an IAM role ARN split into `fields` ("arn:P:iam::A:role/<path/>R"), returns the prefix
// "arn:P:sts::A:assumed-role/R/" of its sessions' ARNs; otherwise "". A policy that names a role
// applies to every session of it: the caller's ARN is the session's, and the role path is not
// part of it (IAM User Guide, "AWS JSON policy elements: Principal", IAM role principals and
// role session principals).
std::string RoleSessionPrefix(const std::vector<std::string_view>& fields) {
  if (fields[2] != "iam" || !fields[5].starts_with("role/")) return "";
  std::string_view name = fields[5].substr(fields[5].rfind('/') + 1);
  if (name.empty()) return "";
  return "arn:" + std::string(fields[1]) + ":sts::" + std::string(fields[4]) + ":assumed-role/" +
         std::string(name) + "/";
}

// `element` names the statement and the element ("Statement \"Sid\" (Statement[1]).Principal").
Result<Principals> ParsePrincipals(const json& v, std::string_view element) {
  Principals out;
  const std::string where(element);
  if (v.is_string()) {
    if (v.get<std::string>() != "*") {
      return Error::Malformed(where + " must be \"*\" or an object such as {\"AWS\": ...}");
    }
    out.any = true;
    return out;
  }
  if (!v.is_object() || v.empty()) {
    return Error::Malformed(where + " must be \"*\" or a non-empty object, not " +
                            std::string(TypeName(v)));
  }
  std::vector<std::string_view> fields;
  for (const auto& [type, value] : v.items()) {
    CLOISTER_ASSIGN_OR_RETURN(auto list, StringList(value, where + "." + type));
    if (type == "Service" || type == "Federated" || type == "CanonicalUser") {
      // Valid in the language; the emulator has no such callers, so they never match.
      continue;
    }
    if (type != "AWS") {
      return Error::Malformed(where + " has an unknown principal type \"" + type + "\"");
    }
    for (const std::string& p : list) {
      out.listed.push_back(p);
      if (p == "*") {
        out.any = true;
      } else if (p.find_first_of("*?") != std::string::npos) {
        // AWS refuses a wildcard anywhere but as the whole principal ("*" or {"AWS": "*"}) with
        // MalformedPolicyDocumentException (IAM User Guide, "AWS JSON policy elements:
        // Principal", "Specifying all principals" / wildcards). Accepting it would be worse
        // than refusing: such a principal never matches, so a Deny naming it silently denies
        // nobody.
        return Error::Malformed(where + " contains the principal \"" + p +
                                "\" with a wildcard; a wildcard is only valid as the whole "
                                "principal (\"*\" or {\"AWS\": \"*\"}); name each principal "
                                "or the account root");
      } else if (IsAccountId(p)) {
        out.accounts.push_back(p);
      } else if (SplitArn(p, fields) && (fields[2] == "iam" || fields[2] == "sts") &&
                 IsAccountId(fields[4]) && !fields[5].empty()) {
        if (fields[2] == "iam" && fields[5] == "root") {
          out.accounts.emplace_back(fields[4]);
        } else {
          out.arns.push_back(p);
          if (std::string prefix = RoleSessionPrefix(fields); !prefix.empty()) {
            out.role_sessions.push_back(std::move(prefix));
          }
        }
      } else {
        return Error::Malformed(where + " contains an invalid principal \"" + p + "\"");
      }
    }
  }
  return out;
}

Result<std::vector<std::string>> ParseActions(const json& v, std::string_view element) {
  CLOISTER_ASSIGN_OR_RETURN(auto list, StringList(v, element));
  for (std::string& a : list) {
    size_t colon = a.find(':');
    if (a != "*" && (colon == std::string::npos || colon == 0 || colon + 1 == a.size())) {
      return Error::Malformed(std::string(element) + " \"" + a +
                              "\" is not \"*\" or of the form service:action");
    }
    a = Lower(a);
  }
  return list;
}

Result<std::vector<std::string>> ParseResources(const json& v, std::string_view element) {
  CLOISTER_ASSIGN_OR_RETURN(auto list, StringList(v, element));
  for (const std::string& r : list) {
    if (r != "*" && r.rfind("arn:", 0) != 0) {
      return Error::Malformed(std::string(element) + " \"" + r + "\" is not \"*\" or an ARN");
    }
  }
  return list;
}

Result<std::vector<Clause>> ParseCondition(const json& v) {
  if (!v.is_object()) {
    return Error::Malformed("Condition must be an object, not " + std::string(TypeName(v)));
  }
  std::vector<Clause> out;
  for (const auto& [full_name, block] : v.items()) {
    std::string_view name = full_name;
    SetQualifier qualifier = SetQualifier::kNone;
    if (name.starts_with(kForAnyValuePrefix)) {
      qualifier = SetQualifier::kForAnyValue;
      name.remove_prefix(kForAnyValuePrefix.size());
    } else if (name.starts_with(kForAllValuesPrefix)) {
      qualifier = SetQualifier::kForAllValues;
      name.remove_prefix(kForAllValuesPrefix.size());
    }
    bool if_exists = false;
    if (name.ends_with(kIfExistsSuffix)) {
      if_exists = true;
      name.remove_suffix(kIfExistsSuffix.size());
    }
    const OperatorName* found = nullptr;
    for (const OperatorName& candidate : kOperators) {
      if (candidate.name == name) found = &candidate;
    }
    if (found == nullptr) {
      return Error::Malformed("Condition has an unknown or unsupported operator \"" + full_name +
                              "\"");
    }
    if (found->op == Operator::kNull && (if_exists || qualifier != SetQualifier::kNone)) {
      // Null tests presence itself; IfExists or a set qualifier would make it meaningless.
      return Error::Malformed("Condition operator \"" + full_name + "\" is not allowed");
    }
    if (!block.is_object() || block.empty()) {
      return Error::Malformed("Condition operator \"" + full_name +
                              "\" must map to a non-empty object of condition keys");
    }
    for (const auto& [key, values] : block.items()) {
      const std::string what = "Condition " + full_name + " " + key;
      size_t colon = key.find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == key.size()) {
        return Error::Malformed(what + ": condition key must be of the form prefix:name");
      }
      Clause clause{found->op, found->negated, qualifier, if_exists, Lower(key), {},
                    full_name + " " + key};
      CLOISTER_ASSIGN_OR_RETURN(clause.values, ConditionValues(values, what));
      if (found->op == Operator::kNull || found->op == Operator::kBool) {
        for (std::string& s : clause.values) {
          s = Lower(s);
          if (s != "true" && s != "false") {
            return Error::Malformed(what + ": value must be \"true\" or \"false\"");
          }
        }
      }
      out.push_back(std::move(clause));
    }
  }
  return out;
}

Result<Statement> ParseStatement(const json& v, size_t index) {
  const std::string where = "Statement[" + std::to_string(index) + "]";
  if (!v.is_object()) {
    return Error::Malformed(where + " must be an object, not " + std::string(TypeName(v)));
  }
  Statement st;
  st.name = where;
  const json* principal = nullptr;
  const json* action = nullptr;
  const json* resource = nullptr;
  bool has_effect = false;
  for (const auto& [field, value] : v.items()) {
    auto fail = [&](std::string_view why) {
      return Error::Malformed(where + "." + field + " " + std::string(why));
    };
    if (field == "Sid") {
      if (!value.is_string()) return fail("must be a string");
      if (!value.get<std::string>().empty()) st.name = value.get<std::string>();
    } else if (field == "Effect") {
      if (!value.is_string()) return fail("must be a string");
      const std::string effect = value.get<std::string>();
      if (effect == "Allow") {
        st.deny = false;
      } else if (effect == "Deny") {
        st.deny = true;
      } else {
        return fail("must be \"Allow\" or \"Deny\", not \"" + effect + "\"");
      }
      has_effect = true;
    } else if (field == "Principal" || field == "NotPrincipal") {
      if (principal != nullptr) return Error::Malformed(where + " has both Principal and NotPrincipal");
      principal = &value;
      st.not_principal = field == "NotPrincipal";
    } else if (field == "Action" || field == "NotAction") {
      if (action != nullptr) return Error::Malformed(where + " has both Action and NotAction");
      action = &value;
      st.not_action = field == "NotAction";
    } else if (field == "Resource" || field == "NotResource") {
      if (resource != nullptr) {
        return Error::Malformed(where + " has both Resource and NotResource");
      }
      resource = &value;
      st.not_resource = field == "NotResource";
    } else if (field == "Condition") {
      auto clauses = ParseCondition(value);
      if (!clauses) return clauses.error().WithContext(where);
      st.conditions = std::move(*clauses);
    } else {
      return Error::Malformed(where + " has an unknown element \"" + field + "\"");
    }
  }
  if (!has_effect) return Error::Malformed(where + " has no Effect");
  // A key policy is a resource-based policy: every statement names its principal.
  if (principal == nullptr) return Error::Malformed(where + " has no Principal");
  if (action == nullptr) return Error::Malformed(where + " has no Action");
  if (resource == nullptr) return Error::Malformed(where + " has no Resource");
  // Principal errors name the statement by its Sid as well: that is what the author wrote.
  const std::string named = st.name == where ? where : "Statement \"" + st.name + "\" (" + where + ")";
  CLOISTER_ASSIGN_OR_RETURN(st.principals,
                            ParsePrincipals(*principal, named + (st.not_principal
                                                                     ? ".NotPrincipal"
                                                                     : ".Principal")));
  CLOISTER_ASSIGN_OR_RETURN(
      st.actions, ParseActions(*action, where + (st.not_action ? ".NotAction" : ".Action")));
  CLOISTER_ASSIGN_OR_RETURN(
      st.resources,
      ParseResources(*resource, where + (st.not_resource ? ".NotResource" : ".Resource")));
  return st;
}

bool PrincipalMatches(const Principals& p, const RequestContext& request) {
  if (p.any) return true;
  if (!request.account.empty() &&
      std::find(p.accounts.begin(), p.accounts.end(), request.account) != p.accounts.end()) {
    return true;
  }
  if (std::find(p.arns.begin(), p.arns.end(), request.principal_arn) != p.arns.end()) return true;
  // A role principal matches each session of the role: "<prefix><session>", one more segment.
  const std::string_view caller = request.principal_arn;
  return std::any_of(p.role_sessions.begin(), p.role_sessions.end(), [&](const std::string& r) {
    return caller.size() > r.size() && caller.starts_with(r) &&
           caller.find('/', r.size()) == std::string_view::npos;
  });
}

bool ActionMatches(const std::vector<std::string>& patterns, std::string_view lower_action) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& pattern) {
    return WildcardMatch(pattern, lower_action);
  });
}

bool ResourceMatches(const std::vector<std::string>& patterns, std::string_view resource) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& pattern) {
    return WildcardMatch(pattern, resource);
  });
}

// The positive form of the operator: does request value `v` match policy value `p`?
bool PositiveMatch(Operator op, std::string_view v, std::string_view p) {
  switch (op) {
    case Operator::kStringEquals:
    case Operator::kStringNotEquals:
      return v == p;
    case Operator::kStringEqualsIgnoreCase:
    case Operator::kStringNotEqualsIgnoreCase:
    case Operator::kBool:
      return EqualsIgnoreCase(v, p);
    case Operator::kStringLike:
    case Operator::kStringNotLike:
      return WildcardMatch(p, v);
    case Operator::kNull:
      return false;
  }
  return false;
}

// Does one request value satisfy the clause? Multiple policy values are OR for positive
// operators and NOR for negated ones (IAM "Conditions with multiple context keys or values").
bool ValueMatches(const Clause& c, std::string_view v) {
  bool any = std::any_of(c.values.begin(), c.values.end(),
                         [&](const std::string& p) { return PositiveMatch(c.op, v, p); });
  return c.negated ? !any : any;
}

bool ClauseMatches(const Clause& c, const RequestContext& request) {
  const std::vector<std::string>* found = request.Find(c.key);
  const bool present = found != nullptr && !found->empty();
  if (c.op == Operator::kNull) {
    const std::string_view want = present ? "false" : "true";
    return std::find(c.values.begin(), c.values.end(), want) != c.values.end();
  }
  if (!present) {
    if (c.if_exists) return true;
    switch (c.qualifier) {
      case SetQualifier::kForAllValues:
        return true;  // every member of the empty set matches
      case SetQualifier::kForAnyValue:
        return false;  // no member of the empty set matches, negated operator or not
      case SetQualifier::kNone:
        return c.negated;  // "the key is not present ... negated operators evaluate to true"
    }
  }
  const std::vector<std::string>& values = *found;
  switch (c.qualifier) {
    case SetQualifier::kForAllValues:
      return std::all_of(values.begin(), values.end(),
                         [&](const std::string& v) { return ValueMatches(c, v); });
    case SetQualifier::kForAnyValue:
      return std::any_of(values.begin(), values.end(),
                         [&](const std::string& v) { return ValueMatches(c, v); });
    case SetQualifier::kNone:
      // Without a qualifier a negated operator is the complement of the positive one over all
      // request values, so "StringNotEquals" never matches a request that holds a listed value.
      if (c.negated) {
        return std::all_of(values.begin(), values.end(),
                           [&](const std::string& v) { return ValueMatches(c, v); });
      }
      return std::any_of(values.begin(), values.end(),
                         [&](const std::string& v) { return ValueMatches(c, v); });
  }
  return false;
}

bool StatementMatches(const Statement& st, const RequestContext& request,
                      std::string_view lower_action) {
  if (PrincipalMatches(st.principals, request) == st.not_principal) return false;
  if (ActionMatches(st.actions, lower_action) == st.not_action) return false;
  if (ResourceMatches(st.resources, request.resource) == st.not_resource) return false;
  return std::all_of(st.conditions.begin(), st.conditions.end(),
                     [&](const Clause& c) { return ClauseMatches(c, request); });
}

}  // namespace

Result<Policy> Policy::Parse(std::string_view text) {
  if (text.size() > kMaxKeyPolicyBytes) {
    return Error::Malformed("policy is " + std::to_string(text.size()) +
                            " bytes; the limit is " + std::to_string(kMaxKeyPolicyBytes));
  }
  CLOISTER_ASSIGN_OR_RETURN(json doc, ParseJsonStrict(text));
  if (!doc.is_object()) {
    return Error::Malformed("policy must be a JSON object, not " + std::string(TypeName(doc)));
  }
  auto impl = std::make_shared<Impl>();
  const json* statements = nullptr;
  for (const auto& [field, value] : doc.items()) {
    if (field == "Version") {
      if (!value.is_string() ||
          (value.get<std::string>() != kVersion2012 && value.get<std::string>() != kVersion2008)) {
        return Error::Malformed("Version must be \"2012-10-17\" or \"2008-10-17\"");
      }
    } else if (field == "Id") {
      if (!value.is_string()) return Error::Malformed("Id must be a string");
    } else if (field == "Statement") {
      statements = &value;
    } else {
      return Error::Malformed("policy has an unknown element \"" + field + "\"");
    }
  }
  if (statements == nullptr) return Error::Malformed("policy has no Statement");
  if (statements->is_object()) {
    CLOISTER_ASSIGN_OR_RETURN(auto st, ParseStatement(*statements, 0));
    impl->statements.push_back(std::move(st));
  } else if (statements->is_array()) {
    if (statements->empty()) return Error::Malformed("Statement must not be an empty list");
    for (size_t i = 0; i < statements->size(); ++i) {
      CLOISTER_ASSIGN_OR_RETURN(auto st, ParseStatement((*statements)[i], i));
      impl->statements.push_back(std::move(st));
    }
  } else {
    return Error::Malformed("Statement must be an object or a list of objects, not " +
                            std::string(TypeName(*statements)));
  }
  return Policy(std::move(impl));
}

Decision Policy::Evaluate(const RequestContext& request) const {
  const std::string lower_action = Lower(request.action);
  const Statement* allow = nullptr;
  for (const Statement& st : impl_->statements) {
    if (!StatementMatches(st, request, lower_action)) continue;
    if (st.deny) {
      return {Decision::Effect::kExplicitDeny, st.name,
              "explicitly denied by statement \"" + st.name + "\""};
    }
    if (allow == nullptr) allow = &st;
  }
  if (allow != nullptr) {
    return {Decision::Effect::kAllow, allow->name,
            "allowed by statement \"" + allow->name + "\""};
  }
  return {Decision::Effect::kImplicitDeny, "",
          "no statement allows " + request.action + " by " + request.principal_arn};
}

// --- Lint ----------------------------------------------------------------------------------

namespace {

constexpr std::string_view kAttestationPrefix = "kms:recipientattestation:";
constexpr std::string_view kLintFix =
    "require the audited measurements: StringEqualsIgnoreCase (no ForAllValues:/ForAnyValue: "
    "qualifier, no IfExists) on kms:RecipientAttestation:PCR0, PCR1 and PCR2 (and PCR8 for a "
    "signed image) with the values you audited, as `cloister party create-key` writes; or "
    "remove the grant";

bool IsAttestationKey(const Clause& c) { return c.key.starts_with(kAttestationPrefix); }

bool HasWildcard(const std::vector<std::string>& values) {
  return std::any_of(values.begin(), values.end(), [](const std::string& v) {
    return v.find_first_of("*?") != std::string::npos;
  });
}

// True if the clause is false for a request without the key and true only for listed values:
// a positive equality test, or StringLike without wildcards, with no qualifier and no IfExists.
bool PinsValue(const Clause& c) {
  if (c.qualifier != SetQualifier::kNone || c.if_exists || c.negated) return false;
  switch (c.op) {
    case Operator::kStringEquals:
    case Operator::kStringEqualsIgnoreCase:
      return true;
    case Operator::kStringLike:
      return !HasWildcard(c.values);
    default:
      return false;
  }
}

// Why a kms:RecipientAttestation clause does not keep a request without a good document out.
std::string WeakClauseReason(const Clause& c) {
  const std::string& w = c.written;
  if (c.qualifier == SetQualifier::kForAllValues) {
    return w + " is true for a request without an attestation document: ForAllValues: over an "
               "absent key (an empty set) is true";
  }
  if (c.if_exists) {
    return w + " is true for a request without an attestation document: ...IfExists is true "
               "when the key is absent";
  }
  if (c.op == Operator::kNull) {
    if (std::find(c.values.begin(), c.values.end(), "true") != c.values.end()) {
      return w + " \"true\" holds exactly when there is no attestation document";
    }
    return w + " \"false\" is satisfied by any valid attestation document, whatever enclave "
               "made it: it pins no measurement";
  }
  if (c.negated) {
    return w + " is true for a request without an attestation document: a negated operator "
               "is true when the key is absent";
  }
  if (c.qualifier == SetQualifier::kForAnyValue) {
    return w + " uses ForAnyValue: on a single-valued key (AWS advises against it; it pins "
               "nothing a plain operator would not)";
  }
  if (c.op == Operator::kStringLike) {
    return w + " has a wildcard value: any enclave's document matches";
  }
  return w + " does not compare the measurement with audited values";
}

bool IsImagePcrKey(const Clause& c) {
  return c.key == "kms:recipientattestation:imagesha384" ||
         c.key == "kms:recipientattestation:pcr0" || c.key == "kms:recipientattestation:pcr1" ||
         c.key == "kms:recipientattestation:pcr2";
}

// True if `c` admits the all-zero value that debug-mode enclaves attest in PCR0-2.
bool AdmitsDebugValue(const Clause& c) {
  static const std::string kZero(96, '0');
  return std::find(c.values.begin(), c.values.end(), kZero) != c.values.end();
}

// Returns why `st` lets a request without a good document through, or "" if it does not.
std::string AllowWeakness(const Statement& st) {
  const Clause* weak = nullptr;
  bool pinned = false;
  const Clause* debug = nullptr;  // a pinned image PCR admitting the debug value
  bool image_pinned_without_debug = false;
  for (const Clause& c : st.conditions) {
    if (!IsAttestationKey(c)) continue;
    if (!PinsValue(c)) {
      if (weak == nullptr) weak = &c;
      continue;
    }
    pinned = true;
    if (IsImagePcrKey(c)) {
      if (AdmitsDebugValue(c)) {
        if (debug == nullptr) debug = &c;
      } else {
        image_pinned_without_debug = true;
      }
    }
  }
  if (pinned) {
    // The clauses are ANDed: one image PCR pinned to a real value keeps debug enclaves out.
    if (debug != nullptr && !image_pinned_without_debug) {
      return debug->written + " admits the all-zero value that every debug-mode enclave "
                              "attests, whatever image it runs";
    }
    return "";
  }
  if (weak != nullptr) return WeakClauseReason(*weak);
  return "no kms:RecipientAttestation condition: the grant applies to requests without an "
         "attestation document";
}

// True if every clause of a Deny is on an attestation key and true when that key is absent, so
// the Deny applies to every request without a document (whatever else the caller sends).
bool DenyFiresWithoutDocument(const Statement& st) {
  return std::all_of(st.conditions.begin(), st.conditions.end(), [](const Clause& c) {
    if (!IsAttestationKey(c)) return false;
    if (c.op == Operator::kNull) {
      return std::find(c.values.begin(), c.values.end(), "true") != c.values.end();
    }
    if (c.if_exists || c.qualifier == SetQualifier::kForAllValues) return true;
    return c.qualifier == SetQualifier::kNone && c.negated;
  });
}

std::string AccountOfPrincipal(std::string_view p) {
  if (IsAccountId(p)) return std::string(p);
  std::vector<std::string_view> fields;
  if (SplitArn(p, fields)) return std::string(fields[4]);
  return "";
}

bool IsAccountRoot(std::string_view p) {
  std::vector<std::string_view> fields;
  return IsAccountId(p) ||
         (SplitArn(p, fields) && fields[2] == "iam" && fields[5] == "root" && IsAccountId(fields[4]));
}

// Does Deny statement `deny` name principal `p` (as written in an Allow)?
bool DenyCoversPrincipal(const Statement& deny, const std::string& p) {
  const Principals& d = deny.principals;
  const bool listed = std::find(d.listed.begin(), d.listed.end(), p) != d.listed.end();
  if (deny.not_principal) return p != "*" && !listed && !d.any;
  if (d.any || listed) return true;
  if (p == "*" || IsAccountRoot(p)) return false;
  // An account root in the Deny covers every principal of that account.
  const std::string account = AccountOfPrincipal(p);
  if (std::find(d.accounts.begin(), d.accounts.end(), account) != d.accounts.end()) return true;
  // A role in the Deny covers its sessions.
  return std::any_of(d.role_sessions.begin(), d.role_sessions.end(), [&](const std::string& r) {
    return p.size() > r.size() && p.starts_with(r) && p.find('/', r.size()) == std::string::npos;
  });
}

bool IsAdmin(const std::string& p, const LintOptions& options) {
  if (options.admins.empty()) return IsAccountRoot(p);
  return std::any_of(options.admins.begin(), options.admins.end(), [&](const std::string& a) {
    if (a == p) return true;
    // "111122223333" and "arn:aws:iam::111122223333:root" name the same principal.
    return IsAccountRoot(a) && IsAccountRoot(p) && AccountOfPrincipal(a) == AccountOfPrincipal(p);
  });
}

}  // namespace

std::vector<LintFinding> Policy::Lint(const LintOptions& options) const {
  std::vector<LintFinding> findings;
  const auto& statements = impl_->statements;
  // Every individual principal the policy names (not "*", not an account, not an admin).
  std::vector<std::string> named;
  for (const Statement& st : statements) {
    for (const std::string& p : st.principals.listed) {
      if (p == "*" || IsAccountRoot(p) || IsAdmin(p, options)) continue;
      if (std::find(named.begin(), named.end(), p) == named.end()) named.push_back(p);
    }
  }
  for (size_t i = 0; i < statements.size(); ++i) {
    const Statement& st = statements[i];
    if (st.deny) continue;
    if (!options.key_arn.empty() &&
        ResourceMatches(st.resources, options.key_arn) == st.not_resource) {
      continue;
    }
    std::vector<std::string> actions;
    for (std::string_view a : kKeyMaterialActions) {
      if (ActionMatches(st.actions, Lower(a)) != st.not_action) actions.emplace_back(a);
    }
    if (actions.empty()) continue;
    const std::string weakness = AllowWeakness(st);
    if (weakness.empty()) continue;

    std::vector<std::string> principals;
    std::string via_root;  // set when the finding is a principal covered by an account grant
    if (st.not_principal) {
      std::string everyone_but = "NotPrincipal: everyone except";
      for (const std::string& p : st.principals.listed) everyone_but += " " + p;
      principals.push_back(everyone_but);
    } else if (st.principals.any) {
      principals.emplace_back("*");
    } else {
      for (const std::string& p : st.principals.listed) {
        if (!IsAdmin(p, options)) principals.push_back(p);
      }
      // An account-root grant covers every principal of the account, so each other principal
      // the policy names in that account (typically the operator) gets it too, unless a Deny
      // keeps it out.
      for (const std::string& root : st.principals.listed) {
        if (!IsAdmin(root, options) || !IsAccountRoot(root)) continue;
        for (const std::string& p : named) {
          if (AccountOfPrincipal(p) == AccountOfPrincipal(root) &&
              std::find(principals.begin(), principals.end(), p) == principals.end()) {
            principals.push_back(p);
            via_root = root;
          }
        }
      }
    }
    for (const std::string& p : principals) {
      std::vector<std::string> open_actions;
      for (const std::string& a : actions) {
        const std::string lower = Lower(a);
        const bool denied = !st.not_principal &&
                            std::any_of(statements.begin(), statements.end(), [&](const Statement& d) {
                              return d.deny && DenyCoversPrincipal(d, p) &&
                                     ActionMatches(d.actions, lower) != d.not_action &&
                                     (options.key_arn.empty() ||
                                      ResourceMatches(d.resources, options.key_arn) !=
                                          d.not_resource) &&
                                     DenyFiresWithoutDocument(d);
                            });
        if (!denied) open_actions.push_back(a);
      }
      if (open_actions.empty()) continue;
      const bool listed = std::find(st.principals.listed.begin(), st.principals.listed.end(),
                                    p) != st.principals.listed.end();
      if (!listed && !via_root.empty()) {
        findings.push_back({i, st.name, p, std::move(open_actions),
                            p + " is in the account of " + via_root +
                                ", whose grant covers every principal of the account; " +
                                weakness,
                            "add Deny statements for " + p +
                                " (one per PCR, StringNotEqualsIgnoreCase, and a NotAction "
                                "kms:Decrypt Deny), as `cloister party create-key` writes, or "
                                "name the administrators instead of the account root"});
        continue;
      }
      findings.push_back({i, st.name, p, std::move(open_actions), weakness, std::string(kLintFix)});
    }
  }
  return findings;
}

size_t Policy::statement_count() const { return impl_->statements.size(); }

std::string_view EffectName(Decision::Effect effect) {
  switch (effect) {
    case Decision::Effect::kAllow:
      return "Allow";
    case Decision::Effect::kExplicitDeny:
      return "ExplicitDeny";
    case Decision::Effect::kImplicitDeny:
      return "ImplicitDeny";
  }
  return "ImplicitDeny";
}

const std::vector<std::string>* RequestContext::Find(const std::string& key) const {
  if (auto it = condition_values.find(key); it != condition_values.end()) return &it->second;
  if (shared_values != nullptr) {
    if (auto it = shared_values->find(key); it != shared_values->end()) return &it->second;
  }
  return nullptr;
}

RequestContext MakeRequestContext(std::string_view principal_arn, std::string_view action,
                                  std::string_view resource) {
  RequestContext ctx;
  ctx.principal_arn = std::string(principal_arn);
  ctx.action = std::string(action);
  ctx.resource = std::string(resource);
  std::vector<std::string_view> fields;
  std::string principal_key = ctx.principal_arn;
  if (SplitArn(principal_arn, fields)) {
    ctx.account = std::string(fields[4]);
    // For a role session, aws:PrincipalArn is the role's ARN, not the session's (IAM User
    // Guide, "AWS global condition context keys", aws:PrincipalArn). The session ARN does not
    // carry the role's path, so the role ARN is given without one.
    if (fields[2] == "sts" && fields[5].starts_with("assumed-role/")) {
      std::string_view rest = fields[5].substr(13);
      size_t slash = rest.find('/');
      if (slash != std::string_view::npos && slash > 0) {
        principal_key = "arn:" + std::string(fields[1]) + ":iam::" + ctx.account + ":role/" +
                        std::string(rest.substr(0, slash));
      }
    }
  }
  if (!principal_key.empty()) {
    ctx.condition_values[std::string(kKeyPrincipalArn)] = {principal_key};
  }
  if (!ctx.account.empty()) {
    ctx.condition_values[std::string(kKeyCallerAccount)] = {ctx.account};
    ctx.condition_values[std::string(kKeyPrincipalAccount)] = {ctx.account};
  }
  return ctx;
}

void AddEncryptionContextConditionKeys(const std::map<std::string, std::string>& encryption_context,
                                       RequestContext& context) {
  if (encryption_context.empty()) return;
  std::vector<std::string>& keys = context.condition_values[std::string(kKeyEncryptionContextKeys)];
  for (const auto& [key, value] : encryption_context) {
    keys.push_back(key);
    context.condition_values[std::string(kKeyEncryptionContextPrefix) + Lower(key)].push_back(
        value);
  }
}

std::string DefaultKeyPolicy(std::string_view account_id) {
  // The layout AWS returns from GetKeyPolicy for a key created without a policy.
  const std::string principal = json("arn:aws:iam::" + std::string(account_id) + ":root").dump();
  return "{\n"
         "  \"Version\" : \"2012-10-17\",\n"
         "  \"Id\" : \"key-default-1\",\n"
         "  \"Statement\" : [ {\n"
         "    \"Sid\" : \"Enable IAM User Permissions\",\n"
         "    \"Effect\" : \"Allow\",\n"
         "    \"Principal\" : {\n"
         "      \"AWS\" : " +
         principal +
         "\n"
         "    },\n"
         "    \"Action\" : \"kms:*\",\n"
         "    \"Resource\" : \"*\"\n"
         "  } ]\n"
         "}";
}

}  // namespace cloister::kms
