#include "models/checkpoint.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
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

void remove_stale_temporaries(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const auto at = name.rfind(".tmp-");
    if (at == std::string::npos || at + 5 >= name.size()) continue;
    const std::string digits = name.substr(at + 5);
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    fs::remove_all(entry.path(), ec);
  }
}

std::string checkpoint_directory(const std::string& run_dir) {
  return (fs::path(run_dir) / "checkpoint").string();
}

void save_checkpoint(const std::string& run_dir, const Checkpoint& checkpoint) {
  make_directories(run_dir);
  remove_stale_temporaries(run_dir);
  const std::string target = checkpoint_directory(run_dir);
  const std::string fresh = target + ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(fresh, ec);
  make_directories(fresh);

  // One file's bytes at a time (an initializer list of all four held each archive
  // twice: its elements are copied, not moved), for a lower peak memory.
  const std::pair<const char*, std::function<std::string()>> files[] = {
      {"config.yaml", [&] { return checkpoint.config_text; }},
      {"vocab.txt", [&] { return checkpoint.vocabulary; }},
      {"model.npz", [&] { return encode_npz(checkpoint.parameters); }},
      {"optimizer.npz", [&] { return encode_npz(checkpoint.optimizer_state); }},
  };
  json manifest;
  manifest["format"] = kFormat;
  manifest["config_file"] = checkpoint.config_file;
  manifest["optimizer_steps"] = checkpoint.optimizer_steps;
  manifest["seed"] = checkpoint.seed;
  manifest["data_overrides"] = checkpoint.data_overrides;
  const TrainingPosition& p = checkpoint.position;
  manifest["position"] = {{"step", p.step},
                          {"phase", p.phase},
                          {"epoch", p.epoch},
                          {"next_batch", p.next_batch},
                          {"epoch_rng", p.epoch_rng},
                          {"rng", p.rng},
                          {"layer_rngs", p.layer_rngs},
                          {"epoch_loss_sum", p.epoch_loss_sum},
                          {"epoch_sequences", p.epoch_sequences},
                          {"epoch_tokens", p.epoch_tokens},
                          {"metrics_rows", p.metrics_rows}};
  for (const auto& [name, produce] : files) {
    const std::string bytes = produce();
    write_file_atomic((fs::path(fresh) / name).string(), bytes);
    manifest["files"][name] = {{"bytes", bytes.size()},
                               {"crc32", crc32(bytes.data(), bytes.size())}};
  }
  write_file_atomic((fs::path(fresh) / "manifest.json").string(), manifest.dump(1) + "\n");
  replace_directory(fresh, target);
}

Checkpoint load_checkpoint(const std::string& run_dir) {
  const fs::path dir = checkpoint_directory(run_dir);
  if (!fs::is_directory(dir))
    throw Error(run_dir + ": no checkpoint here (expected " + dir.string() + "/)");
  return parse_checkpoint([&](const std::string& name) { return read_file((dir / name).string()); },
                          dir.string());
}

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
    // A non-negative integer field: get<> would cast a float or a negative number
    // (undefined behaviour for 2e66 into a uint32; found by fuzz_checkpoint).
    auto natural = [&](const json& parent, const std::string& key, std::uint64_t max,
                       const std::string& where = "") {
      const json& v = parent.at(key);
      if (!v.is_number_unsigned() || v.get<std::uint64_t>() > max)
        throw Error(manifest_path + ": " + where + key + " must be an integer in [0, " +
                    std::to_string(max) + "], got " + v.dump());
      return v.get<std::uint64_t>();
    };
    auto read_checked = [&](const std::string& name) {
      const std::string path = (dir / name).string();
      const std::string bytes = read(name);
      const json& entry = manifest.at("files").at(name);
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
    c.vocabulary = read_checked("vocab.txt");
    c.parameters = decode_npz(read_checked("model.npz"), (dir / "model.npz").string());
    c.optimizer_state = decode_npz(read_checked("optimizer.npz"), (dir / "optimizer.npz").string());
    c.config_file = manifest.value("config_file", "");
    c.optimizer_steps = std::int64_t(natural(manifest, "optimizer_steps", INT64_MAX));
    c.seed = natural(manifest, "seed", UINT64_MAX);
    c.data_overrides = manifest.at("data_overrides").get<std::map<std::string, std::string>>();
    const json& p = manifest.at("position");
    auto count = [&](const char* key) {
      return std::size_t(natural(p, key, INT64_MAX, "position."));
    };
    c.position.step = std::int64_t(count("step"));
    c.position.phase = count("phase");
    c.position.epoch = std::int64_t(count("epoch"));
    c.position.next_batch = count("next_batch");
    c.position.epoch_rng = p.at("epoch_rng").get<std::string>();
    c.position.rng = p.at("rng").get<std::string>();
    if (p.contains("layer_rngs"))
      c.position.layer_rngs = p.at("layer_rngs").get<std::vector<std::string>>();
    c.position.epoch_loss_sum = p.at("epoch_loss_sum").get<double>();
    c.position.epoch_sequences = count("epoch_sequences");
    c.position.epoch_tokens = count("epoch_tokens");
    c.position.metrics_rows = p.contains("metrics_rows") ? count("metrics_rows") : 0;
    return c;
  } catch (const json::exception& e) {
    throw Error(manifest_path + ": incomplete manifest (" + e.what() + ")");
  }
}

}  // namespace strata
