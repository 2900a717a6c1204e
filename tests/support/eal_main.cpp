// main() for unit tests that need DPDK: GoogleTest with the EAL environment installed.
#include <gtest/gtest.h>

#include "tests/support/eal_environment.hpp"

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new meshgate::test::EalEnvironment);
    return RUN_ALL_TESTS();
}
