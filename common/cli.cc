#include "common/cli.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include "common/log.h"

namespace cloister {
namespace {

// Flags nitro-cli users type, and what to use here instead.
struct Habit {
  const char* flag;
  const char* instead;
};
constexpr Habit kNitroCliHabits[] = {
    {"--docker-uri",
     "Cloister images are not built from Docker images: use --manifest FILE (and --app-dir DIR "
     "for the files packed under /app)"},
    {"--docker-dir", "use --app-dir DIR (the files packed under /app) and --manifest FILE"},
    {"--memory-mib", "use --memory MIB (nitro-cli's run-enclave flag, also ours)"},
    {"--enclave-cid-auto", "leave out --enclave-cid: the first free CID from 16 is taken"},
    {"--attach-console", "start with --debug-mode, then `cloister console --enclave-id ID`"},
};

const char* HabitFor(std::string_view arg) {
  for (const Habit& h : kNitroCliHabits) {
    std::string_view flag = h.flag;
    if (arg == flag || (arg.starts_with(flag) && arg.size() > flag.size() &&
                        arg[flag.size()] == '=')) {
      return h.instead;
    }
  }
  return nullptr;
}

std::vector<CLI::App*> AllSubcommands(const CLI::App& app) {
  return const_cast<CLI::App&>(app).get_subcommands([](CLI::App*) { return true; });
}

// Damerau-Levenshtein (optimal string alignment) distance: typing slips are mostly one
// insertion, deletion, substitution or swap of neighbours.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::string CommandPath(const CLI::App* app) {
  std::string path;
  for (const CLI::App* a = app; a != nullptr; a = a->get_parent()) {
    path = a->get_name() + (path.empty() ? "" : " " + path);
  }
  return path;
}

// Walks the leading words of argv down the command tree. Returns the usage message for the first
// word that names no command where one is required, or "".
std::string UnknownCommand(const CLI::App& app, int argc, char** argv) {
  const CLI::App* at = &app;
  for (int i = 1; i < argc; ++i) {
    std::string_view word = argv[i];
    if (word.empty() || word.front() == '-') return "";
    std::vector<CLI::App*> subs = AllSubcommands(*at);
    if (subs.empty()) return "";
    const CLI::App* next = nullptr;
    std::vector<std::string> names;
    for (CLI::App* s : subs) {
      if (s->get_name() == word) next = s;
      names.push_back(s->get_name());
    }
    if (next != nullptr) {
      at = next;
      continue;
    }
    std::string msg = "unknown command '" + std::string(word.substr(0, 64)) + "' for '" +
                      CommandPath(at) + "'";
    std::vector<std::string> near = NearestWords(word, names);
    if (!near.empty()) msg += "; did you mean '" + CommandPath(at) + " " + near[0] + "'?";
    std::sort(names.begin(), names.end());
    msg += "\nCommands:";
    for (const std::string& n : names) msg += " " + n;
    return msg;
  }
  return "";
}

}  // namespace

const std::vector<EnvHelp> kCommonEnvHelp = {
    {"CLOISTER_LOG_LEVEL", "log level: trace, debug, info (default), warn, error, off; any case"},
};

void AddCommonOptions(CLI::App& app, const std::vector<EnvHelp>& env) {
  // Accepted after a subcommand too (`cloister party encrypt ... --verbose`).
  app.fallthrough();
  app.add_flag_callback("-q,--quiet", [] { SetLogLevel(spdlog::level::err); },
                        "Log errors only (overrides CLOISTER_LOG_LEVEL)");
  app.add_flag_callback("-v,--verbose", [] { SetLogLevel(spdlog::level::debug); },
                        "Log debug details too (overrides CLOISTER_LOG_LEVEL)");
  std::string footer = "\nEnvironment:\n";
  auto add = [&](const EnvHelp& e) {
    std::string name = e.name;
    footer += "  " + name + std::string(name.size() < 28 ? 28 - name.size() : 1, ' ') + e.what +
              "\n";
  };
  for (const EnvHelp& e : env) add(e);
  for (const EnvHelp& e : kCommonEnvHelp) add(e);
  footer += "\nstdout: one JSON result; stderr: logs. Exit codes: 0 ok, 1 failed, 2 usage, "
            "130/143 interrupted (docs/cli.md).";
  app.footer(footer);
}

