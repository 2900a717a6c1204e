// Addresses and prefixes: parsing, canonical networks, containment and overlap.
#include "config/ip.hpp"

#include <gtest/gtest.h>

namespace meshgate::config {
namespace {

Prefix p(const char* text) {
    auto parsed = Prefix::parse(text);
    EXPECT_TRUE(parsed.has_value()) << text;
    return parsed.value_or(Prefix{});
}

TEST(Prefix, ParsesAndPrints) {
    EXPECT_EQ(p("10.0.0.1/24").to_string(), "10.0.0.1/24");
    EXPECT_EQ(p("10.0.0.1").to_string(), "10.0.0.1/32");
    EXPECT_EQ(p("fd00::1/64").to_string(), "fd00::1/64");
    EXPECT_EQ(p("2001:db8::").length, 128);
    for (const char* bad : {"", "10.0.0.1/", "10.0.0.1/33", "fd00::/129", "10.0.0/8", "x/8",
                            "10.0.0.1/8x", "10.0.0.1/-1"}) {
        EXPECT_FALSE(Prefix::parse(bad).has_value()) << bad;
    }
}

TEST(Prefix, NetworkContainsOverlaps) {
    EXPECT_EQ(p("10.1.2.3/23").network().to_string(), "10.1.2.0/23");
    EXPECT_TRUE(p("10.0.0.0/24").contains(IpAddress::parse("10.0.0.255").value()));
    EXPECT_FALSE(p("10.0.0.0/24").contains(IpAddress::parse("10.0.1.0").value()));
    EXPECT_FALSE(p("::/0").contains(IpAddress::parse("10.0.0.1").value()));
    EXPECT_TRUE(p("10.0.0.0/24").overlaps(p("10.0.0.5/32")));
    EXPECT_TRUE(p("10.0.0.5/32").overlaps(p("10.0.0.0/24")));
    EXPECT_TRUE(p("0.0.0.0/0").overlaps(p("192.0.2.0/24")));
    EXPECT_FALSE(p("10.0.0.0/25").overlaps(p("10.0.0.128/25")));
    EXPECT_FALSE(p("10.0.0.0/8").overlaps(p("fd00::/8")));
}

}  // namespace
}  // namespace meshgate::config
