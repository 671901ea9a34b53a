#include "CLoadHarness.h"
