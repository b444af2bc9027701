// libFuzzer harness for the checkpoint reader. The first input byte picks what the
// rest is, each read as `strata generate` / `strata train --resume` read it:
//   0  model.npz bytes: decode_npz, then loaded into a small model (names, shapes)
//   1  one .npy member, wrapped into a well-formed zip (so the fuzzer gets past the
//      zip CRC-32 to the .npy header parser): decode_npz
//   2  manifest.json, the other files being those of a valid checkpoint of a small
//      model (their sizes and CRCs are in the seed manifests): parse_checkpoint,
//      then LanguageModel::restore
//   3  vocab.txt: WordTokenizer::parse
// A strata::Error or ConfigError is a correct refusal; anything else is a finding.
//
// With FUZZ_WRITE_SEEDS=DIR set, the harness writes one seed per mode to DIR and
// exits (tests/fuzz/corpus/checkpoint/ was made so).
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "framework/errors.hpp"
#include "framework/npz.hpp"
#include "tasks/language_model.hpp"
#include "text/word_tokenizer.hpp"
#include "training/checkpoint.hpp"

using namespace strata;

namespace {

const char* kConfig =
    "seed: 1\n"
    "model:\n"
    "  max_seq_len: 8\n"
    "  layers:\n"
    "    - {type: Embedding, dim: 4}\n"
    "    - {type: TransformerBlock, dim: 4, hidden: 8, heads: 2}\n"
    "    - {type: OutputProjection}\n"
    "optimizer: {type: Adam, lr: 0.01}\n";
const char* kVocabulary = "</s>\n<pad>\n<unk>\nthe\ncat\nsat\n";

// The files of a valid checkpoint of kConfig. Weights are a fixed pattern, not random
// draws, so the bytes (and the seeds' CRCs) are the same with any compiler.
std::map<std::string, std::string> valid_files() {
  Checkpoint c;
  c.config_text = kConfig;
  c.config_file = "fuzz.yaml";
  c.tokenizer_files = {{"vocab.txt", kVocabulary}};
  const RunConfig config = parse_run_config(kConfig, "fuzz.yaml");
  Rng rng(1);
  const Model<float> model = build_model<float>(config.model, 6, rng);
  for (const Parameter<float>* p : model.parameters()) {
    NamedArray a;
    a.name = p->name;
    a.shape.assign(p->value.shape().begin(), p->value.shape().end());
    for (std::size_t i = 0; i < p->value.size(); ++i) a.data.push_back(float(int(i % 7) - 3) / 8);
    c.parameters.push_back(a);
    a.name = p->name + "/m";
    c.optimizer_state.push_back(a);
    a.name = p->name + "/v";
    for (float& v : a.data) v *= v;
    c.optimizer_state.push_back(a);
  }
  c.optimizer_steps = 3;
  c.seed = 1;
  c.position.step = 3;
  Rng state(9);
  c.position.rng = c.position.epoch_rng = state.save();
  const std::string dir =
      std::filesystem::temp_directory_path() / ("strata-fuzz-seed-" + std::to_string(::getpid()));
  save_checkpoint(dir, c);
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(checkpoint_directory(dir))) {
    std::ifstream in(entry.path(), std::ios::binary);
    files[entry.path().filename().string()] =
        std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::filesystem::remove_all(dir);
  return files;
}

std::map<std::string, std::string>& files() {
  static std::map<std::string, std::string> f = valid_files();
  return f;
}

void write_seeds(const std::string& dir) {
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, char mode, const std::string& bytes) {
    std::ofstream(std::filesystem::path(dir) / name, std::ios::binary) << mode << bytes;
  };
  write("model_npz", 0, files().at("model.npz"));
  const std::string npz = files().at("model.npz");
  // The first member's .npy bytes: after its 30-byte local header and name; the size
  // is the little-endian 32-bit field at offset 18.
  auto byte = [&](std::size_t i) { return std::size_t(static_cast<unsigned char>(npz[i])); };
  const std::size_t npy_size = byte(18) | byte(19) << 8 | byte(20) << 16 | byte(21) << 24;
  const std::size_t name_size = byte(26) | byte(27) << 8;
  write("one_npy", 1, npz.substr(30 + name_size, npy_size));
  write("manifest", 2, files().at("manifest.json"));
  write("vocab", 3, files().at("vocab.txt"));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::setenv("STRATA_MEMORY_BUDGET", "64M", 1);
  files();
  if (const char* dir = std::getenv("FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] % 4;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (mode) {
      case 0: {
        const std::vector<NamedArray> arrays = decode_npz(bytes, "model.npz");
        Checkpoint c =
            parse_checkpoint([](const std::string& n) { return files().at(n); }, "valid");
        LanguageModel lm = LanguageModel::restore(c, "valid");
        lm.import_parameters(arrays, "model.npz");
        break;
      }
      case 1:
        decode_npz(store_zip({{"member.npy", bytes}}), "wrapped.npz");
        break;
      case 2: {
        const Checkpoint c = parse_checkpoint(
            [&](const std::string& name) {
              if (name == "manifest.json") return bytes;
              // The manifest names the tokenizer's files: one it lists may not exist.
              const auto it = files().find(name);
              if (it == files().end()) throw Error(name + ": no such file");
              return it->second;
            },
            "fuzz");
        LanguageModel lm = LanguageModel::restore(c, "fuzz");
        break;
      }
      case 3:
        WordTokenizer::parse(bytes, "vocab.txt");
        break;
    }
  } catch (const Error&) {
  } catch (const ConfigError&) {
  }
  return 0;
}
