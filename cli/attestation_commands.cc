#include "cli/commands.h"

namespace cloister::cli {

void RegisterAttestationCommands(CLI::App& /*app*/, Action& /*run*/) {}

}  // namespace cloister::cli
