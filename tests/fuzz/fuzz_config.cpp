// libFuzzer target: any bytes as a configuration file. Loading must return a Config or an
// error, never crash, hang or throw out.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/load.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    auto result = meshgate::config::load_string(text, "fuzz.yaml");
    (void)result;
    return 0;
}
