// Plain-text corpora (text/corpus.hpp), token files (text/token_file.hpp) and corpus
// phases (tasks/corpus_phase.hpp): documents, directory rules, long lines, the binary
// format, windows, the cache, pipes, and training with bit-exact resume.
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <thread>

#include "framework/errors.hpp"
#include "framework/rng.hpp"
#include "tasks/corpus_phase.hpp"
#include "test_support.hpp"
#include "text/word_tokenizer.hpp"
#include "training/checkpoint.hpp"

using namespace strata;
namespace fs = std::filesystem;

namespace {

using strata::testing::error_of;
using strata::testing::TempDir;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The documents of `options`, each its pieces joined; `pieces` counts them.
std::vector<std::string> documents(const CorpusOptions& options, std::size_t* pieces = nullptr) {
  std::vector<std::string> docs(1);
  std::size_t n = 0;
  read_corpus(corpus_files(options), options,
              {[&](std::string_view text) {
                 docs.back() += text;
                 ++n;
               },
               [&] { docs.emplace_back(); }});
  docs.pop_back();
  if (pieces) *pieces = n;
  return docs;
}

CorpusOptions options_of(std::vector<std::string> paths, DocumentKind kind = DocumentKind::file) {
  CorpusOptions o;
  o.paths = std::move(paths);
  o.document = kind;
  return o;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(corpus)

BOOST_AUTO_TEST_CASE(a_document_is_a_file_a_paragraph_or_a_record) {
  TempDir dir;
  const std::string text = "one\ntwo\n\n  \nthree\r\n%\nfour\n%\r\n%\n \n";
  const std::string path = dir.write("a.txt", text);
  BOOST_TEST(documents(options_of({path})) == (std::vector<std::string>{text}));
  BOOST_TEST(documents(options_of({path}, DocumentKind::paragraph)) ==
             (std::vector<std::string>{"one\ntwo\n", "three\r\n%\nfour\n%\r\n%\n"}));
  // Records: "%" lines (CRLF too) separate; empty and blank records are skipped.
  BOOST_TEST(documents(options_of({path}, DocumentKind::record)) ==
             (std::vector<std::string>{"one\ntwo\n\n  \nthree\r\n", "four\n"}));
  CorpusOptions other = options_of({path}, DocumentKind::record);
  other.separator = "two";
  BOOST_TEST(documents(other).size() == 2u);
}

BOOST_AUTO_TEST_CASE(directories_skip_hidden_binary_and_linked_duplicates) {
  TempDir dir;
  fs::create_directories(dir.path / "sub");
  fs::create_directories(dir.path / ".git");
  dir.write("b", "bee\n");
  dir.write("sub/a", "ay\n");
  dir.write(".hidden", "no\n");
  dir.write(".git/x", "no\n");
  dir.write("b.dat", std::string("\0\0\0\2bin", 7));
  fs::create_symlink("b", dir.path / "b.u8");
  const std::vector<std::string> files = corpus_files(options_of({dir.path.string()}));
  BOOST_TEST(files == (std::vector<std::string>{dir.file("b"), dir.file("sub/a")}));
  CorpusOptions only = options_of({dir.path.string()});
  only.include = "a";
  BOOST_TEST(corpus_files(only) == (std::vector<std::string>{dir.file("sub/a")}));
  only.include = "*.txt";
  BOOST_TEST(error_of([&] { corpus_files(only); }) ==
             dir.path.string() + ": no text file matches include \"*.txt\"");
}

BOOST_AUTO_TEST_CASE(bad_files_are_refused_with_their_place) {
  TempDir dir;
  BOOST_TEST(error_of([&] { corpus_files(options_of({dir.file("none")})); }) ==
             dir.file("none") + ": no such file or directory");
  const std::string bin = dir.write("x.dat", std::string("ab\0c", 4));
  BOOST_TEST(error_of([&] { corpus_files(options_of({bin})); }) ==
             bin + ": binary file (a NUL byte at byte 2), not text");
  const std::string latin1 = dir.write("l.txt", "fine\ncaf\xE9 au lait\n");
  BOOST_TEST(error_of([&] { documents(options_of({latin1})); }) ==
             latin1 + ":2:4: invalid UTF-8 (byte 0xe9): corpus files must be UTF-8 text");
}

BOOST_AUTO_TEST_CASE(a_long_line_arrives_in_bounded_pieces_that_join_exactly) {
  TempDir dir;
  std::string line;
  while (line.size() < 3 * kMaxPiece) line += "w\xC3\xA9rd ";
  line += "\xF0\x9F\x98\x80";
  for (const bool spaces : {true, false}) {
    std::string text = line;
    if (!spaces) std::replace(text.begin(), text.end(), ' ', 'x');
    const std::string path = dir.write("long.txt", text);
    std::size_t pieces = 0, largest = 0;
    std::string joined;
    read_corpus({path}, options_of({path}),
                {[&](std::string_view piece) {
                   joined += piece;
                   largest = std::max(largest, piece.size());
                   ++pieces;
                 },
                 {}});
    BOOST_TEST(joined == text);
    BOOST_TEST(pieces >= 3u);
    BOOST_TEST(largest <= kMaxPiece);
  }
}

BOOST_AUTO_TEST_CASE(token_files_round_trip_in_both_widths_and_refuse_damage) {
  TempDir dir;
  for (const std::uint64_t vocabulary : {300ull, 70000ull}) {
    const std::string path = dir.file("t.tokens");
    {
      TokenFileWriter writer(path, vocabulary, 0x1234);
      writer.append({5, 0, std::int32_t(vocabulary - 1)});
      writer.end_document(2);
      writer.finish();
    }
    BOOST_TEST(!fs::exists(path + ".tmp-" + std::to_string(::getpid())));
    const TokenFile file = TokenFile::open(path);
    BOOST_TEST(file.header().width == (vocabulary <= 65536 ? 2u : 4u));
    BOOST_TEST(file.header().documents == 1u);
    BOOST_TEST(file.header().key == 0x1234u);
    BOOST_TEST(file.size() == 4u);
    std::vector<std::int32_t> ids;
    file.read(1, 3, ids);
    BOOST_TEST(ids == (std::vector<std::int32_t>{0, std::int32_t(vocabulary - 1), 2}));
    BOOST_TEST(fs::file_size(path) == kTokenFileHeader + 4 * file.header().width);
    // Little-endian: the first id, 5, is bytes 05 00 right after the header.
    const std::string bytes = slurp(path);
    BOOST_TEST(bytes.substr(0, 8) == "STRATOK1");
    BOOST_TEST(int(bytes[kTokenFileHeader]) == 5);
    BOOST_TEST(int(bytes[kTokenFileHeader + 1]) == 0);
    BOOST_TEST(contains(error_of([&] { file.read(2, 3, ids); }), "past the end"));
  }
  const std::string path = dir.file("t.tokens");
  fs::resize_file(path, fs::file_size(path) - 1);
  BOOST_TEST(contains(error_of([&] { TokenFile::open(path); }), "t.tokens: truncated or padded"));
  BOOST_TEST(error_of([&] { TokenFile::open(dir.write("x", "hello")); }) ==
             dir.file("x") + ": not a Strata token file");
  // An unfinished writer leaves nothing behind.
  { TokenFileWriter writer(dir.file("u.tokens"), 10, 1); }
  BOOST_TEST(!fs::exists(dir.path / "u.tokens"));
  BOOST_TEST(!fs::exists(dir.file("u.tokens.tmp-" + std::to_string(::getpid()))));
}

BOOST_AUTO_TEST_CASE(windows_cover_every_token) {
  using Starts = std::vector<std::uint64_t>;
  BOOST_TEST(window_starts(10, 4, 3) == (Starts{0, 3, 6}));
  BOOST_TEST(window_starts(11, 4, 3) == (Starts{0, 3, 6, 7}));  // the tail
  BOOST_TEST(window_starts(3, 5, 4) == (Starts{0}));            // one short window
  BOOST_TEST(window_starts(1, 5, 4).empty());
  BOOST_TEST(window_starts(20, 4, 8) == (Starts{0, 8, 16}));
}

// Data parallel: a rank's batch of windows (window_batch over its rank_rows, as the
// language-model task reads it) is exactly its rows of the whole batch.
BOOST_AUTO_TEST_CASE(a_rank_reads_its_rows_of_each_batch_of_windows) {
  TempDir dir;
  {
    TokenFileWriter writer(dir.file("c.tokens"), 500, 1);
    std::vector<std::int32_t> ids(203);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = std::int32_t(i * 7 % 500);
    writer.append(ids);
    writer.end_document(2);
    writer.finish();
  }
  CorpusPhase corpus;
  corpus.tokens = TokenFile::open(dir.file("c.tokens"));
  corpus.window = 9;
  corpus.starts = window_starts(corpus.tokens.size(), corpus.window, 5);
  std::vector<std::uint64_t> order(corpus.starts.size());
  std::iota(order.begin(), order.end(), std::uint64_t(0));
  Rng rng(3);
  rng.shuffle(order.begin(), order.end());
  const std::size_t size = 6;  // the last batch is short
  for (std::size_t first = 0; first < order.size(); first += size) {
    const std::size_t rows = std::min(size, order.size() - first);
    const Batch whole = window_batch(corpus, order, first, rows);
    for (const std::size_t ranks : {1u, 2u, 4u, 7u})
      for (std::size_t r = 0; r < ranks; ++r) {
        const RowRange mine = rank_rows(rows, r, ranks);
        const Batch read = window_batch(corpus, order, first + mine.first, mine.count);
        const Batch expected = strata::testing::rows_of_whole_batch(whole, r, ranks);
        BOOST_TEST(read.batch == expected.batch);
        BOOST_TEST(read.length == whole.length);
        BOOST_TEST(read.inputs == expected.inputs);
        BOOST_TEST(read.targets == expected.targets);
      }
  }
}

// ---- Training on a corpus ----

namespace {

// Paragraph documents, one far longer than a window; words repeat so the loss can fall.
std::string corpus_text() {
  std::string text;
  const std::vector<std::string> words = {"the", "cat", "sat", "on", "a", "mat", "and", "dog"};
  for (int doc = 0; doc < 6; ++doc) {
    const int length = doc == 0 ? 300 : 5 + 3 * doc;
    for (int w = 0; w < length; ++w) text += words[(w * 3 + doc) % words.size()] + " ";
    text += "\n\n";
  }
  return text;
}

std::string corpus_yaml(const std::string& data, const std::string& extra = "") {
  return "seed: 5\n"
         "model:\n"
         "  max_seq_len: 16\n"
         "  layers:\n"
         "    - {type: Embedding, dim: 8}\n"
         "    - {type: TransformerBlock, dim: 8, hidden: 16, heads: 2}\n"
         "    - {type: OutputProjection}\n"
         "optimizer: {type: Adam, lr: 0.01}\n"
         "training:\n"
         "  checkpoint_every: 2\n"
         "  phases:\n"
         "    - {name: pre, data: " +
         data + ", format: corpus, document: paragraph, epochs: 2, batch: 3, shuffle: true" +
         extra + "}\n";
}

std::vector<NamedArray> final_parameters(const std::string& run_dir) {
  return load_checkpoint(run_dir).parameters;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_long_document_trains_in_windows_and_the_cache_is_reused) {
  TempDir dir;
  const std::string data = dir.write("c.txt", corpus_text());
  const TrainResult result = strata::testing::train_from_yaml(corpus_yaml(data), dir.file("run"));
  BOOST_TEST(result.finished);
  const std::string cache = dir.file("run/cache/pre.tokens");
  BOOST_REQUIRE(fs::exists(cache));
  const TokenFile tokens = TokenFile::open(cache);
  BOOST_TEST(tokens.header().documents == 6u);
  // 16 + 1 tokens a window, one every 16 (the default stride), the tail included.
  const std::size_t windows = window_starts(tokens.size(), 17, 16).size();
  BOOST_TEST(windows > 20u);
  BOOST_TEST(result.steps == std::int64_t(2 * ((windows + 2) / 3)));

  // Same data and tokenizer: the file is reused; other data: rebuilt.
  const RunConfig config = parse_run_config(corpus_yaml(data), "test.yaml");
  const auto tokenizer = build_tokenizer(config);
  BOOST_TEST(prepare_corpus_phase(config.phases[0], *tokenizer, dir.file("run/cache"), 16).reused);
  // A rebuild removes what a killed tokenisation left (pid 2^22 + 1 is above any
  // kernel's pid_max, so that process is surely gone).
  const std::string stale = dir.write("run/cache/pre.tokens.tmp-4194305", "half");
  dir.write("c.txt", corpus_text() + "more words\n");
  const CorpusPhase changed =
      prepare_corpus_phase(config.phases[0], *tokenizer, dir.file("run/cache"), 16);
  BOOST_TEST(!changed.reused);
  BOOST_TEST(!fs::exists(stale));
  BOOST_TEST(changed.tokens.size() > tokens.size());
  BOOST_TEST(changed.fingerprint.examples == 7u);  // the words added are a paragraph
}

// Over MPI a rank other than 0 never writes in the run directory (rank 0 checks it is
// new: a cache made there first made that check fail). It reads rank 0's token file
// when it is already there, else tokenises into a cache of its own.
BOOST_AUTO_TEST_CASE(a_read_only_cache_is_used_when_it_holds_the_tokens_and_never_written) {
  TempDir dir;
  const std::string data = dir.write("c.txt", corpus_text());
  const RunConfig config = parse_run_config(corpus_yaml(data), "test.yaml");
  const auto tokenizer = build_tokenizer(config);
  // Rank 0's cache not there yet: tokenised into its own, the run directory untouched.
  const CorpusPhase own = prepare_corpus_phase(config.phases[0], *tokenizer, dir.file("own"), 16,
                                               dir.file("run/cache"));
  BOOST_TEST(!own.reused);
  BOOST_TEST(fs::exists(dir.file("own/pre.tokens")));
  BOOST_TEST(!fs::exists(dir.file("run")));
  // Rank 0's file with these tokens: read from there, nothing made in its own cache.
  prepare_corpus_phase(config.phases[0], *tokenizer, dir.file("run/cache"), 16);
  const CorpusPhase shared = prepare_corpus_phase(config.phases[0], *tokenizer, dir.file("other"),
                                                  16, dir.file("run/cache"));
  BOOST_TEST(shared.reused);
  BOOST_TEST(!fs::exists(dir.file("other")));
  BOOST_TEST(shared.tokens.size() == own.tokens.size());
  // Other tokens there (the data changed since): its own cache again, theirs left alone.
  const auto before = fs::last_write_time(dir.file("run/cache/pre.tokens"));
  dir.write("c.txt", corpus_text() + "more words\n");
  const CorpusPhase changed = prepare_corpus_phase(config.phases[0], *tokenizer, dir.file("other"),
                                                   16, dir.file("run/cache"));
  BOOST_TEST(!changed.reused);
  BOOST_TEST(changed.tokens.size() > own.tokens.size());
  BOOST_TEST(fs::exists(dir.file("other/pre.tokens")));
  BOOST_TEST((fs::last_write_time(dir.file("run/cache/pre.tokens")) == before));
}

BOOST_AUTO_TEST_CASE(a_resumed_corpus_run_is_bit_exact) {
  TempDir dir;
  const std::string data = dir.write("c.txt", corpus_text());
  const std::string yaml = corpus_yaml(data, ", stride: 5");
  strata::testing::train_from_yaml(yaml, dir.file("whole"));
  const TrainResult stopped = strata::testing::train_from_yaml(yaml, dir.file("part"), 7);
  BOOST_TEST(!stopped.finished);
  BOOST_TEST(strata::testing::resume_training(dir.file("part")).finished);
  const auto whole = final_parameters(dir.file("whole"));
  const auto part = final_parameters(dir.file("part"));
  BOOST_REQUIRE(whole.size() == part.size());
  for (std::size_t i = 0; i < whole.size(); ++i) BOOST_TEST(whole[i].data == part[i].data);
  // The data is checked on resume: changed, it is refused.
  strata::testing::train_from_yaml(yaml, dir.file("again"), 3);
  dir.write("c.txt", corpus_text() + "x\n");
  const std::string error = error_of([&] { strata::testing::resume_training(dir.file("again")); });
  BOOST_TEST(contains(error, "changed since the checkpoint"), error);
}

BOOST_AUTO_TEST_CASE(sentencepiece_on_a_corpus_with_the_batch_trace) {
  TempDir dir;
  const std::string data = dir.write("c.txt", corpus_text());
  const std::string yaml =
      corpus_yaml(data) + "tokenizer: {type: sentencepiece, vocab_size: 300}\n";
  Run run = Run::start(parse_run_config(yaml, "test.yaml"));
  run.language_model()->batch_trace = dir.file("trace.txt");
  TrainOptions options;
  options.out_dir = dir.file("run");
  const TrainResult result = run.train(options);
  BOOST_TEST(result.finished);
  // One line per batch: phase, batch index, then each row's window start.
  std::ifstream trace(dir.file("trace.txt"));
  std::string line;
  std::int64_t lines = 0;
  const TokenFile tokens = TokenFile::open(dir.file("run/cache/pre.tokens"));
  const auto starts = window_starts(tokens.size(), 17, 16);
  while (std::getline(trace, line)) {
    std::istringstream fields(line);
    std::string phase;
    std::size_t batch = 0;
    fields >> phase >> batch;
    BOOST_TEST(phase == "pre");
    std::uint64_t start = 0;
    while (fields >> start) BOOST_TEST(std::count(starts.begin(), starts.end(), start) == 1);
    ++lines;
  }
  BOOST_TEST(lines == result.steps);
}

BOOST_AUTO_TEST_CASE(a_corpus_through_a_pipe_is_read_once) {
  TempDir dir;
  const std::string fifo = dir.file("pipe");
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::thread writer([&] { std::ofstream(fifo, std::ios::binary) << corpus_text(); });
  const RunConfig config = parse_run_config(corpus_yaml(fifo), "test.yaml");
  const auto tokenizer = build_tokenizer(config);  // the first read copies the stream
  writer.join();
  const CorpusPhase corpus =
      prepare_corpus_phase(config.phases[0], *tokenizer, dir.file("cache"), 16);
  BOOST_TEST(corpus.tokens.header().documents == 6u);
  BOOST_TEST(corpus.fingerprint.bytes == corpus_text().size());
}

BOOST_AUTO_TEST_CASE(corpus_keys_need_the_corpus_format) {
  const std::string yaml = corpus_yaml("x.txt");
  auto error = [&](const std::string& from, const std::string& to) {
    std::string changed = yaml;
    changed.replace(changed.find(from), from.size(), to);
    return error_of([&] { parse_run_config(changed, "run.yaml"); });
  };
  const std::string stride = error("format: corpus, document: paragraph", "stride: 3");
  BOOST_TEST(stride ==
                 "run.yaml:12:40: training.phases[0]: \"stride\" is for format: corpus "
                 "(the format is auto)",
             stride);
  const std::string list = error("data: x.txt, format: corpus", "data: [a, b], format: text");
  BOOST_TEST(contains(list, "expected a path (a list of paths needs format: corpus)"), list);
  const std::string kind = error("document: paragraph", "document: chapter");
  BOOST_TEST(contains(kind, "\"document\" must be one of file, paragraph, record"), kind);
}

BOOST_AUTO_TEST_SUITE_END()
