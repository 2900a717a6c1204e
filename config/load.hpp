// YAML to Config. Every error names file:line:column and what was expected; unknown keys are
// errors; nothing secret appears in a message (a bad key is described, never echoed).
#pragma once

#include <string>
#include <variant>

#include "config/config.hpp"

namespace meshgate::config {

struct LoadError {
    std::string message;  // "gw.yaml:12:7: peers[2].allowed_ips[0]: expected ..., got ..."
};

using LoadResult = std::variant<Config, LoadError>;

// Loads and validates (validate.hpp) a file.
LoadResult load_file(const std::string& path);
// The same from text; `name` stands in for the file name in messages (tests, fuzzing).
LoadResult load_string(const std::string& text, const std::string& name);

}  // namespace meshgate::config
