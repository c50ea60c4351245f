#include "cli/commands.h"

namespace cloister::cli {

void RegisterAuditCommands(CLI::App& /*app*/, Action& /*run*/) {}

}  // namespace cloister::cli
