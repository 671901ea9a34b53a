// Intentionally empty: SwiftPM needs one source file for a C target. See include/CSodium.h.
#include "CSodium.h"
