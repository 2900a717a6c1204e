// meshgate: dispatches subcommands and does nothing else.
//
//   meshgate genkey            a new private key, base64, as `wg genkey`
//   meshgate pubkey            reads a private key on stdin, prints its public key (`wg pubkey`)
//   meshgate check -c FILE     validate a configuration and print a summary (exit 0 or 1)
//   meshgate run -c FILE [--socket PATH] [-- EAL ARGS]   run the gateway until SIGINT/SIGTERM
//   meshgate show [--socket PATH]                          counters from the running gateway
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/load.hpp"
#include "crypto/keys.hpp"
#include "crypto/x25519.hpp"
#include "dataplane/gateway.hpp"

namespace {

int usage(std::FILE* out) {
    std::fputs(
        "usage: meshgate <command> [options]\n"
        "  genkey            print a new private key (base64, as `wg genkey`)\n"
        "  pubkey            read a private key on stdin, print its public key (`wg pubkey`)\n"
        "  check -c FILE     validate a configuration file and print a summary\n"
        "  run -c FILE [--socket PATH] [-- EAL ARGS]\n"
        "                    run the gateway (EAL arguments after -- override the file's)\n"
        "  show [--socket PATH]\n"
        "                    per-peer and per-worker counters of the running gateway\n",
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

const char* role_name(meshgate::config::PortRole role) {
    return role == meshgate::config::PortRole::wan ? "wan" : "uplink";
}

std::string permissions_text(std::uint8_t permissions) {
    std::string out;
    for (auto [bit, name] : {std::pair{meshgate::config::permission_exit, "exit"},
                             std::pair{meshgate::config::permission_lan, "lan"},
                             std::pair{meshgate::config::permission_peers, "peers"}}) {
        if (permissions & bit) {
            out += out.empty() ? name : std::string(",") + name;
        }
    }
    return out.empty() ? "none" : out;
}

int check(int argc, char** argv) {
    if (argc != 4 || std::string_view(argv[2]) != "-c") {
        std::fputs("usage: meshgate check -c FILE.yaml\n", stderr);
        return 1;
    }
    auto result = meshgate::config::load_file(argv[3]);
    if (auto* error = std::get_if<meshgate::config::LoadError>(&result)) {
        std::fprintf(stderr, "%s\n", error->message.c_str());
        return 1;
    }
    const auto& config = std::get<meshgate::config::Config>(result);
    auto public_key = meshgate::crypto::derive_public_key(config.interface.private_key);
    std::printf("%s: ok\n", argv[3]);
    std::printf("interface: public key %s, listen port %u\n",
                meshgate::crypto::to_base64(public_key).c_str(), config.interface.listen_port);
    for (const auto& port : config.ports) {
        std::printf("port %s (%s): %s %s%s\n", port.name.c_str(), role_name(port.role),
                    port.device.c_str(), port.address ? port.address->to_string().c_str() : "",
                    port.address6 ? (" " + port.address6->to_string()).c_str() : "");
    }
    std::printf("workers: %zu, control lcore %u; hugepages %s\n", config.workers.lcores.size(),
                config.workers.control_lcore, config.eal.hugepages ? "on" : "off");
    std::printf("peers: %zu\n", config.peers.size());
    for (const auto& peer : config.peers) {
        std::string allowed;
        for (const auto& prefix : peer.allowed_ips) {
            allowed += (allowed.empty() ? "" : " ") + prefix.to_string();
        }
        std::printf("  %s %s allowed %s permissions %s%s\n", peer.name.c_str(),
                    meshgate::crypto::to_base64(peer.public_key).c_str(), allowed.c_str(),
                    permissions_text(peer.permissions).c_str(),
                    peer.has_preshared_key ? " psk" : "");
    }
    return 0;
}

int run(int argc, char** argv) {
    std::string file, socket = meshgate::dataplane::default_control_socket;
    std::vector<std::string> overrides;
    for (int i = 2; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--") {
            overrides.assign(argv + i + 1, argv + argc);
            break;
        }
        if (arg == "-c" && i + 1 < argc) {
            file = argv[++i];
        } else if (arg == "--socket" && i + 1 < argc) {
            socket = argv[++i];
        } else {
            std::fputs("usage: meshgate run -c FILE.yaml [--socket PATH] [-- EAL ARGS]\n", stderr);
            return 1;
        }
    }
    if (file.empty()) {
        std::fputs("usage: meshgate run -c FILE.yaml [--socket PATH] [-- EAL ARGS]\n", stderr);
        return 1;
    }
    auto result = meshgate::config::load_file(file);
    if (auto* error = std::get_if<meshgate::config::LoadError>(&result)) {
        std::fprintf(stderr, "%s\n", error->message.c_str());
        return 1;
    }
    return meshgate::dataplane::run_gateway(std::get<meshgate::config::Config>(result), overrides,
                                            socket);
}

int show(int argc, char** argv) {
    std::string socket = meshgate::dataplane::default_control_socket;
    if (argc == 4 && std::string_view(argv[2]) == "--socket") {
        socket = argv[3];
    } else if (argc != 2) {
        std::fputs("usage: meshgate show [--socket PATH]\n", stderr);
        return 1;
    }
    return meshgate::dataplane::show_gateway(socket);
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
    if (command == "check") {
        return check(argc, argv);
    }
    if (command == "run") {
        return run(argc, argv);
    }
    if (command == "show") {
        return show(argc, argv);
    }
    if (command == "-h" || command == "--help" || command == "help") {
        return usage(stdout);
    }
    std::fprintf(stderr, "meshgate: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
