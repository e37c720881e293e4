/* Moved to src/util so that events can share it (STYLE.md section 2 layering). */
#pragma once

#include "util/filters.h"
