#include "cli/commands.h"

namespace cloister::cli {

void RegisterEnclaveCommands(CLI::App& /*app*/, Action& /*run*/) {}

}  // namespace cloister::cli
