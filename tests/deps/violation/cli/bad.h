// A fixture for deps.rule_catches_violations: host code including an enclave header (never
// compiled).
#include "enclave/computation_run.h"