std::vector<std::string> NearestWords(std::string_view word,
                                      const std::vector<std::string>& candidates) {
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  std::vector<std::pair<size_t, std::string>> scored;
  for (const std::string& c : candidates) {
    size_t d = EditDistance(word, c);
    // A prefix ("describe" for describe-eif) counts as near.
    if (d <= limit || (word.size() >= 3 && c.starts_with(word))) scored.emplace_back(d, c);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (auto& [d, c] : scored) out.push_back(std::move(c));
  return out;
}

std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv) {
  const std::string name = app.get_name();
  if (std::string msg = UnknownCommand(app, argc, argv); !msg.empty()) {
    return ReportUsageError(name, msg);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    app.exit(e);
    return kExitOk;
  } catch (const CLI::CallForAllHelp& e) {
    app.exit(e);
    return kExitOk;
  } catch (const CLI::CallForVersion& e) {
    app.exit(e);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    for (int i = 1; i < argc; ++i) {
      if (const char* instead = HabitFor(argv[i])) {
        std::string flag(argv[i]);
        flag = flag.substr(0, flag.find('='));
        return ReportUsageError(name, flag + " is a nitro-cli flag; " + instead);
      }
    }
    return ReportUsageError(name, e.what());
  }
  return std::nullopt;
}

std::string SelectedCommand(const CLI::App& app) {
  std::string path;
  const CLI::App* at = &app;
  while (true) {
    auto chosen = const_cast<CLI::App*>(at)->get_subcommands();
    if (chosen.empty()) break;
    at = chosen.front();
    path += (path.empty() ? "" : " ") + at->get_name();
  }
  return path;
}

std::string_view InputKindName(InputKind kind) {
  switch (kind) {
    case InputKind::kBase64: return "base64 text";
    case InputKind::kPem: return "PEM";
    case InputKind::kBinary: break;
  }
  return "DER/binary";
}

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '=';
}

// `text` without whitespace, or nullopt if anything else is not a base64 character.
std::optional<std::string> Base64Body(std::string_view text) {
  std::string body;
  for (char c : text) {
    if (IsSpace(c)) continue;
    if (!IsBase64Char(c)) return std::nullopt;
    body += c;
  }
  return body;
}

}  // namespace

Result<DecodedInput> DecodeArmoured(ByteSpan data) {
  std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  size_t start = 0;
  while (start < text.size() && IsSpace(text[start])) ++start;
  DecodedInput out;
  constexpr std::string_view kBegin = "-----BEGIN ";
  if (text.substr(start).starts_with(kBegin)) {
    size_t label_end = text.find("-----", start + kBegin.size());
    if (label_end == std::string_view::npos) return Error::Malformed("PEM header is not closed");
    out.pem_label = std::string(text.substr(start + kBegin.size(),
                                            label_end - start - kBegin.size()));
    size_t body_start = label_end + 5;
    size_t end = text.find("-----END " + out.pem_label + "-----", body_start);
    if (end == std::string_view::npos) {
      return Error::Malformed("PEM block " + out.pem_label.substr(0, 64) + " has no END line");
    }
    auto body = Base64Body(text.substr(body_start, end - body_start));
    if (!body) return Error::Malformed("PEM block " + out.pem_label.substr(0, 64) +
                                       " has headers or non-base64 text (RFC 7468 section 2)");
    CLOISTER_ASSIGN_OR_RETURN(out.bytes, Base64Decode(*body));
    out.kind = InputKind::kPem;
    return out;
  }
  if (!data.empty()) {
    if (auto body = Base64Body(text); body && !body->empty() && body->size() % 4 == 0) {
      if (auto decoded = Base64Decode(*body)) {
        out.kind = InputKind::kBase64;
        out.bytes = std::move(*decoded);
        return out;
      }
    }
  }
  out.bytes.assign(data.begin(), data.end());
  return out;
}

void PrintJson(const nlohmann::json& j) {
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

namespace {

// True when stdout and stderr are the same terminal: the JSON already shows the error there.
bool SameTerminal() {
  if (::isatty(STDOUT_FILENO) != 1 || ::isatty(STDERR_FILENO) != 1) return false;
  struct stat out {}, err {};
  return ::fstat(STDOUT_FILENO, &out) == 0 && ::fstat(STDERR_FILENO, &err) == 0 &&
         out.st_rdev == err.st_rdev;
}

}  // namespace

int ReportUsageError(std::string_view program, std::string_view message) {
  PrintJson({{"error", {{"code", std::string(ErrorCodeName(ErrorCode::kInvalidArgument))},
                        {"message", std::string(message)}}}});
  if (!SameTerminal()) {
    std::cerr << program << ": " << message << "\nRun with --help for usage.\n";
  }
  return kExitUsage;
}

int ReportFailure(const Error& error) {
  PrintJson({{"error", {{"code", std::string(ErrorCodeName(error.code()))},
                        {"message", error.message()}}}});
  if (!SameTerminal()) {
    spdlog::error("event=failed code={} message={}", ErrorCodeName(error.code()),
                  LogQuote(error.message()));
  }
  return error.code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitFailed;
}

}  // namespace cloister
