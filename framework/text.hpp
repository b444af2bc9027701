// Small string helpers shared by the config loader, registries and CLI.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace strata {

std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` if it is plausibly a typo of it, else "".
std::string nearest_name(std::string_view word, const std::vector<std::string>& candidates);

// " (did you mean \"heads\"?)" or "" when nothing is close.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

std::string join(const std::vector<std::string>& items, std::string_view separator);

// A number for a message: whole numbers in plain digits (9000000000000000, not 9e+15),
// others to 15 significant digits (0.5, 1e-12).
std::string plain_number(double value);

// Offset of the first byte that breaks UTF-8 (overlong forms, surrogates and code
// points above U+10FFFF included), or npos when `s` is valid.
std::size_t invalid_utf8_at(std::string_view s);

}  // namespace strata
