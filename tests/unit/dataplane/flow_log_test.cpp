// Flow log: records a worker pushes come out of the control thread's writer as JSON lines
// with every field (exact text for IPv4 and IPv6), in a file created 0600 and appended to;
// a full queue drops and counts; a drain is bounded; TSC converts to wall time.
#include "dataplane/flow_log.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "crypto/keys.hpp"
#include "crypto/x25519.hpp"
#include "tests/support/eal_environment.hpp"

namespace meshgate::dataplane {
namespace {

// 2026-11-25T09:00:00Z
constexpr std::uint64_t nov25_9am_ns = 1'795'597'200ULL * 1'000'000'000;

IpAddress ip(const std::string& text) {
    IpAddress address;
    address.is_v6 = text.find(':') != std::string::npos;
    EXPECT_EQ(::inet_pton(address.is_v6 ? AF_INET6 : AF_INET, text.c_str(), address.bytes.data()),
              1);
    return address;
}

FlowRecord tcp_flow(const crypto::PublicKey& peer) {
    FlowRecord record;
    record.event = FlowEvent::end;
    record.peer = peer;
    record.protocol = 6;
    record.source = ip("10.100.0.2");
    record.source_port = 51514;
    record.destination = ip("203.0.113.10");
    record.destination_port = 80;
    record.translated = ip("198.51.100.1");
    record.translated_port = 40001;
    record.start_ns = nov25_9am_ns + 123'456'789;
    record.end_ns = nov25_9am_ns + 3'456'000'000;
    record.bytes_out = 123;
    record.bytes_in = 456;
    record.packets_out = 3;
    record.packets_in = 4;
    return record;
}

// A fresh path in /tmp, removed by the destructor.
struct TempPath {
    std::string path;
    TempPath() {
        char name[] = "/tmp/meshgate-flows-XXXXXX";
        int fd = ::mkstemp(name);
        EXPECT_GE(fd, 0);
        ::close(fd);
        ::unlink(name);
        path = name;
    }
    ~TempPath() { std::remove(path.c_str()); }
};

std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

// Crude JSON check: one object of "key":value pairs, strings without escapes.
bool looks_like_json_object(const std::string& line) {
    if (line.size() < 2 || line.front() != '{' || line.back() != '}') {
        return false;
    }
    unsigned quotes = 0;
    for (char c : line) {
        quotes += c == '"';
        if (c == '\\' || c == '\n') {
            return false;
        }
    }
    return quotes % 2 == 0;
}

const crypto::PublicKey peer_key = crypto::derive_public_key(crypto::generate_private_key());

TEST(FlowLog, WorkerRecordsBecomeJsonLines) {
    TempPath file;
    FlowLogQueue queue("flows_json", 64);
    FlowLogWriter writer(file.path, {&queue});
    // The worker side runs on another thread, as on a worker lcore.
    std::thread worker([&] {
        FlowRecord start = tcp_flow(peer_key);
        start.event = FlowEvent::start;
        start.end_ns = 0;
        start.bytes_out = start.bytes_in = start.packets_out = start.packets_in = 0;
        EXPECT_TRUE(queue.push(start));
        EXPECT_TRUE(queue.push(tcp_flow(peer_key)));
    });
    worker.join();
    EXPECT_EQ(writer.drain(), 2u);
    EXPECT_EQ(writer.written(), 2u);

    const std::string key = crypto::to_base64(peer_key);
    const std::vector<std::string> lines = lines_of(file.path);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0], "{\"event\":\"start\",\"peer\":\"" + key +
                            "\",\"proto\":\"tcp\",\"src\":\"10.100.0.2:51514\","
                            "\"dst\":\"203.0.113.10:80\",\"nat\":\"198.51.100.1:40001\","
                            "\"start\":\"2026-11-25T09:00:00.123Z\"}");
    EXPECT_EQ(lines[1], "{\"event\":\"end\",\"peer\":\"" + key +
                            "\",\"proto\":\"tcp\",\"src\":\"10.100.0.2:51514\","
                            "\"dst\":\"203.0.113.10:80\",\"nat\":\"198.51.100.1:40001\","
                            "\"start\":\"2026-11-25T09:00:00.123Z\","
                            "\"end\":\"2026-11-25T09:00:03.456Z\",\"bytes_out\":123,"
                            "\"bytes_in\":456,\"packets_out\":3,\"packets_in\":4}");
    for (const std::string& line : lines) {
        EXPECT_TRUE(looks_like_json_object(line)) << line;
    }
}

