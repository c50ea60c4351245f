#include "cli/commands.h"

namespace cloister::cli {

void RegisterPartyCommands(CLI::App& /*app*/, Action& /*run*/) {}

}  // namespace cloister::cli
