// meshgate: dispatches subcommands and does nothing else.
//
//   meshgate genkey            a new private key, base64, as `wg genkey`
//   meshgate pubkey            reads a private key on stdin, prints its public key (`wg pubkey`)
//   meshgate run -c FILE       (issue 4) run the gateway
//   meshgate check -c FILE     (issue 4) validate a configuration
//   meshgate show              (issue 4) counters from the running gateway
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>

#include "crypto/keys.hpp"
#include "crypto/x25519.hpp"

namespace {

int usage(std::FILE* out) {
    std::fputs(
        "usage: meshgate <command> [options]\n"
        "  genkey            print a new private key (base64, as `wg genkey`)\n"
        "  pubkey            read a private key on stdin, print its public key (`wg pubkey`)\n",
        out);
    return out == stdout ? 0 : 1;
}

int genkey() {
    auto key = meshgate::crypto::generate_private_key();
    std::string text = meshgate::crypto::to_base64(key.span());
    std::printf("%s\n", text.c_str());
    meshgate::crypto::wipe(text.data(), text.size());
    return 0;
}

int pubkey() {
    std::string line;
    std::getline(std::cin, line);
    // `wg pubkey` tolerates the trailing newline and spaces a shell pipe adds.
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
        line.pop_back();
    }
    auto key = meshgate::crypto::private_key_from_base64(line);
    meshgate::crypto::wipe(line.data(), line.size());
    if (!key) {
        std::fputs("meshgate pubkey: stdin is not a base64 WireGuard private key\n", stderr);
        return 1;
    }
    auto public_key = meshgate::crypto::derive_public_key(*key);
    std::printf("%s\n", meshgate::crypto::to_base64(public_key).c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        return usage(stderr);
    }
    std::string_view command = argv[1];
    if (command == "genkey") {
        return genkey();
    }
    if (command == "pubkey") {
        return pubkey();
    }
    if (command == "-h" || command == "--help" || command == "help") {
        return usage(stdout);
    }
    std::fprintf(stderr, "meshgate: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
