// interop_engine_peer: the protocol engine on a plain UDP socket, playing a WireGuard peer
// with one tunnel address, for the interop tests against wireguard-go (engine_wireguard_go.sh).
//
//   interop_engine_peer --key KEY --listen IP:PORT --peer PUBKEY [--endpoint IP:PORT]
//                       [--psk PSK] --address 10.200.0.1 --peer-address 10.200.0.2
//                       [--ping N] [--rekey-every SECONDS] [--under-load] [--seconds S]
//
// It answers ICMP echo requests addressed to --address (like a host behind a tunnel) and,
// with --ping N, sends N echo requests to --peer-address, one per second, counting replies.
// It exits when --seconds have passed or every ping was answered, printing one line of
// counters; exit status 0 when --ping N got N replies (or without --ping, when it answered at
// least one echo request).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "control/engine.hpp"
#include "crypto/keys.hpp"

namespace {

using namespace meshgate;

// SIGTERM (the test script stopping a background harness) ends the loop, so the counters are
// still printed. SIGINT keeps its default: a Ctrl-C must kill the harness so the script's
// trap runs and removes the namespaces.
volatile std::sig_atomic_t stop_requested = 0;
void request_stop(int) {
    stop_requested = 1;
}
using Clock = std::chrono::steady_clock;

struct Options {
    std::string key, peer, psk;
    control::Endpoint listen;
    std::optional<control::Endpoint> endpoint;
    std::uint32_t address = 0, peer_address = 0;  // network order
    int pings = 0;
    int rekey_every = 0;
    bool under_load = false;
    int seconds = 30;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr, "interop_engine_peer: %s\n", why);
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage(("missing value for " + flag).c_str());
            }
            return argv[++i];
        };
        auto endpoint = [&](const std::string& text) {
            auto parsed = control::Endpoint::parse(text);
            if (!parsed) {
                usage(("bad endpoint " + text).c_str());
            }
            return *parsed;
        };
        auto address = [&](const std::string& text) {
            in_addr parsed{};
            if (inet_pton(AF_INET, text.c_str(), &parsed) != 1) {
                usage(("bad address " + text).c_str());
            }
            return parsed.s_addr;
        };
        if (flag == "--key")
            options.key = value();
        else if (flag == "--peer")
            options.peer = value();
        else if (flag == "--psk")
            options.psk = value();
        else if (flag == "--listen")
            options.listen = endpoint(value());
        else if (flag == "--endpoint")
            options.endpoint = endpoint(value());
        else if (flag == "--address")
            options.address = address(value());
        else if (flag == "--peer-address")
            options.peer_address = address(value());
        else if (flag == "--ping")
            options.pings = std::stoi(value());
        else if (flag == "--rekey-every")
            options.rekey_every = std::stoi(value());
        else if (flag == "--under-load")
            options.under_load = true;
        else if (flag == "--seconds")
            options.seconds = std::stoi(value());
        else
            usage(("unknown flag " + flag).c_str());
    }
    if (options.key.empty() || options.peer.empty() || options.address == 0 ||
        options.peer_address == 0) {
        usage("--key, --peer, --address and --peer-address are required");
    }
    return options;
}

std::uint16_t checksum(const std::uint8_t* data, std::size_t length) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < length; i += 2) {
        sum += std::uint32_t(data[i]) << 8 | data[i + 1];
    }
    if (length % 2) {
        sum += std::uint32_t(data[length - 1]) << 8;
    }
    while (sum >> 16) {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(~sum);
}

// An IPv4 ICMP echo (type 8 request / 0 reply) with a 32-byte payload.
std::vector<std::uint8_t> icmp_echo(std::uint32_t source, std::uint32_t destination,
                                    std::uint8_t type, std::uint16_t id, std::uint16_t sequence,
                                    const std::uint8_t* payload, std::size_t payload_length) {
    std::vector<std::uint8_t> packet(20 + 8 + payload_length, 0);
    packet[0] = 0x45;
    packet[2] = static_cast<std::uint8_t>(packet.size() >> 8);
    packet[3] = static_cast<std::uint8_t>(packet.size());
    packet[8] = 64;
    packet[9] = 1;  // ICMP
    std::memcpy(&packet[12], &source, 4);
    std::memcpy(&packet[16], &destination, 4);
    std::uint16_t header_sum = checksum(packet.data(), 20);
    packet[10] = static_cast<std::uint8_t>(header_sum >> 8);
    packet[11] = static_cast<std::uint8_t>(header_sum);
    std::uint8_t* icmp = &packet[20];
    icmp[0] = type;
    icmp[4] = static_cast<std::uint8_t>(id >> 8);
    icmp[5] = static_cast<std::uint8_t>(id);
    icmp[6] = static_cast<std::uint8_t>(sequence >> 8);
    icmp[7] = static_cast<std::uint8_t>(sequence);
    if (payload_length > 0) {
        std::memcpy(icmp + 8, payload, payload_length);
    }
    std::uint16_t icmp_sum = checksum(icmp, 8 + payload_length);
    icmp[2] = static_cast<std::uint8_t>(icmp_sum >> 8);
    icmp[3] = static_cast<std::uint8_t>(icmp_sum);
    return packet;
}

class Peer {
  public:
    explicit Peer(const Options& options) : options_(options) {
        auto key = crypto::private_key_from_base64(options.key);
        auto peer_key = crypto::public_key_from_base64(options.peer);
        if (!key || !peer_key) {
            usage("bad key");
        }
        engine_.emplace(*key, control::ProtocolConfig{});
        control::PeerOptions peer{.public_key = *peer_key, .endpoint = options.endpoint};
        if (!options.psk.empty()) {
            auto psk = crypto::private_key_from_base64(options.psk);
            if (!psk) {
                usage("bad psk");
            }
            peer.preshared_key = *psk;
        }
        peer_ = *engine_->add_peer(peer);
        open_socket();
    }

