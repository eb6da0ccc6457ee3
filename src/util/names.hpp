#pragma once
// The names an option's values go by, each with what it means, in one table per option: the
// parser, the printer (config.toml, summaries) and the command line's list of allowed values
// (CLI::IsMember, and so sweep files, search spaces and the Python module) all read it, so a
// value is added in one place. A table lists every name; the first name of a value is how it is
// printed (aliases such as "gray" follow it).
#include <string>
#include <utility>
#include <vector>

#include "util/error.hpp"

namespace tailor {

template <class E>
using NameTable = std::pair<const char*, E>;

// "a, b or c"
template <class E, size_t N>
std::string names_text(const NameTable<E> (&table)[N]) {
  std::string s;
  for (size_t i = 0; i < N; ++i) s += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(table[i].first);
  return s;
}

template <class E, size_t N>
std::vector<std::string> names_of(const NameTable<E> (&table)[N]) {
  std::vector<std::string> out;
  for (const auto& [name, value] : table) out.emplace_back(name);
  return out;
}

// The value `name` stands for; throws tailor::Error "unknown FLAG 'name' (expected ...)".
template <class E, size_t N>
E parse_name(const NameTable<E> (&table)[N], const std::string& name, const std::string& flag) {
  for (const auto& [n, value] : table)
    if (name == n) return value;
  throw Error("unknown " + flag + " '" + name + "' (expected " + names_text(table) + ")");
}

template <class E, size_t N>
std::string name_of(const NameTable<E> (&table)[N], E value) {
  for (const auto& [n, v] : table)
    if (v == value) return n;
  return "?";
}

}  // namespace tailor
