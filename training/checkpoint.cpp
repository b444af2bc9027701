#include "training/checkpoint.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "framework/errors.hpp"
#include "framework/files.hpp"

namespace strata {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr const char* kFormat = "strata-checkpoint-1";
}  // namespace

namespace {

// Every checkpoint directory Strata writes holds this file, from the moment it is
// created: a "checkpoint.tmp-<pid>" directory without it is not Strata's to delete.
constexpr const char* kMarker = ".strata-checkpoint";

bool is_strata_checkpoint_directory(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && !fs::is_symlink(path, ec) &&
         fs::is_regular_file(path / kMarker, ec);
}

// Right after mkdir: a kill in between leaves an empty directory, which is removed too.
void mark_as_strata_checkpoint(const std::string& dir) {
  const std::string path = (fs::path(dir) / kMarker).string();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
  ::close(fd);
}

// Its marker last, so that a kill half way leaves a directory still known as Strata's.
void remove_checkpoint_directory(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename() != kMarker) fs::remove_all(entry.path(), ec);
  fs::remove_all(dir, ec);
}

// The pid of "checkpoint.tmp-<pid>" (0 for any other name).
pid_t temporary_owner(const std::string& name) {
  const std::string prefix = "checkpoint.tmp-";
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) return 0;
  const std::string digits = name.substr(prefix.size());
  if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) return 0;
  return static_cast<pid_t>(std::stol(digits));
}

// A tokenizer's file goes beside the checkpoint's own: a plain name (no directory part,
// not hidden) that none of them uses. Checked on save and on load, where the name comes
// from the manifest and must not reach outside the directory.
void require_tokenizer_file_name(const std::string& name, const std::string& where) {
  const bool plain =
      !name.empty() && name[0] != '.' && name.size() <= 100 &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      });
  const bool reserved = name == "manifest.json" || name == "config.yaml" || name == "model.npz" ||
                        name == "optimizer.npz";
  if (!plain || reserved)
    throw Error(where + ": tokenizer file name \"" + name +
                "\" is not a plain file name of its own " +
                "(letters, digits, '.', '_', '-'; not manifest.json, config.yaml, model.npz, " +
                "optimizer.npz)");
}

// NaN or infinite weights would train to NaN at once, or generate garbage: refused at
// load, naming the array, whatever wrote them (a save is refused too, see trainer).
void require_finite(const std::vector<NamedArray>& arrays, const std::string& file) {
  for (const NamedArray& a : arrays)
    for (std::size_t i = 0; i < a.data.size(); ++i)
      if (!std::isfinite(a.data[i]))
        throw Error(file + ": \"" + a.name + "\" holds a non-finite value (" +
                    std::to_string(a.data[i]) + " at index " + std::to_string(i) +
                    "): this checkpoint cannot be used; resume from another copy or start a new "
                    "run");
}

// The tokenizer's type and files as the manifest lists them (older manifests: the word
// tokenizer's vocab.txt).
template <class Read>
void read_tokenizer(const json& manifest, const std::string& manifest_path, Read& read_checked,
                    Checkpoint& c) {
  std::vector<std::string> names = {"vocab.txt"};
  if (manifest.contains("tokenizer")) {
    const json& t = manifest.at("tokenizer");
    c.tokenizer_type = t.at("type").get<std::string>();
    names = t.at("files").get<std::vector<std::string>>();
  }
  for (const std::string& name : names) {
    require_tokenizer_file_name(name, manifest_path);
    c.tokenizer_files[name] = read_checked(name);
  }
}

}  // namespace

void remove_stale_temporaries(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const pid_t pid = temporary_owner(entry.path().filename().string());
    if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    if (is_strata_checkpoint_directory(entry.path()))
      remove_checkpoint_directory(entry.path());
    else if (entry.is_directory(ec) && !entry.is_symlink(ec))
      ::rmdir(entry.path().c_str());  // only if empty (a save killed right after its mkdir)
  }
}

DataFingerprint fingerprint_data(const std::string& phase, const std::string& path,
                                 const std::vector<std::string>& examples) {
  DataFingerprint f{phase, path, examples.size(), 0, 0xcbf29ce484222325ull};
  auto mix = [&f](const char* bytes, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      f.fnv1a64 ^= static_cast<unsigned char>(bytes[i]);
      f.fnv1a64 *= 0x100000001b3ull;
    }
  };
  for (const std::string& example : examples) {
    const std::uint64_t size = example.size();  // little-endian on x86-64
    mix(reinterpret_cast<const char*>(&size), sizeof size);
    mix(example.data(), example.size());
    f.bytes += size;
  }
  return f;
}

std::string checkpoint_directory(const std::string& run_dir) {
  return (fs::path(run_dir) / "checkpoint").string();
}

