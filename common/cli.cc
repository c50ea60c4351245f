#include "common/cli.h"

#include <spdlog/spdlog.h>

#include <iostream>

namespace cloister {

std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv) {
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
    std::cerr << app.get_name() << ": " << e.what() << "\nRun with --help for usage.\n";
    return kExitUsage;
  }
  return std::nullopt;
}

void PrintJson(const nlohmann::json& j) {
  std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

int ReportFailure(const Error& error) {
  PrintJson({{"error", {{"code", std::string(ErrorCodeName(error.code()))},
                        {"message", error.message()}}}});
  spdlog::error("event=failed code={} message=\"{}\"", ErrorCodeName(error.code()),
                error.message());
  return error.code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitFailed;
}

}  // namespace cloister
