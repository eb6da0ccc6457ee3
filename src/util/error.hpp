#pragma once
// One error type for everything a user can get wrong (files, flags, values): the public header's
// (include/tailor/error.hpp), so the library's callers catch what the engine throws.
#include "tailor/error.hpp"
