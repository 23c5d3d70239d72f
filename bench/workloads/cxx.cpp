// cxx.cpp — a C++ program as its allocator sees it: text parsed into std::string fields,
// indexed in a std::map and counted in a std::unordered_map, std::vectors grown by push_back,
// small tree nodes made with new and deleted, objects kept across rounds and some freed by
// another thread. Each of `threads` workers runs `iterations` rounds of: generate a batch of
// text records (fields from 1 B to 32 KiB, short ones within std::string's inline buffer and
// longer ones), parse it into Record objects, index, count, copy and prune the index, keep the
// batch in a window of recent batches of which a random one is retired (frees out of LIFO
// order), and hand about a tenth of the records to the next worker through a bounded,
// mutex-protected mailbox; every 16th round also grows a vector to 1 MiB. Each record is
// checked against its generator's digest when parsed and again before it is freed. The
// checksum folds each worker's rounds in order, plus an order-free sum of what it received.
#include "bench_common.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace
{

constexpr std::size_t kVocabularyWords = 4096; // per worker
constexpr std::size_t kMinRecords = 150;       // per round
constexpr std::size_t kMaxRecords = 350;
constexpr std::size_t kMaxTags = 6;
constexpr std::size_t kMaxPathDepth = 5;
constexpr std::size_t kWindowBatches = 12;  // batches a worker keeps across rounds
constexpr std::size_t kMailboxLimit = 1024; // records waiting for one worker
static_assert(kMailboxLimit >= kMaxRecords, "a whole round's records fit in a mailbox");
constexpr std::size_t kKeptReceived = 256; // received records held until later arrivals
constexpr unsigned long kLargeVectorPeriod = 16;
constexpr std::size_t kLargeVectorWords = 131072; // 1 MiB of uint64_t

// Salts, so that equal text in two different fields does not hash alike.
enum Salt : std::uint64_t { kKey = 1, kPath, kTag, kPayload, kText, kIndexKey, kPrune, kCount };

constexpr char kPayloadAlphabet[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._";
constexpr std::size_t kPatternLength = 1000; // payload text, per worker

// A corrupted block ends the process at once: exit() would run atexit handlers and static
// destructors while the other workers still run.
[[noreturn]] void corrupt(const char *what, std::size_t size)
{
    std::fprintf(stderr, "cxx: corrupted block (%s, %zu bytes)\n", what, size);
    std::fflush(stderr);
    std::_Exit(BENCH_EXIT_CORRUPT);
}

// Eight bytes at a time, so that reading records back does not outweigh allocating them.
std::uint64_t hash_bytes(const char *bytes, std::size_t length, std::uint64_t salt)
{
    std::uint64_t hash = bench_mix(salt + length);
    std::size_t i = 0;
    for (; i + 8 <= length; i += 8) {
        std::uint64_t word;
        std::memcpy(&word, bytes + i, sizeof word);
        hash = (hash ^ word) * 0x9e3779b97f4a7c15ULL;
        hash ^= hash >> 29;
    }
    std::uint64_t tail = 0;
    std::memcpy(&tail, bytes + i, length - i);
    return bench_mix(hash ^ tail);
}

std::uint64_t hash_string(const std::string &text, std::uint64_t salt)
{
    return hash_bytes(text.data(), text.size(), salt);
}

// A small expression tree per record, as a compiler pass would build: nodes of 16–40 bytes
// made with new, evaluated, and deleted with their record.
struct Node {
    virtual ~Node() = default;
    virtual std::uint64_t evaluate() const = 0;
};

struct Leaf final : Node {
    explicit Leaf(std::uint64_t value) : value(value)
    {
    }
    std::uint64_t evaluate() const override
    {
        return bench_mix(value);
    }
    std::uint64_t value;
};

struct Text final : Node {
    explicit Text(std::string text) : text(std::move(text))
    {
    }
    std::uint64_t evaluate() const override
    {
        return hash_string(text, kText);
    }
    std::string text;
};

struct Pair final : Node {
    Pair(std::unique_ptr<Node> left, std::unique_ptr<Node> right)
        : left(std::move(left)), right(std::move(right))
    {
    }
    std::uint64_t evaluate() const override
    {
        return bench_fold(left->evaluate(), right->evaluate());
    }
    std::unique_ptr<Node> left, right;
};

struct List final : Node {
    std::uint64_t evaluate() const override
    {
        std::uint64_t hash = items.size();
        for (const auto &item : items)
            hash = bench_fold(hash, item->evaluate());
        return hash;
    }
    std::vector<std::unique_ptr<Node>> items;
};

struct Record {
    std::string key;
    std::string path; // "/word/word..."
    std::vector<std::string> tags;
    std::string payload;
    std::uint64_t value = 0; // below 10^13, so its decimal form fits the inline buffer
    std::uint64_t digest = 0;
    std::unique_ptr<Node> tree;
    std::uint64_t tree_hash = 0;
};

std::uint64_t digest_of(const Record &record)
{
    std::uint64_t hash = hash_string(record.key, kKey);
    hash = bench_fold(hash, hash_string(record.path, kPath));
    for (const auto &tag : record.tags)
        hash = bench_fold(hash, hash_string(tag, kTag));
    hash = bench_fold(hash, record.tags.size());
    hash = bench_fold(hash, hash_string(record.payload, kPayload));
    return bench_fold(hash, record.value);
}

void build_tree(Record &record)
{
    auto list = std::make_unique<List>();
    list->items.push_back(std::make_unique<Pair>(std::make_unique<Leaf>(record.value),
                                                 std::make_unique<Text>(record.key)));
    for (const auto &tag : record.tags)
        list->items.push_back(std::make_unique<Text>(tag));
    list->items.push_back(std::make_unique<Leaf>(record.payload.size()));
    record.tree_hash = list->evaluate();
    record.tree = std::move(list);
}

// Reads the whole record back: its fields against the digest taken when it was parsed, its
// tree against the value it evaluated to when built.
void verify(const Record &record, const char *where)
{
    if (digest_of(record) != record.digest || record.tree->evaluate() != record.tree_hash)
        corrupt(where, record.payload.size());
}

struct Batch {
    std::vector<std::unique_ptr<Record>> records; // a slot is empty once its record has gone
    std::map<std::string, std::vector<std::uint32_t>> index; // key -> record numbers
};

// Records on their way to one worker. changed is notified when records arrive, when room is
// made, and when the sender has finished.
struct Mailbox {
    std::mutex lock;
    std::condition_variable changed;
    std::vector<std::unique_ptr<Record>> records;
    bool sender_done = false;
};

class Worker
{
  public:
    Worker(unsigned index, unsigned long rounds, std::uint64_t seed, Mailbox &inbox,
           Mailbox &outbox)
        : rounds_(rounds), inbox_(inbox), outbox_(outbox), kept_(kKeptReceived)
    {
        bench_rng_init(&rng_, seed, index);
    }

    void run();

    std::uint64_t checksum() const
    {
        return bench_fold(bench_fold(checksum_, received_sum_), received_count_);
    }

  private:
    void make_words();
    const std::string &pick_word();
    void generate(Record &draft);
    static void append_line(std::string &text, const Record &draft);
    std::unique_ptr<Batch> parse(const std::string &text,
                                 const std::vector<std::uint64_t> &expected);
    void round(unsigned long number);
    void index_and_count(Batch &batch);
    void copy_and_prune(const Batch &batch);
    void grow_large_vector(unsigned long number);
    void hand_over(Batch &batch);
    void keep(std::unique_ptr<Batch> batch, std::size_t count);
    void retire(Batch &batch);
    void send(std::vector<std::unique_ptr<Record>> &parcel);
    void receive();
    void accept(std::vector<std::unique_ptr<Record>> &arrived);
    void finish();

    unsigned long rounds_;
    Mailbox &inbox_;  // filled by the previous worker
    Mailbox &outbox_; // the next worker's inbox
    bench_rng rng_;   // drives everything but what arrives, so the run is reproducible
    std::vector<std::string> vocabulary_;
    std::string pattern_; // what payloads are cut from
    std::vector<std::unique_ptr<Batch>> window_;
    std::vector<std::unique_ptr<Record>> kept_; // a ring of received records
    std::uint64_t checksum_ = 0;
    // What arrived, whenever it arrived: a sum and a count do not depend on the order.
    std::uint64_t received_sum_ = 0;
    std::uint64_t received_count_ = 0;
};

void Worker::make_words()
{
    vocabulary_.reserve(kVocabularyWords);
    for (std::size_t i = 0; i < kVocabularyWords; i++) {
        // Three words in five fit std::string's inline buffer (15 characters), the rest not.
        std::size_t length = bench_below(&rng_, 5) < 3 ? bench_between(&rng_, 2, 15)
                                                       : bench_between(&rng_, 16, 48);
        std::string word;
        for (std::size_t c = 0; c < length; c++)
            word.push_back(static_cast<char>('a' + bench_below(&rng_, 26)));
        vocabulary_.push_back(std::move(word));
    }
    for (std::size_t i = 0; i < kPatternLength; i++)
        pattern_.push_back(kPayloadAlphabet[bench_below(&rng_, sizeof kPayloadAlphabet - 1)]);
}

// Skewed towards the first words, so that some keys collect many records.
const std::string &Worker::pick_word()
{
    std::uint32_t bound = bench_below(&rng_, kVocabularyWords) + 1;
    return vocabulary_[bench_below(&rng_, bound)];
}

void Worker::generate(Record &draft)
{
    draft.key = pick_word();
    std::size_t depth = bench_between(&rng_, 1, kMaxPathDepth);
    for (std::size_t i = 0; i < depth; i++) {
        draft.path += '/';
        draft.path += pick_word();
    }
    draft.value = bench_next(&rng_) % 10000000000000ULL;
    std::size_t tags = bench_below(&rng_, kMaxTags + 1);
    for (std::size_t i = 0; i < tags; i++)
        draft.tags.push_back(pick_word());
    // Log-uniform 1 B–4 KiB; one in 64 is 4–32 KiB. Copied from the worker's pattern from a
    // random place, in pieces, so the string grows as a serializer's would.
    std::size_t size = bench_below(&rng_, 64) == 0 ? bench_log_size(&rng_, 12, 15)
                                                   : bench_log_size(&rng_, 0, 12);
    std::size_t offset = bench_below(&rng_, kPatternLength);
    while (draft.payload.size() < size) {
        std::size_t piece = std::min(size - draft.payload.size(), kPatternLength - offset);
        draft.payload.append(pattern_, offset, piece);
        offset = 0;
    }
}

// One line: "key path value tag,tag,... payload\n" ("-" for no tags). No field holds a space,
// a comma or a newline.
void Worker::append_line(std::string &text, const Record &draft)
{
    text += draft.key;
    text += ' ';
    text += draft.path;
    text += ' ';
    text += std::to_string(draft.value);
    text += ' ';
    if (draft.tags.empty())
        text += '-';
    for (std::size_t i = 0; i < draft.tags.size(); i++) {
        if (i > 0)
            text += ',';
        text += draft.tags[i];
    }
    text += ' ';
    text += draft.payload;
    text += '\n';
}

std::unique_ptr<Batch> Worker::parse(const std::string &text,
                                     const std::vector<std::uint64_t> &expected)
{
    auto batch = std::make_unique<Batch>();
    std::size_t position = 0;
    auto field = [&](char end) {
        std::size_t stop = text.find(end, position);
        if (stop == std::string::npos)
            corrupt("text", text.size());
        std::string value(text, position, stop - position);
        position = stop + 1;
        return value;
    };
    for (std::size_t i = 0; i < expected.size(); i++) {
        auto record = std::make_unique<Record>();
        record->key = field(' ');
        record->path = field(' ');
        record->value = std::strtoull(field(' ').c_str(), nullptr, 10);
        std::string tags = field(' ');
        if (tags != "-") {
            std::size_t start = 0;
            for (;;) {
                std::size_t comma = tags.find(',', start);
                record->tags.push_back(tags.substr(start, comma - start));
                if (comma == std::string::npos)
                    break;
                start = comma + 1;
            }
        }
        record->payload = field('\n');
        record->digest = digest_of(*record);
        if (record->digest != expected[i])
            corrupt("parsed record", record->payload.size());
        build_tree(*record);
        batch->records.push_back(std::move(record));
    }
    return batch;
}

void Worker::index_and_count(Batch &batch)
{
    std::unordered_map<std::string, std::uint64_t> counts;
    for (std::uint32_t id = 0; id < batch.records.size(); id++) {
        const Record &record = *batch.records[id];
        batch.index[record.key].push_back(id);
        for (const auto &tag : record.tags)
            counts[tag]++;
        for (std::size_t start = 1; start < record.path.size();) {
            std::size_t slash = record.path.find('/', start);
            if (slash == std::string::npos)
                slash = record.path.size();
            counts[record.path.substr(start, slash - start)] += record.value % 7 + 1;
            start = slash + 1;
        }
    }
    for (const auto &entry : batch.index) {
        std::uint64_t hash = hash_string(entry.first, kIndexKey);
        for (std::uint32_t id : entry.second)
            hash = bench_fold(hash, batch.records[id]->value);
        checksum_ = bench_fold(checksum_, bench_fold(hash, entry.second.size()));
    }
    // Words seen once go; the rest are summed, since the table's order is its own.
    for (auto it = counts.begin(); it != counts.end();)
        it = it->second == 1 ? counts.erase(it) : std::next(it);
    std::uint64_t sum = 0;
    for (const auto &entry : counts)
        sum += bench_mix(hash_string(entry.first, kCount) ^ entry.second);
    checksum_ = bench_fold(bench_fold(checksum_, sum), counts.size());
}

// A deep copy of the index (every key and id vector), a quarter of its keys erased, the rest
// rendered as sorted labels joined into one string.
void Worker::copy_and_prune(const Batch &batch)
{
    auto pruned = batch.index;
    for (auto it = pruned.begin(); it != pruned.end();)
        it = (hash_string(it->first, kPrune) & 3) == 0 ? pruned.erase(it) : std::next(it);
    std::vector<std::string> labels;
    for (const auto &entry : pruned)
        labels.push_back(entry.first + '#' + std::to_string(entry.second.size()));
    std::sort(labels.begin(), labels.end(), [](const std::string &a, const std::string &b) {
        return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    std::string joined;
    for (const auto &label : labels) {
        joined += label;
        joined += ',';
    }
    checksum_ = bench_fold(checksum_, hash_string(joined, kText) ^ pruned.size());
}

// push_back from empty to 1 MiB (every reallocation on the way), then half erased and the
// rest shrunk to fit.
void Worker::grow_large_vector(unsigned long number)
{
    std::vector<std::uint64_t> large;
    for (std::size_t i = 0; i < kLargeVectorWords; i++)
        large.push_back(bench_mix(i ^ number));
    large.erase(large.begin(), large.begin() + kLargeVectorWords / 2);
    large.shrink_to_fit();
    for (std::size_t i = 0; i < large.size(); i += 4096) {
        if (large[i] != bench_mix((i + kLargeVectorWords / 2) ^ number))
            corrupt("large vector", large.size() * sizeof large[0]);
    }
    checksum_ = bench_fold(checksum_, large.back());
}

// About a tenth of the batch goes to the next worker, which checks and frees it.
void Worker::hand_over(Batch &batch)
{
    std::vector<std::unique_ptr<Record>> parcel;
    for (auto &record : batch.records) {
        if (bench_below(&rng_, 10) == 0)
            parcel.push_back(std::move(record));
    }
    checksum_ = bench_fold(checksum_, parcel.size());
    send(parcel);
}

// The batch joins the window; an eighth of its size is freed at random places in an older
// batch, and past kWindowBatches a random batch other than the newest is retired.
void Worker::keep(std::unique_ptr<Batch> batch, std::size_t count)
{
    window_.push_back(std::move(batch));
    if (window_.size() < 2)
        return;
    Batch &older = *window_[bench_below(&rng_, window_.size() - 1)];
    for (std::size_t i = 0; i < count / 8; i++) {
        auto &slot = older.records[bench_below(&rng_, older.records.size())];
        if (slot) {
            verify(*slot, "kept record");
            checksum_ = bench_fold(checksum_, slot->digest);
            slot.reset();
        }
    }
    if (window_.size() > kWindowBatches) {
        std::size_t victim = bench_below(&rng_, window_.size() - 1);
        retire(*window_[victim]);
        window_.erase(window_.begin() + victim);
    }
}

void Worker::retire(Batch &batch)
{
    std::uint64_t hash = batch.records.size();
    for (const auto &record : batch.records) {
        if (record) {
            verify(*record, "retired record");
            hash = bench_fold(hash, record->digest);
        }
    }
    checksum_ = bench_fold(checksum_, hash);
}

void Worker::round(unsigned long number)
{
    std::size_t count = bench_between(&rng_, kMinRecords, kMaxRecords);
    std::string text;
    std::vector<std::uint64_t> expected;
    for (std::size_t i = 0; i < count; i++) {
        Record draft;
        generate(draft);
        expected.push_back(digest_of(draft));
        append_line(text, draft);
    }
    std::unique_ptr<Batch> batch = parse(text, expected);
    index_and_count(*batch);
    copy_and_prune(*batch);
    if (number % kLargeVectorPeriod == kLargeVectorPeriod - 1)
        grow_large_vector(number);
    hand_over(*batch);
    keep(std::move(batch), count);
    receive();
}

// Waits while the next worker's mailbox is full, taking its own meanwhile: with every worker
// waiting on the next, a ring of full mailboxes would otherwise never drain.
void Worker::send(std::vector<std::unique_ptr<Record>> &parcel)
{
    std::unique_lock<std::mutex> guard(outbox_.lock);
    while (outbox_.records.size() + parcel.size() > kMailboxLimit) {
        guard.unlock();
        receive();
        guard.lock();
        if (outbox_.records.size() + parcel.size() > kMailboxLimit)
            outbox_.changed.wait_for(guard, std::chrono::milliseconds(1));
    }
    for (auto &record : parcel)
        outbox_.records.push_back(std::move(record));
    guard.unlock();
    outbox_.changed.notify_all();
    parcel.clear();
}

void Worker::receive()
{
    std::vector<std::unique_ptr<Record>> arrived;
    {
        std::lock_guard<std::mutex> guard(inbox_.lock);
        arrived.swap(inbox_.records);
    }
    if (arrived.empty())
        return;
    inbox_.changed.notify_all();
    accept(arrived);
}

// Each arrival is checked and counted, then held in the ring in place of an earlier one,
// which is checked again and freed: records made on another thread, freed here.
void Worker::accept(std::vector<std::unique_ptr<Record>> &arrived)
{
    for (auto &record : arrived) {
        verify(*record, "received record");
        received_sum_ += bench_mix(record->digest);
        auto &slot = kept_[received_count_ % kKeptReceived];
        if (slot)
            verify(*slot, "received record");
        slot = std::move(record);
        received_count_++;
    }
}

// Tells the next worker that nothing more comes, takes what the previous one still sends
// until it says the same, then checks and frees everything still held.
void Worker::finish()
{
    {
        std::lock_guard<std::mutex> guard(outbox_.lock);
        outbox_.sender_done = true;
    }
    outbox_.changed.notify_all();
    for (bool done = false; !done;) {
        std::vector<std::unique_ptr<Record>> arrived;
        {
            std::unique_lock<std::mutex> guard(inbox_.lock);
            inbox_.changed.wait(guard,
                                [this] { return !inbox_.records.empty() || inbox_.sender_done; });
            done = inbox_.sender_done;
            arrived.swap(inbox_.records);
        }
        inbox_.changed.notify_all();
        accept(arrived);
    }
    for (auto &batch : window_)
        retire(*batch);
    window_.clear();
    for (auto &record : kept_) {
        if (record)
            verify(*record, "received record");
    }
    kept_.clear();
}

void Worker::run()
{
    make_words();
    for (unsigned long number = 0; number < rounds_; number++)
        round(number);
    finish();
    vocabulary_.clear();
}

} // namespace

int main(int argc, char **argv)
{
    bench_args args = {2, 300, 1};
    bench_parse_args(argc, argv, &args,
                     "C++ records parsed into std::string, std::map, std::unordered_map and "
                     "std::vector, kept across rounds, a tenth freed by the next thread; "
                     "iterations = rounds per thread");

    std::vector<std::unique_ptr<Mailbox>> mailboxes;
    for (unsigned long i = 0; i < args.threads; i++)
        mailboxes.push_back(std::make_unique<Mailbox>());
    std::vector<std::unique_ptr<Worker>> workers;
    for (unsigned long i = 0; i < args.threads; i++) {
        workers.push_back(std::make_unique<Worker>(static_cast<unsigned>(i), args.iterations,
                                                   args.seed, *mailboxes[i],
                                                   *mailboxes[(i + 1) % args.threads]));
    }
    auto body = [](Worker *worker) {
        try {
            worker->run();
        } catch (const std::bad_alloc &) {
            std::fprintf(stderr, "cxx: out of memory\n");
            std::fflush(stderr);
            std::_Exit(EXIT_FAILURE);
        }
    };
    std::vector<std::thread> threads;
    for (auto &worker : workers)
        threads.emplace_back(body, worker.get());
    for (auto &thread : threads)
        thread.join();
    std::uint64_t checksum = 0;
    for (const auto &worker : workers)
        checksum = bench_fold(checksum, worker->checksum());
    bench_print_checksum(checksum);
    return 0;
}