namespace {

// A fresh temporary directory next to the run's checkpoint, marked as Strata's.
std::string make_fresh_checkpoint_directory(const std::string& run_dir) {
  make_directories(run_dir);
  remove_stale_temporaries(run_dir);
  const std::string fresh = checkpoint_directory(run_dir) + ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  if (fs::exists(fresh, ec)) {  // left by a save of ours that failed
    if (!is_strata_checkpoint_directory(fresh))
      throw Error(fresh +
                  ": is in the way of the checkpoint and was not written by Strata: "
                  "move it elsewhere");
    remove_checkpoint_directory(fresh);
  }
  make_directories(fresh);
  mark_as_strata_checkpoint(fresh);
  return fresh;
}

json position_to_json(const TrainingPosition& p) {
  return {{"step", p.step},
          {"phase", p.phase},
          {"epoch", p.epoch},
          {"next_batch", p.next_batch},
          {"epoch_rng", p.epoch_rng},
          {"rng", p.rng},
          {"layer_rngs", p.layer_rngs},
          {"epoch_loss_sum", p.epoch_loss_sum},
          {"epoch_sequences", p.epoch_sequences},
          {"epoch_tokens", p.epoch_tokens},
          {"metrics_rows", p.metrics_rows},
          {"validation_rows", p.validation_rows},
          {"best_loss", p.best_loss},
          {"best_step", p.best_step},
          {"evaluations_since_best", p.evaluations_since_best}};
}

json data_to_json(const std::vector<DataFingerprint>& data) {
  json list = json::array();
  for (const DataFingerprint& d : data)
    list.push_back({{"phase", d.phase},
                    {"path", d.path},
                    {"examples", d.examples},
                    {"bytes", d.bytes},
                    {"fnv1a64", d.fnv1a64}});
  return list;
}

}  // namespace

void save_checkpoint(const std::string& run_dir, const Checkpoint& checkpoint) {
  const std::string fresh = make_fresh_checkpoint_directory(run_dir);
  const std::string target = checkpoint_directory(run_dir);

  // One file's bytes at a time (an initializer list of all four held each archive
  // twice: its elements are copied, not moved), for a lower peak memory.
  std::vector<std::pair<std::string, std::function<std::string()>>> files = {
      {"config.yaml", [&] { return checkpoint.config_text; }},
      {"model.npz", [&] { return encode_npz(checkpoint.parameters); }},
      {"optimizer.npz", [&] { return encode_npz(checkpoint.optimizer_state); }},
  };
  json tokenizer = {{"type", checkpoint.tokenizer_type}, {"files", json::array()}};
  for (const auto& [name, bytes] : checkpoint.tokenizer_files) {
    require_tokenizer_file_name(name, fresh);
    files.emplace_back(name, [&bytes = bytes] { return bytes; });
    tokenizer["files"].push_back(name);
  }
  json manifest;
  manifest["format"] = kFormat;
  manifest["config_file"] = checkpoint.config_file;
  manifest["optimizer_steps"] = checkpoint.optimizer_steps;
  manifest["seed"] = checkpoint.seed;
  manifest["data_overrides"] = checkpoint.data_overrides;
  manifest["tokenizer"] = tokenizer;
  manifest["position"] = position_to_json(checkpoint.position);
  manifest["data"] = data_to_json(checkpoint.data);
  for (const auto& [name, produce] : files) {
    const std::string bytes = produce();
    write_file_atomic((fs::path(fresh) / name).string(), bytes);
    manifest["files"][name] = {{"bytes", bytes.size()},
                               {"crc32", crc32(bytes.data(), bytes.size())}};
  }
  write_file_atomic((fs::path(fresh) / "manifest.json").string(), manifest.dump(1) + "\n");
  if (replace_directory(fresh, target)) remove_checkpoint_directory(fresh);  // the previous one
}

Checkpoint load_checkpoint(const std::string& run_dir) {
  const fs::path dir = checkpoint_directory(run_dir);
  if (!fs::is_directory(dir))
    throw Error(run_dir + ": no checkpoint here (expected " + dir.string() + "/)");
  return parse_checkpoint([&](const std::string& name) { return read_file((dir / name).string()); },
                          dir.string());
}

namespace {

// A non-negative integer field: get<> would cast a float or a negative number
// (undefined behaviour for 2e66 into a uint32; found by fuzz_checkpoint).
std::uint64_t manifest_natural(const std::string& manifest_path, const json& parent,
                               const std::string& key, std::uint64_t max,
                               const std::string& where = "") {
  const json& v = parent.at(key);
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() > max)
    throw Error(manifest_path + ": " + where + key + " must be an integer in [0, " +
                std::to_string(max) + "], got " + v.dump());
  return v.get<std::uint64_t>();
}

