// cxx_threads.cpp — a C++ program for the preload tests: new/delete, std::vector, std::string,
// std::map, std::shared_ptr and std::thread, with objects handed between threads.
//
// Its standard output is a deterministic checksum, compared by run_real.sh between a plain run
// and one under libheaptrail-preload.so. When the heaptrail API is present (the preload exports
// it), it also checks on stderr that operator new/delete reach the process heap's counters and
// that the heap validates; a failure there exits 1. Arguments: [threads] [rounds].
#include <dlfcn.h>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "heaptrail/heap.h"

namespace {

std::uint64_t mix(std::uint64_t hash, std::uint64_t value)
{
    hash ^= value + 0x9e3779b97f4a7c15ull + (hash << 6) + (hash >> 2);
    return hash;
}

struct Rng {
    std::uint64_t state;
    std::uint64_t next()
    {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    }
};

struct Node {
    std::string name;
    std::vector<int> values;
    std::shared_ptr<Node> next;
};

// Builds and tears down containers; the checksum depends only on the seed.
std::uint64_t work(unsigned seed, int rounds)
{
    Rng rng{0x243f6a8885a308d3ull ^ (seed * 0x100000001b3ull)};
    std::uint64_t hash = seed;
    for (int round = 0; round < rounds; round++) {
        std::map<std::string, std::vector<int>> table;
        for (int i = 0; i < 300; i++) {
            std::string key = "k" + std::to_string(rng.next() % 1000);
            key.append(rng.next() % 40, static_cast<char>('a' + i % 26));
            auto &values = table[key];
            for (std::uint64_t n = rng.next() % 64; n > 0; n--)
                values.push_back(static_cast<int>(rng.next() % 100000));
        }
        std::shared_ptr<Node> list;
        for (auto &entry : table) {
            hash = mix(hash, entry.first.size());
            for (int value : entry.second)
                hash = mix(hash, static_cast<std::uint64_t>(value));
            auto node = std::make_shared<Node>();
            node->name = entry.first + "/" + std::to_string(entry.second.size());
            node->values = std::move(entry.second);
            node->next = list;
            list = node;
        }
        while (list) {
            hash = mix(hash, list->name.size());
            list = list->next;
        }
        auto *raw = new std::uint64_t[1 + rng.next() % 5000];
        raw[0] = hash;
        hash = mix(hash, raw[0] >> 3);
        delete[] raw;
    }
    return hash;
}

// A producer thread allocates, a consumer thread frees: blocks cross threads.
std::uint64_t handoff(int items)
{
    std::mutex lock;
    std::condition_variable ready;
    std::deque<std::vector<std::uint32_t> *> queue;
    bool done = false;
    std::uint64_t consumed = 0;
    std::thread consumer([&] {
        for (;;) {
            std::unique_lock<std::mutex> guard(lock);
            ready.wait(guard, [&] { return done || !queue.empty(); });
            if (queue.empty())
                return;
            std::vector<std::uint32_t> *batch = queue.front();
            queue.pop_front();
            guard.unlock();
            for (std::uint32_t value : *batch)
                consumed = mix(consumed, value);
            delete batch;
        }
    });
    for (int i = 0; i < items; i++) {
        auto *batch = new std::vector<std::uint32_t>(static_cast<std::size_t>(i % 700 + 1));
        for (std::size_t j = 0; j < batch->size(); j++)
            (*batch)[j] = static_cast<std::uint32_t>(i * 7 + j);
        {
            std::lock_guard<std::mutex> guard(lock);
            queue.push_back(batch);
        }
        ready.notify_one();
    }
    {
        std::lock_guard<std::mutex> guard(lock);
        done = true;
    }
    ready.notify_one();
    consumer.join();
    return consumed;
}

// With the heaptrail API in the process: operator new/delete must be counted by the process
// heap. Returns false (after saying why) when they are not.
bool check_served_by_heaptrail()
{
    auto process_heap = reinterpret_cast<ht_heap *(*)()>(dlsym(RTLD_DEFAULT, "ht_process_heap"));
    auto counters_get = reinterpret_cast<bool (*)(ht_heap *, ht_heap_counters *)>(
        dlsym(RTLD_DEFAULT, "ht_heap_counters_get"));
    auto validate = reinterpret_cast<bool (*)(ht_heap *, std::uint32_t, const void *)>(
        dlsym(RTLD_DEFAULT, "ht_heap_validate"));
    if (!process_heap || !counters_get || !validate)
        return true; // a plain run: nothing to check
    ht_heap *heap = process_heap();
    auto total = [&](ht_op op) {
        ht_heap_counters counters{};
        counters_get(heap, &counters);
        std::uint64_t sum = 0;
        for (std::uint64_t count : counters.counts[op])
            sum += count;
        return sum;
    };
    std::uint64_t allocs = total(HT_OP_ALLOC), frees = total(HT_OP_FREE);
    void *raw = ::operator new(1000); // a direct call: never elided
    bool block_ok = validate(heap, 0, raw);
    ::operator delete(raw);
    auto *text = new std::string(5000, 'x');
    delete text;
    bool ok = true;
    if (total(HT_OP_ALLOC) < allocs + 2 || total(HT_OP_FREE) < frees + 2) {
        std::fprintf(stderr, "cxx_threads: operator new/delete did not reach the process heap\n");
        ok = false;
    }
    if (!block_ok || !validate(heap, 0, nullptr)) {
        std::fprintf(stderr, "cxx_threads: ht_heap_validate failed\n");
        ok = false;
    }
    return ok;
}

} // namespace

int main(int argc, char **argv)
{
    unsigned threads = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 4;
    int rounds = argc > 2 ? std::atoi(argv[2]) : 40;
    if (!check_served_by_heaptrail())
        return 1;
    std::vector<std::uint64_t> results(threads);
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < threads; t++)
        workers.emplace_back([&results, t, rounds] { results[t] = work(t + 1, rounds); });
    std::uint64_t passed = handoff(3000);
    for (auto &worker : workers)
        worker.join();
    std::uint64_t total = passed;
    for (unsigned t = 0; t < threads; t++) {
        std::printf("thread %u: %016llx\n", t, static_cast<unsigned long long>(results[t]));
        total = mix(total, results[t]);
    }
    std::printf("handoff: %016llx\n", static_cast<unsigned long long>(passed));
    std::printf("total: %016llx\n", static_cast<unsigned long long>(total));
    return check_served_by_heaptrail() ? 0 : 1;
}