TEST(FlowLog, Ipv6AndOtherProtocols) {
    FlowRecord record = tcp_flow(peer_key);
    record.protocol = 17;
    record.source = ip("fd00:100::2");
    record.source_port = 5353;
    record.destination = ip("2001:db8::10");
    record.destination_port = 443;
    record.translated = ip("2001:db8:ffff::1");
    record.translated_port = 1024;
    const std::string line = flow_log_line(record);
    EXPECT_NE(line.find("\"proto\":\"udp\",\"src\":\"[fd00:100::2]:5353\","
                        "\"dst\":\"[2001:db8::10]:443\",\"nat\":\"[2001:db8:ffff::1]:1024\""),
              std::string::npos)
        << line;
    EXPECT_EQ(line.back(), '\n');
    record.protocol = 58;
    EXPECT_NE(flow_log_line(record).find("\"proto\":\"icmpv6\""), std::string::npos);
    record.protocol = 1;
    EXPECT_NE(flow_log_line(record).find("\"proto\":\"icmp\""), std::string::npos);
    record.protocol = 47;
    EXPECT_NE(flow_log_line(record).find("\"proto\":\"47\""), std::string::npos);
}

TEST(FlowLog, FullQueueDropsAndCounts) {
    TempPath file;
    FlowLogQueue queue("flows_full", 8);
    FlowLogQueue other("flows_other", 8);
    FlowLogWriter writer(file.path, {&queue, &other});
    const FlowRecord record = tcp_flow(peer_key);
    unsigned pushed = 0;
    for (int i = 0; i < 11; ++i) {
        pushed += queue.push(record);
    }
    EXPECT_EQ(pushed, 8u) << "exactly the capacity";
    EXPECT_EQ(queue.dropped(), 3u);
    EXPECT_TRUE(other.push(record));
    EXPECT_EQ(writer.dropped(), 3u);
    EXPECT_EQ(writer.drain(), 9u);
    EXPECT_EQ(lines_of(file.path).size(), 9u);
    // Room again once drained.
    EXPECT_TRUE(queue.push(record));
}

TEST(FlowLog, DrainIsBoundedAndTakesQueuesInTurn) {
    TempPath file;
    FlowLogQueue busy("flows_busy", 256);
    FlowLogQueue quiet("flows_quiet", 256);
    FlowLogWriter writer(file.path, {&busy, &quiet});
    FlowRecord record = tcp_flow(peer_key);
    for (int i = 0; i < 200; ++i) {
        ASSERT_TRUE(busy.push(record));
    }
    record.source_port = 7;
    ASSERT_TRUE(quiet.push(record));
    EXPECT_EQ(writer.drain(40), 40u);
    // The quiet worker's record got out in the first bounded drain.
    bool quiet_seen = false;
    for (const std::string& line : lines_of(file.path)) {
        quiet_seen |= line.find("10.100.0.2:7\"") != std::string::npos;
    }
    EXPECT_TRUE(quiet_seen);
    EXPECT_EQ(writer.drain(1000), 161u);
    EXPECT_EQ(writer.drain(), 0u);
}

TEST(FlowLog, FileIsPrivateAndAppendedTo) {
    TempPath file;
    {
        FlowLogQueue queue("flows_mode", 8);
        FlowLogWriter writer(file.path, {&queue});
        queue.push(tcp_flow(peer_key));
        // The destructor drains what is left.
    }
    struct stat status {};
    ASSERT_EQ(::stat(file.path.c_str(), &status), 0);
    EXPECT_EQ(status.st_mode & 0777, 0600u);
    {
        FlowLogQueue queue("flows_again", 8);
        FlowLogWriter writer(file.path, {&queue});
        queue.push(tcp_flow(peer_key));
        writer.drain();
    }
    EXPECT_EQ(lines_of(file.path).size(), 2u) << "a restart appends, never truncates";
    EXPECT_THROW(FlowLogWriter("/nonexistent-dir/flows.jsonl", {}), std::system_error);
}

TEST(WallClock, ConvertsTscToEpochNanoseconds) {
    WallClock clock{1000, nov25_9am_ns, 2'000'000'000};
    EXPECT_EQ(clock.to_ns(1000), nov25_9am_ns);
    EXPECT_EQ(clock.to_ns(1000 + 3'000'000'000ULL), nov25_9am_ns + 1'500'000'000);
    EXPECT_EQ(clock.to_ns(999), nov25_9am_ns) << "clamped, never wraps";
    // A year of cycles: no overflow in the multiplication.
    const std::uint64_t year = 365ULL * 86400;
    EXPECT_EQ(clock.to_ns(1000 + year * 2'000'000'000 + 1), nov25_9am_ns + year * 1'000'000'000);
    // The real clock agrees with the system's to within a second.
    const WallClock real = WallClock::now();
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    const auto system_ns = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000 +
                           static_cast<std::uint64_t>(now.tv_nsec);
    const std::uint64_t ours = real.to_ns(rte_get_tsc_cycles());
    EXPECT_LT(ours > system_ns ? ours - system_ns : system_ns - ours, 1'000'000'000u);
}

}  // namespace
}  // namespace meshgate::dataplane
