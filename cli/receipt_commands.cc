#include "cli/commands.h"

namespace cloister::cli {

void RegisterReceiptCommands(CLI::App& /*app*/, Action& /*run*/) {}

}  // namespace cloister::cli
