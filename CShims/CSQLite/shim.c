// Intentionally empty: SwiftPM needs one source file for a C target. See include/CSQLite.h.
#include "CSQLite.h"