TrainingPosition position_from_json(const json& p, const std::string& manifest_path) {
  auto count = [&](const char* key) {
    return std::size_t(manifest_natural(manifest_path, p, key, INT64_MAX, "position."));
  };
  TrainingPosition position;
  position.step = std::int64_t(count("step"));
  position.phase = count("phase");
  position.epoch = std::int64_t(count("epoch"));
  position.next_batch = count("next_batch");
  position.epoch_rng = p.at("epoch_rng").get<std::string>();
  position.rng = p.at("rng").get<std::string>();
  if (p.contains("layer_rngs"))
    position.layer_rngs = p.at("layer_rngs").get<std::vector<std::string>>();
  position.epoch_loss_sum = p.at("epoch_loss_sum").get<double>();
  position.epoch_sequences = count("epoch_sequences");
  position.epoch_tokens = count("epoch_tokens");
  position.metrics_rows = p.contains("metrics_rows") ? count("metrics_rows") : 0;
  // Older checkpoints have no validation state: none yet.
  if (p.contains("validation_rows")) {
    position.validation_rows = count("validation_rows");
    position.best_loss = p.at("best_loss").get<double>();
    position.best_step =
        p.at("best_step").is_number_integer() && p.at("best_step").get<std::int64_t>() == -1
            ? -1
            : std::int64_t(count("best_step"));
    position.evaluations_since_best = std::int64_t(count("evaluations_since_best"));
  }
  return position;
}

std::vector<DataFingerprint> data_from_json(const json& list, const std::string& manifest_path) {
  auto natural = [&](const json& d, const char* key) {
    return manifest_natural(manifest_path, d, key, UINT64_MAX, "data.");
  };
  std::vector<DataFingerprint> data;
  for (const json& d : list)
    data.push_back({d.at("phase").get<std::string>(), d.at("path").get<std::string>(),
                    natural(d, "examples"), natural(d, "bytes"), natural(d, "fnv1a64")});
  return data;
}

}  // namespace

Checkpoint parse_checkpoint(const std::function<std::string(const std::string&)>& read,
                            const std::string& dir_name) {
  const fs::path dir = dir_name;
  const std::string manifest_path = (dir / "manifest.json").string();
  json manifest;
  try {
    manifest = json::parse(read("manifest.json"));
  } catch (const json::exception& e) {
    throw Error(manifest_path + ": corrupt manifest (" + e.what() + ")");
  }
  try {
    if (!manifest.is_object() || manifest.value("format", "") != kFormat)
      throw Error(manifest_path + ": not a " + std::string(kFormat) + " manifest");
    auto natural = [&](const json& parent, const std::string& key, std::uint64_t max,
                       const std::string& where = "") {
      return manifest_natural(manifest_path, parent, key, max, where);
    };
    auto read_checked = [&](const std::string& name) {
      const std::string path = (dir / name).string();
      const json& entry = manifest.at("files").at(name);  // before reading: only listed files
      const std::string bytes = read(name);
      const std::uint64_t size = natural(entry, "bytes", UINT64_MAX, "files." + name + ".");
      if (bytes.size() != size)
        throw Error(path + ": " + std::to_string(bytes.size()) + " bytes, the manifest says " +
                    std::to_string(size) + " (truncated?)");
      if (crc32(bytes.data(), bytes.size()) !=
          natural(entry, "crc32", UINT32_MAX, "files." + name + "."))
        throw Error(path + ": checksum does not match the manifest (corrupted)");
      return bytes;
    };
    Checkpoint c;
    c.config_text = read_checked("config.yaml");
    read_tokenizer(manifest, manifest_path, read_checked, c);
    c.parameters = decode_npz(read_checked("model.npz"), (dir / "model.npz").string());
    c.optimizer_state = decode_npz(read_checked("optimizer.npz"), (dir / "optimizer.npz").string());
    require_finite(c.parameters, (dir / "model.npz").string());
    require_finite(c.optimizer_state, (dir / "optimizer.npz").string());
    c.config_file = manifest.value("config_file", "");
    c.optimizer_steps = std::int64_t(natural(manifest, "optimizer_steps", INT64_MAX));
    c.seed = natural(manifest, "seed", UINT64_MAX);
    c.data_overrides = manifest.at("data_overrides").get<std::map<std::string, std::string>>();
    c.position = position_from_json(manifest.at("position"), manifest_path);
    if (manifest.contains("data")) c.data = data_from_json(manifest.at("data"), manifest_path);
    return c;
  } catch (const json::exception& e) {
    throw Error(manifest_path + ": incomplete manifest (" + e.what() + ")");
  }
}

}  // namespace strata
