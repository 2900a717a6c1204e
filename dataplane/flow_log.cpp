#include "dataplane/flow_log.hpp"

#include <fcntl.h>
#include <rte_cycles.h>
#include <unistd.h>

#include <rte_errno.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <system_error>

#include "dataplane/control_lcore.hpp"
#include "dataplane/protocol_numbers.hpp"

namespace meshgate::dataplane {
namespace {

constexpr unsigned pop_burst = 32;

std::string protocol_name(std::uint8_t protocol) {
    switch (protocol) {
        case protocol_tcp:
            return "tcp";
        case protocol_udp:
            return "udp";
        case protocol_icmp:
            return "icmp";
        case protocol_icmpv6:
            return "icmpv6";
        default:
            return std::to_string(protocol);
    }
}

// "10.100.0.2:51514", "[2001:db8::2]:443": the engine's endpoint format, as everywhere else.
std::string address_port(const IpAddress& address, std::uint16_t port) {
    return to_engine_endpoint({address, port}).to_string();
}

// RFC 3339 UTC with milliseconds: "2026-11-25T09:00:00.123Z".
std::string timestamp(std::uint64_t ns) {
    const std::time_t seconds = static_cast<std::time_t>(ns / 1'000'000'000);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    char text[40];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
    char millis[8];
    std::snprintf(millis, sizeof millis, ".%03uZ", static_cast<unsigned>(ns / 1'000'000 % 1000));
    return std::string(text) + millis;
}

void field(std::string& line, const char* name, const std::string& text) {
    line += ",\"";
    line += name;
    line += "\":\"";
    line += text;  // every value we print is an address, a time or base64: nothing to escape
    line += '"';
}

void field(std::string& line, const char* name, std::uint64_t number) {
    line += ",\"";
    line += name;
    line += "\":";
    line += std::to_string(number);
}

}  // namespace

WallClock WallClock::now() {
    timespec real{};
    const std::uint64_t before = rte_get_tsc_cycles();
    ::clock_gettime(CLOCK_REALTIME, &real);
    const std::uint64_t after = rte_get_tsc_cycles();
    WallClock clock;
    clock.tsc = before + (after - before) / 2;
    clock.ns = static_cast<std::uint64_t>(real.tv_sec) * 1'000'000'000 +
               static_cast<std::uint64_t>(real.tv_nsec);
    clock.tsc_hz = rte_get_tsc_hz();
    return clock;
}

FlowLogQueue::FlowLogQueue(const std::string& name, unsigned capacity, int socket_id) {
    // RING_F_EXACT_SZ: the ring holds `capacity` records, not one fewer.
    ring_ = rte_ring_create_elem(name.c_str(), sizeof(FlowRecord), capacity, socket_id,
                                 RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
    if (ring_ == nullptr) {
        throw std::runtime_error("flow log queue " + name + ": cannot create its ring (" +
                                 std::string(rte_strerror(rte_errno)) + ")");
    }
}

FlowLogQueue::~FlowLogQueue() {
    rte_ring_free(ring_);
}

std::string flow_log_line(const FlowRecord& record) {
    std::string line = "{\"event\":\"";
    line += record.event == FlowEvent::start ? "start" : "end";
    line += '"';
    field(line, "peer", crypto::to_base64(record.peer));
    field(line, "proto", protocol_name(record.protocol));
    field(line, "src", address_port(record.source, record.source_port));
    field(line, "dst", address_port(record.destination, record.destination_port));
    field(line, "nat", address_port(record.translated, record.translated_port));
    field(line, "start", timestamp(record.start_ns));
    if (record.event == FlowEvent::end) {
        field(line, "end", timestamp(record.end_ns));
        field(line, "bytes_out", record.bytes_out);
        field(line, "bytes_in", record.bytes_in);
        field(line, "packets_out", record.packets_out);
        field(line, "packets_in", record.packets_in);
    }
    line += "}\n";
    return line;
}

FlowLogWriter::FlowLogWriter(const std::string& path, std::vector<FlowLogQueue*> queues)
    : queues_(std::move(queues)) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "flow log " + path);
    }
}

FlowLogWriter::~FlowLogWriter() {
    while (drain() != 0) {
    }
    ::close(fd_);
}

std::size_t FlowLogWriter::drain(std::size_t limit) {
    FlowRecord records[pop_burst];
    std::size_t moved = 0;
    std::size_t idle_queues = 0;
    // Round robin over the queues, one burst each, until the limit or all are empty.
    while (moved < limit && !queues_.empty() && idle_queues < queues_.size()) {
        FlowLogQueue& queue = *queues_[next_queue_];
        next_queue_ = (next_queue_ + 1) % queues_.size();
        const auto want = static_cast<unsigned>(std::min<std::size_t>(pop_burst, limit - moved));
        const unsigned got = queue.pop(records, want);
        idle_queues = got == 0 ? idle_queues + 1 : 0;
        for (unsigned i = 0; i < got; ++i) {
            buffer_ += flow_log_line(records[i]);
        }
        moved += got;
    }
    if (moved != 0) {
        write_out(moved);
    }
    return moved;
}

// One append of everything formatted. O_APPEND keeps lines whole even when an operator's
// tool appends too; a short write (disk full) loses the rest of this batch, counted.
void FlowLogWriter::write_out(std::size_t records) {
    std::size_t done = 0;
    while (done < buffer_.size()) {
        const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            write_errors_ += records;
            buffer_.clear();
            return;
        }
        done += static_cast<std::size_t>(n);
    }
    written_ += records;
    buffer_.clear();
}

std::uint64_t FlowLogWriter::dropped() const {
    std::uint64_t total = 0;
    for (const FlowLogQueue* queue : queues_) {
        total += queue->dropped();
    }
    return total;
}

}  // namespace meshgate::dataplane