    int run() {
        const auto start = Clock::now();
        auto next_ping = start;
        auto next_rekey = start + std::chrono::seconds(options_.rekey_every);
        while (!stop_requested && Clock::now() - start < std::chrono::seconds(options_.seconds)) {
            if (options_.pings > 0 && replies_ >= options_.pings) {
                break;
            }
            if (options_.pings > 0 && sent_ < options_.pings && Clock::now() >= next_ping) {
                ping();
                next_ping += std::chrono::seconds(1);
            }
            if (options_.rekey_every > 0 && Clock::now() >= next_rekey) {
                carry_out(engine_->initiate(peer_, now(), wall()));
                next_rekey += std::chrono::seconds(options_.rekey_every);
            }
            receive(100);
            carry_out(engine_->tick(now(), wall()));
        }
        std::printf(
            "echo_requests_sent=%d echo_replies_received=%d echo_requests_answered=%d "
            "handshakes=%llu cookie_replies_sent=%llu\n",
            sent_, replies_, answered_,
            static_cast<unsigned long long>(engine_->peer(peer_)->counters.handshakes_completed),
            static_cast<unsigned long long>(engine_->drops(control::EngineDrop::cookie_required)));
        for (std::size_t i = 0; i < control::engine_drop_count; ++i) {
            auto reason = static_cast<control::EngineDrop>(i);
            if (engine_->drops(reason) != 0) {
                std::printf("drop %s=%llu\n",
                            std::string(control::engine_drop_name(reason)).c_str(),
                            static_cast<unsigned long long>(engine_->drops(reason)));
            }
        }
        bool ok = options_.pings > 0 ? replies_ >= options_.pings : answered_ > 0;
        return ok ? 0 : 1;
    }

  private:
    control::Timestamp now() const {
        return std::chrono::duration_cast<control::Duration>(Clock::now().time_since_epoch());
    }
    static control::WallClock wall() { return std::chrono::system_clock::now(); }

    void open_socket() {
        socket_ = ::socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(options_.listen.port);
        std::memcpy(&address.sin_addr, options_.listen.address.data(), 4);
        if (socket_ < 0 ||
            ::bind(socket_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
            std::perror("interop_engine_peer: bind");
            std::exit(2);
        }
    }

    void ping() {
        static const std::uint8_t payload[32] = "meshgate interop echo payload..";
        auto packet = icmp_echo(options_.address, options_.peer_address, 8, 0x4d47,
                                static_cast<std::uint16_t>(++sent_), payload, sizeof(payload));
        carry_out(engine_->send(peer_, packet, now(), wall()));
    }

    void receive(int timeout_ms) {
        pollfd descriptor{socket_, POLLIN, 0};
        if (::poll(&descriptor, 1, timeout_ms) <= 0) {
            return;
        }
        std::uint8_t buffer[65536];
        sockaddr_in from{};
        socklen_t length = sizeof(from);
        ssize_t received = ::recvfrom(socket_, buffer, sizeof(buffer), 0,
                                      reinterpret_cast<sockaddr*>(&from), &length);
        if (received < 0) {
            return;
        }
        control::Endpoint source;
        std::memcpy(source.address.data(), &from.sin_addr, 4);
        source.port = ntohs(from.sin_port);
        carry_out(engine_->on_datagram({buffer, static_cast<std::size_t>(received)}, source, now(),
                                       wall(), options_.under_load));
    }

    void carry_out(const control::Actions& actions) {
        for (const control::Action& action : actions) {
            if (action.kind == control::Action::Kind::send_to) {
                sockaddr_in to{};
                to.sin_family = AF_INET;
                to.sin_port = htons(action.endpoint.port);
                std::memcpy(&to.sin_addr, action.endpoint.address.data(), 4);
                ::sendto(socket_, action.bytes.data(), action.bytes.size(), 0,
                         reinterpret_cast<sockaddr*>(&to), sizeof(to));
            } else if (action.kind == control::Action::Kind::deliver) {
                on_inner(action.bytes);
            }
        }
    }

    void on_inner(const std::vector<std::uint8_t>& packet) {
        if (packet.size() < 28 || packet[0] != 0x45 || packet[9] != 1) {
            return;
        }
        std::uint32_t source, destination;
        std::memcpy(&source, &packet[12], 4);
        std::memcpy(&destination, &packet[16], 4);
        if (destination != options_.address) {
            return;
        }
        const std::uint8_t* icmp = &packet[20];
        if (icmp[0] == 0) {
            replies_++;
        } else if (icmp[0] == 8) {
            std::uint16_t id = static_cast<std::uint16_t>(icmp[4] << 8 | icmp[5]);
            std::uint16_t sequence = static_cast<std::uint16_t>(icmp[6] << 8 | icmp[7]);
            auto reply =
                icmp_echo(options_.address, source, 0, id, sequence, icmp + 8, packet.size() - 28);
            carry_out(engine_->send(peer_, reply, now(), wall()));
            answered_++;
        }
    }

    const Options& options_;
    std::optional<control::Engine> engine_;
    control::PeerId peer_ = 0;
    int socket_ = -1;
    int sent_ = 0, replies_ = 0, answered_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    Options options = parse(argc, argv);
    std::signal(SIGTERM, request_stop);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    Peer peer(options);
    return peer.run();
}
