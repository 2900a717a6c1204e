// The flow log (issue 5): "whose traffic was this?" for an exit node run for others.
//
// A worker that creates or expires a NAT translation fills a FlowRecord and pushes it into
// its own FlowLogQueue; it never blocks and never touches a file (a full queue drops the
// record and counts it). The control thread's FlowLogWriter drains every queue, a bounded
// number of records per call, and appends one JSON object per line to the log file:
//
//   {"event":"end","peer":"<base64 public key>","proto":"tcp","src":"10.100.0.2:51514",
//    "dst":"203.0.113.10:80","nat":"198.51.100.1:40001","start":"2026-11-25T09:00:00.123Z",
//    "end":"2026-11-25T09:00:03.456Z","bytes_out":123,"bytes_in":456,"packets_out":3,
//    "packets_in":4}
//
// Records travel by value: each queue is an rte_ring whose elements are whole FlowRecords
// (rte_ring_create_elem, element size sizeof(FlowRecord)). The alternative, a ring of
// pointers into a per-worker pool, needs a second path to return records to the pool and
// ties a record's life to the control thread's pace; a 144-byte copy per flow start or end
// (never per packet) costs less than that bookkeeping. One ring per worker, single producer
// and single consumer, so neither end needs an atomic read-modify-write.
//
// The record carries the peer's public key itself, not a peer id to resolve later: by the
// time the control thread formats the line the peer may be gone and its id reused, and a
// log that names the wrong peer is worse than none. No secret ever enters a record.
#pragma once

#include <rte_ring.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "crypto/keys.hpp"
#include "dataplane/headers.hpp"

namespace meshgate::dataplane {

enum class FlowEvent : std::uint8_t { start, end };

// Out = from the peer toward the internet; in = the replies. Ports are in host byte order;
// for ICMP echo they hold the echo identifier (inner, and as translated).
struct FlowRecord {
    crypto::PublicKey peer{};
    IpAddress source;       // the peer's inner source
    IpAddress destination;  // where it went
    IpAddress translated;   // the uplink address the internet saw
    std::uint16_t source_port = 0;
    std::uint16_t destination_port = 0;
    std::uint16_t translated_port = 0;
    FlowEvent event = FlowEvent::start;
    std::uint8_t protocol = 0;   // IP protocol number: 6 tcp, 17 udp, 1 icmp, 58 icmpv6
    std::uint64_t start_ns = 0;  // wall clock, nanoseconds since the Unix epoch
    std::uint64_t end_ns = 0;    // 0 for a start event
    std::uint64_t bytes_out = 0, bytes_in = 0;
    std::uint64_t packets_out = 0, packets_in = 0;
};
static_assert(std::is_trivially_copyable_v<FlowRecord>, "copied by value through a ring");
static_assert(sizeof(FlowRecord) % 4 == 0, "rte_ring element sizes are multiples of 4");
static_assert(sizeof(FlowRecord) == 144, "the copy per flow event the comment above prices");

// TSC to wall-clock time, so a worker can stamp records without a system call. Sampled by
// the control thread once before workers launch (now()); read-only afterwards. Drift of the
// TSC against NTP over a long run is bounded by the TSC's accuracy; the log wants seconds.
struct WallClock {
    std::uint64_t tsc = 0;  // a TSC reading ...
    std::uint64_t ns = 0;   // ... and the wall-clock time (ns since the epoch) at that moment
    std::uint64_t tsc_hz = 1;

    // Control thread, cold. Needs EAL (rte_get_tsc_hz()).
    static WallClock now();
    // Any thread. Readings before `tsc` (only possible across unsynchronised cores) clamp.
    std::uint64_t to_ns(std::uint64_t reading) const {
        const std::uint64_t elapsed = reading > tsc ? reading - tsc : 0;
        // Split so elapsed * 1e9 cannot overflow.
        return ns + elapsed / tsc_hz * 1'000'000'000 + elapsed % tsc_hz * 1'000'000'000 / tsc_hz;
    }
};

class FlowLogQueue {
  public:
    // Control thread, before the worker starts. The ring holds exactly `capacity` records;
    // `name` must be unique in the process (it names the ring's memzone). Cold path: throws
    // std::runtime_error when the ring cannot be created.
    FlowLogQueue(const std::string& name, unsigned capacity, int socket_id = SOCKET_ID_ANY);
    ~FlowLogQueue();
    FlowLogQueue(const FlowLogQueue&) = delete;
    FlowLogQueue& operator=(const FlowLogQueue&) = delete;

    // ---- the owning worker (the single producer) ----
    // Never blocks: false, and the record counted as dropped, when the ring is full.
    bool push(const FlowRecord& record) {
        // DPDK 22.11 takes a non-const pointer but only reads through it.
        if (rte_ring_sp_enqueue_elem(ring_, const_cast<FlowRecord*>(&record), sizeof record) == 0) {
            return true;
        }
        ++dropped_;
        return false;
    }

    // ---- the control thread (the single consumer) ----
    unsigned pop(FlowRecord* records, unsigned max) {
        return rte_ring_sc_dequeue_burst_elem(ring_, records, sizeof(FlowRecord), max, nullptr);
    }
    // Written by the worker only; read racily (a monotonic 64-bit counter, as WorkerCounters).
    std::uint64_t dropped() const { return dropped_; }

  private:
    rte_ring* ring_ = nullptr;
    alignas(64) std::uint64_t dropped_ = 0;  // own cache line: the reader polls it
};

// One JSON line for a record, with its '\n'. Cold path (the control thread).
std::string flow_log_line(const FlowRecord& record);

// Control thread only: drains the workers' queues into the log file.
class FlowLogWriter {
  public:
    // Opens `path` for appending (O_APPEND, created with mode 0600: the log names who went
    // where). Cold path: throws std::system_error when it cannot.
    FlowLogWriter(const std::string& path, std::vector<FlowLogQueue*> queues);
    // Drains what is left (the workers have stopped by then) and closes.
    ~FlowLogWriter();
    FlowLogWriter(const FlowLogWriter&) = delete;
    FlowLogWriter& operator=(const FlowLogWriter&) = delete;

    // Moves at most `limit` records, taken from the queues in turn, to the file, and returns
    // how many. Everything drained is written before it returns (one write() per call that
    // found records), so calling it every control tick is the regular flush.
    std::size_t drain(std::size_t limit = 1024);

    std::uint64_t written() const { return written_; }
    // Records lost to a failing write (disk full, I/O error); they are not retried.
    std::uint64_t write_errors() const { return write_errors_; }
    // Records the workers could not queue, summed over every queue (read racily).
    std::uint64_t dropped() const;

  private:
    void write_out(std::size_t records);

    int fd_ = -1;
    std::vector<FlowLogQueue*> queues_;
    std::size_t next_queue_ = 0;  // round robin, so one busy worker cannot starve others
    std::string buffer_;
    std::uint64_t written_ = 0;
    std::uint64_t write_errors_ = 0;
};

}  // namespace meshgate::dataplane
