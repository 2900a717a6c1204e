#include "dataplane/counters.hpp"

#include <numeric>

namespace meshgate::dataplane {
namespace {

constexpr std::string_view drop_names[] = {
#define MESHGATE_DROP_NAME(name, help) #name,
    MESHGATE_DROP_REASONS(MESHGATE_DROP_NAME)
#undef MESHGATE_DROP_NAME
};

constexpr std::string_view drop_helps[] = {
#define MESHGATE_DROP_HELP(name, help) help,
    MESHGATE_DROP_REASONS(MESHGATE_DROP_HELP)
#undef MESHGATE_DROP_HELP
};

}  // namespace

std::string_view drop_name(Drop reason) {
    return drop_names[static_cast<std::size_t>(reason)];
}

std::string_view drop_help(Drop reason) {
    return drop_helps[static_cast<std::size_t>(reason)];
}

std::uint64_t WorkerCounters::total_drops() const {
    return std::accumulate(drops.begin(), drops.end(), std::uint64_t{0});
}

}  // namespace meshgate::dataplane
